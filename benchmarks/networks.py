"""Time the CUBA and COBA benchmark networks on modelgen and its rivals, on the same machine in the same run.

    python benchmarks/networks.py --brian2-python /tmp/b2/bin/python   # CUBA and COBA, N = 4000, 1 s, dt 0.1 ms
    python benchmarks/networks.py --scale                              # and CUBA at N = 64 000
    python benchmarks/networks.py --quick                              # a smoke run: N = 800, 100 ms

Implementations: modelgen's numpy backend, modelgen's numba backend (``Network.run(...,
backend="numba")``; reported unavailable where that fails), the plain hand-written numpy versions
of benchmarks/baselines.py (``cuba``, ``coba``: vectorised over neurons, CSR delivery with
``np.bincount``; run on modelgen's connectivity and initial values, and checked to spike as
modelgen's numpy backend does), and Brian2's numpy and cython targets (benchmarks/brian2_networks.py,
run by ``--brian2-python``, Brian2 being no modelgen dependency; skipped without it).
The networks are models/cuba.network and models/coba.network (written to a scratch folder with
V of one neuron recorded, as the hand-written versions do); ``--n`` scales them keeping 80
inputs per neuron on average (connection probability 80/N), as ``--scale`` does for CUBA.

Every measurement runs in a fresh Python process of its own (its peak memory is its own):
  build_s       modelgen: ``load_network`` (models built or loaded from the cache, connectivity
                drawn); Brian2: creating its groups and synapses (see brian2_networks.py);
  first_run_s   the first ``run`` call of the process: code generated, loaded and, on numba or
                cython, compiled (or loaded from their caches);
  run_s         the same run again in the same process (the same network and seed), everything
                cached: the wall time of the whole ``run`` call;
  loop_s        the time loop alone, as each simulator reports it (modelgen: ``NetworkResult.wall_time``;
                hand-written: its loop; Brian2: ``device._last_run_time``);
  events/s      synaptic events (spikes times out-degree) per second of the loop;
  peak RSS      the process's peak resident memory (VmHWM), imports included; base RSS is
                its memory after the imports, before building.
``--repeats R`` makes every measurement R times in rounds, the implementations interleaved so that
a change of the machine's load touches every one; the best warm figures count, the cold ones are
the first round's (Brian2's Cython cache is empty then, and kept for the later rounds).
Ratios (time of the rival / time of modelgen, above 1: modelgen faster) are computed within the
run, on the whole warm run call and on the loop alone: modelgen numba against Brian2 cython
(target 2x), modelgen numpy against the hand-written numpy version (target 1.5x); at scale the
numba backend's synaptic events per second (target 50 M/s). Rates and ISI CVs per population
come from one definition for all (benchmarks/measures.py), for each of ``--seeds`` (the first
seed is the one timed).

Output: Markdown tables on stdout, JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from measures import peak_rss_mb, rate_and_cv, rss_mb  # noqa: E402

MODELS = ROOT / "models"
NETWORKS = ("cuba", "coba")
PAPER_N = 4000
SCALE_N = 64_000
INPUTS_PER_NEURON = 80  # 2 % of 4000
IMPLEMENTATIONS = {  # key: the name in the tables
    "numpy": "modelgen numpy",
    "numba": "modelgen numba",
    "handwritten": "hand-written numpy",
    "brian2-numpy": "Brian2 numpy",
    "brian2-cython": "Brian2 cython",
}
# (modelgen's implementation, its rival, the speed-up the issue asks for)
RATIO_TARGETS = (("numba", "brian2-cython", 2.0), ("numpy", "handwritten", 1.5))
EVENTS_TARGET = 50e6  # synaptic events per second on numba at N = 64 000
NS_PER_MS = 1e6  # modelgen's internal conductance unit is the mS; the hand-written COBA's the nS
AGREEMENT_STEPS = 200  # the first 20 ms spike for spike (later, rounding may tip a threshold crossing)


# ----------------------------------------------------------------------------- the networks
def network_file(kind: str, n: int, workdir: Path) -> Path:
    """Write models/<kind>.network with n neurons (80 % excitatory, 80 inputs each on average, V of one neuron recorded) into workdir; return its path."""
    text = (MODELS / f"{kind}.network").read_text()
    n_e = int(round(0.8 * n))
    p = min(1.0, INPUTS_PER_NEURON / n)
    text = text.replace("(n = 3200,", f"(n = {n_e},").replace("(n = 800,", f"(n = {n - n_e},")
    text = text.replace("fixed_probability(0.02)", f"fixed_probability({p:.6g})")
    text = text.replace("record E (V, neurons = 5)", "record E (V, neurons = 1)")
    path = Path(workdir) / f"{kind}_{n}.network"
    path.write_text(text)
    model = f"{kind}_lif.model"
    shutil.copy(MODELS / model, Path(workdir) / model)
    return path


def baseline_inputs(kind: str, net) -> dict:
    """Return the hand-written version's arguments for a modelgen network: its initial values and one CSR over all neurons."""
    pops = list(net.populations.values())
    offset = {p.name: o for p, o in zip(pops, np.cumsum([0] + [p.n for p in pops]))}
    n = sum(p.n for p in pops)
    src, tgt, w = [], [], []
    for proj in net.projections:
        counts = np.diff(proj.indptr)
        src.append(np.repeat(np.arange(counts.size), counts) + offset[proj.source])
        tgt.append(proj.indices + offset[proj.target])
        w.append(proj.weights)
    src, tgt, w = np.concatenate(src), np.concatenate(tgt), np.concatenate(w)
    order = np.argsort(src, kind="stable")
    excitatory = np.zeros(n, dtype=bool)
    excitatory[offset["E"] : offset["E"] + net.populations["E"].n] = True

    def initial(var: str, default: float) -> np.ndarray:
        return np.concatenate([np.broadcast_to(p.initial.get(var, default), (p.n,)) for p in pops]).astype(float)

    csr = {"indptr": np.searchsorted(src[order], np.arange(n + 1)), "indices": tgt[order], "excitatory": excitatory}
    if kind == "cuba":
        return {"V0": initial("V", -60.0), **csr, "weights": w[order]}
    return {
        "V0": initial("V", -60.0),
        "g_e0": initial("g_e", 0.0) * NS_PER_MS,
        "g_i0": initial("g_i", 0.0) * NS_PER_MS,
        **csr,
        "weights": w[order] * NS_PER_MS,
    }


def run_handwritten(kind: str, inputs: dict, steps: int, dt: float):
    """Return (loop seconds, spiking neurons, their steps, synaptic events) of the hand-written version."""
    import baselines

    fn = baselines.cuba if kind == "cuba" else baselines.coba
    seconds, _, spike_i, spike_k, events = fn(**inputs, steps=steps, dt=dt)
    return seconds, spike_i, spike_k, events


def agreement(kind: str, net, inputs: dict, dt: float, steps: int = AGREEMENT_STEPS) -> dict:
    """Return how the first ``steps`` steps of modelgen's numpy backend and of the hand-written version compare, spike by spike."""
    r = net.run(steps * dt, dt)
    pop_offset = np.cumsum([0] + list(r.sizes))[:-1]
    mine = sorted(zip((r.spike_i + pop_offset[r.spike_pop]).tolist(), np.rint(r.spike_t / dt).astype(int).tolist()))
    _, si, sk, _ = run_handwritten(kind, inputs, steps, dt)
    theirs = sorted(zip(si.tolist(), (sk + 1).tolist()))
    return {
        "steps": steps,
        "modelgen_spikes": len(mine),
        "handwritten_spikes": len(theirs),
        "identical": mine == theirs,
    }


def _population_stats(i: np.ndarray, t: np.ndarray, bounds: dict, duration: float) -> dict:
    """Return {population: {rate_Hz, cv_isi}} from spikes numbered over the whole network (bounds: name -> (lo, hi))."""
    out = {}
    for name, (lo, hi) in bounds.items():
        sel = (i >= lo) & (i < hi)
        rate, cv = rate_and_cv(i[sel], t[sel], hi - lo, duration)
        out[name] = {"rate_Hz": rate, "cv_isi": cv}
    return out


# ----------------------------------------------------------------------------- one measurement each
def measure_modelgen(spec: dict) -> dict:
    """Return the figures of modelgen's backend ``spec["implementation"]`` (numpy or numba) on one network."""
    from modelgen.network import load_network

    backend = spec["implementation"]
    base = rss_mb()
    duration, dt = spec["duration_ms"], spec["dt_ms"]
    options = {} if backend == "numpy" else {"backend": backend}
    out = {"base_rss_MB": base}
    seeds = spec["seeds"]
    start = time.perf_counter()
    net = load_network(spec["path"], seed=seeds[0])
    out["build_s"] = time.perf_counter() - start
    start = time.perf_counter()
    try:
        first = net.run(duration, dt, **options)
    except Exception as e:  # the backend's own message says why (not installed, not supported for networks yet)
        if backend == "numpy":
            raise
        return {"unavailable": f"{type(e).__name__}: {e}"}
    out["first_run_s"] = time.perf_counter() - start
    out["first_loop_s"] = first.wall_time
    start = time.perf_counter()
    r = net.run(duration, dt, **options)
    out["run_s"] = time.perf_counter() - start
    if not (np.array_equal(r.spike_i, first.spike_i) and np.array_equal(r.spike_t, first.spike_t)):
        raise SystemExit(f"{spec['network']}: modelgen {backend} gave other spikes when run again with the same seed")
    out.update(loop_s=r.wall_time, synaptic_events=r.synaptic_events)
    out["synapses"] = net.n_synapses
    out["spikes"] = int(r.spike_t.size)
    stats = {str(seeds[0]): _modelgen_stats(r)}
    for s in seeds[1:]:
        stats[str(s)] = _modelgen_stats(load_network(spec["path"], seed=s).run(duration, dt, **options))
    out["seeds"] = stats
    out["peak_rss_MB"] = peak_rss_mb()
    return out


def _modelgen_stats(r) -> dict:
    out = {}
    for name in r.populations:
        rate, cv = rate_and_cv(*r.spikes(name), r.sizes[r.populations.index(name)], r.duration)
        out[name] = {"rate_Hz": rate, "cv_isi": cv}
    return out


def measure_handwritten(spec: dict) -> dict:
    """Return the figures of the hand-written numpy version on one network, its inputs read from ``spec["inputs"]`` (.npz per seed)."""
    base = rss_mb()
    kind, dt = spec["network"], spec["dt_ms"]
    steps = int(round(spec["duration_ms"] / dt))
    out = {"base_rss_MB": base, "build_s": None}
    stats = {}
    for j, (seed, path) in enumerate(spec["inputs"].items()):
        with np.load(path) as f:
            inputs = {k: f[k] for k in f.files}
        n_e = int(inputs["excitatory"].sum())
        bounds = {"E": (0, n_e), "I": (n_e, inputs["V0"].size)}
        if j == 0:
            start = time.perf_counter()
            seconds, si, sk, events = run_handwritten(kind, inputs, steps, dt)
            out.update(first_run_s=time.perf_counter() - start, first_loop_s=seconds)
            start = time.perf_counter()
            seconds, si, sk, events = run_handwritten(kind, inputs, steps, dt)
            out.update(run_s=time.perf_counter() - start, loop_s=seconds, synaptic_events=events)
            out["synapses"] = int(inputs["indices"].size)
            out["spikes"] = int(si.size)
        else:
            _, si, sk, _ = run_handwritten(kind, inputs, steps, dt)
        stats[seed] = _population_stats(si, (sk + 1) * dt, bounds, steps * dt)
    out["seeds"] = stats
    out["peak_rss_MB"] = peak_rss_mb()
    return out


def measure_brian2(spec: dict) -> dict:
    """Return the figures of Brian2's target (implementation ``brian2-<target>``), from brian2_networks.py run by ``spec["python"]``."""
    target = spec["implementation"].removeprefix("brian2-")
    cmd = [spec["python"], str(HERE / "brian2_networks.py"), spec["network"], "--targets", target]
    cmd += ["--n", str(spec["n"]), "--duration", str(spec["duration_ms"]), "--dt", str(spec["dt_ms"])]
    cmd += ["--seeds", ",".join(map(str, spec["seeds"])), "--cache-dir", spec["cython_cache"], "--json", "-"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=spec.get("timeout", 1800))
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        return {"unavailable": f"brian2_networks.py failed (exit {done.returncode}): {last}"}
    doc = json.loads(done.stdout.strip().splitlines()[-1])
    (r,) = doc["results"]
    keep = ("build_s", "first_build_s", "first_run_s", "first_loop_s", "run_s", "loop_s", "synapses", "spikes")
    out = {k: r[k] for k in keep}
    out.update(synaptic_events=r["synaptic_events"], seeds=r["seeds"], brian2=doc["brian2"])
    out.update(base_rss_MB=r["base_rss_MB"], peak_rss_MB=r["peak_rss_MB"])
    return out


MEASURES = {"numpy": measure_modelgen, "numba": measure_modelgen, "handwritten": measure_handwritten}


def measure(spec: dict) -> dict:
    """Return one measurement's row: the spec's network, N and implementation, and its figures."""
    fn = measure_brian2 if spec["implementation"].startswith("brian2-") else MEASURES[spec["implementation"]]
    row = {k: spec[k] for k in ("network", "n", "implementation", "duration_ms", "dt_ms")}
    row.update(fn(spec))
    if "unavailable" not in row:
        row["synaptic_events_per_s"] = _events_per_s(row)
    return row


def _events_per_s(row: dict) -> float:
    return row["synaptic_events"] / row["loop_s"] if row["loop_s"] else float("inf")


def measure_in_child(spec: dict) -> dict:
    """Return ``measure(spec)`` computed in a fresh Python process (its peak memory its own)."""
    if spec["implementation"].startswith("brian2-"):
        return measure(spec)  # already a process of its own, in Brian2's environment
    cmd = [sys.executable, str(Path(__file__).resolve()), "--measure", json.dumps(spec)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=spec.get("timeout", 1800))
    if done.returncode != 0:
        raise SystemExit(f"measuring {spec['implementation']} on {spec['network']} failed:\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def best_of(rounds: list[dict]) -> dict:
    """Return one implementation's row from its measurements in interleaved rounds: the first round's cold
    figures, rates and CVs (every seed), the best warm run and loop, the largest peak memory."""
    row = dict(rounds[0])
    if "unavailable" in row:
        return row
    for key in ("build_s", "run_s", "loop_s"):
        if row.get(key) is not None:
            row[key] = min(r[key] for r in rounds)
    row["peak_rss_MB"] = max(r["peak_rss_MB"] for r in rounds)
    row["synaptic_events_per_s"] = _events_per_s(row)
    row["rounds"] = len(rounds)
    return row


# ----------------------------------------------------------------------------- the run
def prepare(kind: str, n: int, seeds: list[int], dt: float, workdir: Path) -> tuple[Path, dict, dict]:
    """Return (the network file, {seed: hand-written inputs .npz}, the spike-by-spike agreement of seed[0])."""
    from modelgen.network import load_network

    path = network_file(kind, n, workdir)
    files, check = {}, None
    for s in seeds:
        net = load_network(path, seed=s)
        inputs = baseline_inputs(kind, net)
        files[str(s)] = str(workdir / f"{kind}_{n}_seed{s}.npz")
        np.savez(files[str(s)], **inputs)
        if check is None:
            check = agreement(kind, net, inputs, dt)
    return path, files, check


def ratios(rows: list[dict]) -> list[dict]:
    """Return the speed-ups of modelgen over its rivals measured in this run (rival's time / modelgen's)."""
    out = []
    at = {(r["network"], r["n"], r["implementation"]): r for r in rows if "unavailable" not in r}
    for network, n in dict.fromkeys((r["network"], r["n"]) for r in rows):
        for mine, rival, target in RATIO_TARGETS:
            a, b = at.get((network, n, mine)), at.get((network, n, rival))
            entry = {"network": network, "n": n, "modelgen": mine, "rival": rival, "target": target}
            if a and b:
                entry["run_ratio"] = b["run_s"] / a["run_s"]
                entry["loop_ratio"] = b["loop_s"] / a["loop_s"]
                entry["met"] = entry["run_ratio"] >= target
            else:
                missing = [IMPLEMENTATIONS[k] for k, r in ((mine, a), (rival, b)) if not r]
                entry["missing"] = ", ".join(missing)
            out.append(entry)
    return out


def _num(x, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}g}"


def markdown(rows: list[dict], ratio_rows: list[dict]) -> str:
    """Return the results as Markdown tables: times and memory, firing statistics, ratios."""
    lines = [
        "| network | N | implementation | build s | first run s | run s | loop s | M events/s | peak RSS MB (base) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        head = f"| {r['network']} | {r['n']} | {IMPLEMENTATIONS[r['implementation']]} |"
        if "unavailable" in r:
            lines.append(head + f" unavailable: {r['unavailable']} | | | | | |")
            continue
        lines.append(
            head
            + f" {_build(r)} | {_num(r['first_run_s'])} | {_num(r['run_s'])} | {_num(r['loop_s'])} |"
            + f" {r['synaptic_events_per_s'] / 1e6:.3g} | {r['peak_rss_MB']:.0f} ({r['base_rss_MB']:.0f}) |"
        )
    lines += [
        "",
        "| network | N | implementation | seeds | rate E Hz | rate I Hz | CV E | CV I |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "unavailable" in r:
            continue
        seeds = r["seeds"]
        cells = [_range([seeds[s][pop][key] for s in seeds]) for key in ("rate_Hz", "cv_isi") for pop in ("E", "I")]
        lines.append(
            f"| {r['network']} | {r['n']} | {IMPLEMENTATIONS[r['implementation']]} | {','.join(seeds)} | "
            + " | ".join(cells)
            + " |"
        )
    lines += ["", "| network | N | speed-up | run call | loop only | target | met |", "|---|---|---|---|---|---|---|"]
    for e in ratio_rows:
        what = f"{IMPLEMENTATIONS[e['modelgen']]} over {IMPLEMENTATIONS[e['rival']]}"
        if "missing" in e:
            lines.append(
                f"| {e['network']} | {e['n']} | {what} | not measured ({e['missing']}) | | ≥ {e['target']:g}× | |"
            )
        else:
            met = "yes" if e["met"] else "no"
            lines.append(
                f"| {e['network']} | {e['n']} | {what} | {e['run_ratio']:.2f}× | {e['loop_ratio']:.2f}× | ≥ {e['target']:g}× | {met} |"
            )
    return "\n".join(lines)


def _build(row: dict) -> str:
    """Return the build time, and the first build's where it differs (Brian2: compiling its connect code)."""
    first = row.get("first_build_s")
    return _num(row["build_s"]) + (f" (first {first:.3g})" if first is not None else "")


def _range(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}–{hi:.2f}"


def events_check(rows: list[dict], n: int) -> str:
    """Return a line on the numba backend's synaptic events per second in CUBA at N = n against the target."""
    numba = [r for r in rows if r["network"] == "cuba" and r["n"] == n and r["implementation"] == "numba"]
    target = f"target ≥ {EVENTS_TARGET / 1e6:g} M synaptic events/s at N = {SCALE_N}"
    if not numba or "unavailable" in numba[0]:
        return f"CUBA at N = {n}: modelgen numba not measured ({target})"
    rate = numba[0]["synaptic_events_per_s"]
    met = "met" if rate >= EVENTS_TARGET and n >= SCALE_N else "not met"
    return f"CUBA at N = {n}: modelgen numba {rate / 1e6:.1f} M synaptic events/s ({target}: {met})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", default="cuba,coba", help="cuba and/or coba ('' with --scale: only that)")
    parser.add_argument(
        "--implementations", default=",".join(IMPLEMENTATIONS), help=f"some of {', '.join(IMPLEMENTATIONS)}"
    )
    parser.add_argument(
        "--brian2-python", help="a Python with Brian2 (and Cython) for the Brian2 rows; skipped if not given"
    )
    parser.add_argument("--seeds", default="1", help="seeds; the first is timed, every one gives rates and CVs")
    parser.add_argument("--n", type=int, help=f"neurons per network, 80 inputs each on average (default {PAPER_N})")
    parser.add_argument("--duration", type=float, help="simulated ms (default 1000)")
    parser.add_argument("--dt", type=float, default=0.1, help="time step, ms")
    parser.add_argument(
        "--repeats", type=int, default=1, help="rounds of measurements, implementations interleaved (the best counts)"
    )
    parser.add_argument("--scale", action="store_true", help=f"also CUBA at N = {SCALE_N} (synaptic events per second)")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: N = 800, 100 ms unless given (and N = 4000 for --scale)"
    )
    parser.add_argument("--json", help="write the results as JSON to this file")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # one measurement (JSON spec), in a child process
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(json.loads(args.measure))))
        return 0
    args.n = args.n or (800 if args.quick else PAPER_N)
    args.duration = args.duration or (100.0 if args.quick else 1000.0)
    impls = args.implementations.split(",")
    unknown = [i for i in impls if i not in IMPLEMENTATIONS]
    if unknown:
        parser.error(f"unknown implementation {unknown[0]!r}: choose from {', '.join(IMPLEMENTATIONS)}")
    if not args.brian2_python:
        impls = [i for i in impls if not i.startswith("brian2-")]
    seeds = [int(s) for s in args.seeds.split(",")]
    kinds = [k for k in args.networks.split(",") if k]  # "" with --scale: the scaled CUBA only
    unknown = [k for k in kinds if k not in NETWORKS]
    if unknown:
        parser.error(f"unknown network {unknown[0]!r}: choose from {', '.join(NETWORKS)}")
    runs = [(kind, args.n, args.duration, seeds) for kind in kinds]
    scale_n = PAPER_N if args.quick else SCALE_N
    if args.scale:
        runs.append(("cuba", scale_n, args.duration, seeds[:1]))
    rows, checks = [], {}
    with tempfile.TemporaryDirectory(prefix="modelgen-networks-") as tmp:
        for kind, n, duration, run_seeds in runs:
            path, inputs, check = prepare(kind, n, run_seeds, args.dt, Path(tmp))
            checks[f"{kind}_{n}"] = check
            print(
                f"{kind} N={n}: modelgen numpy and the hand-written version, first {check['steps']} steps: "
                f"{check['modelgen_spikes']} and {check['handwritten_spikes']} spikes, "
                f"{'identical' if check['identical'] else 'DIFFERENT'}",
                flush=True,
            )
            if not check["identical"]:
                raise SystemExit(
                    f"{kind} N={n}: the hand-written version does not spike as modelgen does; no ratio is meaningful"
                )
            todo = [i for i in impls if not (n == SCALE_N and i == "brian2-numpy")]  # minutes per run at that size
            measured = {impl: [] for impl in todo}
            for round_ in range(max(1, args.repeats)):  # implementations interleaved (see the module's doc)
                for impl in todo:
                    if measured[impl] and "unavailable" in measured[impl][0]:
                        continue
                    spec = {"network": kind, "n": n, "implementation": impl, "duration_ms": duration, "dt_ms": args.dt}
                    spec.update(path=str(path), inputs=inputs, python=args.brian2_python)
                    spec["seeds"] = run_seeds if round_ == 0 else run_seeds[:1]  # every seed's rates once
                    spec["cython_cache"] = str(Path(tmp) / f"cython-{kind}-{n}")  # empty in round 1: compiled there
                    row = measure_in_child(spec)
                    measured[impl].append(row)
                    state = row.get("unavailable") or f"run {row['run_s']:.3f} s (first {row['first_run_s']:.3f} s)"
                    print(f"  round {round_ + 1}, {IMPLEMENTATIONS[impl]}: {state}", flush=True)
            rows += [best_of(measured[impl]) for impl in todo]
    ratio_rows = ratios(rows)
    print()
    print(markdown(rows, ratio_rows))
    if args.scale:
        print()
        print(events_check(rows, scale_n))
    if args.json:
        doc = {
            "machine": {"python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform()},
            "agreement": checks,
            "rows": rows,
            "ratios": ratio_rows,
        }
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

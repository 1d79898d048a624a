"""Benchmark modelgen's generated simulators against hand-written numpy and numba, in the same process.

    python benchmarks/run.py            # full suite (about 10 minutes on 2 cores)
    python benchmarks/run.py --quick    # small sizes, short runs (about a minute)

Workloads: Hodgkin-Huxley populations (exponential Euler and rk4), LIF and Izhikevich
populations, and the CUBA network, at N = 1 ... 1 000 000 neurons; and (``imported``) NEURON's hh.mod
imported by ``modelgen import`` against the same cell written by hand (models/hh_composed.model). Each population is run by
three hand-written versions: naive numpy (benchmarks/baselines.py: a temporary per operation),
expert numpy (benchmarks/expert_numpy.py: buffers allocated once, ``out=``, ``m*m*m``) and, if
numba is installed, an expert single-threaded ``@njit`` loop (benchmarks/expert_njit.py: the
whole time loop in one compiled call); and by modelgen's numpy backend and numba backend.
Before timing, the suite checks that every version gives the same numbers as the naive one.
Every implementation runs the same steps; the best of ``--repeats`` interleaved runs counts,
and the ratios are what hold on a noisy machine: modelgen numpy against expert numpy
(``numpy_ratio``), modelgen numba against the ``@njit`` loop (``numba_ratio``); both are
time of the hand-written version / time of modelgen's, so above 1 means modelgen is faster. Also measured: build time (cold: a fresh Python process, sympy import
included; cached: an unchanged model), numba compile time, peak memory (tracemalloc, numpy
arrays included) and the accuracy cost of float32.

Output: a table on stdout, a JSON file (--json) and a log-log plot of throughput against N
(--plot; needs matplotlib).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import baselines  # noqa: E402
import expert_numpy  # noqa: E402
from networks import baseline_inputs, network_file  # noqa: E402

import modelgen  # noqa: E402

MODELS = ROOT / "models"
FULL_SIZES = (1, 100, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (1, 100, 10_000)


def _has_numba() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------- workloads
@dataclass
class Workload:
    """A model run by modelgen and by hand-written versions (naive numpy, expert numpy, expert @njit)."""

    name: str
    model: str
    method: str | None
    dt: float  # ms
    input_name: str
    baseline: object  # function (n, steps, dt, I, n_rec) -> (seconds, V, spike_i, spike_k)
    drive: tuple[float, float]  # per-neuron input from .. to, in the model's input unit
    tolerance: float  # mV: max |V difference| accepted in the check

    def references(self, backends) -> dict:
        """Return the hand-written versions by name: naive numpy, expert numpy, expert @njit (numba installed)."""
        fn = self.baseline.__name__
        out = {"naive": self.baseline, "expert_numpy": getattr(expert_numpy, fn)}
        if "numba" in backends:
            import expert_njit

            out["expert_njit"] = getattr(expert_njit, fn)
        return out

    def inputs(self, n: int) -> np.ndarray:
        lo, hi = self.drive
        return np.linspace(lo, hi, n) if n > 1 else np.array([(lo + hi) / 2])


WORKLOADS = [
    Workload(
        "hh_exp_euler",
        "hh.model",
        "exponential_euler",
        0.01,
        "I_ext",
        baselines.hh_exponential_euler,
        (2.0, 20.0),
        1e-6,
    ),
    Workload("hh_rk4", "hh.model", "rk4", 0.01, "I_ext", baselines.hh_rk4, (2.0, 20.0), 1e-6),
    Workload("lif", "lif.model", None, 0.1, "I_ext", baselines.lif, (100.0, 400.0), 1e-9),
    Workload("izhikevich", "izhikevich.model", None, 0.05, "I", baselines.izhikevich, (2.0, 15.0), 1e-6),
]


def run_modelgen(w: Workload, model, n: int, steps: int, out_dir, backend="numpy", dtype="float64", n_rec=1):
    r = model.run(
        duration=steps * w.dt,
        dt=w.dt,
        n=n,
        inputs={w.input_name: w.inputs(n)},
        record=[model.states[0]],
        record_indices=np.arange(n_rec),
        method=w.method,
        out_dir=out_dir,
        backend=backend,
        dtype=dtype,
    )
    return r


def check_same(w: Workload, model, out_dir, backends) -> dict:
    """Run modelgen and the hand-written versions side by side; return the largest differences from the
    naive version (raises if too large)."""
    out = {}
    steps = int(round(40.0 / w.dt))  # 40 ms: several spikes
    refs = w.references(backends)
    for n in (4, 50):  # the per-neuron kernel, then the vectorised step
        _, V, spike_i, spike_k = w.baseline(n, steps, w.dt, w.inputs(n), n_rec=n)
        theirs = sorted(zip(spike_i.tolist(), (spike_k + 1).tolist()))
        runs = {}
        for backend in backends:
            r = run_modelgen(w, model, n, steps, out_dir, backend, n_rec=n)
            runs[backend] = (
                r[model.states[0]],
                sorted(zip(r.spike_i.tolist(), np.rint(r.spike_t / w.dt).astype(int).tolist())),
            )
        for name, fn in refs.items():
            if name != "naive":
                _, V2, i2, k2 = fn(n, steps, w.dt, w.inputs(n), n_rec=n)
                runs[name] = (V2, sorted(zip(i2.tolist(), (k2 + 1).tolist())))
        for name, (V2, mine) in runs.items():
            dv = float(np.abs(V2 - V).max())
            if dv > w.tolerance or mine != theirs:
                raise SystemExit(
                    f"{w.name}: {name} (n={n}) and the naive baseline differ: max |dV| = {dv:.3g} mV, "
                    f"{len(mine)} vs {len(theirs)} spikes"
                )
            out[f"{name}_n{n}_max_dV_mV"] = dv
            out[f"{name}_n{n}_spikes"] = len(mine)
    return out


def peak_memory(fn) -> float:
    """Return the peak bytes allocated (numpy arrays included) while ``fn()`` runs."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def steps_for(seconds_per_step: float, budget: float, n: int) -> int:
    return int(np.clip(budget / max(seconds_per_step, 1e-9), 5, 200_000))


def bench_population(w: Workload, sizes, budget, repeats, backends, out_dir) -> list[dict]:
    model = modelgen.load(MODELS / w.model)
    refs = w.references(backends)
    if "numba" in backends:  # compile before timing (the serial and the parallel loop; the @njit loops)
        run_modelgen(w, model, 1, 2, out_dir, "numba")
        run_modelgen(w, model, 4096, 2, out_dir, "numba")
        refs["expert_njit"](2, 2, w.dt, w.inputs(2))
    check = check_same(w, model, out_dir, backends)
    print(f"  {w.name}: modelgen and the hand-written versions agree ({check})", flush=True)
    rows = []
    for n in sizes:
        drive = w.inputs(n)
        seconds, *_ = refs["expert_numpy"](n, 3, w.dt, drive)  # calibrate the number of steps
        steps = steps_for(seconds / 3, budget, n)
        times = {name: [] for name in [*refs, *backends]}
        for _ in range(repeats):  # interleaved: a change of the machine's load touches every implementation
            for name, fn in refs.items():
                times[name].append(fn(n, steps, w.dt, drive)[0])
            for b in backends:
                times[b].append(run_modelgen(w, model, n, steps, out_dir, b).wall_time)
        row = {"workload": w.name, "n": n, "steps": steps}
        for impl, ts in times.items():
            best = min(ts)
            row[f"{impl}_s"] = best
            row[f"{impl}_neuron_steps_per_s"] = n * steps / best
        row.update(_ratios(row))
        for name, fn in refs.items():
            row[f"{name}_peak_MB"] = peak_memory(partial(fn, n, 3, w.dt, drive)) / 1e6
        for b in backends:
            row[f"{b}_peak_MB"] = peak_memory(partial(run_modelgen, w, model, n, 3, out_dir, b)) / 1e6
        rows.append(row)
        print("  " + _row_text(row), flush=True)
    return rows


# modelgen's backends and the hand-written version each is measured against (the first one present)
RIVALS = {"numpy": ("expert_numpy", "naive"), "numba": ("expert_njit",)}


def _ratios(row: dict) -> dict:
    """Return {backend}_ratio (rival's time / modelgen's, >1: modelgen faster), {backend}_rival, numpy_vs_naive."""
    out = {}
    for b, rivals in RIVALS.items():
        rival = next((r for r in rivals if f"{r}_s" in row), None)
        if f"{b}_s" in row and rival:
            out[f"{b}_ratio"] = row[f"{rival}_s"] / row[f"{b}_s"]
            out[f"{b}_rival"] = rival
    if "numpy_s" in row and "naive_s" in row:
        out["numpy_vs_naive"] = row["naive_s"] / row["numpy_s"]
    return out


# ----------------------------------------------------------------------------- network
def _cuba_network(n: int, workdir: Path, seed: int = 1):
    """Write and load CUBA with n neurons (80% excitatory) and 80 inputs per neuron on average."""
    from modelgen.network import load_network

    return load_network(network_file("cuba", n, workdir), seed=seed)


def bench_network(sizes, budget, repeats, out_dir) -> list[dict]:
    rows = []
    dt = 0.1
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            net = _cuba_network(n, Path(tmp))
            arrays = baseline_inputs("cuba", net)
            V0, indptr, indices, weights, exc = (
                arrays[k] for k in ("V0", "indptr", "indices", "weights", "excitatory")
            )
            # check: the first 20 ms spike for spike (later, rounding differences may tip a threshold crossing)
            steps = 200
            r = net.run(steps * dt, dt, out_dir)
            _, _, si, sk, _ = baselines.cuba(V0, indptr, indices, weights, exc, steps, dt)
            pop_offset = np.array([0, net.populations["E"].n])
            mine = sorted(
                zip((r.spike_i + pop_offset[r.spike_pop]).tolist(), np.rint(r.spike_t / dt).astype(int).tolist())
            )
            theirs = sorted(zip(si.tolist(), (sk + 1).tolist()))
            if mine != theirs:
                raise SystemExit(
                    f"cuba n={n}: modelgen and the baseline spike differently ({len(mine)} vs {len(theirs)})"
                )
            seconds = baselines.cuba(V0, indptr, indices, weights, exc, 20, dt)[0]
            steps = steps_for(seconds / 20, budget, n)
            best = {"naive": np.inf, "numpy": np.inf}
            events = {}
            for _ in range(repeats):
                t, _, _, _, ev = baselines.cuba(V0, indptr, indices, weights, exc, steps, dt)
                best["naive"] = min(best["naive"], t)
                events["naive"] = ev
                net = _cuba_network(n, Path(tmp))
                r = net.run(steps * dt, dt, out_dir)
                best["numpy"] = min(best["numpy"], r.wall_time)
                events["numpy"] = r.synaptic_events
            row = {"workload": "cuba", "n": n, "steps": steps, "synapses": int(indices.size)}
            for impl in best:
                row[f"{impl}_s"] = best[impl]
                row[f"{impl}_neuron_steps_per_s"] = n * steps / best[impl]
                row[f"{impl}_synaptic_events_per_s"] = events[impl] / best[impl]
            row.update(_ratios(row))
            row["naive_peak_MB"] = peak_memory(partial(baselines.cuba, V0, indptr, indices, weights, exc, 3, dt)) / 1e6
            # like the baseline's, modelgen's peak is that of the simulation, its connectivity given;
            # building the network (drawing the connectivity) is measured on its own
            row["numpy_build_peak_MB"] = peak_memory(partial(_cuba_network, n, Path(tmp))) / 1e6
            net = _cuba_network(n, Path(tmp))
            row["numpy_peak_MB"] = peak_memory(partial(net.run, 3 * dt, dt, out_dir)) / 1e6
            rows.append(row)
            print(
                "  "
                + _row_text(row)
                + f"  {row['numpy_synaptic_events_per_s'] / 1e6:.2f} M events/s"
                + f"  peak MB: naive {row['naive_peak_MB']:.3g}, modelgen run {row['numpy_peak_MB']:.3g}"
                + f" (building the network {row['numpy_build_peak_MB']:.3g})",
                flush=True,
            )
    return rows


# ----------------------------------------------------------------------------- build times
def bench_build(out_dir: Path, backends) -> dict:
    """Cold build (fresh process, sympy import included), cached build, numba compile."""
    out = {}
    for model, method in (
        ("hh.model", "exponential_euler"),
        ("hh.model", "rk4"),
        ("lif.model", None),
        ("izhikevich.model", None),
        ("cuba_lif.model", None),
    ):
        key = model.split(".")[0] + (f"_{method}" if method == "rk4" else "")
        script = (
            "import time; t0 = time.perf_counter(); import modelgen; "
            f"m = modelgen.load({str(MODELS / model)!r}); m.code({method!r}); print(time.perf_counter() - t0)"
        )
        start = time.perf_counter()
        inner = float(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
        out[f"{key}_cold_s"] = time.perf_counter() - start  # interpreter start included
        out[f"{key}_cold_in_process_s"] = inner
        m = modelgen.load(MODELS / model)
        d = Path(tempfile.mkdtemp(dir=out_dir))
        m.build(d, method)
        start = time.perf_counter()
        m.build(d, method)
        out[f"{key}_cached_build_s"] = time.perf_counter() - start
        script = (
            "import time; t0 = time.perf_counter(); import modelgen; "
            f"m = modelgen.load({str(MODELS / model)!r}); m.load_module({str(d)!r}, {method!r}); "
            "print(time.perf_counter() - t0)"
        )
        out[f"{key}_cached_fresh_process_s"] = float(
            subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
        )
    if "numba" in backends:
        d = Path(tempfile.mkdtemp(dir=out_dir))
        script = (
            "import time, modelgen; m = modelgen.load({p!r}); t0 = time.perf_counter(); "
            "m.run(duration=0.1, dt=0.01, n=1, backend='numba', out_dir={d!r}); "
            "m.run(duration=0.1, dt=0.01, n=4096, backend='numba', out_dir={d!r}); print(time.perf_counter() - t0)"
        ).format(p=str(MODELS / "hh.model"), d=str(d))
        for key in ("hh_numba_compile_s", "hh_numba_cached_compile_s"):
            out[key] = float(
                subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
            )
    return out


def bench_float32(out_dir, backends) -> dict:
    """Spike times of HH in float32 against float64 (100 neurons, 2 to 20 uA/cm^2, 200 ms)."""
    w = WORKLOADS[0]
    model = modelgen.load(MODELS / w.model)
    out = {}
    steps = int(round(200.0 / w.dt))
    ref = run_modelgen(w, model, 100, steps, out_dir)
    single = run_modelgen(w, model, 100, steps, out_dir, dtype="float32")
    diffs, missing = [], 0
    for i in range(100):
        a, b = ref.spike_times(i), single.spike_times(i)
        if a.size != b.size:
            missing += abs(a.size - b.size)
            continue
        if a.size:
            diffs.append(np.abs(a - b).max())
    out["spikes_float64"] = int(ref.spike_t.size)
    out["spike_count_differences"] = missing
    out["max_spike_time_difference_ms"] = float(max(diffs)) if diffs else 0.0
    out["mean_spike_time_difference_ms"] = float(np.mean(diffs)) if diffs else 0.0
    n = 100_000 if "--quick" not in sys.argv else 10_000
    t64 = run_modelgen(w, model, n, 20, out_dir).wall_time
    t32 = run_modelgen(w, model, n, 20, out_dir, dtype="float32").wall_time
    out[f"speedup_float32_n{n}"] = t64 / t32
    return out


# ----------------------------------------------------------------------------- imported channels
def bench_imported(out_dir: Path, backends, repeats: int, quick: bool) -> dict:
    """NEURON's hh.mod imported with ``modelgen import --model`` against models/hh_composed.model (the same
    cell written by hand from library currents): 2 000 neurons, 100 ms at dt = 0.025 ms (quick: 20 ms).

    ``imported_{backend}_ratio`` is the hand-written cell's time / the imported one's: 1 is the same speed.
    """
    os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    try:
        import neuron

        from modelgen.importers.nmodl import write_imported
    except ImportError:
        print("  imported: needs the neuron package (NEURON's hh.mod and its NMODL parser): skipped", flush=True)
        return {}
    hh_mod = Path(neuron.__file__).parent / ".data" / "share" / "modfile" / "hh.mod"
    cell = modelgen.load(write_imported(hh_mod, Path(tempfile.mkdtemp(dir=out_dir)), model=True)[1])
    composed = modelgen.load(MODELS / "hh_composed.model")
    n, dt, duration = 2000, 0.025, 20.0 if quick else 100.0
    drive = np.linspace(2.0, 20.0, n)
    out = {"n": n, "duration_ms": duration, "dt_ms": dt}
    for backend in backends:
        runs = {
            name: partial(
                m.run, duration=duration, dt=dt, n=n, inputs={"I_ext": drive}, out_dir=out_dir, backend=backend
            )
            for name, m in (("hand_written", composed), ("imported", cell))
        }
        times = {name: [] for name in runs}
        for run in runs.values():  # compile (numba) and write the modules before timing
            run()
        for _ in range(repeats):  # interleaved, the best counts
            for name, run in runs.items():
                times[name].append(run().wall_time)
        for name, ts in times.items():
            out[f"{name}_{backend}_s"] = min(ts)
        out[f"imported_{backend}_ratio"] = out[f"hand_written_{backend}_s"] / out[f"imported_{backend}_s"]
    return out


# ----------------------------------------------------------------------------- output
def _fmt_rate(x: float) -> str:
    return f"{x / 1e6:8.3f}M"


IMPLEMENTATIONS = {  # name in the results -> label
    "naive": "naive numpy",
    "expert_numpy": "expert numpy",
    "numpy": "modelgen numpy",
    "expert_njit": "@njit loop",
    "numba": "modelgen numba",
}


def _row_text(row: dict) -> str:
    parts = [f"{row['workload']:<14} N={row['n']:>9,} steps={row['steps']:>6}"]
    for impl in IMPLEMENTATIONS:
        if f"{impl}_s" in row:
            ratio = f" ({row[f'{impl}_ratio']:5.2f}x {row[f'{impl}_rival']})" if f"{impl}_ratio" in row else ""
            parts.append(f"{impl} {_fmt_rate(row[f'{impl}_neuron_steps_per_s'])}{ratio}")
    return "  ".join(parts)


def print_table(rows) -> None:
    """Print the results as a markdown table: M neuron-steps/s, modelgen's ratios to its rivals, peak memory."""
    impls = [i for i in IMPLEMENTATIONS if any(f"{i}_s" in r for r in rows)]
    cols = ["workload", "N", *(IMPLEMENTATIONS[i] for i in impls), "peak MB " + "/".join(impls)]
    print(
        "\nM neuron-steps/s; modelgen numpy x expert numpy (x naive where no expert version), modelgen numba x @njit loop"
    )
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = [r["workload"], f"{r['n']:,}"]
        for i in impls:
            cell = f"{r[f'{i}_neuron_steps_per_s'] / 1e6:.3g}" if f"{i}_s" in r else "—"
            if f"{i}_ratio" in r:
                cell += f" ({r[f'{i}_ratio']:.2f}x{'' if r[f'{i}_rival'].startswith('expert') else ' naive'})"
            cells.append(cell)
        cells.append("/".join(f"{r[f'{i}_peak_MB']:.3g}" if f"{i}_peak_MB" in r else "—" for i in impls))
        print("| " + " | ".join(cells) + " |")


def plot(rows, backends, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    names = list(dict.fromkeys(r["workload"] for r in rows))
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        sel = [r for r in rows if r["workload"] == name]
        styles = {"naive": "k:o", "expert_numpy": "k--o", "numpy": "C0-o", "expert_njit": "C1--s", "numba": "C1-s"}
        for impl, style in styles.items():
            pts = [(r["n"], r[f"{impl}_neuron_steps_per_s"]) for r in sel if f"{impl}_neuron_steps_per_s" in r]
            if pts:
                ax.loglog(*zip(*pts), style, label=IMPLEMENTATIONS[impl])
        ax.set_title(name)
        ax.set_xlabel("neurons N")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("neuron-steps per second")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="N up to 10 000, short runs, one repeat")
    ap.add_argument("--sizes", help="comma-separated population sizes (default: 1,100,10000,100000,1000000)")
    ap.add_argument(
        "--workloads", help="comma-separated: " + ",".join(w.name for w in WORKLOADS) + ",cuba,build,float32,imported"
    )
    ap.add_argument("--backends", default=None, help="numpy,numba (default: numba too when installed)")
    ap.add_argument("--budget", type=float, default=None, help="seconds per timed run (default 1.5; quick 0.2)")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved repeats, best counts (default 3; quick 1)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results.json"), help="where to write the results")
    ap.add_argument(
        "--plot", default=str(ROOT / "benchmarks" / "throughput.png"), help="PNG of throughput vs N ('' for none)"
    )
    args = ap.parse_args(argv)

    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else (QUICK_SIZES if args.quick else FULL_SIZES)
    budget = args.budget or (0.2 if args.quick else 1.5)
    repeats = args.repeats or (1 if args.quick else 3)
    backends = args.backends.split(",") if args.backends else (["numpy", "numba"] if _has_numba() else ["numpy"])
    chosen = (
        set(args.workloads.split(","))
        if args.workloads
        else {w.name for w in WORKLOADS} | {"cuba", "build", "float32", "imported"}
    )
    net_sizes = tuple(
        s for s in ((1000, 4000) if args.quick else (1000, 4000, 16000, 64000)) if s <= max(max(sizes), 1000)
    )

    info = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "modelgen": modelgen.__version__,
        "quick": args.quick,
        "budget_s": budget,
        "repeats": repeats,
    }
    if "numba" in backends:
        import numba

        info["numba"] = numba.__version__
    print(f"modelgen benchmarks: {info}", flush=True)
    results = {"info": info, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp)
        with np.errstate(all="ignore"):
            for w in WORKLOADS:
                if w.name in chosen:
                    results["rows"] += bench_population(w, sizes, budget, repeats, backends, out_dir)
            if "cuba" in chosen:
                results["rows"] += bench_network(net_sizes, budget, repeats, out_dir)
            if "float32" in chosen:
                results["float32"] = bench_float32(out_dir, backends)
                print(f"  float32: {results['float32']}", flush=True)
            if "imported" in chosen:
                results["imported"] = bench_imported(out_dir, backends, repeats, args.quick)
                print(f"  imported hh.mod vs hh_composed.model: {results['imported']}", flush=True)
        if "build" in chosen:
            results["build"] = bench_build(out_dir, backends)
            print(f"  build: {json.dumps(results['build'], indent=None)}", flush=True)
    print_table(results["rows"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
        print(f"wrote {args.json}")
    if args.plot and results["rows"]:
        plot(results["rows"], backends, Path(args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())

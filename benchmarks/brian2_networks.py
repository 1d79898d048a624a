"""Run and time the CUBA and COBA benchmark networks in Brian2, for comparison with modelgen.

Needs Brian2 (not a modelgen dependency), e.g. in its own environment:
    python -m venv /tmp/b2 && /tmp/b2/bin/pip install brian2 "numpy<2" cython
    /tmp/b2/bin/python benchmarks/brian2_networks.py cuba coba --targets numpy,cython --json out.json
benchmarks/networks.py runs it in a subprocess per network and target (``--brian2-python``) and puts
its figures beside modelgen's. Compare also with
    modelgen run models/cuba.network --duration 1s --dt 0.1ms --seed 1

The equations, parameters and initial values are those of models/cuba_lif.model,
models/coba_lif.model and the .network files (which follow the benchmark's Brian scripts):
CUBA integrated exactly, COBA by exponential Euler (Brian2's updates every state from the values
at t; modelgen's decays the conductances first, then V with them), threshold V > -50 mV, reset to
-60 mV, 5 ms refractory (V held), no self-connections, a spike felt from the next step on.
``--n`` scales both networks as benchmarks/networks.py does: 80 % excitatory, connection
probability min(1, 80/N) (80 inputs per neuron on average, as at N = 4000), weights unchanged.

What is measured, per network and code-generation target (runtime mode):
  build_s    creating the groups, drawing the connectivity (``Synapses.connect``) and the initial
             values: on the first build, generating (and with cython compiling) that code too;
  run_s      wall time of ``Network.run(duration)``: its preparation (``before_run``: code objects
             generated, and on the cython target compiled or loaded from the cache) plus the loop;
  loop_s     Brian2's own time of the loop alone (``device._last_run_time``, the figure Brian2
             reports after a run), without that preparation.
The first build and run of a process (``first_*``) generate and compile everything: a fresh Cython
cache directory is used unless ``--cache-dir`` is given, so that it is a true cold start. The same
network (same seed) is then built and run again in the same process with everything cached: those
warm figures (the best of ``--repeats``) are the fair ones to compare. Every seed after the first
adds one warm run, for its rates and CVs. ``peak_rss_MB`` is the process's peak resident memory,
``base_rss_MB`` its resident memory with Brian2 imported, before building (one network and
target per process for figures of their own).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measures import events_of, peak_rss_mb, rate_and_cv, rss_mb  # noqa: E402

PAPER_N = 4000
INPUTS_PER_NEURON = 80  # 2 % of 4000


def sizes(n: int) -> tuple[int, float]:
    """Return (excitatory neurons, connection probability) of a network of n neurons."""
    return int(round(0.8 * n)), min(1.0, INPUTS_PER_NEURON / n)


def build(kind: str, n: int, seed_value: int):
    """Return (brian2 Network, neuron group, [excitatory, inhibitory] Synapses, SpikeMonitor) of CUBA or COBA."""
    from brian2 import Network, NeuronGroup, SpikeMonitor, Synapses, ms, mV, nS, pF, seed, start_scope

    start_scope()
    gc.collect()  # the previous build's objects gone, their names are free: the same names, the same code, no recompile
    seed(seed_value)
    n_e, p = sizes(n)
    ns = {"taum": 20 * ms, "taue": 5 * ms, "taui": 10 * ms, "Vt": -50 * mV, "Vr": -60 * mV, "n_e": n_e}
    if kind == "cuba":
        ns.update(El=-49 * mV, we=1.62 * mV, wi=-9 * mV)
        eqs = """dv/dt = (ge + gi - (v - El))/taum : volt (unless refractory)
                 dge/dt = -ge/taue : volt
                 dgi/dt = -gi/taui : volt"""
        P = NeuronGroup(
            n, eqs, threshold="v > Vt", reset="v = Vr", refractory=5 * ms, method="exact", namespace=ns, name="neurons"
        )
        P.v = "Vr + rand()*(Vt - Vr)"
    elif kind == "coba":
        ns.update(El=-60 * mV, Ee=0 * mV, Ei=-80 * mV, gl=10 * nS, C=200 * pF, we=6 * nS, wi=67 * nS)
        eqs = """dv/dt = (gl*(El - v) + ge*(Ee - v) + gi*(Ei - v))/C : volt (unless refractory)
                 dge/dt = -ge/taue : siemens
                 dgi/dt = -gi/taui : siemens"""
        P = NeuronGroup(
            n,
            eqs,
            threshold="v > Vt",
            reset="v = Vr",
            refractory=5 * ms,
            method="exponential_euler",
            namespace=ns,
            name="neurons",
        )
        P.v = "-65*mV + 5*mV*randn()"
        P.ge = "(4 + 1.5*randn())*10*nS"
        P.gi = "(20 + 12*randn())*10*nS"
    else:
        raise SystemExit(f"unknown network {kind!r}: write cuba or coba")
    Ce = Synapses(P, P, on_pre="ge += we", namespace=ns, name="excitatory")
    Ci = Synapses(P, P, on_pre="gi += wi", namespace=ns, name="inhibitory")
    Ce.connect("i < n_e and i != j", p=p, namespace=ns)
    Ci.connect("i >= n_e and i != j", p=p, namespace=ns)
    M = SpikeMonitor(P, name="spikes")
    return Network(P, Ce, Ci, M), P, (Ce, Ci), M


def simulate(kind: str, n: int, seed_value: int, duration_ms: float) -> dict:
    """Return the timings, synaptic events and per-population rate and CV of one build and run (see the module's doc)."""
    from brian2 import ms
    from brian2.devices.device import get_device

    start = time.perf_counter()
    net, P, synapses, M = build(kind, n, seed_value)
    built = time.perf_counter()
    net.run(duration_ms * ms)
    ran = time.perf_counter()
    i, t = np.asarray(M.i[:]), np.asarray(M.t[:] / ms)
    out_degree = sum(np.bincount(np.asarray(s.i[:]), minlength=n) for s in synapses)
    n_e, _ = sizes(n)
    populations = {}
    for name, sel, size in (("E", i < n_e, n_e), ("I", i >= n_e, n - n_e)):
        rate, cv = rate_and_cv(i[sel], t[sel], size, duration_ms)
        populations[name] = {"rate_Hz": rate, "cv_isi": cv}
    return {
        "seed": seed_value,
        "build_s": built - start,
        "run_s": ran - built,
        "loop_s": float(get_device()._last_run_time),
        "spikes": int(i.size),
        "synapses": int(sum(len(s) for s in synapses)),
        "synaptic_events": events_of(i, out_degree),
        "populations": populations,
    }


def measure(kind: str, target: str, n: int, seeds: list[int], duration_ms: float, dt_ms: float, repeats: int) -> dict:
    """Return the cold and warm figures of one network on one target (see the module's doc)."""
    from brian2 import defaultclock, ms, prefs

    base_rss_mb = rss_mb()  # Brian2 imported, nothing built
    prefs.codegen.target = target
    defaultclock.dt = dt_ms * ms
    cold = simulate(kind, n, seeds[0], duration_ms)
    warm = [simulate(kind, n, seeds[0], duration_ms) for _ in range(max(1, repeats))]
    best = min(warm, key=lambda r: r["run_s"])
    others = [simulate(kind, n, s, duration_ms) for s in seeds[1:]]
    return {
        "network": kind,
        "implementation": f"brian2-{target}",
        "n": n,
        "duration_ms": duration_ms,
        "dt_ms": dt_ms,
        "first_build_s": cold["build_s"],
        "first_run_s": cold["run_s"],
        "first_loop_s": cold["loop_s"],
        "build_s": min(r["build_s"] for r in warm),
        "run_s": best["run_s"],
        "loop_s": min(r["loop_s"] for r in warm),
        "synapses": best["synapses"],
        "synaptic_events": best["synaptic_events"],
        "synaptic_events_per_s": best["synaptic_events"] / best["run_s"],
        "spikes": best["spikes"],
        "populations": best["populations"],
        "seeds": {str(r["seed"]): r["populations"] for r in [best, *others]},
        "base_rss_MB": base_rss_mb,
        "peak_rss_MB": peak_rss_mb(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("networks", nargs="*", default=["cuba", "coba"], help="cuba and/or coba")
    parser.add_argument("--targets", default="numpy,cython", help="Brian2 code-generation targets (runtime mode)")
    parser.add_argument("--seeds", default="1,2,3", help="seeds; the first is timed, the others add rates and CVs")
    parser.add_argument("--n", type=int, default=PAPER_N, help="neurons (80 inputs each on average)")
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated ms")
    parser.add_argument("--dt", type=float, default=0.1, help="time step, ms")
    parser.add_argument("--repeats", type=int, default=1, help="warm runs of the first seed (the best counts)")
    parser.add_argument("--cache-dir", help="Cython cache directory (default: a fresh one, so the first run compiles)")
    parser.add_argument("--json", help="write the results as JSON to this file ('-': stdout, nothing else printed)")
    args = parser.parse_args(argv)
    from brian2 import __version__, prefs

    with tempfile.TemporaryDirectory(prefix="brian2-cython-") as fresh:
        prefs.codegen.runtime.cython.cache_dir = args.cache_dir or fresh
        seeds = [int(s) for s in args.seeds.split(",")]
        results = []
        for kind in args.networks:
            for target in args.targets.split(","):
                r = measure(kind, target, args.n, seeds, args.duration, args.dt, args.repeats)
                results.append(r)
                if args.json != "-":
                    cells = "; ".join(
                        f"{p}: {v['rate_Hz']:.2f} Hz, CV {v['cv_isi']:.2f}" for p, v in r["populations"].items()
                    )
                    print(
                        f"{kind} brian2 {target} (N={args.n}, seed {seeds[0]}): {cells}; "
                        f"first build {r['first_build_s']:.2f} s, first run {r['first_run_s']:.2f} s; "
                        f"warm: build {r['build_s']:.2f} s, run {r['run_s']:.3f} s (loop {r['loop_s']:.3f} s)",
                        flush=True,
                    )
    doc = {"brian2": __version__, "python": platform.python_version(), "numpy": np.__version__, "results": results}
    if args.json == "-":
        print(json.dumps(doc))
    elif args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time Brian2 (cython target) and modelgen's numba backend on cheap models, in the same process.

Needs Brian2 and Cython (not modelgen dependencies) and a C compiler, e.g. in its own environment:
    python -m venv /tmp/b2 && /tmp/b2/bin/pip install brian2 cython numba "numpy<2" -e .
    /tmp/b2/bin/python benchmarks/brian2_populations.py --n 10000
Workloads: LIF (models/lif.model: exponential Euler, refractory), Izhikevich
(models/izhikevich.model: rk4, reset) and FitzHugh-Nagumo (benchmarks/fhn.model: rk4, upward
crossing), N neurons with one drive each, spikes recorded, V of neuron 0 recorded. Both run the
same equations, scheme and dt; compilation is left out (a short run of each first); the best of
--repeats interleaved runs counts. Brian2's time is that of ``Network.run`` less that of a
10-step run of the same network (which measures its preparation: its Python loop over time
steps and code objects is included), modelgen's the loop time it reports. Printed: M
neuron-steps per second, the ratio (Brian2's time / modelgen's: above 1, modelgen is faster) and
the spike counts of both (equal up to rounding).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from brian2 import (
    Network,
    NeuronGroup,
    SpikeMonitor,
    StateMonitor,
    defaultclock,
    ms,
    mV,
    nS,
    pA,
    pF,
    prefs,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import modelgen  # noqa: E402


def _lif(n: int, drive: np.ndarray) -> NeuronGroup:
    eqs = """dV/dt = (g_L*(E_L - V) + g_syn*(E_syn - V) + I_ext)/C : volt (unless refractory)
             dg_syn/dt = -g_syn/tau_syn : siemens
             I_ext : amp (constant)"""
    ns = {"C": 200 * pF, "g_L": 10 * nS, "E_L": -65 * mV, "E_syn": 0 * mV, "tau_syn": 5 * ms}
    g = NeuronGroup(
        n, eqs, threshold="V > -50*mV", reset="V = -65*mV", refractory=2 * ms, method="exponential_euler", namespace=ns
    )
    g.V = -65 * mV
    g.I_ext = drive * pA
    return g


def _izhikevich(n: int, drive: np.ndarray) -> NeuronGroup:
    eqs = """dv/dt = 0.04/ms/mV*v**2 + 5/ms*v + 140*mV/ms - u + I : volt
             du/dt = a*(b*v - u) : volt/second
             I : volt/second (constant)"""
    ns = {"a": 0.02 / ms, "b": 0.2 / ms}
    g = NeuronGroup(n, eqs, threshold="v > 30*mV", reset="v = -65*mV; u += 8*mV/ms", method="rk4", namespace=ns)
    g.v = -65 * mV
    g.u = "0.2/ms * v"
    g.I = drive * mV / ms
    return g


def _fhn(n: int, drive: np.ndarray) -> NeuronGroup:
    eqs = """dv/dt = (v - v**3/3 - w + I)/tau_v : 1
             dw/dt = (v + a - b*w)/tau_w : 1
             I : 1 (constant)"""
    ns = {"a": 0.7, "b": 0.8, "tau_v": 1 * ms, "tau_w": 12.5 * ms}
    # an upward crossing of v = 1, as modelgen's threshold without reset: refractory while above
    g = NeuronGroup(n, eqs, threshold="v > 1", refractory="v > 1", method="rk4", namespace=ns)
    g.v, g.w = -1.2, -0.6
    g.I = drive
    return g


# name: (modelgen model file, its input, dt in ms, drive from .. to, Brian2 group maker, recorded variable)
WORKLOADS = {
    "lif": (ROOT / "models" / "lif.model", "I_ext", 0.1, (100.0, 400.0), _lif, "V"),
    "izhikevich": (ROOT / "models" / "izhikevich.model", "I", 0.05, (2.0, 15.0), _izhikevich, "v"),
    "fhn": (ROOT / "benchmarks" / "fhn.model", "I", 0.05, (0.3, 1.0), _fhn, "v"),
}


def brian2_run(make, var: str, n: int, drive: np.ndarray, dt: float, duration: float) -> tuple[float, int]:
    """Return (seconds in Network.run's loop over time steps, spike count) of one Brian2 run."""
    defaultclock.dt = dt * ms
    group = make(n, drive)
    spikes = SpikeMonitor(group)
    trace = StateMonitor(group, var, record=0)
    net = Network(group, spikes, trace)
    start = time.perf_counter()
    net.run(duration * ms)
    whole = time.perf_counter() - start
    count = int(spikes.num_spikes)
    # Network.run also prepares the run (checks, code objects) each time: a run of 10 steps on the
    # same network measures that, and the loop's time is the rest
    start = time.perf_counter()
    net.run(10 * dt * ms)
    return whole - (time.perf_counter() - start), count


def modelgen_run(
    model, input_name: str, n: int, drive: np.ndarray, dt: float, duration: float, out_dir
) -> tuple[float, int]:
    """Return (loop seconds, spike count) of one modelgen numba run."""
    r = model.run(
        duration=duration, dt=dt, n=n, inputs={input_name: drive}, record_indices=[0], backend="numba", out_dir=out_dir
    )
    return r.wall_time, int(r.spike_t.size)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--duration", type=float, default=200.0, help="ms per run (default 200)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--target", default="cython", help="Brian2's codegen target (cython, numpy)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    args = ap.parse_args(argv)
    prefs.codegen.target = args.target
    out_dir = Path("/tmp") / "modelgen_brian2_bench"
    print(f"N = {args.n}, {args.duration:g} ms per run, Brian2 target {args.target}, best of {args.repeats}")
    for name in args.workloads.split(","):
        path, input_name, dt, (lo, hi), make, var = WORKLOADS[name]
        drive = np.linspace(lo, hi, args.n)
        model = modelgen.load(path)
        modelgen_run(model, input_name, args.n, drive, dt, 2 * dt, out_dir)  # compile
        brian2_run(make, var, args.n, drive, dt, 2 * dt)
        times = {"brian2": [], "modelgen": []}
        counts = {}
        for _ in range(args.repeats):
            times["brian2"].append(b := brian2_run(make, var, args.n, drive, dt, args.duration))
            times["modelgen"].append(m := modelgen_run(model, input_name, args.n, drive, dt, args.duration, out_dir))
            counts = {"brian2": b[1], "modelgen": m[1]}
        best = {k: min(t for t, _ in v) for k, v in times.items()}
        steps = int(round(args.duration / dt))
        rate = {k: args.n * steps / v / 1e6 for k, v in best.items()}
        print(
            f"{name:<11} Brian2 {args.target} {rate['brian2']:8.2f} M/s   modelgen numba {rate['modelgen']:8.2f} M/s"
            f"   ratio {best['brian2'] / best['modelgen']:5.2f}x   spikes {counts['brian2']} / {counts['modelgen']}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

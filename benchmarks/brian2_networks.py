"""Run the CUBA and COBA benchmark networks in Brian2, for comparison with modelgen.

Needs Brian2 (not a modelgen dependency), e.g. in its own environment:
    python -m venv /tmp/b2 && /tmp/b2/bin/pip install brian2 "numpy<2"
    /tmp/b2/bin/python benchmarks/brian2_networks.py cuba coba
and compare with
    modelgen run models/cuba.network --duration 1s --dt 0.1ms --seed 1
The equations, parameters and initial values are those of models/cuba_lif.model,
models/coba_lif.model and the .network files (which follow the benchmark's Brian scripts).
"""

import sys
import time

import numpy as np
from brian2 import (
    NeuronGroup,
    SpikeMonitor,
    Synapses,
    defaultclock,
    ms,
    mV,
    nS,
    pF,
    prefs,
    run,
    second,
    seed,
    start_scope,
)


def simulate(kind: str, seed_value: int):
    """Return ({population: (rate Hz, mean ISI CV)}, wall seconds) of one 1 s run."""
    start_scope()
    seed(seed_value)
    prefs.codegen.target = "numpy"
    defaultclock.dt = 0.1 * ms
    ns = {"taum": 20 * ms, "taue": 5 * ms, "taui": 10 * ms, "Vt": -50 * mV, "Vr": -60 * mV}
    if kind == "cuba":
        ns.update(El=-49 * mV, we=1.62 * mV, wi=-9 * mV)
        eqs = """dv/dt = (ge + gi - (v - El))/taum : volt (unless refractory)
                 dge/dt = -ge/taue : volt
                 dgi/dt = -gi/taui : volt"""
        P = NeuronGroup(4000, eqs, threshold="v > Vt", reset="v = Vr", refractory=5 * ms, method="exact", namespace=ns)
        P.v = "Vr + rand()*(Vt - Vr)"
    else:
        ns.update(El=-60 * mV, Ee=0 * mV, Ei=-80 * mV, gl=10 * nS, C=200 * pF, we=6 * nS, wi=67 * nS)
        eqs = """dv/dt = (gl*(El - v) + ge*(Ee - v) + gi*(Ei - v))/C : volt (unless refractory)
                 dge/dt = -ge/taue : siemens
                 dgi/dt = -gi/taui : siemens"""
        P = NeuronGroup(
            4000, eqs, threshold="v > Vt", reset="v = Vr", refractory=5 * ms, method="exponential_euler", namespace=ns
        )
        P.v = "-65*mV + 5*mV*randn()"
        P.ge = "(4 + 1.5*randn())*10*nS"
        P.gi = "(20 + 12*randn())*10*nS"
    Ce = Synapses(P, P, on_pre="ge += we", namespace=ns)
    Ci = Synapses(P, P, on_pre="gi += wi", namespace=ns)
    Ce.connect("i < 3200 and i != j", p=0.02)
    Ci.connect("i >= 3200 and i != j", p=0.02)
    M = SpikeMonitor(P)
    start = time.time()
    run(1 * second)
    wall = time.time() - start
    i, t = np.asarray(M.i), np.asarray(M.t / ms)
    stats = {}
    for name, sel, n in (("E", i < 3200, 3200), ("I", i >= 3200, 800)):
        cvs = []
        for k in np.unique(i[sel]):
            isi = np.diff(np.sort(t[sel][i[sel] == k]))
            if isi.size >= 2:
                cvs.append(isi.std() / isi.mean())
        stats[name] = (sel.sum() / n, float(np.mean(cvs)))
    return stats, wall


if __name__ == "__main__":
    for kind in sys.argv[1:] or ["cuba", "coba"]:
        for s in (1, 2, 3):
            stats, wall = simulate(kind, s)
            cells = "; ".join(f"{p}: {r:.2f} Hz, CV {cv:.2f}" for p, (r, cv) in stats.items())
            print(f"{kind} seed {s}: {cells}  ({wall:.1f} s)")

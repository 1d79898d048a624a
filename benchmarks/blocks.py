"""Time modelgen's numpy backend at several block sizes against the expert numpy, in one process.

    python benchmarks/blocks.py izhikevich --n 100000 --blocks 16384,32768,65536 --rounds 9

The vectorised step runs over blocks of ``BLOCK`` neurons (a constant at the top of the generated
module, chosen by ``modelgen/backends/numpy/backend.py``). This sets the loaded module's
``BLOCK`` to each size in turn and times a run with it, then the suite's expert numpy version,
round after round, so that a change of the machine's load touches every size alike. Printed: for
each size, the median over the rounds of (expert time / modelgen time), and the ratio of the best
times (> 1: modelgen faster). The block size changes no number of the result (each neuron's
arithmetic is the same in any block): a short run with each size is compared first, and the
script exits 1 where they differ. Workloads are those of ``run.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as suite  # noqa: E402

import modelgen  # noqa: E402
import modelgen.runtime as runtime  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workload", choices=[w.name for w in suite.WORKLOADS])
    ap.add_argument("--n", type=int, default=100_000, help="neurons (default 100000)")
    ap.add_argument("--blocks", default="16384,32768,65536", help="block sizes, comma-separated")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=None, help="steps per run (default: about 0.3 s of work)")
    args = ap.parse_args(argv)
    blocks = [int(b) for b in args.blocks.split(",")]

    loaded = []
    load_generated = runtime.load_generated

    def load(path, expected_hash=None):
        module = load_generated(path, expected_hash)
        loaded.append(module)
        return module

    runtime.load_generated = load
    w = next(x for x in suite.WORKLOADS if x.name == args.workload)
    model = modelgen.load(suite.MODELS / w.model)
    expert = w.references(["numpy"])["expert_numpy"]
    out = tempfile.mkdtemp()
    n = args.n
    steps = args.steps or max(3, 30_000_000 // n // {"hh_rk4": 40, "hh_exp_euler": 12, "izhikevich": 10}.get(w.name, 3))
    suite.run_modelgen(w, model, n, 2, out)  # builds and loads the module
    module = loaded[-1]
    generated = module.BLOCK
    times: dict[int, list[float]] = {b: [] for b in blocks}
    expert_times = []
    same = True
    try:
        # every size gives the same numbers: V of 50 neurons spread over all blocks, and the spikes
        first = None
        for b in blocks:
            module.BLOCK = b
            r = suite.run_modelgen(w, model, n, 50, out, n_rec=n)
            state = model.states[0]
            got = (r[state][:: max(1, n // 50)], r.spike_i, r.spike_t)
            first = first or got
            same = same and all(np.array_equal(x, y) for x, y in zip(got, first))
        for _ in range(args.rounds):
            for b in blocks:
                module.BLOCK = b
                times[b].append(suite.run_modelgen(w, model, n, steps, out).wall_time)
            expert_times.append(expert(n, steps, w.dt, w.inputs(n))[0])
    finally:
        module.BLOCK = generated
    e = np.array(expert_times)
    print(f"{w.name}, N = {n}, {steps} steps, {args.rounds} rounds; the generated module's BLOCK is {generated}")
    print(f"  the same numbers with every block size: {same}")
    for b, t in times.items():
        t = np.array(t)
        print(f"  BLOCK {b:>8}: {float(np.median(e / t)):.3f}x the expert (median), {e.min() / t.min():.3f}x (best)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

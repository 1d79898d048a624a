"""Time a hand-edited copy of a generated module against the module as generated and the expert version.

    python benchmarks/variant.py WORKLOAD EDITED.py [--n 1] [--backend numba] [--repeats 9]

To try a change to the generated code before changing the generator: build the module
(``modelgen build models/lif.model --backend numba -o /tmp/v``), edit a copy, and run this. It
loads the copy in place of the module for one side of each pair (its ``cache=True`` turned off,
since numba cannot cache a module loaded from a file twice), checks that both give the same
spikes and reports V's largest difference, then times the generated module, the copy and the
suite's expert version (the ``@njit`` loop for numba, the expert numpy otherwise) in turn. The
numbers are ns per neuron-step (best of the repeats), and the medians of the paired ratios against
the expert (> 1: faster). Workloads are those of ``run.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
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
    ap.add_argument("edited", type=Path, help="the edited copy of the generated module")
    ap.add_argument("--n", type=int, default=1, help="neurons (default 1)")
    ap.add_argument("--backend", default="numba", choices=["numba", "numpy"])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--steps", type=int, default=None, help="steps per run (default: about 0.2 s of work)")
    args = ap.parse_args(argv)

    edited = Path(tempfile.mkdtemp()) / "edited_module.py"
    edited.write_text(args.edited.read_text().replace("cache=True", "cache=False"))
    use_edited = {"on": False}
    loaded: dict[str, object] = {}
    numbering = itertools.count()
    load_generated = runtime.load_generated

    def load(path, expected_hash=None):
        if not use_edited["on"]:
            return load_generated(path, expected_hash)
        if "module" not in loaded:
            spec = importlib.util.spec_from_file_location(f"edited_{next(numbering)}", edited)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            loaded["module"] = module
        return loaded["module"]

    runtime.load_generated = load
    w = next(x for x in suite.WORKLOADS if x.name == args.workload)
    model = modelgen.load(suite.MODELS / w.model)
    expert = w.references([args.backend])["expert_njit" if args.backend == "numba" else "expert_numpy"]
    out = tempfile.mkdtemp()
    n = args.n
    steps = args.steps or max(200, (2_000_000 if args.backend == "numba" else 300_000) // n // 10)

    def run(edited_side: bool, neurons: int, k: int, n_rec: int = 1):
        use_edited["on"] = edited_side
        return suite.run_modelgen(w, model, neurons, k, out, args.backend, n_rec=min(neurons, n_rec))

    for side in (False, True):  # compile or warm up both, the per-neuron and the block kernels
        run(side, n, 2)
        run(side, 4096, 2)
    expert(n, 2, w.dt, w.inputs(n))
    a, b = run(False, n, 2000, n), run(True, n, 2000, n)
    state = model.states[0]
    same = np.array_equal(a.spike_i, b.spike_i) and np.array_equal(a.spike_t, b.spike_t)
    print(f"max |d{state}| edited vs generated: {float(np.abs(a[state] - b[state]).max()):.3g}; same spikes: {same}")
    times = {"generated": [], "edited": [], "expert": []}
    for _ in range(args.repeats):
        times["generated"].append(run(False, n, steps).wall_time)
        times["edited"].append(run(True, n, steps).wall_time)
        times["expert"].append(expert(n, steps, w.dt, w.inputs(n))[0])
    t = {k: np.array(v) for k, v in times.items()}
    per = {k: f"{v.min() / steps / n * 1e9:.2f}" for k, v in t.items()}
    print(f"{w.name}, N = {n}, {args.backend}: ns per neuron-step {per}")
    for side in ("generated", "edited"):
        print(f"  {side} / expert: {float(np.median(t['expert'] / t[side])):.3f} (median of paired ratios)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

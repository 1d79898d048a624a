"""Write tests/pinned/outputs.npz: what every bundled model and network gives today.

Run once, before a change that must not change results (the backend reshaping of issue 12
was the first): ``python tests/pinned/make_pins.py``. tests/test_pinned.py then compares
every later version with these stored arrays, spike for spike. The runs here are the
single source of the cases (test_pinned.py imports CASES and run_case).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
OUT = Path(__file__).resolve().parent / "outputs.npz"

# per model: the input driven across neurons (0 .. top, in the model's unit) and the methods pinned
DRIVE = {"uA/cm^2": 20.0, "pA": 1000.0, "mV/ms": 15.0, "1": 1.0}
METHODS = ("auto", "euler", "rk2", "rk4", "exponential_euler")
SIZES = (3, 40)  # the per-neuron kernel, and the vectorised step (numpy) / block kernel (numba)
EVERY = 10  # traces are stored at every 10th step (spikes: all of them), to keep the file small
# bundled networks too large to run here on every test run (checked by their own slow tests)
UNPINNED = {"microcircuit.network": "0.3 billion synapses: 30 s and 6 GiB to build (tests/test_network_build.py)"}


def model_cases() -> list[tuple[str, str, str, int]]:
    """(model file, method, backend, n) for every bundled model."""
    import modelgen

    out = []
    for f in sorted(MODELS.glob("*.model")):
        m = modelgen.load(f)
        for method in METHODS:
            if method != "auto":
                try:
                    m.plan(method)
                except Exception:
                    continue
            for backend in ("numpy", "numba"):
                if backend == "numba" and method != "auto":
                    continue  # numba prints the same step program; one method each keeps compiles few
                for n in SIZES:
                    out.append((f.name, method, backend, n))
    return out


def network_files() -> list[Path]:
    """The bundled networks that are pinned (all but UNPINNED)."""
    return [f for f in sorted(MODELS.glob("*.network")) if f.name not in UNPINNED]


def run_model(name: str, method: str, backend: str, n: int, out_dir) -> dict[str, np.ndarray]:
    import modelgen

    m = modelgen.load(MODELS / name)
    (inp, unit), *_ = m.inputs.items()
    drive = np.linspace(0.0, DRIVE[unit], n)
    r = m.run(
        duration="40 ms",
        dt="0.01 ms",
        n=n,
        inputs={inp: drive},
        method=None if method == "auto" else method,
        record=list(m.states),
        record_indices=np.array([0, n // 2, n - 1]),
        backend=backend,
        out_dir=out_dir,
        seed=1,
    )
    out = {s: np.asarray(r[s])[:, ::EVERY] for s in m.states}
    out["spike_i"], out["spike_t"] = np.asarray(r.spike_i), np.asarray(r.spike_t)
    return out


def run_network(name: str, out_dir) -> dict[str, np.ndarray]:
    from modelgen.network import load_network

    net = load_network(MODELS / name, seed=3)
    r = net.run("40 ms", "0.01 ms", out_dir=out_dir)
    out = {f"trace:{k}": np.asarray(v)[:, ::EVERY] for k, v in r.traces.items()}
    out["spike_pop"], out["spike_i"], out["spike_t"] = r.spike_pop, r.spike_i, r.spike_t
    return out


def key(*parts) -> str:
    return "|".join(str(p) for p in parts)


def main() -> None:
    import tempfile

    arrays = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in model_cases():
            for k, v in run_model(*case, tmp).items():
                arrays[key(*case, k)] = v
            print(case, "spikes:", arrays[key(*case, "spike_i")].size, file=sys.stderr)
        for f in network_files():
            for k, v in run_network(f.name, tmp).items():
                arrays[key(f.name, k)] = v
            print(f.name, "spikes:", arrays[key(f.name, "spike_i")].size, file=sys.stderr)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {len(arrays)} arrays to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()

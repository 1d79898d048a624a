"""The cuda backend on one GPU: throughput against a hand-fused kernel, compile times, spike checks.

    python benchmarks/gpu.py                 # HH (exponential Euler, rk4), LIF, Izhikevich at N = 1e5, 1e6, 1e7
    python benchmarks/gpu.py --quick         # N = 1e5, 1e6 only (a minute)
    python benchmarks/gpu.py --dry-run       # no GPU: generate every source and compile it to PTX with nvcc

Each case runs 10^4 steps of 0.01 ms in float64 and float32 through ``Model.run(backend="cuda")``
(its loop time: kernel launches, input and state copies and spike collection included), the drive
spread across neurons. The baseline is a hand-written CUDA kernel of the same HH equations
(exponential Euler, all steps in one launch, state in registers; float32 with fast math) in the
same process. Spike counts of 16 sampled neurons are checked against the numpy backend (float64:
exactly; float32: within one spike). Prints a table (G neuron-steps/s, ratio to the baseline,
compile time cold and cached) and writes JSON (--json). Budget: under 5 minutes of GPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
STEPS, DT = 10_000, 0.01
CASES = [  # (label, model file, method, input, drive across neurons 0..top)
    ("HH expE", "hh.model", "exponential_euler", "I_ext", "uA/cm^2", 20.0),
    ("HH rk4", "hh.model", "rk4", "I_ext", "uA/cm^2", 20.0),
    ("LIF", "lif.model", None, "I_ext", "pA", 1000.0),
    ("Izhikevich", "izhikevich.model", None, "I", "mV/ms", 15.0),
]
SAMPLES = 16

# The baseline: HH (hh.model's equations, exponential Euler as modelgen staggers it) hand-fused.
BASELINE = r"""
typedef REAL real;
__device__ __forceinline__ real exprel_(real x) { return x == (real)0 ? (real)1 : EXPM1(x) / x; }
extern "C" __global__ void hh_fused(int n, int steps, real dt, real* V_, real* m_, real* h_, real* n_,
                                    const real* I_, int* spikes) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    real V = V_[i], m = m_[i], h = h_[i], nn = n_[i], I = I_[i];
    int count = 0; bool above = V > (real)0;
    for (int k = 0; k < steps; ++k) {
        real am = (real)1 / exprel_((real)-0.1 * V - (real)4), bm = (real)4 * EXP(-(V + (real)65) / (real)18);
        real ah = (real)0.07 * EXP(-(V + (real)65) / (real)20), bh = (real)1 / ((real)1 + EXP(-(V + (real)35) / (real)10));
        real an = (real)0.1 / exprel_((real)-0.1 * V - (real)5.5), bn = (real)0.125 * EXP(-(V + (real)65) / (real)80);
        real sm = am + bm, sh = ah + bh, sn = an + bn;
        m = am / sm + (m - am / sm) * EXP(-sm * dt);
        h = ah / sh + (h - ah / sh) * EXP(-sh * dt);
        nn = an / sn + (nn - an / sn) * EXP(-sn * dt);
        real gna = (real)120 * m * m * m * h, gk = (real)36 * nn * nn * nn * nn, gl = (real)0.3;
        real G = -(gna + gk + gl), F0 = gna * (real)50 + gk * (real)-77 + gl * (real)-54.387 + I;
        real X = EXP(G * dt);
        V = V * X + F0 * (X - (real)1) / G;
        bool a = V > (real)0; count += a && !above; above = a;
    }
    V_[i] = V; m_[i] = m; h_[i] = h; n_[i] = nn; spikes[i] = count;
}
"""


def baseline_source(dtype: str) -> str:
    single = dtype == "float32"
    macros = (
        "#define REAL float\n#define EXP expf\n#define EXPM1 expm1f\n"
        if single
        else "#define REAL double\n#define EXP exp\n#define EXPM1 expm1\n"
    )
    return macros + BASELINE


def sizes(quick: bool) -> list[int]:
    return [10**5, 10**6] if quick else [10**5, 10**6, 10**7]


def dry_run(out: Path) -> list[dict]:
    """Generate every case's module and compile its sources (and the baseline's) to PTX with nvcc."""
    import modelgen
    from modelgen.backends import cuda

    nvcc = shutil.which("nvcc")
    rows = []
    for label, file, method, *_ in CASES:
        m = modelgen.load(MODELS / file)
        path = m.build(out, method, "cuda")
        for dtype in ("float64", "float32"):
            src = out / f"{path.stem}_{(method or 'auto')}_{dtype}.cu"
            src.write_text(
                cuda.kernel_source(
                    m.model, m.derivation, m.plan(method), dtype == "float32", m.build_hash(method, "cuda")
                )
            )
            rows.append({"case": label, "dtype": dtype, "ptx_s": _ptx(nvcc, src, dtype)})
    for dtype in ("float64", "float32"):
        src = out / f"baseline_{dtype}.cu"
        src.write_text(baseline_source(dtype))
        rows.append({"case": "baseline HH", "dtype": dtype, "ptx_s": _ptx(nvcc, src, dtype)})
    for r in rows:
        took = "skipped (no nvcc)" if r["ptx_s"] is None else f"{r['ptx_s']:.2f} s"
        print(f"{r['case']:<12} {r['dtype']:<8} nvcc -ptx: {took}")
    return rows


def _ptx(nvcc: str | None, src: Path, dtype: str) -> float | None:
    if nvcc is None:
        return None
    options = ["--use_fast_math"] if dtype == "float32" else []
    start = time.perf_counter()
    subprocess.run(
        [nvcc, "-ptx", "-arch=sm_90", "-std=c++17", *options, str(src), "-o", str(src.with_suffix(".ptx"))], check=True
    )
    return time.perf_counter() - start


def run_baseline(cp, n: int, dtype: str, drive: np.ndarray) -> tuple[float, np.ndarray]:
    """Return (G neuron-steps/s, spike counts) of the hand-fused HH kernel."""
    options = ("--std=c++17", "--use_fast_math") if dtype == "float32" else ("--std=c++17",)
    kernel = cp.RawModule(code=baseline_source(dtype), options=options).get_function("hh_fused")
    t = np.dtype(dtype).type
    import modelgen

    hh = modelgen.load(MODELS / "hh.model").load_module(None, None, backend="cuda")
    start_state = hh.initial_state(hh.PARAMETERS, {"I_ext": lambda t: 0.0}, 1)  # V = -65 mV, gates at rest
    V, m, h, nn = (cp.asarray(np.full(n, start_state[s][0], dtype=dtype)) for s in ("V", "m", "h", "n"))
    current = cp.asarray(drive.astype(dtype))
    spikes = cp.zeros(n, dtype=np.int32)
    args = (np.int32(n), np.int32(STEPS), t(DT), V, m, h, nn, current, spikes)
    grid = (-(-n // 128),)
    kernel(
        grid,
        (128,),
        (np.int32(n), np.int32(10), t(DT), V.copy(), m.copy(), h.copy(), nn.copy(), current, spikes.copy()),
    )
    cp.cuda.Device().synchronize()
    start = time.perf_counter()
    kernel(grid, (128,), args)
    cp.cuda.Device().synchronize()
    return n * STEPS / (time.perf_counter() - start) / 1e9, spikes.get()


def measure(quick: bool) -> list[dict]:
    import cupy as cp

    import modelgen

    rows = []
    for label, file, method, inp, unit, top in CASES:
        m = modelgen.load(MODELS / file)
        for dtype in ("float64", "float32"):
            module = m.load_module(None, method, backend="cuda")
            module._COMPILED.clear()
            start = time.perf_counter()
            module.compiled_kernel(cp, np.dtype(dtype))  # cold: CUPY_CACHE_DIR is a fresh folder
            cold = time.perf_counter() - start
            module._COMPILED.clear()
            start = time.perf_counter()
            module.compiled_kernel(cp, np.dtype(dtype))  # cached: CuPy's cache of this source
            cached = time.perf_counter() - start
            for n in sizes(quick):
                drive = np.linspace(0.0, top, n)
                module.SPIKE_ROWS = 4 * n
                r = m.run(
                    duration=f"{STEPS * DT} ms",
                    dt=f"{DT} ms",
                    n=n,
                    inputs={inp: f"linspace(0, {top}) {unit}"},
                    method=method,
                    backend="cuda",
                    dtype=dtype,
                    record=[],
                    record_indices=[],
                    seed=1,
                )
                rate = r.throughput / 1e9
                sample = np.linspace(0, n - 1, SAMPLES).astype(int)
                gpu_counts = np.bincount(r.spike_i, minlength=n)[sample]
                ref = m.run(
                    duration=f"{STEPS * DT} ms",
                    dt=f"{DT} ms",
                    n=SAMPLES,
                    inputs={inp: drive[sample]},
                    method=method,
                    record=[],
                    record_indices=[],
                )
                ref_counts = np.bincount(ref.spike_i, minlength=SAMPLES)
                tolerance = 0 if dtype == "float64" else 1
                row = {
                    "case": label,
                    "dtype": dtype,
                    "n": n,
                    "G_neuron_steps_s": rate,
                    "compile_cold_s": cold,
                    "compile_cached_s": cached,
                    "spikes_checked": bool(np.all(np.abs(gpu_counts - ref_counts) <= tolerance)),
                }
                if label == "HH expE":
                    base, base_spikes = run_baseline(cp, n, dtype, drive)
                    row["baseline_G"] = base
                    row["ratio"] = rate / base
                    row["baseline_spikes_checked"] = bool(np.all(np.abs(base_spikes[sample] - ref_counts) <= tolerance))
                rows.append(row)
                print(_line(row), flush=True)
    return rows


def _line(r: dict) -> str:
    base = f"{r['baseline_G']:8.1f} {r['ratio']:6.2f}" if "baseline_G" in r else f"{'':8} {'':6}"
    return (
        f"{r['case']:<11} {r['dtype']:<8} {r['n']:>9.0e} {r['G_neuron_steps_s']:8.2f} {base} "
        f"{r['compile_cold_s']:6.2f} {r['compile_cached_s']:6.3f}  {'ok' if r['spikes_checked'] else 'MISMATCH'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 1e5 and 1e6 only")
    parser.add_argument("--dry-run", action="store_true", help="no GPU: generate and compile to PTX with nvcc")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args(argv)
    if args.dry_run:
        with tempfile.TemporaryDirectory() as tmp:
            rows = dry_run(Path(tmp))
    else:
        os.environ.setdefault("CUPY_CACHE_DIR", tempfile.mkdtemp(prefix="cupy-cache-"))  # cold compiles are cold
        print(
            f"{'case':<11} {'dtype':<8} {'N':>9} {'G/s':>8} {'base G/s':>8} {'ratio':>6} {'cold s':>6} {'cached':>6}  spikes"
        )
        rows = measure(args.quick)
    if args.json:
        args.json.write_text(
            json.dumps({"date": time.strftime("%Y-%m-%d"), "dry_run": args.dry_run, "rows": rows}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

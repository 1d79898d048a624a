"""Networks on one GPU (``--backend cuda``): CUBA at N = 4,000 and 64,000, and the cortical microcircuit.

    python benchmarks/gpu_networks.py             # every case, float64 and float32, 1 s of biological time
    python benchmarks/gpu_networks.py --quick     # CUBA N = 4,000 only, 0.2 s
    python benchmarks/gpu_networks.py --dry-run   # no GPU: generate each network's program, compile it to PTX (nvcc)

Each case is built once (connectivity drawn on the host, timed apart) and run at dt = 0.1 ms through
``Network.run(backend="cuda")``; its wall time is the run loop's (launches, per-chunk copies of the
state, recordings and spikes included; compiling and uploading before the clock starts). Prints a
table (wall time, real-time factor = wall / biological time, M synaptic events/s, rates per
population) and writes JSON (--json). CUBA's rates should be numba's (about 6 Hz at N = 4,000,
seed 1); the microcircuit (models/microcircuit.network, skipped if absent) its populations' published
rates. Budget: a few minutes of GPU time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
DT = 0.1
MICROCIRCUIT = MODELS / "microcircuit.network"


def _cuba_network(n: int, workdir: Path):
    """Return CUBA with n neurons and 80 inputs per neuron (benchmarks/run.py's scaling)."""
    spec = importlib.util.spec_from_file_location("benchmark_run", ROOT / "benchmarks" / "run.py")
    module = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    if not hasattr(module, "_cuba_network"):
        spec.loader.exec_module(module)
    return module._cuba_network(n, workdir)


def cases(quick: bool) -> list[tuple[str, object]]:
    """Return (label, a function of the work folder that builds the network) of each case."""
    out = [("CUBA N=4000", lambda w: _cuba_network(4000, w))]
    if not quick:
        out.append(("CUBA N=64000", lambda w: _cuba_network(64000, w)))
        if MICROCIRCUIT.exists():
            from modelgen.network import load_network

            out.append(("microcircuit", lambda w: load_network(MICROCIRCUIT, seed=1)))
    return out


def dry_run(workdir: Path, quick: bool) -> list[dict]:
    """Generate each case's cuda program and compile its sources to PTX with nvcc; return a row per case and dtype."""
    from modelgen.backends import cuda
    from modelgen.network.compiled import layout_of
    from modelgen.network.run import _delays_in_steps

    rows = []
    for label, build in cases(quick):
        net = build(workdir)
        for proj in net.projections:
            proj.delays = _delays_in_steps(proj, DT)
        for dtype in ("float64", "float32"):
            start = time.perf_counter()
            text = cuda.BACKEND.generate_network(layout_of(net, None, dtype), "0" * 64)
            generate_s = time.perf_counter() - start
            namespace: dict = {}
            exec(compile(text.split("\n_COMPILED = {}")[0], label, "exec"), namespace)  # the module's constants
            src = workdir / f"{label.replace(' ', '_').replace('=', '')}_{dtype}.cu"
            src.write_text(namespace["CUDA_SOURCE"][dtype])
            start = time.perf_counter()
            cmd = ["nvcc", "-ptx", "-arch=sm_90", "-std=c++17", str(src), "-o", str(src.with_suffix(".ptx"))]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                raise SystemExit(f"{label} {dtype}: nvcc failed:\n{r.stderr}")
            rows.append(dict(case=label, dtype=dtype, generate_s=generate_s, ptx_s=time.perf_counter() - start))
            print(f"{label:14s} {dtype}: generated in {generate_s:.2f} s, PTX in {rows[-1]['ptx_s']:.2f} s")
    return rows


def measure(workdir: Path, quick: bool, duration: float) -> list[dict]:
    """Run each case on the GPU in float64 and float32; return a row per run."""
    rows = []
    for label, build in cases(quick):
        for dtype in ("float64", "float32"):
            start = time.perf_counter()
            net = build(workdir)
            build_s = time.perf_counter() - start
            r = net.run(duration, DT, out_dir=workdir / "gen", backend="cuda", dtype=dtype)
            rates = {p: round(float(r.rate(p)), 3) for p in r.populations}
            rows.append(
                dict(
                    case=label,
                    dtype=dtype,
                    neurons=int(net.n_neurons),
                    synapses=int(net.n_synapses),
                    build_s=build_s,
                    wall_s=r.wall_time,
                    realtime_factor=r.wall_time / (duration / 1000.0),
                    events_per_s=r.synaptic_events / r.wall_time,
                    spikes=int(r.spike_t.size),
                    rates_hz=rates,
                )
            )
            row = rows[-1]
            print(
                f"{label:14s} {dtype}: build {build_s:6.2f} s, run {row['wall_s']:7.3f} s "
                f"(real-time factor {row['realtime_factor']:.3f}), {row['events_per_s'] / 1e6:8.1f} M events/s, "
                f"rates {rates}"
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="CUBA N = 4,000 only, 0.2 s")
    parser.add_argument("--dry-run", action="store_true", help="no GPU: compile every case's sources to PTX")
    parser.add_argument("--duration", type=float, default=None, help="biological time in ms (default 1000)")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="gpu-networks-"))
    try:
        if args.dry_run:
            if shutil.which("nvcc") is None:
                print("nvcc is not installed: nothing to compile", file=sys.stderr)
                return 1
            rows = dry_run(workdir, args.quick)
        else:
            duration = args.duration or (200.0 if args.quick else 1000.0)
            rows = measure(workdir, args.quick, duration)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps({"dt": DT, "rows": rows}, indent=1, default=lambda x: np.asarray(x).tolist()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

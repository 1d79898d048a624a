"""Measure a sweep on Dask against one process: speed-up with local workers, overhead per chunk, worker memory.

    python benchmarks/dask_sweep.py                       # 2000 HH points x 200 ms, 1 and 2 workers
    python benchmarks/dask_sweep.py --points 20000 --duration "1000 ms"   # the issue's size (long on 2 cores)

Every measurement runs the same chunks (the chunk size Dask would choose for the largest
cluster measured), in this order: this process alone, then local clusters of 1 .. --workers
processes (cluster start-up left out: it is paid once per sweep). The tables must be equal
point for point. The overhead per chunk is measured with chunks of a single point and a few
steps on one worker: (time per chunk on the worker) - (time per chunk in this process).

Output: lines on stdout and, with --json, a JSON file.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import modelgen  # noqa: E402
from modelgen import distributed as D  # noqa: E402
from modelgen import sweep as S  # noqa: E402


def _worker_peak_rss() -> int:
    """Return the peak resident memory of this process, bytes (Linux: ru_maxrss is in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "hh.model"))
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--duration", default="200 ms")
    ap.add_argument("--dt", default="0.01 ms")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--overhead-chunks", type=int, default=40)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    m = modelgen.load(args.model)
    axis = S.parse_axis(f"0:{args.points - 1}:1 uA/cm^2", "I_ext", "input", m.model.input("I_ext"))
    axis = replace(axis, values=axis.values * 20.0 / max(1, args.points - 1))  # 0 .. 20 uA/cm^2
    plan = S.plan_sweep(m, [axis], duration=args.duration, dt=args.dt, seed=1)
    plan = replace(plan, chunk=min(plan.chunk, max(D.MIN_CHUNK_POINTS, -(-plan.n // (8 * args.workers)))))
    m.load_module()  # built once, outside the timings
    rows = {"points": plan.n, "chunk_points": plan.chunk, "chunks": plan.n_chunks, "duration": args.duration}
    neuron_steps = plan.n * plan.n_steps
    print(f"{m.name}: {plan.n} points x {args.duration} in {plan.n_chunks} chunks of {plan.chunk}")

    start = time.perf_counter()
    reference = S.run_chunks(plan).to_csv()
    rows["one_process_s"] = time.perf_counter() - start
    print(f"  one process:  {rows['one_process_s']:.2f} s, {neuron_steps / rows['one_process_s']:.3g} neuron-steps/s")

    tiny = S.plan_sweep(m, [axis], duration="0.1 ms", dt=args.dt, seed=1, chunk_points=1)
    tiny = replace(tiny, axes=(replace(axis, values=axis.values[: args.overhead_chunks]),))
    start = time.perf_counter()
    S.run_chunks(tiny)
    here_per_chunk = (time.perf_counter() - start) / tiny.n_chunks

    for workers in range(1, args.workers + 1):
        with D.connect(workers=workers) as client:
            if workers == 1:
                D.run_chunks_on(client, tiny)  # the first: plan sent, module loaded
                start = time.perf_counter()
                D.run_chunks_on(client, tiny)
                there_per_chunk = (time.perf_counter() - start) / tiny.n_chunks
                rows["overhead_per_chunk_ms"] = 1000 * (there_per_chunk - here_per_chunk)
                print(f"  overhead per chunk (after the first): {rows['overhead_per_chunk_ms']:.1f} ms")
            start = time.perf_counter()
            table = D.run_chunks_on(client, plan).to_csv()
            wall = time.perf_counter() - start
            rss = client.run(_worker_peak_rss)
        assert table == reference, f"{workers} worker(s) gave another table"
        rows[f"workers_{workers}_s"] = wall
        rows[f"workers_{workers}_max_rss_mb"] = max(rss.values()) / 2**20
        print(
            f"  {workers} worker(s): {wall:.2f} s, {neuron_steps / wall:.3g} neuron-steps/s, "
            f"x{rows['workers_1_s'] / wall:.2f} of one worker, x{rows['one_process_s'] / wall:.2f} of one process; "
            f"largest worker peak {rows[f'workers_{workers}_max_rss_mb']:.0f} MB"
        )
    rows["speedup_vs_one_worker"] = rows["workers_1_s"] / rows[f"workers_{args.workers}_s"]
    rows["machine"] = {"cpus": __import__("os").cpu_count(), "python": platform.python_version()}
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()

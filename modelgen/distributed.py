"""Sweeps on Dask: the chunks of a sweep run on the workers of a ``dask.distributed`` cluster.

A local cluster of N processes (``modelgen sweep --workers N``) or an existing one
(``--scheduler tcp://HOST:PORT``, a scheduler started with ``dask scheduler`` and workers with
``dask worker ADDRESS``). The sweep's plan (the checked model, the grid, the run settings) is
sent to every worker once; each chunk is a task that builds or loads the generated module on
its worker (modelgen's cache is shared by the workers of one machine) and returns its
measurements. Results come back as they finish, are handed to ``on_chunk`` (which saves them)
and merged in grid order: the table equals the single-process one point for point. Dask re-runs
the chunk of a worker lost mid-chunk elsewhere; chunks are kept by index, so none counts twice.

Needs ``pip install 'modelgen[distributed]'``; :mod:`modelgen.sweep` works without it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Callable, Iterator

from . import __version__
from .sweep import ChunkedGrid, ChunkResult

__all__ = ["DistributedError", "connect", "run_chunks_on"]

EXTRA = "pip install 'modelgen[distributed]'"
CONNECT_TIMEOUT_S = 10.0
WORKER_WAIT_S = 30.0
MIN_CHUNK_POINTS = 1000  # numpy: one step costs about as much as 700 HH neurons do
RESUBMITS = 3  # times the chunks left are sent again after the plan was lost with the workers that held it
_log = logging.getLogger(__name__)


class DistributedError(Exception):
    """Dask is missing, the scheduler cannot be reached, or its workers cannot run modelgen."""


def _dask():
    try:
        import dask.distributed
    except ImportError:
        raise DistributedError(f"--workers and --scheduler need Dask: {EXTRA}") from None
    return dask.distributed


@contextlib.contextmanager
def connect(workers: int | None = None, scheduler: str | None = None, timeout: float | None = None) -> Iterator:
    """Yield a ``dask.distributed.Client``: of the scheduler at ``scheduler``, or of a new local cluster of ``workers`` processes.

    The workers are checked before anything is sent: at least one is there, each imports
    modelgen, and of this version. ``timeout``: seconds to reach the scheduler (default
    :data:`CONNECT_TIMEOUT_S`). Raises :class:`DistributedError` with one line saying what is wrong.
    """
    dd = _dask()
    with contextlib.ExitStack() as stack:
        if scheduler:
            try:
                client = stack.enter_context(
                    dd.Client(scheduler, timeout=timeout or CONNECT_TIMEOUT_S, set_as_default=False)
                )
            except (OSError, TimeoutError) as e:
                raise DistributedError(
                    f"cannot reach the Dask scheduler at {scheduler} ({_reason(e)}); "
                    "start one with `dask scheduler` and give the address it prints"
                ) from None
            except ValueError as e:  # a malformed address
                raise DistributedError(f"`{scheduler}` is not a Dask scheduler address ({e})") from None
        else:
            if workers is None or workers < 1:
                raise DistributedError(f"--workers must be at least 1, not {workers}")
            try:
                cluster = stack.enter_context(
                    dd.LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,  # one simulation per process: numpy runs a chunk on one core
                        processes=True,
                        dashboard_address=None,
                        silence_logs=logging.ERROR,
                    )
                )
            except (OSError, RuntimeError, TimeoutError) as e:
                # e.g. worker processes that cannot start (a script read from stdin cannot be re-imported)
                raise DistributedError(
                    f"could not start a local Dask cluster of {workers} workers ({_reason(e)})"
                ) from None
            client = stack.enter_context(dd.Client(cluster, set_as_default=False))
        check_workers(client, scheduler)
        yield client


def check_workers(client, scheduler: str | None = None, wait_s: float = WORKER_WAIT_S) -> None:
    """Raise :class:`DistributedError` unless the cluster has a worker and every worker runs this modelgen."""
    where = f"the scheduler at {scheduler}" if scheduler else "the local cluster"
    try:
        client.wait_for_workers(1, timeout=wait_s)
    except TimeoutError:
        raise DistributedError(
            f"{where} has no workers after {wait_s:g} s; start some with `dask worker {scheduler or 'ADDRESS'}`"
        ) from None
    versions = client.get_versions(packages=["modelgen"])
    for address, info in sorted(versions.get("workers", {}).items()):
        theirs = (info or {}).get("packages", {}).get("modelgen")
        if theirs is None:
            raise DistributedError(f"the Dask worker at {address} cannot import modelgen; {EXTRA} where it runs")
        if theirs != __version__:
            raise DistributedError(
                f"the Dask worker at {address} runs modelgen {theirs}, this is {__version__}; install the same version"
            )


def default_chunk_points(n: int, client) -> int:
    """Return a chunk size giving each worker about eight chunks, but at least :data:`MIN_CHUNK_POINTS` points.

    Smaller chunks balance the load better and lose less to a lost worker; larger ones spread
    the numpy backend's cost per step (the same for 1 or 200 neurons) over more points.
    """
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    return max(MIN_CHUNK_POINTS, -(-n // (8 * workers)))


def run_chunks_on(
    client,
    plan: ChunkedGrid,
    done: dict[int, ChunkResult] | None = None,
    on_chunk: Callable[[ChunkResult], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
):
    """Run the chunks of ``plan`` not in ``done`` on ``client``'s workers; return the table, merged in grid order.

    ``on_chunk`` is called in this process with each chunk's result as it arrives;
    ``progress(points_done, points)`` after each chunk.
    """
    dd = _dask()
    chunks = dict(done or {})
    todo = [c for c in range(plan.n_chunks) if c not in chunks]
    points_done = sum(plan.bounds(c)[1] - plan.bounds(c)[0] for c in chunks)
    for attempt in range(RESUBMITS + 1):
        if not todo:
            break
        if attempt:
            _log.warning("the sweep's plan was lost with the workers that held it: %d chunks sent again", len(todo))
        # every worker gets the plan once (a copy on each, so losing a worker loses no copy
        # the others need); a chunk task only names it
        if progress is not None:
            progress(points_done, plan.n)
        [shared] = client.scatter([plan], broadcast=True, hash=False)
        futures = [client.submit(_run_chunk, shared, c, key=f"modelgen-chunk-{shared.key}-{c}") for c in todo]
        try:
            for future in dd.as_completed(futures, loop=client.loop):
                try:
                    result = future.result()
                except (concurrent.futures.CancelledError, asyncio.CancelledError):
                    # the scheduler forgot the chunk: every worker that held the plan is gone (a worker
                    # that joined after the plan was sent has none); the chunks left go again
                    continue
                chunks[result.index] = result
                if on_chunk is not None:
                    on_chunk(result)
                lo, hi = plan.bounds(result.index)
                points_done += hi - lo
                if progress is not None:
                    progress(points_done, plan.n)
        except dd.KilledWorker as e:
            raise DistributedError(
                f"a chunk of the sweep killed {_killed_count(e)} Dask workers in turn (out of memory?); "
                "try fewer points per chunk or more memory per worker"
            ) from None
        finally:
            client.cancel(futures)
        todo = [c for c in todo if c not in chunks]
    if todo:
        raise DistributedError(
            f"{len(todo)} chunks of the sweep were lost {RESUBMITS + 1} times with the Dask workers that held "
            "them (workers leaving the cluster?); run the sweep again (a sweep with --out finishes with --resume, "
            "which runs only the chunks that are missing)"
        )
    return plan.merge(chunks)


def _run_chunk(plan: ChunkedGrid, c: int) -> ChunkResult:
    return plan.run_chunk(c)


def _killed_count(e) -> str:
    return str(getattr(e, "allowed_failures", "several"))


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text.rstrip(".:")

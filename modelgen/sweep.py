"""Parameter sweeps: a grid of parameter and input values, simulated as one population.

Each neuron of the population is one point of the grid (per-neuron parameter and input
arrays), so a sweep costs one vectorised run (split into a few runs only when the
recorded membrane potential would not fit in memory). For every point the table holds
the firing rate, the first-spike latency and the mean membrane potential.

Ranges are written ``START:STOP:STEP UNIT`` (STOP included: ``0:20:5uA/cm^2`` is 0, 5, 10,
15, 20 uA/cm^2) or as a list ``V1,V2,V3 UNIT``.
"""

from __future__ import annotations

import io
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from .diagnostics import Diagnostic, ModelError, Span
from .model import parse_quantity
from .unit_objects import carries_units, to_internal
from .units import describe, suggested_unit

__all__ = [
    "Axis",
    "ChunkResult",
    "SweepPlan",
    "SweepResult",
    "merge_chunks",
    "parse_axis",
    "plan_sweep",
    "run_chunk",
    "run_chunks",
    "run_sweep",
]

# numbers as float() reads them; nan and inf match too, to be refused by name rather than read as a single value
_NUM = r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|(?i:nan|inf(?:inity)?))"
_RANGE_RE = re.compile(rf"^\s*({_NUM})\s*:\s*({_NUM})\s*:\s*({_NUM})\s*(.*?)\s*$")
_LIST_RE = re.compile(rf"^\s*({_NUM}(?:\s*,\s*{_NUM})+)\s*([^(),]*?)\s*$")
MAX_POINTS = 1_000_000  # values of one axis
MAX_GRID_POINTS = 10_000_000  # points of a grid (cut into chunks: on Dask, spread over machines)
SAMPLE_BUDGET = 2**24  # recorded samples per run (128 MB of float64)


@dataclass(frozen=True)
class Axis:
    """One swept quantity: a parameter or input and its values (in ``unit``)."""

    name: str
    kind: str  # "parameter" or "input"
    values: np.ndarray
    unit: str
    scale: float  # internal value of one ``unit``


def parse_axis(text: str, name: str, kind: str, declared) -> Axis | None:
    """Return the axis written in ``text`` (a range or a list), or None if it is a single value.

    ``declared`` is the model's Parameter or Input (its dimension is checked).
    """
    m = _RANGE_RE.match(text)
    if m:
        start, stop, step = _finite(name, text, [m.group(i) for i in (1, 2, 3)], ("start", "stop", "step"))
        unit = m.group(4)
        if step == 0 or (stop - start) * step < 0:
            raise _error(
                name,
                text,
                f"the range {start:g}:{stop:g}:{step:g} is empty",
                "write START:STOP:STEP with a step towards STOP",
            )
        count = math.floor((stop - start) / step + 1e-9) + 1
        if count > MAX_POINTS:
            raise _error(name, text, f"the range has {count} points, more than {MAX_POINTS}")
        values = start + step * np.arange(count)
    else:
        m = _LIST_RE.match(text)
        if not m:
            return None
        values = np.array(_finite(name, text, m.group(1).split(",")))
        unit = m.group(2)
    scale = 1.0
    if unit:
        try:
            scale, dim = parse_quantity(f"1 {unit}", name)
        except ModelError:
            raise _error(name, text, f"`{unit}` is not a unit") from None
    else:
        dim = declared.dimension if not np.any(values) else parse_quantity("1", name)[1]
    if dim != declared.dimension:
        example = declared.unit if declared.unit not in ("", "1") else suggested_unit(declared.dimension)
        raise _error(
            name,
            text,
            f"{name} must be {describe(declared.dimension)} (e.g. {example}), but `{unit or text}` is {describe(dim)}",
            f"e.g. {name}={values[0]:g}:{values[-1]:g}:{(values[1] - values[0]) if values.size > 1 else 1:g}{example}",
        )
    return Axis(name, kind, values, unit or declared.unit, scale)


def _in_declared_unit(axis: Axis, model) -> Axis:
    """Return ``axis``, its values converted to the declared unit if they carry units of their own (pint, ...)."""
    if not carries_units(axis.values):
        return axis
    declared = model.parameter(axis.name) if axis.kind == "parameter" else model.input(axis.name)
    internal = to_internal(axis.values, declared.dimension, axis.name, declared.unit)
    values = np.atleast_1d(np.asarray(internal, dtype=float)) / declared.display_scale
    return replace(axis, values=values, unit=declared.unit, scale=declared.display_scale)


def _finite(name: str, text: str, numbers: list[str], roles: tuple[str, ...] = ()) -> list[float]:
    """Return the numbers of a range (``roles`` start, stop, step) or list as floats; raise if one is NaN or infinite."""
    for i, raw in enumerate(numbers):
        if not math.isfinite(float(raw)):
            what = f"the range's {roles[i]}" if roles else "the value"
            raise _error(
                name,
                text,
                f"{what} `{raw.strip()}` is not a finite number",
                "write a range as START:STOP:STEP UNIT (or a list V1,V2,… UNIT) of finite numbers",
            )
    return [float(raw) for raw in numbers]


def _error(name: str, text: str, message: str, hint: str = "") -> ModelError:
    return ModelError([Diagnostic("E501", Span(name, 1, 1, len(text), text), message, hint)])


@dataclass
class SweepResult:
    """The table of a sweep: one row per grid point (the last axis varies fastest)."""

    axes: list[Axis]
    points: dict[str, np.ndarray]  # axis name -> value at each point (in the axis unit)
    rate: np.ndarray | None  # Hz (None: the model has no spike condition)
    latency: np.ndarray | None  # ms from t = 0 to the first spike; NaN if none
    mean_v: np.ndarray
    v_name: str
    v_unit: str
    metadata: dict = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        cols = [f"{a.name} ({a.unit})" if a.unit not in ("", "1") else a.name for a in self.axes]
        if self.rate is not None:
            cols += ["rate (Hz)", "latency (ms)"]
        return cols + [f"mean_{self.v_name} ({self.v_unit})"]

    def rows(self) -> list[list[float]]:
        cols = [self.points[a.name] for a in self.axes]
        if self.rate is not None:
            cols += [self.rate, self.latency]
        cols.append(self.mean_v)
        return [list(r) for r in zip(*cols)]

    def to_csv(self) -> str:
        """Return the table as CSV (a header with units; an empty latency where a point never spiked)."""
        return table_csv(self.columns, self.rows())


def table_csv(columns: list[str], rows: list[list[float]]) -> str:
    """Return a table as CSV: a header, then numbers to 10 significant digits (NaN as an empty field)."""
    out = io.StringIO()
    out.write(",".join(columns) + "\n")
    for row in rows:
        out.write(",".join("" if math.isnan(v) else f"{v:.10g}" for v in row) + "\n")
    return out.getvalue()


class ChunkedGrid:
    """A grid of points (``axes``, the last varying fastest) cut into chunks of ``chunk`` points.

    The plans of sweeps and of network ensembles are such grids; each also says how to run one
    chunk (``run_chunk``) and how to join the chunks' results (``merge``), which is all the
    runners (:func:`run_chunks` here, :func:`modelgen.distributed.run_chunks_on` on Dask) and the
    chunk store (:mod:`modelgen.sweep_store`) need.
    """

    axes: tuple[Axis, ...]
    chunk: int

    @property
    def n(self) -> int:
        return int(np.prod([a.values.size for a in self.axes]))

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.n / self.chunk)

    def bounds(self, c: int) -> tuple[int, int]:
        """Return the first point of chunk ``c`` and the one after its last."""
        return c * self.chunk, min(self.n, (c + 1) * self.chunk)

    def point_values(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Return axis name -> value (in the axis unit) at the points lo .. hi-1 of the grid."""
        index = np.unravel_index(np.arange(lo, hi), [a.values.size for a in self.axes])
        return {a.name: a.values[i] for a, i in zip(self.axes, index)}


@dataclass(frozen=True)
class SweepPlan(ChunkedGrid):
    """A sweep cut into chunks: everything one chunk's run needs (picklable: sent to Dask workers).

    Chunk ``c`` is the points ``c * chunk`` up to ``(c + 1) * chunk`` of the grid (the last axis
    varies fastest), simulated as one population; every random value is drawn per point (by its
    grid index), so the chunking never changes a number.
    """

    model: object  # NeuronModel
    axes: tuple[Axis, ...]
    params: dict
    inputs: dict
    duration: object  # as given (text with a unit, or ms)
    dt: object
    duration_ms: float
    dt_ms: float
    transient_ms: float
    method: str | None
    seed: int
    out_dir: object
    max_memory: int | str | None
    chunk: int  # points per chunk
    backend: str = "numpy"

    @property
    def n_steps(self) -> int:
        from .runtime import steps_of

        return steps_of(self.duration_ms, self.dt_ms)

    def run_chunk(self, c: int, progress: Callable[[int, int], None] | None = None) -> ChunkResult:
        return run_chunk(self, c, progress)

    def merge(self, chunks: dict[int, ChunkResult]) -> SweepResult:
        return merge_chunks(self, chunks)

    def description(self) -> dict:
        """Return what decides the sweep's numbers (not its chunking), JSON-ready: a resumed sweep must match it."""
        m = self.model
        return {
            "model": m.name,
            "source_sha256": m.model.source_hash,
            "build_hash": m.build_hash(self.method, self.backend),
            "axes": [{"name": a.name, "kind": a.kind, "unit": a.unit, "values": a.values.tolist()} for a in self.axes],
            "parameters": {k: str(v) for k, v in sorted(self.params.items())},
            "inputs": {k: str(v) for k, v in sorted(self.inputs.items())},
            "duration_ms": self.duration_ms,
            "dt_ms": self.dt_ms,
            "transient_ms": self.transient_ms,
            "seed": self.seed,
            **({"backend": self.backend} if self.backend != "numpy" else {}),  # (numpy's as before this field)
        }


@dataclass
class ChunkResult:
    """The measurements of one chunk's points, and what its run cost."""

    index: int
    values: dict[str, np.ndarray]  # what was measured -> its value at each of the chunk's points
    metadata: dict
    neuron_steps: int
    wall_s: float


def plan_sweep(
    model,
    axes: list[Axis],
    params: dict | None = None,
    inputs: dict | None = None,
    duration="1000 ms",
    dt="0.01 ms",
    transient="0 ms",
    method: str | None = None,
    seed: int | None = None,
    out_dir=None,
    max_memory: int | str | None = None,
    chunk_points: int | None = None,
    backend: str = "numpy",
) -> SweepPlan:
    """Return the sweep of ``model`` over ``axes`` cut into chunks (see :func:`run_sweep` for the arguments).

    ``chunk_points``: points per chunk (default: as many as record the membrane potential in
    :data:`SAMPLE_BUDGET` samples; more are checked against ``max_memory`` when a chunk runs).
    ``seed`` None: a fresh seed.
    """
    from .api import quantity
    from .runtime import steps_of
    from .units import TIME

    m = model.model
    duration_ms = quantity(duration, TIME, "duration", "ms")
    dt_ms = quantity(dt, TIME, "dt", "ms")
    n_times = steps_of(duration_ms, dt_ms) + 1
    transient_ms = quantity(transient, TIME, "transient", "ms")
    if not 0 <= transient_ms < duration_ms:
        raise ModelError(
            [
                Diagnostic(
                    "E501",
                    None,
                    f"the transient ({transient_ms:g} ms) must be shorter than the run ({duration_ms:g} ms)",
                )
            ]
        )
    axes = [_in_declared_unit(a, m) for a in axes]
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise ModelError([Diagnostic("E501", None, "a quantity is swept twice: " + ", ".join(names))])
    n = int(np.prod([a.values.size for a in axes]))
    if n > MAX_GRID_POINTS:
        raise ModelError([Diagnostic("E501", None, f"the grid has {n} points, more than {MAX_GRID_POINTS}")])
    chunk = max(1, min(n, chunk_points or SAMPLE_BUDGET // max(1, n_times)))
    return SweepPlan(
        model=model,
        axes=tuple(axes),
        params=dict(params or {}),
        inputs=dict(inputs or {}),
        duration=duration,
        dt=dt,
        duration_ms=duration_ms,
        dt_ms=dt_ms,
        transient_ms=transient_ms,
        method=method,
        seed=int(np.random.SeedSequence().entropy) if seed is None else int(seed),
        out_dir=out_dir,
        max_memory=max_memory,
        chunk=chunk,
        backend=backend,
    )


def run_chunk(plan: SweepPlan, c: int, progress: Callable[[int, int], None] | None = None) -> ChunkResult:
    """Simulate chunk ``c`` of ``plan`` as one population and return its measurements."""
    start = time.perf_counter()
    m = plan.model.model
    lo, hi = plan.bounds(c)
    size = hi - lo
    v_name = m.membrane_state or m.states[0].name
    run_params, run_inputs = dict(plan.params), dict(plan.inputs)
    for a, values in zip(plan.axes, plan.point_values(lo, hi).values()):
        declared = m.parameter(a.name) if a.kind == "parameter" else m.input(a.name)
        in_declared = values * a.scale / declared.display_scale
        (run_params if a.kind == "parameter" else run_inputs)[a.name] = in_declared
    result = plan.model.run(
        duration=plan.duration,
        dt=plan.dt,
        n=size,
        inputs=run_inputs,
        params=run_params,
        record=[v_name],
        record_indices=np.arange(size),
        method=plan.method,
        out_dir=plan.out_dir,
        seed=plan.seed,
        progress=progress,
        max_memory=plan.max_memory,
        neuron_ids=np.arange(lo, hi),
        backend=plan.backend,
    )
    transient_ms, duration_ms = plan.transient_ms, plan.duration_ms
    first = int(np.searchsorted(result.t, transient_ms - 1e-9 * result.dt))  # the first sample after the transient
    values = {"mean_v": result[v_name][:, first:].mean(axis=1)}  # (a view: no copy of the traces)
    if m.event is not None:
        late = result.spike_t > transient_ms + 1e-9 * result.dt
        values["rate"] = np.bincount(result.spike_i[late], minlength=size) / ((duration_ms - transient_ms) / 1000)
        values["latency"] = np.full(size, np.nan)
        first_neurons, first_index = np.unique(result.spike_i, return_index=True)
        values["latency"][first_neurons] = result.spike_t[first_index]
    return ChunkResult(c, values, dict(result.metadata), size * plan.n_steps, time.perf_counter() - start)


def merge_chunks(plan: SweepPlan, chunks: dict[int, ChunkResult]) -> SweepResult:
    """Return the table of ``plan`` from its chunks' results, in grid order (every chunk must be there)."""
    m = plan.model.model
    ordered = in_grid_order(plan, chunks)
    joined = {key: np.concatenate([r.values[key] for r in ordered]) for key in ordered[0].values}
    has_spikes = m.event is not None
    v_name = m.membrane_state or m.states[0].name
    metadata = dict(ordered[0].metadata)
    metadata.update(
        n=plan.n,
        runs=plan.n_chunks,
        chunk_points=plan.chunk,
        seed=plan.seed,
        transient_ms=plan.transient_ms,
        **chunk_costs(ordered),
        axes={a.name: {"kind": a.kind, "unit": a.unit, "values": a.values.tolist()} for a in plan.axes},
    )
    return SweepResult(
        axes=list(plan.axes),
        points=plan.point_values(0, plan.n),
        rate=joined["rate"] if has_spikes else None,
        latency=joined["latency"] if has_spikes else None,
        mean_v=joined["mean_v"],
        v_name=v_name,
        v_unit=m.state(v_name).unit,
        metadata=metadata,
    )


def in_grid_order(plan: ChunkedGrid, chunks: dict[int, ChunkResult]) -> list[ChunkResult]:
    """Return the chunks' results in grid order (raises ValueError if one is missing)."""
    missing = [c for c in range(plan.n_chunks) if c not in chunks]
    if missing:
        raise ValueError(f"chunks {missing[:5]} of the sweep are missing")
    return [chunks[c] for c in range(plan.n_chunks)]


def chunk_costs(ordered: list[ChunkResult]) -> dict:
    """Return the metadata of what the chunks cost together: neuron-steps and seconds of run time."""
    return {"neuron_steps": sum(r.neuron_steps for r in ordered), "chunk_wall_s": sum(r.wall_s for r in ordered)}


def run_chunks(
    plan: ChunkedGrid,
    done: dict[int, ChunkResult] | None = None,
    on_chunk: Callable[[ChunkResult], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
):
    """Run the chunks of ``plan`` not in ``done`` one after another in this process; return the merged table.

    ``on_chunk`` is called with each chunk's result as it finishes (e.g. to save it);
    ``progress(steps_done, total_steps)`` now and then.
    """
    chunks = dict(done or {})
    todo = [c for c in range(plan.n_chunks) if c not in chunks]
    for k, c in enumerate(todo):
        chunk_progress = None
        if progress is not None:

            def chunk_progress(j, chunk_steps, k=k):
                progress(k * chunk_steps + j, len(todo) * chunk_steps)

        chunks[c] = plan.run_chunk(c, chunk_progress)
        if on_chunk is not None:
            on_chunk(chunks[c])
    return plan.merge(chunks)


def run_sweep(
    model,
    axes: list[Axis],
    params: dict | None = None,
    inputs: dict | None = None,
    duration="1000 ms",
    dt="0.01 ms",
    transient="0 ms",
    method: str | None = None,
    seed: int | None = None,
    out_dir=None,
    progress: Callable[[int, int], None] | None = None,
    max_memory: int | str | None = None,
    client=None,
    chunk_points: int | None = None,
    backend: str = "numpy",
) -> SweepResult:
    """Simulate every point of the grid spanned by ``axes`` and return the table.

    ``model`` is a :class:`~modelgen.api.NeuronModel`; ``params`` and ``inputs`` hold values
    for everything not swept (as for ``NeuronModel.run``). Rates and mean potentials are
    measured after ``transient``; latencies from t = 0. ``max_memory`` limits each run's
    memory (see :meth:`~modelgen.api.NeuronModel.run`). Random values are drawn per point from
    ``seed`` and the point's place in the grid, so they do not depend on the chunking.
    ``client``: a ``dask.distributed.Client`` whose workers run the chunks (see
    :mod:`modelgen.distributed`; needs ``pip install 'modelgen[distributed]'``); default: this process.
    ``backend``: what simulates each chunk (numpy, numba or cuda, as for ``NeuronModel.run``).
    """
    plan = plan_sweep(
        model, axes, params, inputs, duration, dt, transient, method, seed, out_dir, max_memory, chunk_points, backend
    )
    if client is None:
        return run_chunks(plan, progress=progress)
    from .distributed import run_chunks_on

    return run_chunks_on(client, plan, progress=progress)

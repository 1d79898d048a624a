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
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from .diagnostics import Diagnostic, ModelError, Span
from .model import parse_quantity
from .unit_objects import carries_units, to_internal
from .units import describe, suggested_unit

__all__ = ["Axis", "SweepResult", "parse_axis", "run_sweep"]

# numbers as float() reads them; nan and inf match too, to be refused by name rather than read as a single value
_NUM = r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|(?i:nan|inf(?:inity)?))"
_RANGE_RE = re.compile(rf"^\s*({_NUM})\s*:\s*({_NUM})\s*:\s*({_NUM})\s*(.*?)\s*$")
_LIST_RE = re.compile(rf"^\s*({_NUM}(?:\s*,\s*{_NUM})+)\s*([^(),]*?)\s*$")
MAX_POINTS = 1_000_000
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
        out = io.StringIO()
        out.write(",".join(self.columns) + "\n")
        for row in self.rows():
            out.write(",".join("" if math.isnan(v) else f"{v:.10g}" for v in row) + "\n")
        return out.getvalue()


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
) -> SweepResult:
    """Simulate every point of the grid spanned by ``axes`` and return the table.

    ``model`` is a :class:`~modelgen.api.NeuronModel`; ``params`` and ``inputs`` hold values
    for everything not swept (as for ``NeuronModel.run``). Rates and mean potentials are
    measured after ``transient``; latencies from t = 0. ``max_memory`` limits each run's
    memory (see :meth:`~modelgen.api.NeuronModel.run`).
    """
    from .api import quantity
    from .runtime import steps_of
    from .units import TIME

    m = model.model
    duration_ms = quantity(duration, TIME, "duration", "ms")
    n_times = steps_of(duration_ms, quantity(dt, TIME, "dt", "ms")) + 1
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
    grids = np.meshgrid(*[a.values for a in axes], indexing="ij")
    points = {a.name: g.ravel() for a, g in zip(axes, grids)}
    n = int(np.prod([a.values.size for a in axes]))
    if n > MAX_POINTS:
        raise ModelError([Diagnostic("E501", None, f"the grid has {n} points, more than {MAX_POINTS}")])
    v_name = m.membrane_state or m.states[0].name
    v_unit = m.state(v_name).unit
    chunk = max(1, min(n, SAMPLE_BUDGET // max(1, n_times)))
    n_chunks = math.ceil(n / chunk)
    has_spikes = m.event is not None
    rate = np.zeros(n)
    latency = np.full(n, np.nan)
    mean_v = np.empty(n)
    metadata: dict = {}
    for c in range(n_chunks):
        lo, hi = c * chunk, min(n, (c + 1) * chunk)
        size = hi - lo
        run_params, run_inputs = dict(params or {}), dict(inputs or {})
        for a in axes:
            declared = m.parameter(a.name) if a.kind == "parameter" else m.input(a.name)
            values = points[a.name][lo:hi] * a.scale / declared.display_scale  # in the declared unit
            (run_params if a.kind == "parameter" else run_inputs)[a.name] = values
        chunk_progress = None
        if progress is not None:

            def chunk_progress(k, steps, c=c):
                progress(c * steps + k, n_chunks * steps)

        result = model.run(
            duration=duration,
            dt=dt,
            n=size,
            inputs=run_inputs,
            params=run_params,
            record=[v_name],
            record_indices=np.arange(size),
            method=method,
            out_dir=out_dir,
            seed=None if seed is None else seed + c * 2**64,
            progress=chunk_progress,
            max_memory=max_memory,
        )
        after = result.t >= transient_ms - 1e-9 * result.dt
        mean_v[lo:hi] = result[v_name][:, after].mean(axis=1)
        if has_spikes:
            late = result.spike_t > transient_ms + 1e-9 * result.dt
            rate[lo:hi] = np.bincount(result.spike_i[late], minlength=size) / ((duration_ms - transient_ms) / 1000)
            first_neurons, first_index = np.unique(result.spike_i, return_index=True)
            latency[lo + first_neurons] = result.spike_t[first_index]
        if c == 0:
            metadata = dict(result.metadata)
    metadata.update(
        n=n,
        runs=n_chunks,
        transient_ms=transient_ms,
        axes={a.name: {"kind": a.kind, "unit": a.unit, "values": a.values.tolist()} for a in axes},
    )
    return SweepResult(
        axes=list(axes),
        points=points,
        rate=rate if has_spikes else None,
        latency=latency if has_spikes else None,
        mean_v=mean_v,
        v_name=v_name,
        v_unit=v_unit,
        metadata=metadata,
    )

"""Runtime: load a generated module, allocate state for N neurons, step, record, return results.

The runtime knows nothing about sympy: it talks to the generated module through its
small interface (``initial_state``, ``make_simulator`` and the metadata constants) and
refuses a module whose recorded build hash is not the one expected for the model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from . import backends, memory
from .integrity import header_field, text_hash

__all__ = [
    "StaleModuleError",
    "ModifiedModuleError",
    "SimulationError",
    "Result",
    "load_generated",
    "verified_build_hash",
    "simulate",
    "steps_of",
    "runaway",
    "runaway_message",
]


class StaleModuleError(Exception):
    """The generated module was made from another version of the model (or toolkit)."""


class ModifiedModuleError(StaleModuleError):
    """The generated module's text was changed after it was generated (it is never executed)."""


class SimulationError(Exception):
    """The simulation produced NaN, infinite or absurd values, or was asked something impossible."""


_loaded: dict[tuple[str, str], ModuleType] = {}  # (path, text sha256) -> module, for repeated runs


def load_generated(path: str | Path, expected_hash: str | None = None) -> ModuleType:
    """Return the generated module at ``path``, having checked its text before executing any of it.

    Raises ModifiedModuleError if the text does not match the hash in its own header (an edited
    or replaced file), StaleModuleError if its build hash is not ``expected_hash`` (made from
    another version of the model or of modelgen). The text that was checked is the text that
    runs (the file is read once). A file loaded before and unchanged since gives the same module
    object (numba's compiled functions then stay loaded).
    """
    path = Path(path)
    text, actual = _intact_text(path)
    found = header_field(text, "build hash")
    if expected_hash is not None and found != expected_hash:
        raise StaleModuleError(
            f"{path} was generated from a different version of the model or of modelgen (build hash {str(found)[:12]}…, expected {expected_hash[:12]}…); rebuild it"
        )
    key = (str(path.resolve()), actual)
    cached = _loaded.get(key)
    if cached is not None:
        return cached
    # the same name in every process: numba's on-disk cache finds the module by it
    stem = "".join(c if c.isalnum() and c.isascii() else "_" for c in path.stem)  # `hh-1` -> `hh_1`
    name = f"_modelgen_generated_{stem}_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    if header_field(text, "backend") == "numba":
        sys.modules[name] = module  # compiled functions refer to their module by name
    else:
        sys.modules.pop(name, None)
    exec(compile(text, str(path), "exec"), module.__dict__)  # the checked text, not a second read
    _loaded[key] = module
    return module


def _intact_text(path: Path) -> tuple[str, str]:
    """Return (text, text sha256) of the generated module at ``path``, read once and checked.

    Raises StaleModuleError if it cannot be read or records no text hash (an older modelgen
    made it), ModifiedModuleError if its text does not match the hash in its header.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise StaleModuleError(f"cannot read the generated module {path}: {e.strerror or e}") from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ModifiedModuleError(
            f"{path} is not a module that modelgen generated (not UTF-8 text); rebuild it"
        ) from None
    recorded = header_field(text, "text sha256")
    actual = text_hash(text)
    if recorded is None:  # made before modules hashed their text (or not by modelgen): never run, rebuilt
        raise StaleModuleError(
            f"{path} records no text sha256 (an older modelgen made it), so it was not run; rebuild it"
        )
    if recorded != actual:
        raise ModifiedModuleError(
            f"{path} was edited or replaced after modelgen generated it (its text no longer matches the "
            "text sha256 in its header), so it was not run; rebuild it (`modelgen build`), or delete it"
        )
    return text, actual


def verified_build_hash(path: str | Path) -> str | None:
    """Return the build hash of the generated module at ``path`` if its text is intact, else None."""
    try:
        text, _ = _intact_text(Path(path))
    except StaleModuleError:
        return None
    return header_field(text, "build hash")


@dataclass
class Result:
    """What a run returns: sampled traces (model units), spikes, and how the run went."""

    model: str
    t: np.ndarray  # ms, shape (n_times,)
    traces: dict[str, np.ndarray]  # name -> (n_recorded, n_times), in `units[name]`
    units: dict[str, str]
    record_indices: np.ndarray
    spike_i: np.ndarray
    spike_t: np.ndarray  # ms
    n: int
    dt: float  # ms
    duration: float  # ms
    method: str
    wall_time: float  # seconds spent in the stepping loop
    metadata: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.traces[name]

    @property
    def n_steps(self) -> int:
        return int(round(self.duration / self.dt))

    @property
    def throughput(self) -> float:
        """Neuron-steps per second of wall time in the loop."""
        return self.n * self.n_steps / self.wall_time if self.wall_time > 0 else float("inf")

    def spike_times(self, neuron: int = 0) -> np.ndarray:
        """Return the spike times (ms) of one neuron."""
        return self.spike_t[self.spike_i == neuron]

    def summary(self) -> str:
        """Return the one-line summary printed after a run."""
        return (
            f"{self.model}: simulated {self.duration:g} ms in {self.n_steps} steps of {self.dt:g} ms "
            f"({self.method}), {self.n} neuron{'s' if self.n != 1 else ''}, {len(self.spike_t)} spike{'s' if len(self.spike_t) != 1 else ''}; "
            f"loop {self.wall_time:.3f} s, {self.throughput / 1e6:.2f} M neuron-steps/s"
        )

    def save(self, path: str | Path) -> Path:
        """Write the result: ``.npz`` (t in ms, one (n_recorded, n_times) array per variable, spike_i,
        spike_t in ms, units, metadata), ``.csv`` (traces), or any other path a results folder
        (npz, traces.csv, spikes.csv, metadata.json); see :mod:`modelgen.results`."""
        from .results import save_result

        return save_result(self, path)

    def recorded_neurons(self, name: str) -> np.ndarray:
        """Return the indices of the neurons whose ``name`` was recorded (the rows of its trace)."""
        return self.record_indices

    def to_dataframe(self, what: str = "traces"):
        """Return a pandas DataFrame: the traces (index t in ms, columns (variable, neuron)), or
        with ``what="spikes"`` one row per spike (neuron, t (ms)); see :mod:`modelgen.results`."""
        from .results import to_dataframe

        return to_dataframe(self, what)

    def to_xarray(self):
        """Return the traces and spikes as an xarray Dataset (the trace arrays are not copied)."""
        from .results import to_xarray

        return to_xarray(self)

    def plot(self, ax=None, variables: list[str] | None = None, **options):
        """Return a matplotlib Figure of the run: inputs, recorded variables and a spike raster, or
        draw ``variables`` (default: the membrane potential) into ``ax``; options as
        :func:`modelgen.plots.plot_run` (``path=`` also saves it). Needs ``modelgen[plot]``."""
        from .display import optional

        plots = optional("modelgen.plots", "plot", "Result.plot()")
        return plots.plot_run(self, ax=ax, variables=variables, **options)

    def _repr_markdown_(self) -> str:
        return f"**{self.model}** — {self.summary()}"

    def _repr_html_(self) -> str:
        from .display import run_html

        return run_html(self)


DERIVE_VALUES = 2**12  # values per temporary when recorded currents are computed from the states' traces (32 kB)


def simulate(
    module: ModuleType,
    n: int,
    dt: float,
    duration: float,
    params: dict,
    inputs: dict,
    record: dict[str, float],
    record_indices: np.ndarray,
    units: dict[str, str],
    initial: dict | None = None,
    check_every: int = 50,
    progress=None,
    dtype="float64",
    bounds: dict | None = None,
) -> Result:
    """Run the generated module and return a :class:`Result`.

    ``params``, ``inputs`` and ``initial`` (state overrides) are in internal units (floats or
    per-neuron arrays; inputs may also be callables of t in ms); ``record`` maps a variable
    to the internal value of one of its display units; ``dt`` and ``duration`` are in ms.
    ``progress(steps_done, n_steps)``, if given, is called every ``check_every`` steps.
    ``dtype`` is the state's float type. ``bounds`` maps a state to its
    :class:`~modelgen.checks.StateBound`: a run is stopped (SimulationError) when a value is
    NaN, infinite, or beyond its state's bound, checked at the same times as ``progress``.
    """
    if n < 1:
        raise SimulationError("the population needs at least one neuron (--n 1 or more)")
    n_steps = steps_of(duration, dt)
    p = {k: _per_neuron(v, n, k) for k, v in {**module.PARAMETERS, **params}.items()}
    inp = {}
    for k in module.INPUTS:
        v = inputs.get(k, module.INPUTS[k])
        inp[k] = v if callable(v) else _constant(_per_neuron(v, n, k))
    with np.errstate(all="ignore"):
        for name in initial or {}:
            if name not in module.STATES:
                raise SimulationError(f"{name!r} is not a state variable of {module.MODEL}")
        given = {name: _per_neuron(value, n, name) for name, value in (initial or {}).items()}
        state = module.initial_state(p, inp, n, given, dtype=np.dtype(dtype))

    record_indices = np.asarray(record_indices, dtype=np.int64)
    if record_indices.size and (record_indices.min() < 0 or record_indices.max() >= n):
        raise SimulationError(f"recorded neuron indices must lie in 0..{n - 1}")
    n_times = n_steps + 1
    for name in record:
        if name not in state and name not in module.OBSERVABLES and name not in module.INPUTS:
            raise SimulationError(
                f"cannot record {name!r}: not a state, input, current or expression of {module.MODEL}"
            )
    # the generated run() loop records states (fast path); currents, expressions and inputs are
    # computed afterwards from every state's recorded trace (observe.traces), or, where a module
    # cannot, sampled step by step
    derived = [name for name in record if name not in state]
    rows, where = np.unique(record_indices, return_inverse=True)
    trace_bytes = rows.size * n_times * memory.FLOAT
    fast = not derived or (
        getattr(module, "OBSERVE_TRACES", False) and memory.derives_from_states(record, module.STATES, trace_bytes)
    )
    stored = (list(module.STATES) if derived else list(record)) if fast else []  # the states the loop records
    which = [list(module.STATES).index(name) for name in stored]
    rec = np.empty((len(which), rows.size, n_times))
    check = None  # a few neurons on compiled code: the kernel itself stops at the first runaway value
    if n <= getattr(module, "CHECKED_MAX_N", 0):
        limits = [bounds[s].limit if bounds and s in bounds else math.inf for s in module.STATES]
        check = (np.array(limits, dtype=np.float64), np.full(2, -1, dtype=np.int64))
    with np.errstate(all="ignore"):
        try:
            step, observe, _receive, run = module.make_simulator(
                state, p, inp, dt, record=(rows, which, rec), check=check
            )
        except ValueError as e:
            raise SimulationError(str(e)) from None

    # each trace is allocated once and scaled in place: recording takes about its traces' size
    bufs = {} if fast else {name: np.empty((record_indices.size, n_times)) for name in record}
    state_vars = [name for name in record if name in state]
    input_vars = [name for name in record if name in inp and name not in state]  # read without observe()
    other_vars = [name for name in record if name not in state and name not in input_vars]

    def sample(j: int, t: float) -> None:
        for name in state_vars:
            bufs[name][:, j] = state[name][record_indices]
        for name in input_vars:
            bufs[name][:, j] = np.broadcast_to(inp[name](t), (n,))[record_indices]
        if other_vars:
            obs = observe(t)
            for name in other_vars:
                bufs[name][:, j] = obs[name][record_indices]

    spike_i: list[np.ndarray] = []
    spike_t: list[np.ndarray] = []
    if fast:
        for j, name in enumerate(stored):
            rec[j, :, 0] = state[name][rows]
    else:
        sample(0, 0.0)
    chunk = check_every if progress is not None else max(check_every, _steps_per_call(module, n))
    with np.errstate(all="ignore"):
        run(0, 0)  # a call of no steps: compiled code is compiled (or loaded) before the clock starts, as for networks
    start = time.perf_counter()
    with np.errstate(all="ignore"):
        k = 0
        while k < n_steps:
            stop = min(n_steps, k + chunk)
            if fast:
                steps, neurons = run(k, stop)
                if neurons.size:
                    spike_i.append(neurons)
                    spike_t.append((steps + 1) * dt)
            else:
                for j in range(k, stop):
                    idx = step(j)  # the neurons that spiked (None: the model has no spikes)
                    if idx is not None and idx.size:
                        spike_i.append(idx)
                        spike_t.append(np.full(idx.size, (j + 1) * dt))
                    sample(j + 1, (j + 1) * dt)
            if (bad := runaway(state, bounds or {})) is not None:
                t0, t1 = k * dt, stop * dt
                if check is not None and check[1][0] >= 0:  # the step and neuron where the kernel stopped
                    first, i = (int(x) for x in check[1])
                    one = runaway({name: arr[i : i + 1] for name, arr in state.items()}, bounds or {})
                    if one is not None:
                        bad, t0, t1 = (one[0], i, *one[2:]), first * dt, (first + 1) * dt
                raise SimulationError(runaway_message(*bad, t0, t1))
            k = stop
            if progress is not None:
                progress(k, n_steps)
    wall = time.perf_counter() - start
    t = np.arange(n_times, dtype=float)
    t *= dt
    if fast:  # the rows the loop recorded, in the order asked for (views unless that order differs)
        in_order = rows.size == record_indices.size and np.array_equal(rows, record_indices)
        for j, name in enumerate(stored):
            if name in record:
                bufs[name] = rec[j] if in_order else rec[j][where]
        if derived:
            values = derived_traces(observe.traces, t, {s: rec[j] for j, s in enumerate(stored)}, rows, derived)
            for name in derived:
                bufs[name] = values[name] if in_order else values[name][where]
    for name in record:
        bufs[name] /= record[name]
    return Result(
        model=module.MODEL,
        t=t,
        traces=bufs,
        units={name: units.get(name, "") for name in record},
        record_indices=record_indices,
        spike_i=np.concatenate(spike_i) if spike_i else np.zeros(0, dtype=np.int64),
        spike_t=np.concatenate(spike_t) if spike_t else np.zeros(0),
        n=n,
        dt=dt,
        duration=n_steps * dt,
        method=module.METHOD,
        wall_time=wall,
    )


def derived_traces(traces_of, t: np.ndarray, states: dict, index: np.ndarray, names) -> dict[str, np.ndarray]:
    """Return each of ``names`` (currents, expressions, inputs) of the neurons ``index`` at the times
    ``t``, as arrays (len(index), len(t)), computed by a module's ``observe.traces`` from the states'
    traces ``states`` (state -> such an array), a chunk of times at a time (temporaries of at most
    DERIVE_VALUES values)."""
    out = {name: np.empty((len(index), t.size)) for name in names}
    chunk = max(1, DERIVE_VALUES // max(1, len(index)))
    for j0 in range(0, t.size, chunk):
        j1 = min(t.size, j0 + chunk)
        values = traces_of(t[j0:j1], {s: x[:, j0:j1] for s, x in states.items()}, index)
        for name in names:
            out[name][:, j0:j1] = values[name]
    return out


def _steps_per_call(module: ModuleType, n: int) -> int:
    """Return how many steps the generated loop makes per call between NaN checks, for n neurons.

    Between checks the loop runs on its own, so small populations run longer stretches, as the
    checks would cost more than the steps: about 2**16 neuron-steps per call for numpy (at most
    1000 steps), 2**20 for compiled code, whose per-call cost (argument checks, threads) is fixed
    and whose time loop is compiled (with 1000 steps per call, a single LIF neuron spent a third
    of its time outside the loop) -- at most 5,000 steps, so that an error still names a short
    time window (50 ms of biological time at dt = 0.01 ms), except where the module checks every
    step itself (numba, up to CHECKED_MAX_N neurons: the error names the step); the cuda
    backend's launches, many more.
    Each backend says its own (``steps_per_call``).
    """
    return backends.get(module.BACKEND).steps_per_call(n)


def steps_of(duration: float, dt: float) -> int:
    """Return how many steps of ``dt`` make ``duration`` (both in ms); raise SimulationError unless
    both are positive and the duration is a whole number of steps."""
    if not (math.isfinite(dt) and dt > 0):
        raise SimulationError(f"the time step must be positive, not {dt:g} ms")
    if not (math.isfinite(duration) and duration > 0):
        raise SimulationError(f"the duration must be positive, not {duration:g} ms")
    n_steps = int(round(duration / dt))
    if n_steps < 1 or abs(n_steps * dt - duration) > 1e-9 * max(1.0, duration):
        raise SimulationError(f"the duration {duration:g} ms is not a whole number of steps of {dt:g} ms")
    return n_steps


def _constant(value):
    """Return a function of t that always returns ``value`` (marked, so the step reads it once)."""

    def constant(t):
        return value

    constant.constant = value
    return constant


def _per_neuron(value, n: int, name: str):
    if np.ndim(value) == 0:
        return np.float64(value)  # numpy scalars: x/0 gives inf (caught later), not an exception
    arr = np.asarray(value, dtype=float)
    if arr.shape != (n,):
        raise SimulationError(f"{name}: per-neuron values need shape ({n},), got {arr.shape}")
    return arr


_FEW = 16  # up to this many neurons, runaway() looks at Python floats


def runaway(state: dict[str, np.ndarray], bounds: dict) -> tuple[str, int, float, object] | None:
    """Return (state, neuron index, value, its bound or None) of the first value that is NaN,
    infinite or beyond its state's bound in ``bounds`` (a :class:`~modelgen.checks.StateBound`), or None."""
    for name, arr in state.items():
        bound = bounds.get(name)
        limit = bound.limit if bound is not None else math.inf
        if arr.size <= _FEW:  # a few values: Python's floats beat numpy's two reductions (~1 us against ~5)
            if all(-limit < x < limit for x in arr.tolist()):  # NaN fails
                continue
        elif -limit < arr.min() and arr.max() < limit:  # no temporaries; NaN fails both
            continue
        i = int(np.argmax(~(np.abs(arr) < limit)))
        return name, i, float(arr[i]), bound
    return None


def runaway_message(name: str, i: int, value: float, bound, t0: float, t1: float) -> str:
    """Return the error of a run stopped at a NaN, infinite or absurd value of ``name`` (neuron ``i``)
    that appeared between ``t0`` and ``t1`` ms."""
    window = f"between t = {t0:g} and {t1:g} ms"
    if math.isfinite(value):
        what = f"reached {bound.shown(value)} {window}, beyond ±{bound.shown(bound.limit)}: the run blew up"
    else:
        what = f"became {value} {window}"
    return f"{name} of neuron {i} {what}; try a smaller --dt or another --method"

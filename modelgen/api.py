"""The Python API: load -> check -> derive -> build -> run, one object per model.

>>> import modelgen
>>> hh = modelgen.load("models/hh.model")
>>> result = hh.run(duration="100 ms", dt="0.01 ms", inputs={"I_ext": "10 uA/cm^2"})
>>> result.spike_times(0)
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__, backends, cache, memory, protocols, runtime
from .atomic import write_text_atomic
from .checks import check_model_values, check_values, state_bounds
from .codegen import build_hash, generate_code
from .compose import expand_uses
from .derive import MembraneDerivation, derive_voltage_ode
from .diagnostics import Diagnostic, ModelError, Span
from .language import parse_model, parse_model_text
from .model import Model, build_model, parse_quantity
from .schemes import STABILITY_BOUND, Plan, plan_integration, stability_warnings
from .unit_objects import carries_units, to_internal
from .units import TIME, Dimension, describe, suggested_unit, unit_text_scale

__all__ = ["NeuronModel", "StabilityWarning", "load", "load_text", "quantity"]


class StabilityWarning(UserWarning):
    """The time step is too large for the explicit scheme at the model's time constants."""


def load(path: str | os.PathLike, search_path: list[str] | None = None) -> NeuronModel:
    """Return the checked model in the file at ``path`` (raises ModelError with every problem).

    ``search_path``: extra folders for the current files the model uses (see compose.py).
    """
    tree = expand_uses(parse_model(path), search_path)
    return NeuronModel(check_model_values(build_model(tree)), Path(path))


def load_text(text: str, name: str = "<string>", search_path: list[str] | None = None) -> NeuronModel:
    """Return the checked model written in ``text``."""
    return NeuronModel(check_model_values(build_model(expand_uses(parse_model_text(text, name), search_path))), None)


def quantity(value, dim: Dimension, what: str, unit: str = "", unit_scale: float = 1.0):
    """Return ``value`` in internal units, checking its dimension.

    ``value`` is text with a unit (``"10 uA/cm^2"``), a value with units from pint, quantities,
    astropy, unyt or brian2 (converted; see :mod:`modelgen.unit_objects`), or a number / array
    meaning ``unit`` (the quantity's unit as declared in the model, internal value ``unit_scale``).
    """
    if isinstance(value, str):
        text = value.strip()
        got, got_dim = parse_quantity(text, what)
        if got_dim != dim and not (got == 0 and got_dim.is_dimensionless):
            raise ModelError(
                [
                    Diagnostic(
                        "E501",
                        Span(what, 1, 1, len(text), text),
                        f"{what} must be {describe(dim)} (e.g. {suggested_unit(dim) if not unit or unit == '1' else unit}), but `{text}` is {describe(got_dim)}",
                    )
                ]
            )
        return got
    if carries_units(value):  # pint, quantities, astropy, unyt, brian2: converted, never stripped
        return to_internal(value, dim, what, unit)
    if callable(value):

        def in_internal_units(t, f=value):
            out = f(t)
            return to_internal(out, dim, what, unit) if carries_units(out) else np.asarray(out) * unit_scale

        return in_internal_units
    if protocols.per_neuron_with_units(value):
        # one value per neuron, each with its unit (["100 pA", "0.2 nA"]); plain numbers mean `unit`
        parts = [quantity(v, dim, f"{what}[{i}]", unit, unit_scale) for i, v in enumerate(value)]
        return np.array(parts, dtype=float)
    try:
        return np.asarray(value, dtype=float) * unit_scale if np.ndim(value) else float(value) * unit_scale
    except (TypeError, ValueError):
        text = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ModelError(
            [
                Diagnostic(
                    "E501",
                    Span(what, 1, 1, len(text), text),
                    f"{what} must be a number (in {unit or 'its unit'}), text with a unit (`10 {unit or 'mV'}`), "
                    f"a value with units, or one of these per neuron; not `{text}`",
                )
            ]
        ) from None


@dataclass
class NeuronModel:
    """A checked model that answers questions, shows its equations, builds and runs."""

    model: Model
    path: Path | None

    def __post_init__(self):
        self.derivation: MembraneDerivation | None = derive_voltage_ode(self.model)
        self._plans: dict[str | None, Plan] = {}

    # --- questions
    @property
    def name(self) -> str:
        return self.model.name

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return self.model.warnings

    @property
    def states(self) -> tuple[str, ...]:
        return self.model.state_names

    @property
    def parameters(self) -> dict[str, str]:
        """Return parameter name -> value with unit, as written."""
        return {p.name: f"{p.display_value:g} {p.unit}".strip() for p in self.model.parameters}

    @property
    def inputs(self) -> dict[str, str]:
        return {i.name: i.unit for i in self.model.inputs}

    @property
    def currents(self) -> dict[str, str]:
        """Return current name -> direction."""
        return {c.name: c.direction for c in self.model.currents}

    def plan(self, method: str | None = None) -> Plan:
        """Return the integration plan (scheme per state and why)."""
        if method not in self._plans:
            self._plans[method] = plan_integration(self.model, self.derivation, method)
        return self._plans[method]

    # --- showing
    def summary(self, method: str | None = None) -> str:
        """Return a readable summary: states, currents, inputs, parameters, events, schemes (``modelgen show``)."""
        from .summary import model_summary

        return model_summary(self, method)

    def latex(self, derivation: bool = True, expand: bool = False, fmt: str = "tex", standalone: bool = False) -> str:
        """Return the equations as LaTeX (``fmt`` tex, markdown or html; see :func:`modelgen.latex.model_latex`)."""
        from .latex import model_latex

        return model_latex(
            self.model, self.derivation, derivation_steps=derivation, expand=expand, fmt=fmt, standalone=standalone
        )

    def _repr_latex_(self) -> str:
        return self.latex()

    def _repr_markdown_(self) -> str:
        return self.latex(fmt="markdown")

    # --- building
    def code(self, method: str | None = None, backend: str = "numpy", origin: str | None = None) -> str:
        """Return the generated module's text (numpy; or numba: compiled loops over the neurons).

        ``origin``: the model file as a module in a named folder records it (see :mod:`modelgen.cache`).
        """
        return generate_code(
            self.model, self.derivation, self.plan(method), backend, self.build_hash(method, backend), origin
        )

    def build_hash(self, method: str | None = None, backend: str = "numpy") -> str:
        """Return the hash a module generated for ``method`` and ``backend`` records.

        It is keyed by the method asked for (None: the model's own, else auto), so that an
        up-to-date module is recognised without planning the integration again.
        """
        return build_hash(self.model, method or self.model.method or "auto", backend)

    def generated_path(
        self, out_dir: str | os.PathLike | None = None, backend: str = "numpy", method: str | None = None
    ) -> Path:
        """Return where the module for ``method`` and ``backend`` is written: in ``out_dir`` as
        ``<stem>.py``, or (``out_dir`` None) in modelgen's cache, named by its build hash."""
        stem = cache.readable_stem(self.path.stem if self.path else self.model.name)
        return cache.module_path(stem, self.build_hash(method, backend), backend, out_dir)

    def build(
        self, out_dir: str | os.PathLike | None = None, method: str | None = None, backend: str = "numpy"
    ) -> Path:
        """Write the generated module (unless an up-to-date one is there) and return its path.

        ``out_dir`` None: modelgen's cache (see :mod:`modelgen.cache`). In a named folder, raises
        :class:`~modelgen.cache.ModuleClashError` if the module of that name belongs to another model file.
        """
        target = self.generated_path(out_dir, backend, method)
        origin = None if out_dir is None else cache.origin_of(self.path, out_dir)
        if out_dir is not None:
            cache.claim(target, origin, self.path)
        if runtime.verified_build_hash(target) == self.build_hash(method, backend):
            return target  # cached: generated from this model, method, backend and modelgen, and unedited
        code = self.code(method, backend, origin)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, code)  # a unique temporary name: concurrent builds never collide
        return target

    def load_module(
        self,
        out_dir: str | os.PathLike | None = None,
        method: str | None = None,
        rebuild: bool = True,
        backend: str = "numpy",
    ):
        """Return the generated module, rebuilding it if missing or stale (or raising if not ``rebuild``).

        ``out_dir`` None: modelgen's cache; else that folder (see :meth:`build`).
        """
        expected = self.build_hash(method, backend)
        target = self.generated_path(out_dir, backend, method)
        if target.exists():
            try:
                return runtime.load_generated(target, expected)
            except runtime.ModifiedModuleError:
                if not rebuild:
                    raise
                warnings.warn(
                    f"{target} was edited or replaced after modelgen generated it; it was not run, and was rebuilt",
                    stacklevel=2,
                )
            except runtime.StaleModuleError:
                if not rebuild:
                    raise
        elif not rebuild:
            raise runtime.StaleModuleError(f"{target} does not exist; run `modelgen build`")
        return runtime.load_generated(self.build(out_dir, method, backend), expected)

    # --- running
    def run(
        self,
        duration="100 ms",
        dt="0.01 ms",
        n: int = 1,
        inputs: dict | None = None,
        params: dict | None = None,
        initial: dict | None = None,
        record=None,
        record_indices=None,
        method: str | None = None,
        out_dir: str | os.PathLike | None = None,
        seed: int | None = None,
        progress=None,
        dtype: str = "float64",
        backend: str = "numpy",
        max_memory: int | str | None = None,
        neuron_ids=None,
    ) -> runtime.Result:
        """Simulate ``n`` neurons and return the :class:`~modelgen.runtime.Result`.

        Quantities are text with units (``"10 uA/cm^2"``) or numbers in the unit the model
        declares for that quantity; arrays of length ``n`` give per-neuron values, and an
        input may be a function of t (ms), a protocol (:mod:`modelgen.protocols`, e.g.
        ``protocols.step("10 uA/cm^2", on="20 ms")``) or its text (``"step(10 uA/cm^2, on=20 ms)"``);
        inputs and parameters may be per-neuron values (``"normal(120, 5) mS/cm^2"``).
        ``record`` lists variables (default: the membrane potential, or the first state);
        ``record_indices`` the neurons (default: the first ten); ``initial`` overrides initial
        values of states. ``seed`` seeds every random value (default: a fresh seed, recorded
        in ``result.metadata``); ``progress(steps_done, n_steps)`` is called now and then.
        ``dtype`` ("float64" or "float32") is the state's float type; ``backend`` "numpy",
        "numba" (compiled SIMD loops over the neurons on all cores; needs ``pip install numba``) or
        "cuda" (one NVIDIA GPU thread per neuron; needs ``pip install -e '.[cuda]'`` and a GPU, else
        :class:`~modelgen.backends.BackendUnavailableError`).
        Before allocating, the memory the run needs is estimated; above ``max_memory`` (bytes, or
        text such as ``"4GiB"``; default: the memory available) it raises
        :class:`~modelgen.memory.MemoryLimitError`, saying what to change. The generated module
        is kept in ``out_dir``, or (default) in modelgen's cache (see :mod:`modelgen.cache`).
        ``neuron_ids`` (n whole numbers, a sweep's grid indices) gives each neuron its own random
        streams, keyed by its id, so its values do not depend on which neurons run with it.
        """
        m = self.model
        dt_ms = quantity(dt, TIME, "dt", "ms")
        duration_ms = quantity(duration, TIME, "duration", "ms")
        if record is None:
            record = [m.membrane_state or m.states[0].name]
        elif isinstance(record, str):
            record = [record]
        rec_scale, rec_units = {}, {}
        defs = {name: None for name, _, _ in m.definition_order()}
        for name in record:
            if name in defs:
                dim = next((e.dimension for e in m.expressions if e.name == name), None) or m.current(name).dimension
                rec_scale[name], rec_units[name] = 1.0, suggested_unit(dim)
                rec_scale[name] = float(unit_text_scale(rec_units[name])[1])
            else:
                try:
                    rec_units[name], rec_scale[name] = m.unit_of(name)
                except KeyError:
                    raise _unknown(
                        "variable to record", name, list(m.state_names) + list(defs) + [i.name for i in m.inputs]
                    ) from None
        if record_indices is None:
            record_indices = np.arange(min(n, 10))
        if np.dtype(dtype) not in (np.float64, np.float32):
            raise ModelError([Diagnostic("E501", None, f"unsupported dtype `{dtype}`", "use float64 or float32")])
        limit = None if max_memory is None else memory.parse_size(max_memory)
        given = [*(params or {}).values(), *(inputs or {}).values(), *(initial or {}).values()]
        steps = duration_ms / dt_ms if dt_ms > 0 else 0.0  # (not a whole number of steps: refused later)
        n_traced = int(round(steps)) + 1 if steps < 2.0**62 else 2**62  # samples per trace
        needs = memory.run_needs(
            n,
            len(m.states),
            n_traced,
            memory.traces_recorded(record, m.state_names, n_traced * np.size(record_indices) * memory.FLOAT)
            * np.size(record_indices),
            per_neuron=sum(1 for v in given if isinstance(v, (list, tuple)) or protocols.is_spec(v) or np.ndim(v)),
            itemsize=np.dtype(dtype).itemsize,
        )
        memory.require(needs, "this run", memory.run_advice(needs), limit)
        ids = None if neuron_ids is None else np.asarray(neuron_ids, dtype=np.int64)
        ctx = protocols.RunContext(n, dt_ms, duration_ms, seed, max_memory=limit, neuron_ids=ids)
        p_internal = {}
        for name, value in (params or {}).items():
            if name not in {p.name for p in m.parameters}:
                raise _unknown("parameter", name, [p.name for p in m.parameters])
            p = m.parameter(name)
            if protocols.is_spec(value):
                p_internal[name] = protocols.resolve(value, protocols.Target.of(p), ctx, time_varying=False)
            else:
                p_internal[name] = quantity(value, p.dimension, name, p.unit, p.display_scale)
        in_internal = {}
        for name, value in (inputs or {}).items():
            if name not in {i.name for i in m.inputs}:
                raise _unknown("input", name, [i.name for i in m.inputs])
            i = m.input(name)
            if protocols.is_spec(value):
                in_internal[name] = protocols.resolve(value, protocols.Target.of(i), ctx)
            else:
                in_internal[name] = quantity(value, i.dimension, name, i.unit, i.display_scale)
        check_values(m, {**p_internal, **in_internal}, dt_ms)
        init_internal = {}
        for name, value in (initial or {}).items():
            if name not in m.state_names:
                raise _unknown("state", name, list(m.state_names))
            st = m.state(name)
            if protocols.is_spec(value):  # per-neuron initial values, e.g. "uniform(-70, -60) mV"
                init_internal[name] = protocols.resolve(value, protocols.Target.of(st), ctx, time_varying=False)
            else:
                init_internal[name] = quantity(value, st.dimension, name, st.unit, st.display_scale)
        backends.get(backend).require()  # e.g. cuda without CuPy or a GPU: one clear error before any work
        module = self.load_module(out_dir, method, backend=backend)
        if module.METHOD in STABILITY_BOUND:  # explicit schemes only (planning `exact` again would be slow)
            for message in stability_warnings(m, self.plan(method), dt_ms):
                warnings.warn(message, StabilityWarning, stacklevel=2)
        result = runtime.simulate(
            module,
            n,
            dt_ms,
            duration_ms,
            p_internal,
            in_internal,
            rec_scale,
            np.asarray(record_indices),
            rec_units,
            initial=init_internal,
            progress=progress,
            dtype=dtype,
            bounds=state_bounds(m),
        )
        result.metadata = {
            "model": m.name,
            "source": str(self.path) if self.path else None,
            "source_sha256": m.source_hash,
            "build_hash": module.BUILD_HASH,
            "modelgen_version": __version__,
            "method": module.METHOD,
            "backend": module.BACKEND,
            "dtype": str(np.dtype(dtype)),
            "dt_ms": dt_ms,
            "duration_ms": duration_ms,
            "n": n,
            "seed": ctx.seed,
            "parameters": {k: _describe_value(v, m.parameter(k)) for k, v in (params or {}).items()},
            "inputs": {k: _describe_value(v, m.input(k)) for k, v in (inputs or {}).items()},
            "initial": {k: _describe_value(v, m.state(k)) for k, v in (initial or {}).items()},
            "membrane_state": m.membrane_state,
            "input_names": [i.name for i in m.inputs],
        }
        return result


def _describe_value(value, declared) -> str:
    """Return a value given to run() as text with its unit (functions of t by name), for metadata."""
    if callable(value) and not isinstance(value, protocols.Protocol):
        return f"<function {getattr(value, '__name__', type(value).__name__)}>"
    return protocols.describe_value(value, protocols.Target.of(declared))


def _unknown(what: str, name: str, choices: list[str]) -> ModelError:
    import difflib

    close = difflib.get_close_matches(name, choices, n=1)
    hint = (
        f"did you mean `{close[0]}`?"
        if close
        else ("this model has: " + ", ".join(choices) if choices else f"this model has no {what}s")
    )
    return ModelError([Diagnostic("E501", None, f"unknown {what} `{name}`", hint)])

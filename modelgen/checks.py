"""Physical checks of a model's values: capacitances, time constants and refractory periods.

The rules (README, "Values a model must respect"), one table for the values written in the
model file and those given to a run:

- a **capacitance** of the charge relation (a parameter of dimension capacitance or
  capacitance/area in ``charge Q = …``) must be > 0;
- a **time constant** (a parameter or input of dimension time that the model divides by, as in
  ``x/tau`` or ``exp(-t/tau)``) must be > 0;
- the **refractory period** must be >= 0, and at most :data:`MAX_REFRACTORY_STEPS` steps of dt
  (the generated code counts it in 64-bit integer steps, which a longer period overflows).

Each of these values must be a finite number. Values written in the model file are checked at
load (E305 at the value); values given to a run (``params=``/``inputs=``, ``--param``,
``--input``, sweeps, network files) before it starts, per neuron.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy

from .diagnostics import Diagnostic, ModelError
from .model import Input, Model, Parameter
from .units import AREA, CAPACITANCE, TIME, VOLTAGE

__all__ = [
    "MAX_REFRACTORY_STEPS",
    "MEMBRANE_LIMIT_MV",
    "RUNAWAY_FACTOR",
    "StateBound",
    "ValueRule",
    "value_rules",
    "value_problem",
    "check_model_values",
    "check_values",
    "state_bounds",
]

MAX_REFRACTORY_STEPS = 2**53  # the largest whole number of steps a float64 holds exactly; int64 holds 1024 times more
MEMBRANE_LIMIT_MV = 1e4  # 10 V: membranes break down near 1 V; physiological potentials stay within ±200 mV
RUNAWAY_FACTOR = 1e9  # any other state: this many times its scale (initial value, parameters alike, display unit)


@dataclass(frozen=True)
class ValueRule:
    """What one parameter or input may be: > 0 (``strict``) or >= 0, why, and what to write instead."""

    name: str
    strict: bool
    why: str
    hint: str

    @property
    def allowed(self) -> str:
        return "a finite number > 0" if self.strict else "a finite number >= 0"

    def first_violation(self, value) -> int | None:
        """Return the index of the first value that breaks the rule (0 for a single value), or None."""
        arr = np.atleast_1d(np.asarray(value, dtype=float))
        bad = ~np.isfinite(arr) | (arr <= 0 if self.strict else arr < 0)
        return int(np.argmax(bad)) if bad.any() else None


@lru_cache(maxsize=64)
def value_rules(model: Model) -> dict[str, ValueRule]:
    """Return parameter or input name -> the rule its values must keep, in declaration order."""
    divisors = _divisors(model)
    in_charge = {s.name for s in model.expand(model.charge).free_symbols} if model.charge is not None else set()
    refractory = model.event.refractory if model.event is not None else None
    rules = {}
    for q in (*model.parameters, *model.inputs):
        if q.name in in_charge and q.dimension in (CAPACITANCE, CAPACITANCE / AREA):
            rules[q.name] = ValueRule(
                q.name,
                True,
                "the capacitance of the charge relation",
                "a membrane's capacitance is positive, e.g. 1 uF/cm^2 or 200 pF",
            )
        elif q.name in divisors and q.dimension == TIME:
            rules[q.name] = ValueRule(
                q.name,
                True,
                "a time constant: the model divides by it",
                "a time constant of 0 divides by zero, and a negative one makes a decay grow",
            )
        elif refractory is not None and refractory == q.symbol:
            rules[q.name] = ValueRule(q.name, False, "the refractory period", "write 0 ms for no refractory period")
    return rules


def value_problem(model: Model, name: str, value) -> str | None:
    """Return what is wrong with ``value`` (internal units; a number or per-neuron array) for ``name``, or None."""
    rule = value_rules(model).get(name)
    if rule is None or callable(value):
        return None
    i = rule.first_violation(value)
    if i is None:
        return None
    q = _declared(model, name)
    shown = f"{np.atleast_1d(np.asarray(value, dtype=float))[i] / q.display_scale:g} {q.unit}".strip()
    which = f"{name}[{i}]" if np.ndim(value) else "it"
    return f"{name} must be {rule.allowed} ({rule.why}), but {which} is {shown}"


def check_model_values(model: Model) -> Model:
    """Return ``model`` if the values written in it keep their rules; else raise ModelError (E305 at each value)."""
    errors = []
    for name, rule in value_rules(model).items():
        q = _declared(model, name)
        problem = value_problem(model, name, q.value if isinstance(q, Parameter) else q.default)
        if problem is not None:
            errors.append(Diagnostic("E305", q.value_span or q.span, problem, rule.hint))
    if errors:
        raise ModelError(errors + list(model.warnings))
    return model


def check_values(model: Model, values: dict, dt: float) -> None:
    """Raise ModelError (E501, or E305 at the model file's value) unless the values of a run keep their rules.

    ``values``: parameters and inputs given to the run, in internal units (callables of t are
    not checked); ``dt`` in ms, to count the refractory period's steps.
    """
    for name, value in values.items():
        if (problem := value_problem(model, name, value)) is not None:
            raise ModelError([Diagnostic("E501", None, problem, value_rules(model)[name].hint)])
    ev = model.event
    if ev is None or ev.refractory is None:
        return
    names = sorted(s.name for s in ev.refractory.free_symbols)
    given = {k: v for k, v in values.items() if k in names}
    declared = {p.name: p.value for p in model.parameters if p.name in names}
    period = sympy.lambdify(names, ev.refractory, "numpy")(*({**declared, **given}[k] for k in names))
    steps = np.atleast_1d(np.asarray(period, dtype=float)) / dt
    bad = ~np.isfinite(steps) | (steps < 0) | (steps > MAX_REFRACTORY_STEPS)
    if not bad.any():
        return
    i = int(np.argmax(bad))
    which = (f" {names[0]}" if ev.refractory.is_Symbol else "") + (f" of neuron {i}" if np.ndim(period) else "")
    if np.isfinite(steps[i]) and steps[i] > 0:
        problem = (
            f"the refractory period{which} is {steps[i] * dt:g} ms = {steps[i]:.3g} steps of {dt:g} ms; "
            f"it must be at most {MAX_REFRACTORY_STEPS:.3g} steps (counted in 64-bit integers)"
        )
        hint = "any period longer than the run holds the neuron to its end: the run's duration does the same"
    else:
        problem = f"the refractory period{which} must be a finite number >= 0, but it is {steps[i] * dt:g} ms"
        hint = "write 0 ms for no refractory period"
    if given:
        raise ModelError([Diagnostic("E501", None, problem, hint)])
    only = _declared(model, names[0]) if ev.refractory.is_Symbol else None
    raise ModelError(
        [Diagnostic("E305", (only.value_span or only.span) if only else ev.refractory_span, problem, hint)]
    )


@dataclass(frozen=True)
class StateBound:
    """The largest magnitude a state may reach in a run before the run is stopped as blown up."""

    limit: float  # internal units
    unit: str  # the state's display unit
    scale: float  # internal value of one display unit

    def shown(self, value: float) -> str:
        """Return ``value`` (internal units) as text in the display unit."""
        unit = "" if self.unit == "1" else self.unit  # a dimensionless state: the number alone
        return f"{value / self.scale:.3g} {unit}".strip()


@lru_cache(maxsize=64)
def state_bounds(model: Model) -> dict[str, StateBound]:
    """Return state name -> the bound beyond which its values are absurd (a numerical blow-up that
    stayed finite, such as AdEx under rk4 with a spike cut-off where exp() has already diverged).

    The membrane potential (when it is a voltage): ±:data:`MEMBRANE_LIMIT_MV` mV. Every other
    state: :data:`RUNAWAY_FACTOR` times its scale, the largest of its initial value, the
    parameters of its dimension and one display unit; a synaptic conductance in nS may then
    reach 1 S, a calcium concentration in mM 10^9 M, a gate 10^9, so that no model that works
    reaches it, while a blow-up (which grows geometrically) passes it within a few steps.
    """
    values = {p.symbol: p.value for p in model.parameters}
    values.update({i.symbol: i.default for i in model.inputs})
    bounds = {}
    for s in model.states:
        if s.name == model.membrane_state and s.dimension == VOLTAGE:
            bounds[s.name] = StateBound(MEMBRANE_LIMIT_MV, s.unit, s.display_scale)
            continue
        scale = abs(s.display_scale)
        try:
            init = abs(float(s.init.xreplace(values)))
        except (TypeError, ValueError):  # not a number without the run's values (e.g. a function of t)
            init = 0.0
        if math.isfinite(init):
            scale = max(scale, init)
        scale = max([scale, *(abs(p.value) for p in model.parameters if p.dimension == s.dimension)])
        bounds[s.name] = StateBound(RUNAWAY_FACTOR * scale, s.unit, s.display_scale)
    return bounds


def _declared(model: Model, name: str) -> Parameter | Input:
    return next(q for q in (*model.parameters, *model.inputs) if q.name == name)


def _divisors(model: Model) -> set[str]:
    """Return the names the model divides by: the bases of negative powers (``x/tau``, ``exp(-t/tau)``)."""
    exprs = [e.expr for e in model.expressions] + [c.expr for c in model.currents] + [o.rhs for o in model.odes]
    exprs += [s.init for s in model.states] + [s.factor for s in model.synapses]
    if model.event is not None:
        exprs += [model.event.condition] + [r.new_value() for r in model.event.resets]
    return {
        node.base.name
        for expr in exprs
        for node in sympy.preorder_traversal(expr)
        if isinstance(node, sympy.Pow) and isinstance(node.base, sympy.Symbol) and node.exp.is_negative
    }

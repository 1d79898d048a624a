"""Integration schemes: which update rule each state variable gets, and why.

A scheme is data, not a class: the explicit Runge-Kutta family is a Butcher tableau
(stages ``k_i = f(t + c_i dt, x + dt * sum_j a_ij k_j)``, update ``x + dt * sum_i b_i k_i``)
that the template lays out; exponential Euler (Rush-Larsen) is the exact solution of
``dx/dt = A + B x`` over one step with A and B frozen at the step's start:
``x_new = x + f(x) * (exp(B dt) - 1) / B`` where ``B = df/dx``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy

from .derive import MembraneDerivation, all_odes
from .diagnostics import Diagnostic, ModelError, Span
from .model import TIME_SYMBOL, Model
from .propagator import (
    DT_SYMBOL,
    MAX_PROPAGATOR_TERMS,
    Propagator,
    TooManyTerms,
    exact_propagator,
    linear_system,
    triangular_order,
)

__all__ = ["TABLEAUS", "METHODS", "DT_SYMBOL", "Plan", "plan_integration", "triangular_order"]


@dataclass(frozen=True)
class Tableau:
    a: tuple[tuple[sympy.Rational, ...], ...]  # strictly lower triangular rows
    b: tuple[sympy.Rational, ...]
    c: tuple[sympy.Rational, ...]
    order: int


_h = sympy.Rational(1, 2)
TABLEAUS: dict[str, Tableau] = {
    "euler": Tableau(a=((),), b=(1,), c=(0,), order=1),
    "rk2": Tableau(a=((), (_h,)), b=(0, 1), c=(0, _h), order=2),  # explicit midpoint
    "rk4": Tableau(
        a=((), (_h,), (0, _h), (0, 0, 1)),
        b=(sympy.Rational(1, 6), sympy.Rational(1, 3), sympy.Rational(1, 3), sympy.Rational(1, 6)),
        c=(0, _h, _h, 1),
        order=4,
    ),
}
METHODS = ("auto", "euler", "rk2", "rk4", "exponential_euler", "exact")


@dataclass(frozen=True)
class Plan:
    """The chosen scheme, the ODEs, and for exponential Euler each state's B = df/dx."""

    method: str
    odes: dict  # state name -> dX/dt (with intermediate names kept)
    linear_rates: dict  # state -> B = d(dX/dt)/dX (exponential Euler; None where B = 0)
    reasons: dict  # state -> why it got its update rule
    tableau: Tableau | None
    propagator: Propagator | None = None

    @property
    def order(self) -> int:
        return self.tableau.order if self.tableau else 1


def _conditionally_linear(model: Model, name: str, rhs: sympy.Expr) -> tuple[bool, sympy.Expr]:
    """Return (is dX/dt linear in X, B = d(dX/dt)/dX) with intermediates expanded."""
    x = sympy.Symbol(name, real=True)
    full = model.expand(rhs)
    B = sympy.diff(full, x)
    if B.has(x):
        return False, B
    return True, B


# Most equations a reason names: every state gets a reason, so a reason that named all of a
# model's equations would make `check` and the module header grow with the square of its size.
MAX_NAMED = 4


def _derivatives(names: list[str]) -> str:
    """Return "dx/dt, dy/dt" for ``names``, the first MAX_NAMED and how many more when there are more."""
    shown = ", ".join(f"d{n}/dt" for n in names[:MAX_NAMED])
    return shown if len(names) <= MAX_NAMED else f"{shown} and {len(names) - MAX_NAMED} more"


def plan_integration(
    model: Model, derivation: MembraneDerivation | None, method: str | None = None, span: Span | None = None
) -> Plan:
    """Return the integration plan for ``method`` (None: the model's own, else ``auto``)."""
    method = method or model.method or "auto"
    if method not in METHODS:
        import difflib

        close = difflib.get_close_matches(method, METHODS, n=1)
        hint = f"did you mean `{close[0]}`?" if close else "choose one of: " + ", ".join(METHODS)
        raise ModelError(
            [Diagnostic("E501", span or model.method_span, f"unknown integration method `{method}`", hint)]
        )
    odes = all_odes(model, derivation)
    reasons: dict[str, str] = {}
    rates: dict[str, sympy.Expr | None] = {}
    auto_note = ""
    if method in ("auto", "exact"):
        system = linear_system(model, odes)
        if isinstance(system, str):
            if method == "exact":
                raise ModelError(
                    [
                        Diagnostic(
                            "E501",
                            span or model.method_span,
                            f"the exact method needs a linear system with constant coefficients, but {system}",
                            "use exponential_euler (conditionally linear equations) or rk4",
                        )
                    ]
                )
        else:
            order = triangular_order(system.A)
            prop = None
            if order is None:
                why = "linear with constant coefficients, but its states feed back on each other"
                refusal = f"the exact method is limited to systems without feedback between states; this one is {why}"
                auto_note = f"the system is {why} (no symbolic propagator); "
            else:
                try:
                    prop = exact_propagator(system, order)
                except TooManyTerms as e:
                    why = (
                        f"linear with constant coefficients, but its exact propagator would have more than "
                        f"{MAX_PROPAGATOR_TERMS} terms ({e.args[0]} counted before stopping)"
                    )
                    refusal = f"the exact method is limited to propagators of at most {MAX_PROPAGATOR_TERMS} terms; this system is {why}"
                    auto_note = f"the system is {why}; "
            if prop is None and method == "exact":
                raise ModelError(
                    [
                        Diagnostic(
                            "E501", span or model.method_span, refusal, "use exponential_euler, which auto picks for it"
                        )
                    ]
                )
            if prop is not None:
                for name in odes:
                    reasons[name] = "linear system with constant coefficients: exact propagator exp(A dt)"
                return Plan("exact", odes, {}, reasons, None, prop)
    if method in ("auto", "exponential_euler"):
        nonlinear = []
        for name, rhs in odes.items():
            linear, B = _conditionally_linear(model, name, rhs)
            if not linear:
                nonlinear.append(name)
            rates[name] = None if B == 0 else B
        if nonlinear and method == "exponential_euler":
            names = _derivatives(nonlinear)
            raise ModelError(
                [
                    Diagnostic(
                        "E501",
                        span or model.method_span,
                        f"exponential_euler needs each equation to be linear in its own variable, and {names} is not",
                        "use `method rk4` (or --method rk4) for this model",
                    )
                ]
            )
        if not nonlinear:
            method = "exponential_euler"
            for name in odes:
                if rates[name] is None:
                    reasons[name] = (
                        f"d{name}/dt does not depend on {name}: forward Euler step (exact for a constant rate)"
                    )
                else:
                    reasons[name] = auto_note + f"d{name}/dt is linear in {name}: exponential Euler (Rush-Larsen)"
            return Plan("exponential_euler", odes, rates, reasons, None)
        method = "rk4"
        why = f"chosen by auto: {_derivatives(nonlinear)} not linear in its own variable, so rk4 for all"
        for name in odes:
            reasons[name] = why
        return Plan("rk4", odes, {}, reasons, TABLEAUS["rk4"])
    for name in odes:
        reasons[name] = f"{method} (requested)"
    return Plan(method, odes, {}, reasons, TABLEAUS[method])


# Largest stable h*|lambda| on the negative real axis for the explicit schemes.
STABILITY_BOUND = {"euler": 2.0, "rk2": 2.0, "rk4": 2.785}


def time_constants(model: Model, odes: dict, at: dict[str, float] | None = None) -> dict[str, float]:
    """Return each state's time constant 1/|d(dX/dt)/dX| (ms) at the initial state, with the states in
    ``at`` (internal units) set instead: where the derivative is negative (a decay), and with ``at``
    also where it is positive (a growth, as in a spike's upstroke)."""
    values = {p.symbol: p.value for p in model.parameters}
    values.update({i.symbol: i.default for i in model.inputs})
    values[TIME_SYMBOL] = 0.0
    inits = {s.symbol: s.init.xreplace(values) for s in model.states}
    inits.update({s.symbol: sympy.Float(at[s.name]) for s in model.states if s.name in (at or {})})
    values.update(inits)
    out = {}
    for name, rhs in odes.items():
        x = sympy.Symbol(name, real=True)
        try:
            B = complex(sympy.diff(model.expand(rhs), x).xreplace(values).evalf())
        except (TypeError, ValueError):
            continue
        if (B.real < 0 or (at and B.real > 0)) and abs(B.imag) < 1e-12:
            out[name] = 1.0 / abs(B.real)
    return out


def threshold_state(model: Model) -> tuple[str, float] | None:
    """Return (state, value in internal units) where the spike condition is met, when it is linear in
    one state (``V > 20 mV``, ``V > V_T + 5*Delta_T``) and a number at the initial values; else None."""
    if model.event is None:
        return None
    cond = model.expand(model.event.condition)
    involved = [s for s in model.states if s.symbol in cond.free_symbols]
    if len(involved) != 1:
        return None
    x = involved[0].symbol
    slope = sympy.diff(cond, x)
    if x in slope.free_symbols or slope == 0:
        return None
    values = {p.symbol: p.value for p in model.parameters}
    values.update({i.symbol: i.default for i in model.inputs})
    values[TIME_SYMBOL] = 0.0
    try:
        at = float((-cond.xreplace({x: 0}) / slope).xreplace(values))
    except (TypeError, ValueError):
        return None
    return (involved[0].name, at) if math.isfinite(at) else None


def stability_warnings(model: Model, plan: Plan, dt: float) -> list[str]:
    """Return warnings for an explicit scheme whose step exceeds its stability bound at the initial
    state, or at the threshold (where a spike's upstroke is steepest, reached at every spike)."""
    bound = STABILITY_BOUND.get(plan.method)
    if bound is None:
        return []
    out, warned = [], set()
    for name, tau in time_constants(model, plan.odes).items():
        if dt > bound * tau:
            warned.add(name)
            out.append(
                f"dt = {dt:g} ms is larger than {plan.method}'s stability limit {bound:g}*tau for {name} "
                f"(tau = {tau:.3g} ms at the initial state): the run may oscillate or blow up; "
                f"use dt <= {bound * tau:.3g} ms or method exponential_euler"
            )
    threshold = threshold_state(model)
    if threshold is None:
        return out
    state, value = threshold
    st = model.state(state)
    where = f"{state} = {value / st.display_scale:g} {st.unit}".rstrip()
    for name, tau in time_constants(model, plan.odes, {state: value}).items():
        if dt > bound * tau and name not in warned:
            out.append(
                f"dt = {dt:g} ms is larger than {plan.method}'s stability limit {bound:g}*tau for {name} "
                f"(tau = {tau:.3g} ms at the threshold {where}, which every spike reaches): the run may blow up "
                f"there; use dt <= {bound * tau:.3g} ms (or, for a spike cut-off, a lower one)"
            )
    return out

"""Integration schemes: which update rule each state variable gets, and why.

A scheme is data, not a class: the explicit Runge-Kutta family is a Butcher tableau
(stages ``k_i = f(t + c_i dt, x + dt * sum_j a_ij k_j)``, update ``x + dt * sum_i b_i k_i``)
that the template lays out; exponential Euler (Rush-Larsen) is the exact solution of
``dx/dt = A + B x`` over one step with A and B frozen at the step's start:
``x_new = x + f(x) * (exp(B dt) - 1) / B`` where ``B = df/dx``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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

__all__ = ["TABLEAUS", "METHODS", "PER_STATE_METHODS", "DT_SYMBOL", "Plan", "plan_integration", "triangular_order"]


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
    """The chosen scheme, the ODEs, and for exponential Euler each state's B = df/dx.

    With per-state methods (``method V: rk4``), ``method`` reads ``rk4+exponential_euler`` and
    ``schemes`` says which states take which: the exponential-Euler states advance half a step,
    the others a whole step of the tableau, then the first half a step again (Strang splitting).
    """

    method: str
    odes: dict  # state name -> dX/dt (with intermediate names kept)
    linear_rates: dict  # state -> B = d(dX/dt)/dX (exponential Euler; None where B = 0)
    reasons: dict  # state -> why it got its update rule
    tableau: Tableau | None
    propagator: Propagator | None = None
    schemes: dict = field(default_factory=dict)  # state -> its scheme, where the model gives states several

    @property
    def order(self) -> int:
        return self.tableau.order if self.tableau else 1

    @property
    def is_split(self) -> bool:
        """Whether states use different schemes (exponential Euler around a Runge-Kutta step)."""
        return len(set(self.schemes.values())) > 1

    def scheme(self, state: str) -> str:
        """Return the scheme that advances ``state``."""
        return self.schemes.get(state, self.method)


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
    """Return the integration plan for ``method`` (None: the model's own, else ``auto``).

    ``method`` (or the model's ``method NAME`` line) is the default of the states that a
    ``method x, y: NAME`` line does not name.
    """
    chosen = method is not None
    method = method or model.method or "auto"
    if method not in METHODS:
        import difflib

        close = difflib.get_close_matches(method, METHODS, n=1)
        hint = f"did you mean `{close[0]}`?" if close else "choose one of: " + ", ".join(METHODS)
        raise ModelError(
            [Diagnostic("E501", span or model.method_span, f"unknown integration method `{method}`", hint)]
        )
    if model.state_methods:
        return _plan_per_state(model, derivation, method, span, chosen)
    return _plan_whole(model, derivation, method, span)


def _plan_whole(model: Model, derivation: MembraneDerivation | None, method: str, span: Span | None) -> Plan:
    """Return the plan that advances every state with ``method`` (``auto``: the best that applies)."""
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


# the schemes a `method x, y: NAME` line may give (exact and auto concern the whole system)
PER_STATE_METHODS = ("euler", "rk2", "rk4", "exponential_euler")


def _plan_per_state(
    model: Model, derivation: MembraneDerivation | None, default: str, span: Span | None, chosen: bool
) -> Plan:
    """Return the plan of a model with ``method x, y: NAME`` lines: each state its scheme, the rest ``default``."""
    odes = all_odes(model, derivation)
    errors = []
    for sm in model.state_methods:
        if sm.method in PER_STATE_METHODS:
            continue
        if sm.method in METHODS:
            message = f"`{sm.method}` chooses for the whole model, not for some states"
            hint = f"write `method {sm.method}` on its own line, or give these states one of: " + ", ".join(
                PER_STATE_METHODS
            )
        else:
            import difflib

            close = difflib.get_close_matches(sm.method, PER_STATE_METHODS, n=1)
            message = f"unknown integration method `{sm.method}`"
            hint = f"did you mean `{close[0]}`?" if close else "choose one of: " + ", ".join(PER_STATE_METHODS)
        errors.append(Diagnostic("E209", sm.method_span, message, hint))
    if errors:
        raise ModelError(list({(d.span, d.message): d for d in errors}.values()))  # once per line
    given = {sm.state: sm for sm in model.state_methods}
    rest = [s for s in odes if s not in given]
    if default == "exact" and rest:
        raise ModelError(
            [
                Diagnostic(
                    "E209",
                    span or model.method_span or model.state_methods[0].method_span,
                    "the exact method (one propagator for the whole linear system) does not combine with per-state methods",
                    "give the other states a method of their own, e.g. `method "
                    + ", ".join(rest)
                    + ": exponential_euler`",
                )
            ]
        )
    linear = {s: _conditionally_linear(model, s, rhs) for s, rhs in odes.items()}
    if default == "auto":
        default = "exponential_euler" if all(linear[s][0] for s in rest) else "rk4"
        source = "chosen by auto for the states without a method line"
    else:
        source = "chosen with --method" if chosen else "the model's `method` line"
    schemes = {s: given[s].method if s in given else default for s in odes}
    for s, scheme in schemes.items():
        if scheme == "exponential_euler" and not linear[s][0]:
            where = given[s].span if s in given else (span or model.method_span)
            fix = f"`method {s}: rk4`"
            errors.append(
                Diagnostic(
                    "E209" if s in given else "E501",
                    where,
                    f"exponential_euler needs d{s}/dt to be linear in {s}, and it is not",
                    f"give {s} a Runge-Kutta scheme: {fix}",
                )
            )
    runge_kutta = {}
    for s, scheme in schemes.items():
        if scheme in TABLEAUS:
            runge_kutta.setdefault(scheme, []).append(s)
    if len(runge_kutta) > 1:
        kinds = "; ".join(f"{k} for {', '.join(v)}" for k, v in sorted(runge_kutta.items()))
        where = next(sm.method_span for sm in model.state_methods if sm.method in TABLEAUS)
        errors.append(
            Diagnostic(
                "E209",
                where,
                f"per-state methods combine exponential_euler with one Runge-Kutta scheme, but this model asks for {kinds}",
                "give these states the same Runge-Kutta scheme",
            )
        )
    if errors:
        raise ModelError(errors)

    def why(s: str) -> str:
        return (
            f"`method {', '.join(n for n in given if given[n].method == given[s].method)}: {given[s].method}`, line {given[s].span.line}"
            if s in given
            else source
        )

    if len(set(schemes.values())) == 1:
        plan = _plan_whole(model, derivation, default if not given else next(iter(schemes.values())), span)
        return Plan(
            plan.method, plan.odes, plan.linear_rates, {s: f"{plan.method} ({why(s)})" for s in odes}, plan.tableau
        )
    ((rk, rk_states),) = runge_kutta.items()
    ee_states = [s for s in odes if schemes[s] == "exponential_euler"]
    rates = {s: None if linear[s][1] == 0 else linear[s][1] for s in ee_states}
    reasons = {}
    for s in odes:
        if s in rk_states:
            reasons[s] = f"{rk} ({why(s)}), the whole step between the half steps of {_derivatives(ee_states)}"
        else:
            reasons[s] = (
                f"exponential Euler ({why(s)}): half steps of dt/2 before and after the {rk} step of "
                f"{_derivatives(rk_states)} (Strang splitting)"
            )
    return Plan(f"{rk}+exponential_euler", odes, rates, reasons, TABLEAUS[rk], None, schemes)


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
    """Return warnings for explicit schemes whose step exceeds their stability bound at the initial
    state, or at the threshold (where a spike's upstroke is steepest, reached at every spike)."""
    if not any(plan.scheme(s) in STABILITY_BOUND for s in plan.odes):
        return []
    out, warned = [], set()
    for name, tau in time_constants(model, plan.odes).items():
        bound = STABILITY_BOUND.get(plan.scheme(name))
        if bound is not None and dt > bound * tau:
            warned.add(name)
            out.append(
                f"dt = {dt:g} ms is larger than {plan.scheme(name)}'s stability limit {bound:g}*tau for {name} "
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
        bound = STABILITY_BOUND.get(plan.scheme(name))
        if bound is not None and dt > bound * tau and name not in warned:
            out.append(
                f"dt = {dt:g} ms is larger than {plan.scheme(name)}'s stability limit {bound:g}*tau for {name} "
                f"(tau = {tau:.3g} ms at the threshold {where}, which every spike reaches): the run may blow up "
                f"there; use dt <= {bound * tau:.3g} ms (or, for a spike cut-off, a lower one)"
            )
    return out

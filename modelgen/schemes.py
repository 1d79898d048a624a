"""Integration schemes: which update rule each state variable gets, and why.

A scheme is data, not a class: the explicit Runge-Kutta family is a Butcher tableau
(stages ``k_i = f(t + c_i dt, x + dt * sum_j a_ij k_j)``, update ``x + dt * sum_i b_i k_i``)
that the template lays out; exponential Euler (Rush-Larsen) is the exact solution of
``dx/dt = A + B x`` over one step with A and B frozen at the step's start:
``x_new = x + f(x) * (exp(B dt) - 1) / B`` where ``B = df/dx``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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

__all__ = [
    "Scheme",
    "SCHEMES",
    "register",
    "TABLEAUS",
    "METHODS",
    "PER_STATE_METHODS",
    "STABILITY_BOUND",
    "DT_SYMBOL",
    "Plan",
    "plan_integration",
    "triangular_order",
]


@dataclass(frozen=True)
class Tableau:
    a: tuple[tuple[sympy.Rational, ...], ...]  # strictly lower triangular rows
    b: tuple[sympy.Rational, ...]
    c: tuple[sympy.Rational, ...]
    order: int


@dataclass(frozen=True)
class Refusal:
    """Why a scheme does not apply to a model: the error for a request of it, and what auto notes."""

    message: str  # the error when the scheme was asked for
    hint: str
    note: str = ""  # for auto: said before the reasons of the scheme it picks instead
    why: str = ""  # for auto: why it fell back to the last scheme of AUTO_ORDER


@dataclass(frozen=True)
class Scheme:
    """An integration scheme, registered by name (:func:`register`), as Brian2's state updaters.

    An explicit Runge-Kutta scheme is data: its ``tableau``. A scheme that needs the model's
    analysis (exponential Euler: equations linear in their own variable; exact: a linear system)
    has ``analyse(model, odes, note) -> Plan | Refusal``. ``kind`` names the step that
    :func:`modelgen.optimise.step_program` writes for it: ``runge_kutta``, ``exponential_euler``
    or ``exact``.
    """

    name: str
    kind: str
    tableau: Tableau | None = None
    analyse: Callable[[Model, dict, str], Plan | Refusal] | None = None
    per_state: bool = True  # may be given to some states (`method x, y: NAME`)
    stability_bound: float | None = None  # largest stable h*|lambda| on the negative real axis (explicit schemes)


SCHEMES: dict[str, Scheme] = {}
TABLEAUS: dict[str, Tableau] = {}
# Largest stable h*|lambda| on the negative real axis for the explicit schemes.
STABILITY_BOUND: dict[str, float] = {}
METHODS: tuple[str, ...] = ("auto",)
# the schemes a `method x, y: NAME` line may give (exact and auto concern the whole system)
PER_STATE_METHODS: tuple[str, ...] = ()
# what auto tries, in order; the last one always applies
AUTO_ORDER = ("exact", "exponential_euler", "rk4")


def register(scheme: Scheme) -> Scheme:
    """Add (or replace) an integration scheme; ``METHODS`` and the tables derived from the schemes follow."""
    global METHODS, PER_STATE_METHODS
    if scheme.name == "auto" or "+" in scheme.name:
        raise ValueError(f"{scheme.name!r} cannot name a scheme")
    if (scheme.kind == "runge_kutta") != (scheme.tableau is not None):
        raise ValueError("a runge_kutta scheme has a tableau, and only it")
    SCHEMES[scheme.name] = scheme
    TABLEAUS.pop(scheme.name, None)
    STABILITY_BOUND.pop(scheme.name, None)
    if scheme.tableau is not None:
        TABLEAUS[scheme.name] = scheme.tableau
    if scheme.stability_bound is not None:
        STABILITY_BOUND[scheme.name] = scheme.stability_bound
    METHODS = ("auto", *SCHEMES)
    PER_STATE_METHODS = tuple(n for n, sc in SCHEMES.items() if sc.per_state)
    return scheme


def unregister(name: str) -> None:
    """Remove a scheme added by :func:`register` (tests)."""
    global METHODS, PER_STATE_METHODS
    del SCHEMES[name]
    TABLEAUS.pop(name, None)
    STABILITY_BOUND.pop(name, None)
    METHODS = ("auto", *SCHEMES)
    PER_STATE_METHODS = tuple(n for n, sc in SCHEMES.items() if sc.per_state)


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
    """Return the plan that advances every state with ``method`` (``auto``: the first of AUTO_ORDER that applies)."""
    odes = all_odes(model, derivation)
    if method != "auto":
        result = _apply(SCHEMES[method], model, odes, "")
        if isinstance(result, Refusal):
            raise ModelError([Diagnostic("E501", span or model.method_span, result.message, result.hint)])
        return result
    note = why = ""
    for name in AUTO_ORDER[:-1]:
        result = _apply(SCHEMES[name], model, odes, note)
        if isinstance(result, Plan):
            return result
        note, why = note + result.note, result.why
    last = AUTO_ORDER[-1]
    plan = _apply(SCHEMES[last], model, odes, note)
    return Plan(
        plan.method, odes, {}, {name: f"chosen by auto: {why}, so {last} for all" for name in odes}, plan.tableau
    )


def _apply(scheme: Scheme, model: Model, odes: dict, note: str) -> Plan | Refusal:
    """Return the plan of ``scheme`` for the model (a tableau always applies), or why it does not apply."""
    if scheme.analyse is not None:
        return scheme.analyse(model, odes, note)
    return Plan(scheme.name, odes, {}, {name: f"{scheme.name} (requested)" for name in odes}, scheme.tableau)


def _analyse_exact(model: Model, odes: dict, note: str) -> Plan | Refusal:
    """Return the exact propagator's plan (a linear system with constant coefficients), or why not."""
    system = linear_system(model, odes)
    if isinstance(system, str):
        return Refusal(
            f"the exact method needs a linear system with constant coefficients, but {system}",
            "use exponential_euler (conditionally linear equations) or rk4",
        )
    order = triangular_order(system.A)
    if order is None:
        why = "linear with constant coefficients, but its states feed back on each other"
        return Refusal(
            f"the exact method is limited to systems without feedback between states; this one is {why}",
            "use exponential_euler, which auto picks for it",
            note=f"the system is {why} (no symbolic propagator); ",
        )
    try:
        prop = exact_propagator(system, order)
    except TooManyTerms as e:
        why = (
            f"linear with constant coefficients, but its exact propagator would have more than "
            f"{MAX_PROPAGATOR_TERMS} terms ({e.args[0]} counted before stopping)"
        )
        return Refusal(
            f"the exact method is limited to propagators of at most {MAX_PROPAGATOR_TERMS} terms; this system is {why}",
            "use exponential_euler, which auto picks for it",
            note=f"the system is {why}; ",
        )
    reasons = {name: "linear system with constant coefficients: exact propagator exp(A dt)" for name in odes}
    return Plan("exact", odes, {}, reasons, None, prop)


def _analyse_exponential_euler(model: Model, odes: dict, note: str) -> Plan | Refusal:
    """Return exponential Euler's plan (each equation linear in its own variable), or why not."""
    rates: dict[str, sympy.Expr | None] = {}
    nonlinear = []
    for name, rhs in odes.items():
        linear, B = _conditionally_linear(model, name, rhs)
        if not linear:
            nonlinear.append(name)
        rates[name] = None if B == 0 else B
    if nonlinear:
        names = _derivatives(nonlinear)
        return Refusal(
            f"exponential_euler needs each equation to be linear in its own variable, and {names} is not",
            "use `method rk4` (or --method rk4) for this model",
            why=f"{names} not linear in its own variable",
        )
    reasons = {}
    for name in odes:
        if rates[name] is None:
            reasons[name] = f"d{name}/dt does not depend on {name}: forward Euler step (exact for a constant rate)"
        else:
            reasons[name] = note + f"d{name}/dt is linear in {name}: exponential Euler (Rush-Larsen)"
    return Plan("exponential_euler", odes, rates, reasons, None)


_h = sympy.Rational(1, 2)
register(Scheme("euler", "runge_kutta", Tableau(a=((),), b=(1,), c=(0,), order=1), stability_bound=2.0))
register(
    Scheme("rk2", "runge_kutta", Tableau(a=((), (_h,)), b=(0, 1), c=(0, _h), order=2), stability_bound=2.0)
)  # explicit midpoint
register(
    Scheme(
        "rk4",
        "runge_kutta",
        Tableau(
            a=((), (_h,), (0, _h), (0, 0, 1)),
            b=(sympy.Rational(1, 6), sympy.Rational(1, 3), sympy.Rational(1, 3), sympy.Rational(1, 6)),
            c=(0, _h, _h, 1),
            order=4,
        ),
        stability_bound=2.785,
    )
)
register(Scheme("exponential_euler", "exponential_euler", analyse=_analyse_exponential_euler))
register(Scheme("exact", "exact", analyse=_analyse_exact, per_state=False))


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

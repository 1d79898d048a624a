"""Integration schemes: which update rule each state variable gets, and why.

A scheme is data, not a class: the explicit Runge-Kutta family is a Butcher tableau
(stages ``k_i = f(t + c_i dt, x + dt * sum_j a_ij k_j)``, update ``x + dt * sum_i b_i k_i``)
that the template lays out; exponential Euler (Rush-Larsen) is the exact solution of
``dx/dt = A + B x`` over one step with A and B frozen at the step's start:
``x_new = x + f(x) * (exp(B dt) - 1) / B`` where ``B = df/dx``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .derive import MembraneDerivation, all_odes
from .diagnostics import Diagnostic, ModelError, Span
from .model import Model

__all__ = ["TABLEAUS", "METHODS", "Plan", "plan_integration"]


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
METHODS = ("auto", "euler", "rk2", "rk4", "exponential_euler")


@dataclass(frozen=True)
class Plan:
    """The chosen scheme, the ODEs, and for exponential Euler each state's B = df/dx."""

    method: str
    odes: dict  # state name -> dX/dt (with intermediate names kept)
    linear_rates: dict  # state -> B = d(dX/dt)/dX (exponential Euler; None where B = 0)
    reasons: dict  # state -> why it got its update rule
    tableau: Tableau | None

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
    if method in ("auto", "exponential_euler"):
        nonlinear = []
        for name, rhs in odes.items():
            linear, B = _conditionally_linear(model, name, rhs)
            if not linear:
                nonlinear.append(name)
            rates[name] = None if B == 0 else B
        if nonlinear and method == "exponential_euler":
            names = ", ".join(f"d{n}/dt" for n in nonlinear)
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
                    reasons[name] = f"d{name}/dt is linear in {name}: exponential Euler (Rush-Larsen)"
            return Plan("exponential_euler", odes, rates, reasons, None)
        method = "rk4"
        for name in odes:
            reasons[name] = (
                "chosen by auto: "
                + ", ".join(f"d{n}/dt" for n in nonlinear)
                + " not linear in its own variable, so rk4 for all"
            )
        return Plan("rk4", odes, {}, reasons, TABLEAUS["rk4"])
    for name in odes:
        reasons[name] = f"{method} (requested)"
    return Plan(method, odes, {}, reasons, TABLEAUS[method])

"""The membrane equation is derived, not written: Q = C V  =>  I = dQ/dt = C dV/dt.

From the model's charge relation and its list of currents, :func:`derive_voltage_ode`
differentiates Q with sympy (states become functions of time), equates dQ/dt with the net
inward current (Kirchhoff's current law for the membrane capacitor) and solves for dV/dt.
Every step is kept as a sympy equation so that it can be shown (``modelgen latex``).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .diagnostics import Diagnostic, ModelError
from .model import TIME_SYMBOL, Model, symbol

__all__ = ["MembraneDerivation", "derive_voltage_ode", "all_odes"]


@dataclass(frozen=True)
class MembraneDerivation:
    """The steps from the charge relation to dV/dt, as sympy equations."""

    state: str  # the membrane potential
    charge: sympy.Eq  # Q(t) = C V(t)
    charge_rate: sympy.Eq  # dQ/dt = C dV/dt
    kirchhoff: sympy.Eq  # I_m = dQ/dt  (I = C dV/dt)
    net_current: sympy.Eq  # I_m = sum(inward) - sum(outward)
    membrane: sympy.Eq  # C dV/dt = sum(inward) - sum(outward)
    voltage_ode: sympy.Eq  # dV/dt = (...)/C
    rhs: sympy.Expr  # right-hand side of dV/dt in plain symbols (currents by name)
    net_current_symbol: sympy.Symbol


def derive_voltage_ode(model: Model) -> MembraneDerivation | None:
    """Return the derivation of the membrane equation, or None for a model without a membrane."""
    if model.membrane_state is None or model.charge is None:
        return None
    t = TIME_SYMBOL
    as_fn = {s.symbol: sympy.Function(s.name, real=True)(t) for s in model.states}
    from_fn = {f: s for s, f in as_fn.items()}
    V = as_fn[symbol(model.membrane_state)]
    Q = sympy.Function(model.charge_name, real=True)(t)
    charge_t = model.charge.xreplace(as_fn)
    dQ = sympy.diff(charge_t, t)
    dVdt = sympy.Derivative(V, t)
    # other states in Q (rare): their derivatives are known from their ODEs
    for ode in model.odes:
        x = as_fn[symbol(ode.state)]
        dQ = dQ.subs(sympy.Derivative(x, t), ode.rhs.xreplace(as_fn))
    inward = [c.symbol for c in model.currents if c.direction == "inward"]
    outward = [c.symbol for c in model.currents if c.direction == "outward"]
    net = sympy.Add(*inward) - sympy.Add(*outward)
    I_m = sympy.Symbol("I_m", real=True)
    if not dQ.has(dVdt):
        raise ModelError(
            [
                Diagnostic(
                    "E204",
                    model.charge_span,
                    f"dQ/dt of `{model.charge_name}` does not depend on d{model.membrane_state}/dt",
                    "the charge must grow with the membrane potential, e.g. `charge Q = C_m * V`",
                )
            ]
        )
    solutions = sympy.solve(sympy.Eq(dQ, net), dVdt, dict=False)
    if len(solutions) != 1:
        raise ModelError(
            [
                Diagnostic(
                    "E204",
                    model.charge_span,
                    f"cannot solve the membrane equation for d{model.membrane_state}/dt ({len(solutions)} solutions)",
                )
            ]
        )
    rhs = solutions[0].xreplace(from_fn)
    dV_display = sympy.Derivative(V, t)
    return MembraneDerivation(
        state=model.membrane_state,
        charge=sympy.Eq(Q, charge_t),
        charge_rate=sympy.Eq(sympy.Derivative(Q, t), dQ),
        kirchhoff=sympy.Eq(I_m, dQ),
        net_current=sympy.Eq(I_m, net),
        membrane=sympy.Eq(dQ, net),
        voltage_ode=sympy.Eq(dV_display, solutions[0]),
        rhs=rhs,
        net_current_symbol=I_m,
    )


def all_odes(model: Model, derivation: MembraneDerivation | None) -> dict[str, sympy.Expr]:
    """Return state name -> dX/dt for every state, in declaration order."""
    out = {}
    for s in model.states:
        if derivation is not None and s.name == derivation.state:
            out[s.name] = derivation.rhs
        else:
            out[s.name] = model.ode(s.name).rhs
    return out

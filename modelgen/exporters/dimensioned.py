"""Units put back into a checked model's expressions, for formats that check units (Brian2, LEMS, NMODL).

A checked model holds plain numbers in modelgen's internal units (see :mod:`modelgen.units`):
``alpha_m = (V/10 + 4)/(1 - exp(-V/10 - 4))`` means ``0.1/mV (V + 40 mV)/(1 - exp(...))/ms``. A
format whose expressions carry units needs each number's unit back. :func:`with_units` infers
it from the dimension the number's place demands: every node gets the dimension its context
wants (an ODE's right-hand side: state/time; an exponent's argument: none; a term of a sum: the
sum's), a product's numeric coefficient takes what its other factors lack, and a bare name whose
dimension differs from the wanted one is scaled by one internal unit of the difference. The
units are :class:`UnitSymbol` factors over six internal base units (mV, cm, ms, uA, K, umol: a
coherent set, so the numbers stay exactly as they are); each format's printer spells them.
"""

from __future__ import annotations

from fractions import Fraction

import sympy

from ..model import TIME_SYMBOL, Model, exprel
from ..units import DIMENSIONLESS, TIME, Dimension

__all__ = [
    "shown_value",
    "BASE_UNITS",
    "UnitSymbol",
    "unit_of",
    "with_units",
    "symbol_dimensions",
    "base_unit_powers",
    "natural_dimension",
]

# the internal base units in the order of base_unit_powers' exponents (voltage replaces mass)
BASE_UNITS = ("mV", "cm", "ms", "uA", "K", "umol")


def shown_value(x: float) -> float:
    """Return ``x`` rounded to 15 significant digits (200 pF, not the 200.00000000000003 of a unit conversion)."""
    return float(f"{x:.15g}")


class UnitSymbol(sympy.Symbol):
    """One internal base unit (``mV``, ``ms``, ...) as a factor of an expression."""


def base_unit_powers(dim: Dimension) -> tuple[Fraction, ...]:
    """Return the exponents of mV, cm, ms, uA, K, umol whose product is one internal unit of ``dim``.

    (SI's mass is replaced by voltage: kg = V s^3 A / m^2.)
    """
    length, mass, time, current, temperature, amount = dim.exps
    return (mass, length - 2 * mass, time + 3 * mass, current + mass, temperature, amount)


def unit_of(dim: Dimension) -> sympy.Expr:
    """Return one internal unit of ``dim`` as a product of :class:`UnitSymbol` powers (1 if dimensionless)."""
    out = sympy.Integer(1)
    for name, e in zip(BASE_UNITS, base_unit_powers(dim)):
        if e:
            out *= UnitSymbol(name) ** sympy.Rational(e.numerator, e.denominator)
    return out


def symbol_dimensions(model: Model) -> dict[sympy.Symbol, Dimension]:
    """Return every name's dimension: parameters, states, inputs, expressions, currents and t."""
    dims = {TIME_SYMBOL: TIME}
    for group in (model.parameters, model.states, model.inputs, model.expressions, model.currents):
        dims.update({q.symbol: q.dimension for q in group})
    return dims


def natural_dimension(e: sympy.Basic, dims: dict) -> Dimension:
    """Return the dimension of ``e`` when its numbers are taken as dimensionless."""
    if e.is_Symbol:
        return dims[e]
    if e.is_Number or not e.free_symbols:
        return DIMENSIONLESS
    if e.is_Add or isinstance(e, (sympy.Min, sympy.Max, sympy.Abs)):
        return natural_dimension(next(a for a in e.args if a.free_symbols), dims)
    if e.is_Mul:
        out = DIMENSIONLESS
        for f in e.args:
            out = out * natural_dimension(f, dims)
        return out
    if e.is_Pow:
        if e.exp.is_Rational:
            return natural_dimension(e.base, dims) ** Fraction(int(e.exp.p), int(e.exp.q))
        return DIMENSIONLESS
    if isinstance(e, sympy.Piecewise):
        return natural_dimension(next((ex for ex, _ in e.args if ex.free_symbols), e.args[0][0]), dims)
    return DIMENSIONLESS  # exp, log, sin, ..., exprel


def _scaled(e: sympy.Expr, have: Dimension, want: Dimension) -> sympy.Expr:
    return e if have == want else e * unit_of(want / have)


def _condition(c, dims: dict):
    if isinstance(c, sympy.logic.boolalg.BooleanAtom):
        return c
    if isinstance(c, sympy.core.relational.Relational):
        side = c.lhs if c.lhs.free_symbols else c.rhs
        d = natural_dimension(side, dims)
        return c.func(with_units(c.lhs, d, dims), with_units(c.rhs, d, dims), evaluate=False)
    return c.func(*(_condition(a, dims) for a in c.args))


def with_units(e: sympy.Expr, want: Dimension, dims: dict[sympy.Symbol, Dimension]) -> sympy.Expr:
    """Return ``e`` (numbers in internal units) with unit factors that make its dimension ``want``."""
    if not e.free_symbols:  # a number (or a constant such as exp(3))
        unit = unit_of(want)
        return sympy.Mul(e, unit, evaluate=False) if e == 0 and unit != 1 else e * unit  # 0 mV stays 0*mV
    if e.is_Symbol:
        return _scaled(e, dims[e], want)
    if e.is_Add:
        return sympy.Add(*(with_units(t, want, dims) for t in e.args))
    if e.is_Mul:
        coeff, rest = e.as_coeff_Mul()
        factors = sympy.Mul.make_args(rest)
        natural = natural_dimension(rest, dims)
        return (
            coeff
            * unit_of(want / natural)
            * sympy.Mul(*(with_units(f, natural_dimension(f, dims), dims) for f in factors))
        )
    if e.is_Pow:
        base = with_units(e.base, natural_dimension(e.base, dims), dims)
        exp = e.exp if e.exp.is_Number else with_units(e.exp, DIMENSIONLESS, dims)
        return _scaled(sympy.Pow(base, exp), natural_dimension(e, dims), want)
    if isinstance(e, (sympy.Min, sympy.Max)):
        return e.func(*(with_units(a, want, dims) for a in e.args), evaluate=False)
    if isinstance(e, sympy.Abs):
        d = natural_dimension(e.args[0], dims)
        return _scaled(sympy.Abs(with_units(e.args[0], d, dims), evaluate=False), d, want)
    if isinstance(e, sympy.Piecewise):
        return sympy.Piecewise(*((with_units(ex, want, dims), _condition(c, dims)) for ex, c in e.args), evaluate=False)
    if isinstance(e, (sympy.Function, exprel)):  # exp, log, sin, ..., exprel: dimensionless in and out
        inner = e.func(*(with_units(a, DIMENSIONLESS, dims) for a in e.args), evaluate=False)
        return _scaled(inner, DIMENSIONLESS, want)
    raise TypeError(f"cannot attach units to {type(e).__name__}: {e}")

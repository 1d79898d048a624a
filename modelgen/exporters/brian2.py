"""The checked model as a runnable Brian2 script (``NeuronGroup`` equations with Brian2's units).

Parameters become a ``namespace`` of Brian2 quantities (in the units the model file wrote),
states, intermediate expressions and currents become equations with units, inputs per-neuron
constants (``I_ext : amp``; a time course is a ``TimedArray`` away, as the script's comment
says), and the spike event the ``threshold``/``reset``/``refractory`` of the group. Numbers in
expressions get their units back through :mod:`modelgen.exporters.dimensioned`.
"""

from __future__ import annotations

import re
from pathlib import Path

import sympy
from sympy.printing.str import StrPrinter

from ..derive import all_odes, derive_voltage_ode
from ..model import Model
from ..schemes import plan_integration
from ..units import DIMENSIONLESS, TIME, UNITS, Dimension
from .dimensioned import (
    BASE_UNITS,
    UnitSymbol,
    base_unit_powers,
    natural_dimension,
    shown_value,
    symbol_dimensions,
    unit_of,
    with_units,
)
from .printing import FormatPrinter
from .templating import environment, provenance

__all__ = ["Brian2Printer", "export", "script_data"]

# internal base units (dimensioned.BASE_UNITS) and SI base units as Brian2 names them
_BASE = dict(zip(BASE_UNITS, ("mV", "cm", "ms", "uA", "kelvin", "umole")))
_SI_BASE = ("volt", "metre", "second", "amp", "kelvin", "mole")
# the model language's unit names that Brian2 spells differently (prefixes are the same)
_UNIT_NAMES = {
    **{"V": "volt", "A": "amp", "S": "siemens", "F": "farad", "s": "second", "m": "metre", "K": "kelvin"},
    **{"Ohm": "ohm", "M": "molar", "Hz": "Hz"},
}
_BRIAN_UNITS = {
    *("mV", "uV", "volt", "ms", "us", "second", "pA", "nA", "uA", "mA", "amp", "pS", "nS", "uS", "mS", "siemens"),
    *("pF", "nF", "uF", "farad", "cm", "um", "mm", "metre", "Hz", "kHz", "mM", "uM", "nM", "kelvin", "ohm", "kohm"),
    "Mohm",
}
_METHODS = {"euler": "euler", "rk2": "rk2", "rk4": "rk4", "exponential_euler": "exponential_euler", "exact": "exact"}
_RESERVED = {"t", "dt", "i", "N", "xi", "lastspike", "not_refractory"}


class Brian2Printer(FormatPrinter, StrPrinter):
    """Prints an expression (units attached) in Brian2's equation syntax (Brian2 has exprel itself)."""

    target = "brian2"
    format_name = "Brian2"

    def _print_UnitSymbol(self, expr: UnitSymbol) -> str:
        return _BASE[expr.name]

    def _print_Piecewise(self, expr) -> str:
        # Brian2 has no conditional expression: int(condition) selects a branch
        *branches, (last, _) = expr.args
        out = self._print(last)
        for value, cond in reversed(branches):
            out = f"(int({self._print(cond)})*({self._print(value)}) + int(not ({self._print(cond)}))*({out}))"
        return out

    def _print_Min(self, expr) -> str:
        return self._min_max(expr, "<")

    def _print_Max(self, expr) -> str:
        return self._min_max(expr, ">")

    def _min_max(self, expr, op: str) -> str:
        out = self._print(expr.args[0])
        for a in expr.args[1:]:
            b = self._print(a)
            out = f"(int(({out}) {op} ({b}))*({out}) + int(not (({out}) {op} ({b})))*({b}))"
        return out


def _si_unit(dim: Dimension) -> str:
    """Return Brian2's spelling of the SI unit of ``dim`` (``amp/metre**2``; ``1`` if dimensionless)."""
    u = sympy.Integer(1)
    for name, e in zip(_SI_BASE, base_unit_powers(dim)):
        if e:
            u *= sympy.Symbol(name) ** sympy.Rational(e.numerator, e.denominator)
    return sympy.sstr(u)


def _brian_unit(token: str) -> str | None:
    """Return Brian2's name of the model language's unit ``token`` (``mS``, ``MOhm`` -> ``Mohm``), or None."""
    if token in _BRIAN_UNITS:
        return token
    for prefix, base in (("", token), (token[:1], token[1:])):
        name = prefix.replace("µ", "u").replace("μ", "u") + _UNIT_NAMES.get(base, base)
        if base in UNITS and name in _BRIAN_UNITS:
            return name
    return None


def _quantity(value_internal: float, dim: Dimension, written_unit: str, scale: float) -> str:
    """Return a Brian2 quantity: in the unit the model wrote where Brian2 knows it, else in internal units."""
    if dim.is_dimensionless:
        return repr(value_internal)
    parts = []
    for tok in re.findall(r"[A-Za-zµμ]+|\^-?\d+|[/*()]|\d+", written_unit):
        name = _brian_unit(tok) if tok[0].isalpha() or tok[0] in "µμ" else tok.replace("^", "**")
        if name is None:
            return f"{value_internal!r}*{Brian2Printer().doprint(unit_of(dim))}"
        parts.append(name)
    unit = "".join(parts)
    value = repr(shown_value(value_internal / scale))
    return f"{value}{unit[1:]}" if unit.startswith("1/") else f"{value}*{unit}"  # 0.02/ms, not 0.02*1/ms


def _name_check(model: Model) -> None:
    clash = sorted(_RESERVED & {q.name for g in (model.parameters, model.states, model.inputs) for q in g})
    if clash:
        raise ValueError(
            f"Brian2 reserves the name{'s' if len(clash) > 1 else ''} {', '.join(clash)}; rename in the model"
        )


def script_data(model: Model) -> dict:
    """Return the plain data the Brian2 template lays out."""
    _name_check(model)
    derivation = derive_voltage_ode(model)
    plan = plan_integration(model, derivation)
    odes = all_odes(model, derivation)
    dims = symbol_dimensions(model)
    printer = Brian2Printer()
    event = model.event
    hold = model.membrane_state or model.states[0].name
    refractory = event is not None and event.refractory is not None

    def show(e, dim):
        return printer.doprint(with_units(e, dim, dims))

    def where(span) -> str:
        return f"[{Path(span.file).name}:{span.line}]" if span is not None else ""

    equations = []
    for s in model.states:
        flag = " (unless refractory)" if refractory and s.name == hold else ""
        ode = model.ode(s.name)
        equations.append(
            (
                f"d{s.name}/dt = {show(odes[s.name], s.dimension / TIME)} : {_si_unit(s.dimension)}{flag}",
                where(ode.span if ode else model.charge_span),
            )
        )
    for name, _, span in model.definition_order():
        q = next((e for e in model.expressions if e.name == name), None) or model.current(name)
        equations.append((f"{name} = {show(q.expr, q.dimension)} : {_si_unit(q.dimension)}", where(span)))
    for c in model.currents:
        if c.is_input and c.name != c.expr.name:
            equations.append((f"{c.name} = {c.expr.name} : {_si_unit(c.dimension)}", where(c.span)))
    for i in model.inputs:
        equations.append((f"{i.name} : {_si_unit(i.dimension)}  # input", where(i.span)))
    threshold = resets = refractory_text = None
    if event is not None:
        rel = event.relation
        d = natural_dimension(rel.lhs if rel.lhs.free_symbols else rel.rhs, dims)
        threshold = f"{show(rel.lhs, d)} {rel.rel_op} {show(rel.rhs, d)}"
        resets = [f"{r.state} {r.op} {show(r.expr, _reset_dimension(model, r))}" for r in event.resets]
        if event.refractory is not None:
            refractory_text = repr(show(event.refractory, TIME))
        elif not event.resets:  # an upward crossing: no new spike while the condition still holds
            refractory_text = repr(threshold)
    method = _METHODS.get(plan.method, "rk4")
    return {
        **provenance(model),
        "parameters": [
            (p.name, _quantity(p.value, p.dimension, p.unit, p.display_scale), where(p.span)) for p in model.parameters
        ],
        "equations": equations,
        "initial": [
            (name, show(init, model.state(name).dimension))
            for name, init in (model.initial_order or [(s.name, s.init) for s in model.states])
        ],
        "inputs": [(i.name, _quantity(i.default, i.dimension, i.unit, i.display_scale)) for i in model.inputs],
        "threshold": threshold,
        "resets": resets or [],
        "refractory": refractory_text,
        "method": method,
        "modelgen_method": plan.method,
        "record": hold,
    }


def _reset_dimension(model: Model, reset) -> Dimension:
    """Return the dimension of a reset's right-hand side (the state's, or none for *= and /=)."""
    return model.state(reset.state).dimension if reset.op in ("=", "+=", "-=") else DIMENSIONLESS


_ENV = environment()


def export(model: Model) -> str:
    """Return a Python script that builds ``model`` as a Brian2 ``NeuronGroup`` and runs it."""
    return _ENV.get_template("brian2.py.j2").render(**script_data(model))

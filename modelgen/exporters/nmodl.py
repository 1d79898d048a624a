"""A model's currents as a NEURON mechanism (an NMODL ``.mod`` file), for current files above all.

Everything except the membrane (its potential is NEURON's ``v``, its capacitance NEURON's ``cm``)
and the input currents goes into one mechanism: the states other than the membrane potential
(``STATE`` with a ``DERIVATIVE`` block, solved with ``cnexp`` where every ODE is linear in its own
state, else ``derivimplicit``), the parameters they read (``PARAMETER``, in modelgen's internal
units, which NMODL's expressions then take as plain numbers, as in modelgen), intermediate
expressions and currents (``ASSIGNED``, computed in ``PROCEDURE values``) and the net outward
current ``i``: a ``NONSPECIFIC_CURRENT`` of a density mechanism (``SUFFIX``) for per-area currents,
of a ``POINT_PROCESS`` for absolute ones. A receptor (``synapse spike: g += w``) becomes
``NET_RECEIVE(weight)``. ``temperature`` is NEURON's ``celsius`` in kelvin. What does not map:
reset lines (NEURON's mechanisms see no spikes of their own cell; written as a comment), a
second receptor, ``where``/``min``/``max``, and the model's threshold and inputs (NEURON's).
"""

from __future__ import annotations

import re

import sympy
from sympy.printing.c import C99CodePrinter

from ..derive import all_odes, derive_voltage_ode
from ..model import Model, symbol
from ..units import AREA, CURRENT, TIME, internal_unit_name
from .printing import FormatPrinter
from .templating import environment, provenance

__all__ = ["NmodlPrinter", "export", "mechanism_data"]

# NEURON's own names a mechanism must not declare
_RESERVED = {"v", "i", "t", "dt", "celsius", "area", "diam", "cm", "weight", "values", "states"}


class NmodlPrinter(FormatPrinter, C99CodePrinter):
    """Prints an expression (plain numbers in internal units) in NMODL's syntax; ``names`` renames symbols."""

    target = "nmodl"
    format_name = "NMODL"
    unsupported_note = " (the model's where/min/max/... do not map)"
    caret_powers = True
    _print_Pi = C99CodePrinter._print_Pi  # M_PI, as C writes it (NEURON's C compiler takes it)

    def __init__(self, names: dict[str, str]):
        super().__init__()
        self.names = names

    def _print_Symbol(self, expr) -> str:
        return self.names.get(expr.name, expr.name)

    def _print_Rational(self, expr) -> str:
        # the double nearest p/q, which is what p.0/q.0 computes, and reads better
        return repr(float(expr)) if expr.q != 1 else str(expr.p)

    def parenthesize(self, item, level, strict=False) -> str:
        if isinstance(item, sympy.Rational) and item > 0:  # printed as one number: no parentheses needed
            return self._print(item)
        return super().parenthesize(item, level, strict)

    def _print_Integer(self, expr) -> str:
        return str(int(expr))

    def _print_Piecewise(self, expr) -> str:
        raise ValueError("NMODL expressions have no conditional value: where() does not map")

    _print_Min = _print_Max = _print_Piecewise


def _nmodl_unit(dim) -> str:
    """Return modelgen's internal unit of ``dim`` in NMODL's spelling (``mS/cm2``, ``/ms``, ``1``)."""
    text = internal_unit_name(dim)
    text = re.sub(r"\^(\d+)", r"\1", text).replace("1/", "/")
    return text


# NEURON's built-in mechanisms: a mechanism of the same name would not load
_NEURON_MECHANISMS = {
    *("AlphaSynapse", "ExpSyn", "Exp2Syn", "IClamp", "VClamp", "SEClamp", "APCount", "NetStim", "PointProcessMark"),
    *("IntFire1", "IntFire2", "IntFire4", "PatternStim", "hh", "pas", "fastpas", "extracellular", "capacitance"),
}


def _mechanism_name(model: Model) -> str:
    """Return the model's name as a NEURON mechanism name (``_modelgen`` added where NEURON has it)."""
    name = re.sub(r"\W", "_", model.name)
    return f"{name}_modelgen" if name in _NEURON_MECHANISMS else name


def mechanism_data(model: Model) -> dict:
    """Return the plain data the NMODL template lays out."""
    derivation = derive_voltage_ode(model)
    odes = all_odes(model, derivation)
    membrane = model.membrane_state
    currents = [c for c in model.currents if not c.is_input]
    if not currents:
        raise ValueError(f"{model.name} has no currents besides inputs: nothing for a NEURON mechanism")
    per_area = {c.dimension == CURRENT / AREA for c in currents}
    if per_area not in ({True}, {False}) or (per_area == {False} and currents[0].dimension != CURRENT):
        raise ValueError("NMODL needs all currents per area (a density mechanism) or all absolute (a point process)")
    density = per_area == {True}
    states = [s for s in model.states if s.name != membrane]
    # what the mechanism reads: its states' ODEs, its currents, and the expressions and parameters they use
    needed: set[str] = {c.name for c in currents}
    pending = [odes[s.name] for s in states] + [c.expr for c in currents] + [s.factor for s in model.synapses]
    defs = {name: expr for name, expr, _ in model.definition_order()}
    while pending:
        e = pending.pop()
        for sym in e.free_symbols:
            if sym.name not in needed:
                needed.add(sym.name)
                if sym.name in defs:
                    pending.append(defs[sym.name])
    for s in states:
        needed.add(s.name)
        pending.append(s.init)
    while pending:  # initial values may read more parameters
        needed.update(sym.name for sym in pending.pop().free_symbols)
    names = {q.name for g in (model.parameters, model.states, model.expressions, model.currents) for q in g}
    clash = sorted((names & needed) & _RESERVED - ({membrane} if membrane else set()))
    if clash:
        raise ValueError(f"NEURON reserves {', '.join(clash)} in a mechanism; rename in the model")
    rename = {membrane: "v"} if membrane else {}
    printer = NmodlPrinter(rename)
    mech = _mechanism_name(model)
    receptors = model.receptors
    if len(receptors) > 1:
        raise ValueError(f"a NEURON mechanism has one NET_RECEIVE; {model.name} has receptors {', '.join(receptors)}")
    initial = dict(model.initial_order) or {s.name: s.init for s in states}
    linear = all(not sympy.diff(odes[s.name], s.symbol).has(s.symbol) for s in states)
    outward = [(c.name, "+" if c.direction == "outward" else "-") for c in currents]
    scale = sympy.Rational(1, 1000) if density else sympy.Integer(1000)  # uA/cm2 -> mA/cm2, uA -> nA
    return {
        **provenance(model),
        "mechanism": mech,
        "density": density,
        "parameters": [
            (p.name, repr(p.value), _nmodl_unit(p.dimension))
            for p in model.parameters
            if p.name in needed and p.name != "temperature"
        ],
        "temperature": "temperature" in needed,
        # initial values at NEURON's v (the states before each one already set)
        "states": [(s.name, _nmodl_unit(s.dimension), printer.doprint(initial[s.name])) for s in states],
        "assigned": [(name, _nmodl_unit(_dimension(model, name))) for name in defs if name in needed],
        "values": [(name, printer.doprint(expr)) for name, expr in defs.items() if name in needed],
        "derivatives": [(s.name, printer.doprint(odes[s.name])) for s in states],
        "method": "cnexp" if linear else "derivimplicit",
        "current": " ".join(f"{sign} {name}" for name, sign in outward).lstrip("+ "),
        "current_scale": printer.doprint(scale),
        "receptor": None
        if not receptors
        else {
            "name": receptors[0],
            "unit": _nmodl_unit(model.receptor_dimension(receptors[0])),
            "increments": [(s.target, printer.doprint(s.factor * symbol("weight"))) for s in model.synapses],
        },
        "resets": []
        if model.event is None
        else [f"{r.state} {r.op} {r.expr}" for r in model.event.resets if r.state != membrane],
        "time_unit": internal_unit_name(TIME),
    }


def _dimension(model: Model, name: str):
    return next((e.dimension for e in model.expressions if e.name == name), None) or model.current(name).dimension


_ENV = environment()


def export(model: Model) -> str:
    """Return the NMODL text of ``model``'s currents as one NEURON mechanism."""
    return _ENV.get_template("nmodl.mod.j2").render(**mechanism_data(model))

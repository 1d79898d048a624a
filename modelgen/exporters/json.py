"""The checked model as a documented, versioned JSON description (schema: docs/export-json.md).

Other tools read a modelgen model from it without parsing the model language: every name with
its dimension and unit, every expression as text (sympy's syntax, ``**`` for powers) and as
sympy ``srepr`` (``sympy.parse_expr``/``eval`` in a sympy namespace rebuilds it exactly), the
currents and their directions, the derived membrane equation, the spike event, the synapses and
the integration plan. All numbers are in modelgen's internal units (given under ``"units"``).
"""

from __future__ import annotations

import json

import sympy

from .. import __version__
from ..derive import all_odes, derive_voltage_ode
from ..model import Model
from ..schemes import plan_integration
from ..units import BASE, Dimension, internal_unit_name
from .dimensioned import shown_value

__all__ = ["SCHEMA", "SCHEMA_VERSION", "export", "model_description"]

SCHEMA = "modelgen-model"
SCHEMA_VERSION = 1
# expressions are written with sympy's own names (str/srepr): no function spellings to translate

_INTERNAL_UNITS = {
    "time": "ms",
    "voltage": "mV",
    "current": "uA",
    "conductance": "mS",
    "capacitance": "uF",
    "length": "cm",
    "concentration": "mM",
    "temperature": "K",
}


def _dimension(dim: Dimension) -> dict[str, str | int]:
    return {name: (int(e) if e.denominator == 1 else str(e)) for name, e in zip(BASE, dim.exps) if e}


def _expr(e: sympy.Expr) -> dict[str, str]:
    return {"text": sympy.sstr(e, order="none"), "srepr": sympy.srepr(e)}


def _quantity(name: str, dim: Dimension) -> dict:
    return {"name": name, "unit": internal_unit_name(dim), "dimension": _dimension(dim)}


def model_description(model: Model) -> dict:
    """Return the JSON-ready description of ``model`` (schema ``modelgen-model`` version 1)."""
    derivation = derive_voltage_ode(model)
    plan = plan_integration(model, derivation)
    odes = all_odes(model, derivation)
    order = {name: i for i, (name, _, _) in enumerate(model.definition_order())}
    event = model.event
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "modelgen_version": __version__,
        "name": model.name,
        "description": model.description,
        "source": {"file": model.file, "sha256": model.source_hash},
        "units": {
            "note": "every number is in modelgen's internal unit of its dimension (a coherent system)",
            "internal": _INTERNAL_UNITS,
        },
        "parameters": [
            {
                **_quantity(p.name, p.dimension),
                "value": p.value,
                "written": {"value": shown_value(p.display_value), "unit": p.unit},
            }
            for p in model.parameters
        ],
        "inputs": [{**_quantity(i.name, i.dimension), "default": i.default} for i in model.inputs],
        "states": [
            {**_quantity(s.name, s.dimension), "initial": _expr(s.init), "derivative": _expr(odes[s.name])}
            for s in model.states
        ],
        "expressions": [
            {**_quantity(e.name, e.dimension), "order": order[e.name], **_expr(e.expr)} for e in model.expressions
        ],
        "currents": [
            {
                **_quantity(c.name, c.dimension),
                "direction": c.direction,
                "is_input": c.is_input,
                **({} if c.is_input else {"order": order[c.name]}),
                **_expr(c.expr),
            }
            for c in model.currents
        ],
        "membrane": None
        if derivation is None
        else {
            "state": derivation.state,
            "charge": {"name": model.charge_name, **_expr(model.charge)},
            "net_current": _expr(derivation.net_current.rhs),
            "voltage_derivative": _expr(derivation.rhs),
        },
        "event": None
        if event is None
        else {
            "condition": _expr(event.relation),
            "crossing": not event.resets,
            "resets": [{"state": r.state, "op": r.op, "value": _expr(r.new_value())} for r in event.resets],
            "refractory": None if event.refractory is None else _expr(event.refractory),
        },
        "synapses": [
            {
                "receptor": s.receptor,
                "target": s.target,
                "increment_per_weight": _expr(s.factor),
                "weight_unit": internal_unit_name(s.weight_dimension),
                "weight_dimension": _dimension(s.weight_dimension),
            }
            for s in model.synapses
        ],
        "integration": {
            "method": plan.method,
            "schemes": {s: plan.schemes.get(s, plan.method) for s in model.state_names},
            "reasons": dict(plan.reasons),
        },
    }


def export(model: Model) -> str:
    """Return the JSON text describing ``model`` (indented, keys in a fixed order)."""
    return json.dumps(model_description(model), indent=2, ensure_ascii=False) + "\n"

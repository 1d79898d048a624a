"""A readable summary of a model: states, membrane, currents, inputs, parameters, events, schemes.

``modelgen show FILE`` prints it; ``NeuronModel.summary()`` returns it. Expressions are shown
as the user wrote them (from the model file), values in the units the model declares.
"""

from __future__ import annotations

import re

import sympy

from .language import _strip_comment as strip_comment
from .units import suggested_unit

__all__ = ["model_summary"]


def _strip_comment(line: str) -> str:
    return strip_comment(line).rstrip()


def _written(line: str, keyword: str = "") -> str:
    """Return the right-hand side of ``[keyword] NAME = expr [direction]`` as written."""
    text = _strip_comment(line).strip()
    if keyword and text.startswith(keyword):
        text = text[len(keyword) :]
    _, sep, rhs = text.partition("=")
    rhs = rhs if sep else text
    rhs = re.sub(r"\s+(inward|outward)\s*$", "", rhs)
    return " ".join(rhs.split())


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def _number(x: float) -> str:
    return f"{x:.6g}"


def model_summary(neuron_model, method: str | None = None) -> str:
    """Return the summary text of a :class:`~modelgen.api.NeuronModel`."""
    m = neuron_model.model
    out = [f"{m.name}" + (f" -- {m.description}" if m.description else "")]
    out.append(f"  source: {m.file} (sha256 {m.source_hash[:12]}...)")
    values = {p.symbol: p.value for p in m.parameters}
    values.update({i.symbol: i.default for i in m.inputs})

    out += ["", "states:"]
    rows = [["name", "unit", "initial value", "as written"]]
    for s in m.states:
        written = _written(s.span.text, "state")
        try:
            initial = _number(float(s.init.xreplace(values)) / s.display_scale)
        except (TypeError, ValueError):
            initial = "?"
        role = "  (membrane potential)" if s.name == m.membrane_state else ""
        same = written in (initial, f"{initial} {s.unit}")
        rows.append([s.name, s.unit or "1", initial, ("" if same else written) + role])
    out += _table(rows)

    d = neuron_model.derivation
    if d is not None:
        C = sympy.simplify(m.charge / sympy.Symbol(d.state, real=True))
        inward = [c.name for c in m.currents if c.direction == "inward"]
        outward = [c.name for c in m.currents if c.direction == "outward"]
        net = " + ".join(inward) + "".join(f" - {c}" for c in outward) if inward else "- " + " - ".join(outward)
        out += ["", "membrane:", f"  {m.charge_name} = {m.charge}  =>  {C}*d{d.state}/dt = {net or '0'}"]

    if m.currents:
        out += ["", "currents:"]
        rows = [["name", "direction", "unit", "definition"]]
        for c in m.currents:
            definition = "input" if c.is_input else _written(c.span.text, "current")
            rows.append([c.name, c.direction, suggested_unit(c.dimension), definition])
        out += _table(rows)

    if m.inputs:
        out += ["", "inputs:"]
        rows = [["name", "unit", "default"]]
        rows += [[i.name, i.unit or "1", _number(i.default / i.display_scale)] for i in m.inputs]
        out += _table(rows)
        first = m.inputs[0]
        out += [
            f"  from Python, a plain number means the unit shown ({first.name}=10 is 10 {first.unit or '(no unit)'});",
            "  text with a unit and values from pint, quantities, astropy, unyt or brian2 are converted",
        ]

    if m.parameters:
        out += ["", "parameters:"]
        out += _table([[p.name, f"{_number(p.display_value)} {p.unit}".strip()] for p in m.parameters])

    if m.expressions:
        out += ["", "intermediate expressions:"]
        out += _table([[e.name, "= " + _written(e.span.text)] for e in m.expressions])

    out += ["", "events:"]
    if m.event is None:
        out.append("  none (no threshold: the model never spikes)")
    else:
        ev = m.event
        kind = "whenever it holds outside the refractory period" if ev.resets else "an upward crossing"
        out.append(f"  spike: {_strip_comment(ev.span.text).strip()}  ({kind})")
        for r in ev.resets:
            out.append(f"  then:  {_strip_comment(r.span.text).strip()}")
        if ev.refractory is not None and ev.refractory_span is not None:
            try:
                ms = f" = {_number(float(ev.refractory.xreplace(values)))} ms"
            except (TypeError, ValueError):
                ms = ""
            out.append(f"  {_strip_comment(ev.refractory_span.text).strip()}{ms}")
    for syn in getattr(m, "synapses", ()):
        out.append(f"  {syn.text}  (weight in {syn.weight_unit})")

    plan = neuron_model.plan(method)
    source = "chosen with --method" if method else ("the model's `method` line" if m.method else "chosen by auto")
    if m.state_methods:
        source = "per-state `method` lines; " + source + " for the other states"
    out += ["", f"integration: {plan.method} ({source})"]
    out += _table([[state, why] for state, why in plan.reasons.items()])
    return "\n".join(out) + "\n"

"""The checked model as a NeuroML2 cell: a LEMS ``ComponentType`` and a runnable LEMS file.

The ComponentType extends NeuroML's ``baseCellMembPot`` (a spiking cell exposing its membrane
potential ``v``; ``baseSpikingCell`` for a model without a voltage state). Parameters and inputs
(constant) are its ``Parameter``s, intermediate expressions and currents ``DerivedVariable``s,
states ``StateVariable``s with ``TimeDerivative``s and ``OnStart`` values, the spike event an
``OnCondition`` sending ``spike``; an upward crossing (a model without resets) is tracked by the
state ``above``, a refractory period by ``refractory`` and ``t_last_spike``. Each receptor is an
input ``EventPort`` whose ``OnEvent`` adds the parameter ``w_<receptor>`` (the weight). Units are
LEMS dimensions (NeuroML's names where NeuroML has the dimension) and the numbers in expressions
are multiples of ``Constant``s of one internal unit (``unit_mV`` ...; see
:mod:`modelgen.exporters.dimensioned`). What does not map: time courses of inputs (constants
only), ``where``/``min``/``max`` (written with ``H``, NeuroML's step function, which is 1/2 at 0)
and per-state integration schemes (LEMS simulators choose their own, pylems forward Euler).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import jinja2
import numpy as np
import sympy
from sympy.printing.str import StrPrinter

from .. import __version__
from ..derive import all_odes, derive_voltage_ode
from ..model import Model
from ..units import AMOUNT, CURRENT, LENGTH, TEMPERATURE, TIME, VOLTAGE, Dimension
from .dimensioned import BASE_UNITS, UnitSymbol, natural_dimension, symbol_dimensions, with_units
from .printing import FormatPrinter
from .templating import environment

__all__ = ["LemsPrinter", "export", "export_network", "component_type_data", "cell_values"]

_RELATIONS = {">": ".gt.", "<": ".lt.", ">=": ".geq.", "==": ".eq.", "!=": ".neq."}  # a <= b: b .geq. a
_OPPOSITE = {">": "<=", "<": ">=", ">=": "<", "<=": ">", "==": "!=", "!=": "=="}
_LEMS_EXPONENTS = ("l", "m", "t", "i", "k", "n")  # LEMS's letters for BASE's dimensions
# the dimension whose internal unit each of dimensioned.BASE_UNITS is
_BASE_DIMENSIONS = dict(zip(BASE_UNITS, (VOLTAGE, LENGTH, TIME, CURRENT, TEMPERATURE, AMOUNT)))

# NeuroML's core dimensions (NeuroMLCoreDimensions.xml) and, where it has one, its unit equal to
# modelgen's internal unit of that dimension
_CORE: dict[tuple[int, ...], tuple[str, str | None]] = {
    (0, 0, 1, 0, 0, 0): ("time", "ms"),
    (0, 0, -1, 0, 0, 0): ("per_time", "per_ms"),
    (2, 1, -3, -1, 0, 0): ("voltage", "mV"),
    (-2, -1, 3, 1, 0, 0): ("per_voltage", None),
    (-2, -1, 3, 2, 0, 0): ("conductance", "mS"),
    (-4, -1, 3, 2, 0, 0): ("conductanceDensity", "mS_per_cm2"),
    (-2, -1, 4, 2, 0, 0): ("capacitance", "uF"),
    (-4, -1, 4, 2, 0, 0): ("specificCapacitance", "uF_per_cm2"),
    (2, 1, -3, -2, 0, 0): ("resistance", None),
    (0, 0, 1, 1, 0, 0): ("charge", None),
    (0, 0, 0, 1, 0, 0): ("current", "uA"),
    (-2, 0, 0, 1, 0, 0): ("currentDensity", "uA_per_cm2"),
    (1, 0, 0, 0, 0, 0): ("length", "cm"),
    (2, 0, 0, 0, 0, 0): ("area", "cm2"),
    (-3, 0, 0, 0, 0, 1): ("concentration", "mM"),
    (0, 0, 0, 0, 0, 1): ("substance", None),
    (0, 0, 0, 0, 1, 0): ("temperature", "K"),
}


class LemsPrinter(FormatPrinter, StrPrinter):
    """Prints an expression (units attached) in LEMS's expression syntax."""

    target = "lems"
    format_name = "LEMS"
    caret_powers = True

    def _print_UnitSymbol(self, expr: UnitSymbol) -> str:
        return f"unit_{expr.name}"

    def _print_Rational(self, expr) -> str:
        return f"({expr.p}/{expr.q})" if expr.q != 1 else str(expr.p)

    def _print_Relational(self, expr) -> str:
        return f"({_relation(self._print(expr.lhs), expr.rel_op, self._print(expr.rhs))})"

    def _print_And(self, expr) -> str:
        return "(" + " .and. ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr) -> str:
        return "(" + " .or. ".join(self._print(a) for a in expr.args) + ")"

    def _step(self, cond) -> str:
        """Return H(...) that is 1 where the relation ``cond`` holds (1/2 where its sides are equal)."""
        if not isinstance(cond, sympy.core.relational.Relational) or cond.rel_op in ("==", "!="):
            raise ValueError(f"LEMS cannot write the condition {cond} inside an expression")
        diff = cond.lhs - cond.rhs if cond.rel_op in (">", ">=") else cond.rhs - cond.lhs
        return f"H({self._print(diff)})"

    def _print_Piecewise(self, expr) -> str:
        *branches, (last, _) = expr.args
        out = self._print(last)
        for value, cond in reversed(branches):
            out = f"({out} + ({self._print(value)} - {out})*{self._step(cond)})"
        return out

    def _print_Min(self, expr) -> str:
        out = self._print(expr.args[0])
        for a in expr.args[1:]:
            b = self._print(a)
            out = f"({b} + (({out}) - ({b}))*H(({b}) - ({out})))"
        return out

    def _print_Max(self, expr) -> str:
        out = self._print(expr.args[0])
        for a in expr.args[1:]:
            b = self._print(a)
            out = f"({b} + (({out}) - ({b}))*H(({out}) - ({b})))"
        return out


def _relation(lhs: str, op: str, rhs: str) -> str:
    """Return ``lhs op rhs`` in LEMS (pylems 0.6.9 reads no ``.leq.``: ``a <= b`` is written ``b .geq. a``)."""
    return f"{rhs} .geq. {lhs}" if op == "<=" else f"{lhs} {_RELATIONS[op]} {rhs}"


def _exps(dim: Dimension) -> tuple[int, ...]:
    if any(e.denominator != 1 for e in dim.exps):
        raise ValueError(f"LEMS dimensions have whole exponents; {dim.si_string()} has not")
    return tuple(int(e) for e in dim.exps)


class _Dimensions:
    """The LEMS dimension and value unit of each dimension met, defining those NeuroML lacks."""

    def __init__(self):
        self.new_dimensions: dict[str, tuple[int, ...]] = {}
        self.new_units: dict[str, tuple[str, int, float]] = {}

    def name(self, dim: Dimension) -> str:
        if dim.is_dimensionless:
            return "none"
        exps = _exps(dim)
        if exps in _CORE:
            return _CORE[exps][0]
        name = "modelgen_" + "_".join(f"{letter}{e}".replace("-", "m") for letter, e in zip(_LEMS_EXPONENTS, exps) if e)
        self.new_dimensions[name] = exps
        return name

    def unit(self, dim: Dimension) -> str:
        """Return the symbol of a LEMS unit equal to one internal unit of ``dim``."""
        exps = _exps(dim)
        if exps in _CORE and _CORE[exps][1]:
            return _CORE[exps][1]
        name = self.name(dim)
        symbol = f"{name}_internal"
        scale, power = dim.internal_scale(), 0  # an exact rational: 10^power * scale
        while scale.p % 10 == 0:
            scale, power = scale / 10, power + 1
        while scale.q % 10 == 0:
            scale, power = scale * 10, power - 1
        self.new_units[symbol] = (name, power, float(scale))
        return symbol

    def value(self, x: float, dim: Dimension) -> str:
        return repr(float(x)) if dim.is_dimensionless else f"{float(x)!r}{self.unit(dim)}"

    def definitions(self) -> dict:
        return {
            "dimensions": [
                (name, " ".join(f'{letter}="{e}"' for letter, e in zip(_LEMS_EXPONENTS, exps) if e))
                for name, exps in sorted(self.new_dimensions.items())
            ],
            "units": [(symbol, *rest) for symbol, rest in sorted(self.new_units.items())],
        }


def component_type_data(model: Model, lems: _Dimensions) -> dict:
    """Return the plain data of ``model``'s ComponentType that the LEMS template lays out."""
    derivation = derive_voltage_ode(model)
    odes = all_odes(model, derivation)
    dims = symbol_dimensions(model)
    printer = LemsPrinter()
    used_units: set[str] = set()

    def show(e, dim) -> str:
        attached = with_units(e, dim, dims)
        used_units.update(s.name for s in attached.atoms(UnitSymbol))
        return printer.doprint(attached)

    names = {
        q.name for g in (model.parameters, model.states, model.inputs, model.expressions, model.currents) for q in g
    }
    reserved = names & {"v", "spike", "above", "refractory", "t_last_spike", "t"} - {"v"}
    if reserved:
        raise ValueError(f"the NeuroML export uses the names {', '.join(sorted(reserved))}; rename in the model")
    voltage_state = model.membrane_state or next((s.name for s in model.states if s.dimension == VOLTAGE), None)
    if "v" in names and voltage_state not in (None, "v"):
        raise ValueError("NeuroML exposes the membrane potential as `v`; rename the model's other `v`")
    event = model.event
    refractory = event is not None and event.refractory is not None
    crossing = event is not None and not event.resets
    held = model.membrane_state or model.states[0].name

    derivatives = []
    for s in model.states:
        rhs = show(odes[s.name], s.dimension / TIME)
        derivatives.append((s.name, f"(1 - refractory)*({rhs})" if refractory and s.name == held else rhs))
    derived = []
    for name, expr, _ in model.definition_order():
        q = next((e for e in model.expressions if e.name == name), None) or model.current(name)
        derived.append((name, lems.name(q.dimension), show(expr, q.dimension)))
    for c in model.currents:
        if c.is_input and c.name != c.expr.name:
            derived.append((c.name, lems.name(c.dimension), c.expr.name))
    if voltage_state is not None and voltage_state != "v":
        derived.append(("v", "voltage", voltage_state))

    spike = None
    if event is not None:
        rel = event.relation
        d = natural_dimension(rel.lhs if rel.lhs.free_symbols else rel.rhs, dims)
        lhs, rhs = show(rel.lhs, d), show(rel.rhs, d)
        test = _relation(lhs, rel.rel_op, rhs)
        spike = {
            "test": test
            + (" .and. above .lt. 0.5" if crossing else "")
            + (" .and. refractory .lt. 0.5" if refractory else ""),
            "rearm": _relation(lhs, _OPPOSITE[rel.rel_op], rhs) + " .and. above .gt. 0.5" if crossing else None,
            "resets": [(r.state, show(r.new_value(), model.state(r.state).dimension)) for r in event.resets],
            "refractory": show(event.refractory, TIME) if refractory else None,
        }
    for receptor in model.receptors:  # the weight w_<receptor>, a parameter of the cell
        dims[sympy.Symbol(f"w_{receptor}", real=True)] = model.receptor_dimension(receptor)
    receptors = [
        (
            r,
            lems.name(model.receptor_dimension(r)),
            [
                (s.target, show(s.factor * sympy.Symbol(f"w_{r}", real=True), model.state(s.target).dimension))
                for s in model.synapses
                if s.receptor == r
            ],
        )
        for r in model.receptors
    ]
    # in parameters and inputs only: LEMS's OnStart does not promise to assign in order
    initial = [(s.name, show(s.init, s.dimension)) for s in model.states]
    initial.append(("t_last_spike", show(sympy.Float(-1e9), TIME)))  # never
    constants = [
        (f"unit_{u}", lems.name(_BASE_DIMENSIONS[u]), f"1{lems.unit(_BASE_DIMENSIONS[u])}")
        for u in BASE_UNITS
        if u in used_units
    ]
    return {
        "name": model.name,
        "description": model.description,
        "extends": "baseCellMembPot" if voltage_state is not None else "baseSpikingCell",
        "parameters": [(p.name, lems.name(p.dimension)) for p in model.parameters]
        + [(i.name, lems.name(i.dimension)) for i in model.inputs]
        + [(f"w_{r}", dn) for r, dn, _ in receptors],
        "constants": constants,
        "states": [(s.name, lems.name(s.dimension)) for s in model.states],
        "initial": initial,
        "derived": derived,
        "derivatives": derivatives,
        "spike": spike,
        "crossing": crossing,
        "refractory": refractory,
        "receptors": receptors,
        "record": voltage_state or model.states[0].name,
    }


def cell_values(model: Model, lems: _Dimensions, values: dict[str, float] | None = None) -> list[tuple[str, str]]:
    """Return a cell Component's attributes: parameters, inputs and weights (``values`` overrides, internal units)."""
    values = values or {}
    out = [(p.name, lems.value(values.get(p.name, p.value), p.dimension)) for p in model.parameters]
    out += [(i.name, lems.value(values.get(i.name, i.default), i.dimension)) for i in model.inputs]
    out += [(f"w_{r}", lems.value(values.get(f"w_{r}", 0.0), model.receptor_dimension(r))) for r in model.receptors]
    return out


def _header(what, file: str, sha256: str) -> dict:
    return {"title": what.replace("--", "- -"), "version": __version__, "file": Path(file).name, "sha256": sha256}


_ENV = environment(autoescape=jinja2.select_autoescape(default=True, default_for_string=True))


def export(
    model: Model, duration_ms: float = 100.0, dt_ms: float = 0.01, inputs: dict[str, float] | None = None
) -> str:
    """Return a LEMS file: NeuroML's core types included, the cell's ComponentType, one cell and a simulation.

    ``inputs``: values of the model's inputs (internal units; default: the model's defaults).
    """
    lems = _Dimensions()
    cell = component_type_data(model, lems)
    return _ENV.get_template("neuroml.xml.j2").render(
        **_header(model.name + (f": {model.description}" if model.description else ""), model.file, model.source_hash),
        types=[cell],
        connection_types=[],
        components=[(model.name, f"{model.name}_cell", cell_values(model, lems, inputs))],
        network=f"net_{model.name}",
        populations=[("pop", f"{model.name}_cell", 1)],
        connections=[],
        outputs=[(cell["record"], f"pop[0]/{cell['record']}"), ("t_last_spike", "pop[0]/t_last_spike")],
        output_file=f"{model.name}.dat",
        notes=[],
        duration=duration_ms,
        dt=dt_ms,
        **lems.definitions(),
    )


def _constant(value) -> float | None:
    """Return a value shared by every neuron (or synapse) as a float, None if they differ."""
    a = np.asarray(value, dtype=float) if not isinstance(value, str) else None
    if a is None or a.size == 0 or not np.all(a == a.flat[0]):
        return None
    return float(a.flat[0])


def export_network(network, duration_ms: float = 100.0, dt_ms: float = 0.01) -> str:
    """Return a LEMS file of a built :class:`~modelgen.network.Network`: a cell type per model, a Component
    per population, every synapse as an explicit connection to the receptor's port (with its delay).

    What NeuroML cannot hold is listed in the file's header (``Not mapped: ...``): values that differ
    between the neurons of a population (the model's value is used), time courses of inputs, Poisson
    drives, and weights that differ between the synapses onto one population's receptor.
    """
    lems = _Dimensions()
    notes: list[str] = []
    types, seen = [], {}
    for pop in network.populations.values():
        model = pop.model.model
        if model.name not in seen:
            seen[model.name] = model.source_hash
            types.append(component_type_data(model, lems))
        elif seen[model.name] != model.source_hash:
            raise ValueError(f"two different models are named {model.name}; NeuroML needs one name per cell type")
    weights: dict[tuple[str, str], float] = {}
    connections, receptors = [], []
    for proj in network.projections:
        w = _constant(proj.weights)
        key = (proj.target, proj.receptor)
        if w is None or weights.get(key, w) != w:
            notes.append(
                f"weights onto {proj.target}'s receptor {proj.receptor} differ between synapses: NeuroML's cell holds one"
            )
        weights.setdefault(key, w if w is not None else float(proj.weights[0]))
        if proj.receptor not in receptors:
            receptors.append(proj.receptor)
        delays = np.broadcast_to(proj.delay_ms, proj.indices.shape)
        for pre in range(len(proj.indptr) - 1):
            for k in range(proj.indptr[pre], proj.indptr[pre + 1]):
                connections.append(
                    (
                        proj.receptor,
                        f"{proj.source}[{pre}]",
                        f"{proj.target}[{int(proj.indices[k])}]",
                        f"{float(delays[k])!r}ms",
                    )
                )
    components, populations, outputs = [], [], []
    for name, pop in network.populations.items():
        model = pop.model.model
        values = {}
        for what, given in (("parameter", pop.params), ("input", pop.inputs)):
            for key, v in given.items():
                c = _constant(v)
                if c is None:
                    notes.append(f"{name}'s {what} {key} differs between neurons or in time: the model's value is used")
                else:
                    values[key] = c
        for key in pop.initial:
            notes.append(f"{name}'s initial {key} differs between neurons: the model's initial value is used")
        for (target, receptor), w in weights.items():
            if target == name:
                values[f"w_{receptor}"] = w
        components.append((model.name, f"{name}_cell", cell_values(model, lems, values)))
        populations.append((name, f"{name}_cell", pop.n))
        record = next(t for t in types if t["name"] == model.name)["record"]
        outputs += [(f"{name}_{record}", f"{name}[0]/{record}"), (f"{name}_t_last_spike", f"{name}[0]/t_last_spike")]
    for drive in network.poisson:
        notes.append(f"the Poisson drive of {drive.target} (receptor {drive.receptor})")
    return _ENV.get_template("neuroml.xml.j2").render(
        **_header(network.name, network.spec.file, _file_hash(network.spec.file)),
        types=types,
        connection_types=receptors,
        components=components,
        network=f"net_{network.name}",
        populations=populations,
        connections=connections,
        outputs=outputs,
        output_file=f"{network.name}.dat",
        notes=[n.replace("--", "- -") for n in dict.fromkeys(notes)],  # inside an XML comment
        duration=duration_ms,
        dt=dt_ms,
        **lems.definitions(),
    )


def _file_hash(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "?" * 64

"""Networks: populations of models, sparse delayed projections, external drives.

A network file, one statement per line (``#`` comments)::

    network CUBA "Brette et al. 2007, benchmark 2"
    population E = "cuba_lif.model" (n = 3200, V = uniform(-60 mV, -50 mV))
    population I = "cuba_lif.model" (n = 800, V = uniform(-60 mV, -50 mV))
    connect E to E (receptor = exc, rule = fixed_probability(0.02), weight = 1.62 mV, delay = 0.1 ms)
    poisson E (receptor = exc, rate = 10 Hz, weight = 0.5 mV)
    input E (I_ext = 200 pA)
    record E (V, v_e, neurons = 5)

Populations override parameters and initial values with constants or distributions
(``uniform(a, b)``, ``normal(mean, sd)``); projections are stored as CSR arrays (sorted
by source); spikes travel through a ring buffer per target population and receptor,
with delays rounded to whole time steps. Populations of one model with the same constant
parameters and inputs are advanced by one simulator over their joined neurons (fewer numpy
calls per step, the same numbers). Everything random is drawn from one
``numpy.random.Generator`` seeded by ``--seed``, in file order, so a seed reproduces a run.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import language as L
from . import memory, protocols
from .atomic import atomic_file
from .checks import check_values, state_bounds, value_problem, value_rules
from .diagnostics import Diagnostic, ModelError, Span, sort_key
from .model import lower_constant
from .protocols import SIGNATURES
from .units import DIMENSIONLESS, TIME, Dimension, describe, suggested_unit, unit_text_scale

__all__ = [
    "NetworkSpec",
    "Network",
    "NetworkResult",
    "parse_network_text",
    "load_network",
    "is_network_file",
    "check_save_path",
]

RULES = {"all_to_all": 0, "one_to_one": 0, "fixed_probability": 1, "fixed_indegree": 1, "from_file": 1}
DISTRIBUTIONS = {"uniform": 2, "normal": 2}
# peak bytes per synapse while a rule builds a projection (tracemalloc, 2000 neurons); 8 of them stay
SYNAPSE_BYTES = {"all_to_all": 18, "one_to_one": 18, "fixed_probability": 18, "fixed_indegree": 41, "from_file": 42}


def is_network_file(path) -> bool:
    """Return True for a network file (by suffix ``.network``)."""
    return str(path).endswith(".network")


# ----------------------------------------------------------------------- syntax
@dataclass(frozen=True)
class Item:
    """``key = value`` (or a bare name) inside a statement's parentheses."""

    key: str
    value: object  # expression tree, or None for a bare name
    span: Span


@dataclass(frozen=True)
class FileRef:
    """A quoted file name, as in ``from_file("pairs.csv")``."""

    path: str
    span: Span


@dataclass(frozen=True)
class ProtocolText:
    """The text of an input protocol (``step(…)``, ``sine(…)``, …) in an ``input`` statement."""

    text: str
    span: Span


@dataclass(frozen=True)
class NetStatement:
    kind: str  # population connect poisson input record
    span: Span
    name: str = ""  # population name / target
    name_span: Span | None = None
    source: str = ""  # connect: source population
    source_span: Span | None = None
    path: str = ""  # population: model file
    path_span: Span | None = None
    items: tuple[Item, ...] = ()

    def item(self, key: str) -> Item | None:
        return next((i for i in self.items if i.key == key), None)


@dataclass(frozen=True)
class NetworkSpec:
    file: str
    name: str
    description: str
    statements: tuple[NetStatement, ...] = field(default=())

    def of_kind(self, kind: str) -> list[NetStatement]:
        return [s for s in self.statements if s.kind == kind]


class _Fail(Exception):
    def __init__(self, diag: Diagnostic):
        self.diag = diag


def _items(toks: list[L.Token], span: Span, raw_protocols: bool = False) -> tuple[Item, ...]:
    """Parse ``( key = expr, name, ... )`` from tokens starting at the opening parenthesis."""
    end_col = len(span.text.rstrip()) + 1
    if not toks or toks[0].text != "(":
        col = toks[0].col if toks else end_col
        raise _Fail(Diagnostic("E003", span.at(col, 1), "expected `(` with the statement's settings, e.g. (n = 100)"))
    if toks[-1].text != ")":
        raise _Fail(
            Diagnostic("E003", span.at(toks[-1].col, len(toks[-1].text)), "expected `)` at the end of the line")
        )
    groups = L.split_top_level(toks[1:-1])
    out = []
    for g in groups:
        if not g:
            continue
        key = g[0]
        if key.kind != "NAME":
            raise _Fail(
                Diagnostic("E003", span.at(key.col, len(key.text)), f"expected a setting name, found `{key.text}`")
            )
        kspan = span.at(key.col, len(key.text))
        if len(g) == 1:
            out.append(Item(key.text, None, kspan))
            continue
        if g[1].text != "=":
            raise _Fail(Diagnostic("E003", span.at(g[1].col, len(g[1].text)), f"expected `=` after `{key.text}`"))
        v = g[2:]
        if len(v) == 4 and v[0].text == "from_file" and v[1].text == "(" and v[2].kind == "STRING" and v[3].text == ")":
            value = L.Call(
                "from_file", (FileRef(v[2].text[1:-1], span.at(v[2].col, len(v[2].text))),), span.at(v[0].col, 9)
            )
        elif raw_protocols and v and v[0].text in SIGNATURES and len(v) > 1 and v[1].text == "(":
            # an input protocol such as step(200 pA, on=100 ms): resolved by modelgen.protocols at run time
            start, end = v[0].col, v[-1].col + len(v[-1].text)
            value = ProtocolText(span.text[start - 1 : end - 1], span.at(start, end - start))
        else:
            value = L._ExprParser(v, span, frozenset()).parse_all()
        out.append(Item(key.text, value, kspan))
    return tuple(out)


def parse_network_text(source: str, file: str = "<network>") -> NetworkSpec:
    """Return the statements of a network file; raise ModelError listing every syntax error."""
    diags: list[Diagnostic] = []
    name, description = "", ""
    statements: list[NetStatement] = []
    if "\x00" in source:
        raise ModelError([Diagnostic("E004", Span(file, 1, 1, 1, ""), "file contains NUL bytes; is it a binary file?")])
    for lineno, raw in enumerate(source.lstrip("\ufeff").replace("\r\n", "\n").split("\n"), start=1):
        span = Span(file, lineno, 1, max(1, len(raw)), raw)
        text = L._strip_comment(raw)
        if not text.strip():
            continue
        try:
            toks = L._tokenize(text, span)
            head = toks[0]
            if head.text == "network":
                if len(toks) < 2 or toks[1].kind != "NAME":
                    raise _Fail(Diagnostic("E003", span.at(head.col, 7), "`network` needs a name"))
                name = toks[1].text
                if len(toks) > 2 and toks[2].kind == "STRING":
                    description = toks[2].text[1:-1]
                continue
            if head.text not in ("population", "connect", "poisson", "input", "record"):
                close = difflib.get_close_matches(
                    head.text, ["network", "population", "connect", "poisson", "input", "record"], n=1
                )
                raise _Fail(
                    Diagnostic(
                        "E002",
                        span.at(head.col, len(head.text)),
                        f"cannot understand this line (it starts with `{head.text}`)",
                        f"did you mean `{close[0]}`?"
                        if close
                        else "network statements: network, population, connect, poisson, input, record",
                    )
                )
            if len(toks) < 2 or toks[1].kind != "NAME":
                raise _Fail(
                    Diagnostic("E003", span.at(head.col, len(head.text)), f"`{head.text}` needs a population name")
                )
            pname, pspan = toks[1].text, span.at(toks[1].col, len(toks[1].text))
            if head.text == "population":
                if len(toks) < 4 or toks[2].text != "=" or toks[3].kind != "STRING":
                    raise _Fail(
                        Diagnostic("E003", pspan, 'write a population as `population E = "model.model" (n = 100)`')
                    )
                path = toks[3].text[1:-1]
                statements.append(
                    NetStatement(
                        "population",
                        span,
                        pname,
                        pspan,
                        path=path,
                        path_span=span.at(toks[3].col, len(toks[3].text)),
                        items=_items(toks[4:], span),
                    )
                )
            elif head.text == "connect":
                if len(toks) < 4 or toks[2].text != "to" or toks[3].kind != "NAME":
                    raise _Fail(
                        Diagnostic(
                            "E003",
                            pspan,
                            "write a projection as `connect E to I (receptor = exc, rule = fixed_probability(0.02), weight = 1 nS)`",
                        )
                    )
                statements.append(
                    NetStatement(
                        "connect",
                        span,
                        toks[3].text,
                        span.at(toks[3].col, len(toks[3].text)),
                        pname,
                        pspan,
                        items=_items(toks[4:], span),
                    )
                )
            else:
                items = _items(toks[2:], span, raw_protocols=head.text == "input")
                statements.append(NetStatement(head.text, span, pname, pspan, items=items))
        except _Fail as f:
            diags.append(f.diag)
        except L._Fail as f:
            diags.append(f.diag)
    if not name and not diags:
        diags.append(
            Diagnostic(
                "E207",
                Span(file, 1, 1, 1, source.split("\n", 1)[0]),
                "the file has no `network` line",
                'start it with e.g. `network Demo "two neurons"`',
            )
        )
    if diags:
        raise ModelError(diags)
    return NetworkSpec(file, name, description, tuple(statements))


# ----------------------------------------------------------------------- building
@dataclass
class Population:
    name: str
    model: object  # api.NeuronModel
    n: int
    params: dict = field(default_factory=dict)  # internal units: float or (n,) arrays
    initial: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    record: list = field(default_factory=list)
    record_neurons: int = 10


@dataclass
class Projection:
    source: str
    target: str
    receptor: str
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray  # internal units; a read-only broadcast view if all synapses share one
    delays: np.ndarray  # in steps (filled at run time from delay_ms)
    delay_ms: np.ndarray  # a read-only broadcast view if all synapses share one

    @property
    def n_synapses(self) -> int:
        return int(self.indices.size)

    @property
    def nbytes(self) -> int:
        """Return the bytes its arrays hold (a value shared by every synapse counts once)."""
        arrays = (self.indptr, self.indices, self.weights, self.delays, self.delay_ms)
        return sum(a.itemsize if a.size and a.strides == (0,) else a.nbytes for a in arrays)


@dataclass
class PoissonDrive:
    target: str
    receptor: str
    rate: float  # 1/ms
    weight: float


class _Values:
    """Evaluate setting values: constants with units, or distributions drawn from ``rng``."""

    def __init__(self, rng: np.random.Generator, diags: list[Diagnostic]):
        self.rng = rng
        self.diags = diags

    def constant(self, node, want: Dimension | None, what: str):
        try:
            value, dim = lower_constant(node, node_file(node))
        except ModelError as e:
            self.diags.extend(e.diagnostics)
            return None
        if want is not None and dim != want and not (value == 0 and dim.is_dimensionless):
            self.diags.append(
                Diagnostic(
                    "E301",
                    node_span(node),
                    f"{what} must be {describe(want)} (e.g. {suggested_unit(want)}), but this is {describe(dim)}",
                )
            )
            return None
        return value

    def value(self, node, want: Dimension | None, what: str, n: int):
        """Return a float, or an (n,) array for a distribution."""
        if isinstance(node, L.Call) and node.func in DISTRIBUTIONS:
            if len(node.args) != DISTRIBUTIONS[node.func]:
                self.diags.append(
                    Diagnostic("E104", node.span, f"{node.func}() takes {DISTRIBUTIONS[node.func]} arguments")
                )
                return None
            a, b = (self.constant(arg, want, what) for arg in node.args)
            if a is None or b is None:
                return None
            if node.func == "uniform":
                return self.rng.uniform(a, b, size=n)
            return self.rng.normal(a, b, size=n)
        return self.constant(node, want, what)


def node_span(node) -> Span | None:
    return getattr(node, "span", None)


def node_file(node) -> str:
    s = node_span(node)
    return s.file if s else "<value>"


@dataclass
class Network:
    """A checked network: populations with built models, projections, drives."""

    spec: NetworkSpec
    populations: dict[str, Population]
    projections: list[Projection]
    poisson: list[PoissonDrive]
    seed: int
    max_memory: int | None = None  # bytes a run may use (None: the memory available)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def n_neurons(self) -> int:
        return sum(p.n for p in self.populations.values())

    @property
    def n_synapses(self) -> int:
        return sum(p.n_synapses for p in self.projections)

    def run(
        self,
        duration,
        dt,
        out_dir=None,
        method: str | None = None,
        record: list[str] | None = None,
        progress=None,
        max_memory: int | str | None = None,
    ) -> NetworkResult:
        """Simulate ``duration`` in steps of ``dt``; record spikes and chosen traces.

        ``duration`` and ``dt`` are numbers in ms, text with a unit (``"1 s"``) or values with
        units from pint, quantities, astropy, unyt or brian2.

        ``out_dir``: the folder of the generated modules (default: modelgen's cache, see
        :mod:`modelgen.cache`). ``progress(done_steps, total_steps)`` is called every 50 steps if given. Raises
        MemoryLimitError before allocating if the run would take the memory in use past
        ``max_memory`` (bytes or text such as ``"4GiB"``; default: the network's, else the memory available).
        """
        from .api import quantity

        limit = self.max_memory if max_memory is None else memory.parse_size(max_memory)
        duration, dt = quantity(duration, TIME, "duration", "ms"), quantity(dt, TIME, "dt", "ms")
        return _simulate(self, duration, dt, out_dir, method, record or [], progress, limit)


def _resolve_model_path(spec_file: str, path: str, span: Span | None) -> Path:
    base = Path(spec_file).resolve().parent
    p = Path(path)
    if p.is_absolute():
        raise ModelError([Diagnostic("E003", span, f"path {path!r} must be relative to the network file")])
    for root in (base, Path.cwd().resolve()):
        candidate = (root / p).resolve()
        if candidate.is_relative_to(root) and candidate.is_file():
            return candidate
    raise ModelError(
        [
            Diagnostic(
                "E101",
                span,
                f"file {path!r} not found next to {Path(spec_file).name}",
                "paths are relative to the network file and may not leave its folder",
            )
        ]
    )


def build_network(spec: NetworkSpec, seed: int = 0, max_memory: int | None = None) -> Network:
    """Return the network of ``spec`` with models loaded and connectivity drawn from ``seed``.

    Raises MemoryLimitError before building a population or projection that would take the
    memory in use past ``max_memory`` bytes (None: the memory available).
    """
    from .api import load

    budget = [max_memory, 0]  # the limit, and the bytes the network holds so far
    rng = np.random.default_rng(seed)
    diags: list[Diagnostic] = []
    vals = _Values(rng, diags)
    pops: dict[str, Population] = {}
    for st in spec.of_kind("population"):
        if st.name in pops:
            diags.append(Diagnostic("E102", st.name_span, f"population `{st.name}` is defined twice"))
            continue
        try:
            model = load(_resolve_model_path(spec.file, st.path, st.path_span))
        except ModelError as e:
            diags.extend(e.diagnostics)
            continue
        n_item = st.item("n")
        n = vals.constant(n_item.value, DIMENSIONLESS, "n") if n_item and n_item.value is not None else None
        if n is None or n != int(n) or n < 1:
            if n_item is None:
                diags.append(Diagnostic("E003", st.name_span, f"population `{st.name}` needs a size, e.g. (n = 100)"))
            elif n is not None:
                diags.append(Diagnostic("E003", n_item.span, "n must be a whole number of neurons, at least 1"))
            continue
        pop = Population(st.name, model, int(n))
        m = model.model
        drawn = sum(1 for item in st.items if isinstance(item.value, L.Call) and item.value.func in DISTRIBUTIONS)
        needs = memory.run_needs(pop.n, len(m.state_names), 0, 0, per_neuron=drawn)
        memory.require(needs, f"population {st.name} ({pop.n} neurons)", "use fewer neurons (n = …)", *budget)
        budget[1] += needs["per-neuron values"]
        for item in st.items:
            if item.key == "n":
                continue
            if item.value is None:
                diags.append(Diagnostic("E003", item.span, f"`{item.key}` needs a value, e.g. {item.key} = …"))
            elif item.key in {p.name for p in m.parameters}:
                v = vals.value(item.value, m.parameter(item.key).dimension, item.key, pop.n)
                if v is not None and _physical(m, item, v, diags):
                    pop.params[item.key] = v
            elif item.key in m.state_names:
                v = vals.value(item.value, m.state(item.key).dimension, item.key, pop.n)
                if v is not None:
                    pop.initial[item.key] = v
            else:
                diags.append(
                    _unknown(
                        item, "parameter or state", [p.name for p in m.parameters] + list(m.state_names), model.name
                    )
                )
        pops[st.name] = pop

    def population(name: str, span: Span | None) -> Population | None:
        if name in pops:
            return pops[name]
        close = difflib.get_close_matches(name, list(pops), n=1)
        diags.append(
            Diagnostic(
                "E101",
                span,
                f"unknown population `{name}`",
                f"did you mean `{close[0]}`?" if close else 'declare it with `population NAME = "file.model" (n = …)`',
            )
        )
        return None

    projections = []
    for st in spec.of_kind("connect"):
        src, tgt = population(st.source, st.source_span), population(st.name, st.name_span)
        if src is None or tgt is None:
            continue
        proj = _projection(st, src, tgt, vals, diags, rng, spec.file, budget)
        if proj is not None:
            projections.append(proj)
            budget[1] += proj.nbytes

    poisson = []
    for st in spec.of_kind("poisson"):
        tgt = population(st.name, st.name_span)
        if tgt is None:
            continue
        receptor = _receptor(st, tgt, diags)
        rate_item, w_item = st.item("rate"), st.item("weight")
        if receptor is None:
            continue
        if rate_item is None or w_item is None:
            diags.append(
                Diagnostic("E003", st.name_span, "a Poisson drive needs (receptor = …, rate = … Hz, weight = …)")
            )
            continue
        rate = vals.constant(rate_item.value, DIMENSIONLESS / TIME, "rate")
        weight = vals.constant(
            w_item.value, tgt.model.model.receptor_dimension(receptor), f"weight at receptor {receptor}"
        )
        if rate is not None and weight is not None:
            poisson.append(PoissonDrive(st.name, receptor, rate, weight))

    for st in spec.of_kind("input"):
        tgt = population(st.name, st.name_span)
        if tgt is None:
            continue
        m = tgt.model.model
        for item in st.items:
            if item.key not in {i.name for i in m.inputs}:
                diags.append(_unknown(item, "input", [i.name for i in m.inputs], tgt.model.name))
            elif isinstance(item.value, ProtocolText):
                tgt.inputs[item.key] = item.value  # resolved when the run's dt and duration are known
            elif item.value is not None:
                v = vals.value(item.value, m.input(item.key).dimension, item.key, tgt.n)
                if v is not None and _physical(m, item, v, diags):
                    tgt.inputs[item.key] = v

    for st in spec.of_kind("record"):
        tgt = population(st.name, st.name_span)
        if tgt is None:
            continue
        m = tgt.model.model
        known = list(m.state_names) + [name for name, _, _ in m.definition_order()] + [i.name for i in m.inputs]
        for item in st.items:
            if item.key == "neurons" and item.value is not None:
                k = vals.constant(item.value, DIMENSIONLESS, "neurons")
                if k is not None:
                    tgt.record_neurons = int(k)
            elif item.value is None and item.key in known:
                tgt.record.append(item.key)
            else:
                diags.append(_unknown(item, "variable to record", known, tgt.model.name))
    errors = [d for d in diags if d.severity == "error"]
    if errors:
        raise ModelError(sorted(diags, key=sort_key))
    return Network(spec, pops, projections, poisson, seed, max_memory)


def _physical(model, item: Item, value, diags: list[Diagnostic]) -> bool:
    """Return True if ``value`` keeps the rule of ``item.key`` (see checks.py); else report it at the value."""
    problem = value_problem(model, item.key, value)
    if problem is not None:
        diags.append(
            Diagnostic("E305", L.node_extent(item.value) or item.span, problem, value_rules(model)[item.key].hint)
        )
    return problem is None


def _unknown(item: Item, what: str, choices: list[str], model: str) -> Diagnostic:
    close = difflib.get_close_matches(item.key, choices, n=1)
    hint = f"did you mean `{close[0]}`?" if close else f"{model} has: " + ", ".join(choices)
    return Diagnostic("E101", item.span, f"`{item.key}` is not a {what} of {model}", hint)


def _receptor(st: NetStatement, tgt: Population, diags: list[Diagnostic]) -> str | None:
    item = st.item("receptor")
    receptors = tgt.model.model.receptors
    if item is None or not isinstance(item.value, L.Name):
        diags.append(
            Diagnostic(
                "E003",
                item.span if item else st.name_span,
                "name the receptor spikes arrive at, e.g. (receptor = exc, …)",
                f"{tgt.model.name} has receptors: {', '.join(receptors) or 'none (add `synapse NAME: x += w` to the model)'}",
            )
        )
        return None
    name = item.value.id
    if name not in receptors:
        close = difflib.get_close_matches(name, receptors, n=1)
        hint = (
            f"did you mean `{close[0]}`?"
            if close
            else f"{tgt.model.name} has receptors: {', '.join(receptors) or 'none (add `synapse NAME: x += w` to the model)'}"
        )
        diags.append(
            Diagnostic(
                "E101", item.value.span, f"population {tgt.name} ({tgt.model.name}) has no receptor `{name}`", hint
            )
        )
        return None
    return name


def _projection(
    st, src: Population, tgt: Population, vals: _Values, diags, rng, spec_file, budget
) -> Projection | None:
    receptor = _receptor(st, tgt, diags)
    rule_item, w_item = st.item("rule"), st.item("weight")
    if receptor is None:
        return None
    if rule_item is None or w_item is None:
        diags.append(
            Diagnostic(
                "E003",
                st.name_span,
                "a projection needs (receptor = …, rule = …, weight = …)",
                'rules: all_to_all, one_to_one, fixed_probability(p), fixed_indegree(k), from_file("pairs.csv")',
            )
        )
        return None
    rule = rule_item.value
    rule_name = rule.func if isinstance(rule, L.Call) else rule.id if isinstance(rule, L.Name) else None
    if rule_name not in RULES or (RULES[rule_name] and not isinstance(rule, L.Call)):
        diags.append(
            Diagnostic(
                "E003",
                node_span(rule) or rule_item.span,
                "unknown connection rule",
                'rules: all_to_all, one_to_one, fixed_probability(p), fixed_indegree(k), from_file("pairs.csv")',
            )
        )
        return None
    autapses_item = st.item("autapses")
    allow_self = src is not tgt or (
        autapses_item is not None
        and autapses_item.value is not None
        and vals.constant(autapses_item.value, DIMENSIONLESS, "autapses") == 1
    )
    ns, nt = src.n, tgt.n
    drawn = sum(  # values drawn per synapse
        1
        for item in (w_item, st.item("delay"))
        if item is not None and isinstance(item.value, L.Call) and item.value.func in DISTRIBUTIONS
    )

    def check(synapses: float) -> None:
        needs = {"connectivity": int(synapses * SYNAPSE_BYTES.get(rule_name, 18))}
        needs["weights and delays"] = int(synapses * drawn * 8)
        what = f"connecting {src.name} to {tgt.name} ({rule_name}, about {int(synapses):,} synapses)"
        advice = (
            "list fewer pairs in the file"
            if rule_name == "from_file"
            else "use fewer neurons or a sparser rule (fixed_probability, fixed_indegree)"
        )
        memory.require(needs, what, advice, *budget)

    if rule_name == "all_to_all":
        check(ns * (nt - (0 if allow_self else 1)))
        s, t = _all_to_all(ns, nt, allow_self)
    elif rule_name == "one_to_one":
        if ns != nt:
            diags.append(
                Diagnostic(
                    "E003",
                    node_span(rule),
                    f"one_to_one needs populations of equal size ({src.name}: {ns}, {tgt.name}: {nt})",
                )
            )
            return None
        check(ns)
        s = t = np.arange(ns)
    elif rule_name == "from_file":
        s, t = _pairs_from_file(rule, spec_file, ns, nt, diags, check)
        if s is None:
            return None
    else:
        arg = rule.args[0] if len(rule.args) == 1 else None
        x = vals.constant(arg, DIMENSIONLESS, rule_name) if arg is not None else None
        if x is None:
            if arg is None:
                diags.append(Diagnostic("E104", rule.span, f"{rule_name}() takes one argument"))
            return None
        if rule_name == "fixed_probability":
            if not 0 <= x <= 1:
                diags.append(
                    Diagnostic("E003", node_span(arg), f"a connection probability must lie in [0, 1], not {x:g}")
                )
                return None
            check(ns * (nt - (0 if allow_self else 1)) * x)
            s, t = _fixed_probability(rng, ns, nt, x, allow_self)
        else:
            k = int(x)
            available = ns - (0 if allow_self else 1)
            if k != x or k < 0 or k > available:
                diags.append(
                    Diagnostic("E003", node_span(arg), f"fixed_indegree needs a whole number between 0 and {available}")
                )
                return None
            check(nt * k)
            s, t = _fixed_indegree(rng, ns, nt, k, allow_self)
    if not allow_self and rule_name == "from_file":
        keep = s != t
        s, t = s[keep], t[keep]
    w = vals.value(w_item.value, tgt.model.model.receptor_dimension(receptor), f"weight at receptor {receptor}", s.size)
    d_item = st.item("delay")
    d = vals.value(d_item.value, TIME, "delay", s.size) if d_item is not None and d_item.value is not None else 0.0
    if w is None or d is None:
        return None
    # a value shared by every synapse is stored once (a read-only broadcast view), not per synapse
    w = np.broadcast_to(np.asarray(w, dtype=float), s.shape)
    d = np.broadcast_to(np.asarray(d, dtype=float), s.shape)
    if np.any(d < 0):
        diags.append(Diagnostic("E003", d_item.span, "delays cannot be negative"))
        return None
    if not np.all(s[:-1] <= s[1:]):  # most rules draw the synapses by source already
        order = np.argsort(s, kind="stable")
        s, t = s[order], t[order]
        w = w[order] if w.strides[0] else w
        d = d[order] if d.strides[0] else d
    indptr = np.searchsorted(s, np.arange(ns + 1)).astype(np.int64)
    return Projection(
        src.name,
        tgt.name,
        receptor,
        indptr,
        t.astype(np.int64, copy=False),
        w,
        np.broadcast_to(np.int64(0), s.shape),
        d,
    )


def _all_to_all(ns: int, nt: int, allow_self: bool):
    """Return (sources, targets) of every pair, by source then target (without i -> i unless ``allow_self``)."""
    if allow_self:
        return np.repeat(np.arange(ns), nt), np.tile(np.arange(nt), ns)
    t = np.tile(np.arange(nt - 1), ns).reshape(ns, nt - 1)
    t += t >= np.arange(ns)[:, None]  # skip i itself (source and target are one population: ns == nt)
    return np.repeat(np.arange(ns), nt - 1), t.reshape(-1)


def _fixed_probability(rng, ns: int, nt: int, p: float, allow_self: bool):
    counts = rng.binomial(nt - (0 if allow_self else 1), p, size=ns)
    t = np.empty(int(counts.sum()), dtype=np.int64)  # filled source by source: no list of small arrays
    end = 0
    for i, k in enumerate(counts):
        if allow_self:
            t[end : end + k] = rng.choice(nt, size=k, replace=False)
        else:
            c = rng.choice(nt - 1, size=k, replace=False)
            t[end : end + k] = c + (c >= i)  # skip i itself
        end += k
    return np.repeat(np.arange(ns), counts), t


def _fixed_indegree(rng, ns: int, nt: int, k: int, allow_self: bool):
    sources = []
    for j in range(nt):
        if allow_self:
            sources.append(rng.choice(ns, size=k, replace=False))
        else:
            c = rng.choice(ns - 1, size=k, replace=False)
            sources.append(c + (c >= j))
    s = np.concatenate(sources) if sources else np.zeros(0, dtype=np.int64)
    t = np.repeat(np.arange(nt), k)
    return s.astype(np.int64), t


def _pairs_from_file(rule, spec_file: str, ns: int, nt: int, diags, check):
    """Return (sources, targets) read from a ``source,target`` file; ``check(pairs)`` is called before reading."""
    ref = rule.args[0] if len(rule.args) == 1 and isinstance(rule.args[0], FileRef) else None
    if ref is None:
        diags.append(Diagnostic("E003", rule.span, 'from_file needs a quoted file name, e.g. from_file("pairs.csv")'))
        return None, None
    try:
        path = _resolve_model_path(spec_file, ref.path, ref.span)
        check(memory.csv_values(path, path.stat().st_size) / 2)
        pairs = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2, comments="#")
    except ModelError as e:
        diags.extend(e.diagnostics)
        return None, None
    except (OSError, ValueError) as e:
        diags.append(
            Diagnostic(
                "E003", ref.span, f"cannot read {ref.path}: {e}", "one `source,target` pair of 0-based indices per line"
            )
        )
        return None, None
    if pairs.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if pairs.shape[1] != 2 or pairs.min() < 0 or pairs[:, 0].max() >= ns or pairs[:, 1].max() >= nt:
        diags.append(
            Diagnostic(
                "E003",
                ref.span,
                f"{ref.path}: each line must be `source,target` with 0 <= source < {ns} and 0 <= target < {nt}",
            )
        )
        return None, None
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def load_network(path, seed: int = 0, max_memory: int | str | None = None) -> Network:
    """Return the checked network in the file at ``path`` (``max_memory``: see :func:`build_network`)."""
    shown, text = L.read_source(path)
    limit = None if max_memory is None else memory.parse_size(max_memory)
    return build_network(parse_network_text(text, shown), seed, limit)


# ----------------------------------------------------------------------- running
@dataclass
class NetworkResult:
    """Spikes of every population (and recorded traces) of a network run."""

    network: str
    populations: tuple[str, ...]
    sizes: tuple[int, ...]
    t: np.ndarray  # ms
    traces: dict[str, np.ndarray]  # "E.V" -> (n_recorded, n_times)
    units: dict[str, str]
    spike_pop: np.ndarray  # index into populations
    spike_i: np.ndarray  # neuron index within its population
    spike_t: np.ndarray  # ms
    dt: float
    duration: float
    wall_time: float
    synaptic_events: int
    methods: dict[str, str]
    seed: int

    def spikes(self, population: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (neuron indices, times in ms) of one population's spikes."""
        mask = self.spike_pop == self.populations.index(population)
        return self.spike_i[mask], self.spike_t[mask]

    def rate(self, population: str) -> float:
        """Mean firing rate of a population, Hz."""
        i, _ = self.spikes(population)
        n = self.sizes[self.populations.index(population)]
        return i.size / n / (self.duration / 1000.0)

    def cv_isi(self, population: str) -> float:
        """Mean coefficient of variation of inter-spike intervals (neurons with >= 3 spikes)."""
        i, t = self.spikes(population)
        order = np.lexsort((t, i))
        i, t = i[order], t[order]
        cvs = []
        for neuron in np.unique(i):
            isi = np.diff(t[i == neuron])
            if isi.size >= 2 and isi.mean() > 0:
                cvs.append(isi.std() / isi.mean())
        return float(np.mean(cvs)) if cvs else float("nan")

    @property
    def n_steps(self) -> int:
        return int(round(self.duration / self.dt))

    def summary(self) -> str:
        n = sum(self.sizes)
        parts = [f"{p}: {self.rate(p):.2f} Hz, CV {self.cv_isi(p):.2f}" for p in self.populations]
        steps_per_s = n * self.n_steps / self.wall_time if self.wall_time else float("inf")
        events = self.synaptic_events / self.wall_time if self.wall_time else float("inf")
        return (
            f"{self.network}: simulated {self.duration:g} ms in {self.n_steps} steps of {self.dt:g} ms, {n} neurons, "
            f"{self.spike_t.size} spike{'s' if self.spike_t.size != 1 else ''} ({'; '.join(parts)}); loop {self.wall_time:.3f} s, "
            f"{steps_per_s / 1e6:.2f} M neuron-steps/s, {events / 1e6:.2f} M synaptic events/s"
        )

    def recorded_neurons(self, name: str) -> np.ndarray:
        """Return the indices of the neurons whose trace ``name`` ("POP.VAR") holds: a population's first K."""
        return np.arange(self.traces[name].shape[0])

    def to_dataframe(self, what: str = "traces"):
        """Return a pandas DataFrame: the traces (index t in ms, columns ("POP.VAR", neuron)), or with
        ``what="spikes"`` one row per spike (population, neuron, t (ms)); see :mod:`modelgen.results`."""
        from .results import to_dataframe

        return to_dataframe(self, what)

    def to_xarray(self):
        """Return the traces (dims ("POP.neuron", "t"), not copied) and spikes as an xarray Dataset."""
        from .results import network_to_xarray

        return network_to_xarray(self)

    def plot(self, ax=None, **options):
        """Return a matplotlib Figure of the run: a raster of every population, their rates and the
        recorded traces, or draw the raster into ``ax``; options as :func:`modelgen.plots.plot_network`
        (``path=`` also saves it). Needs ``modelgen[plot]``."""
        from .display import optional

        plots = optional("modelgen.plots", "plot", "NetworkResult.plot()")
        return plots.plot_network(self, ax=ax, **options)

    def _repr_html_(self) -> str:
        from .display import network_html

        return network_html(self)

    def save(self, path) -> Path:
        """Write an .npz: t, spike_pop, spike_i, spike_t, populations, sizes, and "POP.VAR" traces
        (ValueError for a path not ending in .npz)."""
        check_save_path(path)
        path = Path(path)
        arrays = {
            "t": self.t,
            "spike_pop": self.spike_pop,
            "spike_i": self.spike_i,
            "spike_t": self.spike_t,
            "populations": np.array(self.populations),
            "sizes": np.array(self.sizes),
            "units": np.array([f"{k}={v}" for k, v in self.units.items()]),
        }
        arrays.update(self.traces)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:  # a failed save leaves an earlier file as it was
            np.savez(f, **arrays)
        return path


def check_save_path(path) -> None:
    """Raise ValueError unless ``path`` names a file a network's result can be saved as (``.npz``)."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        example = path.with_suffix(".npz") if path.name else "out.npz"
        raise ValueError(
            f"a network's result is saved as one .npz file (spikes, populations and traces), not as {str(path)!r}; "
            f"give a name ending in .npz, e.g. {example}"
        )


FEW_SPIKES = 8  # up to this many spikes per step, a projection delivers spike by spike (cheaper than gathering)


@dataclass
class _Member:
    """A population's place in its group: neurons offset .. offset + n of the group's arrays."""

    name: str
    index: int  # position among the network's populations
    offset: int
    n: int


@dataclass
class _Group:
    """Populations advanced by one generated simulator (one population, or several alike)."""

    module: object
    state: dict[str, np.ndarray]
    step: object
    observe: object
    receive: object
    members: list[_Member]

    @property
    def n(self) -> int:
        return sum(m.n for m in self.members)


def _population_setup(net: Network, pop: Population, module, dt: float, n_steps: int) -> tuple[dict, dict]:
    """Return the parameters (floats or per-neuron arrays) and input callables of one population."""
    from .runtime import _constant, _per_neuron

    p = {k: _per_neuron(v, pop.n, k) for k, v in {**module.PARAMETERS, **pop.params}.items()}
    check_values(pop.model.model, pop.params, dt)  # the refractory period in steps of dt
    inputs = {}
    for k, v in module.INPUTS.items():
        given = pop.inputs.get(k, v)
        if isinstance(given, ProtocolText):
            ctx = protocols.RunContext(
                pop.n,
                dt,
                n_steps * dt,
                net.seed,
                Path(net.spec.file).parent,
                lambda text, span=given.span: _resolve_model_path(net.spec.file, text, span),  # as from_file
                max_memory=net.max_memory,  # what load_network or --max-memory set (None: the memory available)
            )
            target = protocols.Target.of(pop.model.model.input(k))
            try:
                inputs[k] = protocols.resolve(given.text, target, ctx)
            except ModelError as e:  # point at the network file's line
                d = e.diagnostics[0]
                raise ModelError([Diagnostic(d.code, given.span, d.message, d.hint)]) from None
            if not callable(inputs[k]):
                inputs[k] = _constant(_per_neuron(inputs[k], pop.n, k))
        else:
            inputs[k] = _constant(_per_neuron(given, pop.n, k))
    return p, inputs


def _merge_key(pop: Population, module, p: dict, inputs: dict):
    """Return what populations simulated by one simulator share, or None if this one runs alone.

    Populations of the same generated module whose parameters and inputs are the same
    constants give bit-identical results in one simulator over their concatenated neurons:
    every step is elementwise, and shared values stay scalars. Per-neuron parameters or inputs,
    input protocols and populations small enough for the per-neuron kernel run alone.
    """
    if pop.n <= getattr(module, "KERNEL_MAX_N", 0):
        return None
    if any(np.ndim(v) for v in p.values()):
        return None
    fixed = [getattr(f, "constant", None) for f in inputs.values()]
    if any(v is None or np.ndim(v) for v in fixed):
        return None
    return (
        module.BUILD_HASH,
        getattr(module, "__file__", None),
        tuple((k, float(v).hex()) for k, v in p.items()),
        tuple(float(v).hex() for v in fixed),
    )


def _make_groups(net: Network, dt: float, n_steps: int, out_dir, method) -> list[_Group]:
    """Return the simulators of the network's populations, alike populations sharing one."""
    plans: dict[object, list] = {}  # key -> [(member, population, module, p, inputs)]
    for index, (name, pop) in enumerate(net.populations.items()):
        module = pop.model.load_module(out_dir, method)
        p, inputs = _population_setup(net, pop, module, dt, n_steps)
        key = _merge_key(pop, module, p, inputs)
        plans.setdefault(name if key is None else key, []).append(
            (_Member(name, index, 0, pop.n), pop, module, p, inputs)
        )
    groups = []
    for plan in plans.values():
        module, p, inputs = plan[0][2:]
        offset = 0
        states = []
        with np.errstate(all="ignore"):
            for member, pop, *_ in plan:
                member.offset = offset
                offset += pop.n
                states.append(module.initial_state(p, inputs, pop.n, dict(pop.initial)))
            state = states[0] if len(states) == 1 else {v: np.concatenate([s[v] for s in states]) for v in states[0]}
            step, observe, receive, _run = module.make_simulator(state, p, inputs, dt)
        groups.append(_Group(module, state, step, observe, receive, [m for m, *_ in plan]))
    return groups


@dataclass
class _Buffer:
    """Input arriving at one receptor of a group: a ring of future steps (delays rounded to steps).

    ``pending[slot][j]`` says whether member j's part of a slot holds anything; slots nobody
    wrote to are neither applied nor cleared. ``touched[slot]`` lists the neurons written to
    (arrays of the group's indices, possibly repeating), or is None once that list would be
    long: a slot reached by a few spikes is applied and cleared at those neurons only.
    """

    group: _Group
    receptor: str
    values: np.ndarray  # (longest delay + 1, group size)
    pending: list[list[bool]]
    touched: list[list[np.ndarray] | None]
    counts: list[int]  # entries in touched[slot]

    def touch(self, slot: int, neurons: np.ndarray | None) -> None:
        """Note that ``neurons`` (None: maybe all) of a slot were written to."""
        where = self.touched[slot]
        if where is None:
            return
        if neurons is None or self.counts[slot] + neurons.size > self.values.shape[1] // 4:
            self.touched[slot] = None
        else:
            where.append(neurons)
            self.counts[slot] += neurons.size


@dataclass
class _Route:
    """A projection as the loop uses it: its CSR arrays and where its spikes arrive."""

    source: int  # population index
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    delay: int | None  # the delay in steps if all synapses share it
    delays: np.ndarray | None  # else per synapse
    buffer: _Buffer
    member: int  # the target population's number in its group
    offset: int
    n: int


def _delays_in_steps(proj: Projection, dt: float) -> np.ndarray:
    """Return the projection's delays in whole steps (a broadcast view if they are all the same)."""
    d = proj.delay_ms
    if d.size and d.strides == (0,):
        return np.broadcast_to(np.rint(d[:1] / dt).astype(np.int64), d.shape)
    steps = np.rint(d / dt).astype(np.int64)
    if steps.size and np.all(steps == steps[0]):  # different delays may round to the same step
        return np.broadcast_to(steps[:1], d.shape)
    return steps


def _check_memory(net: Network, n_steps: int, dt: float, limit: int | None) -> None:
    """Raise MemoryLimitError if running ``net`` for ``n_steps`` would need more than ``limit`` (see memory.py)."""
    needs = dict.fromkeys(("neuron state and stepping", "recording", "synaptic buffers", "delays in steps"), 0)
    for pop in net.populations.values():
        recorded = len(dict.fromkeys(pop.record)) * min(pop.n, pop.record_neurons)
        part = memory.run_needs(pop.n, len(pop.model.states), n_steps + 1, recorded)
        needs["neuron state and stepping"] += part["neuron state and stepping"]
        needs["recording"] += part["recording"]
    slots: dict[tuple[str, str], int] = {}  # (target, receptor) -> steps of the longest delay + 1
    for proj in net.projections:
        longest = int(np.rint(proj.delay_ms.max(initial=0) / dt))
        slots[proj.target, proj.receptor] = max(slots.get((proj.target, proj.receptor), 1), longest + 1)
        if proj.delay_ms.size and proj.delay_ms.strides != (0,):
            needs["delays in steps"] += 2 * memory.FLOAT * proj.delay_ms.size
    for drive in net.poisson:
        slots.setdefault((drive.target, drive.receptor), 1)
    needs["synaptic buffers"] = sum(memory.FLOAT * k * net.populations[t].n for (t, _), k in slots.items())
    needs["time axis"] = memory.FLOAT * (n_steps + 1)
    held = sum(p.nbytes for p in net.projections) + sum(
        np.size(v) * memory.FLOAT
        for pop in net.populations.values()
        for v in (*pop.params.values(), *pop.initial.values())
        if np.ndim(v)
    )
    advice = memory.run_advice(
        needs,
        {
            "neuron state and stepping": "use fewer neurons",
            "recording": "record fewer neurons (`neurons = K` in a record line) or variables, "
            "or simulate fewer steps (a shorter --duration or a larger --dt)",
            "delays in steps": "give each projection one delay, or use fewer synapses",
        },
    )
    memory.require(needs, f"running network {net.name}", advice, limit, held)


def _simulate(
    net: Network, duration: float, dt: float, out_dir, method, extra_record: list[str], progress=None, limit=None
) -> NetworkResult:
    from .runtime import SimulationError, runaway, runaway_message, steps_of

    n_steps = steps_of(duration, dt)
    rng = np.random.default_rng([net.seed, 1])  # run-time randomness, separate from construction
    names = list(net.populations)
    for entry in extra_record:
        pop_name, _, var = entry.partition(".")
        if pop_name not in net.populations or not var:
            raise SimulationError(f"record {entry!r}: write POPULATION.VARIABLE, e.g. {names[0]}.V")
        net.populations[pop_name].record.append(var)
    _check_memory(net, n_steps, dt, limit)
    groups = _make_groups(net, dt, n_steps, out_dir, method)
    where = {m.name: (g, j, m) for g in groups for j, m in enumerate(g.members)}

    # buffers: one per (group, receptor) that projections or drives feed
    for proj in net.projections:
        proj.delays = _delays_in_steps(proj, dt)
    buffers: dict[tuple[int, str], _Buffer] = {}

    def buffer(target: str, receptor: str) -> _Buffer:
        g = where[target][0]
        key = (id(g), receptor)
        if key not in buffers:
            names_in_g = {m.name for m in g.members}
            longest = max(
                (
                    int(p.delays.max(initial=0))
                    for p in net.projections
                    if p.target in names_in_g and p.receptor == receptor
                ),
                default=0,
            )
            slots = longest + 1
            pending = [[False] * len(g.members) for _ in range(slots)]
            buffers[key] = _Buffer(
                g, receptor, np.zeros((slots, g.n)), pending, [[] for _ in range(slots)], [0] * slots
            )
        return buffers[key]

    routes = []
    for proj in net.projections:
        g, j, m = where[proj.target]
        same = proj.delays.size == 0 or proj.delays.strides == (0,)
        routes.append(
            _Route(
                where[proj.source][2].index,
                proj.indptr,
                proj.indices,
                proj.weights,
                int(proj.delays[0]) if same and proj.delays.size else 0 if same else None,
                None if same else proj.delays,
                buffer(proj.target, proj.receptor),
                j,
                m.offset,
                m.n,
            )
        )
    drives = []
    for drive in net.poisson:
        g, j, m = where[drive.target]
        drives.append((drive.rate * dt, m.n, drive.weight, buffer(drive.target, drive.receptor), j, m.offset))
    # receive in the order of the populations, then of the model's receptors (two receptors may raise one state)
    order = {(id(g), r): (gi, g.module.RECEPTORS.index(r)) for gi, g in enumerate(groups) for r in g.module.RECEPTORS}
    incoming = sorted(buffers.values(), key=lambda b: order[(id(b.group), b.receptor)])
    incoming = [
        (b, b.group.receive, b.receptor, [(m.offset, m.offset + m.n) for m in b.group.members]) for b in incoming
    ]

    # recording
    rec = []  # (samples, group, var, is_state, which neurons of the group, scale)
    traces, units = {}, {}
    for name, pop in net.populations.items():
        m = pop.model.model
        g, _, member = where[name]
        count = min(pop.n, pop.record_neurons)
        which = slice(member.offset, member.offset + count)
        for var in dict.fromkeys(pop.record):
            if var in m.state_names:
                unit, scale = m.unit_of(var)
            elif var in {i.name for i in m.inputs}:
                unit, scale = m.unit_of(var)
            else:
                dim = next((e.dimension for e in m.expressions if e.name == var), None) or m.current(var).dimension
                unit = suggested_unit(dim)
                scale = float(unit_text_scale(unit)[1])
            key = f"{name}.{var}"
            units[key] = unit
            # one row per sample (a row is cheaper to write than a column); in units of `unit` at the end
            rec.append((np.empty((n_steps + 1, count)), g, var, var in g.state, which, scale, key))

    def sample(j: int, t: float) -> None:
        observed = {}  # observe() once per group and step
        for samples, g, var, is_state, which, _, _ in rec:
            if is_state:
                values = g.state[var]
            else:
                if id(g) not in observed:
                    observed[id(g)] = g.observe(t)
                values = observed[id(g)][var]
            samples[j] = values[which]

    bounds = {name: state_bounds(pop.model.model) for name, pop in net.populations.items()}

    def stop_at_runaway(t0: float, t1: float) -> None:
        """Stop the run at a NaN, infinite or absurd state value (see runtime.runaway)."""
        for g in groups:
            for m in sorted(g.members, key=lambda m: m.index):  # the first population in file order
                part = {var: arr[m.offset : m.offset + m.n] for var, arr in g.state.items()}
                if (bad := runaway(part, bounds[m.name])) is not None:
                    var, *rest = bad
                    raise SimulationError(runaway_message(f"{m.name}.{var}", *rest, t0, t1))

    steppers = [(g.step, [(m.index, m.offset, m.offset + m.n) for m in g.members]) for g in groups]
    fired = []  # (step, group number, neuron indices in the group)
    events = 0
    checked = 0  # the last step whose state was checked
    sample(0, 0.0)
    start = time.perf_counter()
    with np.errstate(all="ignore"):
        for k in range(n_steps):
            for lam, n, weight, buf, j, lo in drives:
                counts = rng.poisson(lam, size=n)
                slot = k % len(buf.pending)
                buf.values[slot, lo : lo + n] += weight * counts
                buf.pending[slot][j] = True
                buf.touch(slot, None)
                events += int(counts.sum())
            for buf, receive, receptor, spans in incoming:
                slot = k % len(buf.pending)
                hit = buf.pending[slot]
                if True in hit:
                    row = buf.values[slot]
                    where = buf.touched[slot]
                    if where is None:
                        receive(receptor, row)
                        for j, (lo, hi) in enumerate(spans):
                            if hit[j]:
                                row[lo:hi] = 0.0
                    else:
                        idx = where[0] if len(where) == 1 else np.concatenate(where)
                        receive(receptor, row[idx], idx)
                        row[idx] = 0.0
                    buf.pending[slot] = [False] * len(spans)
                    buf.touched[slot] = []
                    buf.counts[slot] = 0
            spiking = {}
            for gi, (step, members) in enumerate(steppers):
                mask = step(k)
                if mask is None:
                    continue
                idx = mask.nonzero()[0]
                if idx.size:
                    fired.append((k, gi, idx))
                    if len(members) == 1:
                        spiking[members[0][0]] = idx
                    else:
                        for index, lo, hi in members:
                            a, b = np.searchsorted(idx, (lo, hi))
                            if b > a:
                                spiking[index] = idx[a:b] - lo
            if spiking:
                for r in routes:
                    src = spiking.get(r.source)
                    if src is not None:
                        events += _deliver(r, src, k)
            sample(k + 1, (k + 1) * dt)
            if (k + 1) % 50 == 0 or k + 1 == n_steps:
                if progress is not None:
                    progress(k + 1, n_steps)
                stop_at_runaway(checked * dt, (k + 1) * dt)
                checked = k + 1
    wall = time.perf_counter() - start
    for samples, *_, scale, key in rec:
        samples /= scale  # in place: no second copy of the recording
        traces[key] = samples.T
    spike_pop, spike_i, spike_k = _spike_table(fired, groups)
    return NetworkResult(
        network=net.name,
        populations=tuple(names),
        sizes=tuple(net.populations[n].n for n in names),
        t=np.arange(n_steps + 1) * dt,
        traces=traces,
        units=units,
        spike_pop=spike_pop,
        spike_i=spike_i,
        spike_t=(spike_k + 1) * dt,
        dt=dt,
        duration=n_steps * dt,
        wall_time=wall,
        synaptic_events=events,
        methods={m.name: g.module.METHOD for g in groups for m in g.members},
        seed=net.seed,
    )


def _deliver(r: _Route, src: np.ndarray, k: int) -> int:
    """Add the weights of the spikes of sources ``src`` in step k to the slots they arrive in; return their number."""
    buf = r.buffer
    slots = len(buf.pending)
    if r.delay is not None:
        slot = (k + 1 + r.delay) % slots
        hit = buf.pending[slot]
        if not hit[r.member] and src.size <= FEW_SPIKES:
            # spike by spike: the sums np.bincount would give, accumulated in synapse order from zero
            row, indptr, total = buf.values[slot], r.indptr, 0
            for i in src.tolist():
                a, b = indptr[i], indptr[i + 1]
                if a < b:
                    targets = r.indices[a:b] + r.offset if r.offset else r.indices[a:b]
                    np.add.at(row, targets, r.weights[a:b])
                    buf.touch(slot, targets)
                    total += int(b - a)
            hit[r.member] = hit[r.member] or total > 0
            return total
    pos, total = _synapses_of(r.indptr, src)
    if total == 0:
        return 0
    targets, weights = r.indices[pos], r.weights[pos]
    if r.delay is None:
        arrive = (k + 1 + r.delays[pos]) % slots
        np.add.at(buf.values, (arrive, targets + r.offset), weights)
        for slot in np.unique(arrive).tolist():
            buf.pending[slot][r.member] = True
            buf.touch(slot, None)
    elif hit[r.member]:
        # earlier arrivals in this slot: add this projection's sum per target to them
        buf.values[slot, r.offset : r.offset + r.n] += np.bincount(targets, weights, minlength=r.n)
        buf.touch(slot, None)
    else:
        targets = targets + r.offset if r.offset else targets
        np.add.at(buf.values[slot], targets, weights)  # the same sums, accumulated in synapse order from zero
        hit[r.member] = True
        buf.touch(slot, targets)
    return total


def _synapses_of(indptr: np.ndarray, src: np.ndarray) -> tuple[np.ndarray, int]:
    """Return the positions of the synapses of the sources ``src`` in a CSR, and their number."""
    starts = indptr[src]
    counts = indptr[src + 1] - starts
    total = int(counts.sum())
    return np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(total), total


def _spike_table(fired: list, groups: list[_Group]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (population index, neuron index, step) of every spike, by step, population and neuron."""
    if not fired:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    idx = np.concatenate([i for _, _, i in fired])
    step = np.concatenate([np.full(i.size, k, dtype=np.int64) for k, _, i in fired])
    group = np.concatenate([np.full(i.size, g, dtype=np.int64) for _, g, i in fired])
    pop = np.empty_like(idx)
    local = np.empty_like(idx)
    for gi, g in enumerate(groups):
        mine = group == gi
        for m in g.members:
            sel = mine & (idx >= m.offset) & (idx < m.offset + m.n)
            pop[sel] = m.index
            local[sel] = idx[sel] - m.offset
    order = np.lexsort((local, pop, step))
    return pop[order], local[order], step[order]

"""Building a network: its populations' models and values, and its connectivity as CSR arrays."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field

import numpy as np

from .. import language as L
from .. import memory
from ..checks import value_problem, value_rules
from ..diagnostics import Diagnostic, ModelError, Span, sort_key
from ..model import lower_constant
from ..units import DIMENSIONLESS, TIME, Dimension, describe, suggested_unit
from .common import node_file, node_span, resolve_path
from .parse import (
    CALL_SETTINGS,
    DISTRIBUTIONS,
    RULES,
    FileRef,
    Item,
    NetStatement,
    NetworkSpec,
    ProtocolText,
    parse_network_text,
)
from .result import NetworkResult

__all__ = [
    "Population",
    "Projection",
    "PoissonDrive",
    "Network",
    "build_network",
    "load_network",
    "synapses_for_connection_probability",
]

# peak bytes per synapse while a rule builds a projection (tracemalloc, 1000-2000 neurons, rounded up);
# 4 of them stay (an int32 target index); each value drawn per synapse adds 8 (and keeps them)
SYNAPSE_BYTES = {
    "all_to_all": 12,
    "one_to_one": 12,
    "fixed_probability": 12,
    "fixed_indegree": 26,
    "fixed_total_number": 12,
    "from_file": 34,
}


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
    planned: float | None = None  # checked, not drawn (load_network(draw=False)): the synapses expected

    @property
    def n_synapses(self) -> int:
        """Return the number of synapses (of a projection not drawn: the number expected)."""
        return int(self.indices.size) if self.planned is None else round(self.planned)

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
        """Return a float, or an (n,) array for a distribution (values outside its min/max drawn again)."""
        if isinstance(node, L.Call) and node.func in DISTRIBUTIONS:
            args, settings = _arguments(node)
            if len(args) != DISTRIBUTIONS[node.func]:
                self.diags.append(
                    Diagnostic("E104", node.span, f"{node.func}() takes {DISTRIBUTIONS[node.func]} arguments")
                )
                return None
            a, b = (self.constant(arg, want, what) for arg in args)
            bounds = self.bounds(node, settings, want, what)
            if a is None or b is None or bounds is None:
                return None
            lo, hi = bounds
            kept = _kept_fraction(node.func, a, b, lo, hi)
            if kept < MIN_KEPT:
                where = settings[0].span if settings else node.span
                self.diags.append(
                    Diagnostic(
                        "E003",
                        where,
                        f"min and max keep {'none' if kept == 0 else f'only {kept:.2g}'} of {node.func}()'s values",
                        "choose bounds that keep most of the distribution (they are applied by drawing again)",
                    )
                )
                return None
            draw = (
                (lambda k: self.rng.uniform(a, b, size=k))
                if node.func == "uniform"
                else (lambda k: self.rng.normal(a, b, size=k))
            )
            return _redraw_outside(draw(n), draw, lo, hi, kept)
        return self.constant(node, want, what)

    def bounds(self, node: L.Call, settings: list[Item], want: Dimension | None, what: str):
        """Return (min, max) of a distribution's settings (-inf, inf where not given), or None after an error."""
        found = {"min": -np.inf, "max": np.inf}
        for item in settings:
            if item.key not in found:
                self.diags.append(_unknown_setting(node, item))
                return None
            value = self.constant(item.value, want, f"{item.key} of {what}")
            if value is None:
                return None
            found[item.key] = value
        if found["min"] >= found["max"]:
            self.diags.append(
                Diagnostic(
                    "E003",
                    next(i.span for i in settings if i.key == "min"),
                    f"{node.func}(): min must be less than max",
                )
            )
            return None
        return found["min"], found["max"]


RULE_LIST = (
    "rules: all_to_all, one_to_one, fixed_probability(p), fixed_indegree(k), fixed_total_number(k) "
    'or fixed_total_number(connection_probability = c), from_file("pairs.csv")'
)
MIN_KEPT = 1e-3  # the least fraction of a distribution that its min and max may keep


def _arguments(call: L.Call) -> tuple[list, list[Item]]:
    """Return a call's arguments and its settings (``name = value``, written after them)."""
    return [a for a in call.args if not isinstance(a, Item)], [a for a in call.args if isinstance(a, Item)]


def _unknown_setting(call: L.Call, item: Item) -> Diagnostic:
    known = CALL_SETTINGS.get(call.func, ())
    close = difflib.get_close_matches(item.key, known, n=1)
    if close:
        hint = f"did you mean `{close[0]}`?"
    elif known:
        hint = f"{call.func}() takes: " + ", ".join(known)
    else:
        hint = f"{call.func}() takes no settings"
    return Diagnostic("E104", item.span, f"{call.func}() has no setting `{item.key}`", hint)


def _kept_fraction(func: str, a: float, b: float, lo: float, hi: float) -> float:
    """Return the probability that a value of ``func(a, b)`` lies in [lo, hi]."""
    if func == "uniform":
        low, high = min(a, b), max(a, b)
        if high == low:
            return float(lo <= low <= hi)
        return max(0.0, min(high, hi) - max(low, lo)) / (high - low)
    if b == 0:
        return float(lo <= a <= hi)

    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf((x - a) / (abs(b) * math.sqrt(2))))

    return cdf(hi) - cdf(lo)


def _redraw_outside(values: np.ndarray, draw, lo: float, hi: float, kept: float) -> np.ndarray:
    """Return ``values`` with those outside [lo, hi] replaced by new draws inside it (as NEST's redraw).

    Each round draws enough for the expected acceptance ``kept``, so few rounds are needed.
    """
    if lo == -np.inf and hi == np.inf:
        return values
    # one temporary mask: a bound that is not given is not compared with
    outside = (values < lo) if hi == np.inf else (values > hi) if lo == -np.inf else (values < lo) | (values > hi)
    bad = np.flatnonzero(outside)
    del outside
    while bad.size:
        more = draw(int(bad.size / kept * 1.1) + 16)
        more = more[(more >= lo) & (more <= hi)][: bad.size]
        values[bad[: more.size]] = more
        bad = bad[more.size :]
    return values


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
        backend: str = "numpy",
        dtype: str = "float64",
    ) -> NetworkResult:
        """Simulate ``duration`` in steps of ``dt``; record spikes and chosen traces.

        ``duration`` and ``dt`` are numbers in ms, text with a unit (``"1 s"``) or values with
        units from pint, quantities, astropy, unyt or brian2.

        ``out_dir``: the folder of the generated modules (default: modelgen's cache, see
        :mod:`modelgen.cache`). ``progress(done_steps, total_steps)`` is called every 50 steps if given. Raises
        MemoryLimitError before allocating if the run would take the memory in use past
        ``max_memory`` (bytes or text such as ``"4GiB"``; default: the network's, else the memory available).

        ``backend``: ``"numpy"`` (the reference: a Python loop over steps) or ``"numba"`` (the whole
        network one generated program, its time loop compiled; see :mod:`modelgen.network.compiled`).
        ``dtype``: ``"float64"`` or ``"float32"`` (states, synaptic buffers and weights in single precision).
        """
        from ..api import quantity

        if any(p.planned is not None for p in self.projections):
            raise ValueError("this network was checked without drawing its synapses (draw=False); load it to run it")
        limit = self.max_memory if max_memory is None else memory.parse_size(max_memory)
        duration, dt = quantity(duration, TIME, "duration", "ms"), quantity(dt, TIME, "dt", "ms")
        if dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be float64 or float32, not {dtype!r}")
        if backend != "numpy":
            from .compiled import simulate_compiled  # run builds on build, not back: imported when a run starts

            return simulate_compiled(self, duration, dt, out_dir, method, record or [], progress, limit, backend, dtype)
        from .run import simulate

        real = np.float32 if dtype == "float32" else np.float64
        return simulate(self, duration, dt, out_dir, method, record or [], progress, limit, real)


def build_network(spec: NetworkSpec, seed: int = 0, max_memory: int | None = None, draw: bool = True) -> Network:
    """Return the network of ``spec`` with models loaded and connectivity drawn from ``seed``.

    Raises MemoryLimitError before building a population or projection that would take the
    memory in use past ``max_memory`` bytes (None: the memory available). ``draw=False`` checks
    every statement (rules, weights and delays with their units) without drawing the synapses
    (``modelgen check``: the projections then hold none, their ``planned`` number instead; such a
    network cannot run).
    """
    from ..api import load

    budget = [max_memory, 0]  # the limit, and the bytes the network holds so far
    rng = np.random.default_rng(seed)
    diags: list[Diagnostic] = []
    vals = _Values(rng, diags)
    pops: dict[str, Population] = {}
    failed: set[str] = set()  # populations whose own statement has an error: their uses are not reported again
    for st in spec.of_kind("population"):
        if st.name in pops:
            diags.append(Diagnostic("E102", st.name_span, f"population `{st.name}` is defined twice"))
            continue
        try:
            model = load(resolve_path(spec.file, st.path, st.path_span))
        except ModelError as e:
            diags.extend(e.diagnostics)
            failed.add(st.name)
            continue
        n_item = st.item("n")
        n = vals.constant(n_item.value, DIMENSIONLESS, "n") if n_item and n_item.value is not None else None
        if n is None or n != int(n) or n < 1:
            if n_item is None:
                diags.append(Diagnostic("E003", st.name_span, f"population `{st.name}` needs a size, e.g. (n = 100)"))
            elif n is not None:
                diags.append(Diagnostic("E003", n_item.span, "n must be a whole number of neurons, at least 1"))
            failed.add(st.name)
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
        if name in failed:  # its declaration's error is reported
            return None
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
        proj = _projection(st, src, tgt, vals, diags, rng, spec.file, budget, draw)
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
            if rate_item is not None and rate_item.value is not None:  # its errors are reported too
                vals.constant(rate_item.value, DIMENSIONLESS / TIME, "rate")
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


class _NotDrawn(Exception):
    """A projection checked but not drawn (see build_network's ``draw``)."""


def _projection(
    st, src: Population, tgt: Population, vals: _Values, diags, rng, spec_file, budget, draw: bool = True
) -> Projection | None:
    receptor = _receptor(st, tgt, diags)
    rule_item, w_item = st.item("rule"), st.item("weight")
    if receptor is None:
        _check_settings(st, tgt, None, diags)
        return None
    if rule_item is None or w_item is None:
        diags.append(
            Diagnostic(
                "E003",
                st.name_span,
                "a projection needs (receptor = …, rule = …, weight = …)",
                RULE_LIST,
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
                RULE_LIST,
            )
        )
        _check_settings(st, tgt, receptor, diags)
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
        if not draw and rule_name != "from_file":  # a file is read: its pairs are checked
            planned.append(synapses)
            raise _NotDrawn

    planned: list[float] = []
    try:
        s, t = _draw(rule, rule_name, src, tgt, vals, diags, rng, spec_file, allow_self, check)
    except _NotDrawn:
        s = t = np.zeros(0, dtype=np.int64)
    if s is None:
        _check_settings(st, tgt, receptor, diags)
        return None
    if not allow_self and rule_name == "from_file":
        keep = s != t
        s, t = s[keep], t[keep]
    size = s.size if not planned else 1  # not drawn: one value of each, to check it
    w = vals.value(w_item.value, tgt.model.model.receptor_dimension(receptor), f"weight at receptor {receptor}", size)
    d_item = st.item("delay")
    d = vals.value(d_item.value, TIME, "delay", size) if d_item is not None and d_item.value is not None else 0.0
    if w is None or d is None:
        return None
    # a value shared by every synapse is stored once (a read-only broadcast view), not per synapse
    if np.any(np.asarray(d) < 0):
        diags.append(Diagnostic("E003", d_item.span, "delays cannot be negative"))
        return None
    w = np.broadcast_to(np.asarray(w, dtype=float).reshape(-1)[:1] if planned else np.asarray(w, dtype=float), s.shape)
    d = np.broadcast_to(np.asarray(d, dtype=float).reshape(-1)[:1] if planned else np.asarray(d, dtype=float), s.shape)
    if not np.all(s[:-1] <= s[1:]):  # most rules draw the synapses by source already
        order = np.argsort(s, kind="stable")
        s, t = s[order], t[order]
        w = w[order] if w.strides[0] else w
        d = d[order] if d.strides[0] else d
    indptr = np.searchsorted(s, np.arange(ns + 1, dtype=s.dtype)).astype(np.int64)
    return Projection(
        src.name,
        tgt.name,
        receptor,
        indptr,
        t.astype(_index_dtype(nt), copy=False),
        w,
        np.broadcast_to(np.int64(0), s.shape),
        d,
        planned[0] if planned else None,
    )


def _check_settings(st, tgt: Population, receptor: str | None, diags) -> None:
    """Report the errors of a failed projection's weight (where its receptor is known) and delay too,
    with values drawn from a generator of their own (the network's is left as it was)."""
    vals = _Values(np.random.default_rng(0), diags)
    w_item, d_item = st.item("weight"), st.item("delay")
    if receptor is not None and w_item is not None and w_item.value is not None:
        vals.value(w_item.value, tgt.model.model.receptor_dimension(receptor), f"weight at receptor {receptor}", 1)
    if d_item is not None and d_item.value is not None:
        d = vals.value(d_item.value, TIME, "delay", 1)
        if d is not None and np.any(np.asarray(d) < 0):
            diags.append(Diagnostic("E003", d_item.span, "delays cannot be negative"))


def _draw(
    rule, rule_name: str, src: Population, tgt: Population, vals: _Values, diags, rng, spec_file, allow_self, check
):
    """Return (sources, targets) of a projection's synapses drawn by its rule, or (None, None) after
    reporting a problem; ``check(synapses)`` is called with the number expected before drawing."""
    ns, nt = src.n, tgt.n
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
            return None, None
        check(ns)
        s = t = np.arange(ns, dtype=_index_dtype(ns))
    elif rule_name == "from_file":
        s, t = _pairs_from_file(rule, spec_file, ns, nt, diags, check)
    elif rule_name == "fixed_total_number":
        k = _total_number(rule, ns, nt, vals, diags)
        if k is None:
            return None, None
        if k and not allow_self and nt < 2:
            diags.append(
                Diagnostic("E003", rule.span, f"{src.name} has one neuron: it has no other neuron to connect to")
            )
            return None, None
        check(k)
        s, t = _fixed_total_number(rng, ns, nt, k, allow_self)
    else:
        arg = rule.args[0] if len(rule.args) == 1 else None
        x = vals.constant(arg, DIMENSIONLESS, rule_name) if arg is not None else None
        if x is None:
            if arg is None:
                diags.append(Diagnostic("E104", rule.span, f"{rule_name}() takes one argument"))
            return None, None
        if rule_name == "fixed_probability":
            if not 0 <= x <= 1:
                diags.append(
                    Diagnostic("E003", node_span(arg), f"a connection probability must lie in [0, 1], not {x:g}")
                )
                return None, None
            check(ns * (nt - (0 if allow_self else 1)) * x)
            s, t = _fixed_probability(rng, ns, nt, x, allow_self)
        else:
            k = int(x)
            available = ns - (0 if allow_self else 1)
            if k != x or k < 0 or k > available:
                diags.append(
                    Diagnostic("E003", node_span(arg), f"fixed_indegree needs a whole number between 0 and {available}")
                )
                return None, None
            check(nt * k)
            s, t = _fixed_indegree(rng, ns, nt, k, allow_self)
    return s, t


def _index_dtype(n: int) -> type:
    """Return the narrowest integer type that holds the indices of ``n`` neurons (int32, else int64)."""
    return np.int32 if n <= np.iinfo(np.int32).max else np.int64


def synapses_for_connection_probability(c: float, ns: int, nt: int) -> int:
    """Return k = round(ln(1 - c) / ln(1 - 1/(ns*nt))): k synapses drawn with replacement among
    ns*nt pairs connect a pair with probability c (Potjans & Diesmann 2014, eq. 1)."""
    return int(np.rint(math.log1p(-c) / math.log1p(-1 / (ns * nt))))


def _total_number(rule: L.Call, ns: int, nt: int, vals: _Values, diags: list[Diagnostic]) -> int | None:
    """Return the number of synapses of ``fixed_total_number(k)`` or ``fixed_total_number(connection_probability = c)``.

    With c, the number whose synapses, drawn with replacement among the ns*nt pairs, leave a
    pair connected with probability c (Potjans & Diesmann 2014, eq. 1, as NEST's microcircuit
    example): k = round(ln(1 - c) / ln(1 - 1/(ns*nt))).
    """
    args, settings = _arguments(rule)
    if len(args) + len(settings) != 1:
        diags.append(
            Diagnostic(
                "E104",
                rule.span,
                "fixed_total_number() takes the number of synapses, or connection_probability = c",
                "e.g. fixed_total_number(5000) or fixed_total_number(connection_probability = 0.1)",
            )
        )
        return None
    if settings:
        item = settings[0]
        if item.key != "connection_probability":
            diags.append(_unknown_setting(rule, item))
            return None
        c = vals.constant(item.value, DIMENSIONLESS, "connection_probability")
        if c is None:
            return None
        if not 0 <= c < 1:
            diags.append(
                Diagnostic(
                    "E003",
                    L.node_extent(item.value) or item.span,
                    f"connection_probability must lie in [0, 1), not {c:g}",
                    "the probability that a pair of neurons is connected by at least one synapse",
                )
            )
            return None
        return synapses_for_connection_probability(c, ns, nt)
    x = vals.constant(args[0], DIMENSIONLESS, "fixed_total_number")
    if x is None:
        return None
    if x != int(x) or x < 0:
        diags.append(Diagnostic("E003", node_span(args[0]), "fixed_total_number needs a whole number, at least 0"))
        return None
    return int(x)


def _fixed_total_number(rng, ns: int, nt: int, k: int, allow_self: bool):
    """Return (sources, targets) of ``k`` synapses, each pair drawn uniformly with replacement (multapses).

    As NEST's ``fixed_total_number``: the synapses per source are multinomial, their targets
    uniform (without i -> i unless ``allow_self``); sorted by source, with no loop over neurons.
    """
    counts = rng.multinomial(k, np.full(ns, 1 / ns)) if ns > 1 else np.array([k])
    s = np.repeat(np.arange(ns, dtype=_index_dtype(ns)), counts)
    if allow_self:
        return s, rng.integers(0, nt, size=k, dtype=_index_dtype(nt))
    t = rng.integers(0, nt - 1, size=k, dtype=_index_dtype(nt))
    t += t >= s  # skip i itself (source and target are one population: ns == nt)
    return s, t


def _all_to_all(ns: int, nt: int, allow_self: bool):
    """Return (sources, targets) of every pair, by source then target (without i -> i unless ``allow_self``)."""
    if allow_self:
        return np.repeat(np.arange(ns, dtype=_index_dtype(ns)), nt), np.tile(np.arange(nt, dtype=_index_dtype(nt)), ns)
    t = np.tile(np.arange(nt - 1, dtype=_index_dtype(nt)), ns).reshape(ns, nt - 1)
    t += t >= np.arange(ns, dtype=t.dtype)[:, None]  # skip i itself (source and target are one population: ns == nt)
    return np.repeat(np.arange(ns, dtype=_index_dtype(ns)), nt - 1), t.reshape(-1)


def _fixed_probability(rng, ns: int, nt: int, p: float, allow_self: bool):
    counts = rng.binomial(nt - (0 if allow_self else 1), p, size=ns)
    t = np.empty(int(counts.sum()), dtype=_index_dtype(nt))  # filled source by source: no list of small arrays
    end = 0
    for i, k in enumerate(counts):
        if allow_self:
            t[end : end + k] = rng.choice(nt, size=k, replace=False)
        else:
            c = rng.choice(nt - 1, size=k, replace=False)
            t[end : end + k] = c + (c >= i)  # skip i itself
        end += k
    return np.repeat(np.arange(ns, dtype=_index_dtype(ns)), counts), t


def _fixed_indegree(rng, ns: int, nt: int, k: int, allow_self: bool):
    sources = []
    for j in range(nt):
        if allow_self:
            sources.append(rng.choice(ns, size=k, replace=False))
        else:
            c = rng.choice(ns - 1, size=k, replace=False)
            sources.append(c + (c >= j))
    s = np.concatenate(sources) if sources else np.zeros(0, dtype=np.int64)
    t = np.repeat(np.arange(nt, dtype=_index_dtype(nt)), k)
    return s.astype(_index_dtype(ns)), t


def _pairs_from_file(rule, spec_file: str, ns: int, nt: int, diags, check):
    """Return (sources, targets) read from a ``source,target`` file; ``check(pairs)`` is called before reading."""
    ref = rule.args[0] if len(rule.args) == 1 and isinstance(rule.args[0], FileRef) else None
    if ref is None:
        diags.append(Diagnostic("E003", rule.span, 'from_file needs a quoted file name, e.g. from_file("pairs.csv")'))
        return None, None
    try:
        path = resolve_path(spec_file, ref.path, ref.span)
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


def load_network(path, seed: int = 0, max_memory: int | str | None = None, draw: bool = True) -> Network:
    """Return the checked network in the file at ``path`` (``max_memory``, ``draw``: see :func:`build_network`)."""
    shown, text = L.read_source(path)
    limit = None if max_memory is None else memory.parse_size(max_memory)
    return build_network(parse_network_text(text, shown), seed, limit, draw)

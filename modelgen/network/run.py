"""Running a built network on numpy: the reference loop over time steps in Python.

Each step: Poisson drives and arrived spikes go into the populations' receptors, every group
of populations takes one step, and the spikes are delivered through the projections into ring
buffers of future steps (delays rounded to whole steps).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import memory, protocols
from ..checks import check_values, state_bounds
from ..diagnostics import Diagnostic, ModelError
from ..units import suggested_unit, unit_text_scale
from .build import Network, Population, Projection
from .common import resolve_path
from .parse import ProtocolText
from .result import NetworkResult

FEW_SPIKES = 64  # up to this many spikes per step, a projection gathers its rows by slices (cheaper than by index)
# a slot written at up to 1/64 of its neurons is applied and cleared at those only (else at all: CUBA's
# loop at N = 4,000 ran 0.383 s with 1/16, 0.348 s with 1/64; at 16,000 and 64,000 1/64 was as fast or faster)
SPARSE_RECEIVE = 64
_KEY_LIMIT = 2**62  # spikes are sorted by one int64 key (step, population, neuron) below this, else by np.lexsort
MERGE_MAX_SYNAPSES = 2**22  # projections with more synapses together are not merged (see _merged)


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
    from ..runtime import _constant, _per_neuron

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
                lambda text, span=given.span: resolve_path(net.spec.file, text, span),  # as from_file
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


def _make_groups(net: Network, dt: float, n_steps: int, out_dir, method, real=np.float64) -> list[_Group]:
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
                states.append(module.initial_state(p, inputs, pop.n, dict(pop.initial), real))
            if len(states) == 1:
                state = states[0]
            else:  # one array per state, each member's neurons after the last's
                rows = aligned_zeros(len(states[0]), offset, states[0][next(iter(states[0]))].dtype)
                state = {v: rows[i] for i, v in enumerate(states[0])}
                for (member, *_), s in zip(plan, states):
                    for v, values in s.items():
                        state[v][member.offset : member.offset + member.n] = values
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
        if neurons is None or self.counts[slot] + neurons.size > self.values.shape[1] // SPARSE_RECEIVE:
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
    members: tuple[int, ...]  # the target populations' numbers in their group (several: see _merged)
    offset: int  # targets are neurons offset + indices of the group
    n: int  # ... of offset .. offset + n - 1

    starts: list[int] = field(init=False, repr=False)  # indptr as Python ints: a few spikes' rows are sliced by them
    weight: np.ndarray | None = field(init=False, repr=False)  # the weight of every synapse (0-d), if they share one

    def __post_init__(self):
        self.starts = self.indptr.tolist()
        w = self.weights
        # (compared only up to MERGE_MAX_SYNAPSES: no large temporary)
        shared = w.size > 0 and (w.strides == (0,) or (w.size <= MERGE_MAX_SYNAPSES and bool(np.all(w == w[0]))))
        self.weight = np.array(w[0]) if shared else None


def aligned_zeros(rows: int, n: int, dtype) -> np.ndarray:
    """Return a (rows, n) array of zeros whose rows start on 64-byte boundaries (cache lines), as the
    generated modules' arrays do (see their ``_carve``): SIMD loops over an array that starts off a
    line touch two lines a load."""
    item = np.dtype(dtype).itemsize
    width = -(-n * item // 64) * 64 // item  # a row's items, padded to whole lines
    raw = np.zeros(rows * width + 64 // item, dtype=dtype)
    start = (-raw.ctypes.data % 64) // item
    return raw[start : start + rows * width].reshape(rows, width)[:, :n]


def _delays_in_steps(proj: Projection, dt: float) -> np.ndarray:
    """Return the projection's delays in whole steps (a broadcast view if they are all the same), in
    the smallest integer type that holds the longest (int16 for delays up to 32767 steps: a quarter
    of int64's memory per synapse)."""
    d = proj.delay_ms
    if d.size and d.strides == (0,):
        return np.broadcast_to(np.rint(d[:1] / dt).astype(np.int64), d.shape)
    longest = float(np.rint(d.max(initial=0) / dt))
    kind = np.int16 if longest < 2**15 else np.int32 if longest < 2**31 else np.int64
    steps = np.empty(d.shape, dtype=kind)
    for a in range(0, d.size, 2**22):  # in parts: no float64 temporary the size of the projection
        steps[a : a + 2**22] = np.rint(d[a : a + 2**22] / dt)
    if steps.size and np.all(steps == steps[0]):  # different delays may round to the same step
        return np.broadcast_to(steps[:1].astype(np.int64), d.shape)
    return steps


def _check_memory(net: Network, n_steps: int, dt: float, limit: int | None, compiled: bool = False) -> None:
    """Raise MemoryLimitError if running ``net`` for ``n_steps`` would need more than ``limit`` (see
    memory.py); ``compiled``: a compiled program's run (it records every state for a recorded current)."""
    needs = dict.fromkeys(("neuron state and stepping", "recording", "synaptic buffers", "delays in steps"), 0)
    for pop in net.populations.values():
        count = min(pop.n, pop.record_neurons)
        traced = memory.traces_recorded(
            pop.record, pop.model.model.state_names, count * (n_steps + 1) * memory.FLOAT, always=compiled
        )
        recorded = traced * count
        part = memory.run_needs(pop.n, len(pop.model.states), n_steps + 1, recorded)
        needs["neuron state and stepping"] += part["neuron state and stepping"]
        needs["recording"] += part["recording"]
    slots: dict[tuple[str, str], int] = {}  # (target, receptor) -> steps of the longest delay + 1
    for proj in net.projections:
        longest = int(np.rint(proj.delay_ms.max(initial=0) / dt))
        slots[proj.target, proj.receptor] = max(slots.get((proj.target, proj.receptor), 1), longest + 1)
        if proj.delay_ms.size and proj.delay_ms.strides != (0,):
            needs["delays in steps"] += (2 if longest < 2**15 else 4 if longest < 2**31 else 8) * proj.delay_ms.size
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


def add_records(net: Network, extra: list[str]) -> None:
    """Add the run's ``--record POP.VAR`` entries to the populations' recordings."""
    from ..runtime import SimulationError

    names = list(net.populations)
    for entry in extra:
        pop_name, _, var = entry.partition(".")
        if pop_name not in net.populations or not var:
            raise SimulationError(f"record {entry!r}: write POPULATION.VARIABLE, e.g. {names[0]}.V")
        net.populations[pop_name].record.append(var)


def recordings(net: Network) -> list[tuple[str, str, int, str, float]]:
    """Return (population, variable, neurons recorded, unit, the unit's size in internal units) of every recording."""
    out = []
    for name, pop in net.populations.items():
        m = pop.model.model
        count = min(pop.n, pop.record_neurons)
        for var in dict.fromkeys(pop.record):
            if var in m.state_names or var in {i.name for i in m.inputs}:
                unit, scale = m.unit_of(var)
            else:
                dim = next((e.dimension for e in m.expressions if e.name == var), None) or m.current(var).dimension
                unit = suggested_unit(dim)
                scale = float(unit_text_scale(unit)[1])
            out.append((name, var, count, unit, scale))
    return out


def check_runaway(states: dict[str, dict[str, np.ndarray]], bounds: dict, t0: float, t1: float) -> None:
    """Raise SimulationError at the first NaN, infinite or absurd value in ``states`` (population ->
    state -> values, in file order) that appeared between ``t0`` and ``t1`` ms; ``bounds``: population
    -> its :func:`~modelgen.checks.state_bounds` (see runtime.runaway)."""
    from ..runtime import SimulationError, runaway, runaway_message

    for name, part in states.items():
        if (bad := runaway(part, bounds[name])) is not None:
            var, *rest = bad
            raise SimulationError(runaway_message(f"{name}.{var}", *rest, t0, t1))


def network_result(
    net: Network, n_steps: int, dt: float, traces, units, spike_pop, spike_i, spike_k, wall: float, events, methods
) -> NetworkResult:
    """Return the result of a run of ``net``: spikes as (population, neuron, step) columns, sorted."""
    names = list(net.populations)
    return NetworkResult(
        network=net.name,
        populations=tuple(names),
        sizes=tuple(net.populations[n].n for n in names),
        t=np.arange(n_steps + 1) * dt,
        traces=traces,
        units=units,
        spike_pop=np.array(spike_pop, dtype=np.int64),
        spike_i=np.array(spike_i, dtype=np.int64),
        spike_t=(np.asarray(spike_k) + 1) * dt,
        dt=dt,
        duration=n_steps * dt,
        wall_time=wall,
        synaptic_events=int(events),
        methods=methods,
        seed=net.seed,
    )


def simulate(
    net: Network,
    duration: float,
    dt: float,
    out_dir,
    method,
    extra_record: list[str],
    progress=None,
    limit=None,
    real=np.float64,
) -> NetworkResult:
    from ..runtime import steps_of

    n_steps = steps_of(duration, dt)
    rng = np.random.default_rng([net.seed, 1])  # run-time randomness, separate from construction
    add_records(net, extra_record)
    _check_memory(net, n_steps, dt, limit)
    groups = _make_groups(net, dt, n_steps, out_dir, method, real)
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
                g, receptor, aligned_zeros(slots, g.n, real), pending, [[] for _ in range(slots)], [0] * slots
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
                (j,),
                m.offset,
                m.n,
            )
        )
    routes = _merged(routes)
    drives = []
    for drive in net.poisson:
        g, j, m = where[drive.target]
        drives.append((drive.rate * dt, m.n, drive.weight, buffer(drive.target, drive.receptor), j, m.offset))
    # receive in the order of the populations, then of the model's receptors (two receptors may raise one state)
    order = {(id(g), r): (gi, g.module.RECEPTORS.index(r)) for gi, g in enumerate(groups) for r in g.module.RECEPTORS}
    incoming = sorted(buffers.values(), key=lambda b: order[(id(b.group), b.receptor)])
    # (with each slot's row as a view made once, and the number of slots)
    incoming = [
        (
            b,
            b.group.receive,
            b.receptor,
            [(m.offset, m.offset + m.n) for m in b.group.members],
            list(b.values),
            len(b.pending),
        )
        for b in incoming
    ]

    # recording
    rec = []  # (samples, group, var, is_state, which neurons of the group, scale)
    traces, units = {}, {}
    for name, var, count, unit, scale in recordings(net):
        g, _, member = where[name]
        which = slice(member.offset, member.offset + count)
        key = f"{name}.{var}"
        units[key] = unit
        # one row per sample (a row is cheaper to write than a column); in units of `unit` at the end
        rec.append((np.empty((n_steps + 1, count)), g, var, var in g.state, which, scale, key))

    # a state is read through a view of its array (which the step updates in place); a current,
    # expression or input is computed after the run from the traces of every state of those neurons
    # (observe.traces: the numbers observe() gives after the step), else through observe() per step
    hidden = []  # (samples, view) of the states read for such variables only
    derive = {}  # (group, first neuron, end) -> (group, which, {state: samples}, [(samples, var)])
    for samples, g, var, is_state, which, _, _ in rec:
        if is_state or getattr(g.observe, "traces", None) is None:
            continue
        key = (id(g), which.start, which.stop)
        if key not in derive:
            recorded = {v: x for x, h, v, st, w, _, _ in rec if h is g and st and w == which}
            if not memory.derives_from_states([var, *recorded], g.module.STATES, samples.nbytes):
                continue  # the states' traces would be too large: observe() per step
            of = dict(recorded)
            for s in g.module.STATES:
                if s not in recorded:
                    of[s] = np.empty_like(samples)
                    hidden.append((of[s], g.state[s][which]))
            derive[key] = (g, which, of, [])
        derive[key][3].append((samples, var))
    derived = {id(samples) for *_, wanted in derive.values() for samples, _ in wanted}
    by_state = [(samples, g.state[var][which]) for samples, g, var, is_state, which, _, _ in rec if is_state]
    by_state += hidden
    by_observe = [
        (samples, g, var, which)
        for samples, g, var, is_state, which, _, _ in rec
        if not is_state and id(samples) not in derived
    ]

    def sample(j: int, t: float) -> None:
        for samples, view in by_state:
            samples[j] = view
        if by_observe:
            observed = {}
            for samples, g, var, which in by_observe:
                if id(g) not in observed:
                    observed[id(g)] = g.observe(t)
                samples[j] = observed[id(g)][var][which]

    from ..runtime import derived_traces, runaway

    bounds = {name: state_bounds(pop.model.model) for name, pop in net.populations.items()}

    def stop_at_runaway(t0: float, t1: float) -> None:
        """Stop the run at a NaN, infinite or absurd state value (see runtime.runaway): each group's
        arrays whole (its populations share one model, so one bound), then, where one is bad, the
        populations in file order to name the first."""
        if all(runaway(g.state, bounds[g.members[0].name]) is None for g in groups):
            return
        members = sorted(((m, g) for g in groups for m in g.members), key=lambda mg: mg[0].index)  # file order
        check_runaway(
            {m.name: {var: arr[m.offset : m.offset + m.n] for var, arr in g.state.items()} for m, g in members},
            bounds,
            t0,
            t1,
        )

    # per group: its step, its members (population number, offset), and where each member's neurons begin and end
    n_groups = len(groups)
    steppers = [
        (
            g.step,
            [(m.index, m.offset) for m in g.members],
            np.array([b for m in g.members for b in (m.offset, m.offset + m.n)]),
        )
        for g in groups
    ]
    fired, fired_at = [], []  # neuron indices in a group that spiked; step * len(groups) + that group's number
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
            for buf, receive, receptor, spans, rows, slots in incoming:
                slot = k % slots
                hit = buf.pending[slot]
                if True in hit:
                    row = rows[slot]
                    where = buf.touched[slot]
                    if where is None:
                        receive(receptor, row)
                        if False not in hit:  # every part was written to: cleared in one call
                            row.fill(0.0)
                        else:
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
            for gi, (step, members, edges) in enumerate(steppers):
                idx = step(k)  # the neurons that spiked, in order (None: the model has no spikes)
                if idx is not None and idx.size:
                    fired.append(idx)
                    fired_at.append(k * n_groups + gi)
                    if len(members) == 1:
                        spiking[members[0][0]] = idx
                    else:
                        cuts = idx.searchsorted(edges).tolist()
                        for q, (index, lo) in enumerate(members):
                            a, b = cuts[2 * q], cuts[2 * q + 1]
                            if b > a:
                                spiking[index] = idx[a:b] - lo if lo else idx[a:b]
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
    times = np.arange(n_steps + 1, dtype=float)
    times *= dt
    for g, which, of, wanted in derive.values():  # before the states' traces are scaled
        index = np.arange(which.start, which.stop)
        values = derived_traces(g.observe.traces, times, {s: x.T for s, x in of.items()}, index, [v for _, v in wanted])
        for samples, var in wanted:
            samples[...] = values[var].T
    for samples, *_, scale, key in rec:
        samples /= scale  # in place: no second copy of the recording
        traces[key] = samples.T
    spike_pop, spike_i, spike_k = _spike_table(fired, fired_at, groups)
    methods = {m.name: g.module.METHOD for g in groups for m in g.members}
    return network_result(net, n_steps, dt, traces, units, spike_pop, spike_i, spike_k, wall, events, methods)


def _deliver(r: _Route, src: np.ndarray, k: int) -> int:
    """Add the weights of the spikes of sources ``src`` in step k to the slots they arrive in; return their number."""
    buf = r.buffer
    slots = len(buf.pending)
    if r.delay is not None:
        slot = (k + 1 + r.delay) % slots
        hit = buf.pending[slot]
        earlier = True in map(hit.__getitem__, r.members)
        if not earlier and src.size <= FEW_SPIKES:
            # the spikes' rows by slices, then the sums np.bincount would give, accumulated in
            # synapse order from zero (np.add.at adds in the order of its indices)
            starts, sources = r.starts, src.tolist()
            # (a weight shared by all synapses is added as one number: the same sums, one gather fewer)
            if len(sources) == 1:
                a, b = starts[sources[0]], starts[sources[0] + 1]
                targets = r.indices[a:b]
                weights = r.weights[a:b] if r.weight is None else r.weight
            else:
                indices, w = r.indices, r.weights
                targets = np.concatenate([indices[starts[i] : starts[i + 1]] for i in sources])
                weights = (
                    np.concatenate([w[starts[i] : starts[i + 1]] for i in sources]) if r.weight is None else r.weight
                )
            if targets.size == 0:
                return 0
            if r.offset:
                targets = targets + r.offset
            np.add.at(buf.values[slot], targets, weights)
            buf.touch(slot, targets)
            for j in r.members:
                hit[j] = True
            return targets.size
    pos, total = _synapses_of(r.indptr, src)
    if total == 0:
        return 0
    targets, weights = r.indices[pos], r.weights[pos]
    if r.delay is None:
        arrive = (k + 1 + r.delays[pos].astype(np.int64)) % slots  # int64: k + delay may not fit int16
        np.add.at(buf.values, (arrive, targets + r.offset), weights)
        for slot in np.unique(arrive).tolist():
            for j in r.members:
                buf.pending[slot][j] = True
            buf.touch(slot, None)
    elif earlier:
        # earlier arrivals in this slot: add this projection's sum per target to them
        buf.values[slot, r.offset : r.offset + r.n] += np.bincount(targets, weights, minlength=r.n)
        for j in r.members:  # a merged route's other targets may be new to this slot
            hit[j] = True
        buf.touch(slot, None)
    else:
        targets = targets + r.offset if r.offset else targets
        np.add.at(buf.values[slot], targets, weights)  # the same sums, accumulated in synapse order from zero
        for j in r.members:
            hit[j] = True
        buf.touch(slot, targets)
    return total


def _merged(routes: list[_Route]) -> list[_Route]:
    """Return ``routes`` with the projections that share a source, a buffer (target group and
    receptor) and one delay, but not their targets, merged: one CSR whose rows hold a source's
    synapses onto every target of them, which a spike reaches in one delivery.

    Each target receives the same sums in the same order as before (its synapses come from one of
    the merged projections, in that one's order), so the numbers do not change: a projection is
    merged into an earlier one only if no projection between them feeds the same targets, and
    projections of per-synapse delays are not merged. Nor are large ones (more than
    MERGE_MAX_SYNAPSES synapses together): they gain nothing, their cost is numpy's, not the
    loop's, and merging copies their synapses.
    """
    out: list[_Route] = []
    for r in routes:
        for i, m in enumerate(out):
            if (
                m.source == r.source
                and m.buffer is r.buffer
                and m.delay is not None
                and m.delay == r.delay
                and not set(m.members) & set(r.members)
                and m.indices.size + r.indices.size <= MERGE_MAX_SYNAPSES
                and not any(o.buffer is r.buffer and set(o.members) & set(r.members) for o in out[i + 1 :])
            ):
                out[i] = _merge_two(m, r)
                break
        else:
            out.append(r)
    return out


def _merge_two(a: _Route, b: _Route) -> _Route:
    """Return the route of a's and b's synapses (same source rows, disjoint targets): in each row a's, then b's."""
    lo = min(a.offset, b.offset)
    hi = max(a.offset + a.n, b.offset + b.n)
    indptr = a.indptr.astype(np.int64) + b.indptr  # row i begins at a's start plus b's start
    total = int(indptr[-1])
    # a synapse at position s of row i moves to s + (b's start of row i); one of b's to s + (a's end of row i)
    place_a = np.repeat(b.indptr[:-1].astype(np.int64), np.diff(a.indptr)) + np.arange(a.indices.size)
    place_b = np.repeat(a.indptr[1:].astype(np.int64), np.diff(b.indptr)) + np.arange(b.indices.size)
    # intp: np.add.at takes it as it is (int32 indices are converted, ~0.5 us a delivery); a merged
    # route has at most MERGE_MAX_SYNAPSES synapses, so the wider indices cost at most 16 MB more
    indices = np.empty(total, dtype=np.intp)
    indices[place_a] = a.indices + (a.offset - lo) if a.offset != lo else a.indices
    indices[place_b] = b.indices + (b.offset - lo) if b.offset != lo else b.indices
    if a.weight is not None and b.weight is not None and a.weight == b.weight:
        weights = np.broadcast_to(
            a.weights[:1].astype(np.result_type(a.weights, b.weights)), (total,)
        )  # one for all: no copy
    else:
        weights = np.empty(total, dtype=np.result_type(a.weights, b.weights))
        weights[place_a] = a.weights
        weights[place_b] = b.weights
    return _Route(a.source, indptr, indices, weights, a.delay, None, a.buffer, a.members + b.members, lo, hi - lo)


def _synapses_of(indptr: np.ndarray, src: np.ndarray) -> tuple[np.ndarray, int]:
    """Return the positions of the synapses of the sources ``src`` in a CSR, and their number."""
    starts = indptr[src]
    counts = indptr[src + 1] - starts
    total = int(counts.sum())
    return np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(total), total


def _spike_table(fired: list, fired_at: list, groups: list[_Group]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (population index, neuron index, step) of every spike, by step, population and neuron, from
    the neurons ``fired[j]`` of group ``fired_at[j] % len(groups)`` that spiked in step ``fired_at[j] // len(groups)``."""
    if not fired:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    idx = np.concatenate(fired)
    sizes = np.fromiter(map(len, fired), np.int64, len(fired))
    step, group = np.divmod(np.array(fired_at, dtype=np.int64), len(groups))
    step = np.repeat(step, sizes)
    # the groups' neurons numbered one after the other; each member's first neuron in that numbering
    base = np.cumsum([0] + [g.n for g in groups])
    at = idx
    if len(groups) > 1:
        at = idx + np.repeat(base[group], sizes)
    members = sorted(
        (int(base[gi]) + m.offset, m.index, m.offset, m.n) for gi, g in enumerate(groups) for m in g.members
    )
    which = np.searchsorted(np.array([first for first, *_ in members]), at, side="right") - 1
    pop = np.array([index for _, index, _, _ in members], dtype=np.int64)[which]
    local = idx - np.array([offset for _, _, offset, _ in members], dtype=np.int64)[which]
    # the loop gives them by step, and within a step mostly in order already: sorted only if not
    pops, widest = max(index for _, index, _, _ in members) + 1, max(n for *_, n in members)
    if (int(step[-1]) + 1) * pops * widest < _KEY_LIMIT:
        key = (step * pops + pop) * widest + local
        if bool(np.all(key[1:] > key[:-1])):
            return pop, local, step
        order = np.argsort(key, kind="stable")
    else:
        order = np.lexsort((local, pop, step))
    return pop[order], local[order], step[order]

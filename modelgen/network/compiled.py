"""Running a built network as one generated program (``--backend numba``): the time loop in compiled code.

The network's :class:`Layout` (populations, a ring buffer per population and receptor, projections,
Poisson drives, recorded states) is what the backend's ``generate_network`` prints; the module it
makes is cached like a model's (named by a hash of the layout and of the populations' modules) and
its ``run_steps`` makes many steps per call. Between calls the host checks for runaway values,
reports progress and fills the inputs that change with time. The numbers are numpy's (the
reference, :mod:`.run`): the same step arithmetic in the same order, each slot of a ring receiving
its spikes in the same order (spikes by neuron, synapses in CSR order, into slots cleared when read);
only the Poisson drives draw from another generator (counter-based, seeded from the network's seed:
a count depends on the seed, the drive, the step and the neuron only, the same in numba's program and
the GPU's), so with drives the spikes agree with numpy's in their statistics, not one by one.

numba's program makes the populations in parts (:func:`parts_of`), on threads where the network
has THREADED_FROM neurons or more (``NUMBA_NUM_THREADS`` caps the threads): each part delivers the
spikes of the step before to its own neurons, through the synapses of each source onto that part
(each row's synapses grouped by the part they reach: :func:`_in_parts`), then steps them; no part
writes where another does, so the numbers are the same on any number of threads. A network of few
projections (the numba backend's THREADED_MAX_PROJECTIONS) runs its parts on numba's threads within
its compiled loop (``run_steps_threaded``); one of more, whose threaded loop numba would take too
long to compile, from STEPPED_FROM_PYTHON_FROM neurons on, is stepped from Python, the parts on a
pool of threads (:func:`_stepped_from_python`); smaller ones run on one thread.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import time
from dataclasses import dataclass

import numpy as np

from .. import backends, cache, runtime
from ..atomic import write_text_atomic
from ..checks import state_bounds
from ..codegen import toolkit_fingerprint
from .build import Network
from .result import NetworkResult
from .run import (
    _check_memory,
    _delays_in_steps,
    _population_setup,
    add_records,
    check_runaway,
    network_result,
    recordings,
)

__all__ = ["Layout", "simulate_compiled", "DTYPES", "parts_of"]

DTYPES = {"float64": np.float64, "float32": np.float32}
NEURON_STEPS_PER_CALL = 2**22  # steps per call of run_steps: about this many neuron-steps (checks between)
THREADED_FROM = 16_384  # neurons in all from which a threaded program steps its populations in parts on threads
PART_ALIGN = 64  # parts begin at multiples of this many neurons (whole cache lines of their arrays)
# networks of too many projections for numba's threaded loop (THREADED_MAX_PROJECTIONS) are stepped from
# Python, their parts on threads, from this many neurons on: each step then costs about 0.2 ms more
STEPPED_FROM_PYTHON_FROM = 65_536


@dataclass(frozen=True)
class PopulationLayout:
    name: str
    index: int
    n: int
    model: object  # api.NeuronModel
    method: str | None
    record: tuple[str, ...]  # recorded states


@dataclass(frozen=True)
class RingLayout:
    index: int
    population: int
    receptor: str


@dataclass(frozen=True)
class ProjectionLayout:
    source: int
    target: int
    receptor: str
    ring: int
    uniform_delay: bool


@dataclass(frozen=True)
class DriveLayout:
    target: int
    receptor: str
    ring: int


@dataclass(frozen=True)
class Layout:
    """What the generated network program is made of (its arrays are passed at run time)."""

    name: str
    source_name: str
    dtype: str
    populations: tuple[PopulationLayout, ...]
    rings: tuple[RingLayout, ...]
    projections: tuple[ProjectionLayout, ...]
    drives: tuple[DriveLayout, ...]

    def key(self) -> str:
        """Return the text that the module's build hash is made from."""
        pops = [(p.name, p.model.build_hash(p.method, "numba"), p.record) for p in self.populations]  # not n: any size
        return repr((self.name, self.source_name, self.dtype, pops, self.rings, self.projections, self.drives))


def layout_of(net: Network, method: str | None, dtype: str) -> Layout:
    """Return the layout of ``net`` (delays in steps already set on its projections)."""
    names = list(net.populations)
    pops = []
    for i, (name, pop) in enumerate(net.populations.items()):
        m = pop.model.model
        asked = list(dict.fromkeys(pop.record))
        # the program records states; a current, expression or input is computed afterwards from
        # every state's trace (see simulate_compiled), so asking for one records them all
        derived = [v for v in asked if v not in m.state_names]
        record = tuple(
            dict.fromkeys([v for v in asked if v in m.state_names] + (list(m.state_names) if derived else []))
        )
        pops.append(PopulationLayout(name, i, pop.n, pop.model, method, record))
    fed = dict.fromkeys(
        [(names.index(p.target), p.receptor) for p in net.projections]
        + [(names.index(d.target), d.receptor) for d in net.poisson]
    )  # (population, receptor) of each ring; a population's rings in the model's order of receptors
    order = sorted(fed, key=lambda k: (k[0], net.populations[names[k[0]]].model.model.receptors.index(k[1])))
    rings = {k: RingLayout(i, k[0], k[1]) for i, k in enumerate(order)}
    projections = tuple(
        ProjectionLayout(
            names.index(p.source),
            names.index(p.target),
            p.receptor,
            rings[names.index(p.target), p.receptor].index,
            p.delays.size == 0 or p.delays.strides == (0,),
        )
        for p in net.projections
    )
    drives = tuple(
        DriveLayout(names.index(d.target), d.receptor, rings[names.index(d.target), d.receptor].index)
        for d in net.poisson
    )
    source = net.spec.file.rsplit("/", 1)[-1]
    return Layout(net.name, source, dtype, tuple(pops), tuple(rings.values()), projections, drives)


def load_program(layout: Layout, backend: str):
    """Return the network module of ``layout`` for ``backend``, generated unless an intact one is cached.

    It lives in modelgen's cache whatever folder the models' modules are written to: it is made
    for the run, not for the user to keep, and one place lets every run reuse its compiled code.
    """
    generator = backends.get(backend)
    h = hashlib.sha256(f"{layout.key()}\0{backend}\0{toolkit_fingerprint()}".encode()).hexdigest()
    target = cache.module_path(cache.readable_stem(f"{layout.name}_network"), h, backend)
    if runtime.verified_build_hash(target) != h:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, generator.generate_network(layout, h))
    return runtime.load_generated(target, h)


def parts_of(sizes, threads: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Return how a threaded program steps populations of ``sizes`` neurons on ``threads`` threads:
    the parts (rows: population, first neuron, end; a population's in order), the first part of
    each population (and the number of parts, last), and whether to use the threads at all.

    Small networks are not worth the threads' start (some microseconds a step): one part per
    population, unthreaded. In larger ones every thread gets a run of consecutive parts holding
    about total / threads neurons: the neurons in population order are cut where each thread's
    share begins (at a multiple of PART_ALIGN neurons within its population: whole cache lines),
    and at the populations' ends. Both ways of running the parts deal out a run of equally many
    parts to each thread (numba's prange cuts its iterations into one chunk per thread, equal in
    number; the Python-stepped loop likewise), so every thread's run is padded to the same number
    of parts by halving its largest part (at a whole cache line; left as it is where none can be).
    Cutting parts of equal number instead (the way before) gave CUBA at N = 64 000 on two threads
    40,000 neurons on one thread and 24,000 on the other: 0.550 s against 0.434 s now. The numbers
    do not depend on the parts.
    """
    total = int(sum(sizes))
    threaded = threads > 1 and total >= THREADED_FROM
    if not threaded:
        rows = [(p, 0, int(n)) for p, n in enumerate(sizes)]
        return np.array(rows, dtype=np.int64).reshape(-1, 3), np.arange(len(rows) + 1, dtype=np.int64), False
    shares = [total * t // threads for t in range(threads)]  # where each thread's share begins
    runs = [[] for _ in range(threads)]  # each thread's parts, (population, first, end)
    begin = 0
    for p, n in enumerate(sizes):
        n = int(n)
        thread = {0: max(t for t in range(threads) if shares[t] <= begin)}  # the thread of the part at each cut
        for t in range(1, threads):
            if 0 < shares[t] - begin < n:
                at = (shares[t] - begin) // PART_ALIGN * PART_ALIGN
                thread[at] = max(thread.get(at, 0), t)
        cuts = sorted(thread) + [n]
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            runs[thread[lo]].append((p, lo, hi))
        begin += n
    runs = [run for run in runs if run]
    longest = max(len(run) for run in runs)
    for run in runs:
        while len(run) < longest:
            j = max(range(len(run)), key=lambda j: run[j][2] - run[j][1])
            p, lo, hi = run[j]
            half = (lo + hi) // 2 // PART_ALIGN * PART_ALIGN
            if not lo < half < hi:
                break  # too small to halve on whole cache lines: this run keeps fewer parts
            run[j : j + 1] = [(p, lo, half), (p, half, hi)]
    rows = [part for run in runs for part in run]
    first = np.searchsorted([p for p, _, _ in rows], np.arange(len(sizes) + 1), side="left")
    return np.array(rows, dtype=np.int64).reshape(-1, 3), first.astype(np.int64), True


def _per_synapse(proj, name: str) -> np.ndarray:
    """Return the projection's array ``name`` if it holds one value per synapse (made writable), else an array of one."""
    values = getattr(proj, name)
    if values.size == 0 or values.strides == (0,):
        return np.zeros(1, dtype=values.dtype)
    if not values.flags.writeable:
        values = values.copy()
        setattr(proj, name, values)
    return values


def _in_parts(program, net: Network, layout: Layout) -> tuple:
    """Return the arguments with which a program that steps the populations in parts (numba's) runs
    them, (parts, first part of each population, counts, splits, sent, number sent), and whether on
    threads; ((), False) for another program (the GPU's).

    Where a population is cut into parts, the projections into it have their synapses grouped by
    the part of their target within each source's row (in place and stably, in time linear in the
    synapses: each target receives its spikes in the same order, and the numpy backend's numbers do
    not change), so that each part finds its own.
    """
    if not hasattr(program, "threads"):
        return (), False
    sizes = [p.n for p in layout.populations]
    threads = program.threads()
    if not hasattr(program, "run_steps_threaded") and sum(sizes) < STEPPED_FROM_PYTHON_FROM:
        threads = 1  # too many projections for numba's threaded loop, too few neurons to step from Python
    parts, first, threaded = parts_of(sizes, threads)
    splits = []
    for proj, pl in zip(net.projections, layout.projections):
        lows = parts[first[pl.target] : first[pl.target + 1], 1]
        if len(lows) == 1:
            splits.append(np.stack([proj.indptr[:-1], proj.indptr[1:]], axis=1))
            continue
        starts = np.append(lows, sizes[pl.target]).astype(np.int64)
        splits.append(
            program.group_rows(
                proj.indptr,
                _per_synapse(proj, "indices"),
                _per_synapse(proj, "weights"),
                _per_synapse(proj, "delays"),
                _per_synapse(proj, "delay_ms"),
                starts,
            )
        )
    sent = tuple(np.empty(n, dtype=np.int64) for n in sizes)
    arguments = (
        parts,
        first,
        np.zeros((len(parts), 2), dtype=np.int64),  # per part: its spikes and its drives' events in a step
        tuple(splits),
        sent,
        np.zeros(len(sizes), np.int64),
    )
    return arguments, threaded


_POOL: list = []


def _stepped_from_python(program, parts: np.ndarray, threads: int):
    """Return a function like ``program.run_steps`` that makes each step from Python in pieces
    (``program.run_step_piece``): the parts on ``threads`` threads at once (compiled code without
    the GIL, each thread a run of about equally many parts), then what the parts found (sent, noted,
    counted, recorded). For networks whose threaded loop numba would take too long to compile; a
    step costs some 0.2 ms more than in run_steps, little beside a large network's. The numbers are
    run_steps'."""
    if not _POOL or _POOL[0][0] < threads:  # one pool, made again only to grow
        if _POOL:
            _POOL[0][1].shutdown(wait=False)
        _POOL[:] = [(threads, concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="modelgen-network"))]
    pool = _POOL[0][1]
    bounds = [len(parts) * j // threads for j in range(threads + 1)]
    ranges = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    piece = program.run_step_piece

    def run_steps(k_start, k_stop, dt, *arguments):
        head, (spikes, n_spikes), tail = arguments[:8], arguments[8:10], arguments[10:]
        events = 0
        if k_stop <= k_start:  # compiles (or loads) the pieces
            piece(-1, 0, 0, k_start, k_start, dt, *head, spikes, n_spikes, *tail)
        for k in range(k_start, k_stop):
            jobs = [pool.submit(piece, 1, a, b, k, k_start, dt, *head, spikes, n_spikes, *tail) for a, b in ranges[1:]]
            try:
                piece(1, *ranges[0], k, k_start, dt, *head, spikes, n_spikes, *tail)
            finally:
                for job in jobs:
                    job.result()
            spikes, n_spikes, found = piece(2, 0, 0, k, k_start, dt, *head, spikes, n_spikes, *tail)
            events += found
        return spikes, n_spikes, events

    return run_steps


def _traces(net: Network, layout: Layout, stored: dict, modules: list, setups: list, n_steps: int, dt: float):
    """Return the run's traces (POP.VAR -> (neurons, steps + 1), in the unit of ``units``) and units:
    states as the program recorded them; currents, expressions and inputs computed from every state's
    trace by the population module's ``observe.traces`` (the numbers its observe() gives after a step)."""
    t = np.arange(n_steps + 1, dtype=float)
    t *= dt
    wanted = recordings(net)
    derived = {}
    for pl in layout.populations:  # first: the states' traces are still in internal units
        names = [var for name, var, _, _, _ in wanted if name == pl.name and (name, var) not in stored]
        if names:
            module, (p, given) = modules[pl.index], setups[pl.index]
            blank = {s: np.zeros(pl.n) for s in module.STATES}  # observe.traces reads the traces it is given only
            observe = module.make_simulator(blank, p, given, dt)[1]
            of = {s: stored[pl.name, s].T for s in module.STATES}
            count = min(pl.n, net.populations[pl.name].record_neurons)
            values = runtime.derived_traces(observe.traces, t, of, np.arange(count), names)
            derived.update({(pl.name, var): values[var] for var in names})
    traces, units = {}, {}
    for name, var, _, unit, scale in wanted:
        units[f"{name}.{var}"] = unit
        samples = derived[name, var] if (name, var) in derived else stored[name, var].T
        samples /= scale  # in place: no second copy of the recording
        traces[f"{name}.{var}"] = samples
    return traces, units


def _input_table(fn, k_start: int, k_stop: int, dt: float, offsets, n: int) -> np.ndarray:
    """Return an input for the steps k_start .. k_stop - 1: one float per offset if shared and
    constant, else an array (steps or 1, offsets, neurons or 1)."""
    fixed = getattr(fn, "constant", None)
    if fixed is not None and np.ndim(fixed) == 0:
        return np.full(len(offsets), float(fixed))
    if fixed is not None:
        return np.asarray(fixed, dtype=np.float64).reshape(1, 1, -1).repeat(len(offsets), axis=1)
    k_stop = max(k_stop, k_start + 1)  # at least a step: the call that compiles makes none
    values = [np.asarray(fn((k + c) * dt), dtype=np.float64) for k in range(k_start, k_stop) for c in offsets]
    width = n if any(v.ndim for v in values) else 1
    out = np.empty((k_stop - k_start, len(offsets), width))
    if values:  # none for no steps (the first call, which only compiles)
        out.reshape(-1, width)[...] = [np.broadcast_to(v, (width,)) for v in values]
    return out


def _in_dtype(values: np.ndarray, real) -> np.ndarray:
    """Return per-synapse ``values`` in ``real`` (a value shared by all stays one value, broadcast)."""
    if values.size and values.strides == (0,):
        return np.broadcast_to(np.asarray(values[:1], dtype=real), values.shape)
    return values.astype(real, copy=False)


def simulate_compiled(
    net: Network,
    duration: float,
    dt: float,
    out_dir,
    method,
    extra_record: list[str],
    progress=None,
    limit=None,
    backend: str = "numba",
    dtype: str = "float64",
) -> NetworkResult:
    """Run ``net`` as one generated program on ``backend`` (see the module's docstring)."""
    generator = backends.get(backend)
    generator.require()
    if not hasattr(generator, "generate_network"):
        raise backends.BackendUnavailableError(
            f"the {backend} backend does not run networks; use --backend numpy or --backend numba"
        )
    real = DTYPES[dtype]
    n_steps = runtime.steps_of(duration, dt)
    add_records(net, extra_record)
    _check_memory(net, n_steps, dt, limit, compiled=True)
    for proj in net.projections:
        proj.delays = _delays_in_steps(proj, dt)
    layout = layout_of(net, method, dtype)

    program = load_program(layout, backend)
    states, values, inputs, events, modules, offsets, setups = [], [], [], [], [], [], []
    with np.errstate(all="ignore"):
        for i, pop in enumerate(net.populations.values()):
            module = pop.model.load_module(out_dir, method)  # numpy's: parameters, inputs, initial state
            p, given = _population_setup(net, pop, module, dt, n_steps)
            setups.append((p, given))
            state = module.initial_state(p, given, pop.n, dict(pop.initial), real)
            step_values, ref_steps, was_above = getattr(program, f"_values_{program.KERNELS[i]}")(p, state, dt)
            states.append(tuple(state[s] for s in module.STATES))
            values.append((step_values, ref_steps))
            inputs.append([given[k] for k in module.INPUTS])
            events.append(
                (
                    was_above,
                    np.zeros(pop.n, dtype=np.int64),
                    np.empty(pop.n, dtype=np.int64),
                    np.zeros(pop.n, dtype=bool),
                )
            )
            modules.append(module)
            offsets.append(module.INPUT_OFFSETS)
    rings = []
    for r in layout.rings:
        n = layout.populations[r.population].n
        longest = max(
            (int(p.delays.max(initial=0)) for p, pl in zip(net.projections, layout.projections) if pl.ring == r.index),
            default=0,
        )
        rings.append(np.zeros((longest + 1, n), dtype=real))
    in_parts, threaded = _in_parts(program, net, layout)  # before the weights are copied: it may regroup the synapses
    projections = tuple(
        (
            p.indptr,
            p.indices,
            _in_dtype(p.weights, real),
            np.int64(p.delays[0])
            if pl.uniform_delay and p.delays.size
            else np.int64(0)
            if pl.uniform_delay
            else p.delays,
        )
        for p, pl in zip(net.projections, layout.projections)
    )
    # per drive: mean count per step, weight, seed (counter-based draws: a count depends on the seed, the
    # drive, the step and the neuron only; the GPU program takes its seed apart)
    seed = int(np.random.default_rng([net.seed, 1]).integers(2**31))
    drives = np.array([(d.rate * dt, d.weight, seed) for d in net.poisson], dtype=np.float64).reshape(-1, 3)
    if hasattr(program, "seed"):
        program.seed(seed)

    # what the program records: the states of each population's layout, of its first neurons
    stored = {}  # (population, state) -> samples (steps + 1, neurons)
    for pl in layout.populations:
        count = min(pl.n, net.populations[pl.name].record_neurons)
        for var in pl.record:
            samples = np.empty((n_steps + 1, count))
            samples[0] = states[pl.index][modules[pl.index].STATES.index(var)][:count]
            stored[pl.name, var] = samples
    records = tuple(tuple(stored[pl.name, var] for var in pl.record) for pl in layout.populations)
    bounds = {name: state_bounds(pop.model.model) for name, pop in net.populations.items()}
    spikes, n_spikes, n_events = np.empty((1024, 3), dtype=np.int64), 0, 0

    def call(k0: int, k1: int):
        tables = tuple(
            tuple(_input_table(f, k0, k1, dt, offsets[i], layout.populations[i].n) for f in inputs[i])
            for i in range(len(inputs))
        )
        return run_steps(
            k0,
            k1,
            dt,
            tuple(states),
            tuple(values),
            tables,
            tuple(events),
            tuple(rings),
            projections,
            drives,
            records,
            spikes,
            n_spikes,
            *in_parts,
        )

    # a GPU program keeps the network on the device between calls (start_run: one run's); numba's run_steps holds none
    if hasattr(program, "start_run"):
        run_steps = program.start_run()
    elif threaded and not hasattr(program, "run_steps_threaded"):  # many projections: steps from Python
        run_steps = _stepped_from_python(program, in_parts[0], program.threads())
    else:  # each compiled at its first call: a small network never compiles the threaded one
        run_steps = program.run_steps_threaded if threaded else program.run_steps
    spikes, n_spikes, _ = call(0, 0)  # compiles (or loads the compiled code) before the clock starts
    start = time.perf_counter()
    per_call = getattr(program, "NEURON_STEPS_PER_CALL", NEURON_STEPS_PER_CALL)  # a GPU program's chunks are longer
    chunk = max(1, min(n_steps, per_call // max(1, net.n_neurons)))
    with np.errstate(all="ignore"):
        for k0 in range(0, n_steps, chunk):
            k1 = min(n_steps, k0 + chunk)
            spikes, n_spikes, events_here = call(k0, k1)
            n_events += events_here
            check_runaway(
                {name: dict(zip(modules[i].STATES, states[i])) for i, name in enumerate(net.populations)},
                bounds,
                k0 * dt,
                k1 * dt,
            )
            if progress is not None:
                progress(k1, n_steps)
    wall = time.perf_counter() - start
    traces, units = _traces(net, layout, stored, modules, setups, n_steps, dt)
    table = spikes[:n_spikes]
    names = list(net.populations)
    methods = {name: m.METHOD for name, m in zip(names, modules)}
    return network_result(
        net, n_steps, dt, traces, units, table[:, 1], table[:, 2], table[:, 0], wall, n_events, methods
    )

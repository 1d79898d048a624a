"""Networks as one generated program (--backend numba): the same spikes as the numpy reference.

numba compiles each network layout once per test session (the session's cache), ~20 s each; the
default run compiles one (MIXED, on one thread), the rest (the threaded loop too) run under -m slow.
"""

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import MODELS, requires_numba

from modelgen.cli import main
from modelgen.network import load_network

pytestmark = requires_numba


def write(tmp_path, text, name="net.network"):
    """Write a network file next to copies of the bundled models."""
    for m in ("lif.model", "cuba_lif.model", "coba_lif.model", "hh.model"):
        (tmp_path / m).write_text((MODELS / m).read_text())
    path = tmp_path / name
    path.write_text(text)
    return path


def both(path, duration, dt=0.1, seed=3, **options):
    """Return the numpy and numba runs of the network file at ``path`` (each built from ``seed``)."""
    runs = []
    for backend in ("numpy", "numba"):
        net = load_network(path, seed=seed)
        runs.append(net.run(duration, dt, out_dir=path.parent / "gen", backend=backend, **options))
    return runs


def assert_same_spikes(a, b):
    assert a.spike_t.size > 0
    assert np.array_equal(a.spike_pop, b.spike_pop)
    assert np.array_equal(a.spike_i, b.spike_i)
    assert np.array_equal(a.spike_t, b.spike_t)


# three models; a crossing threshold without reset (HH), exp in the step (branch-free on numba),
# per-neuron parameters, a time-varying input, per-synapse delays, two receptors, self-connections
MIXED = """network Mixed
population H = "hh.model" (n = 3)
population L = "cuba_lif.model" (n = 40, V_th = uniform(-52 mV, -48 mV), V = uniform(-60 mV, -50 mV))
population G = "lif.model" (n = 5)
input H (I_ext = step(10 uA/cm^2, on = 5 ms, off = 60 ms))
input G (I_ext = 300 pA)
connect H to L (receptor = exc, rule = all_to_all, weight = 2 mV, delay = uniform(0.5 ms, 3 ms))
connect L to L (receptor = inh, rule = fixed_probability(0.2), weight = -1 mV, delay = 1 ms)
connect G to L (receptor = exc, rule = fixed_indegree(2), weight = 0.5 mV)
connect L to G (receptor = exc, rule = fixed_probability(0.3), weight = 1 nS, delay = 0.3 ms)
record H (V, I_Na, alpha_m)
record L (V, v_e)
record G (I_syn, g_syn, I_leak, I_ext)
"""


def test_numba_network_gives_numpys_spikes_and_traces(tmp_path):
    a, b = both(write(tmp_path, MIXED), 100.0, dt=0.025)
    assert_same_spikes(a, b)
    assert {p: a.rate(p) > 0 for p in a.populations} == {"H": True, "L": True, "G": True}
    # currents, expressions and inputs too: the program records states, and every state of those
    # neurons for them, which observe.traces turns into the numbers numpy's loop records
    assert (
        list(b.traces)
        == list(a.traces)
        == ["H.V", "H.I_Na", "H.alpha_m", "L.V", "L.v_e", "G.I_syn"]
        + [
            "G.g_syn",
            "G.I_leak",
            "G.I_ext",
        ]
    )
    for key in a.traces:
        assert a.units[key] == b.units[key]
        assert np.ptp(a.traces[key]) > 0 or key == "G.I_ext"
        # HH's exp is numba's branch-free one (within 1 ulp of numpy's): the traces agree to round-off
        np.testing.assert_allclose(b.traces[key], a.traces[key], rtol=1e-9, atol=1e-9 * np.abs(a.traces[key]).max())
    assert np.all(b.traces["G.I_ext"] == 300.0)  # pA, the unit both give
    assert b.synaptic_events == a.synaptic_events
    assert b.methods == a.methods


def test_parts_share_the_neurons_out_evenly_on_whole_cache_lines():
    """Each thread gets a run of equally many consecutive parts (numba's prange deals out its iterations
    so), holding about as many neurons as every other thread's, the parts on whole cache lines."""
    from modelgen.network.compiled import PART_ALIGN, THREADED_FROM, parts_of

    rows, first, threaded = parts_of([51_200, 12_800], threads=2)  # CUBA at N = 64 000
    assert threaded and first.tolist() == [0, 3, 4]
    assert rows.tolist() == [[0, 0, 16_000], [0, 16_000, 32_000], [0, 32_000, 51_200], [1, 0, 12_800]]
    rows, first, threaded = parts_of([51_200, 12_800], threads=4)
    assert len(rows) == 8 and first.tolist() == [0, 7, 8]
    assert [int(np.sum(rows[j : j + 2, 2] - rows[j : j + 2, 1])) for j in (0, 2, 4, 6)] == [16_000] * 4
    for sizes, threads in (([0, 20_000, 5, 0, 100], 2), ([100_000, 3, 17_000], 3), ([16_384], 16), ([70_001], 7)):
        rows, first, threaded = parts_of(sizes, threads)
        assert threaded and len(rows) % threads == 0 and first[-1] == len(rows)
        assert all(lo % PART_ALIGN == 0 for lo in rows[:, 1])
        for p, n in enumerate(sizes):  # a population's parts, in order, cover it
            mine = rows[first[p] : first[p + 1]]
            assert (mine[:, 0] == p).all() and mine[0, 1] == 0 and mine[-1, 2] == n
            assert (mine[1:, 1] == mine[:-1, 2]).all()
        per_thread = np.add.reduceat(rows[:, 2] - rows[:, 1], np.arange(0, len(rows), len(rows) // threads))
        assert per_thread.max() - per_thread.min() <= 2 * PART_ALIGN + 1, per_thread
    # small networks, or one thread: one part per population, no threads
    for sizes, threads in (([THREADED_FROM - 100, 99], 8), ([100_000], 1)):
        rows, first, threaded = parts_of(sizes, threads)
        assert not threaded and rows.tolist() == [[p, 0, n] for p, n in enumerate(sizes)]


@pytest.mark.slow  # ~50 s: numba compiles the threaded loop (the one-thread loop runs by default, in parts of one)
def test_populations_in_parts_on_threads_give_numpys_spikes(tmp_path, monkeypatch):
    """Parts of 8 neurons, on threads: every part takes its spikes (each row's synapses grouped by the
    part they reach) and makes its step; the numbers are numpy's, and numpy's own on the regrouped synapses too."""
    from modelgen.network import compiled

    real = compiled.parts_of
    monkeypatch.setattr(compiled, "PART_ALIGN", 8)
    monkeypatch.setattr(compiled, "parts_of", lambda sizes, threads: (*real(sizes, 1000)[:2], True))
    monkeypatch.setattr(compiled, "THREADED_FROM", 0)
    path = write(tmp_path, MIXED)
    a = load_network(path, seed=3).run(60.0, 0.025, out_dir=tmp_path / "gen")
    net = load_network(path, seed=3)
    b = net.run(60.0, 0.025, out_dir=tmp_path / "gen", backend="numba")

    def groups(proj):  # each row's parts of 8 neurons reached, in the row's order
        return [proj.indices[x:y] // 8 for x, y in zip(proj.indptr[:-1], proj.indptr[1:])]

    drawn, regrouped = groups(load_network(path, seed=3).projections[1]), groups(net.projections[1])  # L to L
    assert not all(np.all(np.diff(g) >= 0) for g in drawn)
    assert all(np.all(np.diff(g) >= 0) for g in regrouped)
    c = net.run(60.0, 0.025, out_dir=tmp_path / "gen")
    for other in (b, c):
        assert_same_spikes(a, other)
        assert other.synaptic_events == a.synaptic_events
        np.testing.assert_allclose(other.traces["L.V"], a.traces["L.V"], rtol=1e-9, atol=1e-9)


@pytest.mark.slow  # ~30 s: compiles the threaded loop of another layout
def test_drives_drawn_in_parts_on_threads_are_the_one_thread_draws(tmp_path, monkeypatch):
    """The Poisson drives are drawn by each part for its own neurons (counter-based: a count depends on
    the seed, drive, step and neuron only): in parts of 8 on numba's threads, the one-thread loop's spikes."""
    from modelgen.network import compiled

    text = """network Driven
population E = "cuba_lif.model" (n = 300, E_L = -65 mV, V = -65 mV)
poisson E (receptor = exc, rate = 2 kHz, weight = 1.6 mV)
connect E to E (receptor = inh, rule = fixed_indegree(10), weight = -0.5 mV)
record E (V, neurons = 20)
"""
    path = write(tmp_path, text)
    one = load_network(path, seed=2).run(100.0, 0.1, out_dir=tmp_path / "gen", backend="numba")
    real = compiled.parts_of
    monkeypatch.setattr(compiled, "PART_ALIGN", 8)
    monkeypatch.setattr(compiled, "parts_of", lambda sizes, threads: (*real(sizes, 1000)[:2], True))
    monkeypatch.setattr(compiled, "THREADED_FROM", 0)
    threaded = load_network(path, seed=2).run(100.0, 0.1, out_dir=tmp_path / "gen", backend="numba")
    assert_same_spikes(one, threaded)
    assert threaded.synaptic_events == one.synaptic_events
    assert np.array_equal(threaded.traces["E.V"], one.traces["E.V"])
    assert 5 < one.rate("E") < 50


class _WithoutThreadedLoop:
    """A network program as numba's for a network of many projections: no run_steps_threaded."""

    def __init__(self, program):
        self._program = program

    def __getattr__(self, name):
        if name == "run_steps_threaded":
            raise AttributeError(name)
        return getattr(self._program, name)


@pytest.mark.slow  # ~50 s: compiles run_step_piece
def test_a_network_stepped_from_python_on_threads_gives_the_same_numbers(tmp_path, monkeypatch):
    """A network of too many projections for numba's threaded loop, large enough: each step made from
    Python in pieces, its parts (of 8 neurons here) on threads: numpy's spikes and traces, and with
    Poisson drives (drawn on the calling thread), the one-thread loop's spikes exactly."""
    from modelgen.network import compiled

    real_parts, real_load = compiled.parts_of, compiled.load_program
    path = write(tmp_path, MIXED + "poisson L (receptor = exc, rate = 300 Hz, weight = 0.5 mV)\n")
    one_thread = load_network(path, seed=3).run(60.0, 0.025, out_dir=tmp_path / "gen", backend="numba")
    monkeypatch.setattr(compiled, "PART_ALIGN", 8)
    monkeypatch.setattr(compiled, "parts_of", lambda sizes, threads: (*real_parts(sizes, 1000)[:2], True))
    monkeypatch.setattr(compiled, "THREADED_FROM", 0)
    monkeypatch.setattr(compiled, "STEPPED_FROM_PYTHON_FROM", 0)
    monkeypatch.setattr(
        compiled, "load_program", lambda layout, backend: _WithoutThreadedLoop(real_load(layout, backend))
    )
    pieces = []
    real_stepped = compiled._stepped_from_python
    monkeypatch.setattr(compiled, "_stepped_from_python", lambda *a: pieces.append(a) or real_stepped(*a))
    stepped = load_network(path, seed=3).run(60.0, 0.025, out_dir=tmp_path / "gen", backend="numba")
    assert len(pieces) == 1 and len(pieces[0][1]) > 4  # stepped from Python, in parts
    assert_same_spikes(one_thread, stepped)
    assert stepped.synaptic_events == one_thread.synaptic_events
    for key in one_thread.traces:
        assert np.array_equal(stepped.traces[key], one_thread.traces[key]), key
    # without drives, numpy's numbers
    a = load_network(write(tmp_path, MIXED, "plain.network"), seed=3).run(60.0, 0.025, out_dir=tmp_path / "gen")
    b = load_network(tmp_path / "plain.network", seed=3).run(60.0, 0.025, out_dir=tmp_path / "gen", backend="numba")
    assert len(pieces) == 2
    assert_same_spikes(a, b)
    assert b.synaptic_events == a.synaptic_events
    np.testing.assert_allclose(b.traces["L.V"], a.traces["L.V"], rtol=1e-9, atol=1e-9)


def test_group_rows_is_a_stable_partition_by_part(tmp_path):
    from modelgen.network import compiled

    net = load_network(write(tmp_path, MIXED), seed=3)
    for proj in net.projections:
        proj.delays = compiled._delays_in_steps(proj, 0.1)
    program = compiled.load_program(compiled.layout_of(net, None, "float64"), "numba")
    rng = np.random.default_rng(0)
    indptr = np.array([0, 0, 7, 30, 31, 60], dtype=np.int64)
    indices = rng.integers(0, 20, 60).astype(np.int32)  # repeated targets (multapses) among them
    weights, delays, ms = rng.normal(size=60), rng.integers(0, 9, 60).astype(np.int16), rng.normal(size=60)
    starts = np.array([0, 5, 12, 20], dtype=np.int64)
    before = (indices.copy(), weights.copy(), delays.copy(), ms.copy())
    splits = program.group_rows(indptr, indices, weights, delays, ms, starts)
    for row, (a, b) in enumerate(zip(indptr[:-1], indptr[1:])):
        part = np.searchsorted(starts, before[0][a:b], side="right") - 1
        order = a + np.argsort(part, kind="stable")
        for now, was in zip((indices, weights, delays, ms), before):
            assert np.array_equal(now[a:b], was[order])
        assert splits[row].tolist() == (a + np.concatenate([[0], np.cumsum(np.bincount(part, minlength=3))])).tolist()


def test_network_program_is_cached_and_deterministic(tmp_path):
    from modelgen.network import compiled

    path = write(tmp_path, MIXED)
    net = load_network(path, seed=3)
    for proj in net.projections:
        proj.delays = compiled._delays_in_steps(proj, 0.1)
    layout = compiled.layout_of(net, None, "float64")
    text = compiled.backends.get("numba").generate_network(layout, "0" * 64)
    assert text == compiled.backends.get("numba").generate_network(layout, "0" * 64)
    assert text.startswith("# -*- coding: utf-8 -*-\n# Generated by modelgen")
    assert "DO NOT EDIT" in text
    # one step function per model (and set of receptors), whatever the number of populations
    assert text.count("\ndef _advance_") == 3
    # a different size, seed or weights reuses the module: only the layout is in its hash
    other = load_network(write(tmp_path, MIXED.replace("n = 40", "n = 60")), seed=4)
    for proj in other.projections:
        proj.delays = compiled._delays_in_steps(proj, 0.1)
    assert compiled.layout_of(other, None, "float64").key() == layout.key()


def test_cli_runs_a_network_on_numba_and_refuses_a_missing_backend(tmp_path):
    path = write(tmp_path, MIXED)
    out = tmp_path / "r.npz"
    r = CliRunner().invoke(
        main,
        [
            "run",
            str(path),
            "--duration",
            "20ms",
            "--dt",
            "0.1ms",
            "--backend",
            "numba",
            "--save",
            str(out),
            "-o",
            str(tmp_path / "g"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "Mixed: simulated 20 ms" in r.output
    data = np.load(out)
    assert data["L.V"].shape == (10, 201)
    r = CliRunner().invoke(main, ["run", str(path), "--duration", "20ms", "--dtype", "float16"])
    assert r.exit_code == 2 and "float16" in r.output and "Traceback" not in r.output


def cuba(tmp_path, n: int, network: str = "cuba") -> object:
    """Write the CUBA (or COBA) network with n neurons and the benchmark's 80 synapses per neuron on average."""
    text = (MODELS / f"{network}.network").read_text()
    text = text.replace("(n = 800", f"(n = {n // 5}").replace("(n = 3200", f"(n = {n * 4 // 5}")
    return write(tmp_path, text.replace("fixed_probability(0.02)", f"fixed_probability({80 / n:g})"))


@pytest.mark.slow
@pytest.mark.parametrize("network", ["cuba", "coba"])
def test_benchmark_networks_spike_as_on_numpy(tmp_path, network):
    a, b = both(cuba(tmp_path, 1000, network), 300.0, seed=1)
    assert_same_spikes(a, b)
    assert a.rate("E") > 1
    np.testing.assert_allclose(b.traces["E.V"], a.traces["E.V"], rtol=1e-12, atol=1e-9)


@pytest.mark.slow
def test_poisson_drive_counts_and_rates(tmp_path):
    """Drives draw from numba's generator: spike by spike the runs differ; the counts match the
    Poisson expectation and the rates numpy's."""
    text = """network Drive
population E = "cuba_lif.model" (n = 2000, E_L = -65 mV, V = -65 mV)
poisson E (receptor = exc, rate = 2 kHz, weight = 1.6 mV)
"""
    a, b = both(write(tmp_path, text), 500.0)
    expected = 2000 * 2.0 * 500.0  # neurons x rate (1/ms) x duration (ms)
    for r in (a, b):
        assert abs(r.synaptic_events - expected) < 4 * np.sqrt(expected)
    assert a.rate("E") > 5
    assert b.rate("E") == pytest.approx(a.rate("E"), rel=0.03)
    assert b.cv_isi("E") == pytest.approx(a.cv_isi("E"), abs=0.03)


@pytest.mark.slow
def test_float32_network_keeps_its_statistics(tmp_path):
    path = cuba(tmp_path, 1000)
    a = load_network(path, seed=1).run(500.0, 0.1, out_dir=tmp_path / "gen", backend="numba")
    b = load_network(path, seed=1).run(500.0, 0.1, out_dir=tmp_path / "gen", backend="numba", dtype="float32")
    c = load_network(path, seed=1).run(500.0, 0.1, out_dir=tmp_path / "gen", dtype="float32")
    for r in (b, c):
        assert r.rate("E") == pytest.approx(a.rate("E"), rel=0.15)
        assert r.traces["E.V"].dtype == np.float64  # recorded in double whatever the state's precision
    assert np.abs(b.traces["E.V"][:, :50] - a.traces["E.V"][:, :50]).max() < 1e-3  # mV, before chaos separates them

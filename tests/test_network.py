"""Networks: synaptic delivery, delays, connectivity rules, reproducibility, errors."""

import re

import numpy as np
import pytest
from click.testing import CliRunner

from modelgen import ModelError, SimulationError
from modelgen.cli import main
from modelgen.network import load_network, parse_network_text

MODELS = __import__("pathlib").Path(__file__).resolve().parent.parent / "models"


def write(tmp_path, text, name="net.network"):
    """Write a network file next to copies of the bundled models."""
    for m in ("lif.model", "cuba_lif.model", "coba_lif.model"):
        (tmp_path / m).write_text((MODELS / m).read_text())
    path = tmp_path / name
    path.write_text(text)
    return path


PAIR = """network Pair
population A = "lif.model" (n = 1)
population B = "lif.model" (n = 1)
input A (I_ext = 300 pA)
connect A to B (receptor = exc, rule = all_to_all, weight = 2.5 nS, delay = 1.5 ms)
record B (g_syn, V)
"""


def test_spike_raises_conductance_by_weight_after_delay(tmp_path):
    net = load_network(write(tmp_path, PAIR))
    dt = 0.1
    r = net.run(60.0, dt, out_dir=tmp_path / "gen")
    _, t_a = r.spikes("A")
    assert t_a.size >= 2
    g = r.traces["B.g_syn"][0]  # nS, sample j is the state at t = j*dt
    arrival = int(round((t_a[0] + 1.5) / dt))  # the weight is added at the start of this step
    assert np.all(g[: arrival + 1] == 0.0)
    decay = np.exp(-dt / 5.0)  # tau_syn = 5 ms; exponential Euler is exact for this decay
    assert g[arrival + 1] == pytest.approx(2.5 * decay, rel=1e-12)
    assert g[arrival + 2] == pytest.approx(2.5 * decay**2, rel=1e-12)


def test_feed_forward_chain_spike_counts_are_exact(tmp_path):
    text = """network Chain
population A = "lif.model" (n = 1)
population B = "lif.model" (n = 1)
population C = "lif.model" (n = 1)
input A (I_ext = 300 pA)
connect A to B (receptor = exc, rule = one_to_one, weight = 20 nS, delay = 1 ms)
connect B to C (receptor = exc, rule = one_to_one, weight = 20 nS, delay = 1 ms)
"""
    r = load_network(write(tmp_path, text)).run(200.0, 0.1, out_dir=tmp_path / "gen")
    n_a, n_b, n_c = (r.spikes(p)[0].size for p in "ABC")
    assert (n_a, n_b, n_c) == (12, 12, 12)  # A fires every 15.9 ms; each spike is relayed once
    # every B spike follows its A spike by the delay plus B's latency (longest from rest)
    lag = r.spikes("B")[1] - r.spikes("A")[1]
    assert np.all((lag > 1.0) & (lag < 7.0))


def test_same_seed_same_spikes_and_other_seed_differs(tmp_path):
    path = write(tmp_path, (MODELS / "cuba.network").read_text().replace("3200", "400").replace("800", "100"))
    runs = [load_network(path, seed=s).run(100.0, 0.1, out_dir=tmp_path / "gen") for s in (7, 7, 8)]
    a, b, c = runs
    assert np.array_equal(a.spike_t, b.spike_t) and np.array_equal(a.spike_i, b.spike_i)
    assert not (a.spike_t.size == c.spike_t.size and np.array_equal(a.spike_i, c.spike_i))


def test_connection_rules(tmp_path):
    text = """network Rules
population P = "lif.model" (n = 400)
population Q = "lif.model" (n = 300)
connect P to Q (receptor = exc, rule = fixed_probability(0.1), weight = 1 nS)
connect P to P (receptor = exc, rule = fixed_indegree(25), weight = uniform(1 nS, 2 nS), delay = normal(2 ms, 0.5 ms))
connect Q to Q (receptor = exc, rule = all_to_all, weight = 1 nS)
connect P to P (receptor = exc, rule = one_to_one, weight = 1 nS, autapses = 1)
"""
    net = load_network(write(tmp_path, text), seed=3)
    pq, pp, qq, self_ = net.projections
    expected = 0.1 * 400 * 300
    assert abs(pq.n_synapses - expected) < 5 * np.sqrt(expected * 0.9)
    targets_per_source = np.diff(pq.indptr)
    assert targets_per_source.sum() == pq.n_synapses
    # fixed in-degree: every target has exactly 25 sources and none is itself
    assert np.all(np.bincount(pp.indices, minlength=400) == 25)
    sources = np.repeat(np.arange(400), np.diff(pp.indptr))
    assert not np.any(sources == pp.indices)
    assert np.all((pp.weights >= 1e-6) & (pp.weights <= 2e-6))  # internal units (mS)
    assert pp.delay_ms.std() > 0.3
    # all-to-all within a population excludes self-connections by default
    assert qq.n_synapses == 300 * 299
    assert self_.n_synapses == 400


def test_connectivity_from_file(tmp_path):
    (tmp_path / "pairs.csv").write_text("# source,target\n0,1\n1,2\n2,0\n")
    text = """network FromFile
population P = "lif.model" (n = 3)
connect P to P (receptor = exc, rule = from_file("pairs.csv"), weight = 1 nS)
"""
    (proj,) = load_network(write(tmp_path, text)).projections
    assert proj.indices.tolist() == [1, 2, 0] and proj.indptr.tolist() == [0, 1, 2, 3]


def test_poisson_drive_rate(tmp_path):
    text = """network Drive
population P = "lif.model" (n = 1000, V_th = 100 mV)
poisson P (receptor = exc, rate = 50 Hz, weight = 1 nS)
"""
    r = load_network(write(tmp_path, text)).run(200.0, 0.1, out_dir=tmp_path / "gen")
    expected = 1000 * 50 * 0.2
    assert abs(r.synaptic_events - expected) < 5 * np.sqrt(expected)


def test_cuba_is_asynchronous_irregular(tmp_path):
    net = load_network(MODELS / "cuba.network", seed=1)
    r = net.run(300.0, 0.1, out_dir=tmp_path)
    for pop in ("E", "I"):
        assert 1.0 < r.rate(pop) < 50.0
        assert r.cv_isi(pop) > 0.3  # irregular, not clock-like
    assert r.traces["E.V"].shape == (5, 3001)


@pytest.mark.parametrize(
    "line, message",
    [
        ("connect A to B (receptor = exx, rule = all_to_all, weight = 1 nS)", "has no receptor `exx`"),
        ("connect A to B (receptor = exc, rule = all_to_all, weight = 1 mV)", "must be conductance"),
        ("connect A to C (receptor = exc, rule = all_to_all, weight = 1 nS)", "unknown population `C`"),
        ("connect A to B (receptor = exc, rule = sometimes(0.1), weight = 1 nS)", "unknown connection rule"),
        ("connect A to B (receptor = exc, rule = fixed_probability(1.5), weight = 1 nS)", "must lie in [0, 1]"),
        ('population C = "lif.model" (n = 2, g_LL = 1 nS)', "did you mean `g_L`"),
        ('population C = "../lif.model" (n = 2)', "not found"),
        ('populaton C = "lif.model" (n = 2)', "did you mean `population`"),
    ],
)
def test_network_errors_are_clear(tmp_path, line, message):
    text = 'network Bad\npopulation A = "lif.model" (n = 2)\npopulation B = "lif.model" (n = 2)\n' + line + "\n"
    with pytest.raises(ModelError) as e:
        load_network(write(tmp_path, text))
    assert message in str(e.value)
    assert "net.network:4:" in str(e.value) or "lif.model" in str(e.value)


def test_a_failed_population_is_reported_once_and_every_independent_error_is_reported(tmp_path):
    text = """network Bad
population A = "missing.model" (n = 2)
population B = "lif.model" (n = 2)
connect A to B (receptor = exc, rule = all_to_all, weight = 1 nS)
poisson A (receptor = exc, rate = 5 Hz, weight = 1 nS)
connect B to B (receptor = exx, rule = all_to_all, weight = 1 nS, delay = -1 ms)
connect B to B (receptor = exc, rule = sometimes(0.1), weight = 1 mV)
poisson B (receptor = exx, rate = 5 mV, weight = 1 nS)
"""
    with pytest.raises(ModelError) as e:
        load_network(write(tmp_path, text))
    found = [(d.span.line, d.message) for d in e.value.diagnostics]
    # A's uses are not reported as unknown populations: its own line says what is wrong
    assert found[0][0] == 2 and "not found" in found[0][1]
    assert not any("unknown population" in m for _, m in found)
    # a projection whose receptor or rule is wrong still has its weight and delay checked
    assert (6, "delays cannot be negative") in found
    assert (7, "unknown connection rule") in found
    assert any(line == 7 and "weight at receptor exc must be conductance" in m for line, m in found)
    assert any(line == 8 and "rate must be 1/time" in m for line, m in found)
    assert [line for line, _ in found] == [2, 6, 6, 7, 7, 8, 8]


@pytest.mark.parametrize(
    "duration, dt, message",
    [("0ms", "0.1ms", "duration must be positive, not 0 ms"), ("1ms", "0ms", "time step must be positive, not 0 ms")],
)
def test_cli_network_duration_and_step_must_be_positive(tmp_path, duration, dt, message):
    net = str(MODELS / "two_neurons.network")
    r = CliRunner().invoke(main, ["run", net, "--duration", duration, "--dt", dt, "-o", str(tmp_path)])
    assert r.exit_code == 1
    assert f"error: the {message}" in r.output and "Traceback" not in r.output


def test_network_overrides_keep_the_physical_rules(tmp_path):
    text = 'network Bad\npopulation A = "lif.model" (n = 3, C = uniform(-1 pF, 1 pF), tau_syn = 0 ms)\n'
    with pytest.raises(ModelError) as e:
        load_network(write(tmp_path, text))
    c, tau = e.value.diagnostics
    assert (c.code, c.span.line, c.span.col, c.span.length) == ("E305", 2, 40, len("uniform(-1 pF, 1 pF)"))
    assert c.message.startswith("C must be a finite number > 0 (the capacitance of the charge relation), but C[")
    assert (tau.code, tau.span.col) == ("E305", 72)
    assert (
        tau.message == "tau_syn must be a finite number > 0 (a time constant: the model divides by it), but it is 0 ms"
    )


def test_network_refractory_period_in_steps(tmp_path):
    net = load_network(write(tmp_path, 'network N\npopulation A = "lif.model" (n = 2, t_ref = 1e20 ms)\n'))
    with pytest.raises(ModelError, match=r"the refractory period t_ref is 1e\+20 ms = 1e\+21 steps of 0.1 ms"):
        net.run(1.0, 0.1, out_dir=tmp_path)


@pytest.mark.parametrize(
    "path, message",
    [
        ("/etc/passwd", "path '/etc/passwd' must be relative to the network file"),
        ("../outside.csv", "file '../outside.csv' not found next to net.network"),
        ("~/trace.csv", "file '~/trace.csv' not found next to net.network"),
    ],
)
def test_file_input_stays_in_the_network_folder(tmp_path, path, message):
    """file(…) in a network file is confined like from_file and model paths (it read any path)."""
    (tmp_path / "outside.csv").write_text("t,I\n0,1\n1,2\n")
    folder = tmp_path / "net"
    folder.mkdir()
    net = load_network(write(folder, PAIR.replace("300 pA", f'file("{path}", unit=pA)')))
    with pytest.raises(ModelError) as e:
        net.run(1.0, 0.1, out_dir=tmp_path)
    (d,) = e.value.diagnostics
    assert d.message == message and d.span.line == 4
    # a file next to the network file is read
    (folder / "trace.csv").write_text("t,I\n0,300\n1,300\n")
    net = load_network(write(folder, PAIR.replace("300 pA", 'file("trace.csv", unit=pA)')))
    assert net.run(20.0, 0.1, out_dir=tmp_path).spikes("A")[0].size > 0


def test_network_syntax_keeps_positions():
    spec = parse_network_text("network N\nconnect A to B (receptor = exc, weight = 1 nS)\n", "n.network")
    st = spec.statements[0]
    assert (st.source, st.name) == ("A", "B")
    assert st.item("weight").span.col == 33


def test_cli_runs_network_and_saves_spikes(tmp_path):
    out = tmp_path / "spikes.npz"
    r = CliRunner().invoke(
        main,
        [
            "run",
            str(MODELS / "two_neurons.network"),
            "--duration",
            "100ms",
            "--dt",
            "0.1ms",
            "--save",
            str(out),
            "-o",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "TwoNeurons: simulated 100 ms" in r.output and "A: 60.00 Hz" in r.output
    data = np.load(out)
    assert list(data["populations"]) == ["A", "B"]
    assert set(data["spike_pop"]) == {0, 1}
    assert data["B.g_syn"].shape == (1, 1001)


def test_cli_network_raster_plot(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "raster.png"
    r = CliRunner().invoke(
        main,
        [
            "run",
            str(MODELS / "two_neurons.network"),
            "--duration",
            "50ms",
            "--dt",
            "0.1ms",
            "--plot",
            str(png),
            "-o",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_step_current_drive(tmp_path):
    text = """network Step
population A = "lif.model" (n = 2)
input A (I_ext = step(300 pA, on = 50 ms, off = 150 ms))
"""
    r = load_network(write(tmp_path, text)).run(200.0, 0.1, out_dir=tmp_path / "gen")
    _, t = r.spikes("A")
    # from rest, 300 pA makes the first spike 13.9 ms after the onset (as with a constant drive)
    assert t.min() == pytest.approx(50.0 + 13.9, abs=1e-9)
    assert t.max() < 150.0 + 0.1
    bad = write(tmp_path, text.replace("300 pA", "300 mV"), "bad.network")
    with pytest.raises(ModelError, match="bad.network:3:"):
        load_network(bad).run(10.0, 0.1, out_dir=tmp_path / "gen")


def test_progress_callback(tmp_path):
    calls = []
    load_network(write(tmp_path, PAIR)).run(
        20.0, 0.1, out_dir=tmp_path / "gen", progress=lambda d, t: calls.append((d, t))
    )
    assert calls[0] == (50, 200) and calls[-1] == (200, 200)


# ----------------------------------------------------------------------- the loop against a plain reference
MIXED = """network Mixed
population A = "lif.model" (n = 30, V = uniform(-65 mV, -50 mV))
population B = "lif.model" (n = 20)
population C = "coba_lif.model" (n = 25, V = uniform(-60 mV, -50 mV))
population D = "lif.model" (n = 3)
population E = "coba_lif.model" (n = 15)
population F = "lif.model" (n = 20, tau_syn = uniform(3 ms, 6 ms))
population G = "coba_lif.model" (n = 20, V = normal(-55 mV, 2 mV))
population H = "lifk.model" (n = 12, k_syn = uniform(0.5, 2))
input A (I_ext = step(250 pA, on = 20 ms, off = 80 ms))
input D (I_ext = 300 pA)
input C (I_ext = 150 pA)
input G (I_ext = 150 pA)
connect A to B (receptor = exc, rule = fixed_probability(0.2), weight = 3 nS, delay = 1 ms)
connect A to B (receptor = exc, rule = fixed_probability(0.1), weight = uniform(1 nS, 4 nS), delay = normal(2 ms, 0.4 ms))
connect B to C (receptor = inh, rule = fixed_indegree(5), weight = 2 nS, delay = 0.5 ms)
connect A to C (receptor = exc, rule = fixed_probability(0.3), weight = 1.5 nS)
connect C to C (receptor = exc, rule = fixed_probability(0.2), weight = 1 nS, delay = uniform(0.1 ms, 3 ms))
connect D to A (receptor = exc, rule = all_to_all, weight = 5 nS, delay = 2 ms)
connect D to A (receptor = exc, rule = all_to_all, weight = uniform(1 nS, 3 nS), delay = 2 ms)
connect B to B (receptor = exc, rule = one_to_one, weight = 1 nS, autapses = 1)
connect A to F (receptor = exc, rule = fixed_probability(0.2), weight = 3 nS)
connect G to E (receptor = exc, rule = fixed_probability(0.3), weight = 2 nS, delay = 0.3 ms)
connect E to G (receptor = inh, rule = fixed_probability(0.3), weight = 4 nS)
connect C to G (receptor = exc, rule = fixed_probability(0.3), weight = 2 nS)
connect G to C (receptor = exc, rule = fixed_probability(0.3), weight = 1 nS, delay = 1 ms)
connect A to H (receptor = exc, rule = fixed_probability(0.5), weight = 2 nS)
poisson B (receptor = exc, rate = 200 Hz, weight = 1 nS)
poisson B (receptor = exc, rate = 100 Hz, weight = 2 nS)
poisson C (receptor = exc, rate = 500 Hz, weight = 0.5 nS)
poisson E (receptor = exc, rate = 800 Hz, weight = 1 nS)
poisson F (receptor = exc, rate = 400 Hz, weight = 1 nS)
poisson H (receptor = exc, rate = 400 Hz, weight = 1 nS)
record A (V, I_syn, neurons = 30)
record B (V, neurons = 20)
record C (V, g_e, g_i, neurons = 25)
record E (V, neurons = 15)
record G (V, g_i, neurons = 20)
record H (V, g_syn, neurons = 12)
"""


def write_mixed(tmp_path):
    """MIXED's files: lifk.model is lif.model whose synapse scales the weight by a parameter."""
    lif = (MODELS / "lif.model").read_text()
    (tmp_path / "lifk.model").write_text(
        lif.replace("synapse exc: g_syn += w", "parameter k_syn = 1\nsynapse exc: g_syn += w * k_syn")
    )
    return write(tmp_path, MIXED)


def reference_run(net, duration, dt, out_dir):
    """Simulate ``net`` the plain way: one simulator per population, a dense ring buffer per
    (population, receptor) applied and cleared every step, each projection's spikes summed
    per target (np.bincount) and added to the slot they arrive in (np.add.at with per-synapse delays).
    Returns the spikes as (population, neuron, step) by step, population and neuron, and the states of every neuron after every step."""
    from modelgen.network.run import _population_setup

    n_steps = int(round(duration / dt))
    rng = np.random.default_rng([net.seed, 1])
    sims, buffers = {}, {}
    for name, pop in net.populations.items():
        module = pop.model.load_module(out_dir)
        p, inputs = _population_setup(net, pop, module, dt, n_steps)
        with np.errstate(all="ignore"):
            state = module.initial_state(p, inputs, pop.n, dict(pop.initial))
            step, _, receive, _ = module.make_simulator(state, p, inputs, dt)
        sims[name] = (state, step, receive)
        for r in module.RECEPTORS:
            delays = [p.delay_ms / dt for p in net.projections if p.target == name and p.receptor == r]
            longest = max((int(np.rint(d).max(initial=0)) for d in delays), default=0)
            buffers[(name, r)] = np.zeros((longest + 1, pop.n))
    spikes, states = [], []
    names = list(net.populations)
    with np.errstate(all="ignore"):
        for k in range(n_steps):
            for drive in net.poisson:
                counts = rng.poisson(drive.rate * dt, size=net.populations[drive.target].n)
                buf = buffers[(drive.target, drive.receptor)]
                buf[k % len(buf)] += drive.weight * counts
            for (name, r), buf in buffers.items():
                sims[name][2](r, buf[k % len(buf)])
                buf[k % len(buf)] = 0.0
            fired = {}
            for name in names:
                fired[name] = sims[name][1](k)  # the indices of the neurons that spiked
                spikes += [(names.index(name), int(i), k) for i in fired[name]]
            for proj in net.projections:
                buf = buffers[(proj.target, proj.receptor)]
                delays = np.rint(proj.delay_ms / dt).astype(np.int64)
                pos = np.concatenate([np.arange(proj.indptr[i], proj.indptr[i + 1]) for i in fired[proj.source]] + [[]])
                pos = pos.astype(np.int64)
                if pos.size and np.all(delays == delays[0]):
                    slot = (k + 1 + delays[0]) % len(buf)
                    buf[slot] += np.bincount(proj.indices[pos], proj.weights[pos], minlength=buf.shape[1])
                elif pos.size:
                    np.add.at(buf, ((k + 1 + delays[pos]) % len(buf), proj.indices[pos]), proj.weights[pos])
            states.append({f"{n}.{v}": x.copy() for n in names for v, x in sims[n][0].items()})
    return sorted(spikes, key=lambda s: (s[2], s[0], s[1])), states


@pytest.mark.parametrize("sparse_receive", [1, 64, 10**9])  # slots applied at the neurons written to / as here / whole
def test_network_loop_is_bit_identical_to_a_plain_reference(tmp_path, monkeypatch, sparse_receive):
    from modelgen.network import run as network_run
    from modelgen.network.run import _make_groups

    monkeypatch.setattr(network_run, "SPARSE_RECEIVE", sparse_receive)

    path = write_mixed(tmp_path)
    dt, duration = 0.1, 100.0
    net = load_network(path, seed=5)
    groups = _make_groups(net, dt, 10, tmp_path / "gen", None)
    # C and G (same model, parameters and constant input) share a simulator; the others run alone
    assert sorted(tuple(m.name for m in g.members) for g in groups) == [
        ("A",),
        ("B",),
        ("C", "G"),
        ("D",),
        ("E",),
        ("F",),
        ("H",),
    ]
    r = load_network(path, seed=5).run(duration, dt, out_dir=tmp_path / "gen")
    spikes, states = reference_run(load_network(path, seed=5), duration, dt, tmp_path / "gen")
    assert len(spikes) > 500 and {p for p, _, _ in spikes} == set(range(8))
    k = np.rint(r.spike_t / dt).astype(np.int64) - 1
    assert list(zip(r.spike_pop.tolist(), r.spike_i.tolist(), k.tolist())) == spikes  # same spikes, same order
    units = {"V": 1.0, "I_syn": None, "g_e": 1e-6, "g_i": 1e-6, "g_syn": 1e-6}  # mV; nS traces of mS states
    for key, trace in r.traces.items():
        pop, var = key.split(".")
        if units[var] is None:
            continue
        ref = np.array([s[key] for s in states]).T / units[var]
        assert np.array_equal(trace[:, 1:], ref), key
    # a slot reached by no spike is left alone: B's excitatory buffer was empty in some steps
    assert r.synaptic_events > 0


def test_receive_at_some_neurons_equals_receive_of_a_full_vector(tmp_path):
    write_mixed(tmp_path)
    from modelgen import load

    module = load(tmp_path / "lifk.model").load_module(tmp_path / "gen")
    n = 6
    k_syn = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    params = {**module.PARAMETERS, "k_syn": k_syn}
    inputs = {"I_ext": lambda t: 0.0}
    index = np.array([4, 1, 4, 0])  # neuron 4 twice: its weight is applied once
    w = np.array([3e-6, 1e-6, 3e-6, 2e-6])
    dense = np.zeros(n)
    dense[index] = w
    results = []
    for args in (("exc", dense), ("exc", w, index)):
        state = module.initial_state(params, inputs, n)
        state["g_syn"][:] = 1e-6
        _, _, receive, _ = module.make_simulator(state, params, inputs, 0.1)
        receive(*args)
        results.append(state["g_syn"].copy())
    assert np.array_equal(results[0], results[1])
    assert results[1][4] == 1e-6 + 2.5 * 3e-6 and results[1][2] == 1e-6


def test_absurd_finite_values_stop_a_network_run(tmp_path):
    # AdEx cut at +20 mV under rk4 ends with V near -1e18 mV, finite (see test_runtime): a network stops too
    (tmp_path / "adex20.model").write_text(
        (MODELS / "adex.model").read_text().replace("threshold V > V_T + 5 * Delta_T", "threshold V > 20 mV")
    )
    path = write(
        tmp_path,
        'network Runaway\npopulation L = "lif.model" (n = 2)\npopulation A = "adex20.model" (n = 3)\n'
        "input A (I_ext = 1 nA)\n",
    )
    with pytest.raises(SimulationError) as e:
        load_network(path).run(100.0, 0.01, out_dir=tmp_path / "gen", method="rk4")
    assert re.fullmatch(
        r"A\.V of neuron 0 reached -[0-9.]+e\+1[0-9] mV between t = 1[0-9.]* and 1[0-9.]* ms, beyond ±1e\+04 mV: "
        r"the run blew up; try a smaller --dt or another --method",
        str(e.value),
    ), str(e.value)


def test_network_result_is_saved_as_npz_only(tmp_path):
    r = load_network(write(tmp_path, PAIR)).run(5.0, 0.1, out_dir=tmp_path / "gen")
    for name in ("out.csv", "out", "out.npz.csv"):
        with pytest.raises(ValueError, match=r"a network's result is saved as one \.npz file"):
            r.save(tmp_path / name)
        assert not (tmp_path / name).exists() and not (tmp_path / (name + ".npz")).exists()
    assert r.save(tmp_path / "out.NPZ") == tmp_path / "out.NPZ"
    assert list(np.load(tmp_path / "out.NPZ")["populations"]) == ["A", "B"]


def test_check_without_drawing_checks_every_statement(tmp_path):
    """modelgen check builds no synapses (the microcircuit's 0.3 billion took 38 s and 6 GB) but
    still checks rules, weights and delays with their units."""
    net = load_network(write(tmp_path, PAIR.replace("rule = all_to_all", "rule = fixed_probability(0.5)")), draw=False)
    assert (
        net.projections[0].indices.size == 0 and net.n_synapses == 0
    )  # 1 x 1 pair, p = 0.5: 0.5 expected, rounds to 0
    big = PAIR.replace(
        '(n = 1)\npopulation B = "lif.model" (n = 1)', '(n = 3000)\npopulation B = "lif.model" (n = 2000)'
    )
    net = load_network(write(tmp_path, big), draw=False)
    assert net.n_synapses == 6_000_000 and net.projections[0].indices.size == 0
    with pytest.raises(ValueError, match="without drawing its synapses"):
        net.run(1.0, 0.1)
    with pytest.raises(ModelError) as e:
        load_network(write(tmp_path, big.replace("weight = 2.5 nS", "weight = 2.5 mV")), draw=False)
    assert "E301" in str(e.value) and "weight at receptor exc" in str(e.value)
    r = CliRunner().invoke(main, ["check", str(write(tmp_path, big))])
    assert r.exit_code == 0 and "about 6,000,000 synapses, 1 projections" in r.output


MERGING = """network Merging
population E = "coba_lif.model" (n = 40, V = uniform(-60 mV, -50 mV))
population I = "coba_lif.model" (n = 20, V = uniform(-60 mV, -50 mV))
population X = "coba_lif.model" (n = 15, V = uniform(-60 mV, -50 mV))
connect E to E (receptor = exc, rule = fixed_probability(0.2), weight = uniform(1 nS, 4 nS), delay = 1 ms)
connect I to E (receptor = inh, rule = fixed_probability(0.3), weight = uniform(5 nS, 9 nS))
connect I to X (receptor = exc, rule = fixed_probability(0.3), weight = uniform(1 nS, 3 nS), delay = 1 ms)
connect X to X (receptor = exc, rule = fixed_probability(0.3), weight = uniform(1 nS, 3 nS), delay = 1 ms)
connect E to I (receptor = exc, rule = fixed_probability(0.2), weight = uniform(1 nS, 4 nS), delay = 1 ms)
connect E to X (receptor = exc, rule = fixed_probability(0.2), weight = uniform(1 nS, 4 nS), delay = 1 ms)
connect I to I (receptor = inh, rule = fixed_probability(0.3), weight = uniform(5 nS, 9 nS))
connect X to E (receptor = exc, rule = fixed_probability(0.3), weight = uniform(1 nS, 2 nS), delay = 1 ms)
poisson E (receptor = exc, rate = 3000 Hz, weight = 1.5 nS)
poisson I (receptor = exc, rate = 3000 Hz, weight = 1.5 nS)
poisson X (receptor = exc, rate = 3000 Hz, weight = 1.5 nS)
record E (V, g_e, g_i, neurons = 40)
record I (V, g_e, g_i, neurons = 20)
record X (V, g_e, neurons = 15)
"""


@pytest.mark.parametrize("weights", ["per synapse", "one", "one per projection"])
def test_merged_projections_change_no_number(tmp_path, monkeypatch, weights):
    """Projections that share a source, a target group, a receptor and a delay are delivered as one
    (numpy backend), and every neuron still receives the same sums in the same order as through the
    projections one by one: the plain reference's spikes and states, bit for bit. (With one weight
    for every synapse of the merged projections, the merged route keeps one number.)"""
    from modelgen.network import run as network_run

    merged, strides = [], []
    original = network_run._merged

    def noting(routes):
        out = original(routes)
        merged.append([r.members for r in out])
        strides.append([r.weights.strides for r in out if len(r.members) > 1])
        return out

    monkeypatch.setattr(network_run, "_merged", noting)
    text = MERGING
    if weights != "per synapse":  # E->E and E->I
        text = text.replace("weight = uniform(1 nS, 4 nS)", "weight = 2.5 nS")
    if weights == "one per projection":
        text = text.replace(
            "connect E to I (receptor = exc, rule = fixed_probability(0.2), weight = 2.5 nS",
            "connect E to I (receptor = exc, rule = fixed_probability(0.2), weight = 3 nS",
        )
    path = write(tmp_path, text)
    dt, duration = 0.1, 100.0
    r = load_network(path, seed=3).run(duration, dt, out_dir=tmp_path / "gen")
    # E, I and X share a simulator: E->E takes E->I along, I->E takes I->I, X->X takes X->E; E->X
    # stays apart, as I->X and X->X, after E->E, feed X first
    assert merged == [[(0, 1), (0, 1), (2,), (2, 0), (2,)]]
    # E->E with E->I holds one weight only where both projections have it
    assert strides == [[(0,) if weights == "one" else (8,), (8,), (8,)]]
    spikes, states = reference_run(load_network(path, seed=3), duration, dt, tmp_path / "gen")
    assert len(spikes) > 300 and {p for p, _, _ in spikes} == {0, 1, 2}
    k = np.rint(r.spike_t / dt).astype(np.int64) - 1
    assert list(zip(r.spike_pop.tolist(), r.spike_i.tolist(), k.tolist())) == spikes
    units = {"V": 1.0, "g_e": 1e-6, "g_i": 1e-6}
    for key, trace in r.traces.items():
        ref = np.array([s[key] for s in states]).T / units[key.split(".")[1]]
        assert np.array_equal(trace[:, 1:], ref), key
    # and with nothing merged, the same
    monkeypatch.setattr(network_run, "MERGE_MAX_SYNAPSES", 0)
    again = load_network(path, seed=3).run(duration, dt, out_dir=tmp_path / "gen")
    assert np.array_equal(again.spike_t, r.spike_t) and np.array_equal(again.spike_i, r.spike_i)


@pytest.mark.parametrize("large", [False, True], ids=["one key", "steps past one key"])
def test_spike_table_sorts_by_step_population_and_neuron(monkeypatch, large):
    """The run loop notes each group's spikes per step; the table lists them by step, then population
    (file order), then neuron, whatever order the groups come in: here group 0 holds populations 0
    and 2, group 1 population 1, so one step's spikes of group 0 come before group 1's. Checked
    against Python's sort of the same triples."""
    from modelgen.network import run as network_run

    if large:  # steps * populations * neurons past 2**62: sorted by np.lexsort instead of one key
        monkeypatch.setattr(network_run, "_KEY_LIMIT", 0, raising=True)
    member = network_run._Member
    group = network_run._Group
    groups = [
        group(None, {}, None, None, None, [member("A", 0, 0, 5), member("C", 2, 5, 3)]),
        group(None, {}, None, None, None, [member("B", 1, 0, 4)]),
    ]
    rng = np.random.default_rng(7)
    fired, fired_at, expected = [], [], []
    for k in range(40):
        for gi, g in enumerate(groups):
            if rng.random() < 0.6:
                idx = np.flatnonzero(rng.random(g.n) < 0.5)
                if idx.size:
                    fired.append(idx)
                    fired_at.append(k * len(groups) + gi)
                    for i in idx.tolist():
                        m = next(m for m in g.members if m.offset <= i < m.offset + m.n)
                        expected.append((k, m.index, i - m.offset))
    pop, local, step = network_run._spike_table(fired, fired_at, groups)
    assert list(zip(step.tolist(), pop.tolist(), local.tolist())) == sorted(expected)
    assert {p for _, p, _ in expected} == {0, 1, 2} and len(expected) > 100
    # one group of populations in order: already sorted, returned as they are
    one = [group(None, {}, None, None, None, [member("A", 0, 0, 5), member("B", 1, 5, 3)])]
    pop, local, step = network_run._spike_table([np.array([1, 6]), np.array([0, 7])], [0, 3], one)
    assert (step.tolist(), pop.tolist(), local.tolist()) == ([0, 0, 3, 3], [0, 1, 0, 1], [1, 1, 0, 2])


def test_recorded_currents_and_inputs_come_from_the_states_traces_as_observe_gives_them(tmp_path, monkeypatch):
    """Currents, expressions and inputs of a network run are computed after the run from the traces
    of every state of those neurons (observe.traces): the numbers observe() gives after each step."""
    import modelgen.network.run as netrun

    text = MIXED.replace("record A (V, I_syn, neurons = 30)", "record A (I_syn, I_ext, neurons = 30)")
    text = text.replace("record C (V, g_e, g_i, neurons = 25)", "record C (I_e, g_e, I_L, neurons = 7)")
    write_mixed(tmp_path)
    path = write(tmp_path, text)
    a = load_network(path, seed=2).run(100.0, 0.1, out_dir=tmp_path / "gen")

    make = netrun._make_groups

    def per_step(*args, **kwargs):  # observe() without .traces: sampled after every step, as before
        groups = make(*args, **kwargs)
        for g in groups:
            g.observe = lambda t, observe=g.observe: observe(t)
        return groups

    monkeypatch.setattr(netrun, "_make_groups", per_step)
    b = load_network(path, seed=2).run(100.0, 0.1, out_dir=tmp_path / "gen")
    assert list(a.traces) == list(b.traces)
    for key in ("A.I_syn", "A.I_ext", "C.I_e", "C.g_e", "C.I_L", "G.V"):
        np.testing.assert_array_equal(a.traces[key], b.traces[key])
        assert np.ptp(a.traces[key]) > 0
    assert a.traces["C.I_e"].shape == (7, 1001)
    np.testing.assert_array_equal(a.spike_i, b.spike_i)

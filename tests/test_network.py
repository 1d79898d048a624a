"""Networks: synaptic delivery, delays, connectivity rules, reproducibility, errors."""

import numpy as np
import pytest
from click.testing import CliRunner

from modelgen import ModelError
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

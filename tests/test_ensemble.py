"""Ensembles of network runs: one run per grid point of seeds and population parameters."""

from __future__ import annotations

import importlib.util
import math
import shutil

import pytest
from click.testing import CliRunner

from modelgen import ModelError
from modelgen.cli import main
from modelgen.ensemble import parse_seeds
from modelgen.network import load_network


def lif_spike_count(current_pA: float, g_L_nS: float, duration: float) -> int:
    """Return the spike count of lif.model from rest under a constant current (C 200 pF, 15 mV to threshold, 2 ms refractory)."""
    x = current_pA / g_L_nS  # mV: V_inf - E_L
    if x <= 15.0:
        return 0
    t0 = 200.0 / g_L_nS * math.log(x / (x - 15.0))  # time from reset to threshold
    return math.floor((duration - t0) / (2.0 + t0)) + 1


NOISY = """network Noisy "a small population driven by Poisson input"
population E = "lif.model" (n = 20, V = uniform(-65 mV, -55 mV))
poisson E (receptor = exc, rate = 2000 Hz, weight = 2 nS)
"""


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def noisy(tmp_path, lif_path):
    shutil.copy(lif_path, tmp_path / "lif.model")
    path = tmp_path / "noisy.network"
    path.write_text(NOISY)
    return path


def table(output: str) -> list[list[str]]:
    return [line.split(",") for line in output.splitlines()]


@pytest.mark.slow  # each point builds its network (models loaded again): about 1.5 s a point here
def test_a_parameter_of_a_population_against_the_closed_form(tmp_path, lif_path):
    net = tmp_path / "two.network"
    shutil.copy(lif_path.with_name("two_neurons.network"), net)
    shutil.copy(lif_path, tmp_path / "lif.model")
    r = invoke("sweep", net, "--param", "A.g_L=8,12nS", "--summary", "spikes", "--summary", "rate",
               "--duration", "200ms", "--dt", "0.1ms", "-o", tmp_path / "gen")  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = table(r.output)
    assert rows[0] == ["A.g_L (nS)", "A spikes", "A rate (Hz)", "B spikes", "B rate (Hz)"]
    for row in rows[1:3]:
        count = lif_spike_count(300, float(row[0]), 200)  # A: a LIF neuron under 300 pA from rest
        assert float(row[1]) == count and float(row[2]) == pytest.approx(count / 0.2)
        assert float(row[3]) == count  # B answers every spike of A
    assert "TwoNeurons: 2 points in 2 run(s) of 200 ms" in r.output


@pytest.mark.slow
def test_seeds_give_the_runs_of_those_seeds_whatever_the_chunking(noisy, tmp_path):
    args = ["sweep", noisy, "--seed", "1:3", "--duration", "100ms", "--dt", "0.1ms", "-q", "-o", tmp_path / "gen"]
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    rows = table(r.output)
    assert rows[0] == ["seed", "E rate (Hz)", "E CV"]
    for row in rows[1:]:
        net = load_network(noisy, seed=int(row[0]))
        result = net.run("100 ms", "0.1 ms", tmp_path / "gen")
        assert float(row[1]) == pytest.approx(result.rate("E"), rel=1e-9)
        assert (row[2] == "" and math.isnan(result.cv_isi("E"))) or float(row[2]) == pytest.approx(result.cv_isi("E"))
    assert len({row[1] for row in rows[1:]}) > 1  # the seed changes the run
    r2 = invoke(*args, "--chunk", 2)
    assert r2.output == r.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seed", "1:3", "--param", "X.g_L=8,12nS"], "`X.g_L` is not POPULATION.PARAMETER of this network"),
        (["--seed", "1:3", "--param", "E.g_l=8,12nS"], "unknown parameter of population E `g_l`"),
        (["--seed", "1:3", "--param", "E.g_L=8,12mV"], "E.g_L must be conductance"),
        (["--seed", "one"], "`one` is not a seed"),
        (["--seed", "5:1"], "the seeds 5:1 are none"),
        (["--seed", "7"], "nothing varies"),
        (["--seed", "1:3", "--input", "I_ext=1,2pA"], "--input, --transient and --plot-fi sweep models"),
    ],
)
def test_ensemble_mistakes_are_one_message(noisy, tmp_path, args, message):
    r = invoke("sweep", noisy, *args, "-o", tmp_path)
    assert r.exit_code in (1, 2)
    assert message in r.output
    assert "Traceback" not in r.output


def test_a_model_sweep_takes_one_seed(lif_path, tmp_path):
    r = invoke("sweep", lif_path, "--input", "I_ext=1,2pA", "--seed", "1:3", "-o", tmp_path)
    assert r.exit_code == 2
    assert "a model sweep takes one seed, a whole number" in r.output


def test_parse_seeds():
    assert parse_seeds("7") == 7
    assert parse_seeds("1:9:4").values.tolist() == [1, 5, 9]
    assert parse_seeds("3, 1,2").values.tolist() == [3, 1, 2]
    with pytest.raises(ModelError, match="is not a seed"):
        parse_seeds("-1:3")


@pytest.mark.slow
def test_an_ensemble_on_two_workers_equals_one_process(noisy, tmp_path):
    pytest.importorskip("dask.distributed")
    args = ["sweep", noisy, "--seed", "1:4", "--duration", "100ms", "--dt", "0.1ms", "-q", "-o", tmp_path / "gen"]
    here = invoke(*args)
    there = invoke(*args, "--workers", 2)
    assert there.exit_code == 0, there.output
    assert there.output == here.output


@pytest.mark.slow  # numba compiles the network program
@pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="pip install -e '.[numba]'")
def test_an_ensemble_on_numba_gives_numbas_runs(tmp_path, lif_path):
    net = tmp_path / "two.network"
    shutil.copy(lif_path.with_name("two_neurons.network"), net)
    shutil.copy(lif_path, tmp_path / "lif.model")
    args = ["sweep", net, "--param", "A.g_L=8,12nS", "--summary", "spikes", "--duration", "200ms", "--dt", "0.1ms"]
    r = invoke(*args, "--backend", "numba", "-q", "-o", tmp_path / "gen")
    assert r.exit_code == 0, r.output
    rows = table(r.output)
    for row in rows[1:3]:
        count = lif_spike_count(300, float(row[0]), 200)
        assert float(row[1]) == count and float(row[2]) == count

"""Saving results (.npz, .csv, folders with metadata), loading them back, pandas/xarray, progress."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

import modelgen
from modelgen.cli import main
from modelgen.results import load_result

MODELS = __import__("pathlib").Path(__file__).resolve().parent.parent / "models"


@pytest.fixture
def result(hh_path, tmp_path):
    m = modelgen.load(hh_path)
    return m.run(
        duration="20 ms", n=3, inputs={"I_ext": "ou(mean=10 uA/cm^2, sigma=2 uA/cm^2, tau=2 ms)"},
        params={"g_K": "normal(36, 2) mS/cm^2"}, record=["V", "I_ext"], seed=11, out_dir=tmp_path,
    )  # fmt: skip


def test_folder_round_trip_and_metadata(result, hh_path, tmp_path):
    folder = result.save(tmp_path / "run1")
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.json", "result.npz", "spikes.csv", "traces.csv"]
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["modelgen_version"] == modelgen.__version__
    assert meta["source_sha256"] == modelgen.load(hh_path).model.source_hash
    assert meta["seed"] == 11 and meta["dt_ms"] == 0.01 and meta["method"] == "exponential_euler" and meta["n"] == 3
    assert meta["inputs"] == {"I_ext": "ou(mean=10 uA/cm^2, sigma=2 uA/cm^2, tau=2 ms)"}
    assert meta["parameters"] == {"g_K": "normal(36, 2) mS/cm^2"}
    back = load_result(folder)
    for name in ("V", "I_ext"):
        np.testing.assert_array_equal(back[name], result[name])
    np.testing.assert_array_equal(back.spike_t, result.spike_t)
    np.testing.assert_array_equal(back.spike_i, result.spike_i)
    assert (back.n, back.dt, back.duration, back.method, back.units) == (
        3,
        0.01,
        20.0,
        "exponential_euler",
        result.units,
    )
    # the metadata is enough to repeat the run exactly
    m = modelgen.load(meta["source"])
    again = m.run(
        duration=f"{meta['duration_ms']} ms", dt=f"{meta['dt_ms']} ms", n=meta["n"], inputs=meta["inputs"],
        params=meta["parameters"], record=list(meta["recorded"]), seed=meta["seed"], out_dir=tmp_path,
    )  # fmt: skip
    np.testing.assert_array_equal(again["V"], result["V"])


def test_csv_traces_and_spikes(result, tmp_path):
    path = result.save(tmp_path / "traces.csv")
    rows = list(csv.reader(path.open()))
    assert rows[0] == [
        "t (ms)",
        "V[0] (mV)",
        "V[1] (mV)",
        "V[2] (mV)",
        "I_ext[0] (uA/cm^2)",
        "I_ext[1] (uA/cm^2)",
        "I_ext[2] (uA/cm^2)",
    ]
    data = np.array(rows[1:], dtype=float)
    assert data.shape == (2001, 7)
    np.testing.assert_allclose(data[:, 0], result.t, rtol=1e-9)
    np.testing.assert_allclose(data[:, 1:4].T, result["V"], rtol=1e-9)
    folder = result.save(tmp_path / "f")
    spikes = list(csv.reader((folder / "spikes.csv").open()))
    assert spikes[0] == ["neuron", "t (ms)"] and len(spikes) - 1 == result.spike_t.size > 0


def test_npz_keeps_metadata(result, tmp_path):
    back = load_result(result.save(tmp_path / "r.npz"))
    assert back.metadata["seed"] == 11 and back.model == "HodgkinHuxley"
    np.testing.assert_array_equal(back["V"], result["V"])


def test_dataframe_and_xarray(result):
    pd = pytest.importorskip("pandas")
    frame = result.to_dataframe()
    assert frame.shape == (2001, 6) and frame.index.name == "t (ms)"
    np.testing.assert_array_equal(frame[("V", 2)].to_numpy(), result["V"][2])
    assert frame.attrs["units"]["V"] == "mV"
    single = modelgen.runtime.Result(**{**result.__dict__, "traces": {"V": result["V"]}, "units": {"V": "mV"}})
    assert np.shares_memory(single.to_dataframe().to_numpy(), result["V"])  # one variable: no copy
    assert isinstance(frame, pd.DataFrame)
    pytest.importorskip("xarray")
    ds = result.to_xarray()
    assert ds["V"].dims == ("neuron", "t") and ds["V"].attrs["units"] == "mV"
    assert np.shares_memory(ds["V"].values, result["V"])  # no copy
    np.testing.assert_array_equal(ds["t"].values, result.t)
    assert json.loads(ds.attrs["metadata"])["seed"] == 11
    assert ds["spike_time"].size == result.spike_t.size
    spikes = result.to_dataframe("spikes")
    assert list(spikes.columns) == ["neuron", "t (ms)"] and len(spikes) == result.spike_t.size > 0
    np.testing.assert_array_equal(spikes["t (ms)"].to_numpy(), result.spike_t)
    np.testing.assert_array_equal(spikes["neuron"].to_numpy(), result.spike_i)
    with pytest.raises(ValueError, match=r"^to_dataframe\(what='spike'\): choose 'traces' or 'spikes'$"):
        result.to_dataframe("spike")


NETWORK = """network Mixed
population A = "lif.model" (n = 3)
population B = "lif.model" (n = 2)
input A (I_ext = uniform(250 pA, 350 pA))
connect A to B (receptor = exc, rule = all_to_all, weight = 10 nS, delay = 1 ms)
record A (V, neurons = 2)
record B (V, g_syn)
"""


@pytest.fixture
def network_result(tmp_path):
    from modelgen.network import load_network

    (tmp_path / "lif.model").write_text((MODELS / "lif.model").read_text())
    (tmp_path / "mixed.network").write_text(NETWORK)
    return load_network(tmp_path / "mixed.network", seed=3).run(60.0, 0.1, tmp_path)


def test_network_dataframe_and_xarray(network_result):
    pd = pytest.importorskip("pandas")
    r = network_result
    frame = r.to_dataframe()
    assert list(frame.columns) == [("A.V", 0), ("A.V", 1), ("B.V", 0), ("B.V", 1), ("B.g_syn", 0), ("B.g_syn", 1)]
    assert frame.shape == (601, 6) and frame.index.name == "t (ms)"
    np.testing.assert_array_equal(frame.index.to_numpy(), r.t)
    np.testing.assert_array_equal(frame[("A.V", 1)].to_numpy(), r.traces["A.V"][1])
    np.testing.assert_array_equal(frame[("B.g_syn", 0)].to_numpy(), r.traces["B.g_syn"][0])
    assert frame.attrs["units"] == {"A.V": "mV", "B.V": "mV", "B.g_syn": "nS"}
    spikes = r.to_dataframe("spikes")
    assert list(spikes.columns) == ["population", "neuron", "t (ms)"]
    assert list(spikes["population"].cat.categories) == ["A", "B"]
    for pop in ("A", "B"):
        mine = spikes[spikes["population"] == pop]
        i, t = r.spikes(pop)
        assert i.size > 0
        np.testing.assert_array_equal(mine["neuron"].to_numpy(), i)
        np.testing.assert_array_equal(mine["t (ms)"].to_numpy(), t)
    assert isinstance(spikes, pd.DataFrame) and len(spikes) == r.spike_t.size
    pytest.importorskip("xarray")
    ds = r.to_xarray()
    assert ds["A.V"].dims == ("A.neuron", "t") and ds["B.g_syn"].dims == ("B.neuron", "t")
    assert list(ds["A.neuron"].values) == [0, 1] and list(ds["B.neuron"].values) == [0, 1]
    assert ds["B.g_syn"].attrs["units"] == "nS" and ds["t"].attrs["units"] == "ms"
    assert np.shares_memory(ds["A.V"].values, r.traces["A.V"])  # no copy
    assert list(ds["spike_population"].values) == [r.populations[k] for k in r.spike_pop]
    np.testing.assert_array_equal(ds["spike_time"].values, r.spike_t)
    np.testing.assert_array_equal(ds["spike_neuron"].values, r.spike_i)
    meta = json.loads(ds.attrs["metadata"])
    assert meta["populations"] == {"A": 3, "B": 2} and meta["seed"] == 3 and meta["spikes"] == r.spike_t.size
    assert meta["recorded"] == {"A.V": "mV", "B.V": "mV", "B.g_syn": "nS"}
    assert (ds.attrs["network"], ds.attrs["dt_ms"], ds.attrs["duration_ms"]) == ("Mixed", 0.1, 60.0)


def test_data_without_pandas_says_which_extra(result, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pandas", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"^to_dataframe\(\) needs pandas: pip install 'modelgen\[data\]'$"):
        result.to_dataframe()


def test_progress_callback_and_cli_save_forms(hh_path, tmp_path):
    calls = []
    modelgen.load(hh_path).run(duration="5 ms", out_dir=tmp_path, progress=lambda k, n: calls.append((k, n)))
    assert calls[-1] == (500, 500) and [k for k, _ in calls] == list(range(50, 501, 50))
    r = CliRunner().invoke(
        main, ["run", str(hh_path), "--duration", "5ms", "--save", str(tmp_path / "out"), "-o", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "metadata.json").exists() and "saved" in r.output
    r = CliRunner().invoke(
        main, ["run", str(hh_path), "--duration", "5ms", "--save", str(tmp_path / "t.csv"), "-q", "-o", str(tmp_path)]
    )
    assert r.exit_code == 0 and r.output == ""  # --quiet: nothing but errors
    assert (tmp_path / "t.csv").read_text().startswith("t (ms),V[0] (mV)\n")


def test_progress_bar_only_for_long_runs_on_a_terminal(monkeypatch):
    import sys

    from modelgen.cli import _Progress

    assert not _Progress("x").enabled  # the test's stderr is not a terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    now = [0.0]
    short = _Progress("x", clock=lambda: now[0])
    for k in range(0, 1001, 50):  # 1000 steps in 1 s: no bar
        now[0] = k / 1000
        short(k, 1000)
    assert short.bar is None
    long = _Progress("x", clock=lambda: now[0])
    for k in range(0, 1001, 50):  # 1000 steps in 10 s: a bar after half a second
        now[0] = k / 100
        long(k, 1000)
    assert long.bar is not None and long.shown == 1000
    long.close()
    assert not _Progress("x", enabled=False).enabled  # --quiet

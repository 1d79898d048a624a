"""Sweeps: grids as one population, checked against the closed-form leaky integrate-and-fire neuron."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
from click.testing import CliRunner

import modelgen
from modelgen import ModelError
from modelgen import sweep as S
from modelgen.cli import main

# lif.model: C = 200 pF, E_L = -65 mV, V_th = -50 mV, V_reset = -65 mV, t_ref = 2 ms
C, E_L, THETA, T_REF = 200.0, -65.0, 15.0, 2.0  # pF, mV, mV above rest, ms


def lif_reference(current_pA: float, g_L_nS: float, duration: float):
    """Return (spike count, first spike time) of the LIF neuron from rest under a constant current."""
    x = current_pA / g_L_nS  # mV: V_inf - E_L
    if x <= THETA:
        return 0, math.nan
    tau = C / g_L_nS
    t0 = tau * math.log(x / (x - THETA))  # time from reset to threshold
    return math.floor((duration - t0) / (T_REF + t0)) + 1, t0


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_sweep_table_matches_closed_form_lif(lif_path, tmp_path):
    m = modelgen.load(lif_path)
    axes = [
        S.parse_axis("10,12 nS", "g_L", "parameter", m.model.parameter("g_L")),
        S.parse_axis("100:300:50 pA", "I_ext", "input", m.model.input("I_ext")),
    ]
    duration, dt = 300.0, 0.01
    table = S.run_sweep(m, axes, duration="300 ms", dt="0.01 ms", out_dir=tmp_path)
    assert table.metadata["runs"] == 1 and table.metadata["n"] == 10
    # the last axis varies fastest
    np.testing.assert_array_equal(table.points["g_L"], [10] * 5 + [12] * 5)
    np.testing.assert_array_equal(table.points["I_ext"], [100, 150, 200, 250, 300] * 2)
    for i in range(10):
        g, current = table.points["g_L"][i], table.points["I_ext"][i]
        count, t0 = lif_reference(current, g, duration)
        assert table.rate[i] == pytest.approx(count / duration * 1000), (g, current)
        if count == 0:
            assert math.isnan(table.latency[i])
            # below threshold V relaxes to E_L + I/g_L: exponential Euler is exact here, so the
            # mean of the samples equals the mean of the exact solution at the sample times
            t = np.arange(int(duration / dt) + 1) * dt
            exact = E_L + current / g * (1 - np.exp(-t * g / C))
            assert table.mean_v[i] == pytest.approx(exact.mean(), abs=1e-9)
        else:
            # a spike is reported at the end of the step in which V crossed the threshold
            assert t0 <= table.latency[i] <= t0 + dt + 1e-9
            assert E_L < table.mean_v[i] < E_L + THETA


def test_csv_output_and_transient(lif_path, tmp_path):
    out = tmp_path / "table.csv"
    r = invoke(
        "sweep",
        lif_path,
        "--input",
        "I_ext=0:300:150pA",
        "--duration",
        "200ms",
        "--dt",
        "0.1ms",
        "--transient",
        "50ms",
        "--out",
        out,
        "-o",
        tmp_path,
    )
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert lines[0] == "I_ext (pA),rate (Hz),latency (ms),mean_V (mV)"
    assert lines[1] == "0,0,,-65"  # no spike: an empty latency
    assert lines[2].startswith("150,0,,")
    current, rate, latency, _ = lines[3].split(",")
    count, t0 = lif_reference(300, 10, 200)
    late = sum(1 for k in range(count) if t0 + k * (T_REF + t0) > 50)
    assert float(rate) == pytest.approx(late / 0.150)  # spikes after the transient per second
    assert float(latency) == pytest.approx(t0, abs=0.1)
    assert "3 points in 1 run(s)" in r.output
    # without --out the table goes to stdout
    r = invoke(
        "sweep", lif_path, "--input", "I_ext=0,300pA", "--duration", "20ms", "--dt", "0.1ms", "-q", "-o", tmp_path
    )
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == "I_ext (pA),rate (Hz),latency (ms),mean_V (mV)"
    assert len(r.output.splitlines()) == 3


def test_large_grids_are_split_into_runs_with_the_same_result(lif_path, tmp_path, monkeypatch):
    m = modelgen.load(lif_path)
    axes = [S.parse_axis("150:400:50 pA", "I_ext", "input", m.model.input("I_ext"))]
    whole = S.run_sweep(m, axes, duration="100 ms", dt="0.1 ms", out_dir=tmp_path)
    monkeypatch.setattr(S, "SAMPLE_BUDGET", 2 * 1001)  # two neurons' traces per run
    calls = []
    split = S.run_sweep(
        m, axes, duration="100 ms", dt="0.1 ms", out_dir=tmp_path, progress=lambda k, n: calls.append((k, n))
    )
    assert split.metadata["runs"] == 3
    assert split.to_csv() == whole.to_csv()
    assert calls[-1] == (3000, 3000) and all(b == 3000 for _, b in calls)
    assert [k for k, _ in calls] == sorted(k for k, _ in calls)


def test_fixed_values_and_protocols_next_to_the_axes(hh_path, tmp_path):
    r = invoke(
        "sweep", hh_path, "--param", "g_K=30:40:10mS/cm^2", "--input", "I_ext=step(10 uA/cm^2, on=10 ms)", "--param", "g_Na=100mS/cm^2",
        "--duration", "30ms", "-o", tmp_path, "-q",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = [line.split(",") for line in r.output.splitlines()[1:]]
    assert [row[0] for row in rows] == ["30", "40"]
    assert all(float(row[2]) > 10 for row in rows)  # the first spike comes after the step's onset


@pytest.mark.parametrize(
    "args, message",
    [
        (["--input", "I_ext=0:20:1mV"], "I_ext must be current/area (e.g. uA/cm^2), but `mV` is voltage"),
        (["--input", "I_ext=20:0:1uA/cm^2"], "the range 20:0:1 is empty"),
        (["--input", "I_ext=0:20:1 furlongs"], "`furlongs` is not a unit"),
        (["--param", "g_k=1:2:1mS/cm^2"], "unknown parameter `g_k`"),
        (["--input", "I_ext=10uA/cm^2"], "give at least one range"),
        (["--input", "I_ext=nan:1:1uA/cm^2"], "the range's start `nan` is not a finite number"),
        (["--input", "I_ext=0:inf:1uA/cm^2"], "the range's stop `inf` is not a finite number"),
        (["--input", "I_ext=0:1:1e999uA/cm^2"], "the range's step `1e999` is not a finite number"),
        (["--input", "I_ext=1,NaN,3 uA/cm^2"], "the value `NaN` is not a finite number"),
        (["--input", "I_ext=0:1:1uA/cm^2", "--duration", "0ms"], "the duration must be positive, not 0 ms"),
        (["--input", "I_ext=0:1:1uA/cm^2", "--dt", "0ms"], "the time step must be positive, not 0 ms"),
        (
            ["--input", "I_ext=0:1:1uA/cm^2", "--transient", "200ms", "--duration", "100ms"],
            "must be shorter than the run",
        ),
    ],
)
def test_sweep_errors_are_clear(hh_path, tmp_path, args, message):
    r = invoke("sweep", hh_path, *args, "-o", tmp_path)
    assert r.exit_code in (1, 2)
    assert message in r.output
    assert "Traceback" not in r.output


def test_parse_axis_forms(hh_path):
    i_ext = modelgen.load(hh_path).model.input("I_ext")
    a = S.parse_axis("0:1:0.1uA/cm^2", "I_ext", "input", i_ext)
    assert a.values.size == 11 and a.values[-1] == pytest.approx(1.0)  # STOP included despite rounding
    b = S.parse_axis("1, 2.5, 4 nA/cm^2", "I_ext", "input", i_ext)
    np.testing.assert_allclose(b.values * b.scale, [1e-3, 2.5e-3, 4e-3])
    assert S.parse_axis("10 uA/cm^2", "I_ext", "input", i_ext) is None
    assert S.parse_axis("step(10 uA/cm^2, on=1 ms)", "I_ext", "input", i_ext) is None
    with pytest.raises(ModelError, match="more than"):
        S.parse_axis("0:1e7:1 uA/cm^2", "I_ext", "input", i_ext)


def test_random_values_are_drawn_per_point_whatever_the_chunking(lif_path, tmp_path):
    m = modelgen.load(lif_path)
    axes = [S.parse_axis("8:12:0.5 nS", "g_L", "parameter", m.model.parameter("g_L"))]  # 9 points
    params = {"V_th": "uniform(-52, -48) mV"}
    inputs = {"I_ext": "ou(mean=200 pA, sigma=150 pA, tau=5 ms)"}

    def table(chunk_points, seed=3):
        t = S.run_sweep(
            m, axes, params, inputs, "100 ms", "0.1 ms", seed=seed, out_dir=tmp_path, chunk_points=chunk_points
        )
        return t.to_csv()

    whole = table(None)
    assert S.plan_sweep(m, axes, params, inputs, "100 ms", "0.1 ms").n_chunks == 1
    for chunk_points in (1, 2, 4):  # 9, 5 and 3 runs: every point sees the same random values
        assert table(chunk_points) == whole, chunk_points
    assert table(None, seed=4) != whole  # the values are random, and drawn from the seed
    rows = [line.split(",") for line in whole.splitlines()[1:]]
    assert len({row[1] for row in rows}) > 3  # the noise changes the rates from point to point


def test_the_plan_cuts_the_grid_in_order(lif_path):
    m = modelgen.load(lif_path)
    axes = [
        S.parse_axis("10,12 nS", "g_L", "parameter", m.model.parameter("g_L")),
        S.parse_axis("100:300:100 pA", "I_ext", "input", m.model.input("I_ext")),
    ]
    plan = S.plan_sweep(m, axes, duration="10 ms", dt="0.1 ms", seed=1, chunk_points=4)
    assert (plan.n, plan.chunk, plan.n_chunks) == (6, 4, 2)
    assert plan.bounds(1) == (4, 6)
    part = plan.point_values(2, 5)
    np.testing.assert_array_equal(part["g_L"], [10, 12, 12])
    np.testing.assert_array_equal(part["I_ext"], [300, 100, 200])
    with pytest.raises(ValueError, match=r"chunks \[1\] of the sweep are missing"):
        S.merge_chunks(plan, {0: S.run_chunk(plan, 0)})


def test_a_grid_may_have_ten_million_points(lif_path):
    m = modelgen.load(lif_path)
    g_l = S.parse_axis("1:3000:1 nS", "g_L", "parameter", m.model.parameter("g_L"))
    current = S.parse_axis("1:3000:1 pA", "I_ext", "input", m.model.input("I_ext"))
    plan = S.plan_sweep(m, [g_l, current], duration="1 ms", dt="0.1 ms", seed=1)  # planned, not run
    assert plan.n == 9_000_000 and plan.chunk == S.SAMPLE_BUDGET // 11
    np.testing.assert_array_equal(plan.point_values(8_999_999, 9_000_000)["g_L"], [3000])
    more = S.parse_axis("1:4000:1 pA", "I_ext", "input", m.model.input("I_ext"))
    with pytest.raises(ModelError, match="the grid has 12000000 points, more than 10000000"):
        S.plan_sweep(m, [g_l, more], duration="1 ms", dt="0.1 ms")


@pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="pip install -e '.[numba]'")
def test_a_sweep_on_numba_gives_numpys_table(lif_path, tmp_path):
    """--backend reaches every chunk's run (and the plan's description, which a resumed sweep must match)."""
    m = modelgen.load(lif_path)
    axes = [S.parse_axis("100:300:50 pA", "I_ext", "input", m.model.input("I_ext"))]
    kw = dict(duration="100 ms", dt="0.05 ms", out_dir=tmp_path)
    a = S.run_sweep(m, axes, **kw)
    b = S.run_sweep(m, axes, backend="numba", **kw)
    np.testing.assert_array_equal(b.rate, a.rate)
    np.testing.assert_array_equal(b.latency, a.latency)
    np.testing.assert_allclose(b.mean_v, a.mean_v, rtol=1e-12)
    assert a.rate.max() > 0
    plan = S.plan_sweep(m, axes, backend="numba", **kw)
    assert plan.description()["backend"] == "numba" and "backend" not in S.plan_sweep(m, axes, **kw).description()
    r = CliRunner().invoke(
        main, ["sweep", str(lif_path), "--input", "I_ext=100:300:50pA", "--duration", "100ms", "--dt", "0.05ms",
               "--backend", "numba", "-q", "-o", str(tmp_path)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert [float(row.split(",")[1]) for row in r.output.splitlines()[1:]] == a.rate.tolist()

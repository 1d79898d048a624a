"""Input protocols and per-neuron values: waveforms, units, randomness, files, text syntax.

References are closed forms: the waveforms themselves, the solution of the linear equation
dx/dt = (x_in(t) - x)/tau for step, ramp and sine drives, and the Gaussian transition law of
the Ornstein-Uhlenbeck process.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import modelgen
from modelgen import ModelError
from modelgen import protocols as P
from modelgen.units import AREA, CURRENT, DIMENSIONLESS

PER_AREA = P.Target("I_ext", CURRENT / AREA, "uA/cm^2", 1.0)  # like hh.model
PICOAMPS = P.Target("I_ext", CURRENT, "pA", 1e-6)  # like lif.model (internal unit uA)

DECAY = """model Decay "x relaxes towards the input x_in with time constant tau"
parameter tau = 10 ms
input x_in = 0
state x = 0
dx/dt = (x_in - x)/tau
"""


def ctx(n=1, dt=0.01, duration=100.0, seed=0):
    return P.RunContext(n, dt, duration, seed)


def grid(dt, duration):
    return np.arange(int(round(duration / dt)) + 1) * dt


def sample(f, times):
    return np.array([np.broadcast_to(f(t), np.shape(f(times[0]))) for t in times])


# ----------------------------------------------------------------------- waveforms
def test_step_switches_on_and_off_at_exact_steps():
    f = P.resolve("step(10 uA/cm^2, on=20 ms, off=80 ms)", PER_AREA, ctx())
    t = grid(0.01, 100.0)
    values = sample(f, t)
    on = (t >= 20 - 1e-9) & (t < 80 - 1e-9)
    np.testing.assert_array_equal(values, np.where(on, 10.0, 0.0))
    assert values[2000] == 10.0 and values[1999] == 0.0  # t = 20 ms is on, 19.99 ms is off
    assert values[8000] == 0.0 and values[7999] == 10.0
    # baseline and an open end
    g = P.resolve("step(2 uA/cm^2, on=5 ms, baseline=-1 uA/cm^2)", PER_AREA, ctx())
    assert g(4.99) == -1.0 and g(5.0) == 2.0 and g(1e6) == 2.0


def test_units_are_converted_and_checked():
    # 1 nA = 1000 pA = 1e-3 uA (internal)
    f = P.resolve("step(1 nA, on=1 ms)", PICOAMPS, ctx())
    assert f(2.0) == pytest.approx(1e-3)
    # numbers from Python are in the declared unit (pA), times in ms, frequencies in Hz
    g = P.resolve(P.step(250, on=1), PICOAMPS, ctx())
    assert g(2.0) == pytest.approx(250e-6)
    h = P.resolve(P.sine(1, 10), PICOAMPS, ctx())  # 10 Hz: period 100 ms
    assert h(25.0) == pytest.approx(1e-6)
    # "20 s" as a time, "1 kHz" as a frequency
    s = P.resolve("sine(1 pA, 1 kHz, on=1 s)", PICOAMPS, ctx(duration=2000))
    assert s(1000.25) == pytest.approx(1e-6)
    assert s(999.0) == 0.0
    with pytest.raises(
        ModelError, match=r"step\(amplitude=…\) must be current \(e.g. pA\), but `10 uA/cm\^2` is current/area"
    ):
        P.resolve("step(10 uA/cm^2)", PICOAMPS, ctx())
    with pytest.raises(ModelError, match=r"sine\(frequency=…\) must be 1/time .* but `10 ms` is time"):
        P.resolve("sine(1 pA, 10 ms)", PICOAMPS, ctx())
    with pytest.raises(ModelError, match=r"write it with a unit, e.g. `10 pA`"):
        P.resolve("step(10)", PICOAMPS, ctx())


def test_zero_needs_no_unit_and_dimensionless_inputs_take_numbers():
    assert P.resolve("step(0, on=0)", PICOAMPS, ctx())(1.0) == 0.0
    free = P.Target("x_in", DIMENSIONLESS, "1", 1.0)
    assert P.resolve("step(2, on=1 ms)", free, ctx())(1.5) == 2.0


def test_ramp_is_linear_between_on_and_off():
    f = P.resolve("ramp(0 uA/cm^2, 20 uA/cm^2, on=10 ms, off=30 ms)", PER_AREA, ctx())
    assert f(9.99) == 0.0
    assert f(10.0) == pytest.approx(0.0)
    assert f(20.0) == pytest.approx(10.0)
    assert f(29.99) == pytest.approx(19.99)
    assert f(30.0) == 0.0
    # without off it ramps over the rest of the run
    g = P.resolve("ramp(5 uA/cm^2, 15 uA/cm^2)", PER_AREA, ctx(duration=50.0))
    assert g(25.0) == pytest.approx(10.0) and g(50.0) == pytest.approx(15.0)


def test_pulse_train_count_width_and_period():
    f = P.resolve("pulses(5 uA/cm^2, width=2 ms, period=10 ms, on=5 ms, count=3)", PER_AREA, ctx())
    t = grid(0.01, 100.0)
    v = sample(f, t)
    rising = t[1:][(v[1:] > 0) & (v[:-1] == 0)]
    np.testing.assert_allclose(rising, [5.0, 15.0, 25.0], atol=1e-9)
    assert np.sum(v > 0) == 3 * 200  # each pulse lasts exactly 2 ms = 200 steps
    assert set(np.unique(v)) == {0.0, 5.0}
    with pytest.raises(ModelError, match="width .* must be > 0 and at most the period"):
        P.resolve("pulses(5 uA/cm^2, width=20 ms, period=10 ms)", PER_AREA, ctx())


def test_sine_matches_its_formula():
    f = P.resolve("sine(5 uA/cm^2, 10 Hz, offset=2 uA/cm^2, phase=0.5, on=10 ms)", PER_AREA, ctx())
    for t in np.linspace(10, 99.9, 37):
        assert f(t) == pytest.approx(2 + 5 * math.sin(2 * math.pi * 0.01 * (t - 10) + 0.5), abs=1e-12)
    assert f(9.0) == 0.0


def test_per_neuron_amplitudes_and_sums():
    f = P.resolve("step(linspace(0, 20, n) uA/cm^2, on=1 ms) + 1 uA/cm^2", PER_AREA, ctx(n=5))
    np.testing.assert_allclose(f(0.5), 1.0)
    np.testing.assert_allclose(f(2.0), [1, 6, 11, 16, 21])
    g = P.resolve(P.step(P.linspace(0, 20), on=1) + 1, PER_AREA, ctx(n=5))
    np.testing.assert_allclose(g(2.0), f(2.0))


# ----------------------------------------------------------------------- against the linear ODE
def test_step_drive_matches_closed_form(tmp_path):
    # exponential Euler is exact for dx/dt = (a - x)/tau with a constant on each step,
    # and the step's edges fall on the grid
    m = modelgen.load_text(DECAY)
    r = m.run(
        duration="60 ms", dt="0.1 ms", inputs={"x_in": "step(2, on=10 ms, off=40 ms)"}, record="x", out_dir=tmp_path
    )
    t = r.t
    on, off, tau = 10.0, 40.0, 10.0
    x_off = 2 * (1 - math.exp(-(off - on) / tau))
    expected = np.where(
        t <= on, 0.0, np.where(t <= off, 2 * (1 - np.exp(-(t - on) / tau)), x_off * np.exp(-(t - off) / tau))
    )
    np.testing.assert_allclose(r["x"][0], expected, atol=1e-12)


def test_sine_and_ramp_drives_match_closed_forms(tmp_path):
    m = modelgen.load_text(DECAY)
    tau, omega = 10.0, 2 * math.pi * 0.05  # 50 Hz
    r = m.run(
        duration="40 ms", dt="0.01 ms", inputs={"x_in": "sine(1, 50 Hz)"}, record="x", method="rk4", out_dir=tmp_path
    )
    t = r.t
    # x' = (sin(wt) - x)/tau, x(0) = 0
    amp = 1 / (1 + (omega * tau) ** 2)
    expected = amp * (np.sin(omega * t) - omega * tau * np.cos(omega * t) + omega * tau * np.exp(-t / tau))
    np.testing.assert_allclose(r["x"][0], expected, atol=1e-9)
    r = m.run(
        duration="20 ms",
        dt="0.01 ms",
        inputs={"x_in": P.ramp(0, 4)},  # over the whole run
        record="x",
        method="rk4",
        out_dir=tmp_path,
    )
    s = 4 / 20  # x' = (s t - x)/tau: x = s (t - tau) + s tau e^(-t/tau)
    np.testing.assert_allclose(r["x"][0], s * (r.t - tau) + s * tau * np.exp(-r.t / tau), atol=1e-9)


def test_recorded_input_is_the_protocol(tmp_path):
    m = modelgen.load_text(DECAY)
    r = m.run(
        duration="10 ms",
        dt="0.1 ms",
        n=2,
        inputs={"x_in": "pulses(linspace(1, 2, n), width=1 ms, period=4 ms)"},
        record=["x_in"],
        out_dir=tmp_path,
    )
    assert r.units["x_in"] == "1"
    np.testing.assert_allclose(r["x_in"][:, [0, 9, 10, 40, 50]], [[1, 1, 0, 1, 0], [2, 2, 0, 2, 0]])


# ----------------------------------------------------------------------- Ornstein-Uhlenbeck noise
def test_ou_is_exact_in_distribution_even_for_coarse_steps():
    # dt = tau: an Euler-Maruyama update would give variance sigma^2 * 2/(2 - dt/tau)... = 2 sigma^2;
    # the exact update keeps the stationary law N(mean, sigma^2) and correlation e^(-dt/tau)
    n, steps = 20000, 40
    f = P.resolve("ou(mean=5 uA/cm^2, sigma=2 uA/cm^2, tau=1 ms)", PER_AREA, ctx(n=n, dt=1.0, duration=steps))
    x = np.array([f(float(k)) for k in range(steps + 1)])  # (steps + 1, n)
    assert x.shape == (steps + 1, n)
    assert abs(x.mean() - 5) < 0.02
    assert x.var(axis=1).mean() == pytest.approx(4.0, rel=0.02)
    dev = x - 5
    lag1 = np.mean(dev[1:] * dev[:-1]) / np.mean(dev * dev)
    assert lag1 == pytest.approx(math.exp(-1), abs=0.01)
    lag3 = np.mean(dev[3:] * dev[:-3]) / np.mean(dev * dev)
    assert lag3 == pytest.approx(math.exp(-3), abs=0.01)
    # neurons are independent
    assert abs(np.corrcoef(dev[:, 0], dev[:, 1])[0, 1]) < 0.5
    assert abs(np.mean(dev[:, :-1] * dev[:, 1:]) / 4) < 0.01


def test_ou_is_reproducible_and_continues_across_blocks():
    target_ctx = dict(n=3, dt=0.1, duration=500.0)
    a = P.resolve("ou(mean=0 uA/cm^2, sigma=1 uA/cm^2, tau=5 ms)", PER_AREA, ctx(seed=7, **target_ctx))
    b = P.resolve("ou(mean=0 uA/cm^2, sigma=1 uA/cm^2, tau=5 ms)", PER_AREA, ctx(seed=7, **target_ctx))
    c = P.resolve("ou(mean=0 uA/cm^2, sigma=1 uA/cm^2, tau=5 ms)", PER_AREA, ctx(seed=8, **target_ctx))
    ts = np.arange(3000) * 0.1  # crosses block boundaries (1024 steps)
    xa = np.array([a(t) for t in ts])
    np.testing.assert_array_equal(xa, np.array([b(t) for t in ts]))
    assert not np.allclose(xa, np.array([c(t) for t in ts]))
    # asking again from the start replays the same path; midpoints interpolate
    np.testing.assert_array_equal(a(0.0), xa[0])
    np.testing.assert_allclose(a(102.35), 0.5 * (xa[1023] + xa[1024]))
    # the one-step increments keep the exact law across block boundaries
    decay = math.exp(-0.1 / 5)
    z = (xa[1:] - decay * xa[:-1]) / math.sqrt(1 - decay**2)
    assert abs(z.mean()) < 0.1 and z.std() == pytest.approx(1.0, abs=0.05)
    # the block size (memory) does not change the path
    small = P.OrnsteinUhlenbeck(0.0, 1.0, 5.0, 0.1, 3, np.random.SeedSequence(1))
    small.block = 7
    small.restart()
    big = P.OrnsteinUhlenbeck(0.0, 1.0, 5.0, 0.1, 3, np.random.SeedSequence(1))
    np.testing.assert_array_equal([small(t) for t in ts[:100]], [big(t) for t in ts[:100]])
    # an explicit seed fixes the stream whatever the run's seed
    d = P.resolve("ou(0 uA/cm^2, 1 uA/cm^2, 5 ms, seed=3)", PER_AREA, ctx(seed=1, **target_ctx))
    e = P.resolve("ou(0 uA/cm^2, 1 uA/cm^2, 5 ms, seed=3)", PER_AREA, ctx(seed=2, **target_ctx))
    np.testing.assert_array_equal(d(10.0), e(10.0))


def test_two_noise_terms_are_independent():
    # if both terms shared a stream the variance would be 4 sigma^2, not 2 sigma^2
    f = P.resolve("ou(0 uA/cm^2, 1 uA/cm^2, 1 ms) + ou(0 uA/cm^2, 1 uA/cm^2, 1 ms)", PER_AREA, ctx(n=20000, dt=1.0))
    assert np.var(f(5.0)) == pytest.approx(2.0, rel=0.05)


def test_run_seed_makes_noise_reproducible(tmp_path):
    m = modelgen.load_text(DECAY)
    kw = dict(duration="20 ms", dt="0.1 ms", n=2, inputs={"x_in": "ou(1, 0.5, 2 ms)"}, record="x", out_dir=tmp_path)
    r1, r2, r3 = m.run(seed=5, **kw), m.run(seed=5, **kw), m.run(seed=6, **kw)
    np.testing.assert_array_equal(r1["x"], r2["x"])
    assert not np.array_equal(r1["x"], r3["x"])
    assert not np.array_equal(r1["x"][0], r1["x"][1])  # independent per neuron
    assert r1.metadata["seed"] == 5
    # without a seed a fresh one is drawn and recorded, so the run can be repeated
    r4 = m.run(**kw)
    np.testing.assert_array_equal(m.run(seed=r4.metadata["seed"], **kw)["x"], r4["x"])


# ----------------------------------------------------------------------- time series from files
def test_csv_with_units_in_the_header(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text("# a recorded current\nt (s),I (nA)\n0,0\n0.01,1\n0.02,-1\n")
    f = P.resolve(f"file({path})", PICOAMPS, ctx())
    assert f(0.0) == pytest.approx(0.0)
    assert f(5.0) == pytest.approx(0.5e-3)  # 0.5 nA in uA, interpolated
    assert f(15.0) == pytest.approx(0.0)
    assert f(100.0) == pytest.approx(-1e-3)  # the last value holds
    with pytest.raises(ModelError, match=r"the value unit `nA` is current, but must be current/area"):
        P.resolve(f"file({path})", PER_AREA, ctx())
    # explicit units win over the header
    g = P.resolve(f"file('{path}', time_unit=ms, unit=pA)", PICOAMPS, ctx())
    assert g(0.005) == pytest.approx(0.5e-6)


def test_npy_per_neuron_columns_and_column_choice(tmp_path):
    t = np.arange(0, 10.5, 0.5)
    data = np.column_stack([t, np.sin(t), 2 * t])
    np.save(tmp_path / "x.npy", data)
    f = P.resolve(P.from_file(tmp_path / "x.npy"), PER_AREA, ctx(n=2))
    np.testing.assert_allclose(f(3.0), [np.sin(3.0), 6.0])
    np.testing.assert_allclose(f(3.25), [0.5 * (np.sin(3.0) + np.sin(3.5)), 6.5])
    g = P.resolve(f"file({tmp_path / 'x.npy'}, column=2)", PER_AREA, ctx(n=5))
    assert g(4.0) == pytest.approx(8.0)
    with pytest.raises(ModelError, match="has 2 value columns but the run has 5 neurons"):
        P.resolve(f"file({tmp_path / 'x.npy'})", PER_AREA, ctx(n=5))


def test_file_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("t,I\n0,1\n0,2\n")
    with pytest.raises(ModelError, match="must increase strictly"):
        P.resolve(f"file({bad})", PER_AREA, ctx())
    bad.write_text("t,I\n0,1\n1,x\n")
    with pytest.raises(ModelError, match="row 3 is not a row of numbers"):
        P.resolve(f"file({bad})", PER_AREA, ctx())
    bad.write_text("t,I\n0,1\n1,2\n")
    with pytest.raises(ModelError, match="has no value column `J`"):
        P.resolve(f"file({bad}, column=J)", PER_AREA, ctx())
    with pytest.raises(ModelError, match="no such file"):
        P.resolve("file(missing.csv)", PER_AREA, ctx())


def test_file_errors_show_only_a_short_escaped_excerpt(tmp_path):
    """A file that is not a time series is not echoed: at most 40 characters, control characters escaped."""
    secret = "API_KEY=0123456789abcdef0123456789abcdef0123456789abcdef\x1b[31m"
    bad = tmp_path / "config.txt"
    bad.write_text("t,I\n0,1\n1," + secret + "\n")
    with pytest.raises(ModelError) as e:
        P.resolve(f"file({bad})", PER_AREA, ctx())
    assert e.value.diagnostics[0].message.endswith("row 3 is not a row of numbers: `" + ("1," + secret)[:40] + "…`")
    bad.write_text("t\x07 (" + secret + "),I\n0,1\n1,2\n")  # a header whose unit is not a unit
    with pytest.raises(ModelError) as e:
        P.resolve(f"file({bad})", PER_AREA, ctx())
    text = e.value.diagnostics[0].format()
    assert "\x1b" not in text and secret not in text and "is not a unit" in text
    bad.write_text("t," + ",".join(f"{secret}{i}" for i in range(5)) + "\n0,1,2,3,4,5\n")
    with pytest.raises(ModelError) as e:
        P.resolve(f"file({bad}, column=J)", PER_AREA, ctx())
    assert e.value.diagnostics[0].hint == "its columns: " + (secret + "0, " + secret)[:40] + "…"


def test_input_from_file_end_to_end(tmp_path):
    # a file holding the ramp x_in = t/5 reproduces the ramp's closed-form response
    t = np.linspace(0, 20, 201)
    np.savetxt(tmp_path / "ramp.csv", np.column_stack([t, t / 5]), delimiter=",", header="t (ms),x", comments="")
    m = modelgen.load_text(DECAY)
    r = m.run(
        duration="20 ms",
        dt="0.01 ms",
        inputs={"x_in": f"file({tmp_path / 'ramp.csv'})"},
        record="x",
        method="rk4",
        out_dir=tmp_path,
    )
    s, tau = 0.2, 10.0
    np.testing.assert_allclose(r["x"][0], s * (r.t - tau) + s * tau * np.exp(-r.t / tau), atol=1e-9)


# ----------------------------------------------------------------------- per-neuron values
def test_per_neuron_values_for_parameters(tmp_path, lif_path):
    m = modelgen.load(lif_path)
    r = m.run(duration="1 ms", dt="0.1 ms", n=4, params={"E_L": "linspace(-70, -55, n) mV"}, out_dir=tmp_path)
    np.testing.assert_allclose(r["V"][:, 0], [-70, -65, -60, -55])
    values = P.resolve(
        "normal(120, 5) mS/cm^2",
        P.Target("g_Na", P.Target.of(m.model.parameter("g_L")).dimension / AREA, "mS/cm^2", 1.0),
        ctx(n=20000, seed=3),
    )
    assert values.mean() == pytest.approx(120, abs=0.15) and values.std() == pytest.approx(5, rel=0.03)
    u = P.resolve(
        "uniform(-70 mV, -60 mV)", P.Target("E_L", m.model.parameter("E_L").dimension, "mV", 1.0), ctx(n=1000, seed=3)
    )
    assert u.min() >= -70 and u.max() < -60 and u.std() == pytest.approx(10 / math.sqrt(12), rel=0.1)
    again = P.resolve(
        "uniform(-70 mV, -60 mV)", P.Target("E_L", m.model.parameter("E_L").dimension, "mV", 1.0), ctx(n=1000, seed=3)
    )
    np.testing.assert_array_equal(u, again)


def test_parameters_reject_time_varying_protocols(tmp_path, hh_path):
    m = modelgen.load(hh_path)
    with pytest.raises(ModelError, match=r"`step\(…\)` varies in time, but parameters are constant"):
        m.run(duration="1 ms", params={"g_K": "step(1 mS/cm^2)"}, out_dir=tmp_path)
    with pytest.raises(ModelError, match="linspace\\(\\) makes 7 values but the run has 3 neurons"):
        m.run(duration="1 ms", n=3, inputs={"I_ext": "linspace(0, 20, 7) uA/cm^2"}, out_dir=tmp_path)
    assert P.implied_n(["10 uA/cm^2", "step(linspace(0, 20, 21) uA/cm^2, on=5 ms)"]) == 21
    assert P.implied_n(["linspace(0, 20, n) uA/cm^2"]) is None


def test_metadata_describes_inputs_with_units(tmp_path, hh_path):
    m = modelgen.load(hh_path)
    r = m.run(
        duration="0.1 ms",
        n=2,
        inputs={"I_ext": P.step(P.linspace(0, 20), on=20) + P.ou(0, 1, 5)},
        params={"g_K": [30, 31]},
        seed=1,
        out_dir=tmp_path,
    )
    assert (
        r.metadata["inputs"]["I_ext"]
        == "step(linspace(0 uA/cm^2, 20 uA/cm^2), on=20 ms) + ou(0 uA/cm^2, 1 uA/cm^2, 5 ms)"
    )
    assert r.metadata["parameters"]["g_K"] == "[30, 31] mS/cm^2"
    r = m.run(duration="0.1 ms", inputs={"I_ext": "step(10 uA/cm^2, on=20 ms)"}, out_dir=tmp_path)
    assert r.metadata["inputs"]["I_ext"] == "step(10 uA/cm^2, on=20 ms)"


# ----------------------------------------------------------------------- the text syntax
@pytest.mark.parametrize(
    "text, message",
    [
        ("stpe(10 uA/cm^2)", "unknown function `stpe`"),
        ("step(10 uA/cm^2, of=3 ms)", "step() has no argument `of`"),
        ("step(10 uA/cm^2, on=20 ms", "expected `,` or `)`"),
        ("step(", "missing its closing"),
        ("ou(mean=1 uA/cm^2, sigma=1 uA/cm^2)", "ou() needs `tau`"),
        ("step(on=1 ms, 10 uA/cm^2)", "positional argument cannot follow"),
        ("step(1 uA/cm^2, 2 ms, 3 ms, 4 uA/cm^2, 5)", "takes at most 4 arguments"),
        ("step(1 uA/cm^2, amplitude=2 uA/cm^2)", "given twice"),
        ("step(10 uA/cm^2, on=20 mV)", "step(on=…) must be time"),
        ("step(10 uA/cm^2, on=)", "argument `on` of step() is empty"),
        ("step(step(1 uA/cm^2), on=1 ms)", "cannot be the amplitude of step()"),
        ("pulses(1 uA/cm^2, 1 ms, 2 ms, count=2.5)", "must be a whole number >= 1"),
        ("normal(1, -1) uA/cm^2", "must not be negative"),
        ("step(10 uA/cm^2, on=20 ms, off=10 ms)", "off (10 ms) is before on (20 ms)"),
        ("step(10 uA/cm^2) 3", "unexpected `3` after step(…)"),
        ("step(1 uA/cm^2, on=1 ms ms)", "cannot read `1 ms ms`"),
        ("step(" * 10 + "1 uA/cm^2" + ")" * 10, "nested more than 4 deep"),
        ("linspace(0, 1, n) + " * 20 + "1 uA/cm^2", "at most 16 terms"),
    ],
)
def test_syntax_errors_point_at_the_problem(text, message):
    with pytest.raises(ModelError) as e:
        P.resolve(text, PER_AREA, ctx(n=3))
    assert message in str(e.value)
    d = e.value.diagnostics[0]
    assert d.code == "E501" and d.span is not None and d.span.text == text


def test_quantities_with_language_functions_are_not_protocols():
    assert not P.is_spec("10 uA/cm^2") and not P.is_spec("exp(1) mV")
    assert P.is_spec("step(1 mV)") and P.is_spec("stpe(1 mV)") and P.is_spec(P.normal(1, 2))


@settings(max_examples=max(300, settings().max_examples), deadline=None)
@given(st.text(alphabet="stepoulinacfrm(),=+ 0123456789.-/^muAcsHz'\"", max_size=40))
def test_any_text_gives_a_value_or_a_model_error(text):
    try:
        P.resolve(text, PER_AREA, ctx(n=2))
    except ModelError:
        pass


def test_cli_protocols_per_neuron_values_and_seed(hh_path, tmp_path):
    from click.testing import CliRunner

    from modelgen.cli import main

    out = tmp_path / "out.npz"
    args = ["run", str(hh_path), "--duration", "60ms", "-o", str(tmp_path), "--save", str(out)]
    r = CliRunner().invoke(main, [*args, "--input", "I_ext=step(linspace(0, 20, 3) uA/cm^2, on=10 ms, off=50 ms)"])
    assert r.exit_code == 0, r.output
    assert "3 neurons" in r.output  # the count in linspace sets --n
    data = np.load(out)
    counts = [np.sum(data["spike_i"] == i) for i in range(3)]
    assert counts[0] == 0 and 0 < counts[1] <= counts[2]
    assert np.all(data["spike_t"] > 10)  # nothing before the step
    r = CliRunner().invoke(main, [*args, "--input", "I_ext=step(10 uA/cm^2, on=20 mV)"])
    assert r.exit_code == 1
    assert "step(on=…) must be time (e.g. ms), but `20 mV` is voltage" in r.output
    assert "Traceback" not in r.output


def test_per_neuron_initial_values(lif_path, tmp_path):
    m = modelgen.load(lif_path)
    r = m.run(
        duration="0.1 ms",
        dt="0.1 ms",
        n=500,
        initial={"V": "uniform(-70, -60) mV"},
        seed=2,
        out_dir=tmp_path,
        record_indices=np.arange(500),
    )
    v0 = r["V"][:, 0]
    assert v0.min() >= -70 and v0.max() < -60 and v0.std() > 2
    assert r.metadata["initial"] == {"V": "uniform(-70, -60) mV"}
    with pytest.raises(ModelError, match="varies in time"):
        m.run(duration="0.1 ms", initial={"V": "step(1 mV)"}, out_dir=tmp_path)

"""Runtime: state allocation, inputs, recording, spikes, saving, failure detection."""

import importlib.util
import re

import numpy as np
import pytest
from conftest import MODELS

import modelgen
from modelgen import ModelError, SimulationError
from modelgen.checks import StateBound
from modelgen.runtime import runaway, runaway_message

requires_numba = pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="pip install -e '.[numba]'")

DECAY = """model Decay "exponential decay towards an input"
parameter tau = 10 ms
input x_in = 0
state x = 1
dx/dt = (x_in - x)/tau
"""


def test_npz_contents(hh_path, tmp_path):
    m = modelgen.load(hh_path)
    r = m.run(
        duration="20 ms", dt="0.01 ms", n=3, inputs={"I_ext": "10 uA/cm^2"}, record=["V", "m", "I_Na"], out_dir=tmp_path
    )
    path = r.save(tmp_path / "out.npz")
    data = np.load(path)
    assert data["t"].shape == (2001,)
    assert data["t"][-1] == pytest.approx(20.0)
    assert data["V"].shape == (3, 2001)
    assert data["V"][0, 0] == pytest.approx(-65.0)
    assert data["m"].shape == (3, 2001)
    assert data["I_Na"].shape == (3, 2001)
    assert set(data["spike_i"]) == {0, 1, 2}
    assert np.all(np.diff(data["spike_t"][data["spike_i"] == 0]) > 0)
    assert "V=mV" in list(data["units"])
    assert "I_Na=uA/cm^2" in list(data["units"])


def test_results_in_declared_units(lif_path, tmp_path):
    # g_syn is declared in nS; its trace comes back in nS although stored in mS
    m = modelgen.load(lif_path)
    r = m.run(duration="1 ms", dt="0.1 ms", params={"E_L": "-70 mV"}, record=["V", "g_syn", "I_leak"], out_dir=tmp_path)
    assert r.units == {"V": "mV", "g_syn": "nS", "I_leak": "pA"}
    assert r["V"][0, 0] == pytest.approx(-70.0)


def test_recorded_current_in_suggested_unit(lif_path, tmp_path):
    # V starts 5 mV above E_L = -65 mV and relaxes with tau_m = C/g_L = 20 ms (no input, no synapse):
    # I_leak = g_L (V - E_L) = 10 nS * 5 mV exp(-t/20 ms) = 50 pA exp(-t/20 ms), stored internally in uA
    m = modelgen.load(lif_path)
    r = m.run(duration="10 ms", dt="0.1 ms", initial={"V": "-60 mV"}, record=["I_leak", "V"], out_dir=tmp_path)
    assert r.units["I_leak"] == "pA"
    assert r["I_leak"][0, 0] == pytest.approx(50.0, rel=1e-12)
    np.testing.assert_allclose(r["I_leak"][0], 50.0 * np.exp(-r.t / 20.0), rtol=1e-12)
    np.testing.assert_allclose(r["I_leak"][0], 10.0 * (r["V"][0] + 65.0), rtol=1e-12)  # nS * mV = pA


def test_input_forms_and_exact_linear_solution(tmp_path):
    m = modelgen.load_text(DECAY)
    t_end = 5.0
    for value in ("2", 2, 2.0):
        r = m.run(duration="5 ms", dt="0.5 ms", inputs={"x_in": value}, record="x", out_dir=tmp_path)
        # exponential Euler is exact for a linear equation with constant input
        assert r["x"][0, -1] == pytest.approx(2 + (1 - 2) * np.exp(-t_end / 10), rel=1e-12)


@pytest.mark.parametrize("n", [1, 12])  # the per-neuron kernel; numpy's vectorised step
def test_a_sum_of_an_input_and_constants_is_read_again_at_each_stage(tmp_path, n):
    """x_in + b is one value of the step program (made once while the input is constant); rk4 reads the
    input at t, t + dt/2 and t + dt, and each stage must use its own x_in + b."""
    m = modelgen.load_text(DECAY.replace("dx/dt = (x_in - x)/tau", "parameter b = 1\ndx/dt = (x_in + b - x)/tau"))
    assert "_in2 = " in m.code(method="rk4")  # the second stage's value, not the first's again
    r = m.run(
        duration="2 ms", dt="0.01 ms", n=n, inputs={"x_in": lambda t: t}, record="x", out_dir=tmp_path, method="rk4"
    )
    # x' = (t + 1 - x)/tau, x(0) = 1: x = t + 1 - tau + tau*exp(-t/tau)
    np.testing.assert_allclose(r["x"][:, -1], 2 + 1 - 10 + 10 * np.exp(-0.2), rtol=1e-12)


def test_a_sum_of_an_input_and_constants_in_a_branch_stays_in_it(tmp_path):
    """A where() branch is computed only where taken (the per-neuron kernels): its values of inputs
    and constants are not moved out of it."""
    ode = "parameter b = 1\ndx/dt = where(x_in > 0, (x_in + b - x)/tau, -x/tau)"
    m = modelgen.load_text(DECAY.replace("dx/dt = (x_in - x)/tau", ode))
    assert "_in1" not in m.code()
    r = m.run(duration="5 ms", dt="0.5 ms", inputs={"x_in": 2.0}, record="x", out_dir=tmp_path)
    assert r["x"][0, -1] == pytest.approx(3 + (1 - 3) * np.exp(-0.5), rel=1e-12)  # exact: a linear x'


def test_per_neuron_inputs_and_time_varying_input(tmp_path):
    m = modelgen.load_text(DECAY)
    r = m.run(
        duration="1 ms",
        dt="0.001 ms",
        n=3,
        inputs={"x_in": [0.0, 1.0, 2.0]},
        record="x",
        out_dir=tmp_path,
        method="rk4",
    )
    expected = np.array([0.0, 1.0, 2.0]) + (1 - np.array([0.0, 1.0, 2.0])) * np.exp(-0.1)
    np.testing.assert_allclose(r["x"][:, -1], expected, rtol=1e-12)
    # an input may be a function of t (ms): x_in = t gives x(t) = t - tau + (1 + tau) exp(-t/tau)
    r = m.run(duration="2 ms", dt="0.001 ms", inputs={"x_in": lambda t: t}, record="x", out_dir=tmp_path, method="rk4")
    assert r["x"][0, -1] == pytest.approx(2 - 10 + 11 * np.exp(-0.2), rel=1e-10)


def test_per_neuron_parameters(lif_path, tmp_path):
    m = modelgen.load(lif_path)
    r = m.run(
        duration="100 ms", dt="0.1 ms", n=2, params={"g_L": [10.0, 5.0]}, inputs={"I_ext": "200 pA"}, out_dir=tmp_path
    )
    # a smaller leak conductance means a higher V_inf and faster firing
    assert len(r.spike_times(1)) > len(r.spike_times(0)) > 0


def test_wrong_unit_for_input_is_a_clear_error(hh_path, tmp_path):
    m = modelgen.load(hh_path)
    with pytest.raises(ModelError) as e:
        m.run(duration="1 ms", inputs={"I_ext": "10 mV"}, out_dir=tmp_path)
    assert "I_ext must be current/area" in str(e.value)
    assert "voltage" in str(e.value)
    with pytest.raises(ModelError) as e:
        m.run(duration="1 ms", inputs={"I_Ext": "10 uA/cm^2"}, out_dir=tmp_path)
    assert "did you mean `I_ext`" in str(e.value)
    with pytest.raises(ModelError, match="duration must be time"):
        m.run(duration="100 mV", out_dir=tmp_path)


def test_blow_up_is_detected_with_variable_neuron_and_time(tmp_path):
    text = """model Blowup
parameter tau = 1 ms
state x = 1
dx/dt = x^2/tau
"""
    m = modelgen.load_text(text)
    with pytest.raises(SimulationError, match=r"x of neuron 0 became (inf|nan) between t = .* and .* ms"):
        m.run(duration="5 ms", dt="0.01 ms", record="x", out_dir=tmp_path, method="euler")


@requires_numba
def test_numba_few_neurons_stop_at_the_step_of_the_first_runaway_value(tmp_path):
    # x' = x^2/tau reaches infinity at t = tau/x0: the neuron starting at 2 goes first, then 1, then 0.5.
    # up to 8 neurons the compiled kernel checks every step and names that step, in calls of
    # 50,000 steps (numpy checks after calls of up to 1000 steps and names their window)
    text = """model Blowup
parameter tau = 1 ms
state x = 1
dx/dt = x^2/tau
"""
    x0, dt = [0.5, 2.0, 1.0], 0.01
    with pytest.raises(SimulationError) as e:
        modelgen.load_text(text).run(
            duration="100 ms", dt=f"{dt} ms", n=3, initial={"x": x0}, method="euler", out_dir=tmp_path, backend="numba"
        )
    x, k = 2.0, 0  # the same Euler steps in Python floats, until the first beyond x's bound (10^9 x0)
    while abs(x) < 1e9:
        x, k = x + dt * x * x, k + 1
    message = str(e.value)
    assert re.fullmatch(
        rf"x of neuron 1 reached {re.escape(f'{x:.3g}')} between t = ([0-9.]+) and ([0-9.]+) ms, beyond ±1e\+09: .*",
        message,
    ), message
    t0, t1 = map(float, re.search(r"between t = ([0-9.]+) and ([0-9.]+) ms", message).groups())
    assert (t0, t1) == pytest.approx(((k - 1) * dt, k * dt)) and 0.45 < t0 < 0.6


def adex_cut_at_20mV(folder):
    """AdEx with the spike cut at +20 mV (as in Brette & Gerstner's figures) instead of V_T + 5 Delta_T."""
    text = (MODELS / "adex.model").read_text().replace("threshold V > V_T + 5 * Delta_T", "threshold V > 20 mV")
    assert "threshold V > 20 mV" in text
    path = folder / "adex20.model"
    path.write_text(text)
    return modelgen.load(path, search_path=[str(MODELS)])


@pytest.mark.parametrize(
    "backend, dtype, n",
    [
        ("numpy", "float64", 1),  # the per-neuron kernel
        ("numpy", "float64", 20),  # the vectorised step
        ("numpy", "float32", 20),
        pytest.param("numba", "float64", 1, marks=[requires_numba, pytest.mark.slow]),
        pytest.param("numba", "float32", 20, marks=[requires_numba, pytest.mark.slow]),
    ],
)
def test_absurd_finite_values_stop_the_run_like_nan(tmp_path, backend, dtype, n):
    # rk4 at the +20 mV cut-off: in the step that crosses it the stages evaluate exp() far beyond it;
    # V is reset, but the adaptation current jumps to 2e21 pA and drives V to -1e19 mV, all finite
    adex = adex_cut_at_20mV(tmp_path)
    with pytest.warns(modelgen.api.StabilityWarning, match=r"for V \(tau = 4.84e-15 ms at the threshold V = 20 mV"):
        with pytest.raises(SimulationError) as e:
            adex.run(
                duration="100 ms",
                dt="0.01 ms",
                n=n,
                inputs={"I_ext": "1 nA"},
                method="rk4",
                out_dir=tmp_path,
                backend=backend,
                dtype=dtype,
            )
    message = str(e.value)
    if backend == "numba" and n == 1:  # checked every step: the adaptation current goes first, in the crossing step
        first = r"I_adapt_w of neuron 0 reached [0-9.]+e\+2[0-9] pA between t = ([0-9.]+) and ([0-9.]+) ms, beyond ±[0-9.e+]+ pA: "
    else:  # checked after many steps: by then V has been driven to -1e19 mV
        first = (
            r"V of neuron 0 reached -[0-9.]+e\+1[0-9] mV between t = ([0-9.]+) and ([0-9.]+) ms, beyond ±1e\+04 mV: "
        )
    assert re.fullmatch(first + r"the run blew up; try a smaller --dt or another --method", message), message
    t0, t1 = map(float, re.search(r"between t = ([0-9.]+) and ([0-9.]+) ms", message).groups())
    # the first spike of the same neuron with the cut-off at V_T + 5 Delta_T comes at 11.5 ms; the
    # window is the stretch between two checks (1000 steps on numpy, up to 5000 on numba), or the
    # step itself where numba's kernel checks every step (one neuron)
    if backend == "numba" and n == 1:
        assert 11.5 < t0 < 12 and t1 - t0 == pytest.approx(0.01)
    else:
        assert t0 < 11.5 < t1 and t1 - t0 <= (50.0 if backend == "numba" else 10.0)


def test_adex_with_its_own_cutoff_runs_without_warning(tmp_path, recwarn):
    r = modelgen.load(MODELS / "adex.model").run(
        duration="100 ms",
        dt="0.01 ms",
        inputs={"I_ext": "1 nA"},
        method="rk4",
        record=["V", "I_adapt_w"],
        out_dir=tmp_path,
    )
    assert not recwarn.list
    assert r.spike_t.size == 5
    assert -80 < r["V"].min() and r["V"].max() < -40
    assert 0 <= r["I_adapt_w"].min() and r["I_adapt_w"].max() < 1000


def test_runaway_names_the_first_bad_value():
    bound = StateBound(1e4, "mV", 1.0)
    ok = {"V": np.array([-70.0, 1e4 - 1, -(1e4 - 1)]), "m": np.array([0.5, 2.0])}
    assert runaway(ok, {"V": bound}) is None  # states without a bound: only NaN and infinities stop a run
    assert runaway({"V": np.array([-70.0, 1e4])}, {"V": bound}) == ("V", 1, 1e4, bound)
    assert runaway({"V": np.array([-70.0, -3.5e19, np.nan])}, {"V": bound}) == ("V", 1, -3.5e19, bound)
    assert runaway({"V": np.array([1.0], dtype=np.float32), "m": np.array([0.0, -np.inf])}, {"V": bound})[:3] == (
        "m",
        1,
        -np.inf,
    )
    name, i, value, _ = runaway({"m": np.array([0.0, 1.0, np.nan])}, {})
    assert (name, i, np.isnan(value)) == ("m", 2, True)
    assert runaway_message("V", 1, -3.5e19, bound, 20, 30) == (
        "V of neuron 1 reached -3.5e+19 mV between t = 20 and 30 ms, beyond ±1e+04 mV: the run blew up; "
        "try a smaller --dt or another --method"
    )
    assert runaway_message("m", 2, np.nan, None, 0, 0.5) == (
        "m of neuron 2 became nan between t = 0 and 0.5 ms; try a smaller --dt or another --method"
    )


def test_duration_must_be_whole_steps(hh_path, tmp_path):
    with pytest.raises(SimulationError, match="whole number of steps"):
        modelgen.load(hh_path).run(duration="1.005 ms", dt="0.01 ms", out_dir=tmp_path)


@pytest.mark.parametrize(
    "duration, dt, message",
    [
        ("0 ms", "0.01 ms", "the duration must be positive, not 0 ms"),
        ("-5 ms", "0.01 ms", "the duration must be positive, not -5 ms"),
        ("1 ms", "0 ms", "the time step must be positive, not 0 ms"),
        ("1 ms", "-0.1 ms", "the time step must be positive, not -0.1 ms"),
    ],
)
def test_duration_and_step_must_be_positive(hh_path, tmp_path, duration, dt, message):
    with pytest.raises(SimulationError) as e:
        modelgen.load(hh_path).run(duration=duration, dt=dt, out_dir=tmp_path)
    assert str(e.value) == message


@pytest.mark.parametrize("n", [1, 20])  # the per-neuron kernel, the vectorised step
def test_recording_nothing_keeps_the_spikes(lif_path, tmp_path, n):
    # record=[] used to fail in simulate (a broadcast of no rows); it records no traces, and the spikes are
    # those of a recording run: the first after 20 ms ln(200/185) (V from E_L to V_th under I/g_L = 200 mV)
    m = modelgen.load(lif_path)
    run = {"duration": "20 ms", "n": n, "inputs": {"I_ext": "2 nA"}, "out_dir": tmp_path}
    spikes_only, recorded = m.run(record=[], **run), m.run(**run)
    assert spikes_only.traces == {} and spikes_only.units == {}
    assert spikes_only.spike_t[0] == pytest.approx(20.0 * np.log(200.0 / 185.0), abs=0.01)
    np.testing.assert_array_equal(spikes_only.spike_i, recorded.spike_i)
    np.testing.assert_array_equal(spikes_only.spike_t, recorded.spike_t)
    assert np.bincount(spikes_only.spike_i, minlength=n).tolist() == [6] * n  # at 1.56 + 3.56 j ms


def test_unknown_record_variable(hh_path, tmp_path):
    with pytest.raises(ModelError, match="unknown variable to record `W`"):
        modelgen.load(hh_path).run(duration="1 ms", record=["W"], out_dir=tmp_path)


def test_summary_line(hh_path, tmp_path):
    r = modelgen.load(hh_path).run(duration="10 ms", dt="0.01 ms", inputs={"I_ext": 10}, out_dir=tmp_path)
    s = r.summary()
    assert "simulated 10 ms in 1000 steps of 0.01 ms" in s
    assert "1 neuron," in s and ", 1 spike;" in s and "spikes" not in s  # 10 uA/cm^2 for 10 ms: one spike
    assert "M neuron-steps/s" in s
    r = modelgen.load(hh_path).run(duration="30 ms", dt="0.01 ms", n=2, inputs={"I_ext": 10}, out_dir=tmp_path)
    assert ", 2 neurons, 4 spikes;" in r.summary()


def test_initial_override_moves_dependent_gates(hh_path, tmp_path):
    # hh.model starts the gates at steady state at the initial V
    r = modelgen.load(hh_path).run(
        duration="0.1 ms", dt="0.01 ms", initial={"V": "-50 mV"}, record=["m"], out_dir=tmp_path
    )
    v = -50.0
    alpha = 0.1 * (v + 40) / (1 - np.exp(-(v + 40) / 10))
    beta = 4 * np.exp(-(v + 65) / 18)
    assert r["m"][0, 0] == pytest.approx(alpha / (alpha + beta), rel=1e-12)


@pytest.mark.parametrize("v0", ["-40 mV", "-55 mV"])
def test_rate_functions_are_finite_at_their_removable_singularity(hh_path, tmp_path, v0):
    # alpha_m = 0.1(V+40)/(1-exp(-(V+40)/10)) is 0/0 at -40 mV (limit 1/ms); alpha_n likewise at -55 mV
    m = modelgen.load(hh_path)
    r = m.run(duration="1 ms", dt="0.01 ms", initial={"V": v0}, record=["V", "alpha_m", "alpha_n"], out_dir=tmp_path)
    assert np.all(np.isfinite(r["V"]))
    if v0 == "-40 mV":
        assert r["alpha_m"][0, 0] == pytest.approx(1.0, rel=1e-12)
    else:
        assert r["alpha_n"][0, 0] == pytest.approx(0.1, rel=1e-12)
    # the vectorised step (more than KERNEL_MAX_N neurons) takes the same limit
    many = m.run(duration="1 ms", dt="0.01 ms", n=20, initial={"V": v0}, record=["V"], out_dir=tmp_path)
    np.testing.assert_allclose(many["V"], np.broadcast_to(r["V"], many["V"].shape), rtol=1e-12)


TIME_DEPENDENT = """model TDep "an expression of time"
parameter C = 1 uF/cm^2
parameter g = 0.1 mS/cm^2
state V = -65 mV
charge Q = C * V
drive = 2 uA/cm^2 * sin(t / 5 ms)
current I_L = g * (V + 65 mV) outward
current I_d = drive inward
current I_ext = input inward
threshold V > -64 mV
"""


@pytest.mark.parametrize("backend", ["numpy", pytest.param("numba", marks=[requires_numba, pytest.mark.slow])])
@pytest.mark.parametrize(
    "which, record, inputs",
    [
        ("hh", ["I_Na", "V", "alpha_m", "I_ext"], {"I_ext": np.linspace(2.0, 20.0, 12)}),
        ("lif", ["I_leak", "I_ext", "V"], {"I_ext": lambda t: 200.0 + 100.0 * np.sin(t / 10.0)}),
        ("tdep", ["drive", "I_d", "V"], {"I_ext": lambda t: np.full(12, 0.5 * t / 20.0)}),
    ],
)
def test_recorded_currents_come_from_the_states_traces_as_observe_gives_them(
    tmp_path, monkeypatch, backend, which, record, inputs
):
    """Currents, expressions and inputs are computed after the run from every state's recorded
    trace (the compiled loop records states only): the same numbers as observe() after each step."""
    import modelgen.runtime as rt

    m = (
        modelgen.load_text(TIME_DEPENDENT, "tdep.model")
        if which == "tdep"
        else modelgen.load(MODELS / f"{which}.model")
    )
    load, calls = rt.load_generated, []

    def spying(path, expected_hash=None):
        module = load(path, expected_hash)
        calls.append(module)
        module.OBSERVE_TRACES = traces_on
        return module

    monkeypatch.setattr(rt, "load_generated", spying)
    runs = {}
    for traces_on in (True, False):  # False: the old way, observe() sampled after every step
        runs[traces_on] = m.run(
            duration=30.0,
            dt=0.05,
            n=12,
            inputs=inputs,
            record=record,
            record_indices=np.array([5, 1, 5, 0, 11]),  # out of order, one twice
            backend=backend,
            out_dir=tmp_path,
        )
    a, b = runs[True], runs[False]
    assert calls and all(hasattr(mod, "OBSERVE_TRACES") for mod in calls)
    for name in record:
        assert a[name].shape == (5, 601)
        np.testing.assert_array_equal(a[name], b[name])
        assert np.ptp(a[name]) > 0  # they move: the comparison is not of constants
    np.testing.assert_array_equal(a.spike_i, b.spike_i)
    np.testing.assert_array_equal(a.spike_t, b.spike_t)


@requires_numba
def test_numba_kernel_is_compiled_before_the_clock_starts(tmp_path, monkeypatch):
    """The loop time a run reports leaves out compiling (or loading) the numba kernel, as a network's does."""
    import modelgen.runtime as rt

    m = modelgen.load(MODELS / "lif.model")
    load, modules, compiled_at_start = rt.load_generated, [], []

    def loading(path, expected_hash=None):
        module = load(path, expected_hash)
        modules.append(module)
        return module

    clock = rt.time.perf_counter

    def counting():
        if not compiled_at_start and modules:
            compiled_at_start.append(len(modules[-1]._advance_serial.signatures))
        return clock()

    monkeypatch.setattr(rt, "load_generated", loading)
    monkeypatch.setattr(rt.time, "perf_counter", counting)
    m.run(duration=5.0, dt=0.1, n=2, inputs={"I_ext": 300.0}, backend="numba", out_dir=tmp_path)
    assert compiled_at_start == [1]

"""Integration plans: automatic choice, exact propagators, refusals that say why."""

import re

import numpy as np
import pytest
import sympy
from conftest import MODELS

import modelgen
from modelgen import ModelError, SimulationError
from modelgen.schemes import stability_warnings, threshold_state


def test_auto_choices(hh_path, lif_path):
    assert modelgen.load(hh_path).plan("auto").method == "exponential_euler"
    assert modelgen.load(lif_path).plan("auto").method == "exponential_euler"  # g_syn*(E_syn - V) is not jointly linear
    cuba = modelgen.load(hh_path.parent / "lif_cuba.model").plan()
    assert cuba.method == "exact"
    assert "linear system with constant coefficients" in cuba.reasons["V"]
    nonlinear = modelgen.load_text("model Q\nparameter tau = 1 ms\nstate x = 0.5\ndx/dt = x^2/tau - x/tau\n")
    plan = nonlinear.plan()
    assert plan.method == "rk4" and "dx/dt not linear" in plan.reasons["x"]


def test_exact_refused_for_nonlinear_model_with_reason(hh_path):
    with pytest.raises(ModelError) as e:
        modelgen.load(hh_path).plan("exact")
    msg = str(e.value)
    assert "needs a linear system with constant coefficients" in msg
    assert "coefficient of" in msg


def test_exponential_euler_refused_for_nonlinear_equation():
    m = modelgen.load_text("model Q\nparameter tau = 1 ms\nstate x = 0.5\ndx/dt = x^2/tau\n")
    with pytest.raises(ModelError, match="dx/dt is not"):
        m.plan("exponential_euler")


def test_propagator_matches_sympy_matrix_exponential(hh_path):
    m = modelgen.load(hh_path.parent / "lif_cuba.model")
    P = m.plan("exact").propagator.matrix
    dt = sympy.Symbol("dt", positive=True)
    tau_syn = sympy.Symbol("tau_syn", real=True)
    # the synaptic current decays by exp(-dt/tau_syn) and does not feel V
    assert sympy.simplify(P[1, 1] - sympy.exp(-dt / tau_syn)) == 0
    assert P[1, 0] == 0


@pytest.mark.parametrize("dt", ["0.1 ms", "1 ms", "2.5 ms", "5 ms"])
def test_exact_reproduces_closed_form_at_any_dt(hh_path, tmp_path, dt):
    """LIF with an exponential synaptic current, below threshold: V(t) in closed form."""
    m = modelgen.load(hh_path.parent / "lif_cuba.model")
    C, g_L, E_L, tau_s = 250.0, 12.5, -65.0, 5.0  # pF, nS, mV, ms
    tau_m = C / g_L
    I_ext, I0 = 100.0, 80.0  # pA: V_inf = -57 mV, never reaches threshold
    r = m.run(
        duration="50 ms",
        dt=dt,
        inputs={"I_ext": I_ext},
        initial={"I_syn": I0},
        record=["V", "I_syn"],
        out_dir=tmp_path,
        method="exact",
    )
    t = r.t
    K = I0 / C * tau_m * tau_s / (tau_s - tau_m)  # mV (pA/pF * ms = mV)
    V_exact = E_L + I_ext / g_L * (1 - np.exp(-t / tau_m)) + K * (np.exp(-t / tau_s) - np.exp(-t / tau_m))
    np.testing.assert_allclose(r["V"][0], V_exact, rtol=1e-9, atol=0)
    np.testing.assert_allclose(r["I_syn"][0], I0 * np.exp(-t / tau_s), rtol=1e-9, atol=1e-12)
    assert len(r.spike_t) == 0


@pytest.mark.parametrize("dt", ["0.1 ms", "2.5 ms"])
def test_exact_reproduces_closed_form_for_a_population(hh_path, dt, population_backend):
    """The same closed form for 16 neurons, each with its own synaptic time constant (so its own
    propagator), starting current and input, on the vectorised step and numba's block kernel."""
    m = modelgen.load(hh_path.parent / "lif_cuba.model")
    n = 16
    C, g_L, E_L = 250.0, 12.5, -65.0  # pF, nS, mV
    tau_m = C / g_L
    tau_s = np.linspace(1.0, 12.0, n)  # ms, never tau_m (20 ms)
    I_ext, I0 = np.linspace(0.0, 150.0, n), np.linspace(120.0, -40.0, n)  # pA: below threshold throughout
    r = m.run(
        duration="50 ms",
        dt=dt,
        n=n,
        inputs={"I_ext": I_ext},
        params={"tau_syn": tau_s},
        initial={"I_syn": I0},
        record=["V", "I_syn"],
        record_indices=np.arange(n),
        method="exact",
        backend=population_backend,
    )
    module = m.load_module(method="exact", backend=population_backend)
    assert n > (module.KERNEL_MAX_N if population_backend == "numpy" else module.SERIAL_MAX_N)
    t = r.t
    for k in range(n):
        K = I0[k] / C * tau_m * tau_s[k] / (tau_s[k] - tau_m)
        V_exact = E_L + I_ext[k] / g_L * (1 - np.exp(-t / tau_m)) + K * (np.exp(-t / tau_s[k]) - np.exp(-t / tau_m))
        np.testing.assert_allclose(r["V"][k], V_exact, rtol=1e-9, atol=0, err_msg=f"neuron {k}")
        np.testing.assert_allclose(r["I_syn"][k], I0[k] * np.exp(-t / tau_s[k]), rtol=1e-9, atol=1e-12)
    assert len(r.spike_t) == 0


def test_exact_singular_parameters_give_a_clear_error(hh_path, tmp_path):
    m = modelgen.load(hh_path.parent / "lif_cuba.model")
    with pytest.raises(SimulationError, match="not finite for these parameters"):
        m.run(duration="1 ms", dt="0.1 ms", params={"tau_syn": "20 ms"}, out_dir=tmp_path, method="exact")


def test_exact_lif_isi_matches_analytic(hh_path, tmp_path):
    m = modelgen.load(hh_path.parent / "lif_cuba.model")
    dt = 0.01
    r = m.run(duration="200 ms", dt=f"{dt} ms", inputs={"I_ext": "250 pA"}, out_dir=tmp_path)
    tau, v_inf = 20.0, -65.0 + 250 / 12.5
    isi = 2.0 + tau * np.log((v_inf + 65.0) / (v_inf + 50.0))
    assert np.all(np.abs(np.diff(r.spike_times(0)) - isi) <= dt + 1e-9)


def test_stability_warning_for_large_explicit_step(lif_path, tmp_path):
    """dt = 50 ms with euler is past the limit of both of LIF's time constants: one warning for each
    state, naming its tau (V: C/g_L = 20 ms; g_syn: tau_syn = 5 ms)."""
    m = modelgen.load(lif_path)
    with pytest.warns(modelgen.api.StabilityWarning) as caught:
        m.run(duration="100 ms", dt="50 ms", method="euler", out_dir=tmp_path)
    messages = [str(w.message) for w in caught if issubclass(w.category, modelgen.api.StabilityWarning)]
    assert len(messages) == 2
    for state, tau in (("V", 20), ("g_syn", 5)):
        assert any(re.search(rf"stability limit 2\*tau for {state} \(tau = {tau} ms", m) for m in messages), state


def test_no_stability_warning_for_exponential_euler(lif_path, tmp_path, recwarn):
    modelgen.load(lif_path).run(duration="100 ms", dt="50 ms", out_dir=tmp_path)
    assert not [w for w in recwarn if issubclass(w.category, modelgen.api.StabilityWarning)]


COUPLED = """model AdaptiveLIF
parameter C = 200 pF
parameter g_L = 10 nS
parameter E_L = -70 mV
parameter a = 2 nS
parameter tau_w = 100 ms
state V = -70 mV
state w = 0 pA
charge Q = C * V
current I_L = g_L * (V - E_L)  outward
current I_w = w  outward
dw/dt = (a*(V - E_L) - w)/tau_w
"""


def test_coupled_linear_system_is_not_given_to_the_symbolic_exponential():
    # V and w feed back on each other: sympy's symbolic exp(A dt) can take minutes, so auto
    # takes exponential Euler and `exact` says why it cannot
    m = modelgen.load_text(COUPLED)
    plan = m.plan()
    assert plan.method == "exponential_euler"
    assert "feed back on each other" in plan.reasons["V"]
    with pytest.raises(ModelError, match="without feedback between states"):
        m.plan("exact")


def test_triangular_order_puts_drivers_first():
    from modelgen.schemes import triangular_order

    a, b, c = sympy.symbols("a b c")
    # x0 is driven by x2, x2 by x1: order 1, 2, 0
    A = sympy.Matrix([[a, 0, 1], [0, b, 0], [0, 1, c]])
    assert triangular_order(A) == [1, 2, 0]
    assert triangular_order(sympy.Matrix([[a, 1], [1, b]])) is None


def nonlinear_ring(n: int) -> str:
    """Return n states on a ring, each with a cubic term: auto takes rk4 and says why for each state."""
    lines = ["model Ring", "parameter tau = 5 ms", *[f"state x_{k} = {0.5 if k == 0 else 0}" for k in range(n)]]
    for k in range(n):
        left, right = (k - 1) % n, (k + 1) % n
        lines.append(f"dx_{k}/dt = (x_{left} + x_{right} - 2*x_{k} - x_{k}^3) / tau")
    return "\n".join(lines) + "\n"


def test_reasons_name_few_equations_so_output_grows_linearly(tmp_path):
    # every state's reason named every nonlinear equation: 1,500 states gave 23 MB of `check`
    # output and a 28 MB module
    from click.testing import CliRunner

    from modelgen.cli import main

    plan = modelgen.load_text(nonlinear_ring(3)).plan()
    assert (
        plan.reasons["x_1"]
        == "chosen by auto: dx_0/dt, dx_1/dt, dx_2/dt not linear in its own variable, so rk4 for all"
    )
    sizes = {}
    for n in (20, 40):
        path = tmp_path / f"ring{n}.model"
        path.write_text(nonlinear_ring(n))
        m = modelgen.load(path)
        assert m.plan().reasons["x_7"] == (
            f"chosen by auto: dx_0/dt, dx_1/dt, dx_2/dt, dx_3/dt and {n - 4} more not linear in its own variable, "
            "so rk4 for all"
        )
        out = CliRunner().invoke(main, ["check", str(path)])
        assert out.exit_code == 0, out.output
        sizes[n] = len(out.output), len(m.code())
    assert sizes[40][0] < 2.1 * sizes[20][0]
    assert sizes[40][1] < 2.1 * sizes[20][1]


def test_exponential_euler_refusal_names_few_equations():
    with pytest.raises(ModelError, match=r"and dx_0/dt, dx_1/dt, dx_2/dt, dx_3/dt and 16 more is not"):
        modelgen.load_text(nonlinear_ring(20)).plan("exponential_euler")


def test_threshold_state_where_the_condition_is_linear_in_one_state():
    values = {p: threshold_state(modelgen.load(MODELS / f"{p}.model").model) for p in ("adex", "lif", "hh")}
    assert values["adex"] == ("V", pytest.approx(-50.4 + 5 * 2.0))  # V_T + 5 Delta_T
    assert values["lif"] == ("V", pytest.approx(-50.0)) and values["hh"] == ("V", 0.0)
    assert threshold_state(modelgen.load_text(COUPLED).model) is None  # no threshold
    assert threshold_state(modelgen.load_text(COUPLED + "threshold V*V < 2500 mV^2\n").model) is None
    assert threshold_state(modelgen.load_text(COUPLED + "threshold V - w*1 mV/pA > -50 mV\n").model) is None
    assert threshold_state(modelgen.load_text(COUPLED + "threshold 2*V < -100 mV\n").model) == ("V", -50.0)


def test_stability_is_checked_at_the_threshold_too(tmp_path):
    # AdEx's exponential current grows with e^((V - V_T)/Delta_T): at the +20 mV cut-off its time
    # scale C/(g_L e^((20 mV - V_T)/Delta_T)) is 4.8e-15 ms, at V_T + 5 Delta_T 0.064 ms
    text = (MODELS / "adex.model").read_text()
    adex = modelgen.load(MODELS / "adex.model")
    assert stability_warnings(adex.model, adex.plan("rk4"), 0.01) == []
    (tmp_path / "adex20.model").write_text(text.replace("threshold V > V_T + 5 * Delta_T", "threshold V > 20 mV"))
    adex20 = modelgen.load(tmp_path / "adex20.model", search_path=[str(MODELS)])
    tau = 281.0 / (30.0 * (np.exp((20 + 50.4) / 2) - 1))  # pF/nS = ms
    (message,) = stability_warnings(adex20.model, adex20.plan("rk4"), 0.01)
    assert message == (
        f"dt = 0.01 ms is larger than rk4's stability limit 2.785*tau for V (tau = {tau:.3g} ms at the threshold "
        f"V = 20 mV, which every spike reaches): the run may blow up there; use dt <= {2.785 * tau:.3g} ms "
        "(or, for a spike cut-off, a lower one)"
    )
    # the default cut-off is resolved up to dt = 2.785 * 0.0637 ms
    tau_own = 281.0 / (30.0 * (np.exp(5.0) - 1))
    assert stability_warnings(adex.model, adex.plan("rk4"), 2.7 * tau_own) == []
    assert "at the threshold V = -40.4 mV" in stability_warnings(adex.model, adex.plan("rk4"), 2.9 * tau_own)[0]


def test_a_registered_tableau_is_a_scheme_everywhere(tmp_path):
    """A Runge-Kutta scheme is data: one register call (Heun's method) plans, generates and runs it."""
    from modelgen import schemes

    h = sympy.Rational(1, 2)
    heun = schemes.Scheme("heun", "runge_kutta", schemes.Tableau(a=((), (1,)), b=(h, h), c=(0, 1), order=2))
    schemes.register(heun)
    try:
        assert schemes.METHODS[-1] == "heun" and "heun" in schemes.PER_STATE_METHODS
        m = modelgen.load_text("model D\nparameter tau = 10 ms\nstate x = 1\ndx/dt = -x/tau\n")
        plan = m.plan("heun")
        assert (plan.method, plan.order, plan.reasons) == ("heun", 2, {"x": "heun (requested)"})
        r = m.run(duration="20 ms", dt="1 ms", method="heun", record=["x"], out_dir=tmp_path)
        # Heun's step multiplies x by 1 - h + h^2/2 (h = dt/tau = 0.1)
        np.testing.assert_allclose(r["x"][0], 0.905 ** np.arange(21), rtol=1e-14)
        per_state = modelgen.load_text(
            "model D\nparameter tau = 10 ms\nstate x = 1\nstate y = 1\ndx/dt = -x/tau\ndy/dt = -y*y/tau\n"
            "method y: heun\nmethod x: exponential_euler\n"
        )
        assert per_state.plan().method == "heun+exponential_euler"
    finally:
        schemes.unregister("heun")
    assert "heun" not in schemes.METHODS
    with pytest.raises(ModelError, match="unknown integration method `heun`"):
        modelgen.load_text("model D\nparameter tau = 10 ms\nstate x = 1\ndx/dt = -x/tau\n").plan("heun")


def test_the_cli_offers_schemes_registered_after_it_is_imported(tmp_path):
    """`--method` reads the registry when the command runs: a scheme registered later is a choice."""
    from click.testing import CliRunner

    from modelgen import schemes
    from modelgen.cli import main

    model = tmp_path / "decay.model"
    model.write_text("model D\nparameter tau = 10 ms\nstate x = 1\ndx/dt = -x/tau\n")
    run = ["run", str(model), "--duration", "20ms", "--dt", "1ms", "--record", "x", "-o", str(tmp_path / "g")]
    h = sympy.Rational(1, 2)
    schemes.register(schemes.Scheme("heun", "runge_kutta", schemes.Tableau(a=((), (1,)), b=(h, h), c=(0, 1), order=2)))
    try:
        out = tmp_path / "x.npz"
        r = CliRunner().invoke(main, [*run, "--method", "heun", "--save", str(out), "-q"])
        assert r.exit_code == 0, r.output
        with np.load(out) as data:
            np.testing.assert_allclose(data["x"][0], 0.905 ** np.arange(21), rtol=1e-14)  # Heun: 1 - h + h^2/2
        assert (
            "--method [auto|euler|rk2|rk4|exponential_euler|exact|heun]"
            in CliRunner().invoke(main, ["run", "--help"]).output
        )
    finally:
        schemes.unregister("heun")
    r = CliRunner().invoke(main, [*run, "--method", "heun"])
    assert r.exit_code == 2 and "'heun' is not one of 'auto', 'euler'" in r.stderr

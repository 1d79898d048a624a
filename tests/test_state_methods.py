"""Per-state methods (`method V: rk4`, `method m, h, n: exponential_euler`): plan, errors, accuracy."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.integrate import solve_ivp

import modelgen
from modelgen import ModelError
from modelgen.cli import main

HH = Path(__file__).resolve().parent.parent / "models" / "hh.model"
SPLIT = "method V: rk4\nmethod m, h, n: exponential_euler"


def hh_text(methods: str = SPLIT) -> str:
    """hh.model with its `method exponential_euler` line replaced by ``methods``."""
    text = HH.read_text(encoding="utf-8")
    assert text.rstrip().endswith("method exponential_euler")
    return text.rstrip()[: -len("method exponential_euler")] + methods + "\n"


def hh_split():
    return modelgen.load_text(hh_text(), "hh_split.model")


def test_plan_gives_each_state_its_scheme():
    plan = hh_split().plan()
    assert plan.method == "rk4+exponential_euler" and plan.is_split
    assert plan.schemes == {"V": "rk4", "m": "exponential_euler", "h": "exponential_euler", "n": "exponential_euler"}
    assert plan.reasons["V"].startswith("rk4 (`method V: rk4`, line 43)")
    assert "half steps of dt/2 before and after the rk4 step of dV/dt (Strang splitting)" in plan.reasons["m"]
    # a default for the states without a line: the model's `method` line, or --method
    one = modelgen.load_text(hh_text("method exponential_euler\nmethod V: rk4"), "one.model")
    assert one.plan().schemes["n"] == "exponential_euler" and "the model's `method` line" in one.plan().reasons["n"]
    assert one.plan("rk4").method == "rk4" and one.plan("rk4").reasons["m"] == "rk4 (chosen with --method)"
    with pytest.raises(ModelError, match="asks for rk2 for m, h, n; rk4 for V"):
        one.plan("rk2")
    # every state given the same scheme: that scheme, not a split
    same = modelgen.load_text(hh_text("method V, m, h, n: rk4"), "same.model").plan()
    assert same.method == "rk4" and not same.is_split and same.reasons["m"] == "rk4 (`method V, m, h, n: rk4`, line 43)"


def _hh_reference(t_end: float, I_ext: float) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
    """V of HH (the 1952 rates in the modern convention, written here) from scipy at rtol 1e-10, every 0.1 ms."""

    def rates(V):
        am = 0.1 * (V + 40) / (1 - np.exp(-(V + 40) / 10))
        bm = 4 * np.exp(-(V + 65) / 18)
        ah = 0.07 * np.exp(-(V + 65) / 20)
        bh = 1 / (1 + np.exp(-(V + 35) / 10))
        an = 0.01 * (V + 55) / (1 - np.exp(-(V + 55) / 10))
        bn = 0.125 * np.exp(-(V + 65) / 80)
        return am, bm, ah, bh, an, bn

    def f(_, y):
        V, m, h, n = y
        am, bm, ah, bh, an, bn = rates(V)
        dV = I_ext - 120 * m**3 * h * (V - 50) - 36 * n**4 * (V + 77) - 0.3 * (V + 54.387)
        return [dV, am * (1 - m) - bm * m, ah * (1 - h) - bh * h, an * (1 - n) - bn * n]

    am, bm, ah, bh, an, bn = rates(-65.0)
    y0 = [-65.0, am / (am + bm), ah / (ah + bh), an / (an + bn)]
    t = np.arange(0, t_end + 1e-9, 0.1)
    return t, solve_ivp(f, (0, t_end), y0, t_eval=t, method="DOP853", rtol=1e-10, atol=1e-10).y[0]


def test_split_scheme_converges_at_second_order_against_solve_ivp(tmp_path):
    """Strang splitting: the gates' half steps are exact for V held, so the error falls 4x per halving of dt.

    Measured (max |V - V_ref| over 20 ms, 2 spikes at 10 uA/cm^2): 5.46, 1.36, 0.342, 0.0856 mV at
    dt = 0.05, 0.025, 0.0125, 0.00625 ms (ratios 4.02, 3.98, 3.99); rk4 for all: 0.148 ... 1.6e-5 mV.
    """
    t_ref, V_ref = _hh_reference(20.0, 10.0)
    m = hh_split()
    errors = []
    for dt in (0.025, 0.0125, 0.00625):
        r = m.run(duration="20 ms", dt=f"{dt} ms", inputs={"I_ext": 10.0}, out_dir=tmp_path, seed=0)
        every = round(0.1 / dt)
        np.testing.assert_allclose(r.t[::every], t_ref, atol=1e-9)
        errors.append(np.max(np.abs(r["V"][0][::every] - V_ref)))
    ratios = [errors[i] / errors[i + 1] for i in range(len(errors) - 1)]
    assert all(3.6 < q < 4.4 for q in ratios), (errors, ratios)
    assert errors[-1] < 0.1


def test_split_scheme_with_time_dependent_input_converges(tmp_path):
    """Inputs are read at t for the first half step, at the Runge-Kutta stages, at t + dt for the second."""
    m = hh_split()
    sine = "sine(4 uA/cm^2, 50 Hz, offset=3 uA/cm^2)"
    runs = [
        m.run(duration="10 ms", dt=f"{dt} ms", inputs={"I_ext": sine}, out_dir=tmp_path, seed=0)["V"][0][
            :: round(0.1 / dt)
        ]
        for dt in (0.02, 0.01, 0.005, 0.0025)
    ]
    diffs = [np.max(np.abs(a - b)) for a, b in zip(runs, runs[1:])]
    assert all(3.5 < diffs[i] / diffs[i + 1] < 4.5 for i in range(2)), diffs


def test_split_scheme_same_on_both_numpy_paths(tmp_path):
    m = hh_split()
    kw = dict(duration="15 ms", dt="0.01 ms", record=["V", "m", "n"], out_dir=tmp_path, seed=0)
    a = m.run(n=2, inputs={"I_ext": [6.0, 12.0]}, **kw)  # per-neuron Python floats
    b = m.run(n=12, inputs={"I_ext": np.resize([6.0, 12.0], 12)}, **kw)  # vectorised
    for var in ("V", "m", "n"):
        np.testing.assert_allclose(b[var][:2], a[var], rtol=1e-10, atol=1e-10)


@pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba backend: pip install -e '.[numba]'")
@pytest.mark.parametrize(
    "n", [pytest.param(3, marks=pytest.mark.slow), pytest.param(300, marks=pytest.mark.slow)]
)  # one neuron at a time; SIMD blocks (~75 s to compile): numba compiles, under -m slow
def test_split_scheme_numba_matches_numpy(tmp_path, n):
    m = hh_split()
    kw = dict(duration="15 ms", dt="0.01 ms", n=n, inputs={"I_ext": np.linspace(2, 15, n)}, record=["V", "h"], seed=0)
    a = m.run(out_dir=tmp_path, **kw)
    b = m.run(out_dir=tmp_path, backend="numba", **kw)
    for var in ("V", "h"):
        np.testing.assert_allclose(b[var], a[var], rtol=1e-7, atol=1e-7)
    np.testing.assert_array_equal(np.sort(a.spike_t), np.sort(b.spike_t))


def test_generated_code_latex_and_show_name_each_states_scheme():
    m = hh_split()
    code = m.code()
    assert "# integration:   rk4+exponential_euler" in code
    assert "#   V: rk4 (`method V: rk4`, line 43)" in code
    assert "# half a step (dt/2) of m, h, n, the others held at t" in code
    assert "# the second half step of m, h, n, at t + dt" in code
    assert "m = m_inf + (m - m_inf)*exp(-S*dt/2)" in code
    tex = m.latex()
    assert r"\frac{dV}{dt} &= \frac{-I_{Na} - I_{K} - I_{L} + I_{ext}}{C_{m}} && \text{method: RK4}" in tex
    assert r"\frac{dm}{dt} &= \alpha_{m} \left(1 - m\right) - \beta_{m} m && \text{method: exponential Euler}" in tex
    assert "method:" not in modelgen.load(HH).latex()  # unchanged without per-state lines
    assert "integration: rk4+exponential_euler (per-state `method` lines" in m.summary()


def _error(methods: str):
    with pytest.raises(ModelError) as e:
        modelgen.load_text(hh_text(methods), "bad.model").plan()
    (d,) = [d for d in e.value.diagnostics if d.severity == "error"]
    return d


@pytest.mark.parametrize(
    "methods, line, col, message, hint",
    [
        ("method V, x: rk4", 43, 11, "`method` names `x`, which is not a state variable", "states: V, m, h, n"),
        ("method V, mm: rk4", 43, 11, "`method` names `mm`, which is not a state variable", "did you mean `m`?"),
        ("method V: rk5", 43, 11, "unknown integration method `rk5`", "did you mean `rk4`?"),
        (
            "method V: rk4\nmethod m, V: exponential_euler",
            44,
            11,
            "state `V` is given a second method (`exponential_euler`; line 43 gave it `rk4`)",
            "give each state one method",
        ),
        (
            "method m: exact",
            43,
            11,
            "`exact` chooses for the whole model, not for some states",
            "write `method exact` on its own line",
        ),
        (
            "method V: rk4\nmethod m: rk2",
            43,
            11,
            "per-state methods combine exponential_euler with one Runge-Kutta scheme, but this model asks for "
            "rk2 for m; rk4 for V",
            "give these states the same Runge-Kutta scheme",
        ),
        ("method m, , h: rk4", 43, 11, "`method` before `:` takes the names of states separated by commas", ""),
    ],
)
def test_bad_method_lines_point_at_the_problem(methods, line, col, message, hint):
    d = _error(methods)
    assert (d.span.line, d.span.col, d.message) == (line, col, message), d.format()
    assert hint in d.hint
    text = d.format()
    assert text.startswith(f"bad.model:{line}:{col}: error[")
    assert text.splitlines()[2].index("^") == len(f"{line:>5} | ") + col - 1


def test_exponential_euler_refused_for_a_state_not_linear_in_itself():
    text = (
        "model Q\nparameter tau = 1 ms\nstate x = 0.5\nstate y = 0\n"
        "dx/dt = x^2/tau - x/tau\ndy/dt = -y/tau\nmethod x, y: exponential_euler\n"
    )
    with pytest.raises(ModelError) as e:
        modelgen.load_text(text, "q.model").plan()
    (d,) = e.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("E209", 7, 8)
    assert d.message == "exponential_euler needs dx/dt to be linear in x, and it is not"
    assert d.hint == "give x a Runge-Kutta scheme: `method x: rk4`"
    # with x on rk4, y by exponential Euler around it
    ok = modelgen.load_text(text.replace("method x, y:", "method x: rk4\nmethod y:"), "q.model").plan()
    assert ok.schemes == {"x": "rk4", "y": "exponential_euler"}


def test_exact_default_does_not_combine_with_per_state_lines():
    cuba = Path(HH).parent / "lif_cuba.model"
    text = cuba.read_text(encoding="utf-8") + "\nmethod I_syn: exponential_euler\n"
    with pytest.raises(ModelError, match="the exact method .* does not combine with per-state methods"):
        modelgen.load_text(text, "c.model").plan("exact")


def test_cli_check_reports_a_bad_method_line(tmp_path):
    bad = tmp_path / "bad.model"
    bad.write_text(hh_text("method V: rk4\nmethod m, h, n: exponential_eular"), encoding="utf-8")
    r = CliRunner().invoke(main, ["check", str(bad)])
    assert r.exit_code == 1
    assert f"{bad}:44:17: error[E209]: unknown integration method `exponential_eular`" in r.output
    assert "did you mean `exponential_euler`?" in r.output and "Traceback" not in r.output
    good = tmp_path / "good.model"
    good.write_text(hh_text(), encoding="utf-8")
    r = CliRunner().invoke(main, ["check", str(good)])
    assert r.exit_code == 0 and "integration rk4+exponential_euler" in r.output, r.output

"""Physically impossible values are refused: capacitances and time constants > 0, refractory periods >= 0.

Each case ran silently before: a zero capacitance or time constant gave NaN or inf mid-run, a
negative one a growing decay, and a refractory period of 1e20 ms overflowed the generated code's
64-bit step counter (to no refractory period at all).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MODELS

import modelgen
from modelgen import ModelError
from modelgen.checks import MAX_REFRACTORY_STEPS, RUNAWAY_FACTOR, StateBound, state_bounds, value_rules
from modelgen.units import describe

LIF = """model LIF "leaky integrate-and-fire"
parameter C = 200 pF
parameter g_L = 10 nS
parameter tau_syn = 5 ms
parameter t_ref = {t_ref}
parameter tau_1 = 2 ms
parameter tau_2 = 3 ms
input tau_in = 4 ms
state V = -65 mV
state g = 0 nS
charge Q = C * V
current I_L = g_L * (V + 65 mV)   outward
current I_syn = g * (0 mV - V)     inward
current I_ext = input              inward
dg/dt = -g/tau_syn - g/tau_in + 0 nS/(tau_1 - tau_2)
threshold V > -50 mV
reset V = -65 mV
refractory {refractory}
"""


def lif(t_ref="2 ms", refractory="t_ref"):
    return modelgen.load_text(LIF.format(t_ref=t_ref, refractory=refractory), "lif.model")


def run_error(model, tmp_path, **kw) -> ModelError:
    kw = {"duration": "1 ms", "dt": "0.01 ms", "out_dir": tmp_path, **kw}
    with pytest.raises(ModelError) as e:
        model.run(**kw)
    return e.value


def test_which_values_have_rules():
    rules = value_rules(lif().model)
    assert {name: rule.strict for name, rule in rules.items()} == {
        "C": True,  # the capacitance of the charge relation
        "tau_syn": True,  # divided by
        "t_ref": False,  # the refractory period: 0 is allowed
        "tau_in": True,  # an input divided by
    }  # tau_1, tau_2: only their difference is divided by
    assert rules["C"].why == "the capacitance of the charge relation"
    assert value_rules(modelgen.load("models/hh.model").model).keys() == {"C_m"}


@pytest.mark.parametrize(
    "params, message",
    [
        ({"C": 0}, "C must be a finite number > 0 (the capacitance of the charge relation), but it is 0 pF"),
        ({"C": "-1 nF"}, "C must be a finite number > 0 (the capacitance of the charge relation), but it is -1000 pF"),
        ({"C": float("nan")}, "C must be a finite number > 0 (the capacitance of the charge relation), but it is nan pF"),
        ({"tau_syn": "0 ms"}, "tau_syn must be a finite number > 0 (a time constant: the model divides by it), but it is 0 ms"),
        ({"t_ref": -1}, "t_ref must be a finite number >= 0 (the refractory period), but it is -1 ms"),
    ],
)  # fmt: skip
def test_overrides_are_refused_with_one_line(tmp_path, params, message):
    e = run_error(lif(), tmp_path, params=params)
    assert [(d.code, d.span, d.message) for d in e.diagnostics] == [("E501", None, message)]


def test_per_neuron_values_name_the_first_bad_neuron(tmp_path):
    e = run_error(lif(), tmp_path, n=4, params={"tau_syn": [5, 5, -1, 0]})
    assert e.diagnostics[0].message.endswith("but tau_syn[2] is -1 ms")
    e = run_error(lif(), tmp_path, n=3, params={"C": "linspace(-100, 100, n) pF"})
    assert e.diagnostics[0].message.endswith("but C[0] is -100 pF")
    e = run_error(lif(), tmp_path, n=2, inputs={"tau_in": [1, 0]})
    assert e.diagnostics[0].message.endswith("but tau_in[1] is 0 ms")


def test_allowed_values_run(tmp_path):
    r = lif(t_ref="0 ms").run(duration="1 ms", n=2, params={"C": [100, 300]}, inputs={"tau_in": 1}, out_dir=tmp_path)
    assert r.n_steps == 100


@pytest.mark.parametrize(
    "old, new, line, col, length",
    [
        ("C = 200 pF", "C = 0 pF", 2, 15, 4),
        ("tau_syn = 5 ms", "tau_syn = -5 ms", 4, 21, 5),
        ("t_ref = 2 ms", "t_ref = (1 - 2) * 5 ms", 5, 19, 14),
        ("tau_in = 4 ms", "tau_in = 0 s", 8, 16, 3),
    ],
)
def test_values_in_the_model_file_are_refused_at_load(old, new, line, col, length):
    with pytest.raises(ModelError) as e:
        modelgen.load_text(LIF.format(t_ref="2 ms", refractory="t_ref").replace(old, new), "lif.model")
    (d,) = e.value.errors
    assert (d.code, d.span.file, d.span.line, d.span.col, d.span.length) == ("E305", "lif.model", line, col, length)


def test_refractory_period_beyond_the_step_counter(tmp_path):
    """1e20 ms is 1e22 steps of 0.01 ms: more than an int64 counts (it wrapped to no refractory period)."""
    e = run_error(lif(t_ref="1e20 ms"), tmp_path)
    (d,) = e.diagnostics
    assert (d.code, d.span.file, d.span.line, d.span.col, d.span.length) == ("E305", "lif.model", 5, 19, 7)
    assert d.message == (
        "the refractory period t_ref is 1e+20 ms = 1e+22 steps of 0.01 ms; "
        f"it must be at most {MAX_REFRACTORY_STEPS:.3g} steps (counted in 64-bit integers)"
    )
    # the bound is on steps: 1e12 ms is fine at dt = 0.01 ms and too long at dt = 1e-5 ms
    lif(t_ref="1e12 ms").run(duration="0.1 ms", dt="0.01 ms", out_dir=tmp_path)
    assert (
        "1e+17 steps of 1e-05 ms"
        in run_error(lif(t_ref="1e12 ms"), tmp_path, duration="0.01 ms", dt="1e-5 ms").diagnostics[0].message
    )
    # given to the run: E501 without a position
    d = run_error(lif(), tmp_path, params={"t_ref": 1e20}).diagnostics[0]
    assert (d.code, d.span) == ("E501", None) and "t_ref is 1e+20 ms" in d.message
    # written as the refractory statement's own value: at that statement
    d = run_error(lif(refractory="1e20 ms"), tmp_path).diagnostics[0]
    assert (d.code, d.span.line, d.span.col) == ("E305", 18, 1)


def test_refractory_expression_is_checked_per_neuron(tmp_path):
    m = lif(refractory="2 * t_ref")
    d = run_error(m, tmp_path, n=3, params={"t_ref": [1, -1, 1]}).diagnostics[0]
    assert d.message == "the refractory period of neuron 1 must be a finite number >= 0, but it is -2 ms"


# ------------------------------------------------------------------ bounds of a running state
def test_state_bounds_of_adex():
    adex = modelgen.load(MODELS / "adex.model").model
    bounds = state_bounds(adex)
    assert list(bounds) == ["V", "I_adapt_w"]
    assert bounds["V"] == StateBound(1e4, "mV", 1.0)  # the membrane potential: ±10 V
    # the adaptation current (pA, starts at 0): 1e9 times its largest parameter, b = 80.5 pA
    w = bounds["I_adapt_w"]
    assert (w.unit, w.shown(w.limit)) == ("pA", "8.05e+10 pA")
    assert w.limit == pytest.approx(RUNAWAY_FACTOR * 80.5e-6)  # internal unit uA


def test_state_bounds_use_initial_value_and_display_unit():
    text = LIF.format(t_ref="2 ms", refractory="t_ref").replace("state g = 0 nS", "state g = 30 nS")
    bounds = state_bounds(modelgen.load_text(text, "lif.model").model)
    assert bounds["g"].shown(bounds["g"].limit) == "3e+10 nS"  # larger than g_L = 10 nS
    dimensionless = modelgen.load_text(
        "model FHN\nstate v = -1.2\nstate w = 0\ndv/dt = (v - w)/(1 ms)\ndw/dt = v/(1 ms)\n"
    )
    assert {k: b.limit for k, b in state_bounds(dimensionless.model).items()} == {"v": 1.2e9, "w": 1e9}


def _strong(model) -> dict:
    """A drive ten or more times what the bundled models are run with."""
    strong = {"current/area": "200 uA/cm^2", "current": "10 nA", "voltage/time": "100 mV/ms"}
    return {i.name: strong[describe(i.dimension)] for i in model.model.inputs if describe(i.dimension) in strong}


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.model")), ids=lambda p: p.stem)
def test_bundled_models_never_reach_their_bounds(path, tmp_path):
    # at rest and under a drive far stronger than usual, every state keeps well within its bound
    # (the membrane potential within 500 mV of 0; the others within a millionth of theirs)
    m = modelgen.load(path)
    bounds = state_bounds(m.model)
    for inputs in ({}, _strong(m)):
        r = m.run(duration="50 ms", dt="0.01 ms", inputs=inputs, record=list(m.states), out_dir=tmp_path)
        for name in m.states:
            b = bounds[name]
            margin = 0.05 if name == m.model.membrane_state else 1e-6
            assert np.abs(r[name]).max() * b.scale < margin * b.limit, (name, inputs)

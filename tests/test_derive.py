"""The membrane equation is derived from Q = C V and the declared currents."""

import pytest
import sympy

import modelgen
from modelgen.derive import all_odes

V, C, Cm = sympy.symbols("V C C_m", real=True)


def sym(name):
    return sympy.Symbol(name, real=True)


def test_hh_derivation_steps(hh_path):
    m = modelgen.load(hh_path)
    d = m.derivation
    t = sympy.Symbol("t", real=True)
    Vt = sympy.Function("V", real=True)(t)
    assert d.state == "V"
    # Q = C_m V  ->  dQ/dt = C_m dV/dt
    assert d.charge.rhs == Cm * Vt
    assert d.charge_rate.rhs == Cm * sympy.Derivative(Vt, t)
    # C_m dV/dt = I_ext - I_Na - I_K - I_L
    net = sym("I_ext") - sym("I_Na") - sym("I_K") - sym("I_L")
    assert sympy.simplify(d.membrane.rhs - net) == 0
    assert sympy.simplify(d.rhs - net / Cm) == 0


def test_direction_sets_sign(lif_path):
    m = modelgen.load(lif_path)
    # outward leak lowers V, inward synapse and input raise it
    expected = (sym("I_syn") + sym("I_ext") - sym("I_leak")) / C
    assert sympy.simplify(m.derivation.rhs - expected) == 0


def test_adding_a_current_is_one_line(hh_path):
    text = hh_path.read_text() + "\nparameter g_A = 1 mS/cm^2\ncurrent I_A = g_A * (V - E_K)  outward\n"
    m = modelgen.load_text(text, "hh_plus.model")
    assert (
        sympy.simplify(m.derivation.rhs - (sym("I_ext") - sym("I_Na") - sym("I_K") - sym("I_L") - sym("I_A")) / Cm) == 0
    )


def test_voltage_dependent_capacitance_is_differentiated():
    # Q = C0*(1 + k*V)*V  ->  dQ/dt = C0*(1 + 2 k V) dV/dt
    text = """model VarC
parameter C0 = 1 uF/cm^2
parameter k = 0.001 /mV
parameter g = 0.1 mS/cm^2
state V = -65 mV
charge Q = C0*(1 + k*V)*V
current I_L = g*V  outward
"""
    m = modelgen.load_text(text)
    C0, k = sym("C0"), sym("k")
    assert sympy.simplify(m.derivation.rhs - (-sym("I_L")) / (C0 * (1 + 2 * k * V))) == 0


def test_all_odes_in_declaration_order(hh_path):
    m = modelgen.load(hh_path)
    odes = all_odes(m.model, m.derivation)
    assert list(odes) == ["V", "m", "h", "n"]
    alpha, beta, x = sym("alpha_m"), sym("beta_m"), sym("m")
    assert sympy.simplify(odes["m"] - (alpha * (1 - x) - beta * x)) == 0


def test_model_without_membrane_uses_explicit_odes(tmp_path):
    text = """model Decay
parameter tau = 10 ms
state x = 1
dx/dt = -x/tau
"""
    m = modelgen.load_text(text)
    assert m.derivation is None
    r = m.run(duration="10 ms", dt="0.1 ms", record="x", out_dir=tmp_path)
    assert r["x"][0, -1] == pytest.approx(sympy.exp(-1).evalf(), rel=1e-12)

"""Exact propagators in closed form: against a numeric matrix exponential, closed-form and ODE-solver
references, and bounded planning time for many synapses and long chains."""

import time

import numpy as np
import pytest
import sympy
from scipy.integrate import solve_ivp
from scipy.linalg import expm

import modelgen
from modelgen import ModelError
from modelgen.derive import all_odes
from modelgen.propagator import MAX_PROPAGATOR_TERMS, linear_system, triangular_order


def lif_with_synapses(taus: list[str]) -> str:
    """Return a LIF model whose V integrates one exponentially decaying current per entry of ``taus``."""
    lines = ["model LIFSynapses", "parameter C = 250 pF", "parameter g_L = 12.5 nS", "parameter E_L = -65 mV"]
    lines += [f"parameter tau_{k} = {tau}" for k, tau in enumerate(dict.fromkeys(taus))]
    names = {tau: f"tau_{k}" for k, tau in enumerate(dict.fromkeys(taus))}
    lines += ["state V = E_L", *[f"state I_{k} = 0 pA" for k in range(len(taus))], "charge Q = C * V"]
    lines += ["current I_leak = g_L * (V - E_L)  outward", "current I_ext = input  inward"]
    lines += [f"current I_s{k} = I_{k}  inward" for k in range(len(taus))]
    lines += [f"dI_{k}/dt = -I_{k} / {names[tau]}" for k, tau in enumerate(taus)]
    lines += [f"synapse r{k}: I_{k} += w" for k in range(len(taus))]
    return "\n".join(lines) + "\nthreshold V > -50 mV\nreset V = -65 mV\n"


def linear_chain(n: int) -> str:
    """Return a model of n states: x_1 decays into x_2, ..., x_(n-1) into V (feed-forward, no feedback)."""
    lines = ["model Chain", "parameter C = 100 pF", "parameter g_L = 10 nS", "parameter E_L = -65 mV"]
    lines += [f"parameter tau_{k} = {1 + 0.7 * k:g} ms" for k in range(1, n)]
    lines += ["state V = E_L", "state x_1 = 100 pA", *[f"state x_{k} = 0 pA" for k in range(2, n)]]
    lines += ["charge Q = C * V", "current I_leak = g_L * (V - E_L)  outward", f"current I_x = x_{n - 1}  inward"]
    lines += ["dx_1/dt = -x_1 / tau_1", *[f"dx_{k}/dt = (x_{k - 1} - x_{k}) / tau_{k}" for k in range(2, n)]]
    return "\n".join(lines) + "\n"


# a fan-out and fan-in of paths (a -> b, a -> c, b and c -> V), a state without leak (q, whose
# rate 0 meets the constant's on the path 1 -> a -> q) and a rate shared by a and c: every kind
# of node the divided differences meet
DIAMOND = """model Diamond
parameter C = 100 pF
parameter g_L = 10 nS
parameter E_L = -65 mV
parameter tau_a = 3 ms
parameter tau_b = 7 ms
parameter I_0 = 20 pA
state V = E_L
state a = 50 pA
state b = 0 pA
state c = 0 pA
state q = 0 mV
charge Q = C * V
current I_leak = g_L * (V - E_L)  outward
current I_b = b  inward
current I_c = c  inward
current I_ext = input  inward
da/dt = (I_0 - a) / tau_a
db/dt = (a - b) / tau_b
dc/dt = (2*a - c) / tau_a + I_ext / tau_b
dq/dt = (a + b) / C
"""


def numeric_check(text: str) -> None:
    """The closed-form propagator equals scipy's expm of the augmented matrix at arbitrary parameter values."""
    m = modelgen.load_text(text)
    plan = m.plan("exact")
    odes = all_odes(m.model, m.derivation)
    system = linear_system(m.model, odes)
    P = plan.propagator.matrix
    # distinct exact values (equal time constants are singular), evaluated with 30 digits: near
    # time constants make the sum of exponentials cancel, which is not what this test is about
    symbols = sorted(P.free_symbols, key=str)
    picks = np.random.default_rng(1).choice(np.arange(5, 60), size=len(symbols), replace=False)
    values = {s: sympy.Rational(int(v), 10) for s, v in zip(symbols, picks)}
    n, k = len(system.states), len(system.inputs)
    M = np.zeros((n + 1 + k, n + 1 + k))
    for i in range(n):
        for j, a in system.A[i].items():
            M[i, j] = float(a.xreplace(values))
        M[i, n] = float(system.c[i].xreplace(values))
        for q, b in system.B[i].items():
            M[i, n + 1 + q] = float(b.xreplace(values))
    dt = float(values[sympy.Symbol("dt", positive=True)])
    reference = expm(M * dt)[:n]
    got = np.array(P.xreplace(values).evalf(30), dtype=float)
    np.testing.assert_allclose(got, reference, rtol=1e-10, atol=1e-12 * np.abs(reference).max())


@pytest.mark.parametrize(
    "text",
    [
        lif_with_synapses(["2 ms", "3.5 ms", "5 ms", "6.5 ms", "8 ms", "9.5 ms"]),
        lif_with_synapses(["2 ms", "2 ms", "5 ms"]),  # two synapses share a time constant: confluent nodes
        linear_chain(10),
        DIAMOND,
    ],
    ids=["six-synapses", "shared-tau", "chain-10", "diamond"],
)
def test_propagator_equals_numeric_matrix_exponential(text):
    numeric_check(text)


def test_six_synapses_and_a_chain_of_ten_plan_quickly():
    # sympy's Matrix.exp took 86 s for six synapses and over 300 s for the chain of ten
    for text in (lif_with_synapses([f"{2 + 1.5 * k:g} ms" for k in range(6)]), linear_chain(10)):
        m = modelgen.load_text(text)
        start = time.perf_counter()
        plan = m.plan()
        assert time.perf_counter() - start < 10
        assert plan.method == "exact"


def test_six_synapses_match_the_closed_form(tmp_path):
    """V(t) below threshold is a sum of exponentials: E_L + I/g (1 - e^(-t/tau_m)) + sum_k K_k (e^(-t/tau_k) - e^(-t/tau_m))."""
    taus = [2.0, 3.5, 5.0, 6.5, 8.0, 9.5]
    m = modelgen.load_text(lif_with_synapses([f"{t:g} ms" for t in taus]))
    C, g_L, E_L, I_ext = 250.0, 12.5, -65.0, 100.0  # pF, nS, mV, pA
    tau_m = C / g_L
    I0 = [20.0 * (k + 1) for k in range(len(taus))]  # pA
    r = m.run(
        duration="40 ms",
        dt="0.5 ms",
        inputs={"I_ext": I_ext},
        initial={f"I_{k}": i for k, i in enumerate(I0)},
        record=["V", "I_5"],
        out_dir=tmp_path,
    )
    t = r.t
    V = E_L + I_ext / g_L * (1 - np.exp(-t / tau_m))
    for i, tau in zip(I0, taus):
        V += i / C * tau_m * tau / (tau - tau_m) * (np.exp(-t / tau) - np.exp(-t / tau_m))
    assert r["V"].max() < -50  # below threshold throughout
    np.testing.assert_allclose(r["V"][0], V, rtol=1e-9)
    np.testing.assert_allclose(r["I_5"][0], I0[5] * np.exp(-t / taus[5]), rtol=1e-9)


def test_chain_of_ten_matches_an_ode_solver(tmp_path):
    n = 10
    m = modelgen.load_text(linear_chain(n))
    r = m.run(duration="30 ms", dt="0.25 ms", record=["V", "x_5", f"x_{n - 1}"], out_dir=tmp_path)
    taus = [1 + 0.7 * k for k in range(1, n)]
    C, g_L, E_L = 100.0, 10.0, -65.0  # pF, nS, mV: pA/pF = mV/ms

    def rhs(_t, y):
        V, x = y[0], y[1:]
        dx = (np.concatenate([[0.0], x[:-1]]) - x) / taus
        return np.concatenate([[(-g_L * (V - E_L) + x[-1]) / C], dx])

    y0 = np.concatenate([[E_L, 100.0], np.zeros(n - 2)])
    ref = solve_ivp(rhs, (0, 30), y0, t_eval=r.t, method="DOP853", rtol=1e-12, atol=1e-12).y
    np.testing.assert_allclose(r["V"][0], ref[0], rtol=1e-9)
    np.testing.assert_allclose(r["x_5"][0], ref[5], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(r[f"x_{n - 1}"][0], ref[n - 1], rtol=1e-7, atol=1e-9)


def test_too_large_a_propagator_falls_back_to_exponential_euler_and_says_so():
    m = modelgen.load_text(linear_chain(16))
    start = time.perf_counter()
    plan = m.plan()
    assert time.perf_counter() - start < 10
    assert plan.method == "exponential_euler"
    assert f"exact propagator would have more than {MAX_PROPAGATOR_TERMS} terms" in plan.reasons["x_3"]
    assert plan.reasons["x_3"].endswith("dx_3/dt is linear in x_3: exponential Euler (Rush-Larsen)")
    with pytest.raises(ModelError, match=f"limited to propagators of at most {MAX_PROPAGATOR_TERMS} terms"):
        m.plan("exact")


def test_triangular_order_of_sparse_rows():
    # x0 is driven by x2, x2 by x1 (rows as {column: entry}); a 2-cycle has no order
    assert triangular_order(({0: 1, 2: 1}, {1: 1}, {1: 1, 2: 1})) == [1, 2, 0]
    assert triangular_order(({1: 1}, {0: 1})) is None

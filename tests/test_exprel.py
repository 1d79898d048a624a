"""exprel(x) = (exp(x) - 1)/x, a function models may write: units, LaTeX, sympy, generated code."""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest
import sympy

import modelgen
from modelgen import ModelError
from modelgen.model import exprel

# x = 0 (the limit 1), both sides of 0 where exp(x) - 1 cancels, and far out on both sides
POINTS = [0.0, 1e-8, -1e-8, 1e-3, -0.3, 0.4, 1.0, -1.0, 30.0, 50.0, -50.0]


def reference(x: float) -> float:
    """exprel at 50 digits, from the series-free definition (mpmath's expm1 is exact near 0)."""
    with mpmath.workdps(50):
        return 1.0 if x == 0 else float(mpmath.expm1(mpmath.mpf(x)) / mpmath.mpf(x))


# dy/dt = exprel(x)/ms with x held: one Euler step of 1 ms leaves y = exprel(x). exprel(50) is
# 1e20: the parameter `big` sets the scale of dimensionless values, so that the run's check for
# absurd values (10^9 times a state's scale) lets it through.
PROBE = "model E\nparameter big = 1e12\nstate x = 0\nstate y = 0\ndx/dt = 0/ms\ndy/dt = exprel(x)/ms\nmethod euler\n"


@pytest.mark.parametrize("backend", ["numpy", pytest.param("numba", marks=pytest.mark.slow)])  # numba: compiles
@pytest.mark.parametrize("n", [len(POINTS) - 3, 300])  # per-neuron kernel (<= 8 neurons); vectorised / SIMD block
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_generated_exprel_matches_high_precision_reference(tmp_path, backend, n, dtype):
    if backend == "numba":
        pytest.importorskip("numba")
    xs = np.resize(POINTS, n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 warning for arrays holding 0
        r = modelgen.load_text(PROBE).run(
            duration="1 ms",
            dt="1 ms",
            n=n,
            initial={"x": xs},
            record=["y"],
            record_indices=range(n),
            out_dir=tmp_path,
            backend=backend,
            dtype=dtype,
            seed=0,
        )
    got = r["y"][:, -1]
    want = np.array([reference(x) for x in np.asarray(xs, dtype=dtype).astype(float)])
    rtol = 4e-16 if dtype == "float64" else 2e-7
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0)
    assert got[0] == 1.0  # x == 0 exactly


def test_sympy_knows_exprel():
    x = sympy.Symbol("x", real=True)
    assert exprel(sympy.Integer(0)) == 1
    for v in POINTS:
        assert float(exprel(sympy.Float(v)).evalf(30)) == pytest.approx(reference(v), rel=1e-15)
    # the derivative (exponential Euler's B, a Jacobian) against the derivative of the definition
    d = sympy.diff(exprel(x), x)
    for v in (1.0, -2.0, 0.5):
        want = float(sympy.diff((sympy.exp(x) - 1) / x, x).subs(x, v))
        assert float(d.subs(x, v)) == pytest.approx(want, rel=1e-14)
    assert sympy.limit(d.rewrite(sympy.exp), x, 0) == sympy.Rational(1, 2)
    assert exprel(x).rewrite(sympy.exp) == (sympy.exp(x) - 1) / x


def test_exprel_argument_must_be_dimensionless():
    text = (
        "model E\nparameter C = 1 uF/cm^2\nstate V = -65 mV\ncharge Q = C*V\n"
        "a = exprel(V)/ms\ncurrent I = a*C*mV  outward\n"
    )
    with pytest.raises(ModelError) as e:
        modelgen.load_text(text, "e.model")
    d = e.value.diagnostics[0]
    assert (d.code, d.span.line, d.span.col) == ("E302", 5, 12)
    assert d.message == "the argument of exprel() has dimension voltage; it must be dimensionless"
    assert "exprel(x / (10 mV))" in d.hint


def test_exprel_in_latex():
    text = "model E\nparameter k = 2\nstate x = 0.1\ndx/dt = -k*x*exprel(-x)/ms\n"
    tex = modelgen.load_text(text).latex()
    assert r"\operatorname{exprel}\left(- x\right)" in tex


def _hh_with_exprel(hh_path) -> str:
    """hh.model with alpha_m and alpha_n written through exprel, as Brian2 users write them."""
    source = hh_path.read_text(encoding="utf-8")
    old_m = "alpha_m = 0.1/mV * (V + 40 mV) / (1 - exp(-(V + 40 mV)/10 mV)) / ms"
    old_n = "alpha_n = 0.01/mV * (V + 55 mV) / (1 - exp(-(V + 55 mV)/10 mV)) / ms"
    assert old_m in source and old_n in source
    source = source.replace(old_m, "alpha_m = 1 / exprel(-(V + 40 mV)/10 mV) / ms")
    return source.replace(old_n, "alpha_n = 0.1 / exprel(-(V + 55 mV)/10 mV) / ms")


@pytest.mark.parametrize("method", ["exponential_euler", "rk4"])
def test_channel_written_with_exprel_runs_as_the_vtrap_form(hh_path, tmp_path, method):
    """The same HH rates, once as u/(1 - exp(-u)) (modelgen removes its 0/0) and once as 1/exprel(-u)."""
    vtrap = modelgen.load(hh_path)
    written = modelgen.load_text(_hh_with_exprel(hh_path), "hh_exprel.model")
    # V = -40 mV and -55 mV exactly: the 0/0 points of the vtrap form
    kw = dict(
        duration="30 ms", dt="0.01 ms", n=4, inputs={"I_ext": "10 uA/cm^2"}, method=method, record=["V", "m", "n"]
    )
    kw["initial"] = {"V": np.array([-65.0, -40.0, -55.0, -20.0])}
    a = vtrap.run(out_dir=tmp_path / "a", **kw)
    b = written.run(out_dir=tmp_path / "b", **kw)
    for var in ("V", "m", "n"):
        np.testing.assert_allclose(b[var], a[var], rtol=0, atol=1e-8)  # rounding, grown in spikes
    np.testing.assert_array_equal(a.spike_t, b.spike_t)
    assert len(a.spike_t) > 4

"""The one table of functions (modelgen/functions.py): the parser, the unit checker, LaTeX and every
printer read it, and a new entry works end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
from sympy.codegen.cfunctions import expm1

import modelgen
from modelgen import ModelError, language
from modelgen import functions as F
from modelgen.backends.base import ScalarPrinter
from modelgen.backends.numba import NumbaPrinter
from modelgen.backends.numpy import NumpyPrinter, UfuncWriter
from modelgen.exporters import export_model
from modelgen.exporters.brian2 import Brian2Printer
from modelgen.exporters.neuroml import LemsPrinter
from modelgen.exporters.nmodl import NmodlPrinter
from modelgen.functions import exprel

x = sympy.Symbol("x", real=True)


def test_the_parser_takes_the_functions_and_their_arities_from_the_table():
    assert language.FUNCTIONS == {name: fn.arity for name, fn in F.FUNCTIONS.items()}
    with pytest.raises(ModelError) as e:
        modelgen.load_text("model M\nstate x = 0\ndx/dt = max(x)/ms\n", "m.model")
    assert e.value.diagnostics[0].message == "max() takes 2 to 8 arguments, not 1"


def test_every_function_of_one_node_is_spelled_for_every_target():
    for fn in F.FUNCTIONS.values():
        if fn.node is not None:
            assert all(fn.spelled(t) for t in F.TARGETS), fn.name
    c = {name: fn.spellings.get("c") for name, fn in F.FUNCTIONS.items()}
    assert {k: c[k] for k in ("exp", "expm1", "log", "log10", "log1p", "sqrt", "abs", "min", "max", "tanh")} == {
        "exp": "exp",
        "expm1": "expm1",
        "log": "log",
        "log10": "log10",
        "log1p": "log1p",
        "sqrt": "sqrt",
        "abs": "fabs",
        "min": "fmin",
        "max": "fmax",
        "tanh": "tanh",
    }
    # numba falls back to python's spelling where it has none of its own
    assert F.FUNCTIONS["log"].spelled("numba") == "math.log"
    assert F.FUNCTIONS["exp"].spelled("numba") == "_exp"


def test_the_formats_columns_may_leave_out_what_the_format_lacks():
    """The exporters' columns are partial: a function left out is one the format does not have."""
    spelled = {t: {n for n, fn in F.FUNCTIONS.items() if t in fn.spellings} for t in F.EXPORT_TARGETS}
    common = {"exp", "log", "sqrt", "abs", "sin", "cos", "tan", "sinh", "cosh", "tanh"}
    assert spelled == {"brian2": common | {"exprel"}, "lems": common | {"heaviside"}, "nmodl": common}
    assert [F.FUNCTIONS[n].spellings["lems"] for n in ("log", "heaviside")] == ["ln", "H"]
    assert F.FUNCTIONS["abs"].spellings["nmodl"] == "fabs"


def test_exporters_spell_from_the_table_and_refuse_what_their_format_lacks():
    e = sympy.log(x) + exprel(x) + sympy.sqrt(sympy.Abs(x)) + sympy.E
    assert Brian2Printer().doprint(e) == "log(x) + sqrt(abs(x)) + exprel(x) + exp(1)"
    # formats without exprel get (exp(x) - 1)/x
    assert LemsPrinter().doprint(e) == "ln(x) + sqrt(abs(x)) + ((exp(x) - 1)/(x)) + exp(1)"
    assert NmodlPrinter({"x": "v"}).doprint(e) == "log(v) + sqrt(fabs(v)) + ((exp(v) - 1)/(v)) + exp(1)"
    with pytest.raises(ValueError) as b:
        Brian2Printer().doprint(expm1(x))
    assert str(b.value) == "Brian2 has no function `expm1`"
    with pytest.raises(ValueError) as n:
        NmodlPrinter({}).doprint(1 + expm1(x))
    assert str(n.value) == "NMODL has no function `expm1` (the model's where/min/max/... do not map)"


def test_printers_spell_from_the_table_and_note_the_helpers_they_call():
    e = expm1(x) * exprel(x) + sympy.Abs(x)
    numpy, scalar, numba = NumpyPrinter(), ScalarPrinter(), NumbaPrinter()
    assert numpy.doprint(e) == "np.absolute(x) + np.expm1(x)*_exprel(x)"
    assert scalar.doprint(e) == "abs(x) + (math.exp(x) - 1.0)*_exprel_scalar(x)"
    assert numba.doprint(e + sympy.exp(x)) == "_exp(x) + abs(x) + _expm1(x)*_exprel_lane(x)"
    assert (numpy.helpers, scalar.helpers, numba.helpers) == (
        {"_exprel"},
        {"_exprel_scalar"},
        {"_exp", "_expm1", "_exprel_lane"},
    )


def test_generated_modules_hold_the_helpers_their_expressions_call_and_no_others():
    plain = modelgen.load_text("model M\nparameter k = 2\nstate x = 1\ndx/dt = -k*x/ms\nmethod euler\n")
    assert "def _exprel" not in plain.code()
    assert "def _exp(" not in plain.code(backend="numba")
    rate = modelgen.load_text("model M\nstate x = 1\ndx/dt = -exprel(x)*x/ms\nmethod euler\n")
    assert "def _exprel_scalar(" in rate.code() and "def _exprel(" not in rate.code()
    assert "def _exprel_lane(" in rate.code(backend="numba") and "def _exp(" in rate.code(backend="numba")


ATAN = F.Function(
    "atan",
    (1, 1),
    "dimensionless",
    sympy.atan,
    sympy.atan,
    sympy.atan,
    latex=r"\arctan",
    spellings={"numpy": "np.arctan", "python": "math.atan", "c": "atan", "brian2": "arctan", "nmodl": "atan"},
)


@pytest.fixture
def atan():
    F.register(ATAN)
    yield ATAN
    F.unregister("atan")


# one Euler step of 1 ms with x held leaves y = atan(x)
PROBE = "model A\nstate x = 0\nstate y = 0\ndx/dt = 0/ms\ndy/dt = atan(x)/ms\nmethod euler\n"


def test_a_new_entry_works_end_to_end(atan, tmp_path):
    """One entry makes a function: it parses, checks units, prints in LaTeX and runs on numpy."""
    m = modelgen.load_text(PROBE)
    assert r"\arctan\left(x\right)" in m.latex()
    with pytest.raises(ModelError) as e:
        modelgen.load_text("model A\nstate V = 0 mV\ndV/dt = atan(V)*mV/ms\n", "a.model")
    d = e.value.diagnostics[0]
    assert (d.code, d.message) == ("E302", "the argument of atan() has dimension voltage; it must be dimensionless")
    code = m.code()
    assert "np.arctan(" in code and "math.atan(" in code
    for n in (5, 300):  # the per-neuron kernel on Python floats; the vectorised ufunc step
        xs = np.linspace(-3.0, 4.0, n)
        r = m.run(
            duration="1 ms", dt="1 ms", n=n, initial={"x": xs}, record=["y"], record_indices=range(n), out_dir=tmp_path
        )
        np.testing.assert_allclose(r["y"][:, -1], [math.atan(v) for v in xs], rtol=1e-15, atol=0)
    # the exporters read their formats' columns: Brian2 calls it arctan, LEMS has none
    assert "dy/dt = arctan(x)/ms : 1" in export_model(m.model, "brian2")
    assert NmodlPrinter({}).doprint(sympy.atan(x)) == "atan(x)"
    with pytest.raises(ValueError, match="^LEMS has no function `atan`$"):
        export_model(m.model, "neuroml")
    F.unregister("atan")
    with pytest.raises(ModelError) as e:
        modelgen.load_text(PROBE, "a.model")
    assert e.value.diagnostics[0].message == "unknown function `atan`"
    F.register(ATAN)  # for the fixture's teardown


def test_a_dimension_rule_must_be_known():
    with pytest.raises(ValueError, match="unknown dimension rule 'scalar'"):
        F.register(F.Function("f", (1, 1), "scalar", sympy.sin))
    assert "f" not in F.FUNCTIONS


def test_ufunc_writer_spells_from_the_table():
    w = UfuncWriter()
    w.assign("r", sympy.Max(sympy.tanh(x), sympy.Abs(x)))
    assert w.lines == ["np.tanh(x, r)", "np.absolute(x, _s0)", "np.maximum(r, _s0, r)"]

"""The parser: tokens, precedence, quantity literals, statements, names versus units, limits."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import sympy

import modelgen
from modelgen import language as L
from modelgen.diagnostics import ModelError


def tree(node):
    """The syntax tree as nested tuples, without positions, for comparisons."""
    if isinstance(node, L.Num):
        return node.value
    if isinstance(node, L.Name):
        return node.id
    if isinstance(node, L.UnitLit):
        return ("unit", *((name, exp) for name, exp, _ in node.factors))
    if isinstance(node, L.Unary):
        return (node.op, tree(node.operand))
    if isinstance(node, (L.Binary, L.Compare)):
        return (node.op, tree(node.left), tree(node.right))
    if isinstance(node, L.Call):
        return (node.func, *(tree(a) for a in node.args))
    raise AssertionError(node)


def parse(text: str, names=()):
    return tree(L.parse_expression(text, names=names))


def error_of(text: str, names=()):
    with pytest.raises(ModelError) as info:
        L.parse_expression(text, names=names)
    (d,) = info.value.diagnostics
    return d


def qty(number, *units):
    return ("*", Fraction(number), ("unit", *((u, Fraction(e)) for u, e in units)))


# ----------------------------------------------------------------------- quantity literals
def test_quantity_literal_binds_tighter_than_division():
    assert parse("x / 10 mV") == ("/", "x", qty(10, ("mV", 1)))
    assert parse("x / 10 mV") != parse("x / 10 * mV")
    assert parse("x / 10 * mV") == ("*", ("/", "x", Fraction(10)), "mV")


def test_compound_unit_is_one_literal():
    assert parse("1 uF/cm^2") == qty(1, ("uF", 1), ("cm", -2))
    assert parse("0.3 mS/cm^2") == qty(Fraction(3, 10), ("mS", 1), ("cm", -2))
    assert parse("2 mV/ms") == qty(2, ("mV", 1), ("ms", -1))
    assert parse("5 nS*ms") == qty(5, ("nS", 1), ("ms", 1))


def test_literal_inside_expressions():
    assert parse("(V + 40 mV) / 10 mV") == ("/", ("+", "V", qty(40, ("mV", 1))), qty(10, ("mV", 1)))
    assert parse("-65 mV") == ("-", qty(65, ("mV", 1)))
    assert parse("g * 2 mV") == ("*", "g", qty(2, ("mV", 1)))


@pytest.mark.parametrize("spelling", ["cm^2", "cm**2", "cm^(2)", "cm**(2)"])
def test_unit_powers(spelling):
    assert parse(f"1 {spelling}") == qty(1, ("cm", 2))


@pytest.mark.parametrize("spelling", ["s^-1", "s**-1", "s^(-1)"])
def test_negative_unit_powers(spelling):
    assert parse(f"3 {spelling}") == qty(3, ("s", -1))


def test_bare_unit_names_are_names():
    assert parse("0.1/mV") == ("/", Fraction(1, 10), "mV")
    assert parse("1/ms") == ("/", Fraction(1), "ms")


@pytest.mark.parametrize(
    "text, value",
    [("0.1", Fraction(1, 10)), (".5", Fraction(1, 2)), ("5.", Fraction(5)), ("1e-3", Fraction(1, 1000)), ("2E3", 2000)],
)
def test_numbers_are_exact(text, value):
    assert parse(text) == value


# ----------------------------------------------------------------------- operators
def test_caret_and_double_star_are_the_same_power():
    assert parse("V^2") == parse("V**2") == ("^", "V", Fraction(2))


def test_power_is_right_associative_and_binds_tighter_than_unary_minus():
    assert parse("2^3^2") == ("^", Fraction(2), ("^", Fraction(3), Fraction(2)))
    assert parse("-x^2") == ("-", ("^", "x", Fraction(2)))
    assert parse("2^-1") == ("^", Fraction(2), ("-", Fraction(1)))


def test_precedence_and_associativity():
    assert parse("a + b * c") == ("+", "a", ("*", "b", "c"))
    assert parse("a - b - c") == ("-", ("-", "a", "b"), "c")
    assert parse("a / b / c") == ("/", ("/", "a", "b"), "c")
    assert parse("a * b ^ c") == ("*", "a", ("^", "b", "c"))
    assert parse("(a + b) * c") == ("*", ("+", "a", "b"), "c")


def test_unary_minus_and_plus():
    assert parse("-V") == ("-", "V")
    assert parse("--V") == ("-", ("-", "V"))
    assert parse("+V") == "V"
    assert parse("a * -b") == ("*", "a", ("-", "b"))
    assert parse("-(1 mV)") == ("-", qty(1, ("mV", 1)))


@pytest.mark.parametrize("op", ["<", ">", "<=", ">=", "==", "!="])
def test_comparisons(op):
    assert parse(f"V {op} 0 mV") == (op, "V", qty(0, ("mV", 1)))
    assert parse(f"a + b {op} c * d") == (op, ("+", "a", "b"), ("*", "c", "d"))


def test_chained_comparison_is_an_error():
    d = error_of("a < b < c")
    assert d.code == "E001" and d.span.col == 7


def test_calls():
    assert parse("exp(-V / 10 mV)") == ("exp", ("/", ("-", "V"), qty(10, ("mV", 1))))
    assert parse("min(a, b, c)") == ("min", "a", "b", "c")
    assert parse("where(V > 0 mV, 1, 0)") == ("where", (">", "V", qty(0, ("mV", 1))), Fraction(1), Fraction(0))


def test_spans_point_at_the_token():
    node = L.parse_expression("g_L * (V - E_L)")
    assert (node.span.col, node.span.length) == (5, 1)  # the operator
    assert (node.left.span.col, node.left.span.length) == (1, 3)
    assert (node.right.right.span.col, node.right.right.span.length) == (12, 3)


# ----------------------------------------------------------------------- names and units
def test_model_names_shadow_unit_names():
    assert parse("m^3") == ("^", "m", Fraction(3))  # a name either way
    assert parse("2 m") == qty(2, ("m", 1))  # metre, when nothing is called m
    d = error_of("2 m", names=("m",))  # the gate m is not a unit
    assert d.code == "E001" and "cannot be used as a unit" in d.hint


def test_state_named_m_is_the_gate_not_metre():
    hh = modelgen.load(Path(__file__).resolve().parent.parent / "models" / "hh.model")
    m = sympy.Symbol("m", real=True)
    assert "m" in hh.states
    assert m in hh.model.current("I_Na").expr.free_symbols
    assert hh.model.state("m").dimension.is_dimensionless


def test_unknown_unit_after_a_number():
    d = error_of("10 mv")
    assert d.code == "E106" and d.span.col == 4 and "`mV`" in d.hint
    assert error_of("3 msec").code == "E106"
    assert error_of("2 exp(1)").code == "E001"  # a function, not a unit: an operator is missing
    assert error_of("2 x", names=("x",)).code == "E001"


def test_python_keywords_and_foreign_syntax_are_reported_where_they_stand():
    assert (error_of("lambda: 1").code, error_of("lambda: 1").span.col) == ("E001", 1)
    assert error_of("a.b").span.col == 2
    assert error_of("a[0]").span.col == 2
    assert error_of("'text'").span.col == 1
    assert error_of('"text"').code == "E001"


def test_numbers_out_of_range():
    for text in ("1e999", "1e-999", "1e99999999999", "9" * 400):
        assert error_of(text).code == "E304"
    assert parse("1e308") == Fraction(10) ** 308


def test_unit_exponents_must_be_small_whole_numbers():
    assert error_of("1 cm^1.5").code == "E303"
    assert error_of("1 cm^x").code == "E303"
    assert error_of("1 cm^99").code == "E303"


# ----------------------------------------------------------------------- statements
MINI = """\
model Mini "a # inside the description is not a comment"   # but this is
parameter C_m = 1 uF/cm^2     # capacitance
parameter g_L = 0.3 mS/cm^2
state V = -65 mV
input I_app = 0 uA/cm^2
charge Q = C_m * V
current I_L = g_L * (V - -65 mV)   outward
current I_ext = input   inward
r = 1/ms
state x = 0.5
dx/dt = r * (1 - x)
threshold V > -50 mV
reset V = -65 mV
reset x += 0.1
refractory 2 ms
method rk4
"""


def test_statement_kinds():
    t = L.parse_model_text(MINI, "mini.model")
    assert (t.name, t.description) == ("Mini", "a # inside the description is not a comment")
    kinds = [(s.kind, s.name) for s in t.statements]
    assert kinds == [
        ("parameter", "C_m"),
        ("parameter", "g_L"),
        ("state", "V"),
        ("input", "I_app"),
        ("charge", "Q"),
        ("current", "I_L"),
        ("current", "I_ext"),
        ("expression", "r"),
        ("state", "x"),
        ("ode", "x"),
        ("threshold", ""),
        ("reset", "V"),
        ("reset", "x"),
        ("refractory", ""),
        ("method", "rk4"),
    ]
    currents = t.of_kind("current")
    assert [(c.direction, c.is_input_current) for c in currents] == [("outward", False), ("inward", True)]
    assert [s.op for s in t.of_kind("reset")] == ["=", "+="]
    assert tree(t.statements[0].expr) == qty(1, ("uF", 1), ("cm", -2))
    ode = t.of_kind("ode")[0]
    assert (ode.name_span.line, ode.name_span.col) == (11, 2)


def test_comments_and_blank_lines():
    plain = L.parse_model_text("model M\nx = 1\n")
    commented = L.parse_model_text("# head\n\nmodel M   # the model\n   \n# x = 2\nx = 1 # one\n")
    assert [tree(s.expr) for s in plain.statements] == [tree(s.expr) for s in commented.statements] == [1]


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_line_endings(ending):
    t = L.parse_model_text(ending.join(["\ufeffmodel M", "x = 1", "", "y = x + 1"]))
    assert [(s.name, s.span.line) for s in t.statements] == [("x", 2), ("y", 4)]


def test_every_line_with_an_error_is_reported():
    with pytest.raises(ModelError) as info:
        L.parse_model_text("model M\nx = (1\nfoo bar\ncurrent I = 1 uA\nparameter 1 = 2\n")
    assert [(d.code, d.span.line) for d in info.value.diagnostics] == [
        ("E001", 2),
        ("E002", 3),
        ("E003", 4),
        ("E003", 5),
    ]


@pytest.mark.parametrize(
    "name, reason",
    [("lambda", "keyword"), ("class", "keyword"), ("_x", "underscore"), ("exp", "function"), ("threshold", "word")],
)
def test_names_that_may_not_be_declared(name, reason):
    with pytest.raises(ModelError) as info:
        L.parse_model_text(f"model M\nparameter {name} = 1\n")
    (d,) = info.value.diagnostics
    assert d.code == "E103" and (d.span.line, d.span.col) == (2, 11) and reason in d.message


def test_non_ascii_names_are_rejected_but_allowed_in_comments_and_descriptions():
    with pytest.raises(ModelError) as info:
        L.parse_model_text("model M\nparameter gé = 1\n")
    assert info.value.diagnostics[0].code == "E103"
    t = L.parse_model_text('model M "Membran – Kanäle"\nx = 1  # µ, é, 膜\n')
    assert t.description == "Membran – Kanäle"


# ----------------------------------------------------------------------- limits
def test_depth_limit_counts_parentheses_signs_powers_and_chains():
    depth = L.LIMITS["expression_depth"]
    L.parse_expression("(" * (depth - 1) + "1" + ")" * (depth - 1))
    for text in (
        "(" * (depth + 1) + "1" + ")" * (depth + 1),
        "-" * (depth + 1) + "1",
        "2^" * (depth + 1) + "2",
        "+".join(["1"] * (depth + 2)),
        "exp(" * (depth + 1) + "1" + ")" * (depth + 1),
    ):
        assert error_of(text).code == "E005"


def test_tokens_per_line_limit():
    n = L.LIMITS["tokens_per_line"]
    assert error_of(" ".join(["1"] * (n + 1))).code == "E005"


def test_file_limits_apply_to_text_too():
    with pytest.raises(ModelError) as info:
        L.parse_model_text("x" * (L.LIMITS["file_bytes"] + 1))
    assert info.value.diagnostics[0].code == "E004"
    with pytest.raises(ModelError) as info:
        L.parse_model_text("model M\nx = 1\x00\n")
    assert (info.value.diagnostics[0].code, info.value.diagnostics[0].span.line) == ("E004", 2)

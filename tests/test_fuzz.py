"""Property tests: whatever the text, loading it gives a model or a ModelError, nothing else.

Random text, random edits of the shipped models and random statements from the grammar are
fed to ``modelgen.load_text`` and ``modelgen.language.parse_model_text``. A crash (any other
exception), a diagnostic that cannot be shown, or a hang is a bug in the parser or checker.
"""

from __future__ import annotations

import json
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import modelgen
from modelgen.diagnostics import CODES, ModelError
from modelgen.language import parse_model_text
from modelgen.model import parse_quantity

MODELS = Path(__file__).resolve().parent.parent / "models"
SOURCES = [(MODELS / f"{name}.model").read_text(encoding="utf-8") for name in ("hh", "lif")]

FUZZ = settings(
    max_examples=max(200, settings().max_examples),  # more under the "fuzz" profile (tests/conftest.py)
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SECONDS_PER_EXAMPLE = 20


@contextmanager
def time_limit(seconds: int):
    """Fail an example that runs for too long (a hang is a bug too); a no-op where SIGALRM is missing."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def timeout(signum, frame):
        raise TimeoutError(f"checking the text took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def check_diagnostics(err: ModelError, text: str) -> None:
    """Every diagnostic has a known code, a place inside the text, and can be shown as text and JSON."""
    assert err.diagnostics
    n_lines = text.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
    for d in err.diagnostics:
        assert d.code in CODES
        assert d.message
        if d.span is not None:
            assert 1 <= d.span.line <= n_lines, d.format()
            assert d.span.col >= 1
        shown = d.format()
        assert "\x1b" not in shown and "\x00" not in shown
        json.dumps(d.to_json())


def outcome(text: str):
    """Load ``text``; return the model or the ModelError. Any other exception fails the test."""
    with time_limit(SECONDS_PER_EXAMPLE):
        try:
            parse_model_text(text, "fuzz.model")
        except ModelError as e:
            check_diagnostics(e, text)
        try:
            return modelgen.load_text(text, "fuzz.model")
        except ModelError as e:
            check_diagnostics(e, text)
            return e


# ----------------------------------------------------------------------- strategies
TOKENS = [
    *"()^*/+-=,:<>#\"'.[]{};\t\r\n",
    "**", "+=", "-=", "==", "<=", "!=",
    "V", "m", "h", "n", "C", "C_m", "g_L", "E_L", "g_Na", "alpha_m", "I_ext", "Q", "t", "dt", "w", "x",
    "mV", "ms", "uF/cm^2", "mS/cm^2", "pA", "nS", "cm^2", "s^-1", "mv", "1/ms", "MOhm", "µF", "degC",
    "0", "1", "-1", "0.5", ".5", "1.", "1e3", "1e999", "1e-999", "1e99999", "9" * 400, "/0", "^1000000", "^-1",
    "exp(", "log(", "sqrt(", "min(", "max(", "clip(", "where(", "heaviside(", "abs(", "foo(", "eval(",
    "exp(1000)", "log(0)", "sqrt(-1)", "10^10^10", "(" * 70, ")" * 70, "-" * 70,
    "model", "parameter", "state", "input", "charge", "current", "inward", "outward", "threshold", "reset",
    "refractory", "method", "synapse", "gate", "use", "as", "lambda", "import", "__import__", "_x", "é",
    "\x00", "\x1b", "\ufeff", "\u200b", "\u2028", "\ud800", "\x85", "☃", '"text"',
]  # fmt: skip


@st.composite
def mutated_model(draw) -> str:
    text = draw(st.sampled_from(SOURCES))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "insert", "duplicate", "token", "swap", "copy_line", "drop_line"]))
        i = draw(st.integers(0, len(text)))
        if op == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 8)) :]
        elif op == "insert":
            text = text[:i] + draw(st.text(min_size=1, max_size=5)) + text[i:]
        elif op == "duplicate":
            j = min(len(text), i + draw(st.integers(1, 30)))
            text = text[:j] + text[i:j] * draw(st.integers(1, 3)) + text[j:]
        elif op == "token":
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[i:]
        else:
            lines = text.split("\n")
            a = draw(st.integers(0, len(lines) - 1))
            b = draw(st.integers(0, len(lines) - 1))
            if op == "swap":
                lines[a], lines[b] = lines[b], lines[a]
            elif op == "copy_line":
                lines.insert(a, lines[b])
            elif len(lines) > 1:
                del lines[a]
            text = "\n".join(lines)
    return text


NAMES = st.sampled_from(["V", "m", "h", "x", "y", "g", "C_m", "g_L", "E_L", "I", "Q", "t", "w", "mV", "cm", "_p"])
UNIT_TEXT = st.sampled_from(["mV", "ms", "uF/cm^2", "mS/cm^2", "uA/cm^2", "pA", "nS", "pF", "1/ms", "mM", "cm^2"])
NUMBER = st.sampled_from(["0", "1", "2.5", "-3", "1e3", "0.001", "1e300", "120"])
ATOM = st.one_of(NAMES, NUMBER, st.builds(lambda n, u: f"{n} {u}", NUMBER, UNIT_TEXT))


def _combine(children):
    op = st.sampled_from(["+", "-", "*", "/", "^", "<", ">", "=="])
    fn = st.sampled_from(["exp", "log", "sqrt", "abs", "min", "max", "clip", "where", "heaviside", "tanh", "expm1"])
    return st.one_of(
        st.builds(lambda a, o, b: f"{a} {o} {b}", children, op, children),
        st.builds(lambda a: f"({a})", children),
        st.builds(lambda a: f"-{a}", children),
        st.builds(lambda f, args: f"{f}({', '.join(args)})", fn, st.lists(children, max_size=3)),
    )


EXPR = st.recursive(ATOM, _combine, max_leaves=12)


@st.composite
def statement(draw) -> str:
    name, e = draw(NAMES), draw(EXPR)
    return draw(
        st.sampled_from(
            [
                f"parameter {name} = {e}",
                f"state {name} = {e}",
                f"input {name} = {e}",
                f"charge {name} = {e}",
                f"current {name} = {e}   {draw(st.sampled_from(['inward', 'outward', '']))}",
                f"current {name} = input inward",
                f"{name} = {e}",
                f"d{name}/dt = {e}",
                f"threshold {e}",
                f"reset {name} {draw(st.sampled_from(['=', '+=', '*=', '/=']))} {e}",
                f"refractory {e}",
                f"synapse r: {name} += {e}",
                f"gate {name}: alpha = {e}, beta = {draw(EXPR)}",
                f"method {draw(st.sampled_from(['rk4', 'euler', 'exponential_euler', 'bogus']))}",
            ]
        )
    )


@st.composite
def edited_model(draw) -> str:
    """A shipped model with statements from the grammar added or replacing lines."""
    lines = draw(st.sampled_from(SOURCES)).split("\n")
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        if draw(st.booleans()):
            lines[i] = draw(statement())
        else:
            lines.insert(i, draw(statement()))
    return "\n".join(lines)


# ----------------------------------------------------------------------- properties
@FUZZ
@given(st.text(max_size=300))
def test_random_text(text):
    outcome(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join))
def test_random_tokens(text):
    outcome(text)


@pytest.mark.slow  # ~12 s; `pytest -m slow` (and .ci/run) runs it
@FUZZ
@given(mutated_model())
def test_mutated_models(text):
    outcome(text)


@pytest.mark.slow  # ~10 s; `pytest -m slow` (and .ci/run) runs it
@FUZZ
@given(edited_model())
def test_models_with_random_statements(text):
    outcome(text)


@FUZZ
@given(st.lists(statement(), min_size=1, max_size=12))
def test_random_statements(lines):
    outcome('model Fuzz "random statements"\n' + "\n".join(lines) + "\n")


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_through_a_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "bytes.model"
    path.write_bytes(data)
    with time_limit(SECONDS_PER_EXAMPLE):
        try:
            modelgen.load(path)
        except ModelError as e:
            assert all(d.code in CODES for d in e.diagnostics)
            e.diagnostics[0].format()


@FUZZ
@given(st.one_of(EXPR, st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join), st.text(max_size=60)))
def test_quantities_from_the_command_line(text):
    """`--input I_ext=…` and `--param g=…` values go through parse_quantity."""
    with time_limit(SECONDS_PER_EXAMPLE):
        try:
            value, _ = parse_quantity(text, "value")
        except ModelError as e:
            assert all(d.code in CODES for d in e.diagnostics)
            "".join(d.format() for d in e.diagnostics)
        else:
            assert isinstance(value, float) and value == value and abs(value) != float("inf")


@pytest.mark.parametrize("source", SOURCES, ids=["hh", "lif"])
def test_the_shipped_models_pass_the_same_checks(source):
    assert not isinstance(outcome(source), ModelError)

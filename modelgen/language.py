"""The model language: text -> syntax tree, with every position kept.

A model file is a list of statements, one per line (``#`` starts a comment)::

    model HodgkinHuxley "Squid giant axon"
    parameter g_Na = 120 mS/cm^2
    state V = -65 mV
    input I_ext = 0 uA/cm^2
    charge Q = C_m * V
    current I_Na = g_Na * m^3 * h * (V - E_Na)   outward
    alpha_m = 0.1/mV * (V + 40 mV) / (1 - exp(-(V + 40 mV)/10 mV)) / ms
    dm/dt = alpha_m*(1 - m) - beta_m*m
    threshold V > V_th
    reset V = V_reset
    refractory 2 ms
    method exponential_euler
    method V: rk4

Expressions are parsed by the recursive-descent parser below into a small tree of
frozen dataclasses. Nothing is ever evaluated: the only names are model names, unit
names and the functions in :data:`FUNCTIONS`; anything else is reported.

A number directly followed by unit names is a quantity literal that binds tighter than
any operator, so ``x / 10 mV`` means ``x / (10 mV)`` and ``1 uF/cm^2`` is one literal.
"""

from __future__ import annotations

import keyword
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from .diagnostics import Diagnostic, ModelError, Span
from .functions import ARITIES
from .units import lookup_unit

__all__ = [
    "FUNCTIONS",
    "LIMITS",
    "parse_model",
    "parse_model_text",
    "parse_expression",
    "Num",
    "Name",
    "UnitLit",
    "Unary",
    "Binary",
    "Call",
    "Compare",
    "Statement",
    "SyntaxTree",
    "node_extent",
]

# allowed functions: name -> (min args, max args), from the one table of functions
FUNCTIONS: dict[str, tuple[int, int]] = ARITIES

KEYWORDS = frozenset(
    {
        "model",
        "parameter",
        "state",
        "input",
        "charge",
        "current",
        "inward",
        "outward",
        "threshold",
        "reset",
        "refractory",
        "method",
        "synapse",
        "use",
        "gate",
        "t",
        "dt",
    }
)

# Limits that keep a hostile or broken file from exhausting the machine.
LIMITS = {
    "file_bytes": 1_000_000,
    "line_chars": 4_000,
    "statements": 5_000,
    "expression_depth": 60,
    "tokens_per_line": 1_000,
    "unit_exponent": 12,  # largest |n| in a unit literal such as cm^2 or s^-1
    "expanded_nodes": 100_000,  # size of an expression with every definition it uses substituted
}


# ----------------------------------------------------------------------- syntax tree
@dataclass(frozen=True)
class Num:
    value: Fraction
    span: Span


@dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True)
class UnitLit:
    """A unit inside a quantity literal: ``factors`` is ((unit name, exponent, span), ...)."""

    factors: tuple[tuple[str, Fraction, Span], ...]
    span: Span


@dataclass(frozen=True)
class Unary:
    op: str
    operand: object
    span: Span


@dataclass(frozen=True)
class Binary:
    op: str  # + - * / ^
    left: object
    right: object
    span: Span  # the operator


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple
    span: Span  # the function name


@dataclass(frozen=True)
class Compare:
    op: str
    left: object
    right: object
    span: Span


# after an expression's last leaf: a unit's power (`cm^2`) or a closing parenthesis
_EXTENT_TAIL = re.compile(r"\s*(?:(?:\^|\*\*)\s*[-+]?\d+(?:\.\d*)?|\))")


def node_extent(node) -> Span | None:
    """Return the span from the first to the last character of an expression (a caret under a whole value)."""
    spans = list(_spans_in(node))
    if not spans:
        return None
    first = min(spans, key=lambda s: s.col)
    text, start = first.text, first.col - 1
    end = max(s.col - 1 + s.length for s in spans)
    while (head := text[:start].rstrip()).endswith("(") and text.count(")", start, end) > text.count("(", start, end):
        start = len(head) - 1
    while (m := _EXTENT_TAIL.match(text, end)) and (
        m.group().strip() != ")" or text.count("(", start, end) > text.count(")", start, end)
    ):
        end = m.end()
    return first.at(start + 1, end - start)


def _spans_in(node):
    """Yield the spans of a syntax tree's nodes and unit factors."""
    if isinstance(node, Span):
        yield node
    elif isinstance(node, tuple):
        for item in node:
            yield from _spans_in(item)
    elif isinstance(node, (Num, Name, UnitLit, Unary, Binary, Call, Compare)):
        for value in vars(node).values():
            yield from _spans_in(value)


@dataclass(frozen=True)
class Statement:
    """One line of a model file.

    ``kind`` is one of: parameter, state, input, charge, current, expression, ode,
    threshold, reset, refractory, method, synapse.
    """

    kind: str
    span: Span  # the whole statement (line)
    name: str = ""
    name_span: Span | None = None
    expr: object = None
    direction: str = ""  # currents: inward | outward
    op: str = "="  # resets: = += -= *= /=
    is_input_current: bool = False  # `current I = input inward`
    receptor: str = ""  # synapses: `synapse exc: g_e += w` -> receptor "exc"
    path: str = ""  # use: the current file
    path_span: Span | None = None
    items: tuple = ()  # use: ((key, key span, expression), ...); method: ((state, span), ...)


@dataclass(frozen=True)
class SyntaxTree:
    file: str
    source: str
    name: str
    description: str
    name_span: Span | None
    statements: tuple[Statement, ...] = field(default=())
    kind: str = "model"  # "model", or "current" for a reusable current file

    def of_kind(self, *kinds: str) -> list[Statement]:
        return [s for s in self.statements if s.kind in kinds]


# ----------------------------------------------------------------------- tokenizer
@dataclass(frozen=True)
class Token:
    kind: str  # NUMBER NAME OP STRING
    text: str
    col: int  # 1-based


_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<NUMBER>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<NAME>[^\W\d]\w*)
  | (?P<STRING>"[^"]*")
  | (?P<OP>\*\*|\+=|-=|\*=|/=|<=|>=|==|!=|[-+*/^()<>=,:])
    """,
    re.VERBOSE,
)


class _Fail(Exception):
    def __init__(self, diag: Diagnostic):
        self.diag = diag


def _tokenize(line: str, span: Span) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(line):
        m = _TOKEN_RE.match(line, pos)
        if not m:
            ch = line[pos]
            what = "character" if ch.isprintable() else "unprintable character"
            hint = ""
            if ch in "[]{}.;'\\@$!&|~`?":
                hint = "model expressions use names, numbers, units, + - * / ^ and function calls"
            raise _Fail(
                Diagnostic(
                    "E001",
                    span.at(pos + 1, 1),
                    f"unexpected {what} {ch!r} (U+{ord(ch):04X})",
                    hint,
                )
            )
        kind = m.lastgroup
        if kind != "space":
            tokens.append(Token(kind, m.group(), pos + 1))
        pos = m.end()
        if len(tokens) > LIMITS["tokens_per_line"]:
            raise _Fail(Diagnostic("E005", span.at(1, 1), "line has too many tokens"))
    return tokens


def _strip_comment(line: str) -> str:
    # `#` starts a comment unless inside a string
    in_string = False
    for i, ch in enumerate(line):
        if ch == '"':
            in_string = not in_string
        elif ch == "#" and not in_string:
            return line[:i]
    return line


# ----------------------------------------------------------------------- expressions
class _ExprParser:
    """Recursive descent over one line's tokens; ``model_names`` shadow unit names."""

    def __init__(self, tokens: list[Token], span: Span, model_names: frozenset[str]):
        self.toks = tokens
        self.i = 0
        self.span = span
        self.model_names = model_names
        self.depth = 0

    # helpers
    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def at_op(self, *ops: str) -> bool:
        t = self.peek()
        return t is not None and t.kind == "OP" and t.text in ops

    def tspan(self, t: Token) -> Span:
        return self.span.at(t.col, len(t.text))

    def fail(self, message: str, t: Token | None = None, hint: str = "") -> _Fail:
        if t is None:
            col = len(self.span.text.rstrip()) + 1
            return _Fail(Diagnostic("E001", self.span.at(col, 1), message, hint))
        return _Fail(Diagnostic("E001", self.tspan(t), message, hint))

    def expect_op(self, op: str) -> Token:
        t = self.peek()
        if t is None or t.kind != "OP" or t.text != op:
            got = f"`{t.text}`" if t else "end of line"
            raise self.fail(f"expected `{op}` but found {got}", t)
        self.i += 1
        return t

    def enter(self):
        self.depth += 1
        if self.depth > LIMITS["expression_depth"]:
            t = self.peek()
            raise _Fail(
                Diagnostic(
                    "E005",
                    self.tspan(t) if t else self.span.at(1, 1),
                    f"expression nested deeper than {LIMITS['expression_depth']} levels (parentheses, operators or terms)",
                    "split it into named intermediate expressions",
                )
            )

    # grammar
    def parse_comparison(self):
        left = self.parse_additive()
        if self.at_op("<", ">", "<=", ">=", "==", "!="):
            t = self.peek()
            self.i += 1
            right = self.parse_additive()
            return Compare(t.text, left, right, self.tspan(t))
        return left

    def parse_additive(self):
        left = self.parse_term()
        depth = self.depth
        while self.at_op("+", "-"):
            t = self.peek()
            self.i += 1
            self.enter()  # a chain a + b + c is a tree as deep as it is long
            right = self.parse_term()
            left = Binary(t.text, left, right, self.tspan(t))
        self.depth = depth
        return left

    def parse_term(self):
        left = self.parse_unary()
        depth = self.depth
        while self.at_op("*", "/"):
            t = self.peek()
            self.i += 1
            self.enter()
            right = self.parse_unary()
            left = Binary(t.text, left, right, self.tspan(t))
        self.depth = depth
        return left

    def parse_unary(self):
        if self.at_op("-", "+"):
            t = self.peek()
            self.i += 1
            self.enter()
            operand = self.parse_unary()
            self.depth -= 1
            return Unary(t.text, operand, self.tspan(t)) if t.text == "-" else operand
        return self.parse_power()

    def parse_power(self):
        base = self.parse_primary()
        if self.at_op("^", "**"):
            t = self.peek()
            self.i += 1
            self.enter()
            exponent = self.parse_unary()  # right-associative, allows 2^-1
            self.depth -= 1
            return Binary("^", base, exponent, self.tspan(t))
        return base

    def is_unit_name(self, t: Token | None) -> bool:
        return t is not None and t.kind == "NAME" and t.text not in self.model_names and lookup_unit(t.text) is not None

    def parse_unit_literal(self) -> UnitLit:
        """Parse ``uF/cm^2`` after a number: unit names joined by * and /, with integer powers."""
        factors = []
        first = self.peek()
        sign = 1
        while True:
            t = self.peek()
            self.i += 1
            exp = Fraction(1)
            if self.at_op("^", "**"):
                self.i += 1
                exp = self.parse_int_exponent()
            factors.append((t.text, sign * exp, self.tspan(t)))
            if self.at_op("*", "/") and self.is_unit_name(self.peek(1)):
                sign = -1 if self.peek().text == "/" else 1
                self.i += 1
                continue
            break
        last = factors[-1][2]
        start = self.tspan(first).col
        return UnitLit(tuple(factors), self.span.at(start, last.col + last.length - start))

    def parse_int_exponent(self) -> Fraction:
        neg = False
        paren = False
        if self.at_op("("):
            paren = True
            self.i += 1
        if self.at_op("-"):
            neg = True
            self.i += 1
        t = self.peek()
        if t is None or t.kind != "NUMBER" or not re.fullmatch(r"[0-9]+", t.text):
            span = self.tspan(t) if t else self.span.at(len(self.span.text.rstrip()) + 1, 1)
            raise _Fail(Diagnostic("E303", span, "a unit's exponent must be a whole number, e.g. cm^2 or s^-1"))
        limit = LIMITS["unit_exponent"]
        if len(t.text) > 3 or int(t.text) > limit:
            raise _Fail(Diagnostic("E303", self.tspan(t), f"a unit's exponent must be between -{limit} and {limit}"))
        self.i += 1
        if paren:
            self.expect_op(")")
        return Fraction(-int(t.text) if neg else int(t.text))

    def number(self, t: Token) -> Fraction:
        """Return the exact value of a number token; reject what a double cannot hold."""
        _, _, exponent = t.text.lower().partition("e")
        # 1e999999999 would take forever to compute exactly; anything that long is out of range
        ok = len(t.text) <= 1000 and len(exponent.lstrip("+-")) <= 5
        if ok:
            value = Fraction(t.text)  # exact: "0.1" is 1/10
            try:
                ok = value == 0 or 0 < abs(float(value)) < float("inf")
            except OverflowError:
                ok = False
        if not ok:
            raise _Fail(
                Diagnostic(
                    "E304",
                    self.tspan(t),
                    f"the number {t.text if len(t.text) < 30 else t.text[:25] + '…'} is out of range",
                    "numbers must lie between about 1e-308 and 1e308 in magnitude; use a unit prefix instead",
                )
            )
        return value

    def parse_primary(self):
        t = self.peek()
        if t is None:
            raise self.fail("expression ends too early", None)
        if t.kind == "NUMBER":
            self.i += 1
            num = Num(self.number(t), self.tspan(t))
            if self.is_unit_name(self.peek()):
                unit = self.parse_unit_literal()
                return Binary("*", num, unit, unit.span)
            u = self.peek()
            if (
                u is not None
                and u.kind == "NAME"
                and u.text not in self.model_names | KEYWORDS | FUNCTIONS.keys()
                and not self.at_call(0)
            ):
                raise self.unknown_unit(u)
            return num
        if t.kind == "NAME":
            if keyword.iskeyword(t.text):  # lambda, import, … : point at the word, not at what follows
                raise self.fail(
                    f"`{t.text}` is a Python keyword; model expressions are not Python",
                    t,
                    "expressions use names, numbers, units, + - * / ^ and the functions " + ", ".join(FUNCTIONS),
                )
            self.i += 1
            if self.at_op("("):
                return self.parse_call(t)
            return Name(t.text, self.tspan(t))
        if t.kind == "OP" and t.text == "(":
            self.i += 1
            self.enter()
            inner = self.parse_comparison()
            self.depth -= 1
            self.expect_op(")")
            return inner
        if t.kind == "STRING":
            raise self.fail("a text string cannot be used in an expression", t)
        raise self.fail(f"unexpected `{t.text}`", t)

    def at_call(self, offset: int) -> bool:
        """Return whether the token at ``offset`` is followed by ``(``."""
        t = self.peek(offset + 1)
        return t is not None and t.kind == "OP" and t.text == "("

    def unknown_unit(self, t: Token) -> _Fail:
        """Return the error for a name after a number that is neither a unit nor a model name."""
        import difflib

        from .units import UNITS

        # same letters in another case: the fewest case changes win (mv -> mV, not megavolt MV)
        lower = sorted(
            (u for u in UNITS if u.lower() == t.text.lower()),
            key=lambda u: sum(a != b for a, b in zip(u, t.text, strict=False)),
        )
        close = lower or difflib.get_close_matches(t.text, list(UNITS), n=1, cutoff=0.6)
        hint = f"did you mean `{close[0]}`?" if close else "units are written like mV, ms, uF/cm^2, mS/cm^2, pA, nS"
        return _Fail(Diagnostic("E106", self.tspan(t), f"unknown unit `{t.text}`", hint))

    def parse_call(self, name_tok: Token):
        self.expect_op("(")
        args = []
        self.enter()
        if not self.at_op(")"):
            args.append(self.parse_comparison())
            while self.at_op(","):
                self.i += 1
                args.append(self.parse_comparison())
        self.depth -= 1
        self.expect_op(")")
        return Call(name_tok.text, tuple(args), self.tspan(name_tok))

    def parse_all(self):
        if not self.toks:
            raise self.fail("expected an expression", None)
        expr = self.parse_comparison()
        t = self.peek()
        if t is not None:
            hint = ""
            after_number = self.i > 0 and self.toks[self.i - 1].kind == "NUMBER"
            if t.kind == "NAME" and lookup_unit(t.text) and t.text in self.model_names and after_number:
                hint = f"`{t.text}` is a name in this model, so it cannot be used as a unit here"
            elif t.kind == "NAME" or t.kind == "NUMBER":
                hint = "is an operator such as `*` missing?"
            raise self.fail(f"unexpected `{t.text}` after the end of the expression", t, hint)
        return expr


def parse_expression(text: str, file: str = "<expression>", line: int = 1, names=()):
    """Return the syntax tree of one expression (raises :class:`ModelError`)."""
    span = Span(file, line, 1, len(text), text)
    try:
        toks = _tokenize(text, span)
        return _ExprParser(toks, span, frozenset(names)).parse_all()
    except _Fail as f:
        raise ModelError([f.diag]) from None
    except RecursionError:
        raise ModelError([Diagnostic("E005", span, "expression nested too deeply")]) from None


# ----------------------------------------------------------------------- statements
_NAME_RE = re.compile(r"^[^\W\d]\w*$")
_ODE_LHS = re.compile(r"^d([^\W\d]\w*)$")


def check_name(name: str, span: Span) -> Diagnostic | None:
    """Return a diagnostic if ``name`` may not name a model quantity."""
    if name.startswith("_"):
        return Diagnostic(
            "E103",
            span,
            f"name `{name}` starts with an underscore",
            "names starting with `_` are reserved for generated code",
        )
    if keyword.iskeyword(name):
        return Diagnostic(
            "E103", span, f"`{name}` is a Python keyword and cannot name a quantity", f"rename it, e.g. `{name}_`"
        )
    if name in KEYWORDS:
        return Diagnostic("E103", span, f"`{name}` is a word of the model language and cannot name a quantity")
    if name in FUNCTIONS:
        return Diagnostic("E103", span, f"`{name}` is a function and cannot name a quantity")
    if not name.isascii():
        return Diagnostic(
            "E103", span, f"name `{name}` has non-ASCII characters", "use ASCII letters, digits and `_` in names"
        )
    return None


def _declared_names(tokens: list[Token]) -> tuple[str, ...]:
    """Return the names a line declares, from its leading tokens (first pass)."""
    if not tokens:
        return ()
    head = tokens[0].text
    if head in ("parameter", "state", "input", "charge", "current") and len(tokens) > 1:
        return (tokens[1].text,)
    if head == "gate" and len(tokens) > 1:
        x = tokens[1].text
        return (x, f"alpha_{x}", f"beta_{x}", f"{x}_inf", f"tau_{x}")
    if tokens[0].kind == "NAME" and len(tokens) > 1 and tokens[1].text == "=":
        return (head,)
    return ()


def split_top_level(tokens: list[Token], separator: str = ",") -> list[list[Token]]:
    """Return the tokens split at ``separator`` outside parentheses."""
    groups: list[list[Token]] = [[]]
    depth = 0
    for t in tokens:
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        if t.text == separator and depth == 0:
            groups.append([])
        else:
            groups[-1].append(t)
    return groups


def parse_model_text(source: str, file: str = "<string>") -> SyntaxTree:
    """Return the syntax tree of a model's text; raise ModelError listing every syntax error."""
    diags: list[Diagnostic] = []
    file_span = Span(file, 1, 1, 1, "")
    if len(source.encode("utf-8", "surrogatepass")) > LIMITS["file_bytes"]:
        raise ModelError(
            [
                Diagnostic(
                    "E004",
                    file_span,
                    f"file is larger than {LIMITS['file_bytes']} bytes",
                    "a model file is a short text; split very large models",
                )
            ]
        )
    if "\x00" in source:
        raise ModelError(
            [
                Diagnostic(
                    "E004",
                    _span_of_offset(source, source.index("\x00"), file),
                    "file contains NUL bytes; is it a binary file?",
                )
            ]
        )
    source = source.lstrip("\ufeff")
    if not source.strip():
        raise ModelError(
            [
                Diagnostic(
                    "E004",
                    file_span,
                    "the file is empty",
                    'a model file starts with e.g. `model MyNeuron "a short description"`',
                )
            ]
        )
    raw_lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")

    # first pass: tokens of every line, and the names the model declares
    lines: list[tuple[int, str, list[Token], Span]] = []
    for lineno, raw in enumerate(raw_lines, start=1):
        span = Span(file, lineno, 1, max(1, len(raw)), raw)
        if len(raw) > LIMITS["line_chars"]:
            diags.append(Diagnostic("E004", span.at(1, 1), f"line longer than {LIMITS['line_chars']} characters"))
            continue
        bad = next((c for c in raw if unicodedata.category(c) in ("Cc", "Cs") and c != "\t"), None)
        if bad is not None:
            diags.append(
                Diagnostic(
                    "E004",
                    span.at(raw.index(bad) + 1, 1),
                    f"control character U+{ord(bad):04X} in the text; is this a binary file?",
                )
            )
            continue
        text = _strip_comment(raw)
        if not text.strip():
            continue
        try:
            toks = _tokenize(text, span)
        except _Fail as f:
            diags.append(f.diag)
            continue
        lines.append((lineno, text, toks, span))
    if len(lines) > LIMITS["statements"]:
        raise ModelError([Diagnostic("E004", file_span, f"more than {LIMITS['statements']} statements")])
    names = frozenset(n for _, _, toks, _ in lines for n in _declared_names(toks))
    names |= frozenset(m.group(1) for _, _, toks, _ in lines if toks and (m := _ODE_LHS.match(toks[0].text)))

    model_name, description, model_span = "", "", None
    kind = "model"
    statements: list[Statement] = []
    for _lineno, _text, toks, span in lines:
        try:
            is_current_header = toks[0].text == "current" and (
                len(toks) == 2 or (len(toks) == 3 and toks[2].kind == "STRING")
            )
            if is_current_header:
                if model_span is not None:
                    raise _Fail(
                        Diagnostic(
                            "E102",
                            span.at(toks[0].col, 7),
                            "a second header line",
                            'a current file starts with one `current Name "description"` line',
                        )
                    )
                kind = "current"
                model_name = toks[1].text
                model_span = span.at(toks[1].col, len(toks[1].text))
                description = toks[2].text[1:-1] if len(toks) == 3 else ""
                continue
            if toks[0].text == "model":
                if model_span is not None:
                    raise _Fail(
                        Diagnostic("E102", span.at(toks[0].col, 5), "a second `model` line", "a file holds one model")
                    )
                if len(toks) < 2 or toks[1].kind != "NAME":
                    raise _Fail(
                        Diagnostic(
                            "E003",
                            span.at(toks[0].col, 5),
                            "`model` needs a name",
                            'write e.g. `model HodgkinHuxley "Squid giant axon"`',
                        )
                    )
                model_name = toks[1].text
                model_span = span.at(toks[1].col, len(toks[1].text))
                rest = toks[2:]
                if rest and rest[0].kind == "STRING" and len(rest) == 1:
                    description = rest[0].text[1:-1]
                elif rest:
                    raise _Fail(
                        Diagnostic(
                            "E003",
                            span.at(rest[0].col, len(rest[0].text)),
                            "unexpected text after the model name",
                            'put a description in double quotes: model Name "description"',
                        )
                    )
                continue
            if toks[0].text == "gate":
                statements.extend(_parse_gate(toks, span, names))
                continue
            statements.append(_parse_statement(toks, span, names))
        except _Fail as f:
            diags.append(f.diag)
        except RecursionError:
            diags.append(Diagnostic("E005", span.at(1, 1), "expression nested too deeply"))
    if diags:
        raise ModelError(diags)
    return SyntaxTree(file, source, model_name, description, model_span, tuple(statements), kind)


def _parse_gate(toks: list[Token], span: Span, names: frozenset[str]) -> list[Statement]:
    """Expand ``gate x: alpha = A, beta = B`` (or ``inf = X, tau = T``) into its statements.

    The gate starts at its steady state at the initial membrane potential and follows
    dx/dt = alpha (1 - x) - beta x  (or (x_inf - x)/tau_x), which exponential Euler solves.
    """
    example = "write e.g. `gate m: alpha = 0.1/ms, beta = 4/ms` or `gate h: inf = …, tau = …`"
    if len(toks) < 3 or toks[1].kind != "NAME" or toks[2].text != ":":
        col = toks[1].col if len(toks) > 1 else toks[0].col
        raise _Fail(Diagnostic("E003", span.at(col, 1), "`gate` needs a name and a colon", example))
    x, xspan = toks[1].text, span.at(toks[1].col, len(toks[1].text))
    if (d := check_name(x, xspan)) is not None:
        raise _Fail(d)
    given: dict[str, tuple[Span, object]] = {}
    for group in split_top_level(toks[3:]):
        if len(group) < 3 or group[0].kind != "NAME" or group[1].text != "=":
            col = group[0].col if group else toks[-1].col
            raise _Fail(Diagnostic("E003", span.at(col, 1), "expected `name = expression` in a gate", example))
        key = group[0].text
        kspan = span.at(group[0].col, len(key))
        if key not in ("alpha", "beta", "inf", "tau"):
            raise _Fail(
                Diagnostic(
                    "E003", kspan, f"unknown gate setting `{key}`", "a gate takes alpha and beta, or inf and tau"
                )
            )
        given[key] = (kspan, _ExprParser(group[2:], span, names).parse_all())
    if set(given) == {"alpha", "beta"}:
        a, b = f"alpha_{x}", f"beta_{x}"
        steady = Binary("/", Name(a, xspan), Binary("+", Name(a, xspan), Name(b, xspan), xspan), xspan)
        rhs = Binary(
            "-",
            Binary("*", Name(a, xspan), Binary("-", Num(Fraction(1), xspan), Name(x, xspan), xspan), xspan),
            Binary("*", Name(b, xspan), Name(x, xspan), xspan),
            xspan,
        )
        defs = [(a, *given["alpha"]), (b, *given["beta"])]
    elif set(given) == {"inf", "tau"}:
        i, tau = f"{x}_inf", f"tau_{x}"
        steady = Name(i, xspan)
        rhs = Binary("/", Binary("-", Name(i, xspan), Name(x, xspan), xspan), Name(tau, xspan), xspan)
        defs = [(i, *given["inf"]), (tau, *given["tau"])]
    else:
        raise _Fail(Diagnostic("E003", xspan, f"gate {x} needs either alpha and beta, or inf and tau", example))
    out = [Statement("expression", span, name, kspan, expr) for name, kspan, expr in defs]
    out.append(Statement("state", span, x, xspan, steady))
    out.append(Statement("ode", span, x, xspan, rhs))
    return out


def _parse_use(toks: list[Token], span: Span, names: frozenset[str]) -> Statement:
    """``use "currents/na_hh" as I_Na (g = 120 mS/cm^2, E = 50 mV)``."""
    example = 'write e.g. `use "currents/na_hh" as I_Na (g = 120 mS/cm^2)`'
    if len(toks) < 4 or toks[1].kind != "STRING" or toks[2].text != "as" or toks[3].kind != "NAME":
        col = toks[1].col if len(toks) > 1 else toks[0].col
        raise _Fail(Diagnostic("E003", span.at(col, 1), "`use` needs a quoted file and `as NAME`", example))
    alias, aspan = toks[3].text, span.at(toks[3].col, len(toks[3].text))
    if (d := check_name(alias, aspan)) is not None:
        raise _Fail(d)
    items = []
    rest = toks[4:]
    if rest:
        if rest[0].text != "(" or rest[-1].text != ")":
            raise _Fail(
                Diagnostic(
                    "E003",
                    span.at(rest[0].col, len(rest[0].text)),
                    "settings of a used current go in parentheses",
                    example,
                )
            )
        for group in split_top_level(rest[1:-1]):
            if not group:
                continue
            if len(group) < 3 or group[0].kind != "NAME" or group[1].text != "=":
                raise _Fail(
                    Diagnostic("E003", span.at(group[0].col, len(group[0].text)), "expected `name = value`", example)
                )
            items.append(
                (
                    group[0].text,
                    span.at(group[0].col, len(group[0].text)),
                    _ExprParser(group[2:], span, names).parse_all(),
                )
            )
    return Statement(
        "use",
        span,
        alias,
        aspan,
        path=toks[1].text[1:-1],
        path_span=span.at(toks[1].col, len(toks[1].text)),
        items=tuple(items),
    )


def _parse_statement(toks: list[Token], span: Span, names: frozenset[str]) -> Statement:
    head = toks[0]

    def expr_of(sub: list[Token]):
        return _ExprParser(sub, span, names).parse_all()

    def name_at(k: int, what: str) -> tuple[str, Span]:
        if len(toks) <= k or toks[k].kind != "NAME":
            t = toks[k] if len(toks) > k else None
            col = t.col if t else len(span.text.rstrip()) + 1
            raise _Fail(Diagnostic("E003", span.at(col, len(t.text) if t else 1), f"`{head.text}` needs {what}"))
        name_span = span.at(toks[k].col, len(toks[k].text))
        if (d := check_name(toks[k].text, name_span)) is not None:
            raise _Fail(d)
        return toks[k].text, name_span

    def expect(k: int, allowed: tuple[str, ...], message: str, hint: str = "") -> str:
        """Return token k's text if it is one of ``allowed``, else fail with ``message`` at it."""
        if len(toks) > k and toks[k].text in allowed:
            return toks[k].text
        t = toks[k] if len(toks) > k else None
        col = t.col if t else len(span.text.rstrip()) + 1
        raise _Fail(Diagnostic("E003", span.at(col, len(t.text) if t else 1), message, hint))

    def expect_eq(k: int, example: str):
        expect(k, ("=",), f"expected `=` in `{head.text}` statement", f"write e.g. `{example}`")

    kind = head.text
    if kind in ("parameter", "state", "input", "charge"):
        examples = {
            "parameter": "parameter g_L = 0.3 mS/cm^2",
            "state": "state V = -65 mV",
            "input": "input I_ext = 0 uA/cm^2",
            "charge": "charge Q = C_m * V",
        }
        name, nspan = name_at(1, "a name")
        expect_eq(2, examples[kind])
        return Statement(kind, span, name, nspan, expr_of(toks[3:]))
    if kind == "current":
        name, nspan = name_at(1, "a name")
        expect_eq(2, "current I_L = g_L * (V - E_L)  outward")
        body = toks[3:]
        last = body[-1] if body else None
        if last is None or last.text not in ("inward", "outward"):
            col = last.col if last else len(span.text.rstrip()) + 1
            raise _Fail(
                Diagnostic(
                    "E003",
                    span.at(col, len(last.text) if last else 1),
                    f"current {name} needs a direction at the end of the line: `inward` or `outward`",
                    "outward currents (e.g. K+ leaving) lower V; inward currents (e.g. Na+ entering, injected current) raise it",
                )
            )
        body = body[:-1]
        if len(body) == 1 and body[0].text == "input":
            return Statement("current", span, name, nspan, None, last.text, is_input_current=True)
        return Statement("current", span, name, nspan, expr_of(body), last.text)
    if kind == "threshold":
        return Statement("threshold", span, expr=expr_of(toks[1:]), name_span=span.at(head.col, len(head.text)))
    if kind == "refractory":
        return Statement("refractory", span, expr=expr_of(toks[1:]), name_span=span.at(head.col, len(head.text)))
    if kind == "reset":
        name, nspan = name_at(1, "a state variable to reset, e.g. `reset V = V_reset`")
        op = expect(2, ("=", "+=", "-=", "*=", "/="), "expected `=`, `+=`, `-=`, `*=` or `/=` after the reset variable")
        return Statement("reset", span, name, nspan, expr_of(toks[3:]), op=op)
    if kind == "use":
        return _parse_use(toks, span, names)
    if kind == "synapse":
        # synapse exc: g_e += w   (what a presynaptic spike of weight w arriving at `exc` does)
        receptor, _ = name_at(1, "a receptor name, e.g. `synapse exc: g_e += w`")
        example = "write e.g. `synapse exc: g_e += w`"
        expect(2, (":",), "expected `:` after the receptor name", example)
        target, tspan = name_at(3, "a state variable after the `:`, e.g. `synapse exc: g_e += w`")
        expect(4, ("+=", "-="), "a synapse adds to a state: expected `+=` or `-=`", example)
        return Statement("synapse", span, target, tspan, expr_of(toks[5:]), op=toks[4].text, receptor=receptor)
    if kind == "method":
        # `method rk4` (the model's default) or `method m, h, n: exponential_euler` (those states')
        colon = next((k for k, t in enumerate(toks) if t.text == ":"), None)
        states = []
        if colon is not None:
            names = toks[1:colon]
            # NAME , NAME , ... NAME: the first token out of place gets the caret
            wrong = [t for k, t in enumerate(names) if (t.kind == "NAME") != (k % 2 == 0) or (k % 2 and t.text != ",")]
            if wrong or len(names) % 2 == 0:
                t = wrong[0] if wrong else toks[colon]
                raise _Fail(
                    Diagnostic(
                        "E003",
                        span.at(t.col, len(t.text)),
                        "`method` before `:` takes the names of states separated by commas",
                        "write e.g. `method m, h, n: exponential_euler`",
                    )
                )
            states = [(t.text, span.at(t.col, len(t.text))) for t in names[::2]]
        scheme = toks[colon + 1 :] if colon is not None else toks[1:]
        if len(scheme) != 1 or scheme[0].kind != "NAME":
            raise _Fail(
                Diagnostic(
                    "E003",
                    span.at(head.col, len(head.text)),
                    "`method` needs one scheme name, e.g. `method exponential_euler` or `method V: rk4`",
                )
            )
        return Statement(
            "method", span, scheme[0].text, span.at(scheme[0].col, len(scheme[0].text)), items=tuple(states)
        )
    # dX/dt = expr
    if (
        len(toks) >= 4
        and head.kind == "NAME"
        and (m := _ODE_LHS.match(head.text))
        and toks[1].text == "/"
        and toks[2].text == "dt"
    ):
        if len(toks) < 4 or toks[3].text != "=":
            raise _Fail(Diagnostic("E003", span.at(toks[2].col, 2), "expected `=` after `dX/dt`"))
        target = m.group(1)
        tspan = span.at(head.col + 1, len(target))
        return Statement("ode", span, target, tspan, expr_of(toks[4:]))
    # NAME = expr
    if head.kind == "NAME" and len(toks) >= 2 and toks[1].text == "=":
        name, nspan = name_at(0, "a name")
        return Statement("expression", span, name, nspan, expr_of(toks[2:]))
    hint = "statements start with model, parameter, state, input, charge, current, threshold, reset, refractory, synapse, method, `dX/dt =` or `name =`"
    if head.kind == "NAME":
        import difflib

        close = difflib.get_close_matches(head.text, sorted(KEYWORDS - {"t", "dt", "inward", "outward"}), n=1)
        if close:
            hint = f"did you mean `{close[0]}`?"
    raise _Fail(
        Diagnostic(
            "E002",
            span.at(head.col, len(head.text)),
            f"cannot understand this line (it starts with `{head.text}`)",
            hint,
        )
    )


def read_source(path: str | Path) -> tuple[str, str]:
    """Return (display name, text) of a model file; raise ModelError if it cannot be read."""
    p = Path(path)
    shown = str(path)
    span = Span(shown, 1, 1, 1, "")
    try:
        st = p.stat()  # follows symbolic links: what counts is what they point to
        if stat.S_ISDIR(st.st_mode):
            raise ModelError([Diagnostic("E004", span, f"{shown} is a directory, not a model file")])
        if not stat.S_ISREG(st.st_mode):  # a FIFO or a device would block or never end
            kind = "a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
            raise ModelError(
                [Diagnostic("E004", span, f"{shown} is {kind}, not a model file", "give the path of a text file")]
            )
        size = st.st_size
        if size <= LIMITS["file_bytes"]:
            with p.open("rb") as f:  # never more than the limit: /dev/zero has size 0 and no end
                data = f.read(LIMITS["file_bytes"] + 1)
            size = len(data)
        if size > LIMITS["file_bytes"]:
            raise ModelError(
                [Diagnostic("E004", span, f"file is larger than the limit of {LIMITS['file_bytes']} bytes")]
            )
    except FileNotFoundError:
        raise ModelError([Diagnostic("E004", None, f"no such file: {shown}")]) from None
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        raise ModelError(
            [Diagnostic("E004", None, f"cannot read {shown}: {getattr(e, 'strerror', None) or e}")]
        ) from None
    if _looks_utf16(data):
        raise ModelError(
            [
                Diagnostic(
                    "E004",
                    span,
                    "file looks like UTF-16 text (a byte-order mark or a NUL byte after every character)",
                    "save the file as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`, or 'UTF-8' in the editor's save dialog)",
                )
            ]
        )
    if b"\x00" in data:
        text = data.decode("utf-8", "replace")
        raise ModelError(
            [
                Diagnostic(
                    "E004",
                    _span_of_offset(text, text.index("\x00"), shown),
                    "file contains NUL bytes; is it a binary file?",
                )
            ]
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        # point at the bad byte: decode what precedes it, and show its line with U+FFFD
        before = data[: e.start].decode("utf-8", "replace")
        span = _span_of_offset(before + data[e.start :].decode("utf-8", "replace"), len(before), shown)
        raise ModelError(
            [
                Diagnostic(
                    "E004",
                    span,
                    f"file is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})",
                    "save the file as UTF-8",
                )
            ]
        ) from None
    return shown, text


def _looks_utf16(data: bytes) -> bool:
    """Return True for UTF-16 text: a byte-order mark, or NUL in every other byte (ASCII text in UTF-16)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    head = data[:200]
    even, odd = head[0::2], head[1::2]
    return len(head) >= 4 and (even.count(0) == len(even) or odd.count(0) == len(odd)) and b"\x00\x00" not in head


def _span_of_offset(text: str, offset: int, file: str) -> Span:
    """Return the span of the character at ``offset`` of ``text``, with its line (for binary junk)."""
    if text.startswith("\ufeff"):
        text, offset = text[1:], max(0, offset - 1)
    before = text[:offset].replace("\r\n", "\n").replace("\r", "\n")
    rest = text[offset:].replace("\r\n", "\n").replace("\r", "\n")
    start = before.rfind("\n") + 1
    line_text = before[start:] + rest.split("\n", 1)[0]
    return Span(file, before.count("\n") + 1, len(before) - start + 1, 1, line_text[: LIMITS["line_chars"]])


def parse_model(path: str | Path) -> SyntaxTree:
    """Return the syntax tree of the model file at ``path``."""
    shown, text = read_source(path)
    return parse_model_text(text, shown)

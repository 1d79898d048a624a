"""The network file's syntax: its statements, read into a :class:`NetworkSpec` (nothing built)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from .. import language as L
from ..diagnostics import Diagnostic, ModelError, Span
from ..protocols import SIGNATURES

__all__ = ["Item", "FileRef", "ProtocolText", "NetStatement", "NetworkSpec", "parse_network_text"]

RULES = {
    "all_to_all": 0,
    "one_to_one": 0,
    "fixed_probability": 1,
    "fixed_indegree": 1,
    "fixed_total_number": 1,
    "from_file": 1,
}
DISTRIBUTIONS = {"uniform": 2, "normal": 2}
# settings a call takes after its arguments, as in normal(1.5 ms, 0.75 ms, min = 0.1 ms)
CALL_SETTINGS = {
    "uniform": ("min", "max"),
    "normal": ("min", "max"),
    "fixed_total_number": ("connection_probability",),
}


@dataclass(frozen=True)
class Item:
    """``key = value`` (or a bare name) inside a statement's parentheses."""

    key: str
    value: object  # expression tree, or None for a bare name
    span: Span


@dataclass(frozen=True)
class FileRef:
    """A quoted file name, as in ``from_file("pairs.csv")``."""

    path: str
    span: Span


@dataclass(frozen=True)
class ProtocolText:
    """The text of an input protocol (``step(…)``, ``sine(…)``, …) in an ``input`` statement."""

    text: str
    span: Span


@dataclass(frozen=True)
class NetStatement:
    kind: str  # population connect poisson input record
    span: Span
    name: str = ""  # population name / target
    name_span: Span | None = None
    source: str = ""  # connect: source population
    source_span: Span | None = None
    path: str = ""  # population: model file
    path_span: Span | None = None
    items: tuple[Item, ...] = ()

    def item(self, key: str) -> Item | None:
        return next((i for i in self.items if i.key == key), None)


@dataclass(frozen=True)
class NetworkSpec:
    file: str
    name: str
    description: str
    statements: tuple[NetStatement, ...] = field(default=())

    def of_kind(self, kind: str) -> list[NetStatement]:
        return [s for s in self.statements if s.kind == kind]


class _Fail(Exception):
    def __init__(self, diag: Diagnostic):
        self.diag = diag


def _items(toks: list[L.Token], span: Span, raw_protocols: bool = False) -> tuple[Item, ...]:
    """Parse ``( key = expr, name, ... )`` from tokens starting at the opening parenthesis."""
    end_col = len(span.text.rstrip()) + 1
    if not toks or toks[0].text != "(":
        col = toks[0].col if toks else end_col
        raise _Fail(Diagnostic("E003", span.at(col, 1), "expected `(` with the statement's settings, e.g. (n = 100)"))
    if toks[-1].text != ")":
        raise _Fail(
            Diagnostic("E003", span.at(toks[-1].col, len(toks[-1].text)), "expected `)` at the end of the line")
        )
    groups = L.split_top_level(toks[1:-1])
    out = []
    for g in groups:
        if not g:
            continue
        key = g[0]
        if key.kind != "NAME":
            raise _Fail(
                Diagnostic("E003", span.at(key.col, len(key.text)), f"expected a setting name, found `{key.text}`")
            )
        kspan = span.at(key.col, len(key.text))
        if len(g) == 1:
            out.append(Item(key.text, None, kspan))
            continue
        if g[1].text != "=":
            raise _Fail(Diagnostic("E003", span.at(g[1].col, len(g[1].text)), f"expected `=` after `{key.text}`"))
        v = g[2:]
        if len(v) == 4 and v[0].text == "from_file" and v[1].text == "(" and v[2].kind == "STRING" and v[3].text == ")":
            value = L.Call(
                "from_file", (FileRef(v[2].text[1:-1], span.at(v[2].col, len(v[2].text))),), span.at(v[0].col, 9)
            )
        elif v and v[0].text in CALL_SETTINGS and _closes_at_end(v):
            value = _call_with_settings(v, span)
        elif raw_protocols and v and v[0].text in SIGNATURES and len(v) > 1 and v[1].text == "(":
            # an input protocol such as step(200 pA, on=100 ms): resolved by modelgen.protocols at run time
            start, end = v[0].col, v[-1].col + len(v[-1].text)
            value = ProtocolText(span.text[start - 1 : end - 1], span.at(start, end - start))
        else:
            value = L._ExprParser(v, span, frozenset()).parse_all()
        out.append(Item(key.text, value, kspan))
    return tuple(out)


def _closes_at_end(toks: list[L.Token]) -> bool:
    """Return whether ``toks`` are ``name( … )``, the parenthesis after the name closing at the last token."""
    if len(toks) < 3 or toks[1].text != "(":
        return False
    depth = 0
    for i, t in enumerate(toks[1:], start=1):
        depth += {"(": 1, ")": -1}.get(t.text, 0)
        if depth == 0:
            return i == len(toks) - 1
    return False


def _call_with_settings(toks: list[L.Token], span: Span) -> L.Call:
    """Parse ``name(arg, ..., key = value, ...)``: arguments are expression trees, settings are :class:`Item` s."""
    args: list = []
    for g in L.split_top_level(toks[2:-1]):
        if len(g) >= 2 and g[0].kind == "NAME" and g[1].text == "=":
            if len(g) == 2:
                raise _Fail(Diagnostic("E003", span.at(g[1].col, 1), f"`{g[0].text} =` needs a value"))
            args.append(
                Item(g[0].text, L._ExprParser(g[2:], span, frozenset()).parse_all(), span.at(g[0].col, len(g[0].text)))
            )
        elif args and isinstance(args[-1], Item):
            raise _Fail(
                Diagnostic(
                    "E003",
                    span.at(g[0].col, len(g[0].text)) if g else span.at(toks[-1].col, 1),
                    f"an argument of {toks[0].text}() after a setting",
                    "write the settings (name = value) last",
                )
            )
        elif g:
            args.append(L._ExprParser(g, span, frozenset()).parse_all())
    return L.Call(toks[0].text, tuple(args), span.at(toks[0].col, len(toks[0].text)))


def parse_network_text(source: str, file: str = "<network>") -> NetworkSpec:
    """Return the statements of a network file; raise ModelError listing every syntax error."""
    diags: list[Diagnostic] = []
    name, description = "", ""
    statements: list[NetStatement] = []
    if "\x00" in source:
        raise ModelError([Diagnostic("E004", Span(file, 1, 1, 1, ""), "file contains NUL bytes; is it a binary file?")])
    for lineno, raw in enumerate(source.lstrip("\ufeff").replace("\r\n", "\n").split("\n"), start=1):
        span = Span(file, lineno, 1, max(1, len(raw)), raw)
        text = L._strip_comment(raw)
        if not text.strip():
            continue
        try:
            toks = L._tokenize(text, span)
            head = toks[0]
            if head.text == "network":
                if len(toks) < 2 or toks[1].kind != "NAME":
                    raise _Fail(Diagnostic("E003", span.at(head.col, 7), "`network` needs a name"))
                name = toks[1].text
                if len(toks) > 2 and toks[2].kind == "STRING":
                    description = toks[2].text[1:-1]
                continue
            if head.text not in ("population", "connect", "poisson", "input", "record"):
                close = difflib.get_close_matches(
                    head.text, ["network", "population", "connect", "poisson", "input", "record"], n=1
                )
                raise _Fail(
                    Diagnostic(
                        "E002",
                        span.at(head.col, len(head.text)),
                        f"cannot understand this line (it starts with `{head.text}`)",
                        f"did you mean `{close[0]}`?"
                        if close
                        else "network statements: network, population, connect, poisson, input, record",
                    )
                )
            if len(toks) < 2 or toks[1].kind != "NAME":
                raise _Fail(
                    Diagnostic("E003", span.at(head.col, len(head.text)), f"`{head.text}` needs a population name")
                )
            pname, pspan = toks[1].text, span.at(toks[1].col, len(toks[1].text))
            if head.text == "population":
                if len(toks) < 4 or toks[2].text != "=" or toks[3].kind != "STRING":
                    raise _Fail(
                        Diagnostic("E003", pspan, 'write a population as `population E = "model.model" (n = 100)`')
                    )
                path = toks[3].text[1:-1]
                statements.append(
                    NetStatement(
                        "population",
                        span,
                        pname,
                        pspan,
                        path=path,
                        path_span=span.at(toks[3].col, len(toks[3].text)),
                        items=_items(toks[4:], span),
                    )
                )
            elif head.text == "connect":
                if len(toks) < 4 or toks[2].text != "to" or toks[3].kind != "NAME":
                    raise _Fail(
                        Diagnostic(
                            "E003",
                            pspan,
                            "write a projection as `connect E to I (receptor = exc, rule = fixed_probability(0.02), weight = 1 nS)`",
                        )
                    )
                statements.append(
                    NetStatement(
                        "connect",
                        span,
                        toks[3].text,
                        span.at(toks[3].col, len(toks[3].text)),
                        pname,
                        pspan,
                        items=_items(toks[4:], span),
                    )
                )
            else:
                items = _items(toks[2:], span, raw_protocols=head.text == "input")
                statements.append(NetStatement(head.text, span, pname, pspan, items=items))
        except _Fail as f:
            diags.append(f.diag)
        except L._Fail as f:
            diags.append(f.diag)
    if not name and not diags:
        diags.append(
            Diagnostic(
                "E207",
                Span(file, 1, 1, 1, source.split("\n", 1)[0]),
                "the file has no `network` line",
                'start it with e.g. `network Demo "two neurons"`',
            )
        )
    if diags:
        raise ModelError(diags)
    return NetworkSpec(file, name, description, tuple(statements))

"""Diagnostics: positions in the user's text, error values, and their display.

Errors are values (:class:`Diagnostic`); a stage that finds problems collects all of
them and raises one :class:`ModelError` carrying the list, so a user sees every problem
of a file in one run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

__all__ = ["Span", "Diagnostic", "ModelError", "CODES", "format_diagnostics"]


@dataclass(frozen=True)
class Span:
    """A range of one line of a source file: 1-based line and column, length in characters."""

    file: str
    line: int
    col: int
    length: int = 1
    text: str = field(default="", compare=False, repr=False)  # the whole source line

    def at(self, col: int, length: int) -> Span:
        """Return a span on the same line starting at 1-based column ``col``."""
        return Span(self.file, self.line, col, max(1, length), self.text)


# One table of diagnostic codes: code -> (severity, short title). The README lists them.
CODES: dict[str, tuple[str, str]] = {
    # syntax
    "E001": ("error", "syntax error in an expression"),
    "E002": ("error", "unknown statement"),
    "E003": ("error", "malformed statement"),
    "E004": ("error", "unreadable file (not UTF-8, binary, empty or too large)"),
    "E005": ("error", "expression too deep or too long"),
    # names
    "E101": ("error", "unknown name"),
    "E102": ("error", "duplicate definition"),
    "E103": ("error", "name not allowed"),
    "E104": ("error", "unknown function or wrong number of arguments"),
    "E105": ("error", "circular definition"),
    "E106": ("error", "unknown unit"),
    # model structure
    "E201": ("error", "state variable without an equation"),
    "E202": ("error", "equation for something that is not a state variable"),
    "E203": ("error", "no charge relation / membrane potential"),
    "E204": ("error", "membrane equation cannot be derived"),
    "E205": ("error", "value must be a constant"),
    "E206": ("error", "bad event statement"),
    "E207": ("error", "missing model name"),
    "E208": ("error", "no state variables (nothing to simulate)"),
    "E209": ("error", "bad per-state method (unknown state or scheme, a state given two, a scheme that cannot apply)"),
    # units
    "E301": ("error", "dimension mismatch"),
    "E302": ("error", "argument must be dimensionless"),
    "E303": ("error", "bad exponent"),
    "E304": ("error", "number out of range (overflow, division by zero or not a real number)"),
    "E305": (
        "error",
        "value not physically possible (a capacitance or time constant <= 0, a negative refractory period)",
    ),
    "E306": ("error", "units that differ by a factor the .mod file does not apply (NEURON computes another number)"),
    # warnings
    "W401": ("warning", "parameter never used"),
    "W402": ("warning", "current does not depend on anything that changes"),
    "W403": ("warning", "gate initial value outside [0, 1]"),
    "W404": ("warning", "unit name shadowed by a model name"),
    # run time (CLI options, inputs)
    "E501": ("error", "bad command-line value"),
    # importing NMODL (.mod) files
    "E601": ("error", "NMODL construct that cannot be imported (KINETIC, NET_RECEIVE, POINTER, VERBATIM, ...)"),
    "E602": ("error", "NMODL syntax error"),
}


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a model: a code from :data:`CODES`, where, what, and what to do."""

    code: str
    span: Span | None
    message: str
    hint: str = ""

    @property
    def severity(self) -> str:
        return CODES[self.code][0]

    def format(self) -> str:
        """Return the compiler-style text: ``file:line:col: error[E101]: …``, line, caret, hint."""
        message, hint = _printable(self.message), _printable(self.hint)
        if self.span is None:
            head = f"{self.severity}[{self.code}]: {message}"
            return head + (f"\n  hint: {hint}" if hint else "")
        s = self.span
        head = f"{_printable(s.file)}:{s.line}:{s.col}: {self.severity}[{self.code}]: {message}"
        lines = [head]
        if s.text:
            # one character per column, and no control characters reach the terminal
            shown = "".join(c if c.isprintable() else ("\ufffd" if c != "\t" else " ") for c in s.text)
            gutter = f"{s.line:>5} | "
            lines.append(gutter + shown)
            caret_len = max(1, min(s.length, len(shown) - s.col + 1))
            lines.append(" " * (len(gutter) - 2) + "| " + " " * (s.col - 1) + "^" * caret_len)
        if hint:
            lines.append(f"  hint: {hint}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        s = self.span
        return {
            "file": s.file if s else None,
            "line": s.line if s else None,
            "col": s.col if s else None,
            "length": s.length if s else None,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


def _printable(text: str) -> str:
    """Return ``text`` with unprintable characters (escapes, bidi overrides, NUL) spelled as ``\\uXXXX``."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


class ModelError(Exception):
    """Raised with every error diagnostic of a stage (warnings travel along)."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__(format_diagnostics(self.diagnostics))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def format_diagnostics(diagnostics: list[Diagnostic], as_json: bool = False) -> str:
    """Return all diagnostics as text (one block each) or as a JSON array."""
    if as_json:
        return json.dumps([d.to_json() for d in diagnostics], indent=2)
    return "\n".join(d.format() for d in diagnostics)


def sort_key(d: Diagnostic) -> tuple:
    s = d.span
    return (s.file, s.line, s.col, d.code) if s else ("", 0, 0, d.code)

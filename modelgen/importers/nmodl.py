"""Import a NEURON channel (an NMODL ``.mod`` file) as a modelgen current file.

The file is parsed by the NMODL framework that ships with NEURON (``neuron.nmodl``, the
``nmodl`` extra); this module walks its syntax tree and writes language text:

- ``PARAMETER``\\ s become parameters with their units; reversal potentials and concentrations an
  ion ``READ``\\ s become parameters with NEURON's defaults (``ena = 50 mV``, ``ek = -77 mV``, …);
- ``STATE``\\ s become states, their ``DERIVATIVE`` equations ODEs, their ``INITIAL`` values
  initial values; ``v`` is the model's ``V`` and ``celsius`` its ``temperature``;
- ``PROCEDURE``\\ s and ``FUNCTION``\\ s are executed symbolically at their call sites: every
  assignment becomes a named expression, ``if/else`` becomes ``where(…)``, a ``TABLE`` is dropped
  (the formula stays), and the ``|x| < eps`` branch of a ``vtrap``-type function is dropped
  because modelgen computes the removable 0/0 of ``x/(exp(x/y) - 1)`` through ``exprel``;
- ion currents and ``NONSPECIFIC_CURRENT``\\ s assigned in ``BREAKPOINT`` become ``outward``
  currents (NMODL's convention) per area.

Numbers follow NEURON exactly: where an equation mixes quantities with bare numbers (as in
``exp(-(v + 40)/10)``) it is written with each quantity's number in the unit the .mod file
declares (``v`` is ``V / mV``), as NEURON computes it, and the result takes its declared unit.
Where every name in an equation has a declared unit and no bare number needs one, the equation
is written with units, and the declared units must agree: dimensions (E301) and the factor
between them (E306); such errors, and any found when modelgen checks the result, point into
the .mod file. Constructs with no declarative equivalent are refused (E601) with their position.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import sympy

from ..checks import check_model_values
from ..compose import expand_uses
from ..diagnostics import Diagnostic, ModelError, Span
from ..language import check_name, parse_model_text, read_source
from ..model import build_model
from ..units import DIMENSIONLESS, Dimension, describe
from .nmodl_units import (
    ION_UNITS,
    NEURON_ION_DEFAULTS,
    UNIT_ALIASES,
    UNITS_CONSTANTS,
    VALENCES,
    number_text,
    quantity,
    safe_scale,
    translate_unit,
    unit_dim,
    with_unit,
    wrap,
)

__all__ = ["ImportedChannel", "import_mod", "write_imported", "NEURON_ION_DEFAULTS"]

# NMODL function -> language function (same meaning)
_FUNCTIONS = {
    "exp": "exp",
    "log": "log",
    "log10": "log10",
    "sqrt": "sqrt",
    "fabs": "abs",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "tanh": "tanh",
    "sinh": "sinh",
    "cosh": "cosh",
    "expm1": "expm1",
    "log1p": "log1p",
    "fmin": "min",
    "fmax": "max",
}

# Blocks and statements with no declarative equivalent: node type -> why
_REFUSED = {
    "KineticBlock": "KINETIC schemes are reaction systems; write them as ODEs of the states (a DERIVATIVE block)",
    "NetReceiveBlock": "NET_RECEIVE handles events of a point process; import density channels only",
    "Verbatim": "VERBATIM holds C code, which cannot be read as equations",
    "FunctionTableBlock": "FUNCTION_TABLE values come from tables filled at run time by hoc",
    "LinearBlock": "LINEAR blocks are solved simultaneous equations",
    "NonLinearBlock": "NONLINEAR blocks are solved simultaneous equations",
    "DiscreteBlock": "DISCRETE blocks update states by steps of their own",
    "LongitudinalDiffusionBlock": "longitudinal diffusion couples compartments; a modelgen current has one compartment",
    "LonDiffuse": "longitudinal diffusion couples compartments; a modelgen current has one compartment",
    "BeforeBlock": "BEFORE blocks run code at points of NEURON's time step",
    "AfterBlock": "AFTER blocks run code at points of NEURON's time step",
    "ConstructorBlock": "CONSTRUCTOR runs C code",
    "DestructorBlock": "DESTRUCTOR runs C code",
    "Pointer": "POINTER reads a variable of another mechanism by address; bind it in the model's `use` line instead",
    "BbcorePointer": "BBCOREPOINTER reads memory of another mechanism",
    "ElectrodeCurrent": "ELECTRODE_CURRENT is an electrode's current, not a membrane channel's",
    "WatchStatement": "WATCH triggers events of a point process",
    "ForNetcon": "FOR_NETCONS loops over network connections",
    "IndependentBlock": "INDEPENDENT changes the integration variable (modelgen integrates in time)",
    "TableStatement": "",  # kept: the formula is used, the table dropped (listed so the walker knows it)
}


@dataclasses.dataclass(frozen=True)
class ImportedChannel:
    """A channel read from a .mod file: its name (the SUFFIX), the current file's text, and where it came from."""

    name: str
    current_text: str
    source: str  # the .mod file as given

    def model_text(self, current_path: str) -> str:
        """Return a single-compartment model using the current file at ``current_path`` as NEURON runs it."""
        alias = f"I_{self.name}"
        return "\n".join(
            [
                f"# A single compartment with the {self.name} mechanism imported from {Path(self.source).name},",
                "# as NEURON runs a section: cm = 1 uF/cm2, v_init = -65 mV, celsius = 6.3 degC.",
                f'model {self.name}_cell "single compartment with {self.name} ({Path(self.source).name})"',
                "parameter C_m = 1 uF/cm^2",
                "parameter temperature = 6.3 degC",
                "state V = -65 mV",
                "charge Q = C_m * V",
                f'use "{current_path}" as {alias}',
                "current I_ext = input   inward",
                "threshold V > 0 mV",
                "",
            ]
        )


# ---------------------------------------------------------------- positions in the .mod file


class _Locator:
    """Positions in the .mod text (the NMODL Python binding gives nodes no positions): searches
    its text with comments blanked out, block by block, in source order."""

    def __init__(self, text: str, file: str):
        self.text, self.file = text, file
        self.lines = text.splitlines()
        clean = re.sub(r"(?ms)^\s*COMMENT\b.*?^\s*ENDCOMMENT\b", lambda m: re.sub(r"[^\n]", " ", m.group()), text)
        self.clean = re.sub(r"[:?][^\n]*", lambda m: " " * len(m.group()), clean)

    def span(self, offset: int, length: int = 1) -> Span:
        line = self.text.count("\n", 0, offset) + 1
        col = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        text = self.lines[line - 1] if line - 1 < len(self.lines) else ""
        return Span(self.file, line, col, max(1, length), text)

    def find(self, pattern: str, start: int = 0) -> re.Match | None:
        return re.compile(pattern).search(self.clean, start)

    def block(self, keyword: str, name: str = "") -> int:
        """Return the offset of ``KEYWORD name`` (a block's header), or 0."""
        m = self.find(rf"\b{keyword}\b" + (rf"\s+{re.escape(name)}\b" if name else ""))
        return m.start() if m else 0


# ---------------------------------------------------------------- values and units


@dataclasses.dataclass(frozen=True)
class _Value:
    """A value during symbolic execution: language text, and the unit of that text (None: a bare
    number, which is NEURON's number itself); ``number`` is the text of NEURON's number if named."""

    text: str
    unit: str | None = None
    number: str | None = None


def _number_of(v: _Value) -> str:
    """Return the text of NEURON's number for ``v`` (its value in its declared unit)."""
    if v.number is not None:
        return v.number
    if v.unit in (None, "1"):
        return v.text
    if v.unit == "degC":
        return f"({wrap(v.text)}/K - 273.15)"
    if v.unit.startswith("1/"):
        rest = v.unit[2:]
        return f"{wrap(v.text)}*{rest if re.fullmatch(r'[A-Za-z]+', rest) else '(' + rest + ')'}"
    unit = v.unit if re.fullmatch(r"[A-Za-z]+", v.unit) else f"({v.unit})"
    return f"{wrap(v.text)}/{unit}"


def _float(node) -> float:
    return float(str(node.eval() if hasattr(node, "eval") else node.value))


class _Importer:
    def __init__(self, text: str, file: str):
        from neuron.nmodl import dsl  # the `nmodl` extra; imported here so modelgen never needs it otherwise

        self.dsl = dsl
        self.file = file
        self.loc = _Locator(text, file)
        self.diags: list[Diagnostic] = []
        try:
            self.tree = dsl.NmodlDriver().parse_string(text)
        except RuntimeError as e:
            raise ModelError([self._syntax_error(str(e))]) from None
        self.blocks = {}
        for b in self.tree.blocks:
            self.blocks.setdefault(type(b).__name__, []).append(b)
        self.lines: list[tuple[str, Span | None]] = []  # output lines and where in the .mod they come from
        self.used: set[str] = set()
        self.globals: dict[str, _Value] = {}
        self.units: dict[str, str | None] = {}  # declared units of the .mod's names
        self.memo: dict[tuple, dict[str, _Value]] = {}
        self.notes: list[str] = []
        # unit names the imported text writes, which its names must not hide (a gate `m` may stay `m`)
        self.unit_words = {"mV", "ms", "K", "mA", "cm", "S", "mM", "um", "uF", "degC"}

    # -- errors
    def _syntax_error(self, message: str) -> Diagnostic:
        m = re.search(r"Location\s*:\s*(\d+)\.(\d+)(?:-(\d+))?", message)
        first = message.strip().splitlines()[0]
        first = re.sub(r"^NMODL Parser Error\s*:\s*", "", re.sub(r"\s*\[Location.*", "", first))
        span = None
        if m:
            line, col = int(m.group(1)), int(m.group(2))
            end = int(m.group(3) or col)
            offset = sum(len(s) + 1 for s in self.loc.text.split("\n")[: line - 1]) + col - 1
            span = self.loc.span(min(offset, len(self.loc.text)), end - col + 1)
        return Diagnostic("E602", span, f"NMODL syntax error: {first}", "the file must compile with nrnivmodl")

    def refuse(self, offset: int, length: int, message: str, hint: str = "") -> None:
        self.diags.append(Diagnostic("E601", self.loc.span(offset, length), message, hint))

    # -- output
    def name_for(self, want: str) -> str:
        """Return an unused language name for the .mod's ``want`` (renamed if the language reserves it)."""
        base = want.lstrip("_") or "x"
        if check_name(base, Span("", 1, 1)) is not None or base in self.unit_words:
            base += "_"
        name, k = base, 2
        while name in self.used:
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        return name

    def emit(self, text: str, span: Span | None) -> None:
        self.lines.append((text, span))

    # -- translation of expressions
    def names(self, node) -> list[str]:
        from neuron.nmodl.dsl import ast, visitor

        return [n.get_node_name() for n in visitor.AstLookupVisitor().lookup(node, ast.AstNodeType.VAR_NAME)]

    def lookup(self, name: str, scope: dict[str, _Value], offset: int) -> _Value:
        if name in scope:
            return scope[name]
        if name in self.globals:
            return self.globals[name]
        if name == "dt":
            self.refuse(offset, 2, "`dt` in an equation: the file integrates by hand", "use a DERIVATIVE block")
        elif name in ("area", "diam"):
            self.refuse(offset, len(name), f"`{name}`: the channel depends on the compartment's geometry")
        else:
            self.refuse(offset, len(name), f"`{name}` is read but never given a value")
        return _Value("0")

    def dims(self, node, scope) -> tuple[Dimension, sympy.Expr] | None:
        """Return (dimension, factor to internal units) of ``node`` with every name in its declared unit, or
        None where a bare number must take a unit (as NMODL allows) or a name has none."""
        t = type(node).__name__
        if t in ("ParenExpression", "WrappedExpression"):
            return self.dims(node.expression, scope)
        if t == "DoubleUnit":  # a number with its unit, `10 (degC)`
            return unit_dim(translate_unit(node.unit.get_node_name(), self.unit_aliases))
        if t in ("Integer", "Double", "Float"):
            x = _float(node)
            # small whole numbers (2*F, 1 - m) are pure numbers; others may be factors of units, and 0 takes any unit
            return (DIMENSIONLESS, sympy.Integer(1)) if x == int(x) and 1 <= abs(x) <= 4 else None
        if t == "VarName":
            name = node.get_node_name()
            v = scope.get(name) or self.globals.get(name)
            return unit_dim(v.unit) if v is not None else None
        if t == "UnaryExpression":
            return self.dims(node.expression, scope) if node.op.eval() == "-" else None
        if t == "FunctionCall":
            fname = node.name.get_node_name()
            if fname not in _FUNCTIONS:
                return None
            args = [self.dims(a, scope) for a in node.arguments]
            if any(a is None for a in args):
                return None
            if fname in ("fabs", "fmin", "fmax"):
                return args[0] if all(a == args[0] for a in args) else None
            ok = all(a[0].is_dimensionless and a[1] == 1 for a in args)
            return (DIMENSIONLESS, sympy.Integer(1)) if ok else None
        if t == "BinaryExpression":
            op = node.op.eval()
            a, b = self.dims(node.lhs, scope), self.dims(node.rhs, scope)
            if op == "^":
                rhs = node.rhs
                while type(rhs).__name__ in ("ParenExpression", "WrappedExpression"):
                    rhs = rhs.expression
                if a is None or type(rhs).__name__ not in ("Integer", "Double", "Float"):
                    return None
                e = sympy.nsimplify(_float(rhs))
                return (a[0] ** e, a[1] ** e) if e.is_Rational else None
            if a is None or b is None:
                return None
            if op in ("+", "-"):
                return a if a == b else None
            if op == "*":
                return (a[0] * b[0], a[1] * b[1])
            if op == "/":
                return (a[0] / b[0], a[1] / b[1])
        return None

    def expr(self, node, scope, units: bool) -> str:
        """Return language text for ``node``: with units (names as quantities) or in NEURON's numbers."""
        t = type(node).__name__
        if t in ("ParenExpression", "WrappedExpression"):
            return self.expr(node.expression, scope, units)
        if t == "DoubleUnit":
            number = number_text(_float(node.value))
            unit = translate_unit(node.unit.get_node_name(), self.unit_aliases) if units else None
            return wrap(quantity(float(number), unit)) if unit is not None else number
        if t in ("Integer", "Double", "Float"):
            return number_text(_float(node))
        if t == "VarName":
            name = node.get_node_name()
            v = self.lookup(name, scope, self.cursor_at(name))
            return v.text if units else _number_of(v)
        if t == "UnaryExpression":
            op = node.op.eval()
            inner = wrap(self.expr(node.expression, scope, units))
            if op == "-":
                return f"-{inner}"
            raise _Unsupported(f"operator `{op}` outside a condition")
        if t == "FunctionCall":
            return self.call(node, scope)
        if t == "BinaryExpression":
            op = node.op.eval()
            if op in ("&&", "||", "<", ">", "<=", ">=", "==", "!="):
                raise _Unsupported("a comparison outside an `if` condition")
            a, b = self.expr(node.lhs, scope, units), self.expr(node.rhs, scope, units)
            if op in ("+", "-"):
                return f"{a} {op} {wrap(b) if op == '-' and (' + ' in b or ' - ' in b) else b}"
            if op == "*":
                return f"{wrap(a) if _is_sum(a) else a}*{wrap(b) if _is_sum(b) else b}"
            if op == "/":
                return f"{wrap(a) if _is_sum(a) else a}/{wrap(b)}"
            if op == "^":
                return f"{wrap(a)}^{wrap(b)}"
        raise _Unsupported(f"`{self.dsl.to_nmodl(node)}`")

    def call(self, node, scope) -> str:
        fname = node.name.get_node_name()
        if fname in _FUNCTIONS:
            return f"{_FUNCTIONS[fname]}({', '.join(self.expr(a, scope, False) for a in node.arguments)})"
        if fname == "pow":
            a, b = (self.expr(x, scope, False) for x in node.arguments)
            return f"{wrap(a)}^{wrap(b)}"
        block = self.function_blocks.get(fname)
        if block is None:
            raise _Unsupported(f"the function `{fname}`, which is neither NMODL's nor defined in the file")
        local = self.bind_arguments(block, node, scope)
        local[fname] = _Value("0")
        start = self.loc.block("FUNCTION", fname)
        saved = self.cursor
        self.cursor = start
        self.run(block.statement_block.statements, local, inline=fname)
        self.cursor = saved
        return wrap(local[fname].text)

    def bind_arguments(self, block, call, scope) -> dict[str, _Value]:
        params = [p.get_node_name() for p in block.parameters]
        args = [self.expr(a, scope, False) for a in call.arguments]
        if len(args) != len(params):
            raise _Unsupported(f"`{block.name.get_node_name()}` called with {len(args)} arguments, takes {len(params)}")
        return {p: _Value(a) for p, a in zip(params, args)}

    # -- symbolic execution of statement blocks
    def cursor_at(self, name: str) -> int:
        m = self.loc.find(rf"\b{re.escape(name)}\b", self.cursor)
        return m.start() if m else self.cursor

    def locate(self, pattern: str) -> Span:
        m = self.loc.find(pattern, self.cursor)
        if m is None:
            return self.loc.span(self.cursor)
        self.cursor = m.end()
        return self.loc.span(m.start(), m.end() - m.start())

    def run(self, statements, scope: dict[str, _Value], inline: str = "") -> None:
        """Execute ``statements``: assignments update ``scope`` (locals) or the globals."""
        for s in statements:
            t = type(s).__name__
            if t in ("LocalListStatement",):
                for var in s.variables:
                    scope[var.get_node_name()] = _Value("0")
            elif t == "TableStatement":
                self.notes.append("TABLE dropped (the formula is used)")
            elif t in ("LineComment", "BlockComment", "ConductanceHint", "UnitState", "ProtectStatement"):
                continue
            elif t == "IfStatement":
                self.run_if(s, scope, inline)
            elif t == "ExpressionStatement":
                self.run_expression(s.expression, scope, inline)
            elif t in _REFUSED:
                self.refuse(self.cursor, 1, _REFUSED[t])
            else:
                self.refuse(self.cursor, 1, f"{t} statements cannot be imported")

    def run_expression(self, e, scope, inline: str) -> None:
        while type(e).__name__ in ("WrappedExpression", "ParenExpression"):
            e = e.expression
        t = type(e).__name__
        if t == "SolveBlock":
            self.solve(e)
        elif t == "FunctionCall":
            self.run_procedure(e, scope)
        elif t == "DiffEqExpression":
            self.derivative(e.expression, scope)
        elif t == "BinaryExpression" and e.op.eval() == "=":
            self.assign(e, scope, inline)
        else:
            self.refuse(self.cursor, 1, f"`{self.dsl.to_nmodl(e)}` cannot be imported")

    def run_procedure(self, call, scope) -> None:
        pname = call.name.get_node_name()
        block = self.procedure_blocks.get(pname)
        span = self.locate(rf"\b{re.escape(pname)}\s*\(")
        if block is None:
            self.diags.append(Diagnostic("E601", span, f"call of `{pname}`, which is not a PROCEDURE of the file"))
            return
        local = self.bind_arguments(block, call, scope)
        key = (pname, tuple(v.text for v in local.values()))
        if key not in self.memo:  # the same call again (INITIAL after DERIVATIVE) computes the same values
            before = dict(self.globals)
            saved = self.cursor
            self.cursor = self.loc.block("PROCEDURE", pname)
            self.run(block.statement_block.statements, local)
            self.cursor = saved
            self.memo[key] = {k: v for k, v in self.globals.items() if before.get(k) != v}
        self.globals.update(self.memo[key])

    def target_unit(self, name: str) -> str | None:
        return self.units.get(name)

    def assign(self, e, scope, inline: str) -> None:
        name = e.lhs.get_node_name()
        span = self.locate(rf"\b{re.escape(name)}\s*=")
        is_local = name in scope
        unit = None if is_local else self.target_unit(name)
        text, unit = self.value_text(e.rhs, scope, unit, span, name)
        if inline:
            scope[name] = _Value(text, unit)
            return
        if name in self.currents and not is_local:
            self.current(name, text, unit, span)
            return
        if name in self.states and not is_local:
            self.initial[name] = (text, unit, span)
            return
        out = self.name_for(name)
        self.emit(f"{out} = {text}", span)
        value = _Value(out, unit)
        if is_local:
            scope[name] = value
        else:
            self.globals[name] = value

    def value_text(self, rhs, scope, unit: str | None, span: Span, what: str) -> tuple[str, str | None]:
        """Return (text, unit of the text) of a right-hand side assigned to something declared in ``unit``."""
        got = self.dims(rhs, scope) if unit is not None else None
        want = unit_dim(unit)
        if got is not None and want is not None:
            if got[0] != want[0]:
                self.diags.append(
                    Diagnostic(
                        "E301",
                        span,
                        f"`{what}` is declared in ({unit}), {describe(want[0])}, but its equation gives {describe(got[0])}",
                        "correct the units declared in the .mod file (modlunit checks them too)",
                    )
                )
            elif got[1] != want[1]:
                factor = sympy.nsimplify(got[1] / want[1])
                self.diags.append(
                    Diagnostic(
                        "E306",
                        span,
                        f"`{what}` is declared in ({unit}), but the units of its equation make it {sympy.nsimplify(got[1] / want[1])} ({unit}): NEURON computes it without that factor",
                        f"multiply by ({number_text(float(factor))}) in the .mod file, or declare matching units",
                    )
                )
            return self.expr(rhs, scope, True), unit
        text = self.expr(rhs, scope, False)
        return (with_unit(text, unit), unit) if unit is not None else (text, None)

    def current(self, name: str, text: str, unit: str | None, span: Span) -> None:
        if unit is None:
            text, unit = with_unit(text, "mA/cm^2"), "mA/cm^2"
        out = self.globals[name].text  # named in advance: a DERIVATIVE block may read it (a pool's cai' reads ica)
        self.current_lines.append((f"current {out} = {text}   outward", span))

    def derivative(self, e, scope: dict[str, _Value]) -> None:
        lhs = e.lhs
        name = lhs.get_node_name()
        span = self.locate(rf"\b{re.escape(name)}\s*'\s*=")
        if name not in self.states:
            self.diags.append(Diagnostic("E601", span, f"`{name}'` is the derivative of `{name}`, not a STATE"))
            return
        state_unit = self.units.get(name) or "1"
        unit = "1/ms" if state_unit == "1" else f"{state_unit}/ms"
        text, _ = self.value_text(e.rhs, scope, unit, span, f"{name}'")
        self.odes[name] = (f"d{self.globals[name].text}/dt = {text}", span)

    def solve(self, s) -> None:
        name = s.block_name.get_node_name()
        method = s.method.get_node_name() if s.method is not None else ""
        span = self.locate(r"\bSOLVE\b")
        block = self.derivative_blocks.get(name)
        if block is None:
            what = "a KINETIC scheme" if name in self.kinetic_names else "a PROCEDURE that updates states by hand"
            self.diags.append(
                Diagnostic("E601", span, f"SOLVE {name} names {what}", "write the states' ODEs in a DERIVATIVE block")
            )
            return
        if method not in ("cnexp", "derivimplicit", "euler", "runge", ""):
            self.diags.append(Diagnostic("E601", span, f"SOLVE … METHOD {method} cannot be imported"))
            return
        saved = self.cursor
        self.cursor = self.loc.block("DERIVATIVE", name)
        self.run(block.statement_block.statements, {})
        self.cursor = saved

    def run_if(self, s, scope, inline: str) -> None:
        span = self.locate(r"\b(?i:if)\s*\(")
        cond = s.condition
        if self.is_singular_guard(cond) and not list(s.elseifs) and s.elses is not None:
            # vtrap/efun/trap0: the |x| < eps branch is the limit of the other, which modelgen regularises (exprel)
            self.skip_block()
            self.run(s.elses.statement_block.statements, scope, inline)
            return
        branches = [(cond, s.statement_block)] + [(b.condition, b.statement_block) for b in s.elseifs]
        otherwise = s.elses.statement_block if s.elses is not None else None
        results = []
        for _, body in branches + [(None, otherwise)]:
            local = dict(scope)
            saved_globals = dict(self.globals)
            if body is not None:
                self.run(body.statements, local, inline)
            results.append((local, dict(self.globals)))
            self.globals = saved_globals
        for target, pick in (("local", 0), ("global", 1)):
            pools = [r[pick] for r in results]
            base = scope if target == "local" else self.globals
            for name in list(dict.fromkeys(k for p in pools for k in p)):
                values = [p.get(name, base.get(name, _Value("0"))) for p in pools]
                if target == "local" and name not in scope:
                    continue
                if all(v == values[0] for v in values):
                    base[name] = values[0]
                    continue
                merged = self.merge([c for c, _ in branches], values, scope)
                if inline or target == "local" and len(merged.text) < 60:
                    base[name] = merged
                else:
                    out = self.name_for(name)
                    self.emit(f"{out} = {merged.text}", span)
                    base[name] = _Value(out, merged.unit)

    def merge(self, conditions, values: list[_Value], scope) -> _Value:
        units = {v.unit for v in values}
        same = len(units) == 1
        texts = [v.text if same else _number_of(v) for v in values]
        text = texts[-1]
        for cond, branch in reversed(list(zip(conditions, texts))):
            text = self.where(cond, branch, text, scope)
        return _Value(text, values[0].unit if same else None)

    def where(self, cond, a: str, b: str, scope) -> str:
        t = type(cond).__name__
        if t in ("ParenExpression", "WrappedExpression"):
            return self.where(cond.expression, a, b, scope)
        if t == "UnaryExpression" and cond.op.eval() == "!":
            return self.where(cond.expression, b, a, scope)
        if t == "BinaryExpression":
            op = cond.op.eval()
            if op == "&&":
                return self.where(cond.lhs, self.where(cond.rhs, a, b, scope), b, scope)
            if op == "||":
                return self.where(cond.lhs, a, self.where(cond.rhs, a, b, scope), scope)
            if op in ("<", ">", "<=", ">=", "==", "!="):
                left, right = self.expr(cond.lhs, scope, False), self.expr(cond.rhs, scope, False)
                return f"where({left} {op} {right}, {a}, {b})"
        raise _Unsupported(f"the condition `{self.dsl.to_nmodl(cond)}`")

    def is_singular_guard(self, cond) -> bool:
        """Return whether ``cond`` is ``fabs(...) < eps`` with a small eps (vtrap's guard of x/(exp(x/y) - 1))."""
        while type(cond).__name__ in ("ParenExpression", "WrappedExpression"):
            cond = cond.expression
        if type(cond).__name__ != "BinaryExpression" or cond.op.eval() != "<":
            return False
        lhs, rhs = cond.lhs, cond.rhs
        while type(lhs).__name__ in ("ParenExpression", "WrappedExpression"):
            lhs = lhs.expression
        if type(lhs).__name__ != "FunctionCall" or lhs.name.get_node_name() != "fabs":
            return False
        if type(rhs).__name__ not in ("Integer", "Double", "Float"):
            return False
        return 0 < _float(rhs) <= 1e-3

    def skip_block(self) -> None:
        depth, i, clean = 0, self.cursor, self.loc.clean
        while i < len(clean):
            if clean[i] == "{":
                depth += 1
            elif clean[i] == "}":
                depth -= 1
                if depth == 0:
                    self.cursor = i + 1
                    return
            i += 1

    # -- the whole file
    def translate(self) -> ImportedChannel:
        from neuron.nmodl.dsl import ast, visitor

        lookup = visitor.AstLookupVisitor()
        for type_name, why in _REFUSED.items():
            if not why:
                continue
            node_type = getattr(ast.AstNodeType, _snake(type_name).upper(), None)
            if node_type is None:
                continue
            for i, _node in enumerate(lookup.lookup(self.tree, node_type)):
                keyword = _KEYWORDS.get(type_name, type_name)
                m = list(re.finditer(rf"\b{keyword}\b", self.loc.clean))
                offset = m[i].start() if i < len(m) else 0
                length = len(m[i].group()) if i < len(m) else 1
                self.refuse(offset, length, f"{keyword}: {why}")
        suffixes = lookup.lookup(self.tree, ast.AstNodeType.SUFFIX)
        if not suffixes:
            raise ModelError([Diagnostic("E601", self.loc.span(0), "no NEURON block with a SUFFIX: not a channel")])
        suffix = suffixes[0]
        if suffix.type.get_node_name() != "SUFFIX":
            m = self.loc.find(r"\b(POINT_PROCESS|ARTIFICIAL_CELL)\b")
            self.refuse(
                m.start() if m else 0,
                len(m.group()) if m else 1,
                f"{suffix.type.get_node_name()}: a point process (absolute currents, events) is not a density channel",
            )
        if self.diags:
            raise ModelError(self.diags)
        self.name = suffix.name.get_node_name()
        self.function_blocks = {b.name.get_node_name(): b for b in self.blocks.get("FunctionBlock", [])}
        self.procedure_blocks = {b.name.get_node_name(): b for b in self.blocks.get("ProcedureBlock", [])}
        self.derivative_blocks = {b.name.get_node_name(): b for b in self.blocks.get("DerivativeBlock", [])}
        self.kinetic_names = set()
        self.cursor = 0
        self.declare(lookup, ast)
        if self.diags:
            raise ModelError(self.diags)
        self.odes: dict[str, tuple[str, Span]] = {}
        self.initial: dict[str, tuple[str, str | None, Span]] = {}
        self.current_lines: list[tuple[str, Span]] = []
        for block in self.blocks.get("BreakpointBlock", []):
            self.cursor = self.loc.block("BREAKPOINT")
            self.safely(lambda b=block: self.run(b.statement_block.statements, {}))
        for block in self.blocks.get("InitialBlock", []):
            self.cursor = self.loc.block("INITIAL")
            self.safely(lambda b=block: self.run(b.statement_block.statements, {}))
        for name in self.states:
            if name not in self.odes:
                self.diags.append(
                    Diagnostic("E201", self.state_spans[name], f"STATE `{name}` has no equation in a SOLVEd block")
                )
        if not self.current_lines:  # an ion pool: a current file still declares a (here zero) current
            self.notes.append(f"{self.name} writes no membrane current; its current line is zero")
            self.current_lines.append((f"current {self.name_for('i_' + self.name)} = 0 mA/cm^2   outward", None))
        if self.diags:
            raise ModelError(self.diags)
        return ImportedChannel(self.name, self.render(), self.file)

    def safely(self, work) -> None:
        try:
            work()
        except _Unsupported as e:
            self.diags.append(Diagnostic("E601", self.loc.span(self.cursor), f"cannot import {e}"))

    def declare(self, lookup, ast) -> None:
        """Read the declarations: units, parameters, ions, states, assigned variables."""
        self.unit_aliases = dict(UNIT_ALIASES)
        header = []
        for d in lookup.lookup(self.tree, ast.AstNodeType.UNIT_DEF):
            self.unit_aliases[d.unit1.get_node_name()] = d.unit2.get_node_name()
        constants = {}
        for d in lookup.lookup(self.tree, ast.AstNodeType.FACTOR_DEF):
            fname = d.name.get_node_name()
            key = d.unit1.get_node_name() if d.unit1 is not None else ""
            value = float(d.value.eval()) if d.value is not None else UNITS_CONSTANTS.get(key)
            span = self.loc.span(self.loc.block("UNITS"))
            if value is None:
                self.diags.append(Diagnostic("E601", span, f"the UNITS constant `{fname}` = ({key}) is not known"))
                continue
            constants[fname] = value
        self.states: list[str] = []
        self.state_spans: dict[str, Span] = {}
        self.currents: set[str] = set()
        # special names: the membrane potential, the temperature, time
        self.globals["v"] = _Value("V", "mV", number="v")
        self.globals["celsius"] = _Value("temperature", "degC", number="celsius")
        self.globals["t"] = _Value("t", "ms")
        self.units.update(v="mV", celsius="degC", t="ms")
        self.used.update({"V", "temperature", "v", "celsius"})
        ions, u_valence = [], {}
        self.nernst: list[tuple[str, float | None, Span | None]] = []
        for u in lookup.lookup(self.tree, ast.AstNodeType.USEION):
            ion = u.name.get_node_name()
            reads = [r.get_node_name() for r in u.readlist]
            writes = [w.get_node_name() for w in u.writelist]
            ions.append((ion, reads, writes))
            u_valence[ion] = float(u.valence.value.eval()) if u.valence is not None else VALENCES.get(ion)
        for ion, _reads, writes in ions:
            for w in writes:
                if w == f"i{ion}":
                    self.currents.add(w)
        for n in lookup.lookup(self.tree, ast.AstNodeType.NONSPECIFIC_CUR_VAR):
            self.currents.add(n.get_node_name())
        for c in sorted(self.currents):
            self.units[c] = "mA/cm^2"
            self.globals[c] = _Value(self.name_for(c), "mA/cm^2")
        # PARAMETER
        pstart = self.loc.block("PARAMETER")
        params = []
        for p in lookup.lookup(self.tree, ast.AstNodeType.PARAM_ASSIGN):
            name = p.name.get_node_name()
            m = self.loc.find(rf"\b{re.escape(name)}\b", pstart)
            span = self.loc.span(m.start(), len(name)) if m else self.loc.span(pstart)
            unit = self.unit(p.unit, span)
            if name in ("v", "celsius", "dt", "t"):
                continue  # NEURON's own (a file may list celsius as a PARAMETER): the model's
            value = _float(p.value) if p.value is not None else 0.0
            params.append((name, value, unit, span))
        for name, value in constants.items():
            self.used.add(name)
            self.globals[name] = _Value(number_text(value))
        for block in self.blocks.get("LocalListStatement", []):  # a file-level LOCAL: a variable starting at 0
            for var in block.variables:
                self.globals[var.get_node_name()] = _Value("0")
        # ions: read reversal potentials and concentrations become parameters with NEURON's defaults
        declared_params = {p[0] for p in params}
        ion_params = []
        for ion, reads, writes in ions:
            m = self.loc.find(rf"\bUSEION\s+{re.escape(ion)}\b")
            span = self.loc.span(m.start(), m.end() - m.start()) if m else None
            writes_concentration = f"{ion}i" in writes or f"{ion}o" in writes
            if f"e{ion}" in reads and writes_concentration and f"e{ion}" not in declared_params:
                # NEURON computes the reversal potential of an ion whose concentration a mechanism writes (Nernst)
                self.nernst.append((ion, u_valence[ion], span))
                reads = [r for r in reads if r != f"e{ion}"] + [c for c in (f"{ion}i", f"{ion}o") if c not in reads]
            for r in reads:
                kind = "e" if r == f"e{ion}" else "i" if r == f"{ion}i" else "o" if r == f"{ion}o" else "current"
                if r in declared_params or r in writes or any(r == name for name, *_ in ion_params):
                    continue
                default = NEURON_ION_DEFAULTS.get(ion, {}).get(
                    kind, {"e": 0.0, "i": 1.0, "o": 1.0, "current": 0.0}[kind]
                )
                ion_params.append((r, default, ION_UNITS[kind], span, f"read from ion {ion} (NEURON's default)"))
            for w in writes:
                if w not in self.currents:
                    self.units.setdefault(w, ION_UNITS["i" if w.endswith("i") else "o"])
        # STATE and ASSIGNED
        for kind, node_type in (("STATE", ast.AstNodeType.STATE_BLOCK), ("ASSIGNED", ast.AstNodeType.ASSIGNED_BLOCK)):
            for block in lookup.lookup(self.tree, node_type):
                start = self.loc.block(kind)
                for d in block.definitions:
                    name = d.name.get_node_name()
                    m = self.loc.find(rf"\b{re.escape(name)}\b", start)
                    span = self.loc.span(m.start(), len(name)) if m else self.loc.span(start)
                    unit = self.unit(d.unit, span) if d.unit is not None else None
                    if kind == "STATE":
                        self.states.append(name)
                        self.state_spans[name] = span
                        self.units[name] = unit or "1"
                        self.globals[name] = _Value(self.name_for(name), unit or "1")
                    elif name not in self.units and name not in ("v", "celsius", "t", "dt"):
                        self.units[name] = unit
        for name, value, unit, span in params:
            out = self.name_for(name)
            self.units[name] = unit
            self.globals[name] = _Value(out, unit)
            header.append((f"parameter {out} = {quantity(value, unit)}", span))
        for name, value, unit, span, why in ion_params:
            out = self.name_for(name)
            self.units[name] = unit
            self.globals[name] = _Value(out, unit)
            header.append((f"parameter {out} = {quantity(value, unit)}   # {why}", span))

        self.header = header
        for ion, valence, span in self.nernst:
            if valence is None:
                self.diags.append(Diagnostic("E601", span, f"the valence of ion {ion} is not known", "add VALENCE"))
                continue
            ci, co = (_number_of(self.globals[c]) for c in (f"{ion}i", f"{ion}o"))
            out = self.name_for(f"e{ion}")
            ktf = f"1000*{UNITS_CONSTANTS['R']!r}*(celsius + 273.15)/({number_text(valence)}*{UNITS_CONSTANTS['faraday']!r})"
            self.emit(f"{out} = ({ktf}*log({wrap(co)}/{wrap(ci)})) * mV   # Nernst, as NEURON computes it", span)
            self.globals[f"e{ion}"] = _Value(out, "mV")

    def unit(self, node, span: Span) -> str | None:
        """Return the language spelling of an NMODL unit such as ``(mA/cm2)``, ``(/ms)``, ``(mho/cm2)``."""
        if node is None:
            return None
        text = node.get_node_name().strip()
        out = translate_unit(text, self.unit_aliases)
        if out is None or (out not in ("1", "degC") and safe_scale(out) is None):
            self.diags.append(
                Diagnostic(
                    "E106",
                    span,
                    f"unit ({text}) of the .mod file has no counterpart in modelgen",
                    "modelgen knows V, A, S, F, Ohm, s, Hz, m, M, mol, L, C, J, W, g, K with prefixes, and degC",
                )
            )
            return None
        self.unit_words.update(re.findall(r"[A-Za-z]+", out))
        return out

    def render(self) -> str:
        title = next(iter(self.blocks.get("Model", [])), None)
        description = (
            title.title.eval().strip() if title is not None else ""
        ) or f"{self.name} from {Path(self.file).name}"
        description = description.replace('"', "'")
        out: list[tuple[str, Span | None]] = [
            (f"# Imported from {Path(self.file).name} (NMODL, SUFFIX {self.name}) by `modelgen import`.", None),
            ("# NMODL names are kept; NEURON's v is the model's V and celsius its temperature. Where an", None),
            ("# equation mixes quantities and bare numbers, it is written in NEURON's numbers: `v` is V in mV.", None),
            *[(f"# {n}", None) for n in dict.fromkeys(self.notes)],
            (f'current {self.name} "{description}"', None),
            *self.header,
        ]
        body = "\n".join(t for t, _ in self.lines) + "".join(t for t, _ in self.current_lines)
        body += " ".join(text for text, *_ in self.initial.values()) + " ".join(t for t, _ in self.odes.values())
        if re.search(r"\bv\b", body):
            out.append(("v = V / mV", None))
        if re.search(r"\bcelsius\b", body):
            out.append(("celsius = temperature / K - 273.15", None))
        out.extend(self.lines)
        for name in self.states:
            text, unit, span = self.initial.get(name, ("0", None, None))
            state_unit = self.units[name]
            if unit is None and state_unit != "1":
                text = with_unit(text, state_unit)
            out.append((f"state {self.globals[name].text} = {text}", span or self.state_spans[name]))
            out.append(self.odes[name])
        out.extend(self.current_lines)
        self.source_map = [span for _, span in out]
        return "\n".join(f"{t}{_origin(t, span, self.file)}" for t, span in out) + "\n"


def _origin(text: str, span: Span | None, file: str) -> str:
    return f"{', ' if '#' in text else '   # '}{Path(file).name}:{span.line}" if span is not None else ""


class _Unsupported(Exception):
    """A construct inside an equation that the language has no form for."""


_KEYWORDS = {
    "KineticBlock": "KINETIC",
    "NetReceiveBlock": "NET_RECEIVE",
    "Verbatim": "VERBATIM",
    "FunctionTableBlock": "FUNCTION_TABLE",
    "LinearBlock": "LINEAR",
    "NonLinearBlock": "NONLINEAR",
    "DiscreteBlock": "DISCRETE",
    "LongitudinalDiffusionBlock": "LONGITUDINAL_DIFFUSION",
    "LonDiffuse": "LONGITUDINAL_DIFFUSION",
    "BeforeBlock": "BEFORE",
    "AfterBlock": "AFTER",
    "ConstructorBlock": "CONSTRUCTOR",
    "DestructorBlock": "DESTRUCTOR",
    "Pointer": "POINTER",
    "BbcorePointer": "BBCOREPOINTER",
    "ElectrodeCurrent": "ELECTRODE_CURRENT",
    "WatchStatement": "WATCH",
    "ForNetcon": "FOR_NETCONS",
    "IndependentBlock": "INDEPENDENT",
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name)


def _is_sum(text: str) -> bool:
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and ch in "+-" and i > 0 and text[i - 1] == " ":
            return True
    return False


def _map_diagnostics(err: ModelError, text_name: str, source_map: list[Span | None], text: str) -> ModelError:
    """Return ``err`` with positions in the imported text moved to the .mod lines they come from."""
    lines = text.splitlines()
    out = []
    for d in err.diagnostics:
        s = d.span
        if s is not None and s.file.startswith(text_name) and 0 < s.line <= len(source_map) and source_map[s.line - 1]:
            mod_span = source_map[s.line - 1]
            hint = (d.hint + "; " if d.hint else "") + f"imported as `{lines[s.line - 1].split('   #')[0].strip()}`"
            d = dataclasses.replace(d, span=mod_span, hint=hint)
        out.append(d)
    return ModelError(out)


def import_mod(path: str | Path) -> ImportedChannel:
    """Return the channel in the .mod file at ``path`` as a current file's text, checked by modelgen.

    Raises ModelError (positions in the .mod file) for syntax errors, refused constructs and units
    that do not add up; ImportError if the NMODL framework (``pip install 'modelgen[nmodl]'``) is missing.
    """
    shown, text = read_source(path)
    os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")  # no "no DISPLAY" warning from NEURON's import
    try:
        import neuron.nmodl  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "importing .mod files needs the NMODL parser shipped with NEURON: pip install 'modelgen[nmodl]'"
        ) from e
    importer = _Importer(text, shown)
    channel = importer.translate()
    name = f"{shown} (imported)"
    try:
        check_model_values(build_model(expand_uses(parse_model_text(channel.current_text, name))))
    except ModelError as e:
        raise _map_diagnostics(e, name, importer.source_map, channel.current_text) from None
    return channel


def write_imported(path: str | Path, out_dir: str | Path, model: bool = False) -> list[Path]:
    """Write ``NAME.current`` (and with ``model``, ``NAME_cell.model`` using it) for the .mod file at ``path``;
    return the paths written."""
    from ..atomic import write_text_atomic

    channel = import_mod(path)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / f"{channel.name}.current"]
    write_text_atomic(written[0], channel.current_text)
    if model:
        written.append(folder / f"{channel.name}_cell.model")
        write_text_atomic(written[1], channel.model_text(channel.name))
    return written

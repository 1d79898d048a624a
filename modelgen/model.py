"""The model IR: syntax tree -> checked :class:`Model` of sympy expressions with units.

Lowering resolves every name, infers the dimension of every expression, converts every
quantity to modelgen's internal units (see :mod:`modelgen.units`) and records problems as
diagnostics. All errors of a file are collected and raised together.
"""

from __future__ import annotations

import cmath
import difflib
import hashlib
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

import sympy

from . import functions as F
from . import language as L
from .diagnostics import Diagnostic, ModelError, Span, sort_key
from .functions import exprel  # noqa: F401 (re-exported: where it used to live)
from .units import (
    AREA,
    CHARGE,
    DIMENSIONLESS,
    TEMPERATURE,
    TIME,
    UNITS,
    Dimension,
    describe,
    internal_unit_name,
    lookup_unit,
    suggested_unit,
    unit_text_scale,
    units_of_dimension,
)

__all__ = [
    "Parameter",
    "State",
    "Input",
    "Expression",
    "Current",
    "Ode",
    "Event",
    "StateMethod",
    "Model",
    "build_model",
    "TIME_SYMBOL",
]

TIME_SYMBOL = sympy.Symbol("t", real=True)


RELATIONS = {
    "<": sympy.StrictLessThan,
    ">": sympy.StrictGreaterThan,
    "<=": sympy.LessThan,
    ">=": sympy.GreaterThan,
    "==": sympy.Eq,
    "!=": sympy.Ne,
}
_BOOL = Dimension((Fraction(99),) * 6)  # marker: the value of a comparison


def symbol(name: str) -> sympy.Symbol:
    """Return the sympy symbol standing for model quantity ``name``."""
    return sympy.Symbol(name, real=True)


# ----------------------------------------------------------------------- IR
class _Named:
    """A model quantity with a name, and so a sympy symbol."""

    name: str

    @property
    def symbol(self) -> sympy.Symbol:
        return symbol(self.name)


@dataclass(frozen=True)
class Parameter(_Named):
    name: str
    value: float  # internal units
    dimension: Dimension
    unit: str  # as written (display unit)
    display_scale: float  # internal value of one display unit
    span: Span
    value_span: Span | None = None  # the value as written

    @property
    def display_value(self) -> float:
        return self.value / self.display_scale


@dataclass(frozen=True)
class State(_Named):
    name: str
    init: sympy.Expr  # in parameters and inputs (states already substituted), internal units
    dimension: Dimension
    unit: str
    display_scale: float
    span: Span


@dataclass(frozen=True)
class Input(_Named):
    name: str
    default: float
    dimension: Dimension
    unit: str
    display_scale: float
    span: Span
    value_span: Span | None = None  # the default as written


@dataclass(frozen=True)
class Expression(_Named):
    """A named intermediate expression (``alpha_m = …``)."""

    name: str
    expr: sympy.Expr
    dimension: Dimension
    span: Span
    shown: sympy.Expr | None = None  # as written, units kept (for display)


@dataclass(frozen=True)
class Current(_Named):
    name: str
    expr: sympy.Expr  # for an input current, the input's symbol
    direction: str  # inward | outward
    dimension: Dimension
    span: Span
    is_input: bool = False
    shown: sympy.Expr | None = None


@dataclass(frozen=True)
class Ode:
    state: str
    rhs: sympy.Expr
    span: Span
    shown: sympy.Expr | None = None


@dataclass(frozen=True)
class Reset:
    state: str
    op: str  # = += -= *= /=
    expr: sympy.Expr
    span: Span

    def new_value(self) -> sympy.Expr:
        x = symbol(self.state)
        return {
            "=": self.expr,
            "+=": x + self.expr,
            "-=": x - self.expr,
            "*=": x * self.expr,
            "/=": x / self.expr,
        }[self.op]


@dataclass(frozen=True)
class Synapse:
    """What a presynaptic spike of weight ``w`` arriving at ``receptor`` does: ``target += factor*w``."""

    receptor: str
    target: str
    factor: sympy.Expr  # d(increment)/dw: constant (parameters only), internal units
    weight_dimension: Dimension
    span: Span
    text: str = ""  # the statement as written

    @property
    def weight_unit(self) -> str:
        return suggested_unit(self.weight_dimension)


WEIGHT_SYMBOL = sympy.Symbol("w", real=True)


@dataclass(frozen=True)
class Event:
    """Spike condition, what a spike does, and the refractory period (None if absent)."""

    condition: sympy.Expr  # lhs - rhs; a spike when it becomes > 0 (or >= 0)
    strict: bool
    relation: sympy.Rel
    span: Span
    resets: tuple[Reset, ...] = ()
    refractory: sympy.Expr | None = None
    refractory_span: Span | None = None
    shown: sympy.Rel | None = None  # the condition as written, units kept (for display)


@dataclass(frozen=True)
class StateMethod:
    """``method m, h: exponential_euler``: the scheme one state uses instead of the model's default."""

    state: str
    method: str
    span: Span  # the state's name in the method line
    method_span: Span  # the scheme's name


@dataclass(frozen=True)
class Model:
    """A checked neuron model: every quantity resolved, dimensioned and in internal units."""

    name: str
    description: str
    file: str
    source: str
    parameters: tuple[Parameter, ...]
    states: tuple[State, ...]
    inputs: tuple[Input, ...]
    expressions: tuple[Expression, ...]  # in file order; see definition_order()
    currents: tuple[Current, ...]
    odes: tuple[Ode, ...]  # explicit ODEs (the membrane equation is derived, see derive.py)
    charge: sympy.Expr | None
    charge_name: str
    charge_span: Span | None
    membrane_state: str | None
    event: Event | None
    method: str | None
    method_span: Span | None
    state_methods: tuple[StateMethod, ...] = field(default=())  # per-state overrides of `method`
    warnings: tuple[Diagnostic, ...] = field(default=())
    synapses: tuple[Synapse, ...] = field(default=())
    # (state, initial value in parameters, inputs and the states before it), dependency order
    initial_order: tuple[tuple[str, sympy.Expr], ...] = field(default=())

    @property
    def receptors(self) -> tuple[str, ...]:
        """Return the receptor names in declaration order."""
        return tuple(dict.fromkeys(s.receptor for s in self.synapses))

    def receptor_dimension(self, receptor: str) -> Dimension:
        return next(s.weight_dimension for s in self.synapses if s.receptor == receptor)

    # --- questions a user (or a later stage) asks
    @property
    def source_hash(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    def parameter(self, name: str) -> Parameter:
        return next(p for p in self.parameters if p.name == name)

    def state(self, name: str) -> State:
        return next(s for s in self.states if s.name == name)

    def input(self, name: str) -> Input:
        return next(i for i in self.inputs if i.name == name)

    def current(self, name: str) -> Current:
        return next(c for c in self.currents if c.name == name)

    def ode(self, name: str) -> Ode | None:
        return next((o for o in self.odes if o.state == name), None)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    @property
    def definitions(self) -> dict[sympy.Symbol, sympy.Expr]:
        """Return symbol -> defining expression for intermediates and currents."""
        d = {e.symbol: e.expr for e in self.expressions}
        d.update({c.symbol: c.expr for c in self.currents if not c.is_input})
        return d

    def definition_order(self) -> list[tuple[str, sympy.Expr, Span]]:
        """Return (name, expression, span) of intermediates and currents, dependencies first."""
        items = {e.name: (e.name, e.expr, e.span) for e in self.expressions}
        items.update({c.name: (c.name, c.expr, c.span) for c in self.currents if not c.is_input})
        order: list[tuple[str, sympy.Expr, Span]] = []
        done: set[str] = set()

        def visit(name: str) -> None:
            if name in done:
                return
            done.add(name)
            for s in sorted(items[name][1].free_symbols, key=str):
                if s.name in items:
                    visit(s.name)
            order.append(items[name])

        for name in items:
            visit(name)
        return order

    def expand(self, expr: sympy.Expr) -> sympy.Expr:
        """Return ``expr`` with every intermediate expression and current substituted."""
        defs = self.definitions
        for _ in range(len(defs) + 1):
            new = expr.xreplace(defs)
            if new == expr:
                return new
            expr = new
        return expr

    def unit_of(self, name: str) -> tuple[str, float]:
        """Return (display unit, internal value of one display unit) of a state, input or parameter."""
        for group in (self.states, self.inputs, self.parameters):
            for q in group:
                if q.name == name:
                    return q.unit, q.display_scale
        raise KeyError(name)


# ----------------------------------------------------------------------- lowering
@dataclass
class _Decl:
    kind: str  # parameter state input expression current charge
    stmt: L.Statement


class _Lowerer:
    def __init__(self, tree: L.SyntaxTree):
        self.tree = tree
        self.diags: list[Diagnostic] = []
        self.decls: dict[str, _Decl] = {}
        self.dims: dict[str, Dimension] = {}
        self.exprs: dict[str, sympy.Expr] = {}
        self.resolving: list[str] = []
        self.used: set[str] = set()
        self.failed: set[str] = set()
        self.extra: dict[str, tuple[sympy.Expr, Dimension]] = {}  # e.g. the weight `w` in synapses
        self.initial_order: tuple = ()
        self.said_undeclared: str | None = None  # a name already reported as not declared (dX/dt of no state X)

    def error(self, code: str, span: Span | None, message: str, hint: str = "") -> None:
        self.diags.append(Diagnostic(code, span, message, hint))

    # --- names
    def declare(self, stmt: L.Statement, kind: str) -> None:
        name = stmt.name
        if name in self.decls:
            first = self.decls[name].stmt
            self.error(
                "E102",
                stmt.name_span,
                f"`{name}` is defined twice",
                f"first defined on line {first.span.line} as a {self.decls[name].kind}; rename one of them",
            )
            return
        self.decls[name] = _Decl(kind, stmt)

    def suggest(self, name: str) -> str:
        pool = list(self.decls) + ["t"] + list(L.FUNCTIONS)
        close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
        if not close:
            lower = {n.lower(): n for n in pool}
            if name.lower() in lower:
                close = [lower[name.lower()]]
        if not close:
            close = difflib.get_close_matches(name, list(UNITS), n=1, cutoff=0.8)
        return f"did you mean `{close[0]}`?" if close else ""

    def dim_of_name(self, name: str, span: Span) -> Dimension | None:
        """Return the dimension of a declared name, lowering its definition if needed."""
        if name in self.dims:
            return self.dims[name]
        decl = self.decls[name]
        if name in self.resolving:
            cycle = self.resolving[self.resolving.index(name) :] + [name]
            self.error(
                "E105",
                decl.stmt.name_span,
                f"circular definition: {' -> '.join(cycle)}",
                "an expression cannot depend on itself; break the cycle with a state variable",
            )
            for n in cycle:
                self.failed.add(n)
            return None
        if name in self.failed:
            return None
        self.resolving.append(name)
        try:
            self.lower_declaration(name)
        finally:
            self.resolving.pop()
        return self.dims.get(name)

    # --- expressions
    def lower(self, node, allow_bool: bool = False) -> tuple[sympy.Expr, Dimension] | None:
        """Return (sympy expression in internal units, dimension) or None after an error."""
        if isinstance(node, L.Num):
            return sympy.Rational(node.value.numerator, node.value.denominator), DIMENSIONLESS
        if (celsius := _celsius(node)) is not None:
            return celsius, TEMPERATURE
        if isinstance(node, L.UnitLit):
            scale = sympy.Integer(1)
            dim = DIMENSIONLESS
            for uname, exp, span in node.factors:
                if uname == "degC":
                    self.error(
                        "E106",
                        span,
                        "degC is a scale with an offset: it can only follow a number, as in `6.3 degC`",
                        "write temperature differences in K",
                    )
                    return None
                u = lookup_unit(uname)
                e = sympy.Rational(exp.numerator, exp.denominator)
                scale *= u.to_internal**e
                dim = dim * (u.dimension**exp)
            return scale, dim
        if isinstance(node, L.Name):
            return self.lower_name(node)
        if isinstance(node, L.Unary):
            r = self.lower(node.operand)
            return None if r is None else (-r[0], r[1])
        if isinstance(node, L.Binary):
            return self.in_range(node, self.lower_binary(node))
        if isinstance(node, L.Call):
            return self.in_range(node, self.lower_call(node))
        if isinstance(node, L.Compare):
            if not allow_bool:
                self.error(
                    "E001",
                    node.span,
                    f"a comparison (`{node.op}`) cannot be used as a number here",
                    "comparisons belong in `threshold` or as the first argument of where(...)",
                )
                return None
            return self.lower_compare(node)
        raise AssertionError(node)

    def in_range(self, node, r: tuple[sympy.Expr, Dimension] | None):
        """Return ``r`` unless its numbers are infinite, undefined or complex (then report E304)."""
        if r is None:
            return None
        problem = _number_problem(r[0])
        if problem is None:
            return r
        what = f"`{node.func}(…)`" if isinstance(node, L.Call) else "this expression"
        self.error(
            "E304",
            node.span,
            f"{what} {problem}",
            "check for a division by zero, an overflowing exp() or power, or the root or log of a negative number",
        )
        return None

    def power(self, node: L.Binary, ea: sympy.Expr, eb: sympy.Expr) -> sympy.Expr | None:
        """Return ``ea**eb``; for two constants, first check that the exact power is of sane size."""
        if ea.free_symbols or eb.free_symbols:
            return ea**eb
        try:
            a, b = _numeric(ea), _numeric(eb)
        except _NotNumeric:
            return ea**eb
        except (ArithmeticError, ValueError):
            return ea**eb  # in_range() reports the operands' problem
        problem = None
        if a == 0 and b.real < 0:
            problem = "divides by zero (zero to a negative power)"
        elif a != 0 and abs(b.real * math.log10(abs(a))) > 308:
            problem = "is out of range: the power is too large or too small for a double"
        elif abs(b) > 1000 and abs(a) != 1 and a != 0:
            # a huge exact power would take ages; a double is all the simulator uses anyway
            try:
                v = a**b
            except (ArithmeticError, ValueError):
                problem = "is out of range"
            else:
                if abs(v.imag) > 1e-9 * abs(v):
                    problem = "is not a real number"
                else:
                    return sympy.Float(v.real)
        if problem is not None:
            self.error("E304", node.span, f"this power {problem}")
            return None
        return ea**eb

    def lower_name(self, node: L.Name):
        name = node.id
        if name == "t":
            return TIME_SYMBOL, TIME
        if name in self.extra and name not in self.decls:
            return self.extra[name]
        if name in self.decls:
            decl = self.decls[name]
            if decl.kind == "charge":
                self.error(
                    "E103",
                    node.span,
                    f"the charge `{name}` cannot be used in an expression",
                    "use the currents or the membrane potential instead",
                )
                return None
            self.used.add(name)
            dim = self.dim_of_name(name, node.span)
            if dim is None:
                return None
            return symbol(name), dim
        u = lookup_unit(name)
        if u is not None:
            return u.to_internal, u.dimension
        if name in L.FUNCTIONS:
            self.error("E001", node.span, f"`{name}` is a function; call it with parentheses, e.g. {name}(x)")
            return None
        if name == self.said_undeclared:
            return None
        self.error(
            "E101",
            node.span,
            f"unknown name `{name}`",
            self.suggest(name) or "declare it as a parameter, state, input or expression",
        )
        return None

    def lower_binary(self, node: L.Binary):
        a = self.lower(node.left)
        b = self.lower(node.right)
        if a is None or b is None:
            return None
        (ea, da), (eb, db) = a, b
        if node.op in "+-":
            if da != db and not (_is_zero(node.left) or _is_zero(node.right)):
                self.error(
                    "E301",
                    node.span,
                    f"cannot {'add' if node.op == '+' else 'subtract'} {_what(node.right)} ({describe(db)}) {'to' if node.op == '+' else 'from'} {_what(node.left)} ({describe(da)})",
                    "both sides of + and - need the same dimension; check the units of the numbers and parameters",
                )
                return None
            dim = db if _is_zero(node.left) else da
            return (ea + eb if node.op == "+" else ea - eb), dim
        if node.op == "*":
            return ea * eb, da * db
        if node.op == "/":
            if eb == 0:
                what = "" if _is_zero(node.right) else f": {_what(node.right)} is zero"
                self.error("E304", node.span, "division by zero" + what)
                return None
            return ea / eb, da / db
        if node.op == "^":
            if not db.is_dimensionless:
                self.error(
                    "E303",
                    node.span,
                    f"the exponent {_what(node.right)} has dimension {describe(db)}; exponents must be dimensionless",
                )
                return None
            if da.is_dimensionless:
                e = self.power(node, ea, eb)
                return None if e is None else (e, da)
            if not (eb.is_number and eb.is_rational):
                self.error(
                    "E303",
                    node.span,
                    f"{_what(node.left)} has dimension {describe(da)}, so its exponent must be a constant number",
                    "raise only dimensionless quantities to variable powers",
                )
                return None
            e = self.power(node, ea, eb)
            return None if e is None else (e, da ** Fraction(int(eb.p), int(eb.q)))
        raise AssertionError(node.op)

    def lower_call(self, node: L.Call):
        fn = node.func
        if fn not in L.FUNCTIONS:
            hint = difflib.get_close_matches(fn, list(L.FUNCTIONS), n=1)
            self.error(
                "E104",
                node.span,
                f"unknown function `{fn}`",
                f"did you mean `{hint[0]}`?" if hint else "allowed functions: " + ", ".join(sorted(L.FUNCTIONS)),
            )
            return None
        lo, hi = L.FUNCTIONS[fn]
        if not lo <= len(node.args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            self.error("E104", node.span, f"{fn}() takes {want} argument{'s' if hi > 1 else ''}, not {len(node.args)}")
            return None
        entry = F.FUNCTIONS[fn]
        rule = entry.dimension
        args = [self.lower(a, allow_bool=(rule == "condition" and i == 0)) for i, a in enumerate(node.args)]
        if any(a is None for a in args):
            return None
        exprs = [a[0] for a in args]
        dims = [a[1] for a in args]
        if rule == "dimensionless":
            if not dims[0].is_dimensionless:
                self.error(
                    "E302",
                    node.args[0].span if hasattr(node.args[0], "span") else node.span,
                    f"the argument of {fn}() has dimension {describe(dims[0])}; it must be dimensionless",
                    f"divide by a {describe(dims[0])} scale, e.g. {fn}(x / (10 {suggested_unit(dims[0])}))",
                )
                return None
            return entry.lower(*exprs), DIMENSIONLESS
        if rule == "sqrt":
            return entry.lower(*exprs), dims[0] ** Fraction(1, 2)
        if rule == "any":
            return entry.lower(*exprs), DIMENSIONLESS
        if rule == "condition":
            if dims[0] != _BOOL:
                self.error(
                    "E001",
                    node.span,
                    f"the first argument of {fn}() must be a comparison, e.g. {fn}(V > 0 mV, a, b)",
                )
                return None
            if not self.same_dims(node, node.args[1:], dims[1:]):
                return None
            cond = exprs[0]
            if not cond.free_symbols:  # sympy's Piecewise trips over unevaluated constant comparisons
                try:
                    return (exprs[1] if _truth(cond) else exprs[2]), dims[1]
                except (_NotNumeric, ArithmeticError, ValueError):
                    pass
            return entry.lower(*exprs), dims[1]
        # "same": min, max, clip, abs: arguments share a dimension
        if not self.same_dims(node, node.args, dims):
            return None
        dim = next((d for d, a in zip(dims, node.args) if not _is_zero(a)), dims[0])
        return entry.lower(*exprs), dim

    def same_dims(self, node: L.Call, args, dims) -> bool:
        ref = next(((a, d) for a, d in zip(args, dims) if not _is_zero(a)), None)
        if ref is None:
            return True
        for a, d in zip(args, dims):
            if d != ref[1] and not _is_zero(a):
                self.error(
                    "E301",
                    getattr(a, "span", node.span),
                    f"arguments of {node.func}() differ in dimension: {_what(ref[0])} is {describe(ref[1])} but {_what(a)} is {describe(d)}",
                )
                return False
        return True

    def lower_compare(self, node: L.Compare):
        a = self.lower(node.left)
        b = self.lower(node.right)
        if a is None or b is None:
            return None
        if a[1] != b[1] and not (_is_zero(node.left) or _is_zero(node.right)):
            self.error(
                "E301",
                node.span,
                f"cannot compare {_what(node.left)} ({describe(a[1])}) with {_what(node.right)} ({describe(b[1])})",
            )
            return None
        rel = RELATIONS[node.op]
        return rel(a[0], b[0], evaluate=False), _BOOL

    # --- declarations
    def lower_declaration(self, name: str) -> None:
        decl = self.decls[name]
        stmt = decl.stmt
        if decl.kind in ("parameter", "input"):
            r = self.lower(stmt.expr)
            if r is None:
                self.failed.add(name)
                return
            expr, dim = r
            if expr.free_symbols:
                names = ", ".join(sorted(str(s) for s in expr.free_symbols))
                self.error(
                    "E205",
                    stmt.name_span,
                    f"the value of {decl.kind} `{name}` must be a constant, but it uses {names}",
                    "give a number with a unit; write a derived quantity as an expression: `name = …`",
                )
                self.failed.add(name)
                return
            if _as_float(expr) is None:
                self.error("E304", stmt.name_span, f"the value of {decl.kind} `{name}` is not a finite real number")
                self.failed.add(name)
                return
            self.dims[name] = dim
            self.exprs[name] = expr
        elif decl.kind == "state":
            # the dimension of a state is that of its initial value; the value may use other names
            r = self.lower(stmt.expr)
            if r is None:
                self.failed.add(name)
                return
            self.dims[name], self.exprs[name] = r[1], r[0]
        elif decl.kind == "current" and stmt.is_input_current:
            pass  # dimension set from the charge relation in lower_model
        else:  # expression, current, charge
            r = self.lower(stmt.expr)
            if r is None:
                self.failed.add(name)
                return
            self.exprs[name], self.dims[name] = r[0], r[1]


class _NotNumeric(Exception):
    """A constant built from something :func:`_numeric` does not evaluate."""


_CMATH = {
    sympy.exp: cmath.exp,
    sympy.log: cmath.log,
    sympy.sin: cmath.sin,
    sympy.cos: cmath.cos,
    sympy.tan: cmath.tan,
    sympy.sinh: cmath.sinh,
    sympy.cosh: cmath.cosh,
    sympy.tanh: cmath.tanh,
}
_NOT_FINITE = (sympy.zoo, sympy.nan, sympy.oo, sympy.S.NegativeInfinity)


def _numeric(expr: sympy.Expr) -> complex:
    """Return the value of a constant expression in double precision.

    Unlike sympy's arbitrary-precision evaluation this never takes long (``exp(exp(exp(100)))``
    is an OverflowError at once). Raises OverflowError, ZeroDivisionError or ValueError for a
    value out of range or undefined, :class:`_NotNumeric` for constructs it does not know.
    """
    if expr in _NOT_FINITE:
        raise ZeroDivisionError(str(expr))
    if expr.is_Rational or expr.is_Float or expr.is_NumberSymbol:
        return complex(float(expr))  # a huge Rational becomes inf, caught by the callers
    if expr is sympy.I:
        return 1j
    if expr.is_Add:
        return sum((_numeric(a) for a in expr.args), 0j)
    if expr.is_Mul:
        out = 1 + 0j
        for a in expr.args:
            out *= _numeric(a)
        return out
    if expr.is_Pow:
        base, exp = _numeric(expr.base), _numeric(expr.exp)
        if base == 0 and exp.real < 0:
            raise ZeroDivisionError("0 to a negative power")
        return base**exp
    if expr.func in _CMATH:
        return _CMATH[expr.func](_numeric(expr.args[0]))
    if isinstance(expr, sympy.Abs):
        return complex(abs(_numeric(expr.args[0])))
    if isinstance(expr, (sympy.Min, sympy.Max)):
        values = [_numeric(a) for a in expr.args]
        if any(v.imag for v in values):
            raise ValueError("min/max of complex numbers")
        pick = min if isinstance(expr, sympy.Min) else max
        return complex(pick(v.real for v in values))
    if isinstance(expr, sympy.Piecewise):
        for value, cond in expr.args:
            if _truth(cond):
                return _numeric(value)
        raise ValueError("no case of where() applies")
    raise _NotNumeric(type(expr).__name__)


def _truth(cond) -> bool:
    if cond is sympy.true or cond is True:
        return True
    if cond is sympy.false or cond is False:
        return False
    if isinstance(cond, sympy.core.relational.Relational):
        a, b = _numeric(cond.lhs), _numeric(cond.rhs)
        if a.imag or b.imag:
            raise ValueError("comparison of complex numbers")
        ops = {"<": a.real < b.real, ">": a.real > b.real, "<=": a.real <= b.real, ">=": a.real >= b.real}
        ops.update({"==": a == b, "!=": a != b})
        return ops[cond.rel_op]
    raise _NotNumeric(type(cond).__name__)


def _number_problem(expr: sympy.Expr) -> str | None:
    """Return what is wrong with the numbers in ``expr`` (None if nothing is)."""
    if expr.free_symbols:
        if expr.has(*_NOT_FINITE):
            return "divides by zero"
        for a in expr.atoms(sympy.Rational, sympy.Float):
            if not math.isfinite(float(a)):
                return "holds a number too large for a double"
        return None
    try:
        v = _numeric(expr)
    except _NotNumeric:
        return None
    except OverflowError:
        return "is too large (overflow)"
    except (ZeroDivisionError, ValueError):
        return "is undefined (a division by zero or the logarithm of zero)"
    if not cmath.isfinite(v):
        return "is too large (overflow)"
    if abs(v.imag) > 1e-9 * abs(v):
        return "is not a real number"
    return None


def _as_float(expr: sympy.Expr) -> float | None:
    """Return the value of a constant expression as a float, or None if it is not a finite real."""
    try:
        v = _numeric(expr)
    except _NotNumeric:
        try:
            v = complex(float(expr))
        except (TypeError, ValueError, OverflowError):
            return None
    except (ArithmeticError, ValueError):
        return None
    if not cmath.isfinite(v) or abs(v.imag) > 1e-9 * abs(v):
        return None
    return v.real


def _flat_mul(a, b) -> sympy.Expr:
    args = [*(a.args if a.is_Mul else (a,)), *(b.args if b.is_Mul else (b,))]
    return sympy.Mul(*args, evaluate=False)


def display_expr(node, names: frozenset = frozenset()) -> sympy.Expr:
    """Return the expression as written, unevaluated, with units as ``unit:NAME`` symbols."""
    ne = {"evaluate": False}
    if isinstance(node, L.Num):
        v = node.value
        if v.denominator == 1:
            return sympy.Integer(v.numerator)
        return sympy.Float(node.span.text[node.span.col - 1 : node.span.col - 1 + node.span.length] or float(v), 15)
    if isinstance(node, L.UnitLit):
        factors = [
            sympy.Pow(sympy.Symbol("unit:" + n), sympy.Rational(e.numerator, e.denominator), **ne)
            if e != 1
            else sympy.Symbol("unit:" + n)
            for n, e, _ in node.factors
        ]
        return sympy.Mul(*factors, **ne)
    if isinstance(node, L.Name):
        if node.id not in names and node.id != "t" and lookup_unit(node.id) is not None:
            return sympy.Symbol("unit:" + node.id)
        return sympy.Symbol(node.id, real=True)
    if isinstance(node, L.Unary):
        operand = display_expr(node.operand, names)
        first = operand.args[0] if operand.is_Mul else operand
        if first.is_Number:  # -20 mV as written, not (-1) 20 mV
            return -first if operand is first else sympy.Mul(-first, *operand.args[1:], **ne)
        return _flat_mul(sympy.Integer(-1), operand)
    if isinstance(node, L.Binary):
        a, b = display_expr(node.left, names), display_expr(node.right, names)
        if node.op == "+":
            return sympy.Add(a, b, **ne)
        if node.op == "-":
            return sympy.Add(a, sympy.Mul(-1, b, **ne), **ne)
        if node.op == "*":
            return _flat_mul(a, b)
        if node.op == "/":
            inv = sympy.Pow(b, -1, **ne)
            return inv if a == 1 else _flat_mul(a, inv)
        return sympy.Pow(a, b, **ne)
    if isinstance(node, L.Call):
        args = [display_expr(a, names) for a in node.args]
        entry = F.FUNCTIONS.get(node.func)
        fn = entry.display if entry is not None else None
        if fn is not None:
            return fn(*args, evaluate=False)
        return sympy.Function(node.func)(*args)
    if isinstance(node, L.Compare):
        rel = RELATIONS[node.op]
        return rel(display_expr(node.left, names), display_expr(node.right, names), evaluate=False)
    raise AssertionError(node)


def _celsius(node) -> sympy.Expr | None:
    """Return the temperature in K of a literal like ``6.3 degC`` or ``-5 degC``, else None."""
    sign = 1
    if isinstance(node, L.Unary) and node.op == "-":
        sign, node = -1, node.operand
    if (
        isinstance(node, L.Binary)
        and node.op == "*"
        and isinstance(node.left, L.Num)
        and isinstance(node.right, L.UnitLit)
        and [(n, e) for n, e, _ in node.right.factors] == [("degC", 1)]
    ):
        v = node.left.value
        return sign * sympy.Rational(v.numerator, v.denominator) + sympy.Rational(27315, 100)
    return None


def _is_zero(node) -> bool:
    return isinstance(node, L.Num) and node.value == 0


def _what(node) -> str:
    """Return a short description of an expression node for messages."""
    if isinstance(node, L.Name):
        return f"`{node.id}`"
    if isinstance(node, L.Num):
        return f"the number {node.value}"
    if isinstance(node, L.Binary) and isinstance(node.left, L.Num) and isinstance(node.right, L.UnitLit):
        return f"`{_literal_text(node)}`"
    if isinstance(node, L.Call):
        return f"`{node.func}(…)`"
    return "the expression"


def _unit_text(lit: L.UnitLit) -> str:
    out = ""
    for i, (name, exp, _) in enumerate(lit.factors):
        op = "" if i == 0 else ("/" if exp < 0 else "*")
        e = abs(exp) if i else exp
        if i == 0 and exp < 0:
            out = "1/"
            e = -exp
        out += op + name + ("" if e == 1 else f"^{e}")
    return out


def _literal_text(node) -> str:
    v = node.left.value
    num = str(v.numerator) if v.denominator == 1 else str(float(v))
    return f"{num} {_unit_text(node.right)}"


def _display_unit(node, dim: Dimension) -> tuple[str, float]:
    """Return (unit text, internal value of one such unit) from a literal like ``-65 mV``."""
    if _celsius(node) is not None:
        return "K", 1.0  # shown in kelvin: Celsius has an offset, not a scale
    if isinstance(node, L.Unary):
        node = node.operand
    if isinstance(node, L.Binary) and node.op == "*" and isinstance(node.right, L.UnitLit):
        scale = sympy.Integer(1)
        for uname, exp, _ in node.right.factors:
            scale *= lookup_unit(uname).to_internal ** sympy.Rational(exp.numerator, exp.denominator)
        return _unit_text(node.right), float(scale)
    if dim.is_dimensionless:
        return "1", 1.0
    return internal_unit_name(dim), 1.0


def build_model(tree: L.SyntaxTree) -> Model:
    """Return the checked model of a syntax tree; raise ModelError with every error found."""
    try:
        return _build_model(tree)
    except RecursionError:
        # the parser bounds the depth of each expression, but definitions can nest through names
        span = Span(tree.file, 1, 1, 1, tree.source.split("\n", 1)[0] if tree.source else "")
        raise ModelError(
            [
                Diagnostic(
                    "E005", span, "the model's expressions nest too deeply to check", "split long chains of definitions"
                )
            ]
        ) from None


def _build_model(tree: L.SyntaxTree) -> Model:
    lw = _Lowerer(tree)
    S = tree.statements
    if not tree.name:
        lw.error(
            "E207",
            Span(tree.file, 1, 1, 1, tree.source.split("\n", 1)[0] if tree.source else ""),
            "the file has no `model` line",
            'start the file with e.g. `model MyNeuron "a short description"`',
        )
    charges = [s for s in S if s.kind == "charge"]
    for s in S:
        if s.kind in ("parameter", "state", "input", "expression", "current", "charge"):
            lw.declare(s, s.kind)
    for s in charges[1:]:
        lw.error("E102", s.name_span, "a second charge relation", "a model has one membrane and one `charge` line")
    # dimension of the membrane current, needed for `current I = input`
    charge_stmt = charges[0] if charges else None
    for name in list(lw.decls):
        lw.dim_of_name(name, lw.decls[name].stmt.name_span)
    if (huge := _oversized_definition(lw)) is not None:
        # substituting definitions (initial values, checks, code generation) would not finish
        raise ModelError(sorted([*lw.diags, huge], key=sort_key))

    charge_expr = lw.exprs.get(charge_stmt.name) if charge_stmt else None
    charge_dim = lw.dims.get(charge_stmt.name) if charge_stmt else None
    current_dim = charge_dim / TIME if charge_dim in (CHARGE, CHARGE / AREA) else None
    if charge_stmt is not None and charge_dim is not None and charge_dim not in (CHARGE, CHARGE / AREA):
        lw.error(
            "E301",
            charge_stmt.name_span,
            f"the charge `{charge_stmt.name}` has dimension {describe(charge_dim)}; expected charge (e.g. pF*mV) or charge/area (e.g. uF/cm^2*mV)",
            "write the charge relation as capacitance times membrane potential: `charge Q = C_m * V`",
        )

    # parameters, inputs
    params, inputs = [], []
    for s in S:
        if s.kind == "parameter" and s.name in lw.exprs and lw.decls[s.name].stmt is s:
            unit, scale = _display_unit(s.expr, lw.dims[s.name])
            value, dim = _as_float(lw.exprs[s.name]), lw.dims[s.name]
            params.append(Parameter(s.name, value, dim, unit, scale, s.name_span, L.node_extent(s.expr)))
        if s.kind == "input" and s.name in lw.exprs and lw.decls[s.name].stmt is s:
            unit, scale = _display_unit(s.expr, lw.dims[s.name])
            value, dim = _as_float(lw.exprs[s.name]), lw.dims[s.name]
            inputs.append(Input(s.name, value, dim, unit, scale, s.name_span, L.node_extent(s.expr)))

    # currents
    currents = []
    for s in S:
        if s.kind != "current" or lw.decls.get(s.name, _Decl("", None)).stmt is not s:
            continue
        if s.is_input_current:
            if current_dim is None:
                if charge_stmt is None:
                    lw.error(
                        "E203",
                        s.name_span,
                        f"`current {s.name} = input` needs a charge relation to know its unit",
                        "add e.g. `charge Q = C_m * V`",
                    )
                continue
            unit = suggested_unit(current_dim)
            inputs.append(Input(s.name, 0.0, current_dim, unit, float(unit_text_scale(unit)[1]), s.name_span))
            lw.dims[s.name] = current_dim
            currents.append(Current(s.name, symbol(s.name), s.direction, current_dim, s.name_span, is_input=True))
            continue
        if s.name not in lw.exprs:
            continue
        dim = lw.dims[s.name]
        if current_dim is not None and dim != current_dim:
            hint = f"currents of this membrane are {describe(current_dim)} (e.g. {suggested_unit(current_dim)}), because dQ/dt of `{charge_stmt.name}` is {describe(current_dim)}"
            lw.error(
                "E301",
                s.name_span,
                f"current {s.name} has dimension {describe(dim)} but the membrane's dQ/dt has dimension {describe(current_dim)}",
                hint + _unit_hint(dim, current_dim),
            )
            continue
        currents.append(
            Current(
                s.name, lw.exprs[s.name], s.direction, dim, s.name_span, shown=display_expr(s.expr, frozenset(lw.decls))
            )
        )
    if currents and charge_stmt is None:
        lw.error(
            "E203",
            currents[0].span,
            "the model declares currents but no charge relation",
            "add the membrane's charge relation, e.g. `charge Q = C_m * V`, so that C dV/dt = Σ currents can be derived",
        )

    # ODEs
    odes: list[Ode] = []
    seen_ode: dict[str, L.Statement] = {}
    for s in S:
        if s.kind != "ode":
            continue
        if s.name in seen_ode:
            lw.error(
                "E102",
                s.name_span,
                f"a second equation for d{s.name}/dt",
                f"the first is on line {seen_ode[s.name].span.line}",
            )
            continue
        seen_ode[s.name] = s
        if (what := _not_a_state(lw, s.name)) is not None:
            lw.error(
                "E202",
                s.name_span,
                f"d{s.name}/dt is given but `{s.name}` {what}",
                f"declare it with `state {s.name} = <initial value>`",
            )
            lw.said_undeclared = s.name  # still report errors inside the expression, but not X again
            lw.lower(s.expr)
            lw.said_undeclared = None
            continue
        r = lw.lower(s.expr)
        if r is None or s.name not in lw.dims:
            continue
        want = lw.dims[s.name] / TIME
        if r[1] != want:
            lw.error(
                "E301",
                s.name_span,
                f"d{s.name}/dt must have dimension {describe(want)} ({s.name} is {describe(lw.dims[s.name])}), but the right-hand side is {describe(r[1])}",
                _ode_hint(r[1], want),
            )
            continue
        odes.append(Ode(s.name, r[0], s.name_span, display_expr(s.expr, frozenset(lw.decls))))

    # membrane state: the state in the charge relation that has no ODE of its own
    membrane = None
    if charge_stmt is not None and charge_expr is not None:
        in_q = [s.name for s in S if s.kind == "state" and symbol(s.name) in charge_expr.free_symbols]
        candidates = [n for n in in_q if n not in seen_ode]
        if len(candidates) == 1:
            membrane = candidates[0]
        elif not in_q:
            lw.error(
                "E203",
                charge_stmt.name_span,
                f"the charge relation `{charge_stmt.name}` uses no state variable",
                "the charge is capacitance times a state, e.g. `charge Q = C_m * V` with `state V = -65 mV`",
            )
        elif not candidates:
            lw.error(
                "E204",
                charge_stmt.name_span,
                f"every state in the charge relation already has an equation ({', '.join('d' + n + '/dt' for n in in_q)})",
                "the membrane equation is derived from the currents: remove the explicit dV/dt",
            )
        else:
            lw.error(
                "E204",
                charge_stmt.name_span,
                f"the charge relation depends on several states without equations ({', '.join(candidates)})",
                "the charge must depend on one membrane potential",
            )

    # states
    states = []
    state_stmts = {s.name: s for s in S if s.kind == "state" and lw.decls.get(s.name, _Decl("", None)).stmt is s}
    if not any(s.kind == "state" for s in S):
        where = tree.name_span or Span(tree.file, 1, 1, 1, tree.source.split("\n", 1)[0] if tree.source else "")
        lw.error(
            "E208",
            where,
            "the model has no state variable, so there is nothing to simulate",
            "declare the membrane potential, e.g. `state V = -65 mV` with `charge Q = C_m * V` and currents",
        )
    for name, s in state_stmts.items():
        if name not in seen_ode and name != membrane:
            lw.error(
                "E201",
                s.name_span,
                f"state `{name}` has no equation",
                f"add `d{name}/dt = …`"
                + (
                    ""
                    if charge_stmt
                    else f", or a charge relation `charge Q = C * {name}` and currents if `{name}` is the membrane potential"
                ),
            )
    init_values = _initial_values(lw, state_stmts)
    for name, s in state_stmts.items():
        if name not in lw.dims or name not in init_values:
            continue
        unit, scale = _display_unit(s.expr, lw.dims[name])
        states.append(State(name, init_values[name], lw.dims[name], unit, scale, s.name_span))

    # events
    event = _lower_event(lw, S, seen_ode, membrane)

    synapses = _lower_synapses(lw, S)

    # method: the model's default (the last `method NAME`), and per-state `method x, y: NAME`
    methods = [s for s in S if s.kind == "method" and not s.items]
    method = methods[-1].name if methods else None
    method_span = methods[-1].name_span if methods else None
    state_methods = _state_methods(lw, S, list(state_stmts))

    # expressions in dependency order
    exprs = []
    for s in S:
        if s.kind == "expression" and s.name in lw.exprs and lw.decls[s.name].stmt is s:
            exprs.append(
                Expression(
                    s.name, lw.exprs[s.name], lw.dims[s.name], s.name_span, display_expr(s.expr, frozenset(lw.decls))
                )
            )

    # warnings
    warnings = []
    for p in params:
        if p.name not in lw.used:
            warnings.append(Diagnostic("W401", p.span, f"parameter `{p.name}` is never used"))
    for name, decl in lw.decls.items():
        # one-letter names (V, C, m, g) are the usual symbols; `mV` or `cm` as a name is a trap
        if len(name) > 1 and lookup_unit(name) is not None and decl.stmt.name_span is not None:
            warnings.append(
                Diagnostic(
                    "W404",
                    decl.stmt.name_span,
                    f"the {decl.kind} `{name}` hides the unit {name}: in this file `{name}` means the {decl.kind}, also in literals like `1 {name}`",
                    f"rename it, e.g. `{name}_`",
                )
            )
    errors = sorted(lw.diags, key=sort_key)
    if errors:
        raise ModelError(errors + warnings)
    model = Model(
        name=tree.name,
        description=tree.description,
        file=tree.file,
        source=tree.source,
        parameters=tuple(params),
        states=tuple(states),
        inputs=tuple(inputs),
        expressions=tuple(exprs),
        currents=tuple(currents),
        odes=tuple(odes),
        charge=charge_expr,
        charge_name=charge_stmt.name if charge_stmt else "",
        charge_span=charge_stmt.name_span if charge_stmt else None,
        membrane_state=membrane,
        event=event,
        method=method,
        method_span=method_span,
        state_methods=state_methods,
        synapses=tuple(synapses),
        initial_order=lw.initial_order,
    )
    warnings += _model_warnings(model)
    return _with_warnings(model, warnings)


def _state_methods(lw, S, states: list[str]) -> tuple[StateMethod, ...]:
    """Return the per-state schemes of ``method x, y: NAME`` lines; unknown or twice-given states are errors."""
    out: dict[str, StateMethod] = {}
    for s in S:
        if s.kind != "method":
            continue
        for name, span in s.items:
            if name not in states:
                close = difflib.get_close_matches(name, states, n=1)
                lw.error(
                    "E209",
                    span,
                    f"`method` names `{name}`, which is not a state variable",
                    f"did you mean `{close[0]}`?" if close else "states: " + ", ".join(states),
                )
            elif name in out:
                first = out[name]
                lw.error(
                    "E209",
                    span,
                    f"state `{name}` is given a second method (`{s.name}`; line {first.span.line} gave it `{first.method}`)",
                    "give each state one method",
                )
            else:
                out[name] = StateMethod(name, s.name, span, s.name_span)
    return tuple(out.values())


def _with_warnings(model: Model, warnings: list[Diagnostic]) -> Model:
    from dataclasses import replace

    return replace(model, warnings=tuple(sorted(warnings, key=sort_key)))


def _model_warnings(model: Model) -> list[Diagnostic]:
    out = []
    changing = {s.symbol for s in model.states} | {i.symbol for i in model.inputs} | {TIME_SYMBOL}
    for c in model.currents:
        if not c.is_input and not (model.expand(c.expr).free_symbols & changing):
            out.append(
                Diagnostic("W402", c.span, f"current {c.name} is constant: it depends on no state, input or time")
            )
    for s in model.states:
        ode = model.ode(s.name)
        if ode is None or not s.dimension.is_dimensionless or s.init.free_symbols:
            continue
        x = s.symbol
        rhs = model.expand(ode.rhs)
        # a gate: dx/dt = alpha*(1-x) - beta*x has the factor (1 - x) and is linear in x
        init = _as_float(s.init)
        if init is not None and sympy.diff(rhs, x, 2) == 0 and rhs.has(1 - x) and not 0 <= init <= 1:
            out.append(
                Diagnostic(
                    "W403",
                    s.span,
                    f"gate `{s.name}` starts at {init:g}, outside [0, 1]",
                    "a gating variable is a fraction of open channels",
                )
            )
    return out


def _unit_hint(have: Dimension, want: Dimension) -> str:
    if have * AREA == want or have == want * AREA:
        return "; per-area (e.g. uA/cm^2) and absolute (e.g. pA) quantities cannot be mixed"
    units = units_of_dimension(have * (want / have))
    return f"; e.g. use {units[0]}" if units else ""


def _ode_hint(have: Dimension, want: Dimension) -> str:
    if have == want * TIME:
        return "the right-hand side is missing a division by a time constant"
    if have == want / TIME:
        return "the right-hand side has one time too many in the denominator"
    return f"the right-hand side should be in e.g. {suggested_unit(want)}"


def _initial_values(lw: _Lowerer, state_stmts: dict[str, L.Statement]) -> dict[str, sympy.Expr]:
    """Return each state's initial value with other states' initial values substituted."""
    defs = {}
    for d in lw.decls.values():
        if d.kind in ("expression", "current") and d.stmt.name in lw.exprs:
            defs[symbol(d.stmt.name)] = lw.exprs[d.stmt.name]

    def expand(e):
        for _ in range(len(defs) + 1):
            new = e.xreplace(defs)
            if new == e:
                break
            e = new
        return e

    raw = {n: expand(lw.exprs[n]) for n in state_stmts if n in lw.exprs}
    out: dict[str, sympy.Expr] = {}
    visiting: list[str] = []

    def resolve(n: str):
        if n in out:
            return out[n]
        if n in visiting:
            cycle = visiting[visiting.index(n) :] + [n]
            lw.error(
                "E105",
                state_stmts[n].name_span,
                f"circular initial values: {' -> '.join(cycle)}",
                "give at least one of these states a constant initial value",
            )
            return None
        visiting.append(n)
        e = raw[n]
        for sym in list(e.free_symbols):
            if sym.name in raw:
                v = resolve(sym.name)
                if v is None:
                    visiting.pop()
                    return None
                e = e.xreplace({sym: v})
        visiting.pop()
        if TIME_SYMBOL in e.free_symbols:
            e = e.xreplace({TIME_SYMBOL: sympy.Integer(0)})
        if not e.free_symbols and _as_float(e) is None:
            lw.error(
                "E304",
                state_stmts[n].name_span,
                f"the initial value of `{n}` is not a finite real number",
                "check for a division by zero or an overflow at the initial state",
            )
            return None
        out[n] = e
        return e

    for n in raw:
        resolve(n)
    # dependency order, each in terms of earlier states (so an overridden V moves the gates too)
    lw.initial_order = tuple((n, raw[n].xreplace({TIME_SYMBOL: sympy.Integer(0)})) for n in out)
    return out


def _oversized_definition(lw: _Lowerer) -> Diagnostic | None:
    """Return an error for the first definition that grows too large when what it uses is substituted.

    ``a1 = a0*(a0 + 1)``, ``a2 = a1*(a1 + 1)``, … doubles at every line: sixty such lines
    expand to 2^60 terms. Sizes are counted on the definitions, without expanding anything.
    """
    limit = L.LIMITS["expanded_nodes"]
    defs = {
        n: lw.exprs[n] for n, d in lw.decls.items() if d.kind in ("expression", "current", "state") and n in lw.exprs
    }
    own: dict[str, int] = {}
    uses: dict[str, Counter] = {}
    for n, e in defs.items():
        own[n], uses[n] = 0, Counter()
        for node in sympy.preorder_traversal(e):
            own[n] += 1
            if node.is_Symbol and node.name in defs and node.name != n:
                uses[n][node.name] += 1
    size: dict[str, int] = {}
    for n in defs:
        stack, on_stack = [n], {n}
        while stack:  # depth-first without recursion: chains of definitions can be long
            m = stack[-1]
            todo = [
                k for k in uses[m] if k not in size and k not in on_stack
            ]  # back edges are cycles, reported elsewhere
            if todo:
                stack.extend(todo)
                on_stack.update(todo)
                continue
            size[m] = min(limit + 1, own[m] + sum(c * size.get(k, 0) for k, c in uses[m].items()))
            on_stack.discard(stack.pop())
        if size[n] > limit:
            return Diagnostic(
                "E005",
                lw.decls[n].stmt.name_span,
                f"`{n}` becomes too large when the definitions it uses are substituted (more than {limit} terms)",
                "each use of a definition copies it; nested definitions that use their predecessor several times grow exponentially",
            )
    return None


def _vanishes(e: sympy.Expr) -> bool:
    """Return whether ``e`` is identically zero: exactly as written, else at three random points.

    Evaluating in doubles instead of ``sympy.expand`` keeps ``(p + 1)^1000000 - …`` from running forever.
    """
    if e == 0:
        return True
    symbols = sorted(e.free_symbols, key=str)
    rng = random.Random(0)
    for _ in range(3):
        point = {s: sympy.Float(rng.uniform(0.3, 3.0)) for s in symbols}
        try:
            at = e.xreplace(point)
            terms = [_numeric(a) for a in (at.args if at.is_Add else (at,))]
        except _NotNumeric:
            return sympy.expand(e) == 0
        except (ArithmeticError, ValueError):
            return False
        v = sum(terms, 0j)
        if not cmath.isfinite(v) or abs(v) > 1e-9 * sum(abs(t) for t in terms):
            return False
    return True


def _not_a_state(lw: _Lowerer, name: str) -> str | None:
    """Return why ``name`` is not a state variable ("is a parameter", "is not declared"), or None."""
    decl = lw.decls.get(name)
    if decl is None:
        return "is not declared"
    return None if decl.kind == "state" else f"is a {decl.kind}"


def _lower_synapses(lw: _Lowerer, S) -> list[Synapse]:
    """Return the synapses: each adds (a constant times) the weight w to a state."""
    out: list[Synapse] = []
    lw.extra = {"w": (WEIGHT_SYMBOL, DIMENSIONLESS)}
    try:
        for s in S:
            if s.kind != "synapse":
                continue
            if (what := _not_a_state(lw, s.name)) is not None:
                lw.error(
                    "E206",
                    s.name_span,
                    f"a synapse can only add to a state variable, and `{s.name}` {what}",
                    f"declare it, e.g. `state {s.name} = 0 nS` with `d{s.name}/dt = -{s.name}/tau`",
                )
                continue
            r = lw.lower(s.expr)
            if r is None or s.name not in lw.dims:
                continue
            expr, factor_dim = r
            factor = sympy.diff(expr, WEIGHT_SYMBOL)
            varying = {st.name for st in S if st.kind in ("state", "input")} | {"t"}
            if (
                factor == 0
                or {x.name for x in factor.free_symbols} & (varying | {"w"})
                or not _vanishes(expr - factor * WEIGHT_SYMBOL)
            ):
                lw.error(
                    "E206",
                    s.name_span,
                    f"synapse {s.receptor}: the increment of {s.name} must be the weight `w` times a constant",
                    f"write e.g. `synapse {s.receptor}: {s.name} += w` (spikes arriving together are summed)",
                )
                continue
            weight_dim = lw.dims[s.name] / factor_dim
            if s.op == "-=":
                factor = -factor
            previous = next((x for x in out if x.receptor == s.receptor), None)
            if previous is not None and previous.weight_dimension != weight_dim:
                lw.error(
                    "E301",
                    s.name_span,
                    f"receptor {s.receptor}: this statement needs weights of dimension {describe(weight_dim)}, but an earlier one needs {describe(previous.weight_dimension)}",
                )
                continue
            text = " ".join(L._strip_comment(s.span.text).split())
            out.append(Synapse(s.receptor, s.name, factor, weight_dim, s.name_span, text))
    finally:
        lw.extra = {}
    return out


def _lower_event(lw: _Lowerer, S, seen_ode, membrane) -> Event | None:
    thresholds = [s for s in S if s.kind == "threshold"]
    resets = [s for s in S if s.kind == "reset"]
    refr = [s for s in S if s.kind == "refractory"]
    for extra in thresholds[1:]:
        lw.error("E206", extra.name_span, "a second `threshold`", "a model has one spike condition")
    if not thresholds:
        for s in resets + refr:
            lw.error(
                "E206", s.name_span or s.span, f"`{s.kind}` without a `threshold`", "add e.g. `threshold V > V_th`"
            )
        return None
    th = thresholds[0]
    r = lw.lower(th.expr, allow_bool=True)
    condition = strict = rel = None
    if r is not None:
        if not isinstance(th.expr, L.Compare) or th.expr.op not in ("<", ">", "<=", ">="):
            lw.error("E206", th.name_span, "a threshold is a comparison with <, >, <= or >=, e.g. `threshold V > V_th`")
        else:
            rel = r[0]
            lhs, rhs = rel.lhs, rel.rhs
            condition = lhs - rhs if th.expr.op in (">", ">=") else rhs - lhs
            strict = th.expr.op in ("<", ">")
    out_resets = []
    for s in resets:
        if (what := _not_a_state(lw, s.name)) is not None:
            lw.error("E206", s.name_span, f"`reset` can only change state variables, and `{s.name}` {what}")
            continue
        rr = lw.lower(s.expr)
        if rr is None or s.name not in lw.dims:
            continue
        want = DIMENSIONLESS if s.op in ("*=", "/=") else lw.dims[s.name]
        if rr[1] != want and not _is_zero(s.expr):
            lw.error(
                "E301",
                s.name_span,
                f"reset `{s.name} {s.op} …`: the value has dimension {describe(rr[1])} but must be {describe(want)}",
            )
            continue
        if s.op == "/=" and rr[0] == 0:
            lw.error("E304", s.name_span, f"reset `{s.name} /= …` divides by zero")
            continue
        out_resets.append(Reset(s.name, s.op, rr[0], s.name_span))
    refractory = refr_span = None
    for extra in refr[1:]:
        lw.error("E206", extra.name_span, "a second `refractory` period")
    if refr:
        rr = lw.lower(refr[0].expr)
        if rr is not None:
            if rr[1] != TIME:
                lw.error(
                    "E301",
                    refr[0].name_span,
                    f"the refractory period has dimension {describe(rr[1])}; it must be a time",
                    "write e.g. `refractory 2 ms`",
                )
            elif {s.name for s in rr[0].free_symbols} - {d for d, v in lw.decls.items() if v.kind == "parameter"}:
                lw.error("E205", refr[0].name_span, "the refractory period must be a constant or a parameter")
            elif (
                (
                    value := _as_float(
                        rr[0].xreplace({symbol(p): e for p, e in lw.exprs.items() if lw.decls[p].kind == "parameter"})
                    )
                )
                is not None
                and value < 0
                and not rr[0].is_Symbol
            ):  # a parameter: checked at its value (checks.py)
                lw.error("E206", refr[0].name_span, f"the refractory period is negative ({value:g} ms)")
            else:
                refractory, refr_span = rr[0], refr[0].name_span
        if membrane is None and refractory is not None:
            lw.error(
                "E206",
                refr[0].name_span,
                "a refractory period needs a membrane potential to hold (a `charge` relation)",
            )
    if condition is None:
        return None
    shown = display_expr(th.expr, frozenset(lw.decls))
    return Event(condition, strict, rel, th.name_span, tuple(out_resets), refractory, refr_span, shown)


def load_model(path) -> Model:
    """Return the checked model of the file at ``path``."""
    return build_model(L.parse_model(path))


def lower_constant(node, file: str = "<value>") -> tuple[float, Dimension]:
    """Return (value in internal units, dimension) of a constant expression's syntax tree."""
    lw = _Lowerer(L.SyntaxTree(file, "", "", "", None, ()))
    r = lw.lower(node)
    if r is None:
        raise ModelError(lw.diags)
    expr, dim = r
    span = getattr(node, "span", None)
    if expr.free_symbols:
        raise ModelError([Diagnostic("E205", span, "expected a constant (a number with a unit)")])
    value = _as_float(expr)
    if value is None:
        raise ModelError([Diagnostic("E304", span, "not a finite real number")])
    return value, dim


def parse_quantity(text: str, what: str = "value") -> tuple[float, Dimension]:
    """Return (value in internal units, dimension) of a constant like ``10 uA/cm^2``.

    Raises ModelError whose diagnostic points into ``text``.
    """
    return lower_constant(L.parse_expression(text, file=what), what)

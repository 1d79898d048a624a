"""The model language's functions: one table, read by the parser, the unit checker, LaTeX and every printer.

Each :class:`Function` says how many arguments it takes, what dimensions they may have and the
result has (:data:`DIMENSION_RULES`), how it lowers to sympy, how a model's text displays it,
its LaTeX where sympy's default will not do, and how each target spells the sympy node it
lowers to (``numpy``: the vectorised writer's ufunc; ``python``: scalar code on floats;
``numba``: numba's per-neuron code; ``c``: C99 / CUDA C++), and how each exporter's format
spells it (``brian2``, ``lems``: NeuroML's LEMS expressions, ``nmodl``). A spelling is a name
called with the arguments (``np.exp``), or a text with ``{}`` for the argument
(``(math.exp({}) - 1.0)``). The code targets spell every function of a sympy class of its own;
a format's column may leave a function out: the format has no such function, and its exporter
refuses a model that uses it (exprel aside: a format without it gets ``(exp(x) - 1)/x``).
``helpers`` names, per target, the functions of the generated module that a spelling calls, so
that the generator emits the helpers that the expressions need.

Adding a function (``erf``, ``atan``) is one entry here (or one :func:`register` call).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import mpmath
import sympy
from sympy.codegen.cfunctions import expm1

__all__ = [
    "Function",
    "FUNCTIONS",
    "ARITIES",
    "DIMENSION_RULES",
    "TARGETS",
    "EXPORT_TARGETS",
    "exprel",
    "register",
    "unregister",
    "for_node",
    "spelling",
]

# the targets whose spellings the table holds (a printer names its target; numba falls back to python)
TARGETS = ("numpy", "python", "numba", "c")
# the exporters' formats, whose columns may leave out functions the format lacks
EXPORT_TARGETS = ("brian2", "lems", "nmodl")
_FALLBACK = {"numba": "python"}

# how a function's argument dimensions give its result's (checked in model.py)
DIMENSION_RULES = {
    "dimensionless": "one dimensionless argument; the result is dimensionless",
    "same": "arguments of one dimension (zeros aside), which the result has",
    "sqrt": "any dimension; the result has its square root",
    "any": "any dimension; the result is dimensionless",
    "condition": "a comparison, then two values of one dimension, which the result has",
}


class exprel(sympy.Function):  # noqa: N801 (the language's name; printed as _exprel)
    """(exp(x) - 1)/x, which is 1 at x = 0: removes the 0/0 of rate functions like HH's alpha_m.

    A model may write it (``alpha_m = 1/exprel(-(V + 40 mV)/10 mV) / ms``, as Brian2 users do),
    and :func:`modelgen.optimise.regularize` rewrites ``u/(1 - exp(-u))`` through it.
    """

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sympy.Integer(1)

    def fdiff(self, argindex=1):
        x = self.args[0]
        return (sympy.exp(x) * x - sympy.exp(x) + 1) / x**2

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return (sympy.exp(x) - 1) / x

    def _eval_evalf(self, prec):
        x = self.args[0]._eval_evalf(prec)
        if x is None or not x.is_Number:
            return None
        with mpmath.workprec(prec + 20):  # expm1: exact relative precision near 0, where exp(x) - 1 cancels
            m = x._to_mpmath(prec + 20)
            value = mpmath.mpf(1) if m == 0 else mpmath.expm1(m) / m
        return sympy.Float._new(value._mpf_, prec)

    def _latex(self, printer, exp=None):
        tex = rf"{FUNCTIONS['exprel'].latex}\left({printer._print(self.args[0])}\right)"
        return f"{tex}^{{{exp}}}" if exp else tex


@dataclass(frozen=True)
class Function:
    """One function of the model language (see the module's docstring)."""

    name: str
    arity: tuple[int, int]  # (fewest, most) arguments
    dimension: str  # a key of DIMENSION_RULES
    lower: Callable[..., sympy.Expr]  # sympy arguments -> the checked model's expression
    node: type | None = None  # the sympy class that lowering gives and printers print (None: none of its own)
    display: type | None = None  # the sympy class that shows the call as written (None: f(x) undefined)
    latex: str | None = None  # LaTeX of the name where sympy's default will not do
    spellings: dict[str, str] = field(default_factory=dict)  # target -> spelling
    helpers: dict[str, tuple[str, ...]] = field(default_factory=dict)  # target -> module functions it calls

    def spelled(self, target: str) -> str | None:
        """Return the spelling for ``target`` (numba: python's where it has none of its own)."""
        out = self.spellings.get(target)
        if out is None and target in _FALLBACK:
            out = self.spellings.get(_FALLBACK[target])
        return out


def _unary(name: str, node: type, **other: str) -> Function:
    """Return the entry of a dimensionless function that sympy, numpy, Python's math, C and the
    exporters' formats share by name (``other``: a target's spelling where it differs)."""
    spellings = {"numpy": f"np.{name}", "python": f"math.{name}", "c": name}
    spellings.update({target: name for target in EXPORT_TARGETS}, **other)
    return Function(name, (1, 1), "dimensionless", node, node, node, spellings=spellings)


def _log10(v):
    return sympy.log(v, 10)


def _log1p(v):
    return sympy.log(1 + v)


def _expm1(v):
    return sympy.exp(v) - 1


def _heaviside(v):
    return sympy.Piecewise((1, v > 0), (0, True))


def _where(cond, a, b):
    return sympy.Piecewise((a, cond.func(*cond.args)), (b, True))


def _clip(x, lo, hi):
    return sympy.Min(sympy.Max(x, lo), hi)


FUNCTIONS: dict[str, Function] = {}
ARITIES: dict[str, tuple[int, int]] = {}  # name -> (fewest, most) arguments: what the parser needs
_BY_NODE: dict[type, Function] = {}


def register(fn: Function) -> Function:
    """Add (or replace) a function of the model language; return it."""
    if fn.dimension not in DIMENSION_RULES:
        raise ValueError(f"unknown dimension rule {fn.dimension!r}; choose one of {', '.join(DIMENSION_RULES)}")
    FUNCTIONS[fn.name] = fn
    ARITIES[fn.name] = fn.arity
    if fn.node is not None:
        _BY_NODE[fn.node] = fn
    return fn


def unregister(name: str) -> None:
    """Remove a function added by :func:`register` (tests)."""
    fn = FUNCTIONS.pop(name)
    del ARITIES[name]
    if fn.node is not None and _BY_NODE.get(fn.node) is fn:
        del _BY_NODE[fn.node]


def for_node(node: type) -> Function | None:
    """Return the entry whose sympy class is ``node`` (exp, Abs, Max, exprel, ...), if any."""
    return _BY_NODE.get(node)


def spelling(node: type, target: str) -> str | None:
    """Return how ``target`` spells the sympy class ``node``, or None where the table has no spelling."""
    fn = _BY_NODE.get(node)
    return fn.spelled(target) if fn is not None else None


# exp goes through the module's branch-free _exp in numba's block kernel, so that loops over neurons
# compile to SIMD instructions (numba's math.exp is a call into libm, which it cannot vectorise)
register(
    Function(
        "exp",
        (1, 1),
        "dimensionless",
        sympy.exp,
        sympy.exp,
        sympy.exp,
        spellings={
            **{"numpy": "np.exp", "python": "math.exp", "numba": "_exp", "c": "exp"},
            **{"brian2": "exp", "lems": "exp", "nmodl": "exp"},
        },
        helpers={"numba": ("_exp",)},
    )
)
# the language's expm1 lowers to exp(x) - 1 (sympy simplifies through it); the node expm1 is the
# exponential-Euler factor's. exp(.) - 1 is cheaper than expm1 in numpy and in compiled code (a libm
# call of about twice exp's cost), to round-off of the update; numba's _expm1 is the series near 0.
register(
    Function(
        "expm1",
        (1, 1),
        "dimensionless",
        _expm1,
        expm1,
        spellings={"numpy": "np.expm1", "python": "(math.exp({}) - 1.0)", "numba": "_expm1", "c": "expm1"},
        helpers={"numba": ("_expm1",)},
    )
)
register(
    Function(
        "exprel",
        (1, 1),
        "dimensionless",
        exprel,
        exprel,
        exprel,
        latex=r"\operatorname{exprel}",
        spellings={
            **{"numpy": "_exprel", "python": "_exprel_scalar", "numba": "_exprel_lane", "c": "_exprel"},
            "brian2": "exprel",  # LEMS and NMODL have none: their exporters write (exp(x) - 1)/x
        },
        helpers={
            "numpy": ("_exprel",),
            "python": ("_exprel_scalar",),
            "numba": ("_exprel_lane",),
            "c": ("_exprel",),
        },
    )
)
register(_unary("log", sympy.log, lems="ln"))
register(
    Function(
        "log10", (1, 1), "dimensionless", _log10, spellings={"numpy": "np.log10", "python": "math.log10", "c": "log10"}
    )
)
register(
    Function(
        "log1p", (1, 1), "dimensionless", _log1p, spellings={"numpy": "np.log1p", "python": "math.log1p", "c": "log1p"}
    )
)
register(
    Function(
        "sqrt",
        (1, 1),
        "sqrt",
        sympy.sqrt,
        display=sympy.sqrt,
        spellings={
            **{"numpy": "np.sqrt", "python": "math.sqrt", "c": "sqrt"},
            **{"brian2": "sqrt", "lems": "sqrt", "nmodl": "sqrt"},
        },
    )
)
register(
    Function(
        "abs",
        (1, 1),
        "same",
        sympy.Abs,
        sympy.Abs,
        sympy.Abs,
        spellings={
            **{"numpy": "np.absolute", "python": "abs", "c": "fabs"},
            **{"brian2": "abs", "lems": "abs", "nmodl": "fabs"},
        },
    )
)
for _name, _node in (
    ("sin", sympy.sin),
    ("cos", sympy.cos),
    ("tan", sympy.tan),
    ("sinh", sympy.sinh),
    ("cosh", sympy.cosh),
    ("tanh", sympy.tanh),
):
    register(_unary(_name, _node))
register(
    Function(
        "min",
        (2, 8),
        "same",
        sympy.Min,
        sympy.Min,
        sympy.Min,
        spellings={"numpy": "np.minimum", "python": "min", "c": "fmin"},
    )
)
register(
    Function(
        "max",
        (2, 8),
        "same",
        sympy.Max,
        sympy.Max,
        sympy.Max,
        spellings={"numpy": "np.maximum", "python": "max", "c": "fmax"},
    )
)
register(Function("clip", (3, 3), "same", _clip))
register(Function("where", (3, 3), "condition", _where))
# LEMS's step function H (1/2 at 0); the lowered Piecewise is what the LEMS printer writes with it
register(Function("heaviside", (1, 1), "any", _heaviside, spellings={"lems": "H"}))

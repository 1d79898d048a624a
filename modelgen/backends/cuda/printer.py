"""CUDA C++ expressions of one neuron's step, in double or single precision.

A subclass of sympy's C99 printer (operators, precedence, relations), with every function's
CUDA spelling in one table (:data:`SPELLINGS`), numbers written as literals of the kernel's
precision (``0.5`` or ``0.5f``: no silent promotion of single-precision code to double),
small integer powers as products, and model names that C++ or CUDA reserve renamed.
"""

from __future__ import annotations

import sympy
from sympy.codegen.cfunctions import expm1
from sympy.printing.c import C99CodePrinter
from sympy.printing.precedence import precedence

from ...model import exprel

__all__ = ["SPELLINGS", "CudaPrinter", "cxx_names", "RESERVED", "float_literal"]

# Every function the step program can hold -> its CUDA spelling in double precision; the
# single-precision function is the same name with `f` appended (expf, fminf). `_exprel` is the
# generated source's own (exp(x) - 1)/x, equal to 1 at x = 0.
# (When the function table of issue 12 lands, this dict is read from its `c` column.)
SPELLINGS: dict[str, str] = {
    "exp": "exp",
    "expm1": "expm1",
    "log": "log",
    "sqrt": "sqrt",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "sinh": "sinh",
    "cosh": "cosh",
    "tanh": "tanh",
    "Abs": "fabs",
    "Max": "fmax",
    "Min": "fmin",
    "Pow": "pow",
    "exprel": "_exprel",
}
_SYMPY_FUNCTIONS = {
    "exp": sympy.exp,
    "expm1": expm1,
    "log": sympy.log,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "tanh": sympy.tanh,
    "Abs": sympy.Abs,
    "exprel": exprel,
}

# names a model's value may not keep in the kernel: C++ keywords, CUDA's built-in variables and
# every math function the kernel may call (a local `exp` would hide exp())
RESERVED = frozenset(
    """alignas alignof and asm auto bool break case catch char class const constexpr const_cast
    continue decltype default delete do double dynamic_cast else enum explicit export extern false
    float for friend goto if inline int long mutable namespace new noexcept not nullptr operator or
    private protected public register reinterpret_cast return short signed sizeof static
    static_assert static_cast struct switch template this thread_local throw true try typedef typeid
    typename union unsigned using virtual void volatile wchar_t while xor
    threadIdx blockIdx blockDim gridDim warpSize atomicAdd isfinite isnan isinf fma pow powf
    sqrt sqrtf fabs fabsf fmax fmaxf fmin fminf""".split()
) | {f for name in SPELLINGS.values() for f in (name, name + "f")}


def cxx_names(names: list[str]) -> dict[str, str]:
    """Return ``name -> name_`` (more ``_`` if taken) for each of ``names`` that C++ or CUDA reserves."""
    taken = set(names)
    out = {}
    for n in sorted(names):
        if n in RESERVED:
            new = n + "_"
            while new in taken or new in RESERVED:
                new += "_"
            out[n] = new
            taken.add(new)
    return out


def float_literal(x: float, single: bool) -> str:
    """Return ``x`` as a C++ literal: the shortest text that reads back as the double ``x``
    (``0.5``, ``1.0e-5``), with ``f`` in single precision (rounded once, as numpy casts it)."""
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError(f"cannot write {x} as a C++ literal")
    text = f"{int(x)}.0" if x == int(x) and abs(x) < 1e15 else repr(x)
    return text + ("f" if single else "")


class CudaPrinter(C99CodePrinter):
    """Expressions of one neuron's step as CUDA C++ of ``real`` type (``double`` or ``float``)."""

    def __init__(self, names: dict[str, str] | None = None, single: bool = False):
        super().__init__({"allow_unknown_functions": False})
        self.names = names or {}
        self.single = single
        self.real = "float" if single else "double"

    def fn(self, name: str) -> str:
        """Return the spelling of function ``name`` (a key of SPELLINGS) in this precision."""
        spelling = SPELLINGS[name]
        return spelling + "f" if self.single and not spelling.startswith("_") else spelling

    def doprint(self, expr, assign_to=None):
        # non-integer rationals as literals of this precision (3/10*x reads 0.3*x)
        expr = sympy.sympify(expr)
        rationals = {r: sympy.Float(float(r)) for r in expr.atoms(sympy.Rational) if not r.is_Integer}
        return super().doprint(expr.xreplace(rationals) if rationals else expr, assign_to)

    def _print_Symbol(self, expr):
        return self.names.get(expr.name, expr.name)

    def _print_Float(self, expr):
        return float_literal(float(expr), self.single)

    def _print_Rational(self, expr):
        return float_literal(float(expr), self.single)

    def _print_Integer(self, expr):
        # a real literal: 2 * x in float stays float, and 1/2 is never an integer division
        return float_literal(float(expr), self.single)

    def _print_Half(self, expr):
        return float_literal(0.5, self.single)

    def _print_Pow(self, expr):
        base, exp = expr.as_base_exp()
        one = float_literal(1.0, self.single)
        if exp.is_Integer and exp < 0:
            inner = base if exp == -1 else base ** (-exp)
            return f"{one}/" + self.parenthesize(inner, precedence(expr) + 1)
        if exp.is_Integer and 1 < exp <= 4:  # x*x*x: exact products, cheaper than pow()
            b = self.parenthesize(base, precedence(sympy.Mul(2, base, evaluate=False)))
            return "*".join([b] * int(exp))
        if exp.is_Number and float(exp) == 0.5:  # (doprint made the rational 1/2 a float)
            return f"{self.fn('sqrt')}({self._print(base)})"
        if exp.is_Number and float(exp) == -0.5:
            return f"{one}/{self.fn('sqrt')}({self._print(base)})"
        return f"{self.fn('Pow')}({self._print(base)}, {self._print(exp)})"

    def _nested(self, fn: str, args) -> str:
        args = [self._print(a) for a in sorted(args, key=sympy.default_sort_key)]
        out = args[0]
        for a in args[1:]:
            out = f"{self.fn(fn)}({out}, {a})"
        return out

    def _print_Max(self, expr):
        return self._nested("Max", expr.args)

    def _print_Min(self, expr):
        return self._nested("Min", expr.args)

    def _print_Piecewise(self, expr):
        # the last branch of our Piecewise is always (value, True): nested conditionals on one line
        out = self._print(expr.args[-1][0])
        for value, cond in reversed(expr.args[:-1]):
            out = f"(({self._print(cond)}) ? ({self._print(value)}) : ({out}))"
        return out

    def _print_Relational(self, expr):
        return f"{self.parenthesize(expr.lhs, 0)} {expr.rel_op} {self.parenthesize(expr.rhs, 0)}"

    def _print_Function(self, expr):
        for name, f in _SYMPY_FUNCTIONS.items():
            if expr.func == f:
                return f"{self.fn(name)}({', '.join(self._print(a) for a in expr.args)})"
        raise NotImplementedError(f"the CUDA backend cannot print {expr.func.__name__}(); add it to SPELLINGS")

    _print_exp = _print_log = _print_Abs = _print_expm1 = _print_exprel = _print_Function
    _print_sin = _print_cos = _print_tan = _print_sinh = _print_cosh = _print_tanh = _print_Function

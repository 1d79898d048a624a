"""CUDA C++ expressions of one neuron's step, in double or single precision.

The shared printer base (:class:`~modelgen.backends.base.CodePrinter`) over sympy's C99 printer
(operators, precedence, relations): functions are spelled from the table's ``c`` column
(:mod:`modelgen.functions`), with ``f`` appended in single precision (``expf``, ``fmaxf``: no
silent promotion to double); numbers are literals of the kernel's precision (``0.5`` or
``0.5f``); model names that C++ or CUDA reserve are renamed (:func:`cxx_names`).
"""

from __future__ import annotations

import sympy
from sympy.printing.c import C99CodePrinter

from ... import functions as F
from ..base import CodePrinter, float_text

__all__ = ["CudaPrinter", "cxx_names", "reserved_names"]

# names a model's value may not keep in the kernel: C++ keywords, CUDA's built-in variables and
# functions the kernel calls itself; every function of the table's c column joins them
# (reserved_names), since a local `exp` would hide exp()
_CXX_RESERVED = frozenset(
    """alignas alignof and asm auto bool break case catch char class const constexpr const_cast
    continue decltype default delete do double dynamic_cast else enum explicit export extern false
    float for friend goto if inline int long mutable namespace new noexcept not nullptr operator or
    private protected public register reinterpret_cast return short signed sizeof static
    static_assert static_cast struct switch template this thread_local throw true try typedef typeid
    typename union unsigned using virtual void volatile wchar_t while xor
    threadIdx blockIdx blockDim gridDim warpSize atomicAdd isfinite isnan isinf fma pow powf""".split()
)


def reserved_names() -> frozenset[str]:
    """Return the names the kernel reserves: C++'s and CUDA's, and each C spelling of the function
    table in both precisions (``exp``, ``expf``)."""
    spelled = {fn.spellings["c"] for fn in F.FUNCTIONS.values() if "c" in fn.spellings}
    return _CXX_RESERVED | {name + suffix for name in spelled if name.isidentifier() for suffix in ("", "f")}


def cxx_names(names: list[str]) -> dict[str, str]:
    """Return ``name -> name_`` (more ``_`` if taken) for each of ``names`` that C++ or CUDA reserves."""
    reserved = reserved_names()
    taken = set(names)
    out = {}
    for n in sorted(names):
        if n in reserved:
            new = n + "_"
            while new in taken or new in reserved:
                new += "_"
            out[n] = new
            taken.add(new)
    return out


class CudaPrinter(CodePrinter, C99CodePrinter):
    """Expressions of one neuron's step as CUDA C++ of ``real`` type (``double`` or ``float``)."""

    target = "c"
    small_powers = True  # x*x*x: exact products, cheaper than pow()
    variadic_min_max = False  # fmax(fmax(a, b), c)
    select = ("(({cond}) ? ({value}) : ({rest}))", "{}", "{}")

    def __init__(self, names: dict[str, str] | None = None, single: bool = False):
        super().__init__(names, {"allow_unknown_functions": False})
        self.single = single
        self.real = "float" if single else "double"

    def spelling(self, fn: F.Function) -> str | None:
        """Return the table's C spelling of ``fn``, a C math function with ``f`` in single precision
        (the module's own helpers, ``_exprel``, take the kernel's precision as they are)."""
        spelled = super().spelling(fn)
        if self.single and spelled is not None and spelled.isidentifier() and not spelled.startswith("_"):
            return spelled + "f"
        return spelled

    def literal(self, x: float) -> str:
        """Return ``x`` as a literal of the kernel's precision: the shortest text that reads back as
        the double ``x``, with ``f`` in single precision (rounded once, as numpy casts it)."""
        return float_text(x) + ("f" if self.single else "")

    def _print_Float(self, expr):
        return self.literal(float(expr))

    _print_Rational = _print_Float

    def _print_Integer(self, expr):
        # a real literal: 2 * x in float stays float, and 1/2 is never an integer division
        return self.literal(float(expr))

    def _print_Half(self, expr):
        return self.literal(0.5)

    def _general_power(self, expr, rational=False) -> str:
        base, exp = expr.as_base_exp()
        if exp.is_Number and abs(float(exp)) == 0.5:  # doprint made the exponent 1/2 the float 0.5
            root = f"{self.spelling(F.FUNCTIONS['sqrt'])}({self._print(base)})"
            return root if exp > 0 else f"{self._print(sympy.S.One)}/" + root
        return f"{'powf' if self.single else 'pow'}({self._print(base)}, {self._print(exp)})"

    def _print_Relational(self, expr):
        return f"{self.parenthesize(expr.lhs, 0)} {expr.rel_op} {self.parenthesize(expr.rhs, 0)}"

"""What the exporters' expression printers share: functions spelled from the function table.

:class:`FormatPrinter` goes before a sympy printer (``class LemsPrinter(FormatPrinter, StrPrinter)``)
and names the printer's ``target``, a format's column of :mod:`modelgen.functions`. A function
that the column leaves out is refused with a message that names the format (exprel aside: it is
written ``(exp(x) - 1)/x``). Numbers (pi too) are printed as Python's shortest float text.
"""

from __future__ import annotations

import sympy

from .. import functions as F

__all__ = ["FormatPrinter"]


class FormatPrinter:
    """The exporters' printers' shared base (a mixin before a sympy printer)."""

    target = ""  # a column of modelgen.functions (one of F.EXPORT_TARGETS)
    format_name = ""  # the format as its messages name it (``LEMS``)
    unsupported_note = ""  # added to the message that refuses a function
    caret_powers = False  # x^(y) and 1/x; else powers as the sympy printer writes them

    def _print(self, expr, **kwargs):
        fn = F.for_node(type(expr))
        if fn is not None and fn.arity[1] == 1:  # min and max (any number of arguments): each printer's own
            return self._print_Function(expr)
        return super()._print(expr, **kwargs)

    def _spelling(self, name: str) -> str | None:
        return F.FUNCTIONS[name].spelled(self.target)

    def _print_Function(self, expr) -> str:
        fn = F.for_node(type(expr))
        spelled = fn.spelled(self.target) if fn is not None else None
        if spelled is None and fn is F.FUNCTIONS["exprel"]:
            x = self._print(expr.args[0])
            return f"(({self._spelling('exp')}({x}) - 1)/({x}))"
        if spelled is None:
            raise ValueError(f"{self.format_name} has no function `{type(expr).__name__}`{self.unsupported_note}")
        return f"{spelled}({', '.join(self._print(a) for a in expr.args)})"

    def _print_Float(self, expr) -> str:
        return repr(float(expr))

    def _print_Pi(self, expr) -> str:
        return repr(float(expr))

    def _print_Exp1(self, expr) -> str:
        return f"{self._spelling('exp')}(1)"

    def _print_Pow(self, expr, rational=False) -> str:
        if expr.exp == sympy.Rational(1, 2):
            return f"{self._spelling('sqrt')}({self._print(expr.base)})"
        if not self.caret_powers:
            return super()._print_Pow(expr, rational)
        if expr.exp == -1:
            return f"1/{self.parenthesize(expr.base, 1000)}"
        return f"{self.parenthesize(expr.base, 1000)}^({self._print(expr.exp)})"

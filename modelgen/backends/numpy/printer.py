"""Numpy expressions on whole arrays: ``np.exp``, ``np.where``, nested ``np.maximum``."""

from __future__ import annotations

from sympy.printing.numpy import NumPyPrinter

from ..base import CodePrinter

__all__ = ["NumpyPrinter"]


class NumpyPrinter(CodePrinter, NumPyPrinter):
    """sympy's numpy printer, printing ``np.f`` and readable numbers and branches."""

    target = "numpy"
    variadic_min_max = False
    select = ("np.where({cond}, {value}, {rest})", "{}", "{}")

    def __init__(self, names: dict[str, str] | None = None):
        super().__init__(names, {"fully_qualified_modules": True, "allow_unknown_functions": False})

    def _module_format(self, fqn, register=True):
        s = super()._module_format(fqn, register)
        return "np." + s[len("numpy.") :] if s.startswith("numpy.") else s

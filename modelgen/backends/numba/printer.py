"""Scalar code for numba's block kernel, its exp, expm1 and exprel branch-free (see modelgen.functions)."""

from __future__ import annotations

from ..base import ScalarPrinter

__all__ = ["NumbaPrinter"]


class NumbaPrinter(ScalarPrinter):
    """Scalar code for numba's block kernel: exp, expm1 and exprel through the module's own
    branch-free versions (``_exp``, ``_expm1``, ``_exprel_lane``: the table's numba column), so that
    loops over neurons compile to SIMD instructions (numba's math.exp is a call into libm, which the
    compiler cannot vectorise without Intel's SVML, absent from llvmlite's PyPI wheels)."""

    target = "numba"

"""The numba backend (compiled per-neuron and SIMD block kernels); see :mod:`.backend`."""

from .backend import NumbaBackend
from .printer import NumbaPrinter

__all__ = ["BACKEND", "NumbaBackend", "NumbaPrinter"]

BACKEND = NumbaBackend()

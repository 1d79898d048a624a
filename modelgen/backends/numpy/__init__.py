"""The numpy backend (vectorised ufunc steps over cache-sized blocks, a Python per-neuron kernel); see :mod:`.backend`."""

from .backend import NumpyBackend
from .printer import NumpyPrinter
from .ufuncs import UfuncWriter

__all__ = ["BACKEND", "NumpyBackend", "NumpyPrinter", "UfuncWriter"]

BACKEND = NumpyBackend()

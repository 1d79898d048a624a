"""The cuda backend (one CUDA thread per neuron, many steps per launch, compiled by CuPy); see :mod:`.backend`."""

from __future__ import annotations

from ...derive import MembraneDerivation
from ...model import Model
from ...schemes import Plan
from .backend import INSTALL_HINT, KERNEL, CudaBackend, GpuUnavailableError
from .printer import CudaPrinter

__all__ = ["BACKEND", "CudaBackend", "CudaPrinter", "GpuUnavailableError", "KERNEL", "INSTALL_HINT", "kernel_source"]

BACKEND = CudaBackend()


def kernel_source(
    model: Model, derivation: MembraneDerivation | None, plan: Plan, single: bool, build_hash: str
) -> str:
    """Return the CUDA C++ source of the kernel that advances ``model`` by ``plan``, in single or double precision."""
    context = BACKEND.module_context(model, derivation, plan, build_hash, None)
    return context["source32" if single else "source64"]

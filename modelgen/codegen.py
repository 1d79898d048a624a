"""Code generation: a checked model and its integration plan -> a simulator module (text), by backend.

This module only dispatches: each backend (:mod:`modelgen.backends`: ``numpy``, ``numba``, ...)
prints the one step program (:func:`modelgen.optimise.step_program`) with its own printer and
templates. Here: which backends exist, the build hash that a generated module records, and the
names that generated code reserves.

The output is deterministic: the same model, method, backend and toolkit give
byte-identical text.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from . import __version__, backends
from .backends.base import generated_names, python_names, template_names
from .derive import MembraneDerivation
from .functions import exprel
from .model import Model
from .optimise import DT, regularize
from .schemes import Plan

__all__ = [
    "generate_code",
    "build_hash",
    "toolkit_fingerprint",
    "toolkit_files",
    "BACKENDS",
    "exprel",
    "regularize",
    "DT",
    "generated_names",
    "python_names",
    "template_names",
]

BACKENDS = backends.names()


def toolkit_files(root: Path | None = None) -> list[Path]:
    """Return the files of the code generator (under ``root``, default modelgen's folder): every module
    and template, the backends' included, in a fixed order."""
    root = root or Path(__file__).parent
    files = [*root.rglob("*.py"), *root.rglob("*.j2")]
    return sorted(files, key=lambda f: f.relative_to(root).as_posix())


def fingerprint(root: Path | None = None) -> str:
    """Return a hash of the code generator's files under ``root`` (see :func:`toolkit_files`) and its version."""
    root = root or Path(__file__).parent
    h = hashlib.sha256(__version__.encode())
    for f in toolkit_files(root):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def toolkit_fingerprint() -> str:
    """Return a hash of the code generator itself: its modules and every backend's modules and templates."""
    return fingerprint()


def build_hash(model: Model, method: str, backend: str = "numpy") -> str:
    """Return the hash recorded in generated code: model source, method, backend and toolkit."""
    h = hashlib.sha256()
    h.update(model.source.encode("utf-8"))
    h.update(f"\0{method}\0{toolkit_fingerprint()}".encode())
    if backend != "numpy":
        h.update(f"\0{backend}".encode())
    return h.hexdigest()


def generate_code(
    model: Model,
    derivation: MembraneDerivation | None,
    plan: Plan,
    backend: str = "numpy",
    hash_value: str | None = None,
    origin: str | None = None,
) -> str:
    """Return the text of the generated module for ``model`` integrated by ``plan``.

    ``hash_value`` is the build hash to record (default: that of ``plan.method`` and ``backend``);
    ``origin``, if given, the model file the module belongs to (see :mod:`modelgen.cache`).
    Raises :class:`modelgen.backends.UnknownBackendError` (a ValueError) for a backend no one registered.
    """
    generator = backends.get(backend)
    return generator.generate(model, derivation, plan, hash_value or build_hash(model, plan.method, backend), origin)

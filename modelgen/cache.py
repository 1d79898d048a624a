"""Where generated modules live: one function names every module, in the cache or in a named folder.

Without a folder named by the user, modules go to modelgen's cache, in the user's cache directory
(``platformdirs``; ``MODELGEN_CACHE_DIR`` overrides it), one folder per modelgen version, and are
named by what they were built from: ``<stem>-<build hash[:16]>.py``. Two different models never
share a module there, and the same model loaded from anywhere reuses one.

In a folder the user names (``modelgen build``'s ``generated/``, ``-o DIR``, ``out_dir=``) modules
keep readable names, ``<stem>.py``, and record which model file they belong to (``# source path:``,
relative to the folder, so a project can move). A module there belongs to one model file: building
another file with the same name into the same folder is refused (:class:`ModuleClashError`)
rather than letting the two overwrite each other.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .integrity import HEADER_LINES, header_field

__all__ = [
    "CACHE_ENV",
    "ModuleClashError",
    "cache_root",
    "cache_dir",
    "readable_stem",
    "module_path",
    "origin_of",
    "claim",
    "CacheUsage",
    "cache_usage",
    "clear_cache",
]

CACHE_ENV = "MODELGEN_CACHE_DIR"
ORIGIN_FIELD = "source path"  # the header line naming a module's model file, relative to its folder


class ModuleClashError(Exception):
    """A folder's module of that name belongs to another model file."""


def cache_root() -> Path:
    """Return the folder of modelgen's cache: ``$MODELGEN_CACHE_DIR``, else the user's cache directory."""
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("modelgen", appauthor=False))


def cache_dir() -> Path:
    """Return the cache folder of this modelgen version (modules of other versions are never run)."""
    return cache_root() / __version__


def readable_stem(name: str) -> str:
    """Return ``name`` (a file's stem or a model's name) as a file name: ASCII letters, digits,
    ``_`` and ``-`` kept (so ``hh-1`` and ``hh_1`` differ), anything else written ``_``."""
    out = "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in name)
    if not out or not (out[0].isalpha() or out[0] == "_"):
        out = "m_" + out
    return out


def module_path(stem: str, build_hash: str, backend: str = "numpy", out_dir: str | os.PathLike | None = None) -> Path:
    """Return the path of the module built with ``build_hash`` for a model called ``stem``.

    ``out_dir`` None: in the cache, named by content (``<stem>-<hash[:16]>.py``); else in that
    folder, named readably (``<stem>.py``). The numba backend's modules end in ``_numba``.
    """
    suffix = "" if backend == "numpy" else f"_{backend}"
    if out_dir is None:
        return cache_dir() / f"{stem}-{build_hash[:16]}{suffix}.py"
    return Path(out_dir) / f"{stem}{suffix}.py"


def origin_of(source: Path | None, out_dir: str | os.PathLike) -> str | None:
    """Return the model file ``source`` as recorded by a module in ``out_dir`` (a path relative to
    that folder, with ``/``), or None for a model that has no file (``load_text``)."""
    if source is None:
        return None
    src, folder = Path(source).resolve(), Path(out_dir).resolve()
    try:
        return Path(os.path.relpath(src, folder)).as_posix()
    except ValueError:  # another drive (Windows): no relative path
        return src.as_posix()


def claim(target: Path, origin: str | None, source: Path | None) -> None:
    """Raise ModuleClashError if the module at ``target`` belongs to a model file other than ``origin``.

    A missing, unreadable or unowned module (one of a model without a file) may be replaced.
    """
    try:
        with open(target, encoding="utf-8", errors="replace") as f:
            head = "".join(f.readline() for _ in range(HEADER_LINES))
    except OSError:
        return
    owner = header_field(head, ORIGIN_FIELD)
    if owner is None or owner == origin:
        return
    what = f"{source}" if source is not None else "a model given as text"
    raise ModuleClashError(
        f"{target} is the module of another model file ({owner}, relative to {target.parent}); "
        f"{what} has the same name, so it was not built there: build it into another folder (-o DIR, "
        "or out_dir=), or leave out the folder to use modelgen's cache"
    )


@dataclass(frozen=True)
class CacheUsage:
    """What the cache holds: per modelgen version, how many modules and how many bytes (all files)."""

    root: Path
    versions: dict[str, tuple[int, int]]

    @property
    def modules(self) -> int:
        return sum(n for n, _ in self.versions.values())

    @property
    def size(self) -> int:
        return sum(b for _, b in self.versions.values())


def _version_folders(root: Path) -> list[Path]:
    """Return the cache's version folders (named like ``0.1.0``); other entries are left alone."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name[:1].isdigit() and "." in p.name)


def cache_usage() -> CacheUsage:
    """Return how many modules and bytes the cache holds, per modelgen version."""
    root = cache_root()
    versions = {}
    for folder in _version_folders(root):
        files = [p for p in folder.rglob("*") if p.is_file()]
        versions[folder.name] = (
            sum(1 for p in files if p.parent == folder and p.suffix == ".py"),
            sum(p.stat().st_size for p in files),
        )
    return CacheUsage(root, versions)


def clear_cache() -> CacheUsage:
    """Delete the cache's version folders (modules and numba's compiled code); return what was there.

    Only folders named like a version are removed, so a ``MODELGEN_CACHE_DIR`` pointing at a
    folder with other contents loses nothing else. A module in use by a running process stays
    loaded there; its next build writes it again.
    """
    before = cache_usage()
    for folder in _version_folders(before.root):
        shutil.rmtree(folder, ignore_errors=True)
    return before

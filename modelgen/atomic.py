"""Writing files and folders so that a failed or killed write never destroys what was there.

Every file modelgen writes (generated modules, saved results, sweep tables) is written under a
unique temporary name in the target's own folder, flushed to disk, and then renamed over the
target: a full disk, an exception or a SIGKILL leaves either the old file or the new one under
the target's name, never a mixture, and two processes writing the same target never share a
temporary file. A results folder is written as a new folder and then swapped with the old one.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_file", "write_text_atomic", "atomic_folder"]


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform allows opening folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temporary_name(target: Path, kind: str) -> str:
    # a dot in front hides it from `ls`; the target's name says what it belongs to
    return f".{target.name}.{kind}-"


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Yield a file object that replaces ``target`` when the block ends without an exception.

    The data goes to a temporary file beside ``target``; on success it is flushed, synced and
    renamed over ``target`` (atomic on POSIX and Windows); on any exception (or interrupt) the
    temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    with _naming(target):
        fd, tmp = tempfile.mkstemp(prefix=_temporary_name(target, "tmp"), dir=target.parent)
        try:
            with os.fdopen(fd, mode, encoding=encoding, newline="" if "b" not in mode else None) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    _fsync_folder(target.parent)


@contextlib.contextmanager
def _naming(target: Path) -> Iterator[None]:
    """Re-raise an OSError about a temporary file as one about ``target`` (what the user asked to write)."""
    try:
        yield
    except OSError as e:
        if e.filename == str(target) or e.errno is None:
            raise
        raise type(e)(e.errno, e.strerror, str(target)) from e


def write_text_atomic(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically; return the target's path."""
    with atomic_file(target, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(target)


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a new, empty folder that takes ``target``'s place when the block ends without an exception.

    The files are written into a temporary folder beside ``target``; on success it is swapped
    with the old folder in one step where Linux allows it (``renameat2`` with RENAME_EXCHANGE),
    else by two renames, the old folder being removed only once the new one is in place. On an
    exception the temporary folder is removed and ``target`` is left as it was.
    """
    target = Path(target)
    with _naming(target):
        new = Path(tempfile.mkdtemp(prefix=_temporary_name(target, "new"), dir=target.parent))
        try:
            yield new
            for f in new.iterdir():
                _fsync_file(f)
            os.chmod(new, 0o777 & ~_umask())
            if not target.exists():
                os.rename(new, target)
            elif _exchange(new, target):
                shutil.rmtree(new, ignore_errors=True)  # `new` now holds the old results
            else:
                old = Path(tempfile.mkdtemp(prefix=_temporary_name(target, "old"), dir=target.parent))
                os.rmdir(old)
                os.rename(target, old)
                os.rename(new, target)
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
    _fsync_folder(target.parent)


def _umask() -> int:
    """Return the process's umask (mkstemp and mkdtemp make private files; results get the usual mode)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2``); return False where unsupported."""
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return done == 0

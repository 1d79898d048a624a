"""A stand-in for the few parts of CuPy that generated cuda modules use, running on the CPU.

``RawModule(code=...)`` compiles the CUDA source as plain C++ with g++ (``cuda_host.h`` maps the
CUDA built-ins) into a shared library; a kernel call runs every thread of the grid one after
another through ctypes. Device arrays are numpy arrays. So the generated module's host code
(input tables, spike buffer and its regrowth, recording, copies back) runs as on a GPU, and the
kernel's text is the text NVRTC would compile; what only a GPU shows (NVRTC itself, real
concurrency, speed, fast-math float32) is not covered.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

HEADER = Path(__file__).with_name("cuda_host.h")
BUILD_DIR = Path(os.environ.get("FAKECUPY_BUILD_DIR") or tempfile.mkdtemp(prefix="fakecupy-"))
CXX = ("g++", "-O2", "-std=c++17", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC")
compile_times: dict[str, float] = {}  # sha256 of the source -> seconds g++ took


class ndarray:
    """A device array: a C-contiguous numpy array."""

    def __init__(self, array: np.ndarray):
        self._a = array

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)

    def __getitem__(self, key):
        return ndarray(self._a[key])

    @property
    def data(self):
        """CuPy's memory pointer: ``.ptr`` is the address of the first element."""
        return _Pointer(self._a.ctypes.data)

    def get(self, out=None):
        if out is None:
            return self._a.copy()
        out[...] = self._a
        return out

    def set(self, array):
        self._a[...] = array

    def fill(self, value):
        self._a.fill(value)

    def copy(self):
        return ndarray(self._a.copy())

    def astype(self, dtype):
        return ndarray(self._a.astype(dtype))

    def __mul__(self, other):
        return ndarray(self._a * (other._a if isinstance(other, ndarray) else other))

    def __add__(self, other):
        return ndarray(self._a + (other._a if isinstance(other, ndarray) else other))


class _Pointer:
    def __init__(self, ptr: int):
        self.ptr = ptr


def sort(x: ndarray) -> ndarray:
    return ndarray(np.sort(x._a))


def asarray(x, dtype=None) -> ndarray:
    return x if isinstance(x, ndarray) and dtype is None else ndarray(np.array(x, dtype=dtype, order="C"))


def zeros(shape, dtype=float) -> ndarray:
    return ndarray(np.zeros(shape, dtype=dtype))


def copyto(dst: ndarray, src: ndarray) -> None:
    np.copyto(dst._a, src._a)


def asnumpy(x) -> np.ndarray:
    return x.get() if isinstance(x, ndarray) else np.asarray(x)


class _Runtime:
    @staticmethod
    def getDeviceCount() -> int:
        return 1


class _Device:
    def synchronize(self) -> None:
        pass


class cuda:  # noqa: N801 (cupy.cuda)
    runtime = _Runtime
    Device = _Device


_SCALARS = {
    np.int32: ctypes.c_int32,
    np.int64: ctypes.c_int64,
    np.uint64: ctypes.c_uint64,
    np.float64: ctypes.c_double,
    np.float32: ctypes.c_float,
}


class _Kernel:
    def __init__(self, function, set_thread):
        self.function, self.set_thread = function, set_thread
        self.launches = 0

    def __call__(self, grid, block, args):
        c_args = []
        for a in args:
            if isinstance(a, ndarray):
                assert a._a.flags.c_contiguous
                c_args.append(ctypes.c_void_p(a._a.ctypes.data))
            else:
                c_args.append(_SCALARS[type(a)](a))
        self.launches += 1
        for b in range(grid[0]):
            for t in range(block[0]):
                self.set_thread(b, t, block[0], grid[0])
                self.function(*c_args)


class RawModule:
    """The kernels of CUDA source compiled as C++ by g++ (once per source text and process)."""

    def __init__(self, code: str, options=(), name_expressions=None):
        digest = hashlib.sha256(code.encode()).hexdigest()[:16]
        library = BUILD_DIR / f"kernel_{digest}.so"
        if not library.exists():
            source = BUILD_DIR / f"kernel_{digest}.cpp"
            source.write_text(code)
            start = time.perf_counter()
            subprocess.run(
                [*CXX, "-include", str(HEADER), str(source), "-o", str(library)],
                check=True,
                capture_output=True,
                text=True,
            )
            compile_times[digest] = time.perf_counter() - start
        self._lib = ctypes.CDLL(str(library))
        self._lib.harness_set_thread.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint]

    def get_function(self, name: str) -> _Kernel:
        return _Kernel(getattr(self._lib, name), self._lib.harness_set_thread)

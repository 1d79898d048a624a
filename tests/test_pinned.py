"""Every bundled model and network gives the numbers it gave before the backend reshaping.

tests/pinned/outputs.npz was written by tests/pinned/make_pins.py from the code as it was
before issue 12 changed code generation (commit 2ca1ee4); every backend, method and size
listed there must still give the same spikes (exactly the same steps) and the same traces to
rounding. The default run keeps each model's own method on numpy; the other methods and the
numba compiles (20 s each) run under ``-m slow``.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "pinned"))
import make_pins  # noqa: E402

PINNED = np.load(make_pins.OUT)


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("generated")


def _same(got: dict, case: tuple) -> None:
    names = sorted(k.rsplit("|", 1)[1] for k in PINNED.files if k.rsplit("|", 1)[0] == make_pins.key(*case))
    assert names and sorted(got) == names, (sorted(got), names)
    for k in names:
        want = PINNED[make_pins.key(*case, k)]
        if k.startswith("spike") or want.dtype.kind != "f":
            np.testing.assert_array_equal(got[k], want, err_msg=f"{case} {k}")
        else:
            np.testing.assert_allclose(got[k], want, rtol=1e-10, atol=1e-10, err_msg=f"{case} {k}")


def _marks(case):
    name, method, backend, n = case
    slow = (backend, method) != ("numpy", "auto")
    return pytest.param(*case, id="-".join(map(str, case)), marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("name,method,backend,n", [_marks(c) for c in make_pins.model_cases()])
def test_model_as_pinned(out_dir, name, method, backend, n):
    if backend == "numba":
        pytest.importorskip("numba")
    _same(make_pins.run_model(name, method, backend, n, out_dir), (name, method, backend, n))


@pytest.mark.parametrize("name", [f.name for f in make_pins.network_files()])
def test_network_as_pinned(out_dir, name):
    _same(make_pins.run_network(name, out_dir), (name,))


def test_pins_cover_every_bundled_model_and_network():
    pinned = {k.split("|", 1)[0] for k in PINNED.files}
    bundled = {f.name for f in make_pins.MODELS.iterdir() if f.suffix in (".model", ".network")}
    assert pinned == bundled - set(make_pins.UNPINNED)

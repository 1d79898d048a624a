"""The backends' registry (modelgen/backends/__init__.py), codegen's dispatch and the toolkit fingerprint."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import modelgen
from modelgen import backends, codegen
from modelgen.cli import main


def test_the_registry_lists_the_backends():
    assert backends.names()[:2] == ("numpy", "numba")
    assert codegen.BACKENDS == backends.names()
    for name in ("numpy", "numba"):
        assert backends.get(name).name == name


def test_an_unknown_backend_is_a_clear_error(lif_path, tmp_path):
    with pytest.raises(backends.UnknownBackendError) as e:
        backends.get("fortran")
    assert str(e.value) == "unknown backend 'fortran'; choose one of " + ", ".join(backends.names())
    m = modelgen.load(lif_path)
    with pytest.raises(ValueError, match="unknown backend 'fortran'; choose one of numpy, numba"):
        m.code(backend="fortran")
    r = CliRunner().invoke(main, ["build", str(lif_path), "-o", str(tmp_path), "--backend", "fortran"])
    assert r.exit_code == 2 and "Invalid value for '--backend'" in r.output and "Traceback" not in r.output


def test_a_backend_is_plugged_in_by_one_registry_entry(lif_path, monkeypatch):
    monkeypatch.setitem(backends.REGISTRY, "numpy_copy", "modelgen.backends.numpy")
    m = modelgen.load(lif_path)
    assert "numpy_copy" in backends.names()
    hashes = ("# build hash:", "# text sha256:", "BUILD_HASH =")
    assert [ln for ln in m.code(backend="numpy_copy").splitlines() if not ln.startswith(hashes)] == [
        ln for ln in m.code().splitlines() if not ln.startswith(hashes)
    ]


def test_importing_modelgen_imports_no_backend():
    code = "import sys, modelgen, modelgen.api, modelgen.cli; print(sorted(m for m in sys.modules if 'numba' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_fingerprint_covers_every_backends_modules_and_templates():
    root = Path(codegen.__file__).parent
    files = set(codegen.toolkit_files())
    backend_files = {*(root / "backends").rglob("*.py"), *(root / "backends").rglob("*.j2")}
    assert {root / "backends" / "numba" / "module.py.j2", root / "backends" / "base.py"} <= backend_files <= files


@pytest.mark.parametrize(
    "changed", ["backends/numba/module.py.j2", "backends/python_module.py.j2", "backends/numpy/ufuncs.py"]
)
def test_changing_a_backends_file_changes_the_fingerprint(tmp_path, changed):
    copy = tmp_path / "modelgen"
    shutil.copytree(Path(codegen.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = codegen.fingerprint(copy)
    assert before == codegen.toolkit_fingerprint()
    with open(copy / changed, "a") as f:
        f.write("\n")
    assert codegen.fingerprint(copy) != before


def test_reserved_names_come_from_every_backends_templates():
    names = codegen.template_names()
    # numba's module only, numpy's module only, the shared module and the shared per-neuron kernel
    assert {"concurrent", "SERIAL_MAX_N", "_advance_blocks"} <= names
    assert {"KERNEL_MAX_N", "_step_vectorised", "_kernel_runs"} <= names
    assert {"initial_state", "make_simulator", "_note_spike", "_k_start"} <= names
    assert names <= codegen.generated_names()

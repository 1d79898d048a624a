"""What ``pip install`` gives is the whole product: a wheel built from the checkout holds the
current library, the templates, the example models, py.typed and the LICENSE, builds without
setuptools warnings, and, installed into a fresh virtual environment and run from an empty
folder, copies the examples, checks and runs a composed model and runs a network with the
same numbers as the checkout.

The fresh environment gets the wheel's own files only (``pip install --no-deps``); numpy, sympy,
jinja2 and click are lent from the environment running the tests by a ``.pth`` file, which adds
their folders *after* the fresh environment's site-packages and runs none of their ``.pth``
files (so an editable install of the checkout there is not seen). The test checks that
``modelgen`` is imported from the fresh environment.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import modelgen
from modelgen.cli import main

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "modelgen" / "library" / "currents"
EXAMPLES = sorted(p.name for p in (ROOT / "models").iterdir() if p.suffix in (".model", ".network"))
# what a wheel is built from: nothing else of the checkout may be needed
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "modelgen", "models")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    """Return the wheel built from a copy of the checkout's sources, and the build's verbose output."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy(path, src / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (path,) = (tmp / "dist").glob("modelgen-*.whl")
    return path, build.stdout + build.stderr


def test_wheel_builds_without_setuptools_warnings(wheel):
    _, log = wheel
    # Python warnings print as "file:line: SomeWarning: message" (setuptools' license-table
    # deprecation, "Package 'modelgen.templates' is absent from the `packages` configuration")
    assert not re.findall(r"\w*Warning: .*", log), re.findall(r"\w*Warning: .*", log)


def test_wheel_holds_the_library_templates_examples_license_and_py_typed(wheel):
    path, _ = wheel
    names = set(zipfile.ZipFile(path).namelist())
    assert {f"modelgen/library/currents/{p.name}" for p in LIBRARY.glob("*.current")} <= names
    assert len(list(LIBRARY.glob("*.current"))) >= 20
    assert {f"modelgen/examples/{name}" for name in EXAMPLES} <= names
    assert {"hh_composed.model", "cuba.network", "two_neurons.network"} <= set(EXAMPLES)
    assert {"modelgen/py.typed", "modelgen/__main__.py", "modelgen/backends/python_module.py.j2"} <= names
    backends = Path(modelgen.__file__).parent / "backends"
    assert {f"modelgen/{p.relative_to(backends.parent).as_posix()}" for p in backends.rglob("*.j2")} <= names
    exporter_templates = {
        f"modelgen/exporters/templates/{t}" for t in ("brian2.py.j2", "neuroml.xml.j2", "nmodl.mod.j2")
    }
    assert exporter_templates | {"modelgen/exporters/dimensioned.py"} <= names
    version = modelgen.__version__
    assert f"modelgen-{version}.dist-info/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(path).read(f"modelgen-{version}.dist-info/METADATA").decode()
    assert f"\nVersion: {version}\n" in metadata  # the version is read from modelgen/__init__.py
    assert "\nLicense-Expression: MIT\n" in metadata
    assert "MIT License" in zipfile.ZipFile(path).read(f"modelgen-{version}.dist-info/licenses/LICENSE").decode()


def _fresh_venv(where: Path, wheel_path: Path) -> Path:
    """Return the python of a new virtual environment holding the wheel (its dependencies lent)."""
    venv.create(where, with_pip=False)
    python = where / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel_path),
        ],
        check=True,
        timeout=300,
    )
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())  # fmt: skip
    lent = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    for dep in ("numpy", "sympy", "mpmath", "jinja2", "markupsafe", "click"):
        lent.add(str(Path(importlib.import_module(dep).__file__).resolve().parent.parent))
    (site / "zz_lent_dependencies.pth").write_text("\n".join(sorted(lent)) + "\n")
    return python


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MODELGEN_PATH", "VIRTUAL_ENV")}
    return subprocess.run(list(args), cwd=folder, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_installed_wheel_runs_the_examples_from_an_empty_folder(wheel, tmp_path):
    python = _fresh_venv(tmp_path / "venv", wheel[0])
    modelgen_cmd = str(tmp_path / "venv" / "bin" / "modelgen")
    work = tmp_path / "empty"
    work.mkdir()

    where = _run(
        work,
        str(python),
        "-c",
        "import modelgen, importlib.metadata as m; print(modelgen.__file__, m.version('modelgen'))",
    )
    assert where.returncode == 0, where.stderr
    file, version = where.stdout.split()
    assert Path(file).is_relative_to(tmp_path / "venv"), file  # the wheel's copy, not the checkout's
    assert version == modelgen.__version__
    assert _run(work, modelgen_cmd, "--version").stdout == f"modelgen, version {modelgen.__version__}\n"
    assert (
        _run(work, str(python), "-m", "modelgen", "--version").stdout == f"modelgen, version {modelgen.__version__}\n"
    )

    copied = _run(work, modelgen_cmd, "examples")
    assert copied.returncode == 0, copied.stderr
    assert sorted(p.name for p in (work / "models").iterdir()) == EXAMPLES
    assert (work / "models" / "hh_composed.model").read_text() == (ROOT / "models" / "hh_composed.model").read_text()

    check = _run(work, modelgen_cmd, "check", "models/hh_composed.model", "models/cuba.network")
    assert check.returncode == 0, check.stderr
    assert "models/hh_composed.model: ok -- model HodgkinHuxleyComposed: 4 states, 4 currents" in check.stdout
    assert "models/cuba.network: ok -- network" in check.stdout

    # the same runs in the checkout (in this process) and from the wheel give the same arrays
    runs = {
        "hh.npz": ["models/hh_composed.model", "--duration", "50ms", "--input", "I_ext=10uA/cm^2"],
        "net.npz": ["models/two_neurons.network", "--duration", "50ms", "--seed", "1"],
    }
    for save, args in runs.items():
        done = _run(work, modelgen_cmd, "run", *args, "--save", save)
        assert done.returncode == 0, done.stderr
        reference = tmp_path / "checkout" / save
        reference.parent.mkdir(exist_ok=True)
        args_here = [str(ROOT / args[0]), *args[1:], "--save", str(reference), "-o", str(tmp_path / "checkout")]
        assert CliRunner().invoke(main, ["run", *args_here]).exit_code == 0
        with np.load(work / save) as got, np.load(reference) as want:
            for key in ("t", "spike_t", "spike_i"):
                np.testing.assert_array_equal(got[key], want[key])
            traces = [k for k in want.files if k.endswith("V")]
            assert traces
            for key in traces:
                np.testing.assert_array_equal(got[key], want[key])
    with np.load(work / "hh.npz") as hh:
        assert hh["spike_t"].size == 4  # HH at 10 uA/cm^2 fires about every 14.6 ms: 4 spikes in 50 ms
    with np.load(work / "net.npz") as net:
        assert set(net["spike_pop"].tolist()) == {0, 1}  # A fires and B answers

    (work / "bad.model").write_text(
        'model Bad\nparameter C = 1 uF/cm^2\nstate V = -65 mV\ncharge Q = C * V\nuse "currents/nothere" as I_X\n'
    )
    bad = _run(work, modelgen_cmd, "check", "bad.model")
    assert bad.returncode == 1
    assert "error[E101]: no current file 'currents/nothere'" in bad.stderr
    assert str(Path(file).parent / "library") in bad.stderr  # the hint lists the installed library


def _release(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in version.removesuffix(".*").split(".")]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def test_ci_tests_the_declared_minimum_versions():
    pyproject = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", pyproject, re.S | re.M).group(1)
    declared = {name: _release(v) for name, v in re.findall(r'"([\w-]+)>=([\d.]+)"', block)}
    ci = (ROOT / ".ci" / "run").read_text()
    tested = {
        name: _release(v)
        for name, v in re.findall(r'"([\w-]+)==([\d.*]+)"', re.search(r"^MINIMUMS=\((.*)\)$", ci, re.M).group(1))
    }
    assert declared == tested and set(declared) == {"numpy", "sympy", "jinja2", "click", "platformdirs"}
    assert 'requires-python = ">=3.10"' in pyproject and "sys.version_info[:2] == (3, 10)" in ci

"""The cuda backend, tested on the CPU: its generated module runs with a stand-in for CuPy.

tests/cuda_harness/fakecupy.py compiles the generated CUDA source as plain C++ with g++ (the
CUDA built-ins mapped by cuda_host.h) and runs every GPU thread of a launch in turn, so the
module's host code (input tables, spike buffer, recordings, copies back) and the kernel's text
both run. Each bundled model agrees with the numpy backend spike for spike, traces to rounding.
The source also compiles with nvcc to PTX for sm_90 when nvcc is installed. Not covered here:
NVRTC and a real GPU (concurrency, fast-math float32, speed): benchmarks/gpu.py on a GPU machine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import modelgen
from modelgen.backends import cuda
from modelgen.backends.cuda.printer import CudaPrinter, cxx_names

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cuda_harness import fakecupy  # noqa: E402

needs_gxx = pytest.mark.skipif(
    shutil.which("g++") is None, reason="g++ is not installed (the CPU harness of the CUDA kernels)"
)
DRIVE = {"uA/cm^2": 20.0, "pA": 1000.0, "mV/ms": 15.0, "1": 1.0}  # as tests/pinned/make_pins.py
QUICK = {"hh.model", "lif.model"}  # the rest run under -m slow (the default run stays near 10 s)
ALL_MODELS = [
    pytest.param(f.name, marks=() if f.name in QUICK else pytest.mark.slow) for f in sorted(MODELS.glob("*.model"))
]


@pytest.fixture
def fake_cupy(monkeypatch, tmp_path_factory):
    """Make `import cupy` give the CPU stand-in (g++ builds kept for the whole session)."""
    monkeypatch.setitem(sys.modules, "cupy", fakecupy)
    return fakecupy


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("generated")


def _both(model, out_dir, dtype="float64", **kw):
    """Return the (cuda, numpy) results of the same run."""
    kw = {"duration": "40 ms", "dt": "0.01 ms", "record": list(model.model.state_names), "seed": 1, **kw}
    gpu = model.run(backend="cuda", out_dir=out_dir, dtype=dtype, **kw)
    cpu = model.run(backend="numpy", out_dir=out_dir, dtype=dtype, **kw)
    return gpu, cpu


def _agree(gpu, cpu, rtol=1e-9, atol=1e-9):
    np.testing.assert_array_equal(gpu.spike_i, cpu.spike_i)
    np.testing.assert_allclose(gpu.spike_t, cpu.spike_t, rtol=0, atol=1e-12)
    for name in cpu.traces:
        scale = np.max(np.abs(cpu[name])) or 1.0
        np.testing.assert_allclose(gpu[name], cpu[name], rtol=rtol, atol=atol * scale, err_msg=name)


def _drive(model, n):
    (name, unit), *_ = model.inputs.items()
    return name, np.linspace(0.0, DRIVE[unit], n)


@needs_gxx
@pytest.mark.parametrize("file", ALL_MODELS)
def test_every_model_agrees_with_numpy(fake_cupy, out_dir, file):
    m = modelgen.load(MODELS / file)
    name, drive = _drive(m, 5)
    gpu, cpu = _both(m, out_dir, n=5, inputs={name: drive}, record_indices=np.arange(5))
    _agree(gpu, cpu)
    assert gpu.metadata["backend"] == "cuda" and gpu.summary().split(";")[0] == cpu.summary().split(";")[0]


@needs_gxx
@pytest.mark.parametrize(
    "file, method",
    [
        ("hh.model", "rk4"),
        pytest.param("hh.model", "euler", marks=pytest.mark.slow),
        pytest.param("lif_cuba.model", "exact", marks=pytest.mark.slow),
        pytest.param("adex.model", "rk2", marks=pytest.mark.slow),
    ],
)
def test_other_schemes_agree(fake_cupy, out_dir, file, method):
    m = modelgen.load(MODELS / file)
    name, drive = _drive(m, 4)
    _agree(*_both(m, out_dir, n=4, inputs={name: drive}, method=method))


@needs_gxx
def test_float32_single_precision_agrees_within_float32_rounding(fake_cupy, out_dir):
    hh = modelgen.load(MODELS / "hh.model")
    gpu, cpu = _both(hh, out_dir, dtype="float32", n=4, inputs={"I_ext": [0.0, 7.0, 12.0, 20.0]}, duration="20 ms")
    # numpy's float32 step mixes float64 inputs in; spike times may move by a step
    for i in range(4):
        a, b = gpu.spike_times(i), cpu.spike_times(i)
        assert a.size == b.size and np.all(np.abs(a - b) <= 0.011)
    assert gpu["V"].dtype == np.float64 and np.max(np.abs(gpu["V"] - cpu["V"])) < 2.0  # mV, through spikes
    assert gpu.spike_t.size >= 3


def test_float32_source_has_no_double():
    lif = modelgen.load(MODELS / "izhikevich.model")
    single = cuda.kernel_source(lif.model, lif.derivation, lif.plan(None), True, "0" * 64)
    body = single.split("extern")[1]
    assert "double" not in body and "exp(" not in body.replace("expf(", "")
    assert "0.04f*" in body  # literals in single precision


@needs_gxx
def test_time_varying_inputs_refractory_and_per_neuron_parameters(fake_cupy, out_dir):
    lif = modelgen.load(MODELS / "lif.model")
    inputs = {"I_ext": "ou(600 pA, 300 pA, 5 ms) + sine(200 pA, 50 Hz) + step(300 pA, on=10 ms) + ramp(0 pA, 200 pA)"}
    params = {"g_L": "linspace(8, 12) nS"}
    kw = dict(n=6, inputs=inputs, params=params, initial={"V": "uniform(-70, -55) mV"}, duration="60 ms")
    gpu, cpu = _both(lif, out_dir, **kw)
    _agree(gpu, cpu)
    isi = np.diff(gpu.spike_times(5))
    assert isi.size >= 2 and isi.min() >= 2.0  # the refractory period holds
    assert len(set(map(len, (gpu.spike_times(i) for i in range(6))))) > 1  # the neurons differ


@needs_gxx
def test_many_spikes_regrow_the_buffer_and_come_back_in_order(fake_cupy, out_dir):
    izh = modelgen.load(MODELS / "izhikevich.model")
    module = izh.load_module(out_dir, backend="cuda")
    module.SPIKE_ROWS = 16  # fewer rows than a launch's spikes: the launch runs again from its saved state
    try:
        gpu, cpu = _both(izh, out_dir, n=40, inputs={"I": "linspace(10, 15) mV/ms"}, duration="100 ms", dt="0.05 ms")
    finally:
        module.SPIKE_ROWS = 4096
    assert gpu.spike_t.size > 16 and np.all(np.diff(gpu.spike_t) >= 0)
    _agree(gpu, cpu)


@needs_gxx
def test_recording_currents_steps_one_launch_at_a_time(fake_cupy, out_dir):
    hh = modelgen.load(MODELS / "hh.model")
    gpu, cpu = _both(hh, out_dir, n=2, inputs={"I_ext": [5.0, 15.0]}, record=["V", "I_Na", "I_ext"], duration="5 ms")
    _agree(gpu, cpu)


@needs_gxx
def test_nan_is_detected_naming_variable_neuron_and_window(fake_cupy, out_dir):
    hh = modelgen.load(MODELS / "hh.model")
    kw = dict(n=3, inputs={"I_ext": [5.0, 5.0, 5.0]}, initial={"V": [-65.0, float("nan"), -65.0]}, duration="10 ms")
    messages = []
    for backend in ("cuda", "numpy"):
        with pytest.raises(modelgen.runtime.SimulationError) as e:
            hh.run(backend=backend, out_dir=out_dir, **kw)
        messages.append(str(e.value))
    assert messages[0].startswith("V of neuron 1 became nan between t = 0 and 10 ms")
    assert messages[0] == messages[1]


def test_without_cupy_one_line_error_exit_2(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    from modelgen.cli import main

    r = CliRunner().invoke(main, ["run", str(MODELS / "lif.model"), "--backend", "cuda", "-o", str(tmp_path)])
    assert r.exit_code == 2
    assert (
        r.stderr
        == "error: the cuda backend needs CuPy, which is not installed: pip install -e '.[cuda]' (or pip install cupy-cuda12x)\n"
    )
    with pytest.raises(cuda.GpuUnavailableError, match="needs CuPy"):
        modelgen.load(MODELS / "lif.model").run(backend="cuda", out_dir=tmp_path)


def test_build_writes_the_module_without_a_gpu(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "cupy", None)
    from modelgen.cli import main

    r = CliRunner().invoke(main, ["build", str(MODELS / "hh.model"), "--backend", "cuda", "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "hh_cuda.py").read_text()
    assert "# backend:       cuda" in text and 'extern "C" __global__ void modelgen_advance(' in text
    m = modelgen.load(MODELS / "hh.model")
    assert m.code(backend="cuda") == m.code(backend="cuda")  # deterministic


def test_printer_spellings_literals_and_reserved_names():
    import sympy

    x, y = sympy.symbols("x y", real=True)
    double, single = CudaPrinter(), CudaPrinter(single=True)
    e = sympy.exp(-x / 3) + sympy.Max(x, y) + x**3 + 1 / x**2 + sympy.sqrt(y)
    assert double.doprint(e) == "x*x*x + sqrt(y) + fmax(x, y) + exp(-0.3333333333333333*x) + 1.0/(x*x)"
    assert single.doprint(e) == "x*x*x + sqrtf(y) + fmaxf(x, y) + expf(-0.3333333333333333f*x) + 1.0f/(x*x)"
    assert single.doprint(sympy.Piecewise((x, x > 0), (2 * y, True))) == "((x > 0.0f) ? (x) : (2.0f*y))"
    assert cxx_names(["int", "exp", "V", "int_"]) == {"exp": "exp_", "int": "int__"}


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize(
    "file",
    [
        pytest.param("hh.model"),
        *[pytest.param(f.name, marks=pytest.mark.slow) for f in sorted(MODELS.glob("*.model")) if f.name != "hh.model"],
    ],
)
def test_source_compiles_with_nvcc_to_ptx(tmp_path, file):
    m = modelgen.load(MODELS / file)
    for single in (False, True):
        src = tmp_path / f"kernel{int(single)}.cu"
        src.write_text(cuda.kernel_source(m.model, m.derivation, m.plan(None), single, "0" * 64))
        r = subprocess.run(
            ["nvcc", "-ptx", "-arch=sm_90", "-std=c++17", str(src), "-o", str(src.with_suffix(".ptx"))],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        ptx = src.with_suffix(".ptx").read_text()
        assert ".entry modelgen_advance" in ptx
        if single:
            assert ".f64" not in ptx.split(".entry")[1]  # no silent promotion to double


def _gpu_benchmark():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_benchmark", ROOT / "benchmarks" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_gpu_benchmark_dry_run_compiles_every_case_to_ptx(tmp_path, capsys):
    assert _gpu_benchmark().main(["--dry-run", "--json", str(tmp_path / "dry.json")]) == 0
    import json

    rows = json.loads((tmp_path / "dry.json").read_text())["rows"]
    assert len(rows) == 10 and all(r["ptx_s"] > 0 for r in rows)


@needs_gxx
@pytest.mark.slow
def test_gpu_benchmark_measures_on_the_cpu_harness(fake_cupy, monkeypatch, tmp_path):
    bench = _gpu_benchmark()
    monkeypatch.setattr(bench, "STEPS", 300)
    monkeypatch.setattr(bench, "sizes", lambda quick: [3])
    monkeypatch.setattr(bench, "CASES", bench.CASES[:1])
    monkeypatch.setattr(bench, "SAMPLES", 3)
    rows = bench.measure(quick=True)
    assert [r["dtype"] for r in rows] == ["float64", "float32"]
    assert all(r["spikes_checked"] and r["baseline_spikes_checked"] for r in rows)


@needs_gxx
@pytest.mark.slow
def test_names_that_cxx_or_the_host_code_use_are_renamed(fake_cupy, tmp_path):
    # `double` is a C++ keyword; `cp` and `count` are names of the module's own host code
    text = (
        'model Names "reserved names"\nparameter int = 10 ms\nparameter cp = 1 mV\nparameter double = -65 mV\n'
        "input I = 0 pA\nstate count = -65 mV\ndcount/dt = (double - count + cp)/int + I/(1 pF)\n"
        "threshold count > -60 mV\nreset count = double\n"
    )
    (tmp_path / "names.model").write_text(text)
    m = modelgen.load(tmp_path / "names.model")
    gpu, cpu = _both(m, tmp_path, n=3, inputs={"I": [0.0, 0.3, 1.0]}, duration="50 ms")
    _agree(gpu, cpu)
    assert gpu.spike_t.size >= 3


# ----------------------------------------------------------------------- a plug-in of the reshaped design
def test_cuda_is_a_registry_entry_and_a_cli_choice():
    from modelgen import backends
    from modelgen.cli import run

    assert backends.REGISTRY["cuda"] == "modelgen.backends.cuda"
    assert backends.get("cuda") is cuda.BACKEND and cuda.BACKEND.name == "cuda"
    assert "cuda" in next(p for p in run.params if p.name == "backend").type.choices
    assert issubclass(cuda.GpuUnavailableError, backends.BackendUnavailableError)
    # the runtime's chunk between NaN checks is the backend's: long GPU launches, numpy's 2**16 neuron-steps
    assert cuda.BACKEND.steps_per_call(10**7) == 1_000 and cuda.BACKEND.steps_per_call(10) == 20_000
    assert backends.get("numpy").steps_per_call(64) == 1000 and backends.get("numba").steps_per_call(64) == 5_000


def test_no_backend_imports_codegen():
    import re

    for f in (ROOT / "modelgen" / "backends").rglob("*.py"):
        assert not re.search(r"^\s*(from|import)\s+(\.+|modelgen\.)codegen\b", f.read_text(), re.M), f


def test_a_function_added_to_the_table_is_spelled_in_both_precisions():
    import sympy

    from modelgen import functions as F

    F.register(F.Function("erf", (1, 1), "dimensionless", sympy.erf, sympy.erf, sympy.erf, spellings={"c": "erf"}))
    try:
        x = sympy.Symbol("x", real=True)
        assert CudaPrinter().doprint(sympy.erf(x / 2)) == "erf(0.5*x)"
        assert CudaPrinter(single=True).doprint(sympy.erf(x / 2)) == "erff(0.5f*x)"
        assert cxx_names(["erf", "erff"]) == {"erf": "erf_", "erff": "erff_"}  # a local erf would hide erf()
    finally:
        F.unregister("erf")
    assert cxx_names(["erf"]) == {}


def test_the_kernel_reads_only_the_values_its_step_uses():
    # the refractory period is the host's (it passes steps): the kernel does not take t_ref (nvcc: unused)
    lif = modelgen.load(MODELS / "lif.model")
    source = cuda.kernel_source(lif.model, lif.derivation, lif.plan(None), False, "0" * 64)
    assert "_a_t_ref" not in source and "const double t_ref" not in source
    assert "_per_neuron[0] ? _i : 0];" in source  # it does take the values its step reads
    assert "'t_ref'" in lif.code(backend="cuda")  # still a parameter of the module


def test_the_host_codes_names_are_reserved_the_kernels_cxx_names_are_not():
    from modelgen import codegen

    # `cp` is a local of the cuda module's host code (a model's cp is renamed in every backend, as the
    # names of any backend's Python templates); C++'s `double` is renamed in the kernel only (cxx_names)
    assert "cp" in codegen.generated_names() and "double" not in codegen.generated_names()

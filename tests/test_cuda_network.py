"""Networks on the cuda backend, tested on the CPU: the generated program runs with a stand-in for CuPy.

tests/cuda_harness/fakecupy.py compiles the network's CUDA source as C++ (g++) and runs each
launch thread by thread, so the host code (uploads, per-step launches, spike keys sorted into
numpy's order, recordings, copies back) and the kernels' text both run. The harness runs the
threads of a launch in order, so the atomicAdd sums into the ring buffers come in numpy's order
and the spikes agree exactly; on a GPU their order varies, and results agree with numpy's up to
rounding (here: firing statistics only where that matters). Not covered: NVRTC, a real GPU's
concurrency and fast-math float32, speed (benchmarks/gpu_networks.py on a GPU machine).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from modelgen.network import compiled, load_network

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import requires_numba  # noqa: E402
from cuda_harness import fakecupy  # noqa: E402
from test_network import MIXED, write, write_mixed  # noqa: E402

needs_gxx = pytest.mark.skipif(
    shutil.which("g++") is None, reason="g++ is not installed (the CPU harness of the CUDA kernels)"
)
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")

SMALL_CUBA = (MODELS / "cuba.network").read_text().replace("n = 3200", "n = 160").replace("n = 800", "n = 40")
SMALL_CUBA = SMALL_CUBA.replace("fixed_probability(0.02)", "fixed_probability(0.1)")  # CUBA's in-degree, 200 neurons
MIXED_STATES = MIXED.replace("record A (V, I_syn,", "record A (V,")  # states (currents: as on numba, tested there)
UNDRIVEN_MIXED = "\n".join(line for line in MIXED_STATES.splitlines() if not line.startswith("poisson"))
DRIVEN = """network Driven
population P = "lif.model" (n = 200, V_th = 100 mV)
population Q = "lif.model" (n = 50, V_th = 100 mV)
poisson P (receptor = exc, rate = 50 Hz, weight = 1 nS)
poisson Q (receptor = exc, rate = 250 kHz, weight = 1 nS)
"""


@pytest.fixture
def gpu(monkeypatch):
    """Make `import cupy` give the CPU stand-in, and the cuda program launch few threads (one team of
    LANES delivering spikes, blocks of 32): the same results, far fewer harness calls."""
    monkeypatch.setitem(sys.modules, "cupy", fakecupy)
    load = compiled.load_program

    def small_launches(layout, backend):
        program = load(layout, backend)
        if backend == "cuda":
            monkeypatch.setattr(program, "THREADS_PER_BLOCK", 32)
            monkeypatch.setattr(program, "DELIVER_BLOCKS", 1)
        return program

    monkeypatch.setattr(compiled, "load_program", small_launches)


def _run(path, backend, duration=50.0, dtype="float64", seed=3, out_dir=None):
    return load_network(path, seed=seed).run(duration, 0.1, out_dir=out_dir, backend=backend, dtype=dtype)


def _same_spikes(a, b):
    assert a.spike_t.size > 0
    np.testing.assert_array_equal(a.spike_pop, b.spike_pop)
    np.testing.assert_array_equal(a.spike_i, b.spike_i)
    np.testing.assert_array_equal(a.spike_t, b.spike_t)


@needs_gxx
def test_two_neurons_gives_numpys_spikes_and_traces(gpu, tmp_path):
    path = MODELS / "two_neurons.network"
    cuda, numpy = (_run(path, b, 100.0, out_dir=tmp_path) for b in ("cuda", "numpy"))
    _same_spikes(cuda, numpy)
    assert set(cuda.spike_pop.tolist()) == {0, 1}  # B fires in reply to A
    for name in numpy.traces:
        np.testing.assert_array_equal(cuda.traces[name], numpy.traces[name], err_msg=name)
    assert cuda.synaptic_events == numpy.synaptic_events > 0


@needs_gxx
@pytest.mark.slow
def test_small_cuba_gives_numpys_spikes(gpu, tmp_path):
    path = write(tmp_path, SMALL_CUBA)
    cuda, numpy = (_run(path, b, 100.0, out_dir=tmp_path / "gen") for b in ("cuda", "numpy"))
    _same_spikes(cuda, numpy)
    assert cuda.spike_t.size > 200 and set(cuda.spike_pop.tolist()) == {0, 1}
    np.testing.assert_array_equal(cuda.traces["E.V"], numpy.traces["E.V"])
    assert cuda.synaptic_events == numpy.synaptic_events


@needs_gxx
@pytest.mark.slow
def test_mixed_network_gives_numpys_spikes(gpu, tmp_path):
    # time-varying inputs, per-synapse weights and delays, several projections into one ring, a synapse
    # scaled by a per-neuron parameter, two models sharing a kernel, states recorded in several populations
    write_mixed(tmp_path)
    path = write(tmp_path, UNDRIVEN_MIXED, "undriven.network")
    cuda, numpy = (_run(path, b, 60.0, out_dir=tmp_path / "gen") for b in ("cuda", "numpy"))
    _same_spikes(cuda, numpy)
    assert len(set(cuda.spike_pop.tolist())) >= 5
    for name in numpy.traces:
        np.testing.assert_allclose(cuda.traces[name], numpy.traces[name], rtol=1e-12, atol=1e-12, err_msg=name)


@needs_gxx
@pytest.mark.slow
def test_poisson_drives_draw_their_rates_reproducibly(gpu, tmp_path):
    path = write(tmp_path, DRIVEN)
    r = _run(path, "cuda", 100.0, out_dir=tmp_path / "gen")
    # P: 50 Hz (0.005 per step); Q: 250 kHz (25 per step: drawn as two pieces of 12.5)
    expected = 200 * 50e-3 * 100 + 50 * 250.0 * 100
    assert abs(r.synaptic_events - expected) < 5 * np.sqrt(expected)
    again = _run(path, "cuda", 100.0, out_dir=tmp_path / "gen")
    other = _run(path, "cuda", 100.0, out_dir=tmp_path / "gen", seed=4)
    assert again.synaptic_events == r.synaptic_events != other.synaptic_events


@needs_gxx
@pytest.mark.slow
def test_poisson_drives_draw_the_same_counts_on_numba_and_the_gpu(gpu, tmp_path):
    """numba's drives count from a table of cumulative probabilities, the GPU program's by searching
    them: the same counts (P: mostly 0, searched on both; Q: two pieces of 12.5, from the table),
    so the same events and the same potentials."""
    path = write(tmp_path, DRIVEN + "record P (V, neurons = 20)\nrecord Q (V, neurons = 20)\n")
    numba_run = _run(path, "numba", 30.0, out_dir=tmp_path / "gen")
    cuda_run = _run(path, "cuda", 30.0, out_dir=tmp_path / "gen")
    assert numba_run.synaptic_events == cuda_run.synaptic_events > 0
    for name in ("P.V", "Q.V"):
        assert np.ptp(numba_run.traces[name]) > 0
        np.testing.assert_allclose(cuda_run.traces[name], numba_run.traces[name], rtol=1e-12, atol=1e-12)


@needs_gxx
@pytest.mark.slow
def test_driven_mixed_network_fires_as_numpy_does(gpu, tmp_path):
    # the drives draw from another generator than numpy's: the same firing, statistically
    write_mixed(tmp_path)
    path = write(tmp_path, MIXED_STATES, "mixed.network")
    cuda, numpy = (_run(path, b, 200.0, out_dir=tmp_path / "gen", seed=5) for b in ("cuda", "numpy"))
    for pop in ("B", "C", "E", "F", "H"):  # the driven populations
        a, b = cuda.rate(pop), numpy.rate(pop)
        assert b > 1.0 and abs(a - b) < 0.25 * b + 2.0, (pop, a, b)
    assert abs(cuda.synaptic_events - numpy.synaptic_events) < 0.1 * numpy.synaptic_events


@needs_gxx
@pytest.mark.slow
def test_float32_fires_as_float64(gpu, tmp_path):
    path = write(tmp_path, SMALL_CUBA)
    single, double = (_run(path, "cuda", 100.0, dtype=d, out_dir=tmp_path / "gen") for d in ("float32", "float64"))
    assert single.traces["E.V"].dtype == np.float64  # traces in float64 whatever the dtype, as numba's
    for pop in ("E", "I"):
        assert abs(single.rate(pop) - double.rate(pop)) < 0.15 * double.rate(pop) + 1.0


@needs_gxx
def test_a_step_is_one_launch_per_kernel_and_one_for_all_projections(gpu, tmp_path, monkeypatch):
    """A step is one launch for the populations of a kernel (CUBA's E and I share one: their neurons
    numbered on in one grid) and one for all projections, whose spikes are dealt out to the teams
    as one list: with several blocks and teams (six of 32 threads, one spike each at a time) every
    neuron steps once and every synapse is added once (numpy's spikes and events; CUBA's rings each
    hold one weight, so the order of the sums does not matter)."""
    path = write(tmp_path, SMALL_CUBA)
    load = compiled.load_program

    def many_teams(layout, backend):
        program = load(layout, backend)
        monkeypatch.setattr(program, "THREADS_PER_BLOCK", 64)
        monkeypatch.setattr(program, "DELIVER_BLOCKS", 3)
        return program

    monkeypatch.setattr(compiled, "load_program", many_teams)
    launches: dict[str, int] = {}
    call = fakecupy._Kernel.__call__

    def counted(self, grid, block, args):
        launches[self.function.__name__] = launches.get(self.function.__name__, 0) + 1
        return call(self, grid, block, args)

    monkeypatch.setattr(fakecupy._Kernel, "__call__", counted)
    cuda = _run(path, "cuda", 40.0, out_dir=tmp_path / "gen")
    numpy = _run(path, "numpy", 40.0, out_dir=tmp_path / "gen")
    _same_spikes(cuda, numpy)
    assert cuda.synaptic_events == numpy.synaptic_events > 1000
    assert launches == {"modelgen_advance_0": 400, "modelgen_deliver": 400}  # 400 steps, 2 populations, 4 projections


@needs_gxx
def test_one_call_run_steps_equals_the_resident_run(gpu, tmp_path, monkeypatch):
    # run_steps uploads everything and copies everything back at each call; start_run keeps it on the device
    path = MODELS / "two_neurons.network"
    resident = _run(path, "cuda", 60.0, out_dir=tmp_path)
    program = compiled.load_program(compiled.layout_of(load_network(path), None, "float64"), "cuda")
    monkeypatch.delattr(program, "start_run")
    monkeypatch.setattr(program, "NEURON_STEPS_PER_CALL", 50)  # 25 steps per call: state carried between calls
    _same_spikes(_run(path, "cuda", 60.0, out_dir=tmp_path), resident)


def _layout(text_or_path, tmp_path, dtype="float64"):
    path = text_or_path if isinstance(text_or_path, Path) else write(tmp_path, text_or_path)
    net = load_network(path)
    for p in net.projections:
        p.delays = np.rint(p.delay_ms / 0.1).astype(np.int64)
    return compiled.layout_of(net, None, dtype)


def test_generated_text_is_deterministic_and_shares_kernels(tmp_path):
    from modelgen.backends import cuda

    layout = _layout(SMALL_CUBA, tmp_path)
    text = cuda.BACKEND.generate_network(layout, "0" * 64)
    assert text == cuda.BACKEND.generate_network(_layout(SMALL_CUBA, tmp_path), "0" * 64)
    assert "KERNELS = (0, 0, )" in text  # E and I: one model, the same receptors, one kernel
    assert 'extern "C" __global__ void modelgen_advance_0(' in text and "modelgen_advance_1" not in text
    assert "v_e = v_e + _w;  // synapse exc: v_e += w  [cuba_lif.model:30]" in text


def test_without_cupy_the_network_run_says_so(monkeypatch, tmp_path):
    from modelgen.cli import main

    monkeypatch.setitem(sys.modules, "cupy", None)
    path = str(MODELS / "two_neurons.network")
    r = CliRunner().invoke(main, ["run", path, "--backend", "cuda", "--duration", "5ms", "-o", str(tmp_path)])
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "the cuda backend needs CuPy, which is not installed" in r.output


@needs_nvcc
@pytest.mark.parametrize("which", ["small_cuba", pytest.param("mixed", marks=pytest.mark.slow)])
def test_sources_compile_with_nvcc_to_ptx(tmp_path, which):
    from modelgen.backends.cuda import BACKEND
    from modelgen.backends.cuda.network import generate_network

    layout = (
        _layout(SMALL_CUBA, tmp_path)
        if which == "small_cuba"
        else _layout(write(write_mixed(tmp_path).parent, MIXED_STATES, "m.network"), tmp_path)
    )
    namespace: dict = {}
    text = generate_network(BACKEND, layout, "0" * 64)
    exec(compile(text.split("\n_COMPILED = {}")[0], "network", "exec"), namespace)  # the constants only
    for dtype, source in namespace["CUDA_SOURCE"].items():
        src = tmp_path / f"network_{dtype}.cu"
        src.write_text(source)
        cmd = ["nvcc", "-ptx", "-arch=sm_90", "-std=c++17", str(src), "-o", str(src.with_suffix(".ptx"))]
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
        ptx = src.with_suffix(".ptx").read_text()
        assert ".entry modelgen_advance_0" in ptx and ".entry modelgen_deliver" in ptx
        if dtype == "float32":
            assert ".f64" not in ptx  # no silent promotion to double


@needs_nvcc
@pytest.mark.slow
def test_gpu_networks_benchmark_dry_run_compiles_each_case_to_ptx(tmp_path):
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("gpu_networks", ROOT / "benchmarks" / "gpu_networks.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--dry-run", "--quick", "--json", str(tmp_path / "dry.json")]) == 0
    rows = json.loads((tmp_path / "dry.json").read_text())["rows"]
    assert [(r["case"], r["dtype"]) for r in rows] == [("CUBA N=4000", "float64"), ("CUBA N=4000", "float32")]
    assert all(r["ptx_s"] > 0 for r in rows)


@needs_gxx
@requires_numba
@pytest.mark.slow
def test_numba_draws_the_drives_the_gpu_program_draws(gpu, tmp_path):
    """Both programs draw a drive's counts from (seed, drive, step, neuron) alone, by the same
    counter-based generator and inversion: the same counts, so the same events and conductances."""
    path = write(tmp_path, DRIVEN + "record P (g_syn, neurons = 200)\nrecord Q (g_syn, neurons = 50)\n")
    cuda, numba = (_run(path, b, 50.0, out_dir=tmp_path / "gen") for b in ("cuda", "numba"))
    assert numba.synaptic_events == cuda.synaptic_events > 0
    for key in cuda.traces:
        assert np.abs(cuda.traces[key]).max() > 0
        np.testing.assert_allclose(numba.traces[key], cuda.traces[key], rtol=1e-12, atol=0, err_msg=key)

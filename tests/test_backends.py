"""Generated simulators: the vectorised numpy step, the per-neuron kernel and numba agree.

The numpy module steps up to KERNEL_MAX_N neurons with Python floats and more with ufunc
calls over blocks of BLOCK neurons; the numba module compiles the per-neuron kernel for a
few neurons and a block kernel for more (tests/test_numba_blocks.py). All print the same
step program, so they agree to rounding (tolerances far below any model effect), spike for
spike.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import modelgen
from modelgen import runtime

MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    # one directory for the module: numba compiles each model once per test session
    return tmp_path_factory.mktemp("generated")


def _run(model, out_dir, n, **kw):
    kw.setdefault("duration", "30 ms")
    kw.setdefault("dt", "0.01 ms")
    return model.run(n=n, out_dir=out_dir, record_indices=np.arange(min(n, 4)), **kw)


def _same(a, b, names, rtol=1e-9, atol=1e-9):
    for name in names:
        np.testing.assert_allclose(a[name][: b[name].shape[0]], b[name][: a[name].shape[0]], rtol=rtol, atol=atol)
    for i in range(min(a.n, b.n, 4)):
        np.testing.assert_allclose(a.spike_times(i), b.spike_times(i), atol=1e-9)


@pytest.mark.parametrize("method", ["exponential_euler", "rk4", "euler"])
def test_kernel_and_vectorised_paths_agree(out_dir, method):
    hh = modelgen.load(MODELS / "hh.model")
    drive = [6.0, 10.0, 15.0, 30.0]
    small = _run(hh, out_dir, 4, inputs={"I_ext": drive}, method=method, record=["V", "n"])
    many = _run(hh, out_dir, 20, inputs={"I_ext": drive * 5}, method=method, record=["V", "n"])
    assert small.n <= 8 < many.n  # the kernel, then the vectorised step (KERNEL_MAX_N = 8)
    _same(small, many, ["V", "n"])
    assert len(small.spike_times(3)) >= 2


def test_blocks_cover_every_neuron(out_dir):
    lif = modelgen.load(MODELS / "lif.model")
    module = lif.load_module(out_dir)
    n = 23
    g_L = np.linspace(5e-6, 2e-5, n)  # per-neuron parameter, internal units (mS)
    results = []
    for block in (1000, 5):  # one block; five blocks, the last one short
        module.BLOCK = block
        results.append(
            runtime.simulate(
                module, n, 0.1, 100.0, {"g_L": g_L}, {"I_ext": 2.5e-4}, {"V": 1.0}, np.arange(n), {"V": "mV"}
            )
        )
    module.BLOCK = 4096
    np.testing.assert_array_equal(results[0]["V"], results[1]["V"])
    np.testing.assert_array_equal(results[0].spike_i, results[1].spike_i)
    assert len(results[0].spike_t) > n


def test_exact_propagator_and_refractoriness(out_dir):
    cuba = modelgen.load(MODELS / "cuba_lif.model")
    kw = dict(duration="200 ms", dt="0.1 ms", params={"E_L": "-45 mV"})
    small = _run(cuba, out_dir, 3, initial={"V": [-60.0, -55.0, -51.0]}, **kw)
    many = _run(cuba, out_dir, 30, initial={"V": [-60.0, -55.0, -51.0] * 10}, **kw)
    _same(small, many, ["V"])
    assert small.metadata["method"] == "exact"
    isi = np.diff(small.spike_times(2))
    assert isi.size >= 3 and isi.min() >= 5.0  # t_ref = 5 ms


def test_recording_currents_steps_one_by_one_with_the_same_result(out_dir):
    hh = modelgen.load(MODELS / "hh.model")
    fast = _run(hh, out_dir, 12, inputs={"I_ext": 10.0}, record=["V"])
    slow = _run(hh, out_dir, 12, inputs={"I_ext": 10.0}, record=["V", "I_Na"])
    np.testing.assert_array_equal(fast["V"], slow["V"])
    np.testing.assert_array_equal(fast.spike_t, slow.spike_t)


def test_float32_costs_little_accuracy(out_dir):
    hh = modelgen.load(MODELS / "hh.model")
    ref = _run(hh, out_dir, 12, duration="100 ms", inputs={"I_ext": 10.0})
    single = _run(hh, out_dir, 12, duration="100 ms", inputs={"I_ext": 10.0}, dtype="float32")
    assert single.metadata["dtype"] == "float32"
    a, b = ref.spike_times(0), single.spike_times(0)
    assert a.size == b.size > 5
    assert np.abs(a - b).max() <= 0.05  # ms; measured 0.01 ms (README)
    with pytest.raises(modelgen.ModelError, match="unsupported dtype"):
        _run(hh, out_dir, 2, dtype="int32")


def test_time_varying_input_in_the_kernel(out_dir):
    m = modelgen.load_text(
        "model Decay\nparameter tau = 10 ms\ninput x_in = 0\nstate x = 1\ndx/dt = (x_in - x)/tau\n", "decay.model"
    )
    for n in (1, 12):
        r = m.run(
            duration="2 ms", dt="0.001 ms", n=n, inputs={"x_in": lambda t: t}, record="x", out_dir=out_dir, method="rk4"
        )
        assert r["x"][0, -1] == pytest.approx(2 - 10 + 11 * np.exp(-0.2), rel=1e-10)


# ----------------------------------------------------------------------------- numba
requires_numba = pytest.mark.skipif(
    importlib.util.find_spec("numba") is None, reason="numba backend: pip install -e '.[numba]'"
)


@requires_numba
@pytest.mark.parametrize(
    "model, method",
    [("hh.model", "exponential_euler"), pytest.param("izhikevich.model", "rk4", marks=pytest.mark.slow)],
)
def test_numba_matches_numpy(out_dir, model, method):
    m = modelgen.load(MODELS / model)
    name = "I_ext" if model == "hh.model" else "I"
    kw = dict(duration="40 ms", inputs={name: [6.0, 10.0, 15.0]}, method=method, record=[m.states[0], m.states[1]])
    a = _run(m, out_dir, 3, **kw)
    b = _run(m, out_dir, 3, backend="numba", **kw)
    assert b.metadata["backend"] == "numba"
    _same(a, b, list(m.states[:2]), rtol=1e-7, atol=1e-7)
    assert len(a.spike_t) >= 3


@requires_numba
@pytest.mark.slow  # a numba compile of its own (~15 s)
def test_numba_parallel_per_neuron_parameters(out_dir):
    lif = modelgen.load(MODELS / "lif.model")
    n = 2500  # > SERIAL_MAX_N: blocks of neurons across cores
    kw = dict(duration="50 ms", dt="0.1 ms", params={"g_L": np.linspace(5.0, 20.0, n)}, inputs={"I_ext": 250.0})
    a = _run(lif, out_dir, n, **kw)
    b = _run(lif, out_dir, n, backend="numba", **kw)
    _same(a, b, ["V"], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(np.sort(a.spike_i), np.sort(b.spike_i))
    assert a.spike_t.size > n // 2


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.model")), ids=lambda p: p.stem)
def test_every_model_runs_the_same_on_both_numpy_paths(out_dir, path):
    m = modelgen.load(path)
    for method in (None, "rk4"):
        a = _run(m, out_dir, 2, duration="3 ms", method=method, record=list(m.states))
        b = _run(m, out_dir, 12, duration="3 ms", method=method, record=list(m.states))
        assert np.isfinite(a[m.states[0]]).all()
        _same(a, b, list(m.states), rtol=1e-9, atol=1e-9)


def test_cli_backend_and_dtype(tmp_path):
    from click.testing import CliRunner

    from modelgen.cli import main

    hh = str(MODELS / "hh.model")
    r = CliRunner().invoke(main, ["build", hh, "--backend", "numba", "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "hh_numba.py").read_text()
    assert "# backend:       numba" in text and "@numba.njit(cache=True" in text
    r = CliRunner().invoke(
        main,
        ["run", hh, "--n", "20", "--duration", "20ms", "--input", "I_ext=10uA/cm^2", "--dtype", "float32"]
        + ["-o", str(tmp_path), "--quiet", "--save", str(tmp_path / "out.npz")],
    )
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "out.npz")["spike_i"].size >= 20


CLASH = """model Clash "parameters named like the generated kernels' own variables"
parameter C = 200 pF
parameter k = 10 nS       # the kernels' step counter is _k, its arrays were _<name>
parameter i = -65 mV      # ... and the neuron index _i
parameter w = 1 nS
parameter j = 1 mV
parameter c = 4 mV
parameter row = -50 mV
parameter BLOCK = 3 mV    # a module constant of the generated code
state V = i
charge Q = C * V
current I_leak = k * (V - i) outward
current I_w = w * (V - i - j + c - BLOCK) outward
current I_ext = input inward
threshold V > row
reset V = i
refractory 2 ms
"""


@pytest.mark.parametrize("backend", ["numpy", pytest.param("numba", marks=[requires_numba, pytest.mark.slow])])
def test_names_like_the_kernels_variables(tmp_path, backend):
    # an LIF with tau = C/(k + w) and V_inf = i + I/(k + w) (I_w vanishes: j = c - BLOCK):
    # its interspike interval is t_ref + tau ln((V_inf - V_reset)/(V_inf - V_th))
    m = modelgen.load_text(CLASH, "clash.model")
    tau, v_inf = 200.0 / 11.0, -65.0 + 500.0 / 11.0
    isi = 2.0 + tau * np.log((v_inf + 65.0) / (v_inf + 50.0))
    for n in (1, 50):  # the per-neuron kernel, then the vectorised step or the block kernel
        r = m.run(duration="200 ms", dt="0.01 ms", n=n, inputs={"I_ext": 500.0}, backend=backend, out_dir=tmp_path)
        t = r.spike_times(n - 1)
        assert t.size == int(200.0 // isi)
        np.testing.assert_allclose(np.diff(t), isi, atol=0.011)


@pytest.mark.parametrize("model_name", ["lif", "adex"])
def test_resets_with_per_neuron_values_across_blocks(out_dir, model_name):
    """The vectorised step resets the block's spiking neurons by index: each with its own reset value
    (and refractory period), in several blocks, as the per-neuron kernel does one neuron at a time."""
    model = modelgen.load(MODELS / f"{model_name}.model")
    module = model.load_module(out_dir)
    n = 12
    if model_name == "lif":  # internal units: mV, ms, uA
        params = {"V_reset": np.linspace(-75.0, -62.0, n), "t_ref": np.linspace(0.5, 5.0, n)}
        inputs, record = {"I_ext": np.linspace(2.5e-4, 4e-4, n)}, ["V"]
    else:
        params = {"V_r": np.linspace(-72.0, -55.0, n), "b": np.linspace(0.0, 2e-4, n)}
        inputs, record = {"I_ext": np.linspace(6e-4, 9e-4, n)}, ["V", "I_adapt_w"]
    units = {"V": "mV", "I_adapt_w": "uA"}

    def simulate(lo, hi, block=4096):
        module.BLOCK = block
        try:
            return runtime.simulate(
                module,
                hi - lo,
                0.05,
                200.0,
                {k: v[lo:hi] for k, v in params.items()},
                {k: v[lo:hi] for k, v in inputs.items()},
                dict.fromkeys(record, 1.0),
                np.arange(hi - lo),
                units,
            )
        finally:
            module.BLOCK = 4096

    blocks = simulate(0, n, block=5)  # three blocks of 4 (the vectorised step: n > KERNEL_MAX_N)
    for lo in range(0, n, 4):  # the per-neuron kernel, four neurons at a time
        alone = simulate(lo, lo + 4)
        for name in record:
            np.testing.assert_allclose(blocks[name][lo : lo + 4], alone[name], rtol=1e-9, atol=1e-9)
        for i in range(4):
            np.testing.assert_array_equal(blocks.spike_times(lo + i), alone.spike_times(i))
    # each neuron's reset value, read from the trace just after each of its spikes
    reset = params["V_reset" if model_name == "lif" else "V_r"]
    for i in range(n):
        k = np.rint(blocks.spike_times(i) / 0.05).astype(int)
        assert k.size >= 2, i
        np.testing.assert_allclose(blocks["V"][i, k], reset[i], atol=1e-9)


@pytest.mark.parametrize("drive", ["300 pA", "step(300 pA, on = 20 ms)", "sine(150 pA, 40 Hz) + 250 pA"])
def test_values_of_inputs_are_kept_only_while_the_inputs_are_constant(out_dir, drive):
    """A value of inputs and constants only (LIF's I_ext + g_L*E_L, ``inputs_only`` in the step program)
    is made once by numpy's vectorised step when the input is constant, on every step when it varies:
    either way the per-neuron kernel's numbers, spike for spike."""
    lif = modelgen.load(MODELS / "lif.model")
    code = lif.code()
    assert "# _in1 = I_ext + _c1\n            if _refresh:\n                np.add(I_ext, _c1, _in1)\n" in code
    assert "np.add(_F0_V, _in1, _F0_V)" in code
    small = _run(lif, out_dir, 4, inputs={"I_ext": drive}, duration="100 ms", dt="0.05 ms", record=["V"])
    many = _run(lif, out_dir, 12, inputs={"I_ext": drive}, duration="100 ms", dt="0.05 ms", record=["V"])
    _same(small, many, ["V"])
    assert len(many.spike_times(0)) >= 3


def test_arrays_of_the_step_start_on_cache_lines(out_dir):
    """States, buffers and per-neuron values start on 64-byte boundaries (numpy's own start on 16-byte
    ones, and SIMD loops over such arrays touch two cache lines a load), and so does every block."""
    lif = modelgen.load(MODELS / "lif.model")
    module = lif.load_module(out_dir)
    for dtype, n in ((np.float64, 1000), (np.float32, 777), (np.float64, 3)):
        arrays = module._carve(5, n, dtype)
        assert [a.ctypes.data % 64 for a in arrays] == [0] * 5
        assert all(a.shape == (n,) and a.dtype == dtype and not a.any() for a in arrays)
        ends = sorted((a.ctypes.data, a.ctypes.data + a.nbytes) for a in arrays)
        assert all(end <= start for (_, end), (start, _) in zip(ends, ends[1:]))  # disjoint
    misaligned = np.zeros(1001)[1:]  # 8 bytes past numpy's start
    copy = module._aligned(misaligned)
    assert copy.ctypes.data % 64 == 0 and np.shares_memory(copy, misaligned) is False
    assert module._aligned(copy) is copy
    state = module.initial_state(module.PARAMETERS, {"I_ext": lambda t: 0.0}, 50_000)
    assert [a.ctypes.data % 64 for a in state.values()] == [0] * len(state)
    block, module.BLOCK = module.BLOCK, 20_000  # blocks of 16,704 neurons (a whole number of 64), then the rest
    try:
        r = runtime.simulate(
            module, 50_000, 0.1, 5.0, {}, {"I_ext": 3e-4}, {"V": 1.0}, np.array([0, 16_704, 49_999]), {"V": "mV"}
        )
    finally:
        module.BLOCK = block
    assert "_size = -(-_size // 64) * 64" in lif.code()
    np.testing.assert_array_equal(r["V"][1:], r["V"][[0, 0]])  # a neuron of each block: alike
    assert r["V"][0, -1] > r["V"][0, 0] + 1  # and moved by the input

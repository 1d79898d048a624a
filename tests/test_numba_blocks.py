"""The numba backend's block kernel: its branch-free exp/expm1/exprel, and its results.

Populations of more than SERIAL_MAX_N neurons run `_advance_blocks`: blocks of BLOCK neurons
across cores, each step one SIMD loop over a block (exp through the module's own `_exp`), then
resets, refractory periods and recording for the neurons concerned. These tests hold that
kernel to references: the C library's exp/expm1 to 3 units in the last place, and the numpy
backend to rounding, spike for spike, for every bundled model.
"""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import modelgen

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("numba") is None, reason="numba backend: pip install -e '.[numba]'"
)

MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("generated_numba")


@pytest.fixture(scope="module")
def hh_module(out_dir):
    return modelgen.load(MODELS / "hh.model").load_module(out_dir, None, backend="numba")


def _arguments() -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.concatenate(
        [
            rng.uniform(-30.0, 30.0, 4000),
            rng.uniform(-0.35, 0.35, 2000),  # expm1's series
            rng.uniform(-1e-6, 1e-6, 500),
            np.geomspace(1e-300, 1.0, 300) * rng.choice([-1.0, 1.0], 300),
            rng.uniform(-745.0, 709.7, 2000),  # to both ends of the double range
            [0.0, -0.0, 0.34657359027997264, -0.34657359027997264, 0.3466, -0.3466, 709.78, -708.39, -744.4],
        ]
    )


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return np.abs(got - want) / np.spacing(np.abs(want))


def test_exp_within_one_ulp_of_the_c_library(hh_module):
    x = _arguments()
    got = np.array([hh_module._exp(v) for v in x])
    want = np.array([math.exp(v) for v in x])
    normal = want >= sys.float_info.min
    assert _ulps(got[normal], want[normal]).max() <= 1.0
    # gradual underflow: subnormal results as exact as their spacing allows (two roundings)
    np.testing.assert_allclose(got[~normal], want[~normal], rtol=0, atol=2 * 5e-324)


def test_expm1_and_exprel_within_three_ulp(hh_module):
    x = _arguments()
    x = x[x < 709.0]
    got = np.array([hh_module._expm1(v) for v in x])
    want = np.array([math.expm1(v) for v in x])
    nonzero = want != 0
    assert _ulps(got[nonzero], want[nonzero]).max() <= 3.0
    assert np.all(got[~nonzero] == 0)
    rel = np.array([hh_module._exprel_lane(v) for v in x])
    want = np.array([math.expm1(v) / v if v != 0 else 1.0 for v in x])
    assert _ulps(rel, want).max() <= 3.0
    assert hh_module._exprel_lane(0.0) == 1.0


def test_special_values_as_the_c_library(hh_module):
    for v in (math.inf, -math.inf, 710.0, 1e308, -1e308, -746.0):
        assert hh_module._exp(v) == (math.inf if v > 709.8 else math.exp(v))
        assert hh_module._expm1(v) == (math.inf if v > 0 else -1.0)
    assert math.isnan(hh_module._exp(math.nan))
    assert math.isnan(hh_module._expm1(math.nan))
    assert math.isnan(hh_module._exprel_lane(math.nan))


N = 300  # two blocks of BLOCK = 256: a full one and a part


# lif in the default run (hh runs on numba in test_backends); the other models (10-20 s of numba compiling each) with `pytest -m slow`
QUICK = ("lif",)


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=() if p.stem in QUICK else pytest.mark.slow) for p in sorted(MODELS.glob("*.model"))],
    ids=lambda p: p.stem,
)
def test_block_kernel_matches_the_numpy_backend(out_dir, path):
    m = modelgen.load(path)
    # the input spread from 0 to well above rheobase: some neurons fire, some do not
    top = {"uA/cm^2": 20.0, "pA": 1000.0, "mV/ms": 20.0, "1": 1.0}  # "1": a dimensionless model (FitzHugh-Nagumo)
    kw = dict(duration="20 ms", dt="0.01 ms", record=list(m.states), record_indices=[0, 1, 255, 256, N - 1])
    kw["inputs"] = {k: np.linspace(0.0, top[m.model.input(k).unit], N) for k in m.inputs}
    a = m.run(n=N, out_dir=out_dir, **kw)
    b = m.run(n=N, out_dir=out_dir, backend="numba", **kw)
    for s in m.states:
        np.testing.assert_allclose(b[s], a[s], rtol=1e-7, atol=1e-7 * (1 + np.abs(a[s]).max()))
    assert sorted(zip(a.spike_i.tolist(), a.spike_t.tolist())) == sorted(zip(b.spike_i.tolist(), b.spike_t.tolist()))
    assert 0 < np.unique(a.spike_i).size < N, "the test needs neurons that fire and neurons that do not"


DECAY = """model Decay "no threshold; an input that changes within the step (rk4 reads it at t, t + dt/2, t + dt)"
parameter tau = 10 ms
input x_in = 0
state x = 1
dx/dt = (x_in - x)/tau
"""


def test_block_kernel_time_varying_input_without_threshold(out_dir):
    # dx/dt = (t - x)/tau with x(0) = 1: x(t) = t - tau + (1 + tau) exp(-t/tau)
    m = modelgen.load_text(DECAY, "decay.model")
    t_end, tau = 5.0, 10.0
    kw = dict(duration=f"{t_end} ms", dt="0.01 ms", n=N, inputs={"x_in": lambda t: t}, record="x", method="rk4")
    a = m.run(out_dir=out_dir, **kw)
    b = m.run(out_dir=out_dir, backend="numba", **kw)
    t = a.t
    exact = t - tau + (1 + tau) * np.exp(-t / tau)
    np.testing.assert_allclose(b["x"], np.broadcast_to(exact, b["x"].shape), rtol=0, atol=1e-12)
    np.testing.assert_allclose(b["x"], a["x"], rtol=0, atol=1e-13)


@pytest.mark.slow  # a numba compile of HH's block kernel in float32
def test_block_kernel_float32_and_per_neuron_parameters(out_dir):
    lif = modelgen.load(MODELS / "lif.model")
    kw = dict(duration="100 ms", dt="0.1 ms", n=N, params={"g_L": np.linspace(5.0, 20.0, N)}, inputs={"I_ext": 250.0})
    a = lif.run(out_dir=out_dir, **kw)
    b = lif.run(out_dir=out_dir, backend="numba", dtype="float32", **kw)
    # the same neurons fire, at most a step apart (single precision storage between steps)
    assert np.array_equal(np.unique(a.spike_i), np.unique(b.spike_i)) and 0 < np.unique(a.spike_i).size < N
    for i in np.unique(a.spike_i)[::25]:
        ta, tb = a.spike_times(i), b.spike_times(i)
        assert ta.size == tb.size and np.abs(ta - tb).max() <= 0.1 + 1e-9


@pytest.mark.parametrize("n", [3, 600])  # the serial kernel; blocks over threads
def test_many_spikes_in_one_call_come_back_in_order(out_dir, n):
    """The compiled kernels return spikes as (step, neuron) rows: thousands of spikes in one call of
    run() come back complete and in (step, neuron) order, as the numpy backend's."""
    lif = modelgen.load(MODELS / "lif.model")
    drive = np.linspace(300.0, 2000.0, n)  # pA: fast firing
    numba_module = lif.load_module(out_dir, None, backend="numba")
    assert numba_module.BACKEND == "numba"
    runs = {}
    for backend in ("numpy", "numba"):
        r = lif.run(
            duration=1000 if n < 10 else 200, dt=0.1, n=n, inputs={"I_ext": drive}, backend=backend, out_dir=out_dir
        )
        runs[backend] = np.stack([np.rint(r.spike_t / 0.1).astype(int), r.spike_i])
    assert runs["numba"].shape[1] > 64 * 4
    np.testing.assert_array_equal(runs["numba"], runs["numpy"])
    order = np.lexsort((runs["numba"][1], runs["numba"][0]))
    np.testing.assert_array_equal(order, np.arange(order.size))


@pytest.mark.parametrize("n", [3, 2100])  # the serial kernel; 9 blocks over two threads
def test_a_spike_of_every_neuron_in_every_step_fits(out_dir, n):
    """The kernels write spikes in place into a buffer with one row per neuron and step of the call
    (each thread from the row of its first block's neurons on): with every neuron spiking in every
    step (no refractory period, a drive that crosses the threshold in one step) the buffer is full,
    and every spike comes back, by step and neuron."""
    lif = modelgen.load(MODELS / "lif.model")
    steps = 50
    r = lif.run(
        duration=steps * 0.1,
        dt=0.1,
        n=n,
        inputs={"I_ext": 1e6},
        params={"t_ref": 0.0},
        backend="numba",
        out_dir=out_dir,
    )
    k = np.rint(r.spike_t / 0.1).astype(int) - 1
    np.testing.assert_array_equal(k, np.repeat(np.arange(steps), n))
    np.testing.assert_array_equal(r.spike_i, np.tile(np.arange(n), steps))


@pytest.mark.parametrize("n", [3, 2100])
def test_spikes_a_step_returned_stay_after_the_next_step(out_dir, n):
    """step(k) returns the indices of the neurons that spiked; the kernels' buffer is used again by
    the next call, so what step(k) returned must not change then. The neurons' drives differ, so
    that different neurons spike in different steps."""
    lif = modelgen.load(MODELS / "lif.model")
    module = lif.load_module(out_dir, None, backend="numba")
    params = {**module.PARAMETERS, "t_ref": np.array(0.0)}
    drive = np.linspace(200.0, 3000.0, n) * 1e-6  # internal units (uA)
    inputs = {"I_ext": lambda t: drive}
    state = module.initial_state(params, inputs, n)
    step, _, _, _ = module.make_simulator(state, params, inputs, 0.1)
    returned, copies = [], []
    for k in range(300):
        idx = step(k)
        returned.append(idx)
        copies.append(idx.copy())
    assert sum(c.size for c in copies) > 40 and len({tuple(c) for c in copies}) >= 4
    for idx, copy in zip(returned, copies):
        np.testing.assert_array_equal(idx, copy)


def test_compiled_loops_run_long_stretches_per_call():
    """A compiled time loop makes 2**20 neuron-steps per call, at most 5,000 steps between the
    runtime's checks; up to 8 neurons, whose kernel checks every step itself, 2**18 and at most
    50,000; numpy's loop stays at 2**16 neuron-steps, at most 1000 steps."""
    from types import SimpleNamespace

    from modelgen.runtime import _steps_per_call

    numba_module, numpy_module = SimpleNamespace(BACKEND="numba"), SimpleNamespace(BACKEND="numpy")
    assert [_steps_per_call(numba_module, n) for n in (1, 8, 9, 100, 10_000, 10**7)] == [
        50_000,
        32_768,
        5_000,
        5_000,
        104,
        0,
    ]
    assert [_steps_per_call(numpy_module, n) for n in (1, 10_000)] == [1000, 6]

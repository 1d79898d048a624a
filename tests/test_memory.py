"""Memory estimates: huge runs, networks and files are refused before anything big is allocated;
recording takes about the size of its traces."""

import tracemalloc

import numpy as np
import pytest
from click.testing import CliRunner

import modelgen
from modelgen import MemoryLimitError, memory, protocols
from modelgen.cli import main
from modelgen.network import load_network
from modelgen.network.build import SYNAPSE_BYTES, _all_to_all
from modelgen.protocols import RunContext, Target
from modelgen.runtime import DERIVE_VALUES
from modelgen.units import CURRENT

MODELS = __import__("pathlib").Path(__file__).resolve().parent.parent / "models"
LIF_STEP = 2 * 8 + memory.STEP_TEMPORARIES * 8  # bytes per neuron of lif.model (two states)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def lif():
    return modelgen.load(MODELS / "lif.model")


# ----------------------------------------------------------------------- sizes
@pytest.mark.parametrize(
    "text, size",
    [("4GiB", 4 * 2**30), ("500MB", 500 * 10**6), ("2G", 2 * 2**30), ("1.5 kib", 1536), ("1e6", 10**6), (123, 123)],
)
def test_parse_size(text, size):
    assert memory.parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "4 GiBs", "-1GB", "0", ""])
def test_parse_size_refuses_nonsense(text):
    with pytest.raises(ValueError):
        memory.parse_size(text)


def test_format_size():
    assert [memory.format_size(n) for n in (512, 1536, 8 * 10**9, 8 * 10**14)] == [
        "512 B",
        "1.5 KiB",
        "7.45 GiB",
        "728 TiB",
    ]


def test_available_memory_is_known_on_linux():
    free = memory.available_memory()
    assert free is not None and free > 0


def test_require_names_estimate_parts_limit_and_advice():
    with pytest.raises(MemoryLimitError) as e:
        memory.require({"state": 3 * 2**20, "recording": 2**20}, "this run", "do less", limit=2**20)
    assert str(e.value) == (
        "this run needs about 4 MiB (state 3 MiB, recording 1 MiB), more than the memory limit of 1 MiB; do less"
    )
    memory.require({"state": 2**20}, "this run", "do less", limit=2**20)  # fits exactly


def test_without_a_limit_the_available_memory_decides(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 100 * 2**20)
    memory.require({"state": 100 * 2**20}, "this run", "do less")
    with pytest.raises(
        MemoryLimitError, match=r"more than the 100 MiB of memory available; do less, or raise --max-memory"
    ):
        memory.require({"state": 101 * 2**20}, "this run", "do less")


# ----------------------------------------------------------------------- runs
def test_a_billion_neurons_are_refused_with_the_estimate(lif):
    with pytest.raises(MemoryLimitError) as e:
        lif.run(n=10**9, max_memory="1GiB")
    message = str(e.value)
    assert message.startswith(f"this run needs about {memory.format_size(10**9 * LIF_STEP + 11 * 80008)}")
    assert f"neuron state and stepping {memory.format_size(10**9 * LIF_STEP)}" in message
    assert "more than the memory limit of 1 GiB; simulate fewer neurons (--n)" in message


@pytest.mark.parametrize(
    "duration, dt, recording",
    [("100000 s", "0.01 ms", 10**10 + 1), ("100 ms", "1e-12 ms", 10**14 + 1)],
)
def test_long_runs_and_tiny_steps_are_refused(lif, duration, dt, recording):
    with pytest.raises(MemoryLimitError) as e:
        lif.run(duration=duration, dt=dt, max_memory="4GiB")
    assert f"recording {memory.format_size(8 * recording)}, time axis {memory.format_size(8 * recording)}" in str(
        e.value
    )
    assert "record fewer neurons (--record-neurons) or variables (--record), or simulate fewer steps" in str(e.value)


def test_the_limit_is_the_machine_by_default(lif, monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 2**30)
    with pytest.raises(MemoryLimitError, match="more than the 1 GiB of memory available"):
        lif.run(n=10**8)


def test_a_run_within_the_limit_still_runs(lif, tmp_path):
    needs = 1000 * LIF_STEP + 10 * 10001 * 8 + 10001 * 8
    r = lif.run(n=1000, duration="100 ms", out_dir=tmp_path, max_memory=needs)
    assert r["V"].shape == (10, 10001)
    with pytest.raises(MemoryLimitError):
        lif.run(n=1000, duration="100 ms", out_dir=tmp_path, max_memory=needs - 1)


def test_cli_refuses_in_one_line(tmp_path):
    r = invoke("run", MODELS / "lif.model", "--n", 1000000000, "--max-memory", "1GiB", "-o", tmp_path)
    assert r.exit_code == 1
    assert r.output.count("\n") == 1 and r.output.startswith("error: this run needs about 52.2 GiB")
    assert "Traceback" not in r.output


def test_cli_linspace_of_a_hundred_billion_values_is_refused(tmp_path):
    r = invoke("run", MODELS / "lif.model", "--input", "I_ext=linspace(0, 20, 100000000000) pA", "--max-memory", "1GiB")
    assert r.exit_code == 1
    assert f"per-neuron values {memory.format_size(8 * 10**11)}" in r.output
    assert r.output.count("\n") == 1


def test_cli_max_memory_must_be_a_size():
    r = invoke("run", MODELS / "lif.model", "--max-memory", "lots")
    assert r.exit_code == 2
    assert "`lots` is not a memory size" in r.output


def test_sweep_passes_the_limit_on(tmp_path):
    r = invoke(
        "sweep", MODELS / "lif.model", "--input", "I_ext=0:400:100pA", "--duration", "10s", "--max-memory", "1MB"
    )
    assert r.exit_code == 1
    assert r.output.startswith("error: this run needs about") and "more than the memory limit of 977 KiB" in r.output


# ----------------------------------------------------------------------- recording
def test_recording_peak_is_about_the_trace_size(lif, tmp_path):
    kw = dict(n=10, duration="50 ms", out_dir=tmp_path)
    lif.run(**{**kw, "duration": "1 ms"})  # builds and loads the module
    # states only; an input too, computed after the run from the traces of every state (g_syn as well)
    for record, unasked in ((["V"], 0), (["V", "I_ext"], 1)):
        tracemalloc.start()
        r = lif.run(**kw, record=record)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        kept = sum(a.nbytes for a in r.traces.values()) + r.t.nbytes
        temporaries = 8 * DERIVE_VALUES * 8 if unasked else 0  # a few arrays of a chunk of the computed traces
        assert peak < 1.1 * (kept + unasked * r.traces["V"].nbytes) + temporaries, (record, peak / kept)


def test_recorded_neurons_in_any_order(lif, tmp_path):
    r = lif.run(n=3, duration="5 ms", inputs={"I_ext": [300, 0, 600]}, record_indices=[2, 0, 2], out_dir=tmp_path)
    ref = lif.run(n=3, duration="5 ms", inputs={"I_ext": [300, 0, 600]}, record_indices=[0, 1, 2], out_dir=tmp_path)
    assert np.array_equal(r["V"], ref["V"][[2, 0, 2]])
    assert np.array_equal(r.t, np.arange(501) * 0.01)


# ----------------------------------------------------------------------- input files
def _ctx(tmp_path, max_memory=None):
    return RunContext(1, 0.1, 10.0, 0, tmp_path, max_memory=max_memory)


def test_file_of_20_gb_is_refused_before_reading(tmp_path):
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:
        f.truncate(20 * 10**9)  # sparse: takes no disk
    with pytest.raises(MemoryLimitError) as e:
        protocols.resolve("file(big.csv)", Target("I_ext", CURRENT, "pA", 1.0), _ctx(tmp_path, 2**30))
    assert str(e.value).startswith(
        "reading `big.csv` (18.6 GiB, about 10,000,000,001 numbers, for I_ext) needs about 224 GiB"
    )


def test_csv_estimate_follows_its_lines(tmp_path):
    path = tmp_path / "trace.csv"
    np.savetxt(path, np.column_stack([np.arange(2000.0), np.ones(2000)]), delimiter=",", header="t (ms),I (pA)")
    assert memory.csv_values(path, path.stat().st_size) == 4005  # two numbers a row, and the header's five words
    series = protocols.resolve("file(trace.csv)", Target("I_ext", CURRENT, "pA", 1.0), _ctx(tmp_path, 3 * 8 * 4005))
    assert series(10.5) == 1.0


def test_reading_a_csv_takes_little_more_than_its_numbers(tmp_path):
    path = tmp_path / "trace.csv"
    rows = 20_000
    np.savetxt(path, np.column_stack([np.arange(rows) * 0.1, np.sin(np.arange(rows))]), delimiter=",", fmt="%.17g")
    target = Target("I_ext", CURRENT, "pA", 1.0)
    protocols.resolve("file(trace.csv)", target, _ctx(tmp_path))  # fills the unit parser's caches
    tracemalloc.start()
    series = protocols.resolve("file(trace.csv)", target, _ctx(tmp_path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3 * 16 * rows  # the estimate's three copies of the numbers
    assert series(0.1) == pytest.approx(np.sin(1.0), rel=1e-12)


def test_npy_whose_header_lies_is_refused_before_allocating(tmp_path):
    path = tmp_path / "liar.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**11, 2)})
        f.write(bytes(64))
    with pytest.raises(modelgen.ModelError) as e:
        protocols.resolve("file(liar.npy)", Target("I_ext", CURRENT, "pA", 1.0), _ctx(tmp_path))
    assert (
        "its header announces 200000000000 values of shape (100000000000, 2) (1.46 TiB), but it holds 64 B of data"
        in e.value.diagnostics[0].message
    )


def test_npy_within_the_limit_is_read(tmp_path):
    np.save(tmp_path / "ok.npy", np.array([[0.0, 1.0], [10.0, 3.0]]))
    target = Target("I_ext", CURRENT, "pA", 1.0)
    assert protocols.resolve("file(ok.npy)", target, _ctx(tmp_path, 3 * 8 * 4))(5.0) == 2.0
    with pytest.raises(MemoryLimitError, match="about 4 numbers"):
        protocols.resolve("file(ok.npy)", target, _ctx(tmp_path, 3 * 8 * 4 - 1))


# ----------------------------------------------------------------------- networks
def network(tmp_path, body):
    (tmp_path / "lif.model").write_text((MODELS / "lif.model").read_text())
    path = tmp_path / "net.network"
    path.write_text('network Big "big"\n' + body)
    return path


def test_all_to_all_of_a_million_neurons_is_refused(tmp_path):
    path = network(
        tmp_path,
        'population A = "lif.model" (n = 1000000)\nconnect A to A (receptor = exc, rule = all_to_all, weight = 1 nS)\n',
    )
    with pytest.raises(MemoryLimitError) as e:
        load_network(path, max_memory="4GiB")
    synapses = 10**6 * (10**6 - 1)
    assert str(e.value).startswith(
        f"connecting A to A (all_to_all, about {synapses:,} synapses) needs about {memory.format_size(SYNAPSE_BYTES['all_to_all'] * synapses)}, "
        "more than the memory limit of 4 GiB"
    )


def test_all_to_all_of_20000_counts_drawn_weights(tmp_path, monkeypatch):
    path = network(
        tmp_path,
        'population A = "lif.model" (n = 20000)\n'
        "connect A to A (receptor = exc, rule = all_to_all, weight = uniform(0 nS, 1 nS))\n",
    )
    monkeypatch.setattr(memory, "available_memory", lambda: 4 * 2**30)
    with pytest.raises(MemoryLimitError) as e:
        load_network(path)
    synapses = 20000 * 19999
    assert (
        f"(connectivity {memory.format_size(SYNAPSE_BYTES['all_to_all'] * synapses)}, weights and delays {memory.format_size(8 * synapses)})"
        in str(e.value)
    )
    assert "more than the 4 GiB of memory available" in str(e.value)


def test_all_to_all_without_autapses_is_unchanged():
    for n in (1, 2, 7):
        s, t = _all_to_all(n, n, False)
        every_s, every_t = np.repeat(np.arange(n), n), np.tile(np.arange(n), n)
        keep = every_s != every_t
        assert np.array_equal(s, every_s[keep]) and np.array_equal(t, every_t[keep])


def test_pairs_file_of_3_gb_is_refused(tmp_path):
    path = network(
        tmp_path,
        'population A = "lif.model" (n = 10)\n'
        'connect A to A (receptor = exc, rule = from_file("pairs.csv"), weight = 1 nS)\n',
    )
    with open(tmp_path / "pairs.csv", "wb") as f:
        f.write(b"0,1\n1,2\n")
        f.truncate(3 * 10**9)
    with pytest.raises(
        MemoryLimitError, match=r"^connecting A to A \(from_file, about 750,000,000 synapses\).*list fewer pairs"
    ):
        load_network(path, max_memory="1GiB")


def test_network_population_and_run_are_checked(tmp_path):
    path = network(tmp_path, 'population A = "lif.model" (n = 100000000)\n')
    with pytest.raises(MemoryLimitError, match=r"^population A \(100000000 neurons\) needs about 5.22 GiB"):
        load_network(path, max_memory="1GiB")
    path = network(tmp_path, 'population A = "lif.model" (n = 10)\nrecord A (V)\n')
    net = load_network(path, max_memory="1MB")
    with pytest.raises(MemoryLimitError, match="recording 7.63 MiB.*record fewer neurons"):
        net.run(1000.0, 0.01, out_dir=tmp_path)
    r = net.run(10.0, 0.01, out_dir=tmp_path)
    assert r.traces["A.V"].shape == (10, 1001) and r.traces["A.V"][0, 0] == -65.0


def test_cli_network_is_refused_in_one_line(tmp_path):
    path = network(
        tmp_path,
        'population A = "lif.model" (n = 1000000)\nconnect A to A (receptor = exc, rule = all_to_all, weight = 1 nS)\n',
    )
    r = invoke("run", path, "--max-memory", "1GiB", "-o", tmp_path)
    assert r.exit_code == 1 and r.output.count("\n") == 1
    assert r.output.startswith("error: connecting A to A (all_to_all")


def test_a_recorded_current_counts_the_traces_of_every_state():
    """A current, expression or input is computed from every state's trace: those are kept too."""
    assert memory.traces_recorded(["V", "V"], ("V", "m", "h")) == 1
    assert memory.traces_recorded(["V", "m"], ("V", "m", "h")) == 2
    assert memory.traces_recorded(["I_Na"], ("V", "m", "h")) == 4
    assert memory.traces_recorded(["V", "I_Na", "I_K"], ("V", "m", "h")) == 5
    # unless the states not asked for would take more than DERIVE_EXTRA_BYTES: then step by step
    big = memory.DERIVE_EXTRA_BYTES // 2 + 1
    assert memory.traces_recorded(["I_Na"], ("V", "m", "h"), trace_bytes=big) == 1
    assert memory.traces_recorded(["I_Na", "m", "h"], ("V", "m", "h"), trace_bytes=big) == 4
    assert memory.traces_recorded(["I_Na"], ("V", "m", "h"), trace_bytes=big, always=True) == 4


def test_recorded_currents_are_the_same_step_by_step_where_the_states_traces_would_be_too_large(
    lif, tmp_path, monkeypatch
):
    kw = dict(n=4, duration="20 ms", inputs={"I_ext": "300 pA"}, record=["I_leak", "V"], out_dir=tmp_path)
    a = lif.run(**kw)
    monkeypatch.setattr(memory, "DERIVE_EXTRA_BYTES", 0)  # g_syn's traces are too large: sampled after each step
    b = lif.run(**kw)
    np.testing.assert_array_equal(a["I_leak"], b["I_leak"])
    assert np.ptp(a["I_leak"]) > 0
    net = load_network(MODELS / "cuba.network", seed=1)
    net.populations["E"].record.append("I_e")
    c = net.run(20.0, 0.1, out_dir=tmp_path)
    monkeypatch.undo()
    net = load_network(MODELS / "cuba.network", seed=1)
    net.populations["E"].record.append("I_e")
    d = net.run(20.0, 0.1, out_dir=tmp_path)
    np.testing.assert_array_equal(c.traces["E.I_e"], d.traces["E.I_e"])
    assert np.ptp(c.traces["E.I_e"]) > 0

"""Sweeps on Dask: a local cluster and a real scheduler with workers give the single-process table."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import modelgen
from modelgen import __version__
from modelgen import distributed as D
from modelgen import sweep as S
from modelgen.cli import main
from modelgen.memory import MemoryLimitError

# the same sweep on every path: 12 LIF points, a noisy input and a random threshold per point
PARAMS = {"V_th": "uniform(-52, -48) mV"}
INPUTS = {"I_ext": "ou(mean=200 pA, sigma=150 pA, tau=5 ms)"}
CLI_ARGS = ["--param", "g_L=8:13.5:0.5nS", "--param", "V_th=uniform(-52, -48) mV"]
CLI_ARGS += ["--input", "I_ext=ou(mean=200 pA, sigma=150 pA, tau=5 ms)", "--seed", "3"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def single_process_table(lif_path, tmp_path, duration: str) -> str:
    m = modelgen.load(lif_path)
    axes = [S.parse_axis("8:13.5:0.5nS", "g_L", "parameter", m.model.parameter("g_L"))]
    return S.run_sweep(m, axes, PARAMS, INPUTS, duration, "0.1 ms", seed=3, out_dir=tmp_path / "gen").to_csv()


@pytest.mark.slow
def test_a_local_cluster_of_two_processes_equals_one_process(lif_path, tmp_path):
    pytest.importorskip("dask.distributed")
    m = modelgen.load(lif_path)
    axes = [S.parse_axis("8:13.5:0.5nS", "g_L", "parameter", m.model.parameter("g_L"))]
    with D.connect(workers=2) as client:
        table = S.run_sweep(
            m, axes, PARAMS, INPUTS, "100 ms", "0.1 ms", seed=3, out_dir=tmp_path / "gen", client=client, chunk_points=2
        )
        # a chunk that fails on a worker raises its own error here (the CLI prints it as one line)
        with pytest.raises(MemoryLimitError, match="more than the memory limit of 977 KiB"):
            S.run_sweep(
                m, axes, duration="10 s", dt="0.1 ms", out_dir=tmp_path / "gen", client=client, max_memory="1MB"
            )
    assert table.metadata["runs"] == 6
    assert table.to_csv() == single_process_table(lif_path, tmp_path, "100 ms")


@pytest.mark.slow
def test_workers_option_equals_one_process(lif_path, tmp_path):
    pytest.importorskip("dask.distributed")
    out = tmp_path / "table.csv"
    r = invoke("sweep", lif_path, *CLI_ARGS, "--duration", "100ms", "--dt", "0.1ms", "--workers", 2, "--chunk", 6,
               "--out", out, "-o", tmp_path / "gen")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "12 points in 2 run(s) of 100 ms on 2 Dask worker(s)" in r.output
    assert "neuron-steps/s" in r.output
    assert out.read_text() == single_process_table(lif_path, tmp_path, "100 ms")
    assert not (tmp_path / "table.csv.chunks").exists()  # dropped once the table is written


def _start(args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as f:
        return subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for(condition, timeout: float, what: str, procs=()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"{what}: {p.args[:3]} ended early with status {p.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_a_real_cluster_survives_a_killed_worker(lif_path, tmp_path):
    pytest.importorskip("dask.distributed")
    dask = Path(sys.executable).with_name("dask")
    scheduler_file = tmp_path / "scheduler.json"
    procs = []
    try:
        procs.append(
            _start(
                [dask, "scheduler", "--port", "0", "--no-dashboard", "--scheduler-file", scheduler_file],
                tmp_path / "scheduler.log",
            )
        )
        _wait_for(scheduler_file.exists, 60, "the scheduler", procs)
        address = json.loads(scheduler_file.read_text())["address"]
        workers = [
            _start([dask, "worker", address, "--nthreads", "1", "--no-dashboard"], tmp_path / f"worker{i}.log")
            for i in range(2)
        ]
        procs += workers
        out = tmp_path / "table.csv"
        sweep = _start(
            [sys.executable, "-m", "modelgen", "sweep", lif_path, *CLI_ARGS, "--duration", "1000ms", "--dt", "0.1ms",
             "--scheduler", address, "--chunk", "1", "--out", out, "-o", tmp_path / "gen"],
            tmp_path / "sweep.log",
        )  # fmt: skip
        procs.append(sweep)
        chunks = tmp_path / "table.csv.chunks"
        # 12 chunks of one point, 0.2-1 s each: kill a worker mid-sweep
        _wait_for(lambda: len(list(chunks.glob("chunk-*.npz"))) >= 3, 120, "three finished chunks", procs)
        os.killpg(workers[0].pid, signal.SIGKILL)
        sweep.wait(timeout=180)
        log = (tmp_path / "sweep.log").read_text()
        assert sweep.returncode == 0, log
        assert "12 points in 12 run(s)" in log
        killed = re.search(r"Start worker at: +(tcp://\S+)", (tmp_path / "worker0.log").read_text()).group(1)
        assert f"Remove worker addr: {killed}" in (tmp_path / "scheduler.log").read_text()  # it was in use
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    table = out.read_text()
    rows = table.splitlines()[1:]
    assert len(rows) == 12 and len({row.split(",")[0] for row in rows}) == 12  # every point once
    assert table == single_process_table(lif_path, tmp_path, "1000 ms")


def test_an_unreachable_scheduler_is_one_line(lif_path, tmp_path, monkeypatch):
    pytest.importorskip("dask.distributed")
    monkeypatch.setattr(D, "CONNECT_TIMEOUT_S", 1.0)
    r = invoke("sweep", lif_path, *CLI_ARGS, "--scheduler", "tcp://127.0.0.1:9", "-o", tmp_path)
    assert r.exit_code == 1
    assert r.output.startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:9 (")
    assert r.output.endswith("start one with `dask scheduler` and give the address it prints\n")
    assert r.output.count("\n") == 1


def test_without_dask_the_options_name_the_extra(lif_path, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # what `import dask.distributed` meets without Dask
    r = invoke("sweep", lif_path, *CLI_ARGS, "--workers", 2, "-o", tmp_path)
    assert r.exit_code == 1
    assert r.output == "error: --workers and --scheduler need Dask: pip install 'modelgen[distributed]'\n"
    r = invoke("sweep", lif_path, "--input", "I_ext=100,200pA", "--duration", "10ms", "-q", "-o", tmp_path)
    assert r.exit_code == 0, r.output  # the plain sweep needs no Dask


@pytest.mark.parametrize(
    "args, message",
    [
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:9"], "give --workers (a local cluster) or --scheduler"),
        (["--resume"], "--resume needs --out"),
        (["--workers", "0"], "0 is not in the range x>=1"),
    ],
)
def test_option_misuse_is_a_usage_error(lif_path, tmp_path, args, message):
    r = invoke("sweep", lif_path, "--input", "I_ext=100,200pA", *args, "-o", tmp_path)
    assert r.exit_code == 2
    assert message in r.output


class FakeClient:
    """What check_workers asks a dask Client, answered from a table of worker versions."""

    def __init__(self, versions: dict, workers_come: bool = True):
        self.versions, self.workers_come = versions, workers_come

    def wait_for_workers(self, n, timeout):
        if not self.workers_come:
            raise TimeoutError

    def get_versions(self, packages):
        return {"workers": {a: {"packages": {"modelgen": v}} for a, v in self.versions.items()}}


@pytest.mark.parametrize(
    "client, message",
    [
        (FakeClient({"tcp://10.0.0.2:4000": None}), "the Dask worker at tcp://10.0.0.2:4000 cannot import modelgen"),
        (
            FakeClient({"tcp://10.0.0.2:4000": __version__, "tcp://10.0.0.3:4000": "0.0.1"}),
            f"the Dask worker at tcp://10.0.0.3:4000 runs modelgen 0.0.1, this is {__version__}",
        ),
        (FakeClient({}, workers_come=False), "the scheduler at tcp://h:1 has no workers after 30 s"),
    ],
)
def test_workers_that_cannot_run_the_sweep_are_named(client, message):
    with pytest.raises(D.DistributedError, match="^" + message.replace(".", r"\.")):
        D.check_workers(client, "tcp://h:1")
    D.check_workers(FakeClient({"tcp://10.0.0.2:4000": __version__}), "tcp://h:1")  # the same version: fine


def test_the_progress_bar_counts_points_and_their_rate(monkeypatch):
    import io

    from modelgen.cli import _Progress

    err = io.StringIO()
    err.isatty = lambda: True
    monkeypatch.setattr(sys, "stderr", err)
    now = [0.0]
    bar = _Progress("sweep", clock=lambda: now[0], unit="points")
    for done in range(0, 201, 20):  # 200 points in 20 s, as chunks come back
        now[0] = done / 10
        bar(done, 200)
    bar.close()
    shown = err.getvalue()
    assert "200/200" in shown and "10 points/s" in shown


class _LosingClient:
    """A Dask client stand-in that runs chunks in this process; the first time, the chunks after the
    first two come back cancelled, as when every worker that held the scattered plan has left."""

    loop = None

    def __init__(self, lose: int):
        self.lose, self.sent, self.scattered = lose, [], 0

    def scatter(self, values, broadcast, hash):
        self.scattered += 1
        return [type("Shared", (), {"key": f"plan-{self.scattered}", "plan": values[0]})()]

    def submit(self, fn, shared, c, key):
        lost = self.scattered <= self.lose and len(self.sent) >= 2
        self.sent.append(c)
        return _Done(lambda: fn(shared.plan, c), lost)

    def cancel(self, futures):
        pass


class _Done:
    def __init__(self, run, lost):
        self.run, self.lost = run, lost

    def result(self):
        import concurrent.futures

        if self.lost:
            raise concurrent.futures.CancelledError("already forgotten")
        return self.run()


def test_chunks_lost_with_the_plan_are_sent_again(lif_path, tmp_path, monkeypatch):
    """A chunk cancelled because the scheduler forgot the plan (its workers left) is sent again with a
    new copy of the plan; the table is the single process's. Lost every time: one clear error."""
    m = modelgen.load(lif_path)
    axes = [S.parse_axis("8:13.5:0.5nS", "g_L", "parameter", m.model.parameter("g_L"))]
    plan = S.plan_sweep(m, axes, PARAMS, INPUTS, "100 ms", "0.1 ms", seed=3, out_dir=tmp_path / "gen", chunk_points=2)
    fake = type("dd", (), {"as_completed": staticmethod(lambda fs, loop: iter(list(fs))), "KilledWorker": KeyError})
    monkeypatch.setattr(D, "_dask", lambda: fake)
    client = _LosingClient(lose=1)
    table = D.run_chunks_on(client, plan)
    assert client.scattered == 2 and client.sent == [0, 1, 2, 3, 4, 5, 2, 3, 4, 5]
    assert table.to_csv() == single_process_table(lif_path, tmp_path, "100 ms")
    with pytest.raises(D.DistributedError, match="4 chunks of the sweep were lost 4 times .* --resume"):
        D.run_chunks_on(_LosingClient(lose=99), plan)

"""A sweep's finished chunks kept beside its table: nothing lost, --resume does only the missing chunks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

import modelgen
from modelgen import sweep as S
from modelgen.cli import main
from modelgen.sweep_store import ChunkStore

GRID = "100:290:10pA"  # 20 points
ARGS = ["--input", f"I_ext={GRID}", "--param", "V_th=uniform(-52, -48) mV", "--dt", "0.1ms", "--seed", "5"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def uninterrupted(lif_path, tmp_path, duration: str) -> str:
    m = modelgen.load(lif_path)
    axes = [S.parse_axis(GRID, "I_ext", "input", m.model.input("I_ext"))]
    params = {"V_th": "uniform(-52, -48) mV"}
    return S.run_sweep(m, axes, params, duration=duration, dt="0.1 ms", seed=5, out_dir=tmp_path / "gen").to_csv()


def counting_chunks(monkeypatch) -> list[int]:
    ran = []
    real = S.run_chunk

    def run_chunk(plan, c, progress=None):
        ran.append(c)
        return real(plan, c, progress)

    monkeypatch.setattr(S, "run_chunk", run_chunk)
    return ran


def test_resume_runs_only_the_missing_chunks(lif_path, tmp_path, monkeypatch):
    out = tmp_path / "table.csv"
    args = ["sweep", lif_path, *ARGS, "--duration", "50ms", "--chunk", 3, "--out", out, "-o", tmp_path / "gen"]
    real_save = ChunkStore.save

    def save_then_stop(store, chunk):  # the sweep is stopped after its third chunk is saved
        real_save(store, chunk)
        if len(list(store.folder.glob("chunk-*.npz"))) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(ChunkStore, "save", save_then_stop)
    invoke(*args)
    monkeypatch.setattr(ChunkStore, "save", real_save)
    assert not out.exists() and len(list((tmp_path / "table.csv.chunks").glob("chunk-*.npz"))) == 3
    # without --resume the kept chunks are never overwritten or dropped
    r = invoke(*args)
    assert r.exit_code == 1
    assert r.output == (
        f"error: {tmp_path / 'table.csv.chunks'} holds 3 finished chunk(s) of an unfinished sweep; "
        "add --resume to finish it, or remove the folder to start again\n"
    )
    # another sweep is not resumed from them
    r = invoke(*[a if a != "50ms" else "60ms" for a in args], "--resume")
    assert r.exit_code == 1
    assert "holds another sweep (its duration_ms differ)" in r.output
    ran = counting_chunks(monkeypatch)
    r = invoke(*args[:-4], "--chunk", 5, *args[-4:], "--resume")  # the kept chunk size wins
    assert r.exit_code == 0, r.output
    assert sorted(ran) == [3, 4, 5, 6]
    assert "20 points in 7 run(s) of 50 ms (3 kept from the interrupted run)" in r.output
    assert out.read_text() == uninterrupted(lif_path, tmp_path, "50 ms")
    assert not (tmp_path / "table.csv.chunks").exists()


@pytest.mark.slow
def test_resume_after_the_process_is_killed(lif_path, tmp_path, monkeypatch):
    out = tmp_path / "table.csv"
    args = [*ARGS, "--duration", "400ms", "--chunk", "2", "--out", out, "-o", tmp_path / "gen", "-q"]
    chunks = tmp_path / "table.csv.chunks"
    with open(tmp_path / "sweep.log", "wb") as log:
        sweep = subprocess.Popen(
            [sys.executable, "-m", "modelgen", "sweep", lif_path, *args], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 120
        while len(list(chunks.glob("chunk-*.npz"))) < 3:
            assert sweep.poll() is None, (tmp_path / "sweep.log").read_text()
            assert time.monotonic() < deadline, "timed out waiting for three chunks"
            time.sleep(0.02)
        os.kill(sweep.pid, signal.SIGKILL)
        sweep.wait(timeout=30)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    kept = sorted(int(p.stem.removeprefix("chunk-")) for p in chunks.glob("chunk-*.npz"))
    assert not out.exists() and 3 <= len(kept) < 10
    # every chunk kept is whole: a write the kill cut short leaves at most a hidden temporary file
    for path in chunks.glob("chunk-*.npz"):
        with np.load(path) as z:
            assert {"metadata", "cost"} <= set(z.files)
    others = [p.name for p in chunks.iterdir() if p.name != "sweep.json" and not p.name.startswith("chunk-")]
    assert all(name.startswith(".chunk-") and ".tmp" in name for name in others), others
    ran = counting_chunks(monkeypatch)
    r = invoke("sweep", lif_path, *args, "--resume")
    assert r.exit_code == 0, r.output
    assert sorted(ran) == sorted(set(range(10)) - set(kept))
    assert out.read_text() == uninterrupted(lif_path, tmp_path, "400 ms")
    assert not chunks.exists()  # dropped with any temporary file once the table is written


def test_a_sweep_that_failed_before_its_first_chunk_leaves_nothing_to_resume(lif_path, tmp_path):
    out = tmp_path / "table.csv"
    args = ["sweep", lif_path, "--input", "I_ext=100,200pA", "--out", out, "-o", tmp_path / "gen"]
    r = invoke(*args, "--duration", "10s", "--max-memory", "1MB")
    assert r.exit_code == 1 and "more than the memory limit" in r.output
    r = invoke(*args, "--duration", "10ms")  # no --resume needed: no chunk was kept
    assert r.exit_code == 0, r.output
    assert out.read_text().startswith("I_ext (pA),rate (Hz)")

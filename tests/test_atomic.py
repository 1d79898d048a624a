"""No failed, killed or concurrent write destroys what was there (modelgen/atomic.py and its users).

Disk-full is tried on a real 200 kB tmpfs where the machine allows mounting one (root), and
everywhere through a file-size limit (RLIMIT_FSIZE), which fails writes the same way; a save is
killed with SIGKILL while its temporary file is being written; generated modules are built by
8 processes at once.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import modelgen
from modelgen.atomic import atomic_file, atomic_folder, write_text_atomic
from modelgen.cli import main
from modelgen.results import load_result
from modelgen.runtime import Result

ROOT = Path(__file__).resolve().parent.parent


def _result(n_times: int, value: float = 1.0, names=("V",)) -> Result:
    t = np.arange(n_times) * 0.01
    return Result(
        model="LIF",
        t=t,
        traces={name: np.full((2, n_times), value + k) for k, name in enumerate(names)},
        units={name: "mV" for name in names},
        record_indices=np.arange(2),
        spike_i=np.array([0, 1]),
        spike_t=np.array([1.0, 2.0]),
        n=2,
        dt=0.01,
        duration=n_times * 0.01,
        method="euler",
        wall_time=0.1,
    )


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@contextlib.contextmanager
def _tiny_tmpfs(tmp_path: Path, size: str = "200k"):
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.parametrize("name", ["res.npz", "res.csv", "res"])
def test_disk_full_leaves_the_old_result(tmp_path, name):
    with _tiny_tmpfs(tmp_path) as disk:
        target = disk / name
        _result(100, 1.0).save(target)
        before = sorted(p.name for p in disk.rglob("*"))
        with pytest.raises(OSError) as err:
            _result(100_000, 2.0).save(target)  # ~3 MB: does not fit
        assert err.value.filename == str(target)  # the error names the user's file, not a temporary one
        assert sorted(p.name for p in disk.rglob("*")) == before  # no temporary file left behind
        if name.endswith(".csv"):
            assert target.read_text().count("\n") == 101
        else:
            back = load_result(target)
            assert back["V"].shape == (2, 100) and np.all(back["V"] == 1.0)


def _save_under_file_size_limit(target: str, limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    try:
        _result(100_000, 2.0).save(target)
    except OSError:
        os._exit(3)
    os._exit(0)


@pytest.mark.parametrize("name", ["res.npz", "res.csv", "res"])
def test_a_write_that_fails_part_way_leaves_the_old_result(tmp_path, name):
    """The portable form of a full disk: writes fail past a file-size limit."""
    target = tmp_path / name
    _result(100, 1.0).save(target)
    ctx = multiprocessing.get_context("fork")
    p = ctx.Process(target=_save_under_file_size_limit, args=(str(target), 100_000))
    p.start()
    p.join(60)
    assert p.exitcode == 3
    assert _leftovers(tmp_path) == []
    if name.endswith(".csv"):
        assert target.read_text().count("\n") == 101
    else:
        assert np.all(load_result(target)["V"] == 1.0)


def _save_forever(target: str) -> None:
    big = _result(2_000_000, 2.0)  # 32 MB per trace: a save takes a while
    while True:
        big.save(target)


def _writing(folder: Path) -> bool:
    """Whether a temporary file (or a file in a temporary folder) of over 1 MB is being written."""
    for f in folder.rglob("*"):
        with contextlib.suppress(OSError):
            if f.relative_to(folder).parts[0].startswith(".") and f.is_file() and f.stat().st_size > 1_000_000:
                return True
    return False


@pytest.mark.parametrize("name", ["res.npz", "res"])
def test_kill_during_save_leaves_a_complete_result(tmp_path, name):
    target = tmp_path / name
    _result(100, 1.0).save(target)
    ctx = multiprocessing.get_context("fork")
    p = ctx.Process(target=_save_forever, args=(str(target),))
    p.start()
    deadline = time.monotonic() + 60
    while not _writing(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.002)
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    assert time.monotonic() < deadline, "the save was never seen in progress"
    back = load_result(target)  # the old result, or a complete new one: never a broken file
    assert back["V"].shape[1] in (100, 2_000_000)
    assert np.all(back["V"] == back["V"][0, 0])


def test_a_failing_folder_save_leaves_the_old_folder_whole(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    _result(100, 1.0).save(folder)
    old = {p.name: p.read_bytes() for p in folder.iterdir()}

    def broken(result, f):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("modelgen.results._write_spikes_csv", broken)
    with pytest.raises(OSError):
        _result(200, 2.0).save(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == old
    assert _leftovers(tmp_path) == []


def test_a_folder_saved_again_is_replaced_whole(tmp_path):
    folder = tmp_path / "run"
    _result(100, 1.0).save(folder)
    _result(50, 2.0, names=("V", "w")).save(folder)
    back = load_result(folder)
    assert set(back.traces) == {"V", "w"} and back["V"].shape == (2, 50) and np.all(back["V"] == 2.0)
    assert _leftovers(tmp_path) == []


def test_saving_over_a_folder_of_other_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"notes\.txt"):
        _result(10).save(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_helpers_leave_nothing_on_an_exception(tmp_path):
    target = tmp_path / "x.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_file(target, "w", encoding="utf-8") as f:
        f.write("new")
        raise RuntimeError
    with pytest.raises(KeyboardInterrupt), atomic_folder(tmp_path / "d") as d:
        (d / "a").write_text("x")
        raise KeyboardInterrupt
    assert target.read_text() == "old" and _leftovers(tmp_path) == [] and not (tmp_path / "d").exists()
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # not mkstemp's private 0600


def _umask() -> int:
    u = os.umask(0)
    os.umask(u)
    return u


# ------------------------------------------------------------------ recorded names that clash with built-ins
@pytest.mark.parametrize("name", ["units", "t", "spike_i", "spike_t", "record_indices"])
def test_a_recorded_variable_named_like_a_builtin_array_is_kept(tmp_path, name):
    r = _result(10, 1.0, names=("V", name))
    for target in (tmp_path / "r.npz", tmp_path / "folder"):
        back = load_result(r.save(target))
        assert set(back.traces) == {"V", name}
        np.testing.assert_array_equal(back[name], r[name])
        np.testing.assert_array_equal(back.t, r.t)
        assert back.units == r.units


def test_a_state_named_units_is_recorded_saved_and_loaded(tmp_path):
    text = (ROOT / "models" / "lif.model").read_text().replace("g_syn", "units")
    m = modelgen.load_text(text, "lif_units.model")
    r = m.run(duration="5 ms", record=["V", "units"], inputs={"I_ext": "300 pA"}, out_dir=tmp_path)
    back = load_result(r.save(tmp_path / "r.npz"))
    assert set(back.traces) == {"V", "units"}
    assert back.units["units"] == r.units["units"]


# ------------------------------------------------------------------ concurrent builds
def _build(path: str, out: str, barrier) -> None:
    m = modelgen.load(path)
    barrier.wait()
    try:
        m.build(out)
        m.build(out, backend="numba")
    except Exception as e:  # noqa: BLE001 - any failure is what the test looks for
        print(repr(e), file=sys.stderr)
        os._exit(1)
    os._exit(0)


@pytest.mark.slow  # ~10-25 s: 16 processes building
def test_concurrent_builds_never_collide(lif_path, tmp_path):
    ctx = multiprocessing.get_context("fork")
    for _ in range(2):
        for f in tmp_path.glob("*.py"):
            f.unlink()
        barrier = ctx.Barrier(8)
        procs = [ctx.Process(target=_build, args=(str(lif_path), str(tmp_path), barrier)) for _ in range(8)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0] * 8
        assert sorted(p.name for p in tmp_path.iterdir()) == ["lif.py", "lif_numba.py"]  # no .tmp files
    modelgen.load(lif_path).run(duration="1 ms", out_dir=tmp_path)


# ------------------------------------------------------------------ the command line: one line, exit 1
def test_cli_unwritable_outputs_are_one_line_errors(lif_path, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    runner = CliRunner()
    cases = [
        ["build", str(lif_path), "--out-dir", str(blocker / "gen")],
        ["run", str(lif_path), "--duration", "1ms", "--out-dir", str(blocker / "gen")],
        ["run", str(lif_path), "--duration", "1ms", "--out-dir", str(tmp_path), "--save", str(blocker / "r.npz")],
        ["run", str(ROOT / "models/two_neurons.network"), "--duration", "1ms", "--out-dir", str(tmp_path),
         "--save", str(blocker / "net.npz")],
        ["sweep", str(lif_path), "--input", "I_ext=0:300:100pA", "--duration", "5ms", "--out-dir", str(tmp_path),
         "--out", str(blocker / "table.csv")],
    ]  # fmt: skip
    for args in cases:
        out = runner.invoke(main, args)
        assert out.exit_code == 1, (args, out.output)
        assert "Traceback" not in out.output and out.exception is None or isinstance(out.exception, SystemExit)
        lines = [ln for ln in out.output.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and "cannot write" in lines[0] and "a_file" in lines[0], out.output


def test_cli_full_disk_is_a_one_line_error(lif_path, tmp_path):
    with _tiny_tmpfs(tmp_path, "64k") as disk:
        with pytest.raises(OSError), open(disk / "filler", "wb") as f:  # fill the disk
            for _ in range(64):
                f.write(b"x" * 4096)
                f.flush()
        out = CliRunner().invoke(main, ["build", str(lif_path), "--out-dir", str(disk)])
        assert out.exit_code == 1
        assert "error: cannot write" in out.output and "No space left on device" in out.output
        assert [p.name for p in disk.iterdir()] == ["filler"]


def test_cli_read_only_folder_is_a_one_line_error(lif_path, tmp_path):
    with _tiny_tmpfs(tmp_path) as disk:
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        out = CliRunner().invoke(main, ["run", str(lif_path), "--duration", "1ms", "--out-dir", str(disk / "gen")])
        assert out.exit_code == 1
        assert "Read-only file system" in out.output and "--out-dir" in out.output

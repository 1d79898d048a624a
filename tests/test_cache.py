"""Where generated modules live (modelgen/cache.py): named by content in the cache, readable and
owned by one model file in a named folder, never in the working directory unless asked."""

import os
import shutil
from pathlib import Path

import numpy as np
import platformdirs
import pytest
from click.testing import CliRunner

import modelgen
import modelgen.api
from modelgen import __version__
from modelgen.cache import ModuleClashError, cache_dir, cache_root
from modelgen.cli import main
from modelgen.network import load_network

LEAKY = """model Leaky "a passive membrane relaxing to rest"
parameter C   = 200 pF
parameter g_L = {g_L} nS
parameter E_L = -65 mV
state V = -50 mV
charge Q = C * V
current I_leak = g_L * (V - E_L)  outward
"""


def leaky_exact(t: np.ndarray, g_L: float) -> np.ndarray:
    """Return V(t) in mV of a Leaky membrane (C = 200 pF, E_L = -65 mV) starting at -50 mV."""
    return -65.0 + 15.0 * np.exp(-t * g_L / 200.0)  # tau = C/g_L: pF/nS = ms


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A fresh, empty cache of this test's own (so that builds can be counted)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("MODELGEN_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def builds(monkeypatch) -> list:
    """Return a list that grows by one entry (the model's name) each time a module is generated."""
    made = []
    generate = modelgen.api.generate_code

    def counting(model, *args, **kw):
        made.append(model.name)
        return generate(model, *args, **kw)

    monkeypatch.setattr(modelgen.api, "generate_code", counting)
    return made


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_two_models_of_one_name_each_give_their_own_numbers_without_rebuilding_each_other(cache, builds):
    slow, fast = modelgen.load_text(LEAKY.format(g_L=5)), modelgen.load_text(LEAKY.format(g_L=20))
    assert slow.name == fast.name == "Leaky"
    for _ in range(2):  # alternately, as a notebook would
        for model, g_L in ((slow, 5.0), (fast, 20.0)):
            r = model.run(duration="20 ms", dt="0.1 ms")
            np.testing.assert_allclose(r["V"][0], leaky_exact(r.t, g_L), rtol=1e-12, atol=1e-12)
    assert builds == ["Leaky", "Leaky"]  # one build each, never again
    assert slow.generated_path() != fast.generated_path()
    assert slow.generated_path().parent == fast.generated_path().parent == cache / __version__


def test_files_of_one_name_in_different_folders_get_different_modules(tmp_path, cache, builds):
    a = modelgen.load(write(tmp_path / "a" / "hh.model", LEAKY.format(g_L=5)))
    b = modelgen.load(write(tmp_path / "b" / "hh.model", LEAKY.format(g_L=20)))
    assert a.generated_path() != b.generated_path()
    ra, rb = a.run(duration="10 ms", dt="0.1 ms"), b.run(duration="10 ms", dt="0.1 ms")
    np.testing.assert_allclose(ra["V"][0], leaky_exact(ra.t, 5.0), rtol=1e-12)
    np.testing.assert_allclose(rb["V"][0], leaky_exact(rb.t, 20.0), rtol=1e-12)
    a.run(duration="10 ms", dt="0.1 ms")
    assert len(builds) == 2


def test_stems_that_differ_only_in_punctuation_get_different_modules(tmp_path, cache):
    one = modelgen.load(write(tmp_path / "hh-1.model", LEAKY.format(g_L=5)))
    other = modelgen.load(write(tmp_path / "hh_1.model", LEAKY.format(g_L=20)))
    assert one.generated_path().name.startswith("hh-1-")
    assert other.generated_path().name.startswith("hh_1-")
    # in a named folder too, where modules keep readable names
    out = tmp_path / "generated"
    assert (one.build(out).name, other.build(out).name) == ("hh-1.py", "hh_1.py")
    for model, g_L in ((one, 5.0), (other, 20.0)):
        r = model.run(duration="10 ms", dt="0.1 ms", out_dir=out)
        np.testing.assert_allclose(r["V"][0], leaky_exact(r.t, g_L), rtol=1e-12)


def test_the_same_model_from_two_paths_reuses_one_module(tmp_path, cache, builds, lif_path):
    (tmp_path / "a").mkdir()
    first = modelgen.load(shutil.copy(lif_path, tmp_path / "a" / "lif.model"))
    second = modelgen.load(lif_path)
    assert first.generated_path() == second.generated_path()
    r1 = first.run(duration="5 ms", inputs={"I_ext": "300 pA"})
    r2 = second.run(duration="5 ms", inputs={"I_ext": "300 pA"})
    np.testing.assert_array_equal(r1["V"], r2["V"])
    assert builds == ["LIF"]
    assert [p.name for p in (cache / __version__).glob("*.py")] == [first.generated_path().name]


def test_the_api_writes_nothing_into_the_working_directory(tmp_path, cache, monkeypatch, lif_path):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    lif = modelgen.load(lif_path)
    lif.run(duration="2 ms")
    lif.run(duration="2 ms", backend="numba") if _has_numba() else None
    lif.build()
    from modelgen.sweep import parse_axis, run_sweep

    run_sweep(lif, [parse_axis("0,500 pA", "I_ext", "input", lif.model.input("I_ext"))], duration="5 ms")
    load_network(Path(__file__).resolve().parent.parent / "models" / "two_neurons.network").run(5.0, 0.1)
    assert CliRunner().invoke(main, ["run", str(lif_path), "--duration", "2 ms", "-q"]).exit_code == 0
    assert list(work.iterdir()) == []
    assert any((cache / __version__).glob("lif-*.py"))


def _has_numba() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def test_the_cache_is_in_the_users_cache_directory_unless_the_environment_says_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv("MODELGEN_CACHE_DIR", raising=False)
    assert cache_root() == Path(platformdirs.user_cache_dir("modelgen", appauthor=False))
    monkeypatch.setenv("MODELGEN_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere" / __version__
    lif = modelgen.load(Path(__file__).resolve().parent.parent / "models" / "lif.model")
    path = lif.build()
    assert path.parent == tmp_path / "elsewhere" / __version__
    assert path.name == f"lif-{lif.build_hash()[:16]}.py"


def test_the_suite_never_writes_into_the_real_user_cache(modelgen_cache):
    assert cache_root() == modelgen_cache
    assert Path(platformdirs.user_cache_dir("modelgen", appauthor=False)) != modelgen_cache


def test_a_named_folder_keeps_readable_names_and_records_the_model_file(tmp_path, lif_path):
    out = tmp_path / "generated"
    path = modelgen.load(lif_path).build(out)
    assert path == out / "lif.py"
    expected = Path(os.path.relpath(lif_path.resolve(), out.resolve())).as_posix()
    assert f"# source path:   {expected}\n" in path.read_text(encoding="utf-8")


def test_a_named_folder_refuses_a_second_file_of_the_same_name(tmp_path):
    a = write(tmp_path / "a" / "leaky.model", LEAKY.format(g_L=5))
    b = write(tmp_path / "b" / "leaky.model", LEAKY.format(g_L=20))
    out = tmp_path / "generated"
    modelgen.load(a).build(out)
    with pytest.raises(ModuleClashError) as e:
        modelgen.load(b).run(duration="1 ms", out_dir=out)
    assert str(e.value) == (
        f"{out / 'leaky.py'} is the module of another model file (../a/leaky.model, relative to {out}); "
        f"{b} has the same name, so it was not built there: build it into another folder (-o DIR, or out_dir=), "
        "or leave out the folder to use modelgen's cache"
    )
    r = CliRunner().invoke(main, ["build", str(b), "-o", str(out)])
    assert r.exit_code == 1
    assert r.output.startswith(f"error: {out / 'leaky.py'} is the module of another model file")
    assert "Traceback" not in r.output
    # the module still is a's, and a edited is rebuilt there as before
    write(a, LEAKY.format(g_L=10))
    r = modelgen.load(a).run(duration="10 ms", dt="0.1 ms", out_dir=out)
    np.testing.assert_allclose(r["V"][0], leaky_exact(r.t, 10.0), rtol=1e-12)


def test_a_project_moved_with_its_generated_folder_keeps_its_modules(tmp_path, builds):
    write(tmp_path / "p" / "models" / "leaky.model", LEAKY.format(g_L=5))
    modelgen.load(tmp_path / "p" / "models" / "leaky.model").build(tmp_path / "p" / "generated")
    (tmp_path / "p").rename(tmp_path / "q")
    moved = modelgen.load(tmp_path / "q" / "models" / "leaky.model")
    assert moved.build(tmp_path / "q" / "generated") == tmp_path / "q" / "generated" / "leaky.py"
    assert builds == ["Leaky"]


def test_cache_command_shows_and_clears_the_cache(tmp_path, cache, lif_path):
    runner = CliRunner()
    r = runner.invoke(main, ["cache"])
    assert r.exit_code == 0
    assert (
        r.output
        == f"cache: {cache}  (from MODELGEN_CACHE_DIR)\nthis modelgen ({__version__}) writes to {cache / __version__}\ntotal: 0 modules, 0 B\n"
    )
    path = modelgen.load(lif_path).build()
    write(cache / "notes.txt", "not modelgen's")
    old = write(cache / "0.0.1" / "old-0123456789abcdef.py", "# an older version's module\n").stat().st_size
    r = runner.invoke(main, ["cache"])
    size = path.stat().st_size
    assert r.output.splitlines()[2:] == [
        f"  0.0.1: 1 module, {old} B",
        f"  {__version__}: 1 module, {size / 1024:.1f} KiB",
        "total: 2 modules, " + f"{(size + old) / 1024:.1f} KiB",
    ]
    r = runner.invoke(main, ["cache", "clear"])
    assert r.exit_code == 0
    assert r.output == f"removed 2 modules ({(size + old) / 1024:.1f} KiB) from {cache}\n"
    assert [p.name for p in cache.iterdir()] == ["notes.txt"]

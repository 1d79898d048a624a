"""No user text runs as code, and no edited generated module runs (modelgen/integrity.py, runtime checks).

Every channel by which user text reaches a generated module (the model file's name, its
description, its source lines echoed in comments, unit text, a used current file's name, a
network file's name) is tried with the PEP 263 coding trick, newlines, triple quotes and Unicode
line separators. A payload that ran would create a folder named by $MODELGEN_PWNED and bind the
name ``pwned_by_modelgen``; the tests check both that nothing ran and that the name never appears
as code in the module's tokens.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tokenize
import warnings
from pathlib import Path

import pytest

import modelgen
from modelgen.integrity import CODING_LINE, check_generated_text, comment_text, header_field, text_hash
from modelgen.runtime import ModifiedModuleError, StaleModuleError, load_generated

ROOT = Path(__file__).resolve().parent.parent
LIF = (ROOT / "models" / "lif.model").read_text(encoding="utf-8")

# written into model files literally: under a unicode_escape coding, \n and \x27 become a newline and a quote
PAYLOAD = r"x\nimport os; os.mkdir(os.environ[\x27MODELGEN_PWNED\x27]); pwned_by_modelgen = 1\n#"
TRICKS = {
    "coding": PAYLOAD,
    "newline": "x\nimport os; pwned_by_modelgen = 1",
    "carriage return": "x\rimport os; pwned_by_modelgen = 1",
    "triple quotes": 'x"""; pwned_by_modelgen = 1; """',
    "line separator": "x\u2028pwned_by_modelgen = 1\u2029pwned_by_modelgen = 2\x85pwned_by_modelgen = 3",
    "form feed and vertical tab": "x\x0cpwned_by_modelgen = 1\x0bpwned_by_modelgen = 2",
    "bidi override": "x\u202epwned_by_modelgen = 1\u202c",
}
CODING_NAME = "lif(coding=unicode_escape)"


def _assert_inert(code: str) -> None:
    """The module has the fixed coding line and ``pwned_by_modelgen`` is never a token of code."""
    assert code.split("\n", 1)[0] == CODING_LINE
    check_generated_text(code)
    # tokenize decodes the bytes as Python would (coding declarations included)
    names = {tok.string for tok in tokenize.tokenize(io.BytesIO(code.encode("utf-8")).readline)}
    assert "pwned_by_modelgen" not in names


def _write(folder: Path, name: str, text: str) -> Path | None:
    path = folder / name
    try:
        path.write_text(text, encoding="utf-8")
    except (OSError, ValueError):  # a name the file system refuses (e.g. a NUL) cannot reach us either
        return None
    return path


def _run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MODELGEN_PWNED=str(cwd / "PWNED"))
    return subprocess.run(
        [sys.executable, "-m", "modelgen", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_reported_attack_runs_nothing(tmp_path):
    """A model saved as lif(coding=unicode_escape).model whose description holds \\n + code."""
    text = LIF.replace('"Leaky integrate-and-fire neuron with an exponential conductance synapse"', f'"{PAYLOAD}"')
    path = _write(tmp_path, f"{CODING_NAME}.model", text)
    done = _run_cli(["run", path.name, "--duration", "5ms", "--out-dir", "gen"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "PWNED").exists()
    (module,) = (tmp_path / "gen").glob("*.py")
    _assert_inert(module.read_text(encoding="utf-8"))


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_description(trick, tmp_path):
    description = TRICKS[trick].replace('"', "'")  # a description is a "string": it holds no double quote
    text = LIF.replace('"Leaky integrate-and-fire neuron with an exponential conductance synapse"', f'"{description}"')
    try:
        m = modelgen.load_text(text, f"{CODING_NAME}.model")
    except modelgen.ModelError:
        return  # refused: nothing generated
    _assert_inert(m.code())
    _assert_inert(m.code(backend="numba"))


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_file_name(trick, tmp_path):
    name = (CODING_NAME + TRICKS[trick]).replace("/", "_") + ".model"
    path = _write(tmp_path, name, LIF)
    if path is None:
        pytest.skip("the file system refuses this name")
    m = modelgen.load(path)
    code = m.code()
    _assert_inert(code)
    assert header_field(code, "source") == comment_text(name)


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_comment_and_source_lines(trick):
    """Source lines are echoed into the generated code's comments (trailing comments are dropped)."""
    text = LIF.replace("threshold V > V_th", f"threshold V > V_th  # {TRICKS[trick]}").replace(
        "dg_syn/dt = -g_syn / tau_syn", f"# {CODING_NAME} {TRICKS[trick]}\ndg_syn/dt = -g_syn / tau_syn"
    )
    try:
        m = modelgen.load_text(text, "lif.model")
    except modelgen.ModelError:
        return
    _assert_inert(m.code())


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_unit_text(trick):
    text = LIF.replace("parameter t_ref   = 2 ms", f"parameter t_ref   = 2 ms{TRICKS[trick]}")
    with pytest.raises(modelgen.ModelError):  # the unit's text is parsed, not copied: refused
        modelgen.load_text(text, "lif.model")


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_current_file_name(trick, tmp_path):
    name = (CODING_NAME + TRICKS[trick]).replace("/", "_").replace('"', "'")
    (tmp_path / "currents").mkdir()
    current = _write(
        tmp_path / "currents", name + ".current", (ROOT / "modelgen/library/currents/leak.current").read_text()
    )
    if current is None or "\n" in name or "\r" in name:
        pytest.skip("a `use` path is one line of the model file")
    model = LIF.replace(
        "current I_leak = g_L * (V - E_L)       outward",
        f'use "currents/{name}" as I_leak (g = 50 nS/cm^2, E = -65 mV)',
    )
    path = _write(tmp_path, "cell.model", model.replace("parameter C       = 200 pF", "parameter C = 1 uF/cm^2"))
    try:
        m = modelgen.load(path)
    except modelgen.ModelError:
        return
    _assert_inert(m.code())


def test_network_file_name(tmp_path):
    (tmp_path / "lif.model").write_text(
        LIF.replace('"Leaky integrate-and-fire neuron with an exponential conductance synapse"', f'"{PAYLOAD}"'),
        encoding="utf-8",
    )
    net = (ROOT / "models" / "two_neurons.network").read_text(encoding="utf-8")
    name = f"{CODING_NAME}.network"
    (tmp_path / name).write_text(net.replace('"neuron A drives', f'"{PAYLOAD} drives'), encoding="utf-8")
    done = _run_cli(["run", name, "--duration", "5ms", "--out-dir", "gen"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "PWNED").exists()
    modules = list((tmp_path / "gen").glob("*.py"))
    assert modules
    for module in modules:
        _assert_inert(module.read_text(encoding="utf-8"))


def test_comment_text_keeps_plain_text_and_shows_the_rest():
    assert comment_text("I_Na = g*m**3*h*(V - E)  [hh.model:14]") == "I_Na = g*m**3*h*(V - E)  [hh.model:14]"
    assert comment_text("Ωµ é") == "Ωµ é"  # non-ASCII letters are fine in a UTF-8 module
    assert comment_text("a\nb\\c\u2028d\te") == "a<U+000A>b<U+005C>c<U+2028>d e"


# ------------------------------------------------------------------ edited generated modules
def test_appended_code_never_runs_and_the_module_is_rebuilt(lif_path, tmp_path, monkeypatch):
    m = modelgen.load(lif_path)
    path = m.build(tmp_path)
    marker = tmp_path / "PWNED"
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"\nimport pathlib; pathlib.Path({str(marker)!r}).mkdir()\n")
    with pytest.raises(ModifiedModuleError, match="edited or replaced"):
        load_generated(path, m.build_hash())
    assert not marker.exists()
    with pytest.raises(ModifiedModuleError):
        m.load_module(tmp_path, rebuild=False)
    with pytest.warns(UserWarning, match="was not run, and was rebuilt"):
        module = m.load_module(tmp_path)
    assert not marker.exists()
    assert module.BUILD_HASH == m.build_hash()
    assert "PWNED" not in path.read_text(encoding="utf-8")


def test_a_replaced_module_with_a_copied_header_never_runs(lif_path, tmp_path):
    """Keeping the header (and its hashes) but changing the body is caught by the text hash."""
    m = modelgen.load(lif_path)
    path = m.build(tmp_path)
    text = path.read_text(encoding="utf-8")
    marker = tmp_path / "PWNED"
    head, _, _ = text.partition('"""')
    path.write_text(head + f"import pathlib\npathlib.Path({str(marker)!r}).mkdir()\n", encoding="utf-8")
    with pytest.raises(ModifiedModuleError):
        load_generated(path, m.build_hash())
    assert not marker.exists()
    with pytest.warns(UserWarning, match="was not run, and was rebuilt"):
        r = m.run(duration="5 ms", out_dir=tmp_path)
    assert not marker.exists()
    assert r.n_steps == 500


def test_build_rewrites_an_edited_module(lif_path, tmp_path):
    m = modelgen.load(lif_path)
    path = m.build(tmp_path)
    good = path.read_text(encoding="utf-8")
    path.write_text(good.replace("HAS_SPIKES = True", "HAS_SPIKES = False"), encoding="utf-8")
    assert m.build(tmp_path) == path
    assert path.read_text(encoding="utf-8") == good


def test_the_text_hash_covers_every_byte_but_its_own_value(lif_path):
    code = modelgen.load(lif_path).code()
    assert header_field(code, "text sha256") == text_hash(code)
    assert text_hash(code.replace("HAS_SPIKES = True", "HAS_SPIKES = True ")) != text_hash(code)
    other = code.replace(header_field(code, "text sha256"), "f" * 64)
    assert text_hash(other) == text_hash(code)  # the recorded value itself is not hashed


def test_a_module_of_an_older_modelgen_is_rebuilt_quietly(lif_path, tmp_path):
    """Modules written before the text hash existed are stale, not 'edited': rebuilt without a warning."""
    m = modelgen.load(lif_path)
    path = m.build(tmp_path)
    text = path.read_text(encoding="utf-8")
    old = "\n".join(ln for ln in text.split("\n") if not ln.startswith("# text sha256:"))
    marker = tmp_path / "PWNED"
    path.write_text(old + f"\nimport pathlib; pathlib.Path({str(marker)!r}).mkdir()\n", encoding="utf-8")
    with pytest.raises(StaleModuleError, match="older modelgen"):
        load_generated(path, m.build_hash())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = m.load_module(tmp_path)
    assert not marker.exists() and header_field(path.read_text(encoding="utf-8"), "text sha256") is not None
    assert module.BUILD_HASH == m.build_hash()

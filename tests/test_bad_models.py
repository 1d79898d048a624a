"""Bad input is rejected with a precise diagnostic, never with a traceback.

``tests/bad_models/*.model`` is a catalogue of small broken models. The first line of each
announces what the checker must say, ``# expect: E101 11:16`` (code, line, column of the
caret); an optional second line ``# hint: …`` gives text the diagnostic's hint must contain.
Files that cannot be committed as text (empty, binary, not UTF-8, enormous) are written by
the tests below. ``tests/good_models`` holds files that must load despite odd encodings.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import modelgen
from modelgen import language
from modelgen.cli import main
from modelgen.diagnostics import CODES, ModelError

HERE = Path(__file__).resolve().parent
BAD = sorted((HERE / "bad_models").glob("*.model"))
GOOD = sorted((HERE / "good_models").glob("*.model"))
MODELS = HERE.parent / "models"
_EXPECT = re.compile(r"#\s*expect:\s*([EW]\d{3})\s+(\d+):(\d+)\s*$")

# codes that a model file cannot produce: E501 is about command-line values
NOT_FROM_MODEL_FILES = {"E501", "E306", "E601", "E602"}  # E306, E6xx: .mod imports (tests/test_import_nmodl.py)
# codes whose cases are generated below rather than committed
GENERATED = {"E004"}


def expectation(path: Path) -> tuple[str, int, int, str | None]:
    lines = path.read_text(encoding="utf-8").splitlines()
    m = _EXPECT.match(lines[0])
    assert m, f"{path.name}: first line must be `# expect: CODE line:col`"
    hint = lines[1].partition(":")[2].strip() if lines[1].startswith("# hint:") else None
    return m.group(1), int(m.group(2)), int(m.group(3)), hint


def diagnostics_of(path) -> tuple[list, bool]:
    """Return (diagnostics, whether loading raised): errors raise, warnings ride on the model."""
    try:
        model = modelgen.load(path)
    except ModelError as e:
        return e.diagnostics, True
    return list(model.warnings), False


def shown(text: str) -> str:
    """The source line as Diagnostic.format() shows it: one character per column, nothing unprintable."""
    return "".join(c if c.isprintable() else (" " if c == "\t" else "\ufffd") for c in text)


def assert_reported(diags, file: str, code: str, line: int, col: int, source_line: str | None = None):
    """Assert that ``code`` is reported at line:col, and that its text shows the place with a caret."""
    where = [d for d in diags if d.code == code and d.span and (d.span.line, d.span.col) == (line, col)]
    got = ", ".join(f"{d.code}@{d.span.line}:{d.span.col}" if d.span else d.code for d in diags)
    assert where, f"expected {code} at {line}:{col}; got {got}"
    d = where[0]
    text = d.format()
    assert text.startswith(f"{file}:{line}:{col}: {d.severity}[{code}]: "), text
    if source_line is not None:
        out = text.splitlines()
        gutter = f"{line:>5} | "
        assert out[1] == gutter + shown(source_line), text
        caret = out[2][len(gutter) :]
        assert out[2][: len(gutter)] == " " * (len(gutter) - 2) + "| "
        assert caret.index("^") == col - 1, text
    return d


# ----------------------------------------------------------------------- the catalogue
def test_catalogue_is_large_and_covers_every_code():
    assert len(BAD) >= 30
    codes = {expectation(p)[0] for p in BAD}
    unknown = codes - set(CODES)
    assert not unknown, f"catalogue expects codes missing from diagnostics.CODES: {unknown}"
    missing = set(CODES) - codes - GENERATED - NOT_FROM_MODEL_FILES
    assert not missing, f"no bad model produces {sorted(missing)}: add a case to tests/bad_models"


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_model(path: Path):
    code, line, col, hint = expectation(path)
    diags, raised = diagnostics_of(path)
    assert raised == (CODES[code][0] == "error"), "errors must raise ModelError; warnings must not"
    source_line = path.read_text(encoding="utf-8").splitlines()[line - 1]
    d = assert_reported(diags, str(path), code, line, col, source_line)
    if hint:
        assert hint in d.hint, d.format()
        assert f"hint: {d.hint}" in d.format()


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_model_text_gives_the_same_diagnostics(path: Path):
    """load_text() sees the same problems as load(), with the name it is given."""
    code, line, col, _ = expectation(path)
    try:
        model = modelgen.load_text(path.read_text(encoding="utf-8"), "inline.model")
        diags = list(model.warnings)
    except ModelError as e:
        diags = e.diagnostics
    assert_reported(diags, "inline.model", code, line, col)


def test_all_errors_of_a_file_are_reported_in_one_run(tmp_path):
    path = tmp_path / "three.model"
    path.write_text(
        "model Three\n"
        "parameter C_m = 1 uF/cm^2\n"
        "parameter g_Na = 120 mS/cm^2\n"
        "state V = -65 mV\n"
        "charge Q = C_m * V\n"
        "current I_Na = g_na * (V - 50 mV)   outward\n"  # unknown name
        "x = exp(V)\n"  # dimensioned argument
        "y = V + 1 ms\n"  # voltage plus time
    )
    with pytest.raises(ModelError) as info:
        modelgen.load(path)
    errors = info.value.errors
    assert [(d.code, d.span.line, d.span.col) for d in errors] == [("E101", 6, 16), ("E302", 7, 9), ("E301", 8, 7)]
    assert "did you mean `g_Na`?" in errors[0].hint


def test_an_equation_for_an_undeclared_name_reports_that_name_once():
    text = "model M\nparameter C_m = 1 uF/cm^2\nstate V = -65 mV\ncharge Q = C_m * V\ndz/dt = -z/ms + q\n"
    with pytest.raises(ModelError) as info:
        modelgen.load_text(text, "m.model")
    # z is said to be undeclared where its equation begins; its expression's other errors still count
    assert [(d.code, d.span.line, d.span.col, d.message) for d in info.value.errors] == [
        ("E202", 5, 2, "dz/dt is given but `z` is not declared"),
        ("E101", 5, 17, "unknown name `q`"),
    ]


def test_all_syntax_errors_of_a_file_are_reported_in_one_run():
    text = "model M\nx = a.b\ny = (1\nz = 1 mv\nfrobnicate 3\n"
    with pytest.raises(ModelError) as info:
        modelgen.load_text(text)
    assert [(d.code, d.span.line) for d in info.value.errors] == [("E001", 2), ("E001", 3), ("E106", 4), ("E002", 5)]


# ----------------------------------------------------------------------- injection
INJECTIONS = [
    'x = __import__("os").system("touch {marker}")',
    "x = __import__('os').system('touch {marker}')",
    'parameter p = __import__("os").system("touch {marker}")',
    '__import__("os").system("touch {marker}")',
    'x = eval("__import__(\\"os\\").system(\\"touch {marker}\\")")',
    'x = exec("open(\\"{marker}\\", \\"w\\")")',
    'x = open("{marker}", "w")',
    "import os; os.system('touch {marker}')",
    'model M "x"; __import__("os").system("touch {marker}")',
    'x = 1  # "; __import__("os").system("touch {marker}")',
    "x = (lambda: __import__('os').system('touch {marker}'))()",
    "x = V.__class__.__mro__[1].__subclasses__()",
    "x = getattr(V, '__class__')",
]


@pytest.mark.parametrize("line", INJECTIONS)
def test_python_injection_is_rejected_and_never_run(tmp_path, line):
    marker = tmp_path / "pwned"
    text = "model Leak\nparameter C_m = 1 uF/cm^2\nstate V = -65 mV\ncharge Q = C_m * V\ncurrent I = input  inward\n"
    path = tmp_path / "evil.model"
    path.write_text(text + line.format(marker=marker) + "\n")
    if "#" in line:  # the attempt hides in a comment: harmless text, the model loads
        modelgen.load(path)
    else:
        with pytest.raises(ModelError):
            modelgen.load(path)
        result = CliRunner().invoke(main, ["check", str(path)])
        assert result.exit_code == 1
        assert "Traceback" not in result.output
    assert not marker.exists()


def test_injection_catalogue_file_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = HERE / "bad_models" / "e001_python_injection.model"
    text = path.read_text(encoding="utf-8").replace("/tmp/pwned", str(tmp_path / "pwned"))
    (tmp_path / "evil.model").write_text(text)
    diags, raised = diagnostics_of(tmp_path / "evil.model")
    assert raised and diags[0].code == "E001"
    assert not (tmp_path / "pwned").exists()


# ----------------------------------------------------------------------- unreadable files
def _write(tmp_path: Path, data: bytes, name: str = "m.model") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(
    "data, line, col",
    [
        (b"", 1, 1),  # empty
        (b"  \n\n\t\n", 1, 1),  # only white space
        (bytes(range(256)) * 4, 1, 1),  # binary: NUL first
        (b"model M\nparameter g = 1 \xb5S\n", 2, 17),  # Latin-1 micro sign: not UTF-8
        (b"# caf\xe9\nmodel M\n", 1, 6),  # not UTF-8, even in a comment
        (b"model M\nstate V = 0 mV\x00\n", 2, 15),  # a NUL in the text
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 3, 1),  # an image
        (b"model M\nx = V\x1b[31m red\n", 2, 6),  # terminal escape: never echoed raw
    ],
    ids=["empty", "blank", "binary", "latin1", "latin1-comment", "nul", "png", "escape"],
)
def test_unreadable_file(tmp_path, data, line, col):
    path = _write(tmp_path, data)
    diags, raised = diagnostics_of(path)
    assert raised
    d = assert_reported(diags, str(path), "E004", line, col)
    assert "\x1b" not in d.format() and "\x00" not in d.format()


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_file_is_named_as_such(tmp_path, encoding):
    """A model saved as UTF-16 (with a byte-order mark or without) is not called binary."""
    path = _write(tmp_path, "model M\nstate V = 0 mV\n".encode(encoding))
    diags, raised = diagnostics_of(path)
    assert raised
    d = assert_reported(diags, str(path), "E004", 1, 1)
    assert d.message == "file looks like UTF-16 text (a byte-order mark or a NUL byte after every character)"
    assert d.hint.startswith("save the file as UTF-8")
    assert "binary" not in d.format()


def test_file_larger_than_the_limit(tmp_path):
    limit = language.LIMITS["file_bytes"]
    path = _write(tmp_path, b"model Big\n" + b"# padding padding padding padding\n" * (limit // 30))
    assert path.stat().st_size > limit
    diags, _ = diagnostics_of(path)
    assert_reported(diags, str(path), "E004", 1, 1)
    with pytest.raises(ModelError) as info:
        modelgen.load_text(path.read_text())
    assert info.value.errors[0].code == "E004"


def test_too_many_statements(tmp_path):
    n = language.LIMITS["statements"] + 1
    path = _write(tmp_path, ("model Many\n" + "".join(f"x{i} = {i}\n" for i in range(n))).encode())
    diags, raised = diagnostics_of(path)
    assert raised and diags[0].code == "E004" and "statements" in diags[0].message


def test_line_longer_than_the_limit(tmp_path):
    long = "x = " + "1 + " * language.LIMITS["line_chars"] + "1"
    path = _write(tmp_path, f"model Long\n{long}\n".encode())
    diags, _ = diagnostics_of(path)
    assert_reported(diags, str(path), "E004", 2, 1)


def test_missing_file_and_directory(tmp_path):
    diags, raised = diagnostics_of(tmp_path / "nope.model")
    assert raised and diags[0].code == "E004" and "no such file" in diags[0].message
    diags, raised = diagnostics_of(tmp_path)
    assert raised and diags[0].code == "E004" and "directory" in diags[0].message


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_endless_device_is_not_read():
    diags, raised = diagnostics_of("/dev/zero")  # stat() says 0 bytes; reading never ends
    assert raised and diags[0].code == "E004" and "not a regular file" in diags[0].message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
@pytest.mark.parametrize("via_link", [False, True])
def test_a_named_pipe_is_refused_before_it_is_opened(tmp_path, via_link):
    """Opening a FIFO with no writer blocks forever; it must be refused from its stat alone."""
    fifo = tmp_path / "pipe.model"
    os.mkfifo(fifo)
    path = fifo
    if via_link:
        path = tmp_path / "link.model"
        path.symlink_to(fifo)
    done = subprocess.run(
        [sys.executable, "-m", "modelgen", "check", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "named pipe (FIFO)" in done.stderr and "Traceback" not in done.stderr
    net = tmp_path / "net.network"
    net.write_text('network N\npopulation A = "pipe.model" (n = 1)\n')
    done = subprocess.run(
        [sys.executable, "-m", "modelgen", "check", str(net)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and "'pipe.model' not found" in done.stderr  # only regular files are found


def test_odd_paths_never_reach_the_terminal_raw(tmp_path):
    for name in ("a\x00b.model", str(tmp_path / "x\x1b[31m.model")):
        diags, raised = diagnostics_of(name)
        assert raised and diags[0].code == "E004"
        text = diags[0].format()
        assert "\x00" not in text and "\x1b" not in text and "\\u00" in text


def test_unprintable_characters_in_messages_are_escaped():
    with pytest.raises(ModelError) as info:
        modelgen.load_text('model M\n"\u202eevil" = 1\n')  # a bidi override inside a string
    text = info.value.diagnostics[0].format()
    assert "\u202e" not in text and "\\u202e" in text


# ----------------------------------------------------------------------- limits of expressions
def test_nesting_beyond_the_depth_limit(tmp_path):
    depth = language.LIMITS["expression_depth"]
    ok = "model M\nstate V = 1 mV\ndV/dt = -V/ms\nx = " + "(" * (depth - 1) + "1" + ")" * (depth - 1) + "\n"
    modelgen.load_text(ok)
    for n in (depth + 1, 3 * depth, 450):
        text = "model M\nx = " + "(" * n + "1" + ")" * n + "\n"
        path = _write(tmp_path, text.encode())
        diags, raised = diagnostics_of(path)
        assert raised
        assert_reported(diags, str(path), "E005", 2, 5 + depth + 1, text.splitlines()[1])
    # as deep as a line may be long: too many tokens, reported before parsing
    with pytest.raises(ModelError) as info:
        modelgen.load_text("model M\nx = " + "(" * 1990 + "1" + ")" * 1990 + "\n")
    assert info.value.errors[0].code == "E005"


@pytest.mark.parametrize(
    "expr",
    [
        "-" * 200 + "1",
        "2^" * 200 + "1",
        "exp(" * 200 + "1" + ")" * 200,
        "+".join(["V"] * 400),
        "/".join(["V"] * 400),
    ],
    ids=["unary", "power", "calls", "sum", "quotient"],
)
def test_deep_expressions_are_reported_not_crashed(expr):
    with pytest.raises(ModelError) as info:
        modelgen.load_text(f"model M\nstate V = 1 mV\ndV/dt = V/ms\nx = {expr}\n")
    assert info.value.errors[0].code == "E005"


def test_too_many_tokens_on_a_line():
    n = language.LIMITS["tokens_per_line"]
    with pytest.raises(ModelError) as info:
        modelgen.load_text("model M\nx = " + "1 " * n + "\n")
    assert info.value.errors[0].code == "E005"


def test_definitions_that_explode_when_substituted():
    lines = ["model Laugh", "state V = 1 mV", "dV/dt = -V/ms", "a0 = V/mV"]
    lines += [f"a{i} = a{i - 1} * (a{i - 1} + 1)" for i in range(1, 80)]
    with pytest.raises(ModelError) as info:
        modelgen.load_text("\n".join(lines) + "\nstate x = a79\ndx/dt = -x/ms\n")
    assert info.value.errors[0].code == "E005"


# ----------------------------------------------------------------------- files that must work
@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_good_model_loads(path: Path):
    model = modelgen.load(path)
    assert model.states


def _same_model(a, b):
    assert (a.name, a.states, a.parameters, a.currents) == (b.name, b.states, b.parameters, b.currents)
    assert [(o.state, o.rhs) for o in a.model.odes] == [(o.state, o.rhs) for o in b.model.odes]
    assert a.derivation.rhs == b.derivation.rhs
    ea, eb = a.model.event, b.model.event
    assert (ea.condition, ea.strict, ea.refractory) == (eb.condition, eb.strict, eb.refractory)
    assert [(r.state, r.op, r.expr) for r in ea.resets] == [(r.state, r.op, r.expr) for r in eb.resets]


@pytest.mark.parametrize("model", ["hh", "lif"])
@pytest.mark.parametrize(
    "transform",
    [
        lambda t: t.replace("\n", "\r\n"),  # Windows
        lambda t: t.replace("\n", "\r"),  # classic Mac
        lambda t: "\ufeff" + t,  # byte-order mark
        lambda t: "\ufeff" + t.replace("\n", "\r\n"),
        lambda t: t.replace("   ", "\t"),  # tabs between tokens
        lambda t: t.replace("\n", " \t \n"),  # trailing white space
    ],
    ids=["crlf", "cr", "bom", "bom-crlf", "tabs", "trailing"],
)
def test_encodings_and_line_endings_load_the_same_model(tmp_path, model, transform):
    original = (MODELS / f"{model}.model").read_text(encoding="utf-8")
    path = _write(tmp_path, transform(original).encode("utf-8"), f"{model}.model")
    _same_model(modelgen.load(path), modelgen.load(MODELS / f"{model}.model"))


def test_errors_in_a_crlf_file_have_the_right_column(tmp_path):
    path = _write(tmp_path, b"\xef\xbb\xbfmodel M\r\nstate V = 1 mV\r\ndV/dt = V/ms\r\nx = V + 1 ms\r\n")
    diags, _ = diagnostics_of(path)
    d = assert_reported(diags, str(path), "E301", 4, 7, "x = V + 1 ms")
    assert "\r" not in d.format()


# ----------------------------------------------------------------------- the command line
def test_cli_check_reports_error_and_exit_code():
    path = HERE / "bad_models" / "e101_unknown_name_suggestion.model"
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:11:16: error[E101]: unknown name `g_na`" in result.output
    assert "did you mean `g_Na`?" in result.output
    assert "   11 | current I_Na = g_na * (V - E_L)   outward" in result.output
    assert "Traceback" not in result.output


def test_cli_check_json(tmp_path):
    bad = HERE / "bad_models" / "e302_exp_of_voltage.model"
    result = CliRunner().invoke(main, ["check", "--format", "json", str(bad), str(MODELS / "hh.model")])
    assert result.exit_code == 1
    items = json.loads(result.stdout)
    assert any(
        d["file"] == str(bad) and (d["line"], d["col"]) == (11, 9) and d["severity"] == "error" and d["code"] == "E302"
        for d in items
    ), items
    for d in items:
        assert {"file", "line", "col", "severity", "code", "message"} <= set(d)
        assert isinstance(d["message"], str) and d["message"]


def test_cli_check_binary_file(tmp_path):
    path = _write(tmp_path, bytes(range(256)) * 8)
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    assert "E004" in result.output and "Traceback" not in result.output

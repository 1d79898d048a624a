"""modelgen/importers/nmodl.py: .mod channels imported as current files, checked, and run against NEURON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
pytest.importorskip("neuron.nmodl", reason="importing .mod files needs NEURON's NMODL parser (the nmodl extra)")

from conftest import MODELS, step_ufunc_calls  # noqa: E402

import modelgen  # noqa: E402
from modelgen.cli import main  # noqa: E402
from modelgen.diagnostics import ModelError  # noqa: E402
from modelgen.importers.nmodl import import_mod  # noqa: E402
from modelgen.importers.nmodl_units import UNIT_ALIASES, translate_unit  # noqa: E402

CORPUS = Path(__file__).parent / "nmodl"
NEURON_HH = Path(__import__("neuron").__file__).parent / ".data" / "share" / "modfile" / "hh.mod"


def _mod(tmp_path: Path, body: str, name: str = "x.mod") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


CHANNEL = """NEURON {{ SUFFIX kx USEION k READ ek WRITE ik {extra} }}
UNITS {{ (mA) = (milliamp) (mV) = (millivolt) }}
PARAMETER {{ gbar = 0.01 ({gunit}) }}
ASSIGNED {{ v (mV) ek (mV) ik (mA/cm2) ninf ntau (ms) }}
STATE {{ n }}
INITIAL {{ n = 0 }}
BREAKPOINT {{
  SOLVE states METHOD cnexp
  ik = gbar*n*(v - ek)
}}
DERIVATIVE states {{ n' = (1/(1 + exp(-(v + 30)/10)) - n)/5 }}
{tail}
"""


def test_units_of_nmodl_map_to_the_language():
    assert translate_unit("mA/cm2", UNIT_ALIASES) == "mA/cm^2"
    assert translate_unit("mho/cm2", UNIT_ALIASES) == "S/cm^2"
    assert translate_unit("/ms", UNIT_ALIASES) == "1/ms"
    assert translate_unit("pS/um2", UNIT_ALIASES) == "pS/um^2"
    assert translate_unit("1", UNIT_ALIASES) == "1"
    assert translate_unit("millivolt", UNIT_ALIASES) == "mV"


def test_neurons_hh_imports_checks_and_keeps_its_numbers():
    channel = import_mod(NEURON_HH)
    text = channel.current_text
    assert channel.name == "hh"
    assert "parameter gnabar = 0.12 S/cm^2   # hh.mod:" in text
    assert "parameter ena = 50 mV   # read from ion na (NEURON's default)" in text
    assert "parameter ek = -77 mV" in text
    assert "current ina = gna*(V - ena)   outward" in text  # declared units agree: written with units
    assert "q10 = 3^((celsius - 6.3)/10)" in text and "celsius = temperature / K - 273.15" in text
    # vtrap's |x/y| < 1e-6 branch is dropped: modelgen computes the 0/0 through exprel
    assert "where(" not in text and "alpha = 0.1*(-(v + 40)/(exp(-(v + 40)/10) - 1))" in text
    assert "TABLE dropped" in text


def test_a_file_that_writes_cai_and_reads_eca_gets_nernst():
    text = import_mod(CORPUS / "can.mod").current_text
    assert "parameter cao = 2 mM   # read from ion ca (NEURON's default)" in text
    assert "eca = (1000*8.314462618153241*(celsius + 273.15)/(2*96485.33212331001)*log((cao/mM)/(cai/mM))) * mV" in text
    # the pool reads the file's own current, written later in BREAKPOINT
    assert "dcai/dt = (-10000*ica/(mA/cm^2)/(2*96485.33212331001*depth/um)" in text


def test_imported_hh_runs_like_the_library_hh(tmp_path):
    channel = import_mod(NEURON_HH)
    (tmp_path / "hh.current").write_text(channel.current_text)
    (tmp_path / "cell.model").write_text(channel.model_text("hh"))
    ours = modelgen.load(tmp_path / "cell.model").run(duration="50 ms", dt="0.01 ms", inputs={"I_ext": 10.0})
    # NEURON's hh has el = -54.3 mV where hh.model has -54.387: same first spike within 0.05 ms
    ref = modelgen.load(Path(__file__).parent.parent / "models" / "hh.model").run(
        duration="50 ms", dt="0.01 ms", inputs={"I_ext": 10.0}
    )
    assert abs(ours.spike_times(0)[0] - ref.spike_times(0)[0]) < 0.05


def test_imported_hh_steps_with_the_ufunc_calls_of_the_hand_written_hh(tmp_path):
    """The imported gates (m' = (minf - m)/mtau, mtau = 1/(q10*sum), v = V/mV) cost what hh_composed's
    alpha/beta gates cost: the same numpy calls per step, and the same kind of compiled loop."""
    channel = import_mod(NEURON_HH)
    (tmp_path / "hh.current").write_text(channel.current_text)
    (tmp_path / "cell.model").write_text(channel.model_text("hh"))
    imported = modelgen.load(tmp_path / "cell.model")
    composed = modelgen.load(MODELS / "hh_composed.model")
    assert step_ufunc_calls(imported.code()) == step_ufunc_calls(composed.code())


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.mod")), ids=lambda p: p.stem)
def test_every_corpus_file_imports_and_checks_clean(path):
    channel = import_mod(path)
    model = modelgen.load_text(channel.current_text, f"{path.name} (imported)")
    assert model.currents


@pytest.mark.parametrize(
    "extra, tail, where, words",
    [
        ("", "KINETIC kin { ~ n <-> c (1, 2) }", "KINETIC", "KINETIC schemes"),
        ("", "NET_RECEIVE (w) { }", "NET_RECEIVE", "point process"),
        ("POINTER p", "", "POINTER", "by address"),
        ("", "VERBATIM\nint x;\nENDVERBATIM", "VERBATIM", "C code"),
        ("", "FUNCTION_TABLE tab(x)", "FUNCTION_TABLE", "tables filled at run time"),
    ],
)
def test_constructs_without_equations_are_refused_at_their_position(tmp_path, extra, tail, where, words):
    path = _mod(tmp_path, CHANNEL.format(extra=extra, gunit="S/cm2", tail=tail))
    with pytest.raises(ModelError) as e:
        import_mod(path)
    d = e.value.diagnostics[0]
    assert d.code == "E601" and words in d.message
    line = path.read_text().splitlines()[d.span.line - 1]
    assert line[d.span.col - 1 :].startswith(where)


def test_point_process_is_refused(tmp_path):
    path = _mod(tmp_path, "NEURON { POINT_PROCESS syn NONSPECIFIC_CURRENT i }\nBREAKPOINT { i = 0 }\n")
    with pytest.raises(ModelError) as e:
        import_mod(path)
    d = e.value.diagnostics[0]
    assert (d.code, d.span.line, d.span.col) == ("E601", 1, 10) and "point process" in d.message


def test_a_conductance_declared_in_the_wrong_unit_points_into_the_mod_file(tmp_path):
    path = _mod(tmp_path, CHANNEL.format(extra="", gunit="mV", tail=""))
    with pytest.raises(ModelError) as e:
        import_mod(path)
    d = e.value.diagnostics[0]
    assert d.code == "E301" and d.span.file == str(path) and d.span.line == 9
    assert "`ik` is declared in (mA/cm^2), current/area, but its equation gives " in d.message


def test_a_factor_neuron_would_not_apply_is_an_error(tmp_path):
    path = _mod(tmp_path, CHANNEL.format(extra="", gunit="pS/um2", tail=""))
    with pytest.raises(ModelError) as e:
        import_mod(path)
    d = e.value.diagnostics[0]
    assert d.code == "E306" and d.span.line == 9 and "1/10000 (mA/cm^2)" in d.message
    assert "multiply by (0.0001)" in d.hint


def test_a_syntax_error_has_the_parsers_position(tmp_path):
    path = _mod(tmp_path, "NEURON { SUFFIX x }\nPARAMETER { g = }\n")
    with pytest.raises(ModelError) as e:
        import_mod(path)
    d = e.value.diagnostics[0]
    assert (d.code, d.span.line, d.span.col) == ("E602", 2, 17)


def test_cli_import_writes_a_current_and_a_model(tmp_path):
    out = CliRunner().invoke(main, ["import", str(CORPUS / "ka.mod"), "-o", str(tmp_path), "--model"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "ka.current").exists() and (tmp_path / "ka_cell.model").exists()
    assert modelgen.load(tmp_path / "ka_cell.model").states == ("V", "I_ka_a", "I_ka_b")
    bad = CliRunner().invoke(main, ["import", str(tmp_path / "none.mod")])
    assert bad.exit_code == 1 and "no such file" in bad.output and "Traceback" not in bad.output


# ---------------------------------------------------------------- against NEURON itself

CASES = {
    # name: (uses: (file, alias, settings, NEURON suffix, NEURON parameters), I in uA/cm2, temperature)
    "hh": ([(NEURON_HH, "", {})], 10.0, 6.3),
    "mainen": (
        [(CORPUS / "na_ms.mod", "", {}), (CORPUS / "kv_ms.mod", "", {}), (CORPUS / "leak.mod", "", {"g": 3e-5})],
        1.0,
        23.0,
    ),
    "hh+ka": ([(NEURON_HH, "", {}), (CORPUS / "ka.mod", "", {"gbar": 0.01})], 15.0, 6.3),
    "hh+km": ([(NEURON_HH, "", {}), (CORPUS / "km_ms.mod", "", {"gbar": 30})], 10.0, 6.3),
    "hh+ih": ([(NEURON_HH, "", {}), (CORPUS / "ih.mod", "", {"gIhbar": 0.002})], 10.0, 6.3),
    "hh+nap": ([(NEURON_HH, "", {}), (CORPUS / "nap.mod", "", {"gNap_Et2bar": 0.002})], 8.0, 6.3),
    "hh+ca": (
        [
            (NEURON_HH, "", {}),
            (CORPUS / "cal.mod", "cai = I_cad_cai", {"gcalbar": 0.003}),
            (CORPUS / "cad.mod", "ica = I_cal", {}),
            (CORPUS / "kca.mod", "cai = I_cad_cai", {"gkbar": 0.01}),
        ],
        10.0,
        6.3,
    ),
    "hh+can": ([(NEURON_HH, "", {}), (CORPUS / "can.mod", "", {"gbar": 0.002})], 10.0, 6.3),
}
# GHK makes dV/dt and dcai/dt nonlinear, so `auto` picks rk4 for all states; cal's m gate has time constants
# down to 2 us (NEURON's cnexp integrates it exactly): the gates take exponential Euler, as there
METHODS = {"hh+ca": ["method rk4", "method I_hh_m, I_hh_h, I_hh_n, I_cal_m, I_kca_m: exponential_euler"]}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    if shutil.which("nrnivmodl") is None or shutil.which("gcc") is None:
        pytest.skip("nrnivmodl or a C compiler is missing")
    folder = tmp_path_factory.mktemp("mods")
    for f in CORPUS.glob("*.mod"):
        shutil.copy(f, folder)
    run = subprocess.run(["nrnivmodl", "."], cwd=folder, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return next(folder.glob("*/libnrnmech.so"))


def _neuron_v(dll, case, tmp_path, tstop):
    uses, current, celsius = CASES[case]
    mechanisms = {}
    for path, _, params in uses:
        suffix = import_mod(path).name
        mechanisms[suffix] = params
    spec = {"mechanisms": mechanisms, "dll": str(dll), "I": current, "tstop": tstop, "celsius": celsius}
    spec["globals"] = {"cai0_ca_ion": 1e-4}  # the pool's rest, so that kca starts where modelgen's does
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    out = tmp_path / "v.npy"
    script = CORPUS / "neuron_reference.py"
    subprocess.run([sys.executable, str(script), str(tmp_path / "spec.json"), str(out)], check=True, timeout=600)
    return np.load(out)


def _modelgen_v(case, tmp_path, tstop):
    uses, current, celsius = CASES[case]
    lines = [
        "model cell",
        "parameter C_m = 1 uF/cm^2",
        f"parameter temperature = {celsius} degC",
        "state V = -65 mV",
        "charge Q = C_m * V",
        "current I_ext = input   inward",
        "threshold V > 0 mV",
        *METHODS.get(case, []),
    ]
    for path, binding, params in uses:
        channel = import_mod(path)
        (tmp_path / f"{channel.name}.current").write_text(channel.current_text)
        settings = [binding] if binding else []
        settings += [f"{k} = {v} {_unit_of(channel.current_text, k)}".rstrip() for k, v in params.items()]
        lines.append(f'use "{channel.name}" as I_{channel.name}' + (f" ({', '.join(settings)})" if settings else ""))
    (tmp_path / "cell.model").write_text("\n".join(lines) + "\n")
    r = modelgen.load(tmp_path / "cell.model").run(duration=f"{tstop} ms", dt="0.01 ms", inputs={"I_ext": current})
    return np.asarray(r["V"]).ravel()


def _unit_of(text: str, name: str) -> str:
    line = next(x for x in text.splitlines() if x.startswith(f"parameter {name} = "))
    return line.split("#")[0].split("=")[1].split(maxsplit=1)[1].strip() if " " in line.split("=")[1].strip() else ""


def _spikes(v: np.ndarray, dt: float = 0.01) -> np.ndarray:
    i = np.where((v[:-1] < 0) & (v[1:] >= 0))[0]
    return (i + v[i] / (v[i] - v[i + 1])) * dt


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_imported_channels_match_neuron(compiled, case, tmp_path):
    tstop = 100.0
    ref = _neuron_v(compiled, case, tmp_path, tstop)
    ours = _modelgen_v(case, tmp_path, tstop)
    n = min(len(ref), len(ours))
    ref_spikes, our_spikes = _spikes(ref[:n]), _spikes(ours[:n])
    assert len(ref_spikes) >= 1 and len(our_spikes) == len(ref_spikes)
    assert np.max(np.abs(our_spikes - ref_spikes)) < 0.05
    assert np.sqrt(np.mean((ours[:n] - ref[:n]) ** 2)) < 0.5


DEMOS = NEURON_HH.parent.parent / "nrn" / "demo" / "release"


@pytest.mark.skipif(not DEMOS.is_dir(), reason="this NEURON wheel ships no demo .mod files")
def test_neurons_demo_channels_import_or_are_refused_for_what_they_are():
    """The .mod files of NEURON's release demo: numbers with units (`10 (degC)`), file-level LOCALs,
    a current read after it is written (`ica = -ina/2`), LOCALs of a DERIVATIVE block, UNITS constants."""
    imported, refused = [], {}
    for path in sorted(DEMOS.glob("*.mod")):
        try:
            channel = import_mod(path)
        except ModelError as e:
            refused[path.stem] = {d.message.split(":")[0] for d in e.diagnostics}
            continue
        modelgen.load_text(channel.current_text, path.name)
        imported.append(path.stem)
    assert imported == ["cachan1", "camchan", "capump", "khhchan", "nacaex", "nachan"]
    assert refused == {
        "cabpump": {"KINETIC"},
        "capmpr": {"KINETIC"},
        "release": {"KINETIC"},
        "invlfire": {"NET_RECEIVE", "ARTIFICIAL_CELL"},
    }

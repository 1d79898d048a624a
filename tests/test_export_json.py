"""The JSON export (modelgen/exporters/json.py) and the `modelgen export` command."""

import json
from pathlib import Path

import pytest
import sympy
from click.testing import CliRunner
from conftest import CURRENT_FILES, MODEL_FILES, checked

import modelgen
from modelgen.cli import main
from modelgen.exporters import export_model
from modelgen.exporters.json import SCHEMA, SCHEMA_VERSION

ROOT = Path(__file__).resolve().parent.parent


def describe(path) -> dict:
    return json.loads(export_model(checked(path), "json"))


def rebuild(entry: dict) -> sympy.Expr:
    """An expression read back from its srepr, with nothing but sympy (and exprel, by name)."""
    from modelgen.model import exprel

    return eval(entry["srepr"], {**vars(sympy), "exprel": exprel})  # the test's own output, not user text


@pytest.mark.parametrize("path", MODEL_FILES + CURRENT_FILES, ids=lambda p: p.name)
def test_every_bundled_model_and_current_exports(path):
    d = describe(path)
    model = checked(path)
    assert (d["schema"], d["schema_version"]) == (SCHEMA, SCHEMA_VERSION)
    assert [s["name"] for s in d["states"]] == list(model.state_names)
    assert [p["name"] for p in d["parameters"]] == [p.name for p in model.parameters]
    assert {c["name"]: c["direction"] for c in d["currents"]} == {c.name: c.direction for c in model.currents}
    for s in d["states"]:
        assert rebuild(s["derivative"]).free_symbols  # parses back


def test_lif_description_evaluates_to_the_analytic_derivative():
    d = describe(ROOT / "models" / "lif.model")
    values = {p["name"]: p["value"] for p in d["parameters"]}
    assert values["C"] == pytest.approx(200e-6)  # 200 pF in uF
    assert d["parameters"][0]["written"] == {"value": 200.0, "unit": "pF"}
    assert d["parameters"][0]["unit"] == "uF"
    assert d["parameters"][0]["dimension"] == {"length": -2, "mass": -1, "time": 4, "current": 2}
    # dV/dt in terms of the currents, which are themselves described
    defs = {sympy.Symbol(c["name"], real=True): rebuild(c) for c in d["currents"] if not c["is_input"]}
    dv = rebuild(d["membrane"]["voltage_derivative"]).xreplace(defs)
    point = {**values, "V": -60.0, "g_syn": 0.0, "I_ext": 0.0}
    # C dV/dt = -g_L (V - E_L) = -10 nS * 5 mV = -50 pA  ->  dV/dt = -50 pA / 200 pF = -0.25 mV/ms
    got = float(dv.subs({sympy.Symbol(k, real=True): v for k, v in point.items()}))
    assert got == pytest.approx(-0.25, rel=1e-12)
    assert d["event"]["condition"]["text"] == "V > V_th"
    assert d["event"]["crossing"] is False
    assert d["event"]["resets"] == [
        {"state": "V", "op": "=", "value": {"text": "V_reset", "srepr": "Symbol('V_reset', real=True)"}}
    ]
    assert d["event"]["refractory"]["text"] == "t_ref"
    assert d["synapses"][0]["receptor"] == "exc" and d["synapses"][0]["target"] == "g_syn"
    assert d["integration"]["method"] == modelgen.load(ROOT / "models" / "lif.model").plan().method


def test_hh_rates_and_plan():
    d = describe(ROOT / "models" / "hh.model")
    beta_m = next(e for e in d["expressions"] if e["name"] == "beta_m")
    assert beta_m["unit"] == "1/ms"
    # beta_m(-65 mV) = 4 / ms
    assert float(rebuild(beta_m).subs(sympy.Symbol("V", real=True), -65)) == pytest.approx(4.0)
    assert d["event"]["crossing"] is True and d["event"]["resets"] == []
    assert d["integration"]["method"] == "exponential_euler"
    assert set(d["integration"]["reasons"]) == {"V", "m", "h", "n"}


def test_cli_writes_a_file_and_never_overwrites_without_force(tmp_path):
    out = tmp_path / "lif.json"
    runner = CliRunner()
    r = runner.invoke(main, ["export", str(ROOT / "models" / "lif.model"), "--to", "json", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["name"] == "LIF"
    out.write_text("keep me")
    r = runner.invoke(main, ["export", str(ROOT / "models" / "lif.model"), "--to", "json", "-o", str(out)])
    assert r.exit_code == 1
    assert r.stderr == f"error: {out} exists; choose another name or add --force to replace it\n"
    assert out.read_text() == "keep me"
    r = runner.invoke(main, ["export", str(ROOT / "models" / "lif.model"), "--to", "json", "-o", str(out), "--force"])
    assert r.exit_code == 0 and json.loads(out.read_text())["name"] == "LIF"


def test_cli_prints_to_stdout_and_rejects_unknown_formats():
    runner = CliRunner()
    r = runner.invoke(main, ["export", str(ROOT / "models" / "lif.model"), "--to", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["schema"] == SCHEMA
    r = runner.invoke(main, ["export", str(ROOT / "models" / "lif.model"), "--to", "sbml"])
    assert r.exit_code == 2 and "sbml" in r.stderr

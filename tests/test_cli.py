"""End-to-end tests of the `modelgen` command."""

import json

import numpy as np
from click.testing import CliRunner

from modelgen.cli import main

ROOT_MODELS = __import__("pathlib").Path(__file__).resolve().parent.parent / "models"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_run_hh_and_save(hh_path, tmp_path):
    out = tmp_path / "out.npz"
    r = invoke(
        "run",
        hh_path,
        "--duration",
        "100ms",
        "--dt",
        "0.01ms",
        "--n",
        "1",
        "--input",
        "I_ext=10uA/cm^2",
        "--save",
        out,
        "-o",
        tmp_path / "gen",
    )
    assert r.exit_code == 0, r.output
    assert (
        "HodgkinHuxley: simulated 100 ms in 10000 steps of 0.01 ms (exponential_euler), 1 neuron, 7 spikes" in r.output
    )
    assert "M neuron-steps/s" in r.output
    data = np.load(out)
    assert data["V"].shape == (1, 10001)
    assert len(data["spike_t"]) == 7


def test_run_reports_bad_input_unit(hh_path, tmp_path):
    r = invoke("run", hh_path, "--input", "I_ext=10mV", "-o", tmp_path)
    assert r.exit_code == 1
    assert "I_ext must be current/area" in r.output


def test_run_rejects_malformed_assignment(hh_path, tmp_path):
    r = invoke("run", hh_path, "--input", "I_ext", "-o", tmp_path)
    assert r.exit_code == 2
    assert "NAME=VALUE" in r.output


def test_run_refuses_the_same_name_given_twice(hh_path, tmp_path):
    for option, a, b in (
        ("--input", "I_ext=10uA/cm^2", "I_ext=0uA/cm^2"),
        ("--param", "g_K=30mS/cm^2", "g_K=36mS/cm^2"),
    ):
        r = invoke("run", hh_path, option, a, option, b, "--duration", "1ms", "-o", tmp_path)
        assert r.exit_code == 2, r.output
        name, first, second = a.split("=")[0], a.split("=")[1], b.split("=")[1]
        assert f"{name} is given twice ('{first}' and '{second}'); give it once" in r.output
    r = invoke("sweep", hh_path, "--input", "I_ext=0:1:1uA/cm^2", "--input", "I_ext=2uA/cm^2", "-o", tmp_path)
    assert r.exit_code == 2 and "I_ext is given twice" in r.output


def test_run_refuses_impossible_values_in_one_line(lif_path, tmp_path):
    r = invoke("run", lif_path, "--param", "C=0pF", "--duration", "1ms", "-o", tmp_path)
    assert r.exit_code == 1
    assert r.output.splitlines()[0] == (
        "error[E501]: C must be a finite number > 0 (the capacitance of the charge relation), but it is 0 pF"
    )
    r = invoke("sweep", lif_path, "--param", "tau_syn=-5:5:5ms", "--duration", "1ms", "-o", tmp_path)
    assert r.exit_code == 1 and "but tau_syn[0] is -5 ms" in r.output and "Traceback" not in r.output


def test_check_ok_and_plan(hh_path, lif_path):
    r = invoke("check", hh_path, lif_path)
    assert r.exit_code == 0, r.output
    assert "hh.model: ok" in r.output and "lif.model: ok" in r.output


def test_check_reports_errors_with_caret(tmp_path):
    bad = tmp_path / "bad.model"
    bad.write_text(
        "model Bad\nparameter g_Na = 1 mS/cm^2\nstate V = -65 mV\ncharge Q = 1 uF/cm^2 * V\ncurrent I = g_na * V  outward\n"
    )
    r = invoke("check", bad)
    assert r.exit_code == 1
    assert f"{bad}:5:13: error[E101]: unknown name `g_na`" in r.output
    assert "current I = g_na * V  outward" in r.output
    assert "^^^^" in r.output
    assert "did you mean `g_Na`?" in r.output


def test_check_json(tmp_path):
    bad = tmp_path / "bad.model"
    bad.write_text("model Bad\nstate x = 1\n")
    r = CliRunner().invoke(main, ["check", "--format", "json", str(bad)])
    assert r.exit_code == 1
    diags = json.loads(r.stdout)
    assert diags[0]["code"] == "E201" and diags[0]["line"] == 2 and diags[0]["severity"] == "error"


def test_build_prints_plan(hh_path, tmp_path):
    r = invoke("build", hh_path, "-o", tmp_path)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "hh.py").exists()
    assert "m: dm/dt is linear in m" in r.output


def test_latex_shows_derivation(hh_path):
    r = invoke("latex", hh_path)
    assert r.exit_code == 0, r.output
    assert r"Q &= C_{m} V" in r.output
    assert r"\frac{dQ}{dt} &= C_{m} \frac{dV}{dt}" in r.output
    assert r"C_{m} \, \frac{dV}{dt} &= -I_{Na} - I_{K} - I_{L} + I_{ext}" in r.output
    assert r"\frac{dm}{dt}" in r.output
    r = invoke("latex", "--no-derivation", hh_path)
    assert r"\frac{dQ}{dt}" not in r.output


def test_missing_file(tmp_path):
    r = invoke("check", tmp_path / "nope.model")
    assert r.exit_code == 1
    assert "no such file" in r.output


def test_path_option_finds_current_files(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELGEN_PATH", "")  # restored after the test: --path extends it
    lib = tmp_path / "lib"
    lib.mkdir()
    leak = (ROOT_MODELS.parent / "modelgen" / "library" / "currents" / "leak.current").read_text()
    (lib / "myleak.current").write_text(leak)
    model = tmp_path / "m.model"
    model.write_text('model P\nparameter C = 1 uF/cm^2\nstate V = -65 mV\ncharge Q = C * V\nuse "myleak" as I_L\n')
    assert invoke("check", model).exit_code == 1
    r = CliRunner().invoke(main, ["--path", str(lib), "check", str(model)])
    assert r.exit_code == 0, r.output


def test_examples_copies_the_bundled_models_and_refuses_to_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bundled = sorted(p.name for p in ROOT_MODELS.iterdir() if p.suffix in (".model", ".network"))
    r = invoke("examples")  # default: models/, where the README's commands find them
    assert r.exit_code == 0, r.output
    assert f"copied {len(bundled)} example files to models/" in r.output
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == bundled
    for name in bundled:
        assert (tmp_path / "models" / name).read_text() == (ROOT_MODELS / name).read_text()
    # a copied composed model finds its currents in the bundled library
    assert invoke("check", "models/hh_composed.model").exit_code == 0

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "hh.model").write_text("my own\n")
    r = invoke("examples", "mine")
    assert r.exit_code == 1
    assert r.output.strip() == (
        "error: mine/hh.model already exists; modelgen examples does not overwrite files: choose another folder"
    )
    r = invoke("examples")
    assert r.exit_code == 1
    assert f"error: models/adex.model already exists (and {len(bundled) - 1} more);" in r.output
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["hh.model"]  # nothing copied
    assert (tmp_path / "mine" / "hh.model").read_text() == "my own\n"


def test_version_is_the_package_version():
    import modelgen

    assert invoke("--version").output == f"modelgen, version {modelgen.__version__}\n"

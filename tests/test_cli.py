"""End-to-end tests of the `modelgen` command."""

import json
import re

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


# ------------------------------------------------------------------ what a run prints, and where
def test_run_prints_its_summary_on_stdout_and_notes_on_stderr(lif_path, tmp_path):
    out = tmp_path / "out.npz"
    r = invoke("run", lif_path, "--duration", "20ms", "--input", "I_ext=300pA", "--save", out, "-o", tmp_path / "g")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("LIF: simulated 20 ms in 2000 steps of 0.01 ms") and r.stdout.count("\n") == 1
    assert r.stderr == f"saved {out}\n"
    r = invoke("run", lif_path, "--duration", "20ms", "--save", out, "-q", "-o", tmp_path / "g")
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == ""


def test_run_records_spikes_only_with_no_recorded_neurons(lif_path, tmp_path):
    # an empty --record means the membrane potential; spikes only is --record-neurons 0
    out = tmp_path / "out.npz"
    r = invoke(
        "run", lif_path, "--input", "I_ext=2nA", "--duration", "20ms", "--record-neurons", "0", "--save", out, "-q"
    )
    assert r.exit_code == 0, r.output
    with np.load(out) as data:
        assert data["V"].shape == (0, 2001) and data["record_indices"].size == 0
        assert data["spike_t"].size == 6 and np.isclose(data["spike_t"][0], 1.56)


def test_run_says_when_recorded_traces_are_not_kept(lif_path, tmp_path):
    args = ("run", lif_path, "--duration", "5ms", "-o", tmp_path / "g")
    r = invoke(*args, "--record", "V", "--record", "g_syn")
    assert r.exit_code == 0, r.output
    assert r.stderr == (
        "note: the recorded traces (V, g_syn) were not kept; "
        "add --save out.npz (or traces.csv, or a results folder) or --plot trace.png to keep them\n"
    )
    assert invoke(*args, "--record", "V", "--save", tmp_path / "t.csv").stderr == f"saved {tmp_path / 't.csv'}\n"
    assert invoke(*args).stderr == ""  # the default recording (V) is only there for --save and --plot


def test_network_run_prints_like_a_model_run_and_keeps_quiet(tmp_path):
    net = ROOT_MODELS / "two_neurons.network"
    args = ("run", net, "--duration", "20ms", "--dt", "0.1ms", "-o", tmp_path / "g")
    r = invoke(*args, "--save", tmp_path / "out.npz")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("TwoNeurons: simulated 20 ms in 200 steps of 0.1 ms") and r.stdout.count("\n") == 1
    assert r.stderr == f"saved {tmp_path / 'out.npz'}\n"
    r = invoke(*args, "--save", tmp_path / "quiet.npz", "-q")
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == ""
    assert (tmp_path / "quiet.npz").is_file()
    r = invoke(*args, "-q")  # the network file records A.V, B.V and B.g_syn
    assert r.stdout == "" and r.stderr == (
        "note: the recorded traces (A.V, B.V, B.g_syn) were not kept; add --save out.npz or --plot trace.png to keep them\n"
    )


def test_network_save_needs_npz_and_is_never_renamed(tmp_path):
    net = ROOT_MODELS / "two_neurons.network"
    r = invoke("run", net, "--duration", "20ms", "--save", tmp_path / "out.csv", "-o", tmp_path / "g")
    assert r.exit_code == 2
    assert (
        f"Invalid value for --save: a network's result is saved as one .npz file (spikes, populations and traces), "
        f"not as '{tmp_path / 'out.csv'}'; give a name ending in .npz, e.g. {tmp_path / 'out.npz'}"
    ) in r.output
    assert "Traceback" not in r.output and sorted(p.name for p in tmp_path.iterdir()) == []  # refused before the run


def test_absurd_values_stop_a_run_with_one_line(tmp_path):
    adex = tmp_path / "adex20.model"
    adex.write_text(
        (ROOT_MODELS / "adex.model").read_text().replace("threshold V > V_T + 5 * Delta_T", "threshold V > 20 mV")
    )
    r = invoke(
        "--path",
        ROOT_MODELS,
        "run",
        adex,
        "--method",
        "rk4",
        "--input",
        "I_ext=1nA",
        "--record",
        "V",
        "--save",
        tmp_path / "out.npz",
        "-o",
        tmp_path / "g",
    )
    assert r.exit_code == 1 and r.stdout == "" and "Traceback" not in r.output
    warning, error = r.stderr.splitlines()
    assert warning.startswith(
        "warning: dt = 0.01 ms is larger than rk4's stability limit 2.785*tau for V (tau = 4.84e-15 ms at the threshold "
        "V = 20 mV, which every spike reaches)"
    )
    assert re.fullmatch(
        r"error: V of neuron 0 reached -[0-9.]+e\+1[0-9] mV between t = 1[0-9.]* and 1[0-9.]* ms, beyond ±1e\+04 mV: "
        r"the run blew up; try a smaller --dt or another --method",
        error,
    ), error
    assert not (tmp_path / "out.npz").exists()

"""The NMODL export (modelgen/exporters/nmodl.py): its text, NEURON compiling it and running HH from it."""

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import CURRENT_FILES

import modelgen
from modelgen.cli import main
from modelgen.exporters import export_model

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def mod(name: str) -> str:
    return export_model(modelgen.load(ROOT / "modelgen" / "library" / "currents" / f"{name}.current").model, "nmodl")


@pytest.mark.parametrize("path", CURRENT_FILES, ids=lambda p: p.name)
def test_every_library_current_exports(path):
    text = mod(path.stem)
    assert ("SUFFIX " in text) != ("POINT_PROCESS " in text)
    assert "NONSPECIFIC_CURRENT i" in text


def test_na_hh_is_a_density_mechanism_in_internal_units():
    text = mod("na_hh")
    assert "    SUFFIX NaHH\n" in text
    assert "    g = 120.0 (mS/cm2)\n" in text and "    T_ref = 279.45 (K)\n" in text
    assert "    temperature = celsius + 273.15\n" in text  # the model's temperature is NEURON's celsius, in kelvin
    assert "    alpha_m = 0.1*phi*(v + 40)/(1 - exp(-0.1*v - 4))\n" in text
    assert "    m' = alpha_m*(1 - m) - beta_m*m\n" in text
    assert "SOLVE states METHOD cnexp" in text
    assert "    i = (I) * 0.001\n" in text  # uA/cm2 -> mA/cm2


def test_synapse_and_adaptation_are_point_processes():
    syn = mod("syn_exp_cond")
    assert "POINT_PROCESS ExpCondSynapse" in syn
    assert "NET_RECEIVE(weight (mS)) {\n    g = g + weight\n}" in syn
    assert "    i = (I) * 1000\n" in syn  # uA -> nA
    adaptation = mod("adaptation")
    assert "Not mapped (a NEURON mechanism sees no spikes of its own cell): reset w += b" in adaptation
    # NEURON has its own AlphaSynapse: the export's name must not clash
    assert "POINT_PROCESS AlphaSynapse_modelgen" in mod("syn_alpha")


def test_a_model_without_currents_is_refused_in_one_line():
    r = CliRunner().invoke(main, ["export", str(ROOT / "models" / "izhikevich.model"), "--to", "nmodl"])
    assert r.exit_code == 1
    assert r.stderr == "error: Izhikevich has no currents besides inputs: nothing for a NEURON mechanism\n"


NEURON_RUN = """
import json, math, sys
from neuron import h
h.load_file("stdrun.hoc")
h.nrn_load_dll(sys.argv[1])
soma = h.Section(name="soma")
soma.L = soma.diam = math.sqrt(100 / math.pi)  # 100 um^2
soma.cm = 1
for mechanism in ("NaHH", "KHH", "Leak"):
    soma.insert(mechanism)
soma.g_Leak, soma.E_Leak = 0.3, -54.387  # hh_composed.model's use line
h.celsius = 6.3
stim = h.IClamp(soma(0.5))
stim.delay, stim.dur, stim.amp = 0, 1e9, 0.01  # 10 uA/cm^2 on 100 um^2 = 0.01 nA
spikes = h.Vector()
detector = h.NetCon(soma(0.5)._ref_v, None, sec=soma)
detector.threshold = 0
detector.record(spikes)
h.dt, h.secondorder = 0.01, 2  # Crank-Nicolson
h.finitialize(-65)
for _ in range(10000):
    h.fadvance()
print(json.dumps(list(spikes)))
"""


@pytest.mark.slow
def test_neuron_compiles_the_exports_and_runs_hh_as_modelgen_does(tmp_path):
    pytest.importorskip("neuron", reason="NEURON is not installed (pip install neuron)")
    nrnivmodl = shutil.which("nrnivmodl") or str(Path(sys.executable).parent / "nrnivmodl")
    if not Path(nrnivmodl).exists():
        pytest.skip("nrnivmodl is not on the PATH")
    for name in ("na_hh", "k_hh", "leak", "syn_exp_cond", "adaptation", "syn_alpha"):
        (tmp_path / f"{name}.mod").write_text(mod(name))
    build = subprocess.run([nrnivmodl], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    library = next(tmp_path.glob("*/libnrnmech.so"))
    run = subprocess.run([sys.executable, "-c", NEURON_RUN, str(library)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    got = np.array(json.loads(run.stdout.strip().splitlines()[-1]))
    reference = (
        modelgen.load(ROOT / "models" / "hh_composed.model")
        .run(duration="100 ms", dt="0.01 ms", inputs={"I_ext": "10 uA/cm^2"})
        .spike_times(0)
    )
    assert len(reference) == 7 and len(got) == len(reference), (reference, got)
    # measured: identical spike times (NEURON's Crank-Nicolson and modelgen's exponential Euler, both at 0.01 ms)
    assert np.max(np.abs(got - reference)) <= 0.02, (reference, got)

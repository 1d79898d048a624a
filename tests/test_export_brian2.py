"""The Brian2 export (modelgen/exporters/brian2.py): the script's text, and Brian2 running it."""

import runpy
from pathlib import Path

import numpy as np
import pytest
from conftest import CURRENT_FILES, MODEL_FILES, checked

import modelgen
from modelgen.exporters import export_model

ROOT = Path(__file__).resolve().parent.parent


def script(name: str) -> str:
    return export_model(modelgen.load(ROOT / "models" / f"{name}.model").model, "brian2")


@pytest.mark.parametrize("path", MODEL_FILES + CURRENT_FILES, ids=lambda p: p.name)
def test_every_bundled_model_and_current_exports_valid_python(path):
    text = export_model(checked(path), "brian2")
    compile(text, str(path), "exec")


def test_hh_equations_carry_brian2_units():
    text = script("hh")
    assert '"g_Na": 120.0*mS/cm**2,  # [hh.model:7]' in text
    assert "dV/dt = (-I_K - I_L - I_Na + I_ext)/C_m : volt  # [hh.model:21]" in text
    # 0.1/mV (V + 40 mV)/(1 - exp(-(V + 40 mV)/10 mV))/ms, with each number's unit put back
    assert "alpha_m = (V/10 + 4*mV)/(mV*ms*(1 - exp(-V/(10*mV) - 4))) : 1/second" in text
    assert "I_ext : amp/metre**2  # input" in text
    assert 'threshold="V > 0*mV"' in text
    assert "refractory='V > 0*mV'" in text  # an upward crossing: no spike while V stays above
    assert 'method="exponential_euler"' in text


def test_lif_event_and_izhikevich_numbers():
    lif = script("lif")
    assert "dV/dt = (I_ext - I_leak + I_syn)/C : volt (unless refractory)" in lif
    assert 'threshold="V > V_th"' in lif and "V = V_reset" in lif and "refractory='t_ref'" in lif
    assert '"C": 200.0*pF,' in lif
    izh = script("izhikevich")
    # 0.04/ms/mV v^2 + 5/ms v + 140 mV/ms: in internal numbers 0.04 v^2 is v^2/25
    assert "dv/dt = I - u + v**2/(25*mV*ms) + 5*v/ms + 140*mV/ms : volt" in izh
    assert '"d": 8.0*mV/ms,' in izh and '"a": 0.02/ms,' in izh
    assert "u += d" in izh


def _brian2():
    try:
        import brian2
    except ImportError:
        pytest.skip("Brian2 is not installed (pip install brian2)")
    except Exception as e:  # Brian2 2.9 and NumPy 2.4 do not import together (ndarray.ptp is gone)
        pytest.skip(f"Brian2 does not import here: {type(e).__name__}: {e}")
    brian2.prefs.codegen.target = "numpy"
    return brian2


# model, input, value for modelgen, value for Brian2 (a callable of the brian2 module), tolerance (ms)
RUNS = [
    ("hh", "I_ext", "10 uA/cm^2", lambda b: 10 * b.uA / b.cm**2, "rk4", 0.02),
    ("lif", "I_ext", "300 pA", lambda b: 300 * b.pA, None, 0.1),
    ("adex", "I_ext", "1 nA", lambda b: 1 * b.nA, None, 0.02),
    ("izhikevich", "I", "10 mV/ms", lambda b: 10 * b.mV / b.ms, None, 0.02),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, inp, text, value, method, tol", RUNS, ids=[r[0] for r in RUNS])
def test_brian2_runs_the_export_and_fires_when_modelgen_does(tmp_path, name, inp, text, value, method, tol):
    b = _brian2()
    model = modelgen.load(ROOT / "models" / f"{name}.model")
    reference = model.run(duration="100 ms", dt="0.01 ms", inputs={inp: text}, method=method).spike_times(0)
    path = tmp_path / f"{name}_brian2.py"
    path.write_text(export_model(model.model, "brian2"))
    exported = runpy.run_path(str(path), run_name="exported")
    b.start_scope()
    b.defaultclock.dt = 0.01 * b.ms
    neurons = exported["make_neurons"](1, **({"method": method} if method else {}))
    setattr(neurons, inp, value(b))
    spikes = b.SpikeMonitor(neurons)
    b.Network(neurons, spikes).run(100 * b.ms)
    got = np.asarray(spikes.t / b.ms)
    assert len(reference) >= 3 and len(got) == len(reference), (reference, got)
    assert np.max(np.abs(got - reference)) <= tol, (reference, got)

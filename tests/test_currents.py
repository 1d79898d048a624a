"""The current library (modelgen/library/currents/*.current) and composition (`use "…" as NAME (…)`).

Every library file checks on its own and is used by a model; the mechanism's settings,
scoping and errors; reset and synapse lines of current files; the properties each channel
or synapse is known for (h-current sag, persistent-sodium threshold lowering, NMDA magnesium
block, alpha and difference-of-exponentials peaks, q10 temperature scaling).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import modelgen
from modelgen import ModelError
from modelgen.cli import main
from modelgen.network import load_network

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
CURRENTS = ROOT / "modelgen" / "library" / "currents"
LIBRARY = sorted(CURRENTS.glob("*.current"))


@pytest.fixture(scope="module")
def gen():
    """Where generated modules go: modelgen's cache (the session's, see conftest.py), named by
    content, so each model is built once and models of the same name in different tests never clash."""
    return None


def load_text(tmp_path: Path, text: str, name: str = "host.model"):
    path = tmp_path / name
    path.write_text(text)
    return modelgen.load(path)


def errors(excinfo) -> str:
    return "\n".join(f"{d.code} {d.message} {d.hint}" for d in excinfo.value.diagnostics)


HOST = """model Host "a membrane for one current"
parameter C_m = 1 uF/cm^2
parameter temperature = 6.3 degC
state V = -65 mV
charge Q = C_m * V
current I_ext = input   inward
threshold V > 0 mV
"""


# ------------------------------------------------------------------ the library itself
def test_library_has_ten_or_more_currents_each_citing_its_source():
    assert len(LIBRARY) >= 10
    for path in LIBRARY:
        lines = path.read_text().splitlines()
        comments = " ".join(line for line in lines if line.startswith("#"))
        # a publication: authors, (year), journal or book
        assert re.search(r"[A-Z][a-z]+ [A-Z]+.*\((19|20)\d\d\)", comments), f"{path.name} cites no source"
        header = next(line for line in lines if line.strip() and not line.startswith("#"))
        assert header.startswith("current "), path.name


@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_each_current_checks_alone_without_warnings(path):
    m = modelgen.load(path)  # a standalone membrane: units checked in the file alone
    assert m.warnings == ()
    assert "I" in m.currents or any(c.startswith("I_") for c in m.currents)


def test_check_command_is_clean_on_every_bundled_model_and_current():
    files = sorted(MODELS.glob("*.model")) + LIBRARY
    r = CliRunner().invoke(main, ["check", *map(str, files)])
    assert r.exit_code == 0, r.output
    assert r.output.count(": ok -- model") == len(files)
    assert "warning" not in r.output


def test_every_library_file_is_used_by_a_bundled_model_or_a_test():
    texts = [p.read_text() for p in MODELS.glob("*.model")] + [
        p.read_text() for p in (ROOT / "tests").glob("test_*.py")
    ]
    used = {name for text in texts for name in re.findall(r'use "currents/(\w+)"', text)}
    assert {p.stem for p in LIBRARY} <= used, {p.stem for p in LIBRARY} - used


def test_standalone_membrane_follows_the_files_units():
    per_area = modelgen.load(CURRENTS / "na_hh.current")
    absolute = modelgen.load(CURRENTS / "adaptation.current")
    assert per_area.parameters["C_m"] == "1 uF/cm^2" and per_area.parameters["temperature"] == "279.45 K"
    assert absolute.parameters["C_m"] == "100 pF"
    assert modelgen.load(CURRENTS / "kahp.current").parameters["Ca"] == "50 nM"


def test_a_current_alone_may_read_only_known_free_names(tmp_path):
    path = tmp_path / "k_shift.current"
    path.write_text(
        'current KShift "needs the host\'s E_K"\nparameter g = 1 mS/cm^2\ncurrent I = g * (V - E_K)   outward\n'
    )
    with pytest.raises(ModelError) as e:
        modelgen.load(path)
    assert "`E_K` is not declared in KShift: it must come from the model that uses the file" in errors(e)
    assert e.value.diagnostics[0].span.line == 3


def test_a_current_alone_is_checked_with_its_own_names(tmp_path):
    path = tmp_path / "slow.current"
    path.write_text(
        'current Slow "a time constant without a unit"\nparameter g = 1 mS/cm^2\nparameter tau = 200\n'
        "gate n: inf = 1 / (1 + exp(-(V + 35 mV)/10 mV)), tau = tau\ncurrent I = g * n * (V + 90 mV)   outward\n"
    )
    with pytest.raises(ModelError) as e:
        modelgen.load(path)
    assert "dn/dt must have dimension 1/time (n is dimensionless)" in errors(e)
    assert (e.value.diagnostics[0].span.line, e.value.diagnostics[0].span.col) == (4, 6)
    path.write_text('current Empty "no current line"\nparameter g = 1 mS/cm^2\n')
    with pytest.raises(ModelError) as e:
        modelgen.load(path)
    assert "Empty declares no `current … inward|outward` line" in errors(e)


# ------------------------------------------------------------------ composition
def test_hh_composed_gives_the_spike_times_of_hh(gen):
    inputs = {"I_ext": [5.0, 10.0, 20.0]}
    a = modelgen.load(MODELS / "hh.model").run(duration="100 ms", dt="0.01 ms", n=3, inputs=inputs, out_dir=gen)
    b = modelgen.load(MODELS / "hh_composed.model").run(
        duration="100 ms", dt="0.01 ms", n=3, inputs=inputs, out_dir=gen
    )
    for i in range(3):
        assert np.array_equal(a.spike_times(i), b.spike_times(i))
    assert len(a.spike_times(2)) == 9
    # the q10 factor (= 1 at 6.3 degC) reorders a few floating-point operations: ~1e-11 mV over 9 spikes
    assert np.max(np.abs(a["V"] - b["V"])) < 1e-9


def test_hh_rates_scale_with_q10_and_temperature(gen):
    hh = modelgen.load(MODELS / "hh_composed.model")
    r = hh.run(
        duration="100 ms",
        dt="0.01 ms",
        n=2,
        inputs={"I_ext": 10.0},
        params={"temperature": np.array([6.3, 16.3]) + 273.15},  # K, the unit the model stores
        record=["V", "I_Na_phi", "I_K_phi"],
        out_dir=gen,
    )
    assert r["I_Na_phi"][:, 0] == pytest.approx([1.0, 3.0], rel=1e-12)
    assert r["I_K_phi"][:, 0] == pytest.approx([1.0, 3.0], rel=1e-12)
    n_cold, n_warm = len(r.spike_times(0)), len(r.spike_times(1))
    assert (n_cold, n_warm) == (7, 16)  # faster gating: shorter spikes and refractoriness, higher rate


def test_same_current_twice_under_two_names(tmp_path, gen):
    m = load_text(
        tmp_path,
        HOST
        + 'use "currents/k_hh" as I_K\n'
        + 'use "currents/k_hh" as I_K2 (g = 5 mS/cm^2)\n'
        + 'use "currents/leak" as I_L\n',
    )
    assert {"I_K_n", "I_K2_n"} <= set(m.states)
    assert m.parameters["I_K_g"] == "36 mS/cm^2" and m.parameters["I_K2_g"] == "5 mS/cm^2"
    assert list(m.currents) == ["I_ext", "I_K", "I_K2", "I_L"]
    assert r"- I_{K} - I_{K2} - I_{L}" in m.latex()
    r = m.run(duration="20 ms", dt="0.01 ms", inputs={"I_ext": 10.0}, record=["I_K", "I_K2"], out_dir=gen)
    # the same kinetics from the same initial values: the currents differ only by g
    assert np.allclose(r["I_K2"], r["I_K"] * 5 / 36, rtol=1e-12, atol=1e-12)


def test_settings_bind_parameters_to_host_expressions(tmp_path, gen):
    m = load_text(
        tmp_path,
        HOST
        + "parameter E_K = -77 mV\n"
        + 'use "currents/k_hh" as I_K (E = E_K)\n'
        + 'use "currents/k_hh" as I_K2 (E = E_K + 5 mV, n = 0.5)\n',
    )
    assert "I_K_E" not in m.parameters and "I_K2_E" not in m.parameters  # the model's E_K is used instead
    r = m.run(
        duration="0.01 ms",
        dt="0.01 ms",
        n=2,
        params={"E_K": np.array([-77.0, -90.0])},
        record=["I_K", "I_K2", "I_K2_n"],
        out_dir=gen,
    )
    alpha_n, beta_n = 0.1 / (np.e - 1), 0.125  # at the initial -65 mV
    n0 = alpha_n / (alpha_n + beta_n)
    assert r["I_K"][:, 0] == pytest.approx(36 * n0**4 * (-65 - np.array([-77.0, -90.0])), rel=1e-9)
    assert r["I_K2_n"][:, 0] == pytest.approx([0.5, 0.5])  # the initial value given in the use line
    assert r["I_K2"][:, 0] == pytest.approx(36 * 0.5**4 * (-65 - np.array([-72.0, -85.0])), rel=1e-9)


def test_latex_shows_each_used_current_with_its_own_name(tmp_path):
    hh = modelgen.load(MODELS / "hh_composed.model").latex()
    assert r"C_{m} \, \frac{dV}{dt} &= -I_{Na} - I_{K} - I_{L} + I_{ext}" in hh
    # the names inside a current are shown as the file writes them, tagged with the current
    assert r"I_{Na} &= g_{Na} m_{Na}^{3} h_{Na} \left(V - E_{Na}\right)" in hh
    assert r"\frac{dm_{Na}}{dt} &= \alpha_{m,Na} \left(1 - m_{Na}\right) - \beta_{m,Na} m_{Na}" in hh
    assert r"$g_{K}$ & 36 & $\mathrm{mS/cm^{2}}$" in hh
    two = load_text(
        tmp_path,
        HOST
        + "parameter I_K_max = 1 uA/cm^2\n"  # the model's own name, not a scoped one
        + 'use "currents/k_hh" as I_K\nuse "currents/k_hh" as I_K2 (g = 5 mS/cm^2)\n',
    ).latex()
    assert r"I_{K} &= g_{K} n_{K}^{4}" in two and r"I_{K2} &= g_{K2} n_{K2}^{4}" in two
    assert r"$I_{K max}$ & 1" in two


def test_unknown_setting_is_reported_with_a_suggestion(tmp_path):
    with pytest.raises(ModelError) as e:
        load_text(tmp_path, HOST + 'use "currents/leak" as I_L (gg = 1 mS/cm^2)\n')
    assert "current Leak (currents/leak) has no parameter or free name `gg`" in errors(e)
    assert "did you mean `g`?" in errors(e)
    d = e.value.diagnostics[0]
    assert (d.span.line, d.span.col) == (8, 29)


def test_missing_current_file_lists_the_folders_searched(tmp_path):
    with pytest.raises(ModelError) as e:
        load_text(tmp_path, HOST + 'use "currents/nothere" as I_X\n')
    assert "no current file 'currents/nothere'" in errors(e)
    assert str(tmp_path) in errors(e) and str(CURRENTS.parent) in errors(e)  # the bundled library, modelgen/library


@pytest.mark.parametrize(
    "path, message",
    [
        ("../../etc/passwd", "'../../etc/passwd' leaves the folders currents are read from"),
        ("../currents/../../x", "leaves the folders currents are read from"),
        ("/etc/passwd", "`use` takes a path relative to the model file or the library"),
    ],
)
def test_paths_outside_the_search_folders_are_refused(tmp_path, path, message):
    with pytest.raises(ModelError) as e:
        load_text(tmp_path, HOST + f'use "{path}" as I_X\n')
    assert message in errors(e)


def test_a_current_file_cannot_use_another(tmp_path):
    (tmp_path / "nested.current").write_text(
        'current Nested "uses another current"\nuse "currents/leak" as I_L\ncurrent I = 0 uA/cm^2   outward\n'
    )
    with pytest.raises(ModelError) as e:
        load_text(tmp_path, HOST + 'use "nested" as I_N\n')
    assert "`use` cannot appear in a current file" in errors(e)
    assert e.value.diagnostics[0].span.file.endswith("nested.current")
    with pytest.raises(ModelError) as e:
        modelgen.load(tmp_path / "nested.current")
    assert "a current file cannot `use` other currents" in errors(e)


def test_a_model_file_is_not_a_current(tmp_path):
    (tmp_path / "hh.model").write_text((MODELS / "hh.model").read_text())
    with pytest.raises(ModelError) as e:
        load_text(tmp_path, HOST + 'use "hh.model" as I_X\n')
    assert "'hh.model' is not a current file" in errors(e)


def test_unit_errors_inside_a_current_point_into_its_file(tmp_path):
    (tmp_path / "bad.current").write_text(
        'current Bad "a conductance used as a current"\nparameter g = 1 mS/cm^2\ncurrent I = g   outward\n'
    )
    with pytest.raises(ModelError) as e:
        load_text(tmp_path, HOST + 'use "bad" as I_B\n')
    d = e.value.diagnostics[0]
    assert d.code == "E301" and d.span.file.endswith("bad.current") and d.span.line == 3
    assert "current I_B has dimension" in d.message


def test_unbound_free_name_is_reported_at_the_use_line(tmp_path):
    with pytest.raises(ModelError) as e:
        load_text(tmp_path, HOST + 'use "currents/kahp" as I_AHP\n')
    assert "current KAHP (currents/kahp) reads `Ca`, which the model does not declare" in errors(e)
    assert "(Ca = …)" in errors(e)
    assert e.value.diagnostics[0].span.line == 8


def test_current_files_are_found_on_the_search_path(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "shunt.current").write_text(
        'current Shunt "a shunt"\nparameter g = 1 mS/cm^2\ncurrent I = g * V   outward\n'
    )
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    (model_dir / "host.model").write_text(HOST + 'use "shunt" as I_S\n')
    with pytest.raises(ModelError):
        modelgen.load(model_dir / "host.model")
    assert "I_S" in modelgen.load(model_dir / "host.model", search_path=[str(lib)]).currents
    monkeypatch.setenv("MODELGEN_PATH", str(lib))
    assert "I_S" in modelgen.load(model_dir / "host.model").currents


# ------------------------------------------------------------------ resets and synapses in current files
ADEX = MODELS / "adex.model"


def test_adaptation_reset_joins_the_hosts_reset(gen):
    m = modelgen.load(ADEX)
    # the file's reset comes where its use line stands, the model's after it
    assert [(r.state, r.op) for r in m.model.event.resets] == [("I_adapt_w", "+="), ("V", "=")]
    dt = 0.01
    r = m.run(
        duration="300 ms", dt=f"{dt} ms", inputs={"I_ext": "step(1 nA, on=10 ms)"}, record=["I_adapt_w"], out_dir=gen
    )
    spikes = r.spike_times(0)
    assert len(spikes) >= 5
    w = r["I_adapt_w"][0]
    for ts in spikes:
        k = int(round(ts / dt))  # the reset happens in the step that ends at the spike time
        jump = w[k] - w[k - 1]
        assert jump == pytest.approx(80.5, abs=0.5)  # b = 80.5 pA, plus the drift of one step
    assert w[int(round(spikes[0] / dt)) - 1] < 10.0  # before the first spike only the subthreshold coupling a


SYNAPSE_HOST = """model SynapseHost "a passive membrane receiving every library synapse"
parameter C = 200 pF
state V = -65 mV
charge Q = C * V
use "currents/leak" as I_L (g = 10 nS, E = -65 mV)
use "currents/syn_exp_current" as I_cur
use "currents/syn_exp_cond" as I_ampa
use "currents/syn_exp_cond" as I_gaba (E = -80 mV, tau = 10 ms)
use "currents/syn_alpha" as I_alpha
use "currents/syn_nmda" as I_nmda
threshold V > 0 mV
"""

SYNAPSE_NET = """network Synapses
population A = "lif.model" (n = 1)
population B = "host.model" (n = 1)
input A (I_ext = 300 pA)
connect A to B (receptor = I_cur, rule = all_to_all, weight = 20 pA, delay = 1 ms)
connect A to B (receptor = I_ampa, rule = all_to_all, weight = 0.5 nS, delay = 1 ms)
connect A to B (receptor = I_gaba, rule = all_to_all, weight = 0.7 nS, delay = 1 ms)
connect A to B (receptor = I_alpha, rule = all_to_all, weight = 0.3 nS, delay = 1 ms)
connect A to B (receptor = I_nmda, rule = all_to_all, weight = 0.2 nS, delay = 1 ms)
record B (V, I_cur_s, I_ampa_g, I_gaba_g, I_alpha_g, I_nmda_g, I_nmda_B)
"""


def test_library_synapses_receive_network_spikes_at_their_alias(tmp_path, gen):
    (tmp_path / "lif.model").write_text((MODELS / "lif.model").read_text())
    (tmp_path / "host.model").write_text(SYNAPSE_HOST)
    (tmp_path / "net.network").write_text(SYNAPSE_NET)
    host = modelgen.load(tmp_path / "host.model")
    assert set(host.model.receptors) == {"I_cur", "I_ampa", "I_gaba", "I_alpha", "I_nmda"}
    dt = 0.05
    r = load_network(tmp_path / "net.network").run(60.0, dt, out_dir=gen)
    _, t_a = r.spikes("A")
    assert t_a.size >= 2 and t_a[1] - t_a[0] > 12  # first and second arrival at least 12 ms apart
    k = int(round((t_a[0] + 1.0) / dt))  # the first spike's weights are added at the start of step k
    t = r.t - r.t[k]
    tr = {name.split(".", 1)[1]: v[0] for name, v in r.traces.items()}
    assert np.all(tr["I_cur_s"][: k + 1] == 0) and np.all(tr["I_nmda_g"][: k + 1] == 0)
    # exponential: jump by w, decay with tau (rk4 here, because the NMDA block makes dV/dt nonlinear)
    assert tr["I_cur_s"][k + 1 : k + 200] == pytest.approx(20 * np.exp(-t[k + 1 : k + 200] / 5), rel=1e-7)
    assert tr["I_ampa_g"][k + 1 : k + 200] == pytest.approx(0.5 * np.exp(-t[k + 1 : k + 200] / 5), rel=1e-7)
    assert tr["I_gaba_g"][k + 1 : k + 200] == pytest.approx(0.7 * np.exp(-t[k + 1 : k + 200] / 10), rel=1e-7)
    # alpha: w (t/tau) exp(1 - t/tau), peak w at t = tau = 2 ms
    window = slice(k, k + 200)
    alpha = 0.3 * t[window] / 2 * np.exp(1 - t[window] / 2)
    assert tr["I_alpha_g"][window] == pytest.approx(alpha, abs=2e-4)  # rk4 of the cascade, ~1e-5 nS
    assert t[window][np.argmax(tr["I_alpha_g"][window])] == pytest.approx(2.0, abs=dt)
    # NMDA: difference of exponentials normalised to peak w at t_peak = tau_r tau_d/(tau_d - tau_r) ln(tau_d/tau_r)
    t_peak = 2 * 100 / 98 * np.log(50)
    g = tr["I_nmda_g"][window]
    assert g.max() == pytest.approx(0.2, rel=1e-4)
    assert t[window][np.argmax(g)] == pytest.approx(t_peak, abs=dt)
    # the magnesium block at the recorded V (Jahr & Stevens 1990)
    assert tr["I_nmda_B"] == pytest.approx(1 / (1 + 1 / 3.57 * np.exp(-0.062 * tr["V"])), rel=1e-12)


def test_library_coba_neuron_equals_the_benchmark_model(tmp_path, gen):
    composed = load_text(
        tmp_path,
        """model CobaComposed "the COBA neuron from library currents"
parameter C = 200 pF
state V = -60 mV
charge Q = C * V
use "currents/leak" as I_L (g = 10 nS, E = -60 mV)
use "currents/syn_exp_cond" as I_e (E = 0 mV, tau = 5 ms)
use "currents/syn_exp_cond" as I_i (E = -80 mV, tau = 10 ms)
threshold V > -50 mV
reset V = -60 mV
refractory 5 ms
""",
    )
    ref = modelgen.load(MODELS / "coba_lif.model")
    kw = dict(duration="100 ms", dt="0.1 ms", n=3, out_dir=gen)
    start = np.array([20.0, 40.0, 60.0])  # nS: below, near and above what makes the neuron fire
    a = ref.run(initial={"g_e": start, "g_i": start / 4}, **kw)
    b = composed.run(initial={"I_e_g": start, "I_i_g": start / 4}, **kw)
    assert np.allclose(a["V"], b["V"], rtol=0, atol=1e-10)
    assert [len(a.spike_times(i)) for i in range(3)] == [len(b.spike_times(i)) for i in range(3)]


# ------------------------------------------------------------------ channel properties
def test_nmda_magnesium_block_gives_a_negative_slope_region(gen):
    nmda = modelgen.load(CURRENTS / "syn_nmda.current")  # alone, with its names as written
    v = np.arange(-100.0, 41.0, 5.0)
    peak = 2 * 100 / 98 * np.log(50)
    x_r, x_d = np.exp(-peak / 2), np.exp(-peak / 100)
    r = nmda.run(
        duration="0.01 ms",
        dt="0.01 ms",
        n=v.size,
        initial={"V": v, "x_r": x_r, "x_d": x_d},
        record=["I", "B", "g"],
        record_indices=np.arange(v.size),
        out_dir=gen,
    )
    current, block = r["I"][:, 0], r["B"][:, 0]
    assert r["g"][:, 0] == pytest.approx(1.0, rel=1e-12)
    assert block == pytest.approx(1 / (1 + np.exp(-0.062 * v) / 3.57), rel=1e-12)
    assert block[v == -60][0] == pytest.approx(0.0796, abs=1e-4)  # mostly blocked at rest
    assert current[v == 0][0] == pytest.approx(0.0, abs=1e-12)  # reverses at E = 0 mV
    slope = np.diff(current) / np.diff(v)
    # the inward current grows as V depolarises from -100 to about -25 mV (negative slope) ...
    assert np.all(slope[v[:-1] < -30] < 0)
    # ... and shrinks towards E above it, like an ohmic conductance
    assert np.all(slope[v[:-1] > -20] > 0)
    assert v[np.argmin(current)] in (-25.0, -20.0)


def test_h_current_sag_and_rebound(tmp_path, gen):
    m = load_text(
        tmp_path,
        """model PassiveIh "passive membrane with an h-current"
parameter C_m = 1 uF/cm^2
state V = -65 mV
charge Q = C_m * V
use "currents/leak" as I_L (g = 0.05 mS/cm^2, E = -65 mV)
use "currents/ih" as I_h
current I_ext = input   inward
""",
    )
    r = m.run(
        duration="1600 ms",
        dt="0.1 ms",
        n=2,
        inputs={"I_ext": "step(-1 uA/cm^2, on=100 ms, off=1100 ms)"},
        params={"I_h_g": np.array([0.02, 0.0])},
        out_dir=gen,
    )
    t, v = r.t, r["V"]
    during, after = (t > 100) & (t < 1100), t > 1100
    rest = v[:, t < 100][:, -1]
    peak_hyper = v[:, during].min(axis=1)
    end = v[:, during][:, -1]
    sag = end - peak_hyper  # the h-current opens slowly and pulls V back towards rest
    assert sag[0] > 3.0 and sag[1] == pytest.approx(0.0, abs=1e-6)
    assert 50 < t[during][np.argmin(v[0, during])] - 100 < 150  # the sag starts within ~100 ms
    rebound = v[:, after].max(axis=1) - rest  # depolarising overshoot after the step
    assert rebound[0] > 1.5 and rebound[1] < 1e-6
    assert -64.5 < rest[0] < -63  # I_h is partly open at rest and depolarises it


@pytest.mark.slow  # a rheobase search (~5 s)
def test_persistent_sodium_lowers_the_rheobase(tmp_path, gen):
    m = load_text(
        tmp_path,
        """model WBNaP "Wang-Buzsaki interneuron with a persistent sodium current"
parameter C_m = 1 uF/cm^2
state V = -65 mV
charge Q = C_m * V
use "currents/na_wb" as I_Na
use "currents/k_wb" as I_K
use "currents/leak" as I_L (g = 0.1 mS/cm^2, E = -65 mV)
use "currents/nap" as I_NaP (g = 0.03 mS/cm^2)
current I_ext = input   inward
threshold V > -20 mV
""",
    )
    current = np.linspace(0.0, 0.3, 16)

    def rheobase(g_nap):
        r = m.run(
            duration="300 ms",
            dt="0.05 ms",
            n=current.size,
            inputs={"I_ext": current},
            params={"I_NaP_g": g_nap},
            out_dir=gen,
        )
        firing = [len(r.spike_times(i)) >= 2 for i in range(current.size)]
        return current[firing.index(True)], r["V"][0, -1]

    (without, rest_without), (with_nap, rest_with) = rheobase(0.0), rheobase(0.03)
    assert (without, with_nap) == pytest.approx((0.2, 0.1))  # uA/cm^2, on a grid of 0.02
    assert rest_with > rest_without + 0.3  # the window current depolarises the resting potential


# ------------------------------------------------------------------ the README's worked example
def _block_after(text: str, marker: str) -> str:
    """Return the first fenced code block after ``marker`` in the README."""
    return re.search(r"```\n(.*?)```", text[text.index(marker) :], re.S).group(1)


def test_readme_worked_example_runs_as_written(tmp_path, gen):
    readme = (ROOT / "README.md").read_text()
    current = _block_after(readme, "**1. Write the file**")
    model = _block_after(readme, "**3. Use it in a model.**")
    (tmp_path / "mycurrents").mkdir()
    (tmp_path / "mycurrents" / "kslow.current").write_text(current)
    with pytest.raises(ModelError) as e:  # step 2: the time constant without its unit
        modelgen.load(tmp_path / "mycurrents" / "kslow.current")
    assert "dn/dt must have dimension 1/time (n is dimensionless)" in errors(e)
    (tmp_path / "mycurrents" / "kslow.current").write_text(current.replace("tau = 200\n", "tau = 200 ms\n"))
    assert modelgen.load(tmp_path / "mycurrents" / "kslow.current").warnings == ()
    (tmp_path / "rs_slowk.model").write_text(model)
    m = modelgen.load(tmp_path / "rs_slowk.model")
    assert m.parameters["I_Ks_g"] == "0.3 mS/cm^2"
    assert m.states == ("V", "I_Na_m", "I_Na_h", "I_Kd_n", "I_Ks_n")
    r = m.run(
        duration="1 s",
        dt="0.05 ms",
        n=2,
        inputs={"I_ext": 2.0},
        params={"I_Ks_g": [0.3, 0.0]},
        record=["V", "I_Ks_n"],
        out_dir=gen,
    )
    assert [len(r.spike_times(i)) for i in range(2)] == [28, 71]
    assert np.diff(r.spike_times(0))[[0, -1]] == pytest.approx([17.0, 46.1], abs=0.05)
    assert np.diff(r.spike_times(1))[[0, -1]] == pytest.approx([14.0, 13.9], abs=0.05)
    assert r["I_Ks_n"][0, [0, -1]] == pytest.approx([0.028, 0.136], abs=5e-4)
    assert r"I_{Ks} &= g_{Ks} n_{Ks} \left(V - E_{K}\right)" in m.latex()

"""Models built from the current library, each checked against a property its paper reports.

Connor-Stevens: type I excitability (the f-I curve starts at 0 Hz), unlike HH (type II).
Wang-Buzsaki: type I, fast spiking without adaptation. Pospischil RS: M-current adaptation.
Izhikevich (2003): regular spiking, intrinsic bursting, chattering, fast spiking.
AdEx (Naud et al. 2008): tonic, adapting, initial burst, regular bursting, delayed
accelerating and transient patterns, classified from interspike intervals.
Calcium and AHP: a calcium pool and a calcium-activated potassium current adapt firing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import modelgen

MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.fixture(scope="module")
def gen():
    """Generated modules go to the session's cache (see conftest.py)."""
    return None


def sustained_rates(result, n: int, duration: float) -> np.ndarray:
    """Return each neuron's firing rate (Hz) from its last interspike interval, 0 if it stopped firing.

    A neuron fires repetitively if it spikes in the second half of the run; transient spikes
    at the onset of the step (HH fires one to three below its repetitive threshold) don't count.
    """
    rates = np.zeros(n)
    for i in range(n):
        s = np.asarray(result.spike_times(i))
        if s.size >= 2 and s[-1] > duration / 2:
            rates[i] = 1000.0 / (s[-1] - s[-2])
    return rates


def firing_pattern(spikes) -> str:
    """Classify the response to a current step from its interspike intervals (ISIs), after Naud et al. (2008).

    transient: at most two spikes; bursting: the later ISIs alternate between short and long (max > 3 min);
    initial burst: an early jump between consecutive ISIs (> 3x), regular after; adapting: the last ISI
    is > 1.5x the first, reached gradually; accelerating: < 0.7x; tonic otherwise.
    """
    isi = np.diff(np.asarray(spikes))
    if isi.size < 2:
        return "transient"
    late = isi[isi.size // 2 :]
    if late.max() > 3 * late.min():
        return "bursting"
    if np.max(isi[1:] / isi[:-1]) > 3:
        return "initial burst"
    ratio = isi[-1] / isi[0]
    if ratio > 1.5:
        return "adapting"
    if ratio < 0.7:
        return "accelerating"
    return "tonic"


# ------------------------------------------------------------------ Connor-Stevens vs HH
@pytest.mark.slow  # an f-I scan near threshold (~7 s)
def test_connor_stevens_fires_arbitrarily_slowly_near_threshold_unlike_hh(gen):
    cs = modelgen.load(MODELS / "connor_stevens.model")
    assert set(cs.currents) == {"I_Na", "I_K", "I_A", "I_L", "I_ext"}
    current = np.r_[np.linspace(8.0, 8.5, 11), 10.0, 20.0]  # uA/cm^2
    r = cs.run(
        duration="1500 ms", dt="0.05 ms", n=current.size, inputs={"I_ext": current}, record_indices=[0], out_dir=gen
    )
    rates = sustained_rates(r, current.size, 1500.0)
    firing = rates > 0
    assert not firing[0] and firing[-1]
    onset = np.argmax(firing)
    assert np.all(firing[onset:])
    # type I: the first repetitive rate above the silent range is a couple of Hz (2.0 Hz at 8.15 uA/cm^2) ...
    assert 0 < rates[onset] < 3.0
    # ... and the rate then grows continuously with the current, to > 100 Hz
    assert np.all(np.diff(rates[onset:]) > 0)
    assert np.all(np.diff(rates[onset:11]) < 2.0)  # steps of 0.05 uA/cm^2 change the rate by < 2 Hz
    assert rates[-1] > 100

    # the same measurement on HH: repetitive firing starts at ~50 Hz (type II, a Hopf bifurcation)
    hh = modelgen.load(MODELS / "hh.model")
    current = np.linspace(5.8, 6.6, 9)
    r = hh.run(
        duration="1000 ms", dt="0.05 ms", n=current.size, inputs={"I_ext": current}, record_indices=[0], out_dir=gen
    )
    rates = sustained_rates(r, current.size, 1000.0)
    assert rates[0] == 0 and rates[-1] > 0
    assert rates[rates > 0].min() > 40.0  # no slow firing at any current


# ------------------------------------------------------------------ Wang-Buzsaki
def test_wang_buzsaki_is_type_one_and_fast_spiking_without_adaptation(gen):
    wb = modelgen.load(MODELS / "wang_buzsaki.model")
    current = np.array([0.1, 0.15, 0.2, 0.3, 1.0, 10.0, 20.0])  # uA/cm^2
    r = wb.run(
        duration="1000 ms", dt="0.05 ms", n=current.size, inputs={"I_ext": current}, record_indices=[0], out_dir=gen
    )
    rates = sustained_rates(r, current.size, 1000.0)
    firing = rates > 0
    onset = np.argmax(firing)
    assert not firing[0] and np.all(firing[onset:])
    assert rates[onset] < 15.0  # type I: low rates just above the threshold
    assert 50 < rates[4] < 70  # ~60 Hz at 1 uA/cm^2 (Wang & Buzsaki 1996, Fig. 1C)
    assert rates[5] > 250 and rates[6] > 350  # fast spiking: hundreds of Hz
    for i in (4, 5, 6):  # no spike-frequency adaptation: the first ISI is already the steady one
        isi = np.diff(r.spike_times(i))
        assert isi[-1] / isi[0] < 1.1


# ------------------------------------------------------------------ Pospischil RS
def test_pospischil_rs_adapts_through_its_m_current(gen):
    rs = modelgen.load(MODELS / "pospischil_rs.model")
    g_m = np.array([0.075, 0.075, 0.0, 0.0])  # mS/cm^2: the paper's value, and the M-current removed
    current = np.array([1.0, 2.0, 1.0, 2.0])
    r = rs.run(
        duration="1000 ms",
        dt="0.05 ms",
        n=4,
        inputs={"I_ext": current},
        params={"I_M_g": g_m},
        record=["V", "I_M_p"],
        out_dir=gen,
    )
    ratio = np.array([(lambda isi: isi[-1] / isi[0])(np.diff(r.spike_times(i))) for i in range(4)])
    assert np.all(ratio[:2] > 1.6)  # ISIs lengthen during the step: 46 -> 94 ms at 1 uA/cm^2, 17 -> 31 ms at 2
    assert np.all(np.abs(ratio[2:] - 1) < 0.1)  # without I_M the same neuron fires regularly
    assert [firing_pattern(r.spike_times(i)) for i in range(4)] == ["adapting", "adapting", "tonic", "tonic"]
    p = r["I_M_p"]
    assert p[0, -1] > 3 * p[0, 0]  # the slow M gate builds up during firing


# ------------------------------------------------------------------ Izhikevich
IZHIKEVICH_SETS = {  # Izhikevich (2003), Fig. 2: a, b, c, d
    "RS": (0.02, 0.2, -65.0, 8.0),
    "IB": (0.02, 0.2, -55.0, 4.0),
    "CH": (0.02, 0.2, -50.0, 2.0),
    "FS": (0.1, 0.2, -65.0, 2.0),
}


def test_izhikevich_parameter_sets_give_the_published_cortical_classes(gen):
    izh = modelgen.load(MODELS / "izhikevich.model")
    p = np.array(list(IZHIKEVICH_SETS.values()))
    r = izh.run(
        duration="500 ms",
        dt="0.05 ms",
        n=len(p),
        inputs={"I": 10.0},  # the paper's I = 10
        params={"a": p[:, 0], "b": p[:, 1], "c": p[:, 2], "d": p[:, 3]},
        out_dir=gen,
    )
    spikes = dict(zip(IZHIKEVICH_SETS, (np.asarray(r.spike_times(i)) for i in range(len(p)))))
    patterns = {k: firing_pattern(s) for k, s in spikes.items()}
    assert patterns["RS"] == "adapting"  # regular spiking: ISIs 23 -> 45 ms
    assert patterns["IB"] == "initial burst"  # a burst of three spikes, then single spikes
    assert patterns["CH"] == "bursting"  # chattering: repetitive bursts
    isi = np.diff(spikes["CH"])
    assert np.sum(isi > 30) >= 5 and np.sum(isi < 6) >= 15  # bursts of fast spikes, ~50 ms apart
    fs = np.diff(spikes["FS"])
    assert 1000 / fs[-1] > 120 and fs.max() < 10  # fast spiking: > 120 Hz, never a pause
    assert 1000 / np.diff(spikes["RS"])[-1] < 30


# ------------------------------------------------------------------ AdEx
# Naud R, Marcille N, Clopath C, Gerstner W (2008) Biol Cybern 99:335-347, Table 1:
# C (pF), g_L (nS), E_L (mV), V_T (mV), Delta_T (mV), a (nS), tau_w (ms), b (pA), V_r (mV), I (pA)
NAUD_2008 = {
    "tonic": (200, 10, -70, -50, 2, 2, 30, 0, -58, 500),
    "adapting": (200, 12, -70, -50, 2, 2, 300, 60, -58, 500),
    "initial burst": (130, 18, -58, -50, 2, 4, 150, 120, -50, 400),
    "bursting": (200, 10, -58, -50, 2, 2, 120, 100, -46, 210),
    "accelerating": (200, 12, -70, -50, 2, -10, 300, 0, -58, 300),
    "transient": (100, 10, -65, -50, 2, 10, 90, 100, -47, 180),
}


def test_adex_naud_parameter_sets_give_their_firing_patterns(gen):
    adex = modelgen.load(MODELS / "adex.model")
    assert list(adex.currents) == ["I_L", "I_exp", "I_adapt", "I_ext"]
    p = np.array(list(NAUD_2008.values()), dtype=float)
    names = ["C", "g_L", "E_L", "V_T", "Delta_T", "a", "tau_w", "b", "V_r"]
    r = adex.run(
        duration="500 ms",
        dt="0.02 ms",
        n=len(p),
        inputs={"I_ext": p[:, 9]},
        params={k: p[:, j] for j, k in enumerate(names)},
        initial={"V": p[:, 2]},  # at rest
        out_dir=gen,
    )
    found = {expected: firing_pattern(r.spike_times(i)) for i, expected in enumerate(NAUD_2008)}
    assert found == {k: k for k in NAUD_2008}
    tonic = np.diff(r.spike_times(0))
    assert 100 < 1000 / tonic[-1] < 115  # 9.4 ms ISIs
    burst = np.diff(r.spike_times(3))
    assert np.sum(burst < 10) >= 3 and np.sum(burst > 100) >= 3  # doublets every ~140 ms


# ------------------------------------------------------------------ calcium pool and AHP
def test_calcium_pool_and_ahp_current_adapt_firing_and_hyperpolarise_after_a_train(gen):
    m = modelgen.load(MODELS / "ahp_pyramidal.model")
    g_ahp = np.array([0.1, 0.0])  # mS/cm^2
    dt = 0.05
    r = m.run(
        duration="1000 ms",
        dt=f"{dt} ms",
        n=2,
        inputs={"I_ext": "step(2 uA/cm^2, on=50 ms, off=550 ms)"},
        params={"I_AHP_g": g_ahp},
        record=["V", "I_CaL_Ca", "I_AHP_m"],
        out_dir=gen,
    )
    t, v, ca = r.t, r["V"], r["I_CaL_Ca"]
    rest = v[:, t < 50][:, -1]
    ratio = [(lambda isi: isi[-1] / isi[0])(np.diff(r.spike_times(i))) for i in range(2)]
    assert ratio[0] > 1.8 and ratio[1] < 1.4  # calcium-dependent adaptation (the rest: Ca inactivation)
    assert len(r.spike_times(0)) < 0.7 * len(r.spike_times(1))
    # every spike lets calcium in: the pool rises from 50 nM to tens of uM
    assert ca[:, 0] == pytest.approx(5e-5, rel=1e-6) and np.all(ca.max(axis=1) > 0.02)  # mM
    # after the train the pool is cleared with tau_Ca = 80 ms ...
    k0, k1 = int(round(600 / dt)), int(round(680 / dt))
    decay = (ca[1, k1] - 5e-5) / (ca[1, k0] - 5e-5)
    assert decay == pytest.approx(np.exp(-1), rel=0.05)
    # ... and meanwhile the AHP current holds the membrane below rest (the slow afterhyperpolarisation)
    after = (t > 560) & (t < 900)
    assert v[0, after].min() < rest[0] - 2.0
    assert v[0, after].min() < v[1, after].min() - 1.0

"""Values with units from pint, quantities, astropy, unyt and brian2: converted exactly at every door, or refused."""

import importlib
from pathlib import Path

import numpy as np
import pytest

import modelgen
from modelgen import protocols as P
from modelgen.api import quantity
from modelgen.network import load_network
from modelgen.sweep import Axis, run_sweep
from modelgen.unit_objects import carries_units, to_internal
from modelgen.units import CONCENTRATION, CURRENT, TEMPERATURE, TIME

MODELS = Path(__file__).resolve().parent.parent / "models"


def _library(name: str):
    """Return the library, or skip (brian2 releases that do not run on this numpy fail with AttributeError)."""
    try:
        return importlib.import_module(name)
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"{name} cannot be imported here: {type(e).__name__}: {e}")


def _units(lib: str):
    """Return (nA, mV, ms, s, us, A/m^2) of one library."""
    if lib == "pint":
        u = _library("pint").UnitRegistry()
        return u.nA, u.mV, u.ms, u.s, u.us, u.A / u.m**2
    if lib == "quantities":
        q = _library("quantities")
        return q.nA, q.mV, q.ms, q.s, q.us, q.A / q.m**2
    if lib == "astropy":
        u = _library("astropy.units")
        return u.nA, u.mV, u.ms, u.s, u.us, u.A / u.m**2
    if lib == "unyt":
        y = _library("unyt")
        return y.nA, y.mV, y.ms, y.s, y.us, y.A / y.m**2
    b = _library("brian2")
    return b.nA, b.mV, b.ms, b.second, b.us, b.amp / b.meter**2


LIBRARIES = ["pint", "quantities", "astropy", "unyt", "brian2"]


@pytest.fixture(scope="module")
def lif():
    return modelgen.load(MODELS / "lif.model")


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("generated")


@pytest.fixture(scope="module")
def plain_run(lif, out):
    """The issue's reference: LIF driven by a plain 300 (pA, the declared unit) fires 6 spikes in 100 ms."""
    r = lif.run(duration="100 ms", inputs={"I_ext": 300}, out_dir=out)
    assert len(r.spike_t) == 6
    return r


@pytest.mark.parametrize("lib", LIBRARIES)
def test_issue_case_nanoamperes_give_the_spikes_of_plain_picoamperes(lib, lif, out, plain_run):
    nA = _units(lib)[0]
    r = lif.run(duration="100 ms", inputs={"I_ext": 0.3 * nA}, out_dir=out)  # was read as 0.3 pA: 0 spikes
    np.testing.assert_array_equal(r.spike_t, plain_run.spike_t)
    assert r.metadata["inputs"] == {"I_ext": "300 pA"}  # the value as run, not the bare 0.3


@pytest.mark.parametrize("lib", LIBRARIES)
def test_issue_case_millivolts_for_a_current_are_refused(lib, lif, out):
    mV = _units(lib)[1]
    with pytest.raises(modelgen.ModelError) as e:
        lif.run(duration="100 ms", inputs={"I_ext": 300 * mV}, out_dir=out)
    d = e.value.diagnostics[0]
    assert d.code == "E501"
    assert d.message.startswith("I_ext must be current (a plain number means pA), but `")
    assert d.message.endswith(f"({lib}) is voltage")
    assert d.hint == "give a value of current (e.g. in pA), or a plain number, which means pA"


@pytest.mark.parametrize("lib", LIBRARIES)
def test_per_area_input_from_si_current_density(lib):
    """HH's I_ext is declared in uA/cm^2: 0.1 A/m^2 is 10 uA/cm^2 (internal unit uA/cm^2)."""
    hh = modelgen.load(MODELS / "hh.model")
    i = hh.model.input("I_ext")
    A_per_m2 = _units(lib)[5]
    assert quantity(0.1 * A_per_m2, i.dimension, "I_ext", i.unit, i.display_scale) == 10.0
    with pytest.raises(modelgen.ModelError, match=r"must be current/area \(a plain number means uA/cm\^2\)"):
        quantity(0.3 * _units(lib)[0], i.dimension, "I_ext", i.unit, i.display_scale)


@pytest.mark.parametrize("lib", LIBRARIES)
def test_times_durations_steps_parameters_initial_values(lib, lif, out, plain_run):
    nA, mV, ms, s, us, _ = _units(lib)
    r = lif.run(
        duration=0.1 * s,  # seconds, not "0.1" ms
        dt=10 * us,
        inputs={"I_ext": 0.3 * nA},
        params={"t_ref": 2 * ms},
        initial={"V": -65 * mV},
        out_dir=out,
    )
    if lib == "brian2":  # brian2 keeps only SI values: its 10*us is already 9.999999999999999e-06 s
        assert r.dt == pytest.approx(0.01, rel=1e-15) and r.duration == pytest.approx(100.0, rel=1e-15)
    else:  # exact: 10 us is 0.01 ms as the text "10 us" is
        assert r.dt == 0.01 and r.duration == 100.0
    np.testing.assert_allclose(r.spike_t, plain_run.spike_t, rtol=1e-12)
    longer_refractory = lif.run(duration="100 ms", inputs={"I_ext": 300}, params={"t_ref": 0.02 * s}, out_dir=out)
    assert len(longer_refractory.spike_t) < 6
    assert longer_refractory.metadata["parameters"] == {"t_ref": "20 ms"}


@pytest.mark.parametrize("lib", LIBRARIES)
def test_arrays_of_values_with_units(lib, lif, out):
    nA = _units(lib)[0]
    plain = lif.run(duration="100 ms", n=3, inputs={"I_ext": np.array([100.0, 300.0, 500.0])}, out_dir=out)
    r = lif.run(duration="100 ms", n=3, inputs={"I_ext": np.array([0.1, 0.3, 0.5]) * nA}, out_dir=out)
    np.testing.assert_array_equal(r.spike_i, plain.spike_i)
    np.testing.assert_array_equal(r.spike_t, plain.spike_t)
    listed = lif.run(duration="100 ms", n=3, inputs={"I_ext": [0.1 * nA, 0.3 * nA, 0.5 * nA]}, out_dir=out)
    np.testing.assert_array_equal(listed.spike_t, plain.spike_t)


def test_a_list_of_texts_with_units_is_one_value_per_neuron(lif, out):
    plain = lif.run(duration="100 ms", n=3, inputs={"I_ext": [100.0, 300.0, 500.0]}, out_dir=out)
    r = lif.run(duration="100 ms", n=3, inputs={"I_ext": ["100 pA", "0.3 nA", 500]}, out_dir=out)
    np.testing.assert_array_equal(r.spike_i, plain.spike_i)
    np.testing.assert_array_equal(r.spike_t, plain.spike_t)
    assert r.metadata["inputs"] == {"I_ext": "[100 pA, 0.3 nA, 500 pA]"}
    with pytest.raises(modelgen.ModelError, match=r"I_ext\[1\] must be current .* but `3 mV` is voltage"):
        lif.run(duration="10 ms", n=2, inputs={"I_ext": ["100 pA", "3 mV"]}, out_dir=out)
    # what is no value at all: a clear error, not numpy's
    with pytest.raises(modelgen.ModelError, match=r"I_ext must be a number \(in pA\), text with a unit"):
        lif.run(duration="10 ms", n=2, inputs={"I_ext": {"a": 1}}, out_dir=out)


@pytest.mark.parametrize("lib", LIBRARIES)
def test_protocol_arguments_and_functions_of_time(lib, lif, out, plain_run):
    nA, mV, ms, s, us, _ = _units(lib)
    plain = lif.run(duration="100 ms", inputs={"I_ext": P.step(300, on=20)}, out_dir=out)
    r = lif.run(duration="100 ms", inputs={"I_ext": P.step(0.3 * nA, on=0.02 * s)}, out_dir=out)
    np.testing.assert_array_equal(r.spike_t, plain.spike_t)
    assert r.metadata["inputs"] == {"I_ext": "step(300 pA, on=20 ms)"}
    summed = lif.run(duration="100 ms", inputs={"I_ext": P.step(0.2 * nA, on=20 * ms) + 0.1 * nA}, out_dir=out)
    assert len(summed.spike_t) > 0
    per_neuron = lif.run(duration="100 ms", n=3, inputs={"I_ext": P.linspace(0.1 * nA, 0.5 * nA)}, out_dir=out)
    assert np.bincount(per_neuron.spike_i, minlength=3)[0] == 0 and len(per_neuron.spike_t) > 0
    with pytest.raises(modelgen.ModelError, match=r"I_ext: step\(on=…\) must be time \(a plain number means ms\)"):
        lif.run(duration="100 ms", inputs={"I_ext": P.step(0.3 * nA, on=20 * mV)}, out_dir=out)
    with pytest.raises(modelgen.ModelError, match=r"`sine\(…\)` cannot be the amplitude of step\(\)"):
        lif.run(duration="100 ms", inputs={"I_ext": P.step(P.sine(0.1 * nA, 10))}, out_dir=out)  # a Protocol has .unit
    current = 0.3 * nA  # a function of t returning values with units: converted at every step
    function = lif.run(duration="30 ms", inputs={"I_ext": lambda t: current}, out_dir=out)
    np.testing.assert_array_equal(function.spike_t, plain_run.spike_t[plain_run.spike_t <= 30])


def test_whole_numbers_and_text_arguments_refuse_units(lif, out):
    pq = _library("quantities")
    with pytest.raises(modelgen.ModelError, match=r"pulses\(count=…\) must be a whole number, not a value with units"):
        lif.run(duration="100 ms", inputs={"I_ext": P.pulses(300, 2, 10, count=3 * pq.dimensionless)}, out_dir=out)
    with pytest.raises(modelgen.ModelError, match=r"file\(unit=…\) must be text \(write a unit as text"):
        lif.run(duration="100 ms", inputs={"I_ext": P.from_file("trace.csv", unit=pq.nA)}, out_dir=out)


def test_unknown_objects_with_units_are_refused_not_stripped(lif, out):
    class Reading(float):  # a float that says it is in nA: float() would strip it to 0.3
        units = "nA"

    assert carries_units(Reading(0.3)) and not carries_units(0.3)
    with pytest.raises(modelgen.ModelError, match=r"`0.3` \(Reading\) seems to carry units"):
        lif.run(duration="100 ms", inputs={"I_ext": Reading(0.3)}, out_dir=out)

    class Measured:
        unit = "nA"

        def __float__(self):
            return 0.3

        def __str__(self):
            return "0.3 nA"

    with pytest.raises(modelgen.ModelError) as e:
        lif.run(duration="100 ms", inputs={"I_ext": Measured()}, out_dir=out)
    d = e.value.diagnostics[0]
    assert d.message == (
        "I_ext: `0.3 nA` (Measured) seems to carry units, but modelgen does not know its kind, "
        "so it is not read as a plain number"
    )
    assert d.hint == (
        "give a value from pint, quantities, astropy, unyt, brian2, text with a unit (e.g. `1 pA`), "
        "or a plain number in pA"
    )


def test_mixed_lists_are_refused(lif, out):
    pq = _library("quantities")
    with pytest.raises(modelgen.ModelError, match="some of the values carry units and some do not"):
        lif.run(duration="100 ms", n=2, inputs={"I_ext": [0.3 * pq.nA, 300]}, out_dir=out)


def test_plain_numbers_keep_meaning_the_declared_unit(lif, out, plain_run):
    assert not carries_units(300) and not carries_units(np.array([1.0])) and not carries_units([1, 2])
    r = lif.run(duration="100 ms", inputs={"I_ext": np.float64(300)}, out_dir=out)
    np.testing.assert_array_equal(r.spike_t, plain_run.spike_t)


def test_temperatures_offsets_and_concentrations():
    pint = _library("pint")
    u = pint.UnitRegistry()
    assert to_internal(u.Quantity(6.3, "degC"), TEMPERATURE, "celsius", "K") == 279.45
    assert to_internal(2 * u.mM, CONCENTRATION, "c", "mM") == 2.0  # pint's own factor is 0.9999999999999998
    pq = _library("quantities")
    with pytest.raises(modelgen.ModelError, match="quantities converts without the offset"):
        to_internal(6.3 * pq.degC, TEMPERATURE, "celsius", "K")
    assert to_internal(2 * pq.mM, CONCENTRATION, "c", "mM") == 2.0
    y = _library("unyt")
    assert to_internal(6.3 * y.degC, TEMPERATURE, "celsius", "K") == pytest.approx(279.45, rel=1e-15)
    assert to_internal(2 * y.mmol / y.L, CONCENTRATION, "c", "mM") == 2.0  # unyt's mol is a number
    au = _library("astropy.units")
    with pytest.raises(modelgen.ModelError, match=r"`2.0 rad` \(astropy\) is in rad, which modelgen cannot convert"):
        to_internal(2 * au.rad, CURRENT, "I_ext", "pA")


def test_network_run_and_sweep_take_values_with_units(out):
    pq = _library("quantities")
    net = load_network(MODELS / "two_neurons.network")
    plain = net.run(50.0, 0.1, out_dir=out)
    r = load_network(MODELS / "two_neurons.network").run(0.05 * pq.s, 100 * pq.us, out_dir=out)
    assert r.duration == 50.0 and r.dt == 0.1
    np.testing.assert_array_equal(r.spike_t, plain.spike_t)
    with pytest.raises(modelgen.ModelError, match="dt must be time"):
        net.run(50.0, 0.1 * pq.mV, out_dir=out)

    lif = modelgen.load(MODELS / "lif.model")
    axis = Axis("I_ext", "input", np.array([0.1, 0.3]) * pq.nA, "nA", 1.0)
    table = run_sweep(lif, [axis], duration=0.1 * pq.s, out_dir=out)
    assert table.axes[0].unit == "pA"
    np.testing.assert_allclose(table.points["I_ext"], [100.0, 300.0], rtol=1e-15)
    assert table.rate.tolist() == [0.0, 60.0]


def test_show_says_what_a_plain_number_means(lif):
    hh = modelgen.load(MODELS / "hh.model")
    assert "  from Python, a plain number means the unit shown (I_ext=10 is 10 uA/cm^2);\n" in hh.summary()
    assert "(I_ext=10 is 10 pA);\n  text with a unit and values from pint, quantities, astropy" in lif.summary()
    assert to_internal(0.3 * _library("quantities").nA, CURRENT, "I_ext", "pA") == quantity(
        300, CURRENT, "I_ext", "pA", 1e-6
    )
    assert quantity(10 * _library("quantities").us, TIME, "dt", "ms") == 0.01

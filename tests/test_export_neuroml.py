"""The NeuroML2/LEMS export (modelgen/exporters/neuroml.py): its text, pylems running it, jNeuroML checking it."""

import argparse
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from conftest import CURRENT_FILES, MODEL_FILES, checked

import modelgen
from modelgen.api import quantity
from modelgen.exporters import export_model
from modelgen.exporters.neuroml import export

ROOT = Path(__file__).resolve().parent.parent


def lems(name: str, **kw) -> str:
    return export(modelgen.load(ROOT / "models" / f"{name}.model").model, **kw)


@pytest.mark.parametrize("path", MODEL_FILES + CURRENT_FILES, ids=lambda p: p.name)
def test_every_bundled_model_and_current_exports_well_formed_lems(path):
    root = ET.fromstring(export_model(checked(path), "neuroml"))
    assert root.tag == "Lems"
    ct = root.find("ComponentType")
    assert ct.get("extends") in ("baseCellMembPot", "baseSpikingCell")
    states = {s.get("name") for s in ct.find("Dynamics").findall("StateVariable")}
    assert set(checked(path).state_names) <= states


def test_hh_component_type():
    root = ET.fromstring(lems("hh", inputs={"I_ext": 10.0}))
    ct = root.find("ComponentType")
    dims = {p.get("name"): p.get("dimension") for p in ct.findall("Parameter")}
    assert (
        dims["g_Na"] == "conductanceDensity"
        and dims["C_m"] == "specificCapacitance"
        and dims["I_ext"] == "currentDensity"
    )
    consts = {c.get("name"): (c.get("dimension"), c.get("value")) for c in ct.findall("Constant")}
    assert consts == {"unit_mV": ("voltage", "1mV"), "unit_ms": ("time", "1ms")}
    derived = {d.get("name"): d.get("value") for d in ct.find("Dynamics").findall("DerivedVariable")}
    assert derived["alpha_m"] == "(V/10 + 4*unit_mV)/(unit_mV*unit_ms*(1 - exp(-V/(10*unit_mV) - 4)))"
    assert derived["I_Na"] == "g_Na*h*(m)^(3)*(-E_Na + V)"
    assert derived["v"] == "V"  # NeuroML's exposure of the membrane potential
    cell = root.find("HodgkinHuxley")
    assert cell.get("g_Na") == "120.0mS_per_cm2" and cell.get("I_ext") == "10.0uA_per_cm2"
    tests = [c.get("test") for c in ct.find("Dynamics").findall("OnCondition")]
    # an upward crossing; pylems 0.6.9 reads no .leq., so V <= 0 is written 0 .geq. V
    assert tests == ["V .gt. 0*unit_mV .and. above .lt. 0.5", "0*unit_mV .geq. V .and. above .gt. 0.5"]


def test_lif_refractory_receptor_and_new_dimensions():
    ct = ET.fromstring(lems("lif")).find("ComponentType")
    dyn = ct.find("Dynamics")
    assert dyn.find("TimeDerivative[@variable='V']").get("value") == "(1 - refractory)*((I_ext - I_leak + I_syn)/C)"
    on_event = dyn.find("OnEvent")
    assert on_event.get("port") == "exc"
    assert on_event.find("StateAssignment").attrib == {"variable": "g_syn", "value": "g_syn + w_exc"}
    root = ET.fromstring(lems("izhikevich"))
    # mV/ms is not among NeuroML's dimensions: defined, with a unit equal to modelgen's internal one
    assert root.find("Dimension").attrib == {"name": "modelgen_l2_m1_tm4_im1", "l": "2", "m": "1", "t": "-4", "i": "-1"}
    assert root.find("Unit").attrib == {
        "symbol": "modelgen_l2_m1_tm4_im1_internal",
        "dimension": "modelgen_l2_m1_tm4_im1",
        "power": "0",
        "scale": "1.0",
    }
    assert root.find("Izhikevich").get("d") == "8.0modelgen_l2_m1_tm4_im1_internal"


@pytest.fixture(scope="module")
def core_types(tmp_path_factory):
    """NeuroML's core LEMS definitions (shipped inside pyNeuroML's jNeuroML jar)."""
    pytest.importorskip("lems", reason="pylems is not installed (pip install pylems)")
    utils = pytest.importorskip("pyneuroml.utils", reason="pyNeuroML (for NeuroML's core types) is not installed")
    folder = tmp_path_factory.mktemp("core")
    here = os.getcwd()
    os.chdir(folder.parent)  # extract_lems_definition_files() extracts relative to the working folder
    try:
        return Path(utils.extract_lems_definition_files(folder.name)).resolve()
    finally:
        os.chdir(here)


def run_pylems(path: Path, core: Path) -> np.ndarray:
    from lems.model.model import Model
    from lems.run import process_simulation_output
    from lems.sim.build import SimulationBuilder

    model = Model()
    model.add_include_directory(str(core))
    model.import_from_file(str(path))
    sim = SimulationBuilder(model.resolve()).build()
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        sim.run()
        process_simulation_output(sim, model, argparse.Namespace(nogui=True))
    finally:
        os.chdir(here)
    return model


RUNS = [
    ("hh", "I_ext", "10 uA/cm^2"),
    ("lif", "I_ext", "300 pA"),
    ("adex", "I_ext", "1 nA"),
    ("izhikevich", "I", "10 mV/ms"),
]


@pytest.mark.slow
@pytest.mark.parametrize("method, tol", [(None, 0.1), ("euler", 0.02)], ids=["own-method", "euler"])
@pytest.mark.parametrize("name, inp, text", RUNS, ids=[r[0] for r in RUNS])
def test_pylems_spike_times_agree_with_modelgen(tmp_path, core_types, name, inp, text, method, tol):
    """pylems integrates with forward Euler: against modelgen's own scheme within 0.1 ms, against its Euler 0.02 ms."""
    model = modelgen.load(ROOT / "models" / f"{name}.model")
    reference = model.run(duration="100 ms", dt="0.01 ms", inputs={inp: text}, method=method).spike_times(0)
    value = quantity(text, model.model.input(inp).dimension, inp)
    path = tmp_path / f"LEMS_{name}.xml"
    path.write_text(export(model.model, inputs={inp: value}))
    run_pylems(path, core_types)
    table = np.loadtxt(tmp_path / f"{model.name}.dat")  # t, membrane potential, t_last_spike (SI units)
    got = np.unique(table[:, 2][table[:, 2] > 0]) * 1e3
    assert len(reference) >= 3 and len(got) == len(reference), (reference, got)
    assert np.max(np.abs(got - reference)) <= tol, (reference, got)


@pytest.mark.slow
def test_jneuroml_checks_the_export_and_its_dimensions(tmp_path):
    runners = pytest.importorskip("pyneuroml.runners", reason="pyNeuroML is not installed")
    if shutil.which("java") is None:
        pytest.skip("jNeuroML needs java")

    def valid(text: str) -> bool:
        path = tmp_path / "LEMS_check.xml"
        path.write_text(text)
        return runners.run_jneuroml(
            "", str(path), "-norun", verbose=False, report_jnml_output=False, exit_on_fail=False
        )

    for name in ("hh", "lif", "adex", "izhikevich"):
        assert valid(lems(name)), name
    # the check is real: a number with the wrong unit is refused
    assert not valid(lems("hh").replace('value="(V/10 + 4*unit_mV)', 'value="(V/10 + 4*unit_ms)'))


def network_lems(name: str) -> str:
    from modelgen.exporters import export_network
    from modelgen.network import load_network

    return export_network(load_network(ROOT / "models" / f"{name}.network"), "neuroml")


def test_two_neurons_network_explicit_connection_with_delay_and_weight():
    text = network_lems("two_neurons")
    root = ET.fromstring(text)
    cells = {c.get("id"): c.attrib for c in root.findall("LIF")}
    assert cells["A_cell"]["I_ext"] == "0.0003uA"  # 300 pA, the network's input
    assert cells["B_cell"]["w_exc"] == "2e-05mS"  # 20 nS, the projection's weight
    net = root.find("network")
    assert [p.attrib for p in net.findall("population")] == [
        {"id": "A", "component": "A_cell", "size": "1"},
        {"id": "B", "component": "B_cell", "size": "1"},
    ]
    assert net.find("spikeTo_exc").attrib == {"from": "A[0]", "to": "B[0]", "targetPort": "exc", "delay": "1.5ms"}
    assert "Not mapped" not in text


def test_networks_say_what_does_not_map():
    text = network_lems("cuba")
    assert "Not mapped: E's initial V differs between neurons: the model's initial value is used" in text
    assert text.count("<spikeTo_") > 1000
    with pytest.raises(ValueError, match="networks cannot be exported to brian2; formats that hold networks: neuroml"):
        from modelgen.exporters import export_network
        from modelgen.network import load_network

        export_network(load_network(ROOT / "models" / "two_neurons.network"), "brian2")


@pytest.mark.slow
def test_jneuroml_runs_the_two_neuron_network_as_modelgen_does(tmp_path):
    """pylems 0.6.9 cannot resolve explicit connections without a synapse; jNeuroML (jLEMS) runs them, delays included."""
    runners = pytest.importorskip("pyneuroml.runners", reason="pyNeuroML is not installed")
    if shutil.which("java") is None:
        pytest.skip("jNeuroML needs java")
    from modelgen.network import load_network

    path = tmp_path / "LEMS_two.xml"
    path.write_text(network_lems("two_neurons"))
    assert runners.run_jneuroml(
        "", path.name, "-nogui", exec_in_dir=str(tmp_path), verbose=False, report_jnml_output=False, exit_on_fail=False
    )
    table = np.loadtxt(tmp_path / "TwoNeurons.dat")  # t, A's V, A's t_last_spike, B's V, B's t_last_spike
    result = load_network(ROOT / "models" / "two_neurons.network").run("100 ms", "0.01 ms")
    for column, population in ((2, "A"), (4, "B")):
        got = np.unique(table[:, column][table[:, column] > 0]) * 1e3
        reference = result.spikes(population)[1]
        assert len(reference) >= 5 and len(got) == len(reference), (population, reference, got)
        # measured: 0.03 ms (A), 0.05 ms (B): forward Euler against exponential Euler, plus the 1.5 ms delay
        assert np.max(np.abs(got - reference)) <= 0.1, (population, reference, got)

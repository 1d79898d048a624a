"""Pictures: run plots, f-I curves and rendered equations (skipped without matplotlib)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

import modelgen
from modelgen.cli import main
from modelgen.network import load_network
from modelgen.runtime import Result

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402

MODELS = __import__("pathlib").Path(__file__).resolve().parent.parent / "models"

PNG = b"\x89PNG\r\n\x1a\n"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_run_plot_has_input_trace_and_raster(hh_path, tmp_path):
    out = tmp_path / "trace.png"
    r = invoke(
        "run", hh_path, "--duration", "30ms", "--input", "I_ext=step(linspace(5, 15, 3) uA/cm^2, on=5 ms)",
        "--plot", out, "-o", tmp_path,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    width, height = png_size(out)
    assert width >= 1000 and height >= 800


def test_plot_run_axes_units(hh_path, tmp_path):
    import matplotlib.pyplot as plt

    from modelgen import plots

    m = modelgen.load(hh_path)
    result = m.run(
        duration="10 ms", n=2, inputs={"I_ext": "step(10 uA/cm^2, on=1 ms)"}, record=["V", "I_ext"], out_dir=tmp_path
    )
    open_before = plt.get_fignums()
    fig = plots.plot_run(result, tmp_path / "r.svg")
    assert isinstance(fig, Figure)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels == ["I_ext (µA/cm²)", "V (mV)", "neuron"]  # the input first, units on every axis
    assert [ax.get_xlabel() for ax in fig.axes] == ["", "", "t (ms)"]
    assert (tmp_path / "r.svg").read_text().lstrip().startswith("<?xml")
    assert plt.get_fignums() == open_before  # no pyplot figure left open
    with pytest.raises(ValueError, match=r"r\.gif: choose a \.png, \.svg or \.pdf file name"):
        plots.plot_run(result, tmp_path / "r.gif")
    assert not (tmp_path / "r.gif").exists()


def test_sweep_plot_fi_and_render(lif_path, hh_path, tmp_path):
    r = invoke(
        "sweep", lif_path, "--input", "I_ext=100:400:100pA", "--param", "g_L=10,12nS", "--duration", "100ms",
        "--dt", "0.1ms", "--plot-fi", tmp_path / "fi.png", "-o", tmp_path, "-q",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    png_size(tmp_path / "fi.png")
    for suffix in ("png", "svg", "pdf"):
        r = invoke("render", hh_path, "-o", tmp_path / f"eq.{suffix}")
        assert r.exit_code == 0, r.output
    width, height = png_size(tmp_path / "eq.png")
    assert height > width > 800  # a tall column of equations at a readable resolution
    assert (tmp_path / "eq.pdf").read_bytes()[:5] == b"%PDF-"
    r = invoke("render", hh_path, "-o", tmp_path / "eq.gif")
    assert r.exit_code == 1 and "choose a .png, .svg or .pdf" in r.output


def test_plotting_keeps_the_chosen_backend_and_opens_no_pyplot_figure():
    # a notebook's backend (here "svg", as a stand-in for inline) stays as chosen: importing and
    # using modelgen.plots used to switch it to Agg
    script = textwrap.dedent(
        """
        import matplotlib
        matplotlib.use("svg")
        import numpy as np
        from modelgen import plots
        from modelgen.runtime import Result
        t = np.arange(0, 10.01, 0.1)
        r = Result("M", t, {"V": np.sin(t)[None]}, {"V": "mV"}, np.array([0]), np.array([0]), np.array([5.0]),
                   1, 0.1, 10.0, "euler", 0.0)
        fig = plots.plot_run(r)
        import matplotlib.pyplot as plt
        from matplotlib.figure import Figure
        print(matplotlib.get_backend(), plt.get_fignums(), isinstance(fig, Figure))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["svg", "[]", "True"]


def small_result(model="M") -> Result:
    t = np.arange(0, 10.01, 0.1)
    traces = {"I_ext": np.ones((2, t.size)), "V": np.vstack([np.sin(t), np.cos(t)])}
    return Result(
        model, t, traces, {"I_ext": "uA/cm^2", "V": "mV"}, np.array([0, 1]), np.array([0, 1, 0]),
        np.array([2.0, 3.5, 7.0]), 2, 0.1, 10.0, "euler", 0.01,
        metadata={"membrane_state": "V", "input_names": ["I_ext"]},
    )  # fmt: skip


def test_result_plot_into_an_axes_or_a_new_figure():
    import matplotlib.pyplot as plt

    r = small_result()
    open_before = plt.get_fignums()
    fig = Figure()
    ax = fig.add_subplot()
    assert r.plot(ax=ax) is fig  # draws into the given axes, returns its figure
    assert ax.get_ylabel() == "V (mV)" and len(ax.lines) == 2  # the membrane potential by default
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), np.cos(r.t))
    ax2 = Figure().add_subplot()
    r.plot(ax=ax2, variables=["I_ext"], max_traces=1)
    assert ax2.get_ylabel() == "I_ext (µA/cm²)" and len(ax2.lines) == 1
    whole = r.plot(variables=["V"])
    assert [a.get_ylabel() for a in whole.axes] == ["V (mV)", "neuron"]
    assert whole._repr_png_()[:8] == PNG  # a notebook shows it even if nothing imported pyplot
    assert whole.get_suptitle() == "M: 2 neurons, 3 spikes"
    raster = whole.axes[1].lines[0]
    np.testing.assert_array_equal(raster.get_xdata(), r.spike_t)
    np.testing.assert_array_equal(raster.get_ydata(), r.spike_i)
    with pytest.raises(
        ValueError, match=r"^I_ext, V have different units \(mV, uA/cm\^2\): draw them into separate axes$"
    ):
        r.plot(ax=Figure().add_subplot(), variables=["I_ext", "V"])
    with pytest.raises(ValueError, match=r"^m was not recorded \(recorded: I_ext, V\)$"):
        r.plot(variables=["m"])
    assert plt.get_fignums() == open_before


def test_network_result_plot(tmp_path):
    import matplotlib.pyplot as plt

    result = load_network(MODELS / "two_neurons.network").run(50.0, 0.1, tmp_path)
    open_before = plt.get_fignums()
    fig = result.plot()
    assert [a.get_ylabel() for a in fig.axes] == [
        "neuron",
        "rate (Hz)\n5 ms bins",
        "A.V (mV)",
        "B.V (mV)",
        "B.g_syn (nS)",
    ]
    ax = Figure().add_subplot()
    assert result.plot(ax=ax) is ax.figure
    a_line, b_line = ax.lines  # one raster line per population, B stacked above A
    np.testing.assert_array_equal(a_line.get_xdata(), result.spikes("A")[1])
    np.testing.assert_array_equal(b_line.get_ydata(), result.spikes("B")[0] + 1)
    assert plt.get_fignums() == open_before


def test_plot_without_matplotlib_says_which_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "modelgen.plots", raising=False)
    with pytest.raises(ImportError, match=r"^Result\.plot\(\) needs matplotlib: pip install 'modelgen\[plot\]'$"):
        small_result().plot()

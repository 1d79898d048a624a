"""Pictures: run plots, f-I curves and rendered equations (skipped without matplotlib)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import modelgen
from modelgen.cli import main

pytest.importorskip("matplotlib")

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
    figures = []
    real_close = plt.close
    plt.close = lambda fig=None: figures.append(fig)  # keep the figure to look at it
    try:
        plots.plot_run(result, tmp_path / "r.svg")
    finally:
        plt.close = real_close
    fig = figures[0]
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels == ["I_ext (µA/cm²)", "V (mV)", "neuron"]  # the input first, units on every axis
    assert fig.axes[-1].get_xlabel() == "t (ms)"
    real_close(fig)
    assert (tmp_path / "r.svg").read_text().lstrip().startswith("<?xml")


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

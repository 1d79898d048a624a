"""What Jupyter shows for a result: the HTML summary, escaped, with or without matplotlib."""

from __future__ import annotations

import base64
import re
import sys

import numpy as np
import pytest

from modelgen.network import NetworkResult, load_network
from modelgen.runtime import Result

MODELS = __import__("pathlib").Path(__file__).resolve().parent.parent / "models"


def small_result(model: str = "HodgkinHuxley", unit: str = "mV") -> Result:
    t = np.arange(0, 20.01, 0.01)
    return Result(
        model, t, {"V": np.vstack([np.sin(t), np.cos(t), t])}, {"V": unit}, np.array([0, 1, 2]),
        np.array([0, 2, 1, 0]), np.array([1.0, 2.0, 5.0, 9.0]), 4, 0.01, 20.0, "exponential_euler", 0.1,
        metadata={"membrane_state": "V"},
    )  # fmt: skip


def text_of(page: str) -> str:
    """Return the page's text: tags and the inline picture left out."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", page)).strip()


def test_run_html_summary_and_picture():
    pytest.importorskip("matplotlib")
    page = small_result()._repr_html_()
    assert text_of(page) == (
        "HodgkinHuxley neurons 4 duration 20 ms in 2000 steps of 0.01 ms method exponential_euler "
        "spikes 4, 50.00 Hz per neuron recorded V (mV) of neurons 0–2"
    )  # 4 spikes / 4 neurons / 0.02 s
    png = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (480, 176)  # small: 6 x 2.2 inches at 80 dpi


def test_html_escapes_names_from_files():
    page = small_result(model="<script>alert('x')</script>&", unit="m<V>")._repr_html_()
    assert "<script>" not in page and "m<V>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" in page and "V (m&lt;V&gt;)" in page
    t = np.arange(0, 10.01, 0.1)
    net = NetworkResult(
        "<b>net</b>", ("<i>E</i>",), (2,), t, {}, {}, np.array([0]), np.array([1]), np.array([3.0]), 0.1, 10.0,
        0.0, 0, {"<i>E</i>": "<u>euler</u>"}, 7,
    )  # fmt: skip
    page = net._repr_html_()
    assert not re.search(r"<(b|i|u)>", page)
    assert "&lt;b&gt;net&lt;/b&gt;" in page and "&lt;i&gt;E&lt;/i&gt;" in page and "&lt;u&gt;euler&lt;/u&gt;" in page


def test_html_without_matplotlib_is_text_only(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "modelgen.plots", raising=False)
    page = small_result()._repr_html_()
    assert "<img" not in page
    assert text_of(page).endswith(
        "recorded V (mV) of neurons 0–2 pip install 'modelgen[plot]' to see a picture of the run here"
    )


def test_network_html(tmp_path):
    pytest.importorskip("matplotlib")
    result = load_network(MODELS / "two_neurons.network").run(100.0, 0.1, tmp_path)
    page = result._repr_html_()
    rows = re.findall(r"<tr>(.*?)</tr>", page)
    cells = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in rows]
    assert cells[0] == ["population", "neurons", "spikes", "rate (Hz)", "method"]
    a_spikes = result.spikes("A")[0].size
    assert a_spikes == 6  # 60 Hz for 100 ms, as the CLI test of this network says
    assert cells[1] == ["A", "1", "6", "60.00", "exponential_euler"] and cells[2][0] == "B"
    assert cells[2][2] == str(result.spikes("B")[0].size)
    assert ["duration", "100 ms in 1000 steps of 0.1 ms"] in cells and ["seed", "0"] in cells
    assert ["recorded", "A.V (mV) of neuron 0; B.V (mV) of neuron 0; B.g_syn (nS) of neuron 0"] in cells
    assert 'src="data:image/png;base64,' in page


def test_preview_draws_the_envelope_of_long_traces():
    from modelgen.display import PREVIEW_BINS, PREVIEW_TRACES, _envelope

    t = np.arange(10001) * 0.01
    v = np.tile(-65.0 + np.sin(t), (8, 1))
    v[3, 5003] = 40.0  # a one-sample peak must stay in the picture
    r = Result("M", t, {"V": v}, {"V": "mV"}, np.arange(8), np.zeros(0, int), np.zeros(0), 8, 0.01, 100.0, "euler", 0.0)
    thin = _envelope(r)
    assert thin.t.size == 2 * PREVIEW_BINS and thin["V"].shape == (PREVIEW_TRACES, 2 * PREVIEW_BINS)
    assert (thin.t[0], thin.t[-1]) == (0.0, t[9999])  # 10 samples per bin: the last sample is left out
    assert thin["V"][3].max() == 40.0 and thin["V"][2].max() == v[2, :10000].max()
    np.testing.assert_array_equal(thin["V"][:, 0::2].min(axis=1), v[:PREVIEW_TRACES, :10000].min(axis=1))
    short = Result("M", t[:1500], {"V": v[:, :1500]}, {"V": "mV"}, np.arange(8), np.zeros(0, int), np.zeros(0), 8, 0.01, 14.99, "euler", 0.0)  # fmt: skip
    assert _envelope(short) is short  # under two samples a bin: drawn as it is

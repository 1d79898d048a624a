"""Results in notebooks: the HTML Jupyter shows for a run, and the optional packages that need an extra.

A result's ``_repr_html_`` is a short table (the model, neurons, duration and dt, spikes and
rates, recorded variables with their units) and, when matplotlib is installed, a small picture
of the run as an inline PNG. Every name in it comes from a model or network file, so every one
is escaped.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import importlib
import io
from types import ModuleType

import numpy as np

__all__ = ["optional", "run_html", "network_html"]

PREVIEW_INCHES = (6.0, 2.2)  # the picture in a result's HTML
PREVIEW_DPI = 80
PREVIEW_TRACES = 5  # neurons drawn
PREVIEW_BINS = 1000  # time bins of a trace in the picture, at least twice its width in pixels


def optional(module: str, extra: str, purpose: str) -> ModuleType:
    """Return the imported ``module``; raise ImportError naming the extra to install if it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        missing = (e.name or module).split(".")[0]
        raise ImportError(f"{purpose} needs {missing}: pip install 'modelgen[{extra}]'", name=missing) from None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _neurons(indices) -> str:
    """Return ``0–9`` for a run of neurons, else the indices (the first few)."""
    indices = [int(i) for i in indices]
    if not indices:
        return "none"
    if indices == list(range(indices[0], indices[-1] + 1)) and len(indices) > 2:
        return f"{indices[0]}–{indices[-1]}"
    return ", ".join(map(str, indices[:8])) + (", …" if len(indices) > 8 else "")


def _recorded(result) -> str:
    """Return the recorded variables, each with its unit and neurons, escaped."""
    if not result.traces:
        return "nothing"
    parts = []
    for name, trace in result.traces.items():
        unit = result.units.get(name, "")
        shown = html.escape(name) + (f" ({html.escape(unit)})" if unit not in ("", "1") else "")
        parts.append(f"{shown} of neuron{'s' if trace.shape[0] != 1 else ''} {_neurons(result.recorded_neurons(name))}")
    return "; ".join(parts)


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(
        f'<tr><th style="text-align:left">{k}</th><td style="text-align:left">{v}</td></tr>' for k, v in rows
    )
    return f"<table>{cells}</table>"


def _picture(draw) -> str:
    """Return an <img> of what ``draw(plots, ax)`` draws, or a note on installing matplotlib."""
    try:
        plots = optional("modelgen.plots", "plot", "a picture")
    except ImportError:
        return "<p><em>pip install 'modelgen[plot]' to see a picture of the run here</em></p>"
    from matplotlib.figure import Figure

    fig = Figure(figsize=PREVIEW_INCHES, layout="tight")
    ax = fig.add_subplot()
    draw(plots, ax)
    if ax.get_legend() is not None:
        ax.get_legend().remove()  # no room for it; placing it ("best") also scans every point
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PREVIEW_DPI)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="a picture of the run" src="data:image/png;base64,{data}"/>'


def _envelope(result):
    """Return ``result`` with its first traces cut to their lowest and highest value in each of
    PREVIEW_BINS time bins: the same picture at the preview's size (spike peaks kept), drawn faster."""
    step = result.t.size // PREVIEW_BINS
    if step < 2:
        return result
    end = step * PREVIEW_BINS
    bins = result.t[:end].reshape(PREVIEW_BINS, step)
    t = np.stack([bins[:, 0], bins[:, -1]], axis=1).ravel()
    traces = {}
    for name, trace in result.traces.items():
        rows = trace[:PREVIEW_TRACES, :end].reshape(-1, PREVIEW_BINS, step)
        traces[name] = np.stack([rows.min(axis=2), rows.max(axis=2)], axis=2).reshape(rows.shape[0], -1)
    return dataclasses.replace(result, t=t, traces=traces)


def run_html(result) -> str:
    """Return the HTML of a :class:`~modelgen.runtime.Result`: a summary table and a small picture."""
    seconds = result.duration / 1000.0
    spikes = int(result.spike_t.size)
    rate = f", {spikes / result.n / seconds:.2f} Hz per neuron" if seconds > 0 and result.n else ""
    rows = [
        ("neurons", str(result.n)),
        ("duration", f"{result.duration:g} ms in {_plural(result.n_steps, 'step')} of {result.dt:g} ms"),
        ("method", html.escape(result.method)),
        ("spikes", f"{spikes}{rate}"),
        ("recorded", _recorded(result)),
    ]
    picture = _picture(lambda plots, ax: plots.plot_run(_envelope(result), ax=ax, max_traces=PREVIEW_TRACES))
    return f"<div><strong>{html.escape(result.model)}</strong>{_table(rows)}{picture}</div>"


def network_html(result) -> str:
    """Return the HTML of a :class:`~modelgen.network.NetworkResult`: populations, rates, a small raster."""
    head = "<tr><th>population</th><th>neurons</th><th>spikes</th><th>rate (Hz)</th><th>method</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(pop)}</td><td>{size}</td><td>{int((result.spike_pop == k).sum())}</td>"
        f"<td>{result.rate(pop):.2f}</td>"
        f"<td>{html.escape(result.methods.get(pop, ''))}</td></tr>"
        for k, (pop, size) in enumerate(zip(result.populations, result.sizes))
    )
    rows = [
        ("neurons", str(sum(result.sizes))),
        ("duration", f"{result.duration:g} ms in {_plural(result.n_steps, 'step')} of {result.dt:g} ms"),
        ("seed", str(result.seed)),
        ("recorded", _recorded(result)),
    ]
    picture = _picture(lambda plots, ax: plots.plot_network(result, ax=ax))
    return (
        f"<div><strong>{html.escape(result.network)}</strong><table>{head}{body}</table>{_table(rows)}{picture}</div>"
    )

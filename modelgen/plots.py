"""Pictures with matplotlib (the optional ``[plot]`` extra): run results, f-I curves, equations.

Every function builds a :class:`matplotlib.figure.Figure` with matplotlib's object API and returns
it (a notebook shows it, pyplot imported or not; nothing is left open in pyplot, and the backend
a notebook or program chose is never changed), or draws into the ``ax=`` it is given and returns
that axes' figure.
Given a ``path``, it also writes the figure there (.png, .svg or .pdf).
Nothing here needs a TeX installation: equations are drawn with matplotlib's mathtext.
Importing this module raises ImportError when matplotlib is missing.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["plot_run", "plot_network", "plot_fi", "render_equations", "save_figure", "unit_label"]

_FORMATS = (".png", ".svg", ".pdf")


def pretty_unit(unit: str) -> str:
    """Return a unit for people: ``uA/cm^2`` -> ``µA/cm²``."""
    pretty = unit.replace("uA", "µA").replace("uF", "µF").replace("uS", "µS").replace("uM", "µM").replace("um", "µm")
    return pretty.replace("^2", "²").replace("^3", "³").replace("^-1", "⁻¹")


def unit_label(name: str, unit: str) -> str:
    """Return an axis label like ``V (mV)`` or ``I_ext (µA/cm²)``."""
    return name if unit in ("", "1") else f"{name} ({pretty_unit(unit)})"


def _target(path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in _FORMATS:
        raise ValueError(f"{path}: choose a .png, .svg or .pdf file name")
    return path


def save_figure(fig: Figure, path: str | Path, dpi: float = 150) -> Path:
    """Write ``fig`` to ``path`` (.png, .svg or .pdf, made with its folder) and return the path."""
    path = _target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


class InlineFigure(Figure):
    """A Figure that a notebook shows even where pyplot's inline backend never loaded (nothing imported pyplot)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


def _colors(cmap: str, n: int, stop: float = 0.85) -> np.ndarray:
    return matplotlib.colormaps[cmap](np.linspace(0.0, stop, max(1, n)))


def plot_run(
    result,
    path: str | Path | None = None,
    *,
    ax=None,
    variables: list[str] | None = None,
    max_traces: int = 10,
    title: str | None = None,
) -> Figure:
    """Return a figure of a run: its inputs, the membrane potential (and other recorded variables), a spike raster.

    One panel per recorded variable (inputs first; ``variables`` chooses some), traces of at most
    ``max_traces`` neurons, and a raster of every neuron's spikes if the model has any; time is
    shared. Given ``ax``, draws the traces of ``variables`` (all of one unit; default: the membrane
    potential) into it, or the raster if nothing was recorded.
    """
    if path is not None:
        _target(path)  # a wrong suffix fails before drawing
    if ax is not None and variables is None:
        main = (result.metadata or {}).get("membrane_state")
        variables = [main] if main in result.traces else list(result.traces)[:1]
    names = _chosen(result, variables)
    if ax is not None:
        if names:
            _draw_traces(ax, result, names, max_traces)
        else:
            _draw_raster(ax, result)
        fig = ax.figure
    else:
        fig = _run_panels(result, names, max_traces)
        fig.suptitle(
            title or f"{result.model}: {result.n} neuron{'s' if result.n != 1 else ''}, {result.spike_t.size} spikes"
        )
    if path is not None:
        save_figure(fig, path)
    return fig


def _chosen(result, variables: list[str] | None) -> list[str]:
    """Return the recorded variables to draw: ``variables``, checked, or every recorded one, inputs first."""
    if variables is not None:
        unknown = [v for v in variables if v not in result.traces]
        if unknown:
            recorded = ", ".join(result.traces) or "nothing"
            raise ValueError(
                f"{', '.join(unknown)} {'was' if len(unknown) == 1 else 'were'} not recorded (recorded: {recorded})"
            )
        return list(variables)
    meta = result.metadata or {}
    input_names = set(meta.get("input_names", ()))
    return sorted(result.traces, key=lambda v: (v not in input_names, v != meta.get("membrane_state")))


def _run_panels(result, names: list[str], max_traces: int) -> Figure:
    meta = result.metadata or {}
    input_names = set(meta.get("input_names", ()))
    raster = result.spike_t.size > 0 or result.n > 1 or not names
    heights = [1.0 if v in input_names else 2.5 for v in names] + ([1.5] if raster else [])
    fig, axes = _stacked_axes(heights, width=8, margin=1.2)
    for ax, name in zip(axes, names):
        _draw_traces(ax, result, [name], max_traces, legend=False)
    shown = result.record_indices[:max_traces]
    if 1 < len(shown) <= 10 and names:
        main = meta.get("membrane_state")
        main_axis = axes[names.index(main)] if main in names else axes[0]
        main_axis.legend(loc="best", fontsize="small", ncol=min(5, len(shown)), framealpha=0.85)
    if raster:
        _draw_raster(axes[-1], result)
    for ax in axes[:-1]:
        ax.set_xlabel("")  # t is shared: labelled once, at the bottom
    axes[-1].set_xlim(result.t[0], result.t[-1])
    return fig


def _draw_traces(ax, result, names: list[str], max_traces: int, legend: bool = True) -> None:
    """Draw the traces of ``names`` (one unit) of at most ``max_traces`` neurons into ``ax``."""
    units = {result.units.get(name, "") for name in names}
    if len(units) > 1:
        raise ValueError(
            f"{', '.join(names)} have different units ({', '.join(sorted(units))}): draw them into separate axes"
        )
    shown = result.record_indices[:max_traces]
    colors = _colors("viridis", len(shown))
    for name in names:
        trace = result.traces[name]
        for row, (i, color) in enumerate(zip(shown, colors)):
            label = f"neuron {i}" if len(names) == 1 else f"{name}[{i}]"
            ax.plot(result.t, trace[row], lw=1.0, color=color, label=label)
    ax.set_ylabel(unit_label(", ".join(names), units.pop()))
    ax.set_xlabel("t (ms)")
    ax.set_xlim(result.t[0], result.t[-1])
    ax.grid(True, alpha=0.3)
    if legend and 1 < len(shown) * len(names) <= 10:
        ax.legend(loc="best", fontsize="small", framealpha=0.85)


def _draw_raster(ax, result) -> None:
    ax.plot(result.spike_t, result.spike_i, "|", color="black", markersize=max(2.0, min(8.0, 200 / result.n)))
    ax.set_ylabel("neuron")
    ax.set_xlabel("t (ms)")
    ax.set_ylim(-0.5, result.n - 0.5)
    ax.set_xlim(result.t[0], result.t[-1])
    if result.n <= 10:
        ax.set_yticks(range(result.n))
    ax.grid(True, axis="x", alpha=0.3)
    if result.spike_t.size == 0:
        ax.text(0.5, 0.5, "no spikes", transform=ax.transAxes, ha="center", va="center", color="gray")


def _stacked_axes(heights: list[float], width: float, margin: float) -> tuple[Figure, np.ndarray]:
    """Return a figure of panels one above the other, sharing t, with the given relative heights."""
    fig = InlineFigure(figsize=(width, margin + 1.3 * sum(heights)), layout="tight")
    axes = fig.subplots(len(heights), 1, sharex=True, gridspec_kw={"height_ratios": heights}, squeeze=False)[:, 0]
    return fig, axes


def plot_network(
    result, path: str | Path | None = None, *, ax=None, bin_ms: float = 5.0, max_traces: int = 5
) -> Figure:
    """Return a figure of a network run: a spike raster of every population (stacked), population rates, traces.

    Given ``ax``, draws the raster into it.
    """
    if path is not None:
        _target(path)
    if ax is not None:
        _draw_network_raster(ax, result)
        fig = ax.figure
    else:
        traces = list(result.traces)
        fig, axes = _stacked_axes([3.0, 1.2] + [1.8] * len(traces), width=9, margin=1.5)
        _draw_network_raster(axes[0], result)
        edges = np.arange(0.0, result.duration + bin_ms, bin_ms)
        for k, (pop, color) in enumerate(zip(result.populations, _population_colors(result))):
            _, t = result.spikes(pop)
            counts, _ = np.histogram(t, bins=edges)
            rate = counts / result.sizes[k] / (bin_ms / 1000.0)
            axes[1].step(edges[:-1], rate, where="post", color=color, lw=1.0, label=pop)
        axes[1].set_ylabel(f"rate (Hz)\n{bin_ms:g} ms bins")
        for ax_, name in zip(axes[2:], traces):
            for row in result.traces[name][:max_traces]:
                ax_.plot(result.t, row, lw=0.8)
            ax_.set_ylabel(unit_label(name, result.units.get(name, "")))
        for ax_ in axes:
            ax_.grid(True, alpha=0.3)
            ax_.set_xlabel("")
        axes[-1].set_xlabel("t (ms)")
        axes[-1].set_xlim(result.t[0], result.t[-1])
        rates = ", ".join(f"{p} {result.rate(p):.1f} Hz" for p in result.populations)
        fig.suptitle(f"{result.network}: {sum(result.sizes)} neurons, {result.spike_t.size} spikes ({rates})")
    if path is not None:
        save_figure(fig, path)
    return fig


def _population_colors(result) -> np.ndarray:
    return matplotlib.colormaps["tab10"](np.arange(len(result.populations)) % 10)


def _draw_network_raster(ax, result) -> None:
    """Draw every population's spikes into ``ax``, populations stacked in file order."""
    offsets = np.concatenate([[0], np.cumsum(result.sizes)])
    for k, (pop, color) in enumerate(zip(result.populations, _population_colors(result))):
        i, t = result.spikes(pop)
        ax.plot(t, i + offsets[k], ".", ms=1.0, color=color, label=f"{pop} ({result.sizes[k]})", rasterized=True)
    ax.set_ylabel("neuron")
    ax.set_xlabel("t (ms)")
    ax.set_ylim(-0.5, offsets[-1] - 0.5)
    ax.set_xlim(result.t[0], result.t[-1])
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize="small", markerscale=8, framealpha=0.85)


def plot_fi(table, path: str | Path | None = None, *, ax=None, title: str | None = None, max_lines: int = 12) -> Figure:
    """Return a figure of the firing rate against the swept input (the f-I curve), one line per other grid point."""
    if table.rate is None:
        raise ValueError("the model has no spike condition, so there is no firing rate to plot")
    if path is not None:
        _target(path)
    x_axis = next((a for a in table.axes if a.kind == "input"), table.axes[-1])
    others = [a for a in table.axes if a is not x_axis]
    if ax is None:
        fig = InlineFigure(figsize=(6, 4.2), layout="tight")
        ax = fig.add_subplot()
        fig.suptitle(title or "f-I curve")
    x = table.points[x_axis.name]
    keys = list(zip(*[table.points[a.name] for a in others])) if others else [()] * x.size
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    colors = _colors("viridis", min(len(groups), max_lines))
    for (key, idx), color in zip(list(groups.items())[:max_lines], colors):
        idx = np.array(idx)
        order = np.argsort(x[idx])
        label = ", ".join(f"{a.name} = {v:g} {pretty_unit(a.unit)}".rstrip() for a, v in zip(others, key)) or None
        ax.plot(x[idx][order], table.rate[idx][order], "o-", ms=3.5, lw=1.2, color=color, label=label)
    if others:
        ax.legend(fontsize="small", frameon=False)
        if len(groups) > max_lines:
            ax.set_title(f"(first {max_lines} of {len(groups)} curves)", fontsize="small", loc="right")
    ax.set_xlabel(unit_label(x_axis.name, x_axis.unit))
    ax.set_ylabel("firing rate (Hz)")
    ax.grid(True, alpha=0.3)
    transient = table.metadata.get("transient_ms", 0)
    span = table.metadata.get("duration_ms", 0) - transient
    if span:
        ax.set_title(
            f"rate over {span:g} ms" + (f" after {transient:g} ms" if transient else ""), fontsize="small", loc="left"
        )
    if path is not None:
        save_figure(ax.figure, path)
    return ax.figure


def _equation_lines(blocks) -> list[tuple[str, str, str]]:
    """Return (kind, text, note) lines to draw: a block title, or a mathtext formula with its note."""
    lines = []
    for block in blocks:
        lines.append(("title", block.title, ""))
        if block.kind == "table":
            cells = [rf"{name} = {value}" + (rf"\;{unit}" if unit else "") for name, value, unit in block.rows]
            for k in range(0, len(cells), 4):
                lines.append(("math", "$" + r"\qquad ".join(cells[k : k + 4]) + "$", ""))
        else:
            for lhs, rhs, note in block.rows:
                # mathtext sets \frac in text style (small); display-style fractions stay legible
                lhs, rhs = (
                    lhs.replace(r"\frac", r"\dfrac"),
                    rhs.replace(r"\frac", r"\dfrac").replace(r" \exp", r"\,\exp"),
                )
                lines.append(("math", f"${lhs} = {rhs}$" if lhs else f"${rhs}$", note))
    return lines


def render_equations(
    blocks, path: str | Path | None = None, title: str = "", fontsize: float = 13.0, dpi: int = 200
) -> Figure:
    """Return a figure of equation blocks (:func:`modelgen.latex.model_blocks`), drawn with mathtext.

    Each formula is measured first, so the picture is exactly as large as its contents.
    """
    if path is not None:
        _target(path)
    lines = _equation_lines(blocks)
    styles = {
        "heading": dict(fontsize=fontsize * 1.25, fontweight="bold"),
        "title": dict(fontsize=fontsize * 0.9, fontweight="bold", color="#335"),
        "math": dict(fontsize=fontsize),
        "note": dict(fontsize=fontsize * 0.8, color="#666", style="italic"),
    }
    items = ([("heading", title, "")] if title else []) + lines
    scratch = Figure(dpi=dpi)
    renderer = FigureCanvasAgg(scratch).get_renderer()

    def size(text: str, style: str) -> tuple[float, float]:
        t = scratch.text(0, 0, text, **styles[style])
        box = t.get_window_extent(renderer)
        t.remove()
        return box.width, box.height

    measured = []
    for kind, text, note in items:
        w, h = size(text, kind)
        nw = size(note, "note")[0] if note else 0.0
        measured.append((w, h, nw))
    margin, gap, indent = 0.25 * dpi, 0.09 * dpi, 0.2 * dpi
    # notes line up to the right of the widest formula that has one
    note_x = indent + max((w for (_, _, note), (w, _, _) in zip(items, measured) if note), default=0) + 0.35 * dpi
    width = max(
        max((indent if kind == "math" else 0) + w for (kind, _, _), (w, _, _) in zip(items, measured)),
        max((note_x + nw for (_, _, note), (_, _, nw) in zip(items, measured) if note), default=0),
    )
    heights = [
        h + gap * (2.2 if kind == "title" and i else 1.0)
        for i, ((kind, _, _), (_, h, _)) in enumerate(zip(items, measured))
    ]
    W, H = width + 2 * margin, sum(heights) + 2 * margin
    fig = InlineFigure(figsize=(W / dpi, H / dpi), dpi=dpi, facecolor="white")
    y = margin
    for (kind, text, note), (_, h, _), step in zip(items, measured, heights):
        y += step - h
        x = margin + (indent if kind == "math" else 0)
        fig.text(x / W, 1 - y / H, text, va="top", ha="left", **styles[kind])
        if note:
            fig.text((margin + note_x) / W, 1 - (y + h / 2) / H, note, va="center", ha="left", **styles["note"])
        y += h
    if path is not None:
        save_figure(fig, path, dpi=dpi)
    return fig

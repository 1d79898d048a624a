"""Ensembles of network runs: one run of a network per grid point (seeds × population parameters).

``modelgen sweep net.network --seed 1:100 --param E.tau_syn=3:7:1ms`` builds and runs the network
once per point: the seed draws its connectivity, initial values and Poisson drives, and
``POP.NAME`` sets a parameter of one population for every neuron. For each point the table
holds the chosen summaries of every population (firing rate and CV of the inter-spike
intervals by default). A chunk is a few points run one after another; chunks run here or on
Dask like a sweep's (:mod:`modelgen.sweep`, :mod:`modelgen.distributed`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import memory
from .diagnostics import Diagnostic, ModelError, Span
from .network import NetworkResult, NetworkSpec, build_network, parse_network_text
from .sweep import (
    MAX_GRID_POINTS,
    MAX_POINTS,
    Axis,
    ChunkedGrid,
    ChunkResult,
    chunk_costs,
    in_grid_order,
    parse_axis,
    table_csv,
)

__all__ = ["SUMMARIES", "EnsemblePlan", "EnsembleResult", "parse_seeds", "plan_ensemble"]


def _active(result: NetworkResult, population: str) -> float:
    i, _ = result.spikes(population)
    return np.unique(i).size / result.sizes[result.populations.index(population)]


# summary name -> (column heading, its value for one population of one run)
SUMMARIES: dict[str, tuple[str, Callable[[NetworkResult, str], float]]] = {
    "rate": ("rate (Hz)", lambda r, pop: r.rate(pop)),
    "cv": ("CV", lambda r, pop: r.cv_isi(pop)),
    "active": ("active fraction", _active),
    "spikes": ("spikes", lambda r, pop: float(r.spikes(pop)[0].size)),
}
DEFAULT_SUMMARIES = ("rate", "cv")

_SEED_RE = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*(?::\s*(\d+)\s*)?$")
_SEEDS_RE = re.compile(r"^\s*\d+\s*(,\s*\d+\s*)*$")


def parse_seeds(text: str) -> Axis | int:
    """Return the seeds written in ``text``: one (``7``), a range (``1:100``, ``1:100:2``, STOP included) or a list (``1,5,9``)."""
    m = _SEED_RE.match(text)
    if m:
        start, stop, step = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
        if step == 0 or stop < start:
            raise _error("seed", text, f"the seeds {text.strip()} are none", "write START:STOP or START:STOP:STEP")
        values = np.arange(start, stop + 1, step)
    elif _SEEDS_RE.match(text):
        values = np.array([int(v) for v in text.split(",")])
        if values.size == 1:
            return int(values[0])
    else:
        raise _error(
            "seed", text, f"`{text.strip()}` is not a seed", "write a whole number, a range 1:100 or a list 1,5,9"
        )
    if values.size > MAX_POINTS:
        raise _error("seed", text, f"{values.size} seeds are more than {MAX_POINTS}")
    return Axis("seed", "seed", values, "", 1.0)


def _error(name: str, text: str, message: str, hint: str = "") -> ModelError:
    return ModelError([Diagnostic("E501", Span(name, 1, 1, len(text), text), message, hint)])


@dataclass(frozen=True)
class EnsemblePlan(ChunkedGrid):
    """Runs of one network over a grid of seeds and population parameters, cut into chunks (picklable)."""

    spec: NetworkSpec
    axes: tuple[Axis, ...]  # "seed" (kind "seed") and "POP.NAME" (kind "parameter")
    seed: int  # the seed of every point when no axis sweeps it
    duration: object
    dt: object
    method: str | None
    out_dir: object
    max_memory: int | str | None
    populations: tuple[str, ...]
    summaries: tuple[str, ...] = DEFAULT_SUMMARIES
    chunk: int = 1
    fixed: dict = field(default_factory=dict)  # "POP.NAME" -> internal value, for every point
    backend: str = "numpy"

    def run_chunk(self, c: int, progress: Callable[[int, int], None] | None = None) -> ChunkResult:
        """Build and run the network at each point of chunk ``c``; return the summaries of its populations."""
        start = time.perf_counter()
        lo, hi = self.bounds(c)
        points = self.point_values(lo, hi)
        values = {f"{pop}.{s}": np.empty(hi - lo) for pop in self.populations for s in self.summaries}
        neuron_steps, metadata = 0, {}
        for k in range(hi - lo):
            seed = int(points["seed"][k]) if "seed" in points else self.seed
            net = build_network(
                self.spec, seed, None if self.max_memory is None else memory.parse_size(self.max_memory)
            )
            overrides = dict(self.fixed)
            overrides.update({a.name: points[a.name][k] * a.scale for a in self.axes if a.kind == "parameter"})
            for name, value in overrides.items():
                pop, param = name.split(".", 1)
                net.populations[pop].params[param] = float(value)
            result = net.run(self.duration, self.dt, self.out_dir, self.method, backend=self.backend)
            for pop in self.populations:
                for s in self.summaries:
                    values[f"{pop}.{s}"][k] = SUMMARIES[s][1](result, pop)
            neuron_steps += net.n_neurons * result.n_steps
            metadata = {
                "network": net.name,
                "methods": result.methods,
                "dt_ms": result.dt,
                "duration_ms": result.duration,
            }
            if progress is not None:
                progress(k + 1, hi - lo)
        return ChunkResult(c, values, metadata, neuron_steps, time.perf_counter() - start)

    def merge(self, chunks: dict[int, ChunkResult]) -> EnsembleResult:
        ordered = in_grid_order(self, chunks)
        joined = {key: np.concatenate([r.values[key] for r in ordered]) for key in ordered[0].values}
        metadata = dict(ordered[0].metadata)
        metadata.update(n=self.n, runs=self.n_chunks, chunk_points=self.chunk, **chunk_costs(ordered))
        return EnsembleResult(list(self.axes), self.point_values(0, self.n), joined, self, metadata)

    def description(self) -> dict:
        """Return what decides the ensemble's numbers, JSON-ready (a resumed ensemble must match it)."""
        return {
            "network": self.spec.name,
            "file": self.spec.file,
            "axes": [{"name": a.name, "unit": a.unit, "values": a.values.tolist()} for a in self.axes],
            "fixed": {k: float(v) for k, v in sorted(self.fixed.items())},
            "seed": self.seed,
            "duration": str(self.duration),
            "dt": str(self.dt),
            "method": self.method,
            "summaries": list(self.summaries),
            **({"backend": self.backend} if self.backend != "numpy" else {}),  # (numpy's as before this field)
        }


@dataclass
class EnsembleResult:
    """The table of an ensemble: one row per grid point, the summaries of every population."""

    axes: list[Axis]
    points: dict[str, np.ndarray]
    values: dict[str, np.ndarray]  # "POP.summary" -> value at each point
    plan: EnsemblePlan
    metadata: dict

    @property
    def columns(self) -> list[str]:
        cols = [f"{a.name} ({a.unit})" if a.unit not in ("", "1") else a.name for a in self.axes]
        return cols + [f"{p} {SUMMARIES[s][0]}" for p in self.plan.populations for s in self.plan.summaries]

    def rows(self) -> list[list[float]]:
        cols = [self.points[a.name] for a in self.axes]
        cols += [self.values[f"{p}.{s}"] for p in self.plan.populations for s in self.plan.summaries]
        return [[float(v) for v in r] for r in zip(*cols)]

    def to_csv(self) -> str:
        """Return the table as CSV (an empty CV where too few neurons spiked)."""
        return table_csv(self.columns, self.rows())


def plan_ensemble(
    path,
    seeds: Axis | int,
    params: dict[str, str],
    duration="1000 ms",
    dt="0.1 ms",
    method: str | None = None,
    out_dir=None,
    max_memory: int | str | None = None,
    summaries: tuple[str, ...] = DEFAULT_SUMMARIES,
    chunk_points: int | None = None,
    backend: str = "numpy",
) -> EnsemblePlan:
    """Return the ensemble of the network file at ``path`` over ``seeds`` and ``params`` (``POP.NAME`` -> range or value).

    The network is built once here, so that its mistakes and those of the options are
    reported before anything runs.
    """
    from . import language as L

    shown, text = L.read_source(path)
    spec = parse_network_text(text, shown)
    first_seed = int(seeds.values[0]) if isinstance(seeds, Axis) else seeds
    net = build_network(spec, first_seed)
    for s in summaries:
        if s not in SUMMARIES:
            raise _error("summary", s, f"unknown summary `{s}`", "choose from " + ", ".join(SUMMARIES))
    axes = [seeds] if isinstance(seeds, Axis) else []
    fixed = {}
    for name, value in params.items():
        pop, dot, param = name.partition(".")
        if not dot or pop not in net.populations:
            raise _error(
                name,
                f"{name}={value}",
                f"`{name}` is not POPULATION.PARAMETER of this network",
                "populations: " + ", ".join(net.populations),
            )
        model = net.populations[pop].model
        if param not in {p.name for p in model.model.parameters}:
            from .api import _unknown

            raise _unknown(f"parameter of population {pop}", param, [p.name for p in model.model.parameters])
        declared = model.model.parameter(param)
        axis = parse_axis(value, name, "parameter", declared)
        if axis is None:
            from .api import quantity

            fixed[name] = quantity(value, declared.dimension, name, declared.unit, declared.display_scale)
        else:
            axes.append(axis)
    if not axes:
        raise _error("seed", str(seeds), "nothing varies", "give seeds (--seed 1:100) or a range (--param E.NAME=…)")
    n = int(np.prod([a.values.size for a in axes]))
    if n > MAX_GRID_POINTS:
        raise ModelError([Diagnostic("E501", None, f"the ensemble has {n} points, more than {MAX_GRID_POINTS}")])
    return EnsemblePlan(
        spec=spec,
        axes=tuple(axes),
        seed=first_seed,
        duration=duration,
        dt=dt,
        method=method,
        out_dir=out_dir,
        max_memory=max_memory,
        populations=tuple(net.populations),
        summaries=tuple(summaries),
        chunk=max(1, min(n, chunk_points or 1)),
        fixed=fixed,
        backend=backend,
    )

"""The result of a network run: spikes of every population, recorded traces, and saving them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_file

__all__ = ["NetworkResult", "check_save_path"]


@dataclass
class NetworkResult:
    """Spikes of every population (and recorded traces) of a network run."""

    network: str
    populations: tuple[str, ...]
    sizes: tuple[int, ...]
    t: np.ndarray  # ms
    traces: dict[str, np.ndarray]  # "E.V" -> (n_recorded, n_times)
    units: dict[str, str]
    spike_pop: np.ndarray  # index into populations
    spike_i: np.ndarray  # neuron index within its population
    spike_t: np.ndarray  # ms
    dt: float
    duration: float
    wall_time: float
    synaptic_events: int
    methods: dict[str, str]
    seed: int

    def spikes(self, population: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (neuron indices, times in ms) of one population's spikes."""
        mask = self.spike_pop == self.populations.index(population)
        return self.spike_i[mask], self.spike_t[mask]

    def rate(self, population: str) -> float:
        """Mean firing rate of a population, Hz."""
        i, _ = self.spikes(population)
        n = self.sizes[self.populations.index(population)]
        return i.size / n / (self.duration / 1000.0)

    def cv_isi(self, population: str) -> float:
        """Mean coefficient of variation of inter-spike intervals (neurons with >= 3 spikes)."""
        i, t = self.spikes(population)
        order = np.lexsort((t, i))
        i, t = i[order], t[order]
        cvs = []
        for neuron in np.unique(i):
            isi = np.diff(t[i == neuron])
            if isi.size >= 2 and isi.mean() > 0:
                cvs.append(isi.std() / isi.mean())
        return float(np.mean(cvs)) if cvs else float("nan")

    @property
    def n_steps(self) -> int:
        return int(round(self.duration / self.dt))

    def summary(self) -> str:
        n = sum(self.sizes)
        parts = [f"{p}: {self.rate(p):.2f} Hz, CV {self.cv_isi(p):.2f}" for p in self.populations]
        steps_per_s = n * self.n_steps / self.wall_time if self.wall_time else float("inf")
        events = self.synaptic_events / self.wall_time if self.wall_time else float("inf")
        return (
            f"{self.network}: simulated {self.duration:g} ms in {self.n_steps} steps of {self.dt:g} ms, {n} neurons, "
            f"{self.spike_t.size} spike{'s' if self.spike_t.size != 1 else ''} ({'; '.join(parts)}); loop {self.wall_time:.3f} s, "
            f"{steps_per_s / 1e6:.2f} M neuron-steps/s, {events / 1e6:.2f} M synaptic events/s"
        )

    def recorded_neurons(self, name: str) -> np.ndarray:
        """Return the indices of the neurons whose trace ``name`` ("POP.VAR") holds: a population's first K."""
        return np.arange(self.traces[name].shape[0])

    def to_dataframe(self, what: str = "traces"):
        """Return a pandas DataFrame: the traces (index t in ms, columns ("POP.VAR", neuron)), or with
        ``what="spikes"`` one row per spike (population, neuron, t (ms)); see :mod:`modelgen.results`."""
        from ..results import to_dataframe

        return to_dataframe(self, what)

    def to_xarray(self):
        """Return the traces (dims ("POP.neuron", "t"), not copied) and spikes as an xarray Dataset."""
        from ..results import network_to_xarray

        return network_to_xarray(self)

    def plot(self, ax=None, **options):
        """Return a matplotlib Figure of the run: a raster of every population, their rates and the
        recorded traces, or draw the raster into ``ax``; options as :func:`modelgen.plots.plot_network`
        (``path=`` also saves it). Needs ``modelgen[plot]``."""
        from ..display import optional

        plots = optional("modelgen.plots", "plot", "NetworkResult.plot()")
        return plots.plot_network(self, ax=ax, **options)

    def _repr_html_(self) -> str:
        from ..display import network_html

        return network_html(self)

    def save(self, path) -> Path:
        """Write an .npz: t, spike_pop, spike_i, spike_t, populations, sizes, and "POP.VAR" traces
        (ValueError for a path not ending in .npz)."""
        check_save_path(path)
        path = Path(path)
        arrays = {
            "t": self.t,
            "spike_pop": self.spike_pop,
            "spike_i": self.spike_i,
            "spike_t": self.spike_t,
            "populations": np.array(self.populations),
            "sizes": np.array(self.sizes),
            "units": np.array([f"{k}={v}" for k, v in self.units.items()]),
        }
        arrays.update(self.traces)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:  # a failed save leaves an earlier file as it was
            np.savez(f, **arrays)
        return path


def check_save_path(path) -> None:
    """Raise ValueError unless ``path`` names a file a network's result can be saved as (``.npz``)."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        example = path.with_suffix(".npz") if path.name else "out.npz"
        raise ValueError(
            f"a network's result is saved as one .npz file (spikes, populations and traces), not as {str(path)!r}; "
            f"give a name ending in .npz, e.g. {example}"
        )

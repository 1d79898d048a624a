"""What the network benchmarks measure, one definition for every simulator: firing statistics, synaptic events, memory.

Needs numpy only, so that the Brian2 script (run in Brian2's own environment) and the modelgen
benchmarks measure the same way. The CV is that of ``modelgen.network.NetworkResult.cv_isi``:
the mean over neurons with at least two inter-spike intervals of std(ISI) / mean(ISI).
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import numpy as np


def rate_and_cv(neurons: np.ndarray, times_ms: np.ndarray, n: int, duration_ms: float) -> tuple[float, float]:
    """Return (mean rate in Hz, mean ISI CV) of ``n`` neurons' spikes over ``duration_ms`` (CV nan if no neuron has 3 spikes)."""
    neurons, times_ms = np.asarray(neurons), np.asarray(times_ms, dtype=float)
    rate = neurons.size / n / (duration_ms / 1000.0)
    order = np.lexsort((times_ms, neurons))
    neurons, times_ms = neurons[order], times_ms[order]
    cvs = []
    starts = np.flatnonzero(np.r_[True, neurons[1:] != neurons[:-1]]) if neurons.size else np.zeros(0, dtype=int)
    for a, b in zip(starts, np.r_[starts[1:], neurons.size]):
        isi = np.diff(times_ms[a:b])
        if isi.size >= 2 and isi.mean() > 0:
            cvs.append(isi.std() / isi.mean())
    return rate, float(np.mean(cvs)) if cvs else float("nan")


def events_of(spiking: np.ndarray, out_degree: np.ndarray) -> int:
    """Return the synaptic events the spikes of neurons ``spiking`` cause: the sum of their out-degrees."""
    return int(out_degree[np.asarray(spiking, dtype=np.int64)].sum())


def peak_rss_mb() -> float:
    """Return this process's peak resident memory so far, MB.

    Linux: VmHWM of /proc/self/status, which starts afresh at exec (ru_maxrss does not: a child
    started by a larger parent reports the parent's peak). Elsewhere: ru_maxrss (KiB on Linux, bytes on macOS).
    """
    for line in _proc_status():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def rss_mb() -> float:
    """Return this process's resident memory now, MB (Linux: VmRSS of /proc/self/status; elsewhere its peak so far)."""
    for line in _proc_status():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return peak_rss_mb()


def _proc_status() -> list[str]:
    try:
        return Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return []

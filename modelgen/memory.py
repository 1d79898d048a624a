"""Memory estimates: what a run, a network or an input file will need, checked before allocating.

Every place that allocates in proportion to user input (neurons, steps, synapses, samples of
a file) first adds up what it is about to allocate and calls :func:`require`, which raises
:class:`MemoryLimitError` (naming the estimate, the limit and what to change) when that would
exceed the limit: an explicit ``max_memory`` (``--max-memory``), else the memory this machine
has available now (``MemAvailable`` of ``/proc/meminfo``, or a container's cgroup limit if
lower). Estimates are upper bounds of the peak, measured on the library's models (see the
constants below); spikes, whose number nobody knows before the run, are not counted.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

__all__ = [
    "MemoryLimitError",
    "available_memory",
    "csv_values",
    "format_size",
    "parse_size",
    "require",
    "run_advice",
    "run_needs",
    "traces_recorded",
    "derives_from_states",
    "DERIVE_EXTRA_BYTES",
]

FLOAT = 8  # bytes of a float64 (the time axis, recordings, per-neuron values)
# stepping one neuron: its states plus the temporaries of the generated step (measured with
# tracemalloc on every library model and method: at most 8*(states + 4.6) bytes per neuron)
STEP_TEMPORARIES = 5
CHECK_FROM = 64 * 2**20  # below this, a run is not checked against the available memory (no /proc read)


class MemoryLimitError(MemoryError):
    """A run, network or input file would need more memory than allowed; nothing was allocated."""


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)(?:[eE]([-+]?\d+))?\s*([a-zA-Z]*)\s*$")
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_UNITS.update({u + "ib": f for u, f in _UNITS.items() if u not in ("", "b")})
_UNITS.update({"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12})


def parse_size(value: int | float | str) -> int:
    """Return a size in bytes: a number, or text such as ``4GiB``, ``500MB``, ``2G`` (G, GiB: 2**30; GB: 10**9)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        m = _SIZE_RE.match(str(value))
        unit = m.group(3).lower() if m else ""
        if m is None or unit not in _UNITS:
            raise ValueError(f"`{value}` is not a memory size; write e.g. 4GiB, 500MB or 2G")
        number = float(m.group(1) + (f"e{m.group(2)}" if m.group(2) else "")) * _UNITS[unit]
    if not number > 0 or math.isinf(number):
        raise ValueError(f"a memory size must be positive, not `{value}`")
    return int(number)


def format_size(n: float) -> str:
    """Return a byte count for people: ``512 B``, ``7.45 GiB``, ``728 TiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def available_memory() -> int | None:
    """Return the bytes this process can still allocate without swapping, or None if unknown."""
    found = []
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, OSError, ValueError):
            pass
    try:  # a container's own limit (cgroup v2), if lower than the machine's
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return max(0, min(found)) if found else None


def require(needs: dict[str, int], what: str, advice: str, limit: int | None = None, held: int = 0) -> None:
    """Raise MemoryLimitError if ``needs`` (part -> bytes) exceed ``limit`` (None: the available memory).

    ``held`` is memory already in use by the same job (counted against an explicit limit only:
    the available memory has already shrunk by it). ``what`` names the job ("this run"),
    ``advice`` says what to change.
    """
    total = sum(needs.values())
    if limit is not None:
        if held + total <= limit:
            return
        allowed = f"more than the memory limit of {format_size(limit)}"
        if held:
            allowed += f" ({format_size(held)} of it already in use)"
        tail = ""
    else:
        if total < CHECK_FROM:
            return
        free = available_memory()
        if free is None or total <= free:
            return
        allowed = f"more than the {format_size(free)} of memory available"
        tail = ", or raise --max-memory if more will be free"
    parts = [f"{name} {format_size(size)}" for name, size in needs.items() if size]
    detail = f" ({', '.join(parts)})" if len(parts) > 1 else ""
    raise MemoryLimitError(f"{what} needs about {format_size(total)}{detail}, {allowed}; {advice}{tail}")


DERIVE_EXTRA_BYTES = 2**29  # at most this much of unasked states' traces is kept to compute recorded currents


def derives_from_states(record, state_names, trace_bytes: int, always: bool = False) -> bool:
    """Return whether a run computes the recorded variables that are not states (currents, expressions,
    inputs) after the run from the traces of every state, which it then keeps: where one is asked
    for, unless the states not asked for would take more than DERIVE_EXTRA_BYTES (``trace_bytes``:
    the size of one variable's traces; the run then samples them step by step) and not ``always``
    (a compiled network computes them so at any size)."""
    unasked = sum(1 for s in state_names if s not in record)
    return any(v not in state_names for v in record) and (always or unasked * trace_bytes <= DERIVE_EXTRA_BYTES)


def traces_recorded(record, state_names, trace_bytes: int = 0, always: bool = False) -> int:
    """Return how many traces a run keeps per recorded neuron: one per variable asked for, and one per
    state not asked for where the others are computed from the states' traces (derives_from_states)."""
    asked = list(dict.fromkeys(record))
    if not derives_from_states(asked, state_names, trace_bytes, always):
        return len(asked)
    return len(asked) + sum(1 for s in state_names if s not in asked)


def run_needs(
    n: int, n_states: int, n_times: int, recorded: int, per_neuron: int = 0, itemsize: int = FLOAT
) -> dict[str, int]:
    """Return what simulating a population needs: part -> bytes.

    ``n`` neurons with ``n_states`` states of ``itemsize`` bytes, ``n_times`` samples (steps + 1),
    ``recorded`` traces (variables times neurons) and ``per_neuron`` arrays of parameters or inputs.
    """
    return {
        "neuron state and stepping": n * (n_states * itemsize + STEP_TEMPORARIES * FLOAT),
        "per-neuron values": n * per_neuron * FLOAT,
        "recording": recorded * n_times * FLOAT,
        "time axis": n_times * FLOAT,
    }


ADVICE = {  # part of a run -> what makes it smaller (CLI options, as most runs start there)
    "neuron state and stepping": "simulate fewer neurons (--n)",
    "per-neuron values": "simulate fewer neurons (--n)",
    "recording": "record fewer neurons (--record-neurons) or variables (--record), "
    "or simulate fewer steps (a shorter --duration or a larger --dt)",
    "synaptic buffers": "use shorter delays or fewer neurons",
    "time axis": "simulate fewer steps (a shorter --duration or a larger --dt)",
}


def run_advice(needs: dict[str, int], instead: dict[str, str] | None = None) -> str:
    """Return what to change to make the largest part of ``needs`` smaller (``instead``: other words per part)."""
    largest = max(needs, key=needs.get)
    return {**ADVICE, **(instead or {})}.get(largest, "ask for less")


SAMPLE = 2**20  # bytes read from the start of a text file to estimate what it holds


_CELL = re.compile(rb"[^,;\s]+")


def csv_values(path: Path, size: int) -> int:
    """Return an estimate (from its first MiB) of how many numbers the text table at ``path`` holds.

    Every word counts (a header's too). Without a line end in that sample, every other byte
    counts as a number (the most a table of single digits can hold).
    """
    with open(path, "rb") as f:
        head = f.read(min(SAMPLE, size))
    end = len(head) if len(head) >= size else head.rfind(b"\n") + 1
    if end <= 0:
        return size // 2 + 1
    cells = sum(1 for _ in _CELL.finditer(head, 0, end))
    return math.ceil(cells * max(1.0, size / end))

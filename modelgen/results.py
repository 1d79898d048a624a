"""Saving and loading results: .npz, .csv traces, and results folders with JSON metadata.

A results folder holds ``result.npz`` (everything), ``traces.csv`` and ``spikes.csv`` (for
spreadsheets and other tools) and ``metadata.json``: the model, its sha256 and build hash,
modelgen's version, the method, dt, duration, n, the seed and every parameter and input as
given, so a run can be repeated. :func:`load_result` reads a folder or an .npz back.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np

from .atomic import atomic_file, atomic_folder
from .display import optional

__all__ = ["save_result", "load_result", "result_metadata", "to_dataframe", "to_xarray", "network_to_xarray"]

_METADATA_KEY = "_metadata"  # model names never start with "_", so this cannot clash with a variable


def result_metadata(result) -> dict:
    """Return everything needed to interpret and repeat a run, JSON-ready."""
    meta = dict(result.metadata or {})
    meta.update(
        model=result.model,
        n=int(result.n),
        dt_ms=float(result.dt),
        duration_ms=float(result.duration),
        method=result.method,
        recorded={name: result.units.get(name, "") for name in result.traces},
        record_indices=[int(i) for i in result.record_indices],
        spikes=int(result.spike_t.size),
        wall_time_s=float(result.wall_time),
    )
    meta.setdefault("saved_at", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    return meta


# the arrays of an .npz besides the traces; a trace whose name is one of these is stored as
# "_trace_<name>" (model names never start with "_", so that cannot clash either)
_BUILTIN_ARRAYS = ("t", "spike_i", "spike_t", "record_indices", "units", _METADATA_KEY)
_TRACE_PREFIX = "_trace_"
# the files of a results folder: saving over a folder that holds anything else is refused
RESULT_FILES = ("result.npz", "traces.csv", "spikes.csv", "metadata.json")


def save_result(result, path) -> Path:
    """Write ``result`` by the path's form: ``.npz``, ``.csv`` (traces), or else a results folder.

    Nothing is written in place: a save that fails (a full disk, an interrupt, a kill) leaves an
    earlier result under the same name as it was (see :mod:`modelgen.atomic`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".npz", ".csv"):
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".npz":
            with atomic_file(path) as f:
                _write_npz(result, f)
        else:
            with atomic_file(path, "w", encoding="utf-8") as f:
                _write_traces_csv(result, f)
        return path
    if path.exists():
        if not path.is_dir():
            raise FileExistsError(f"{path} exists and is not a folder; save to .npz, .csv or a folder")
        foreign = sorted(p.name for p in path.iterdir() if p.name not in RESULT_FILES)
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise FileExistsError(
                f"{path} holds files that are not a saved result ({shown}); "
                "save to a new folder (a results folder is replaced whole when saved again)"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(path) as folder:
        with open(folder / "result.npz", "wb") as f:
            _write_npz(result, f)
        with open(folder / "traces.csv", "w", encoding="utf-8", newline="") as f:
            _write_traces_csv(result, f)
        with open(folder / "spikes.csv", "w", encoding="utf-8", newline="") as f:
            _write_spikes_csv(result, f)
        (folder / "metadata.json").write_text(
            json.dumps(result_metadata(result), indent=2, default=str) + "\n", encoding="utf-8"
        )
    return path


def trace_key(name: str) -> str:
    """Return the .npz key of the trace of variable ``name``."""
    return _TRACE_PREFIX + name if name in _BUILTIN_ARRAYS else name


def _write_npz(result, f) -> None:
    arrays = {
        "t": result.t,
        "spike_i": result.spike_i,
        "spike_t": result.spike_t,
        "record_indices": result.record_indices,
        "units": np.array([f"{k}={v}" for k, v in result.units.items()]),
        _METADATA_KEY: np.array(json.dumps(result_metadata(result), default=str)),
    }
    for name, trace in result.traces.items():
        arrays[trace_key(name)] = trace
    np.savez(f, **arrays)


def _header(name: str, unit: str) -> str:
    return f"{name} ({unit})" if unit not in ("", "1") else name


def _write_traces_csv(result, f) -> None:
    """Write one row per time: t (ms), then every recorded variable of every recorded neuron."""
    columns, header = [result.t], ["t (ms)"]
    for name, trace in result.traces.items():
        unit = result.units.get(name, "")
        for row, i in enumerate(result.record_indices):
            columns.append(trace[row])
            header.append(_header(f"{name}[{i}]", unit))
    np.savetxt(f, np.column_stack(columns), delimiter=",", header=",".join(header), comments="", fmt="%.10g")


def _write_spikes_csv(result, f) -> None:
    f.write("neuron,t (ms)\n")
    for i, t in zip(result.spike_i, result.spike_t):
        f.write(f"{int(i)},{t:.10g}\n")


def load_result(path):
    """Return the :class:`~modelgen.runtime.Result` saved at ``path`` (an .npz or a results folder)."""
    from .runtime import Result

    path = Path(path)
    if path.is_dir():
        path = path / "result.npz"
    with np.load(path, allow_pickle=False) as data:
        units = dict(entry.split("=", 1) for entry in data["units"].tolist())
        meta = json.loads(str(data[_METADATA_KEY])) if _METADATA_KEY in data.files else {}
        traces = {key.removeprefix(_TRACE_PREFIX): data[key] for key in data.files if key not in _BUILTIN_ARRAYS}
        t = data["t"]
        return Result(
            model=meta.get("model", ""),
            t=t,
            traces=traces,
            units=units,
            record_indices=data["record_indices"],
            spike_i=data["spike_i"],
            spike_t=data["spike_t"],
            n=int(meta.get("n", int(data["record_indices"].max()) + 1 if data["record_indices"].size else 1)),
            dt=float(meta.get("dt_ms", t[1] - t[0] if t.size > 1 else 0.0)),
            duration=float(meta.get("duration_ms", t[-1])),
            method=meta.get("method", ""),
            wall_time=float(meta.get("wall_time_s", 0.0)),
            metadata=meta,
        )


def to_xarray(result):
    """Return an ``xarray.Dataset``: one (neuron, t) variable per recorded trace (no copy), spikes, metadata."""
    xr = optional("xarray", "data", "to_xarray()")
    data_vars = {
        name: (("neuron", "t"), trace, {"units": result.units.get(name, "")}) for name, trace in result.traces.items()
    }
    data_vars.update(_spike_variables(result))
    coords = {"t": ("t", result.t, {"units": "ms"}), "neuron": ("neuron", result.record_indices)}
    attrs = {"model": result.model, "method": result.method, "dt_ms": result.dt, "n": result.n}
    attrs["metadata"] = json.dumps(result_metadata(result), default=str)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def network_to_xarray(result):
    """Return an ``xarray.Dataset`` of a network run: one ("POP.neuron", t) variable per "POP.VAR"
    trace (no copy; a population's recorded neurons are its first K), spikes with their population,
    and the run's metadata."""
    xr = optional("xarray", "data", "to_xarray()")
    data_vars, coords = {}, {"t": ("t", result.t, {"units": "ms"})}
    for name, trace in result.traces.items():
        dim = name.split(".", 1)[0] + ".neuron"
        coords[dim] = (dim, result.recorded_neurons(name))
        data_vars[name] = ((dim, "t"), trace, {"units": result.units.get(name, "")})
    data_vars.update(_spike_variables(result))
    data_vars["spike_population"] = (("spike",), np.asarray(result.populations, dtype=str)[result.spike_pop])
    meta = {
        "network": result.network,
        "populations": dict(zip(result.populations, map(int, result.sizes))),
        "methods": result.methods,
        "dt_ms": float(result.dt),
        "duration_ms": float(result.duration),
        "seed": int(result.seed),
        "recorded": {name: result.units.get(name, "") for name in result.traces},
        "spikes": int(result.spike_t.size),
        "synaptic_events": int(result.synaptic_events),
        "wall_time_s": float(result.wall_time),
    }
    attrs = {"network": result.network, "dt_ms": result.dt, "duration_ms": result.duration, "seed": result.seed}
    attrs["metadata"] = json.dumps(meta)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _spike_variables(result) -> dict:
    return {"spike_neuron": (("spike",), result.spike_i), "spike_time": (("spike",), result.spike_t, {"units": "ms"})}


def to_dataframe(result, what: str = "traces"):
    """Return a ``pandas.DataFrame`` of a run or network run.

    ``what="traces"``: index t (ms), one column per (variable, neuron), units in ``frame.attrs``.
    With one recorded variable the frame is a view of the trace (no copy); several variables
    are joined into one block, which copies them once. ``what="spikes"``: one row per spike,
    columns neuron and t (ms), with population first for a network.
    """
    pd = optional("pandas", "data", "to_dataframe()")
    if what == "spikes":
        return _spikes_frame(pd, result)
    if what != "traces":
        raise ValueError(f"to_dataframe(what={what!r}): choose 'traces' or 'spikes'")
    names = list(result.traces)
    if len(names) == 1:
        values = result.traces[names[0]].T
    elif names:
        values = np.concatenate([result.traces[n] for n in names], axis=0).T
    else:
        values = np.empty((result.t.size, 0))
    columns = pd.MultiIndex.from_tuples(
        [(name, int(i)) for name in names for i in result.recorded_neurons(name)], names=["variable", "neuron"]
    )
    index = pd.Index(result.t, name="t (ms)")
    frame = pd.DataFrame(values, index=index, columns=columns, copy=False)
    frame.attrs["units"] = dict(result.units)
    return frame


def _spikes_frame(pd, result):
    columns = {"neuron": result.spike_i, "t (ms)": result.spike_t}
    populations = getattr(result, "populations", None)  # a network run
    if populations is not None:
        population = pd.Categorical.from_codes(result.spike_pop, categories=list(populations))
        columns = {"population": population, **columns}
    return pd.DataFrame(columns)

"""Validate the cortical microcircuit (models/microcircuit.network) against NEST's published rates.

    python benchmarks/microcircuit.py                       # full size, 1.1 s biological (numpy: long)
    python benchmarks/microcircuit.py --scale 0.02 --duration 200ms --transient 100ms
    python benchmarks/microcircuit.py --backend numba --dtype float32 --json out.json

Builds the network (timed apart from the run; peak memory from ``resource.getrusage``), runs it
for ``--transient`` + ``--duration`` at dt = 0.1 ms (NEST's resolution), and prints each
population's rate over ``--duration`` (the transient dropped) against the reference, with the
relative error, and the real-time factor (wall time of the run / biological time simulated).

Reference rates: NEST's example pynest/examples/Potjans_2014/network_params.py, ``full_mean_rates``
(Hz; "obtained by running this PyNEST microcircuit ... with N_scaling and K_scaling set to 1"),
i.e. the full-size network with its Poisson background and NEST's optimized initial V — the
drive models/microcircuit.network uses. (The paper's own figures also use Poisson input; DC
drive gives somewhat different rates and is not compared here.)

``--scale s`` (0 < s <= 1) scales as NEST's example does with N_scaling = K_scaling = s: every
population's n by s (rounded); the connection probabilities are kept, so the number of
synapses of each projection scales by s^2 and every in-degree by s (also the Poisson
drive's K_ext: its rate times s); weights (recurrent and Poisson) are divided by sqrt(s) so
the input's variance stays; and the mean input thus lost, (1 - sqrt(s)) * tau_syn * sum_j
J_ij K_ij nu_j (with the reference rates nu_j) plus the same for the Poisson drive, is given
back as a DC current I_ext per population (NEST's adjust_weights_and_input_to_synapse_scaling).

``--backend``/``--dtype`` other than numpy/float64 need ``Network.run(..., backend=, dtype=)``;
where this modelgen lacks them the run is reported as unavailable and skipped (exit status 0).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import resource
import sys
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from modelgen import language as L
from modelgen.model import lower_constant
from modelgen.network import build_network, parse_network_text
from modelgen.network.build import synapses_for_connection_probability
from modelgen.network.parse import Item, NetStatement, NetworkSpec
from modelgen.units import unit_text_scale

ROOT = Path(__file__).resolve().parent.parent
NETWORK = ROOT / "models" / "microcircuit.network"
# NEST 3's example, network_params.py "full_mean_rates" (Hz), Poisson background, full size
REFERENCE_RATES = {
    "L23E": 0.903,
    "L23I": 2.965,
    "L4E": 4.414,
    "L4I": 5.876,
    "L5E": 7.569,
    "L5I": 8.633,
    "L6E": 1.105,
    "L6I": 7.829,
}
TAU_SYN = 0.5  # ms, the synaptic time constant of iaf_psc_exp.model (for the DC that scaling gives back)


def _times(node, factor: float):
    """Return the expression ``node * factor``."""
    span = L.node_extent(node) or node.span
    return L.Binary("*", node, L.Num(Fraction(factor), span), span)


def _scaled_value(node, factor: float):
    """Return a constant or a distribution (arguments and min/max) times ``factor``."""
    if isinstance(node, L.Call):
        args = tuple(
            replace(a, value=_times(a.value, factor)) if isinstance(a, Item) else _times(a, factor) for a in node.args
        )
        return replace(node, args=args)
    return _times(node, factor)


def _constant(node) -> float:
    """Return a constant of the file, in modelgen's internal units."""
    return lower_constant(node, "<microcircuit>")[0]


def _mean(node) -> float:
    """Return the mean of a constant or a normal()/uniform() of the file, in internal units."""
    if isinstance(node, L.Call):
        a, b = (_constant(x) for x in node.args[:2])
        return a if node.func == "normal" else (a + b) / 2
    return _constant(node)


def scaled_spec(spec: NetworkSpec, s: float, rates: dict[str, float]) -> NetworkSpec:
    """Return the microcircuit scaled by ``s`` as the module docstring says (``s = 1``: unchanged)."""
    if s == 1:
        return spec
    sizes = {st.name: int(_constant(st.item("n").value)) for st in spec.of_kind("population")}
    lost = dict.fromkeys(sizes, 0.0)  # mean input per ms lost per target population, internal units
    statements = []
    for st in spec.statements:
        items = list(st.items)
        if st.kind == "population":
            n = max(1, round(sizes[st.name] * s))
            items = [replace(i, value=L.Num(Fraction(n), i.span)) if i.key == "n" else i for i in items]
        elif st.kind == "connect":
            rule = st.item("rule").value
            c = _constant(next(a for a in rule.args if isinstance(a, Item)).value)
            indegree = synapses_for_connection_probability(c, sizes[st.source], sizes[st.name]) / sizes[st.name]
            lost[st.name] += _mean(st.item("weight").value) * indegree * rates[st.source] / 1000
            items = [
                replace(i, value=_scaled_value(i.value, 1 / math.sqrt(s))) if i.key == "weight" else i for i in items
            ]
        elif st.kind == "poisson":
            lost[st.name] += _mean(st.item("weight").value) * _constant(st.item("rate").value)
            items = [
                replace(i, value=_times(i.value, s if i.key == "rate" else 1 / math.sqrt(s)))
                if i.key in ("rate", "weight")
                else i
                for i in items
            ]
        statements.append(replace(st, items=tuple(items)))
    pA = float(unit_text_scale("pA")[1])  # one pA in internal units
    for name, per_ms in lost.items():
        dc = (1 - math.sqrt(s)) * TAU_SYN * per_ms / pA
        value = L.parse_expression(f"{dc!r} pA", "<scaling>")
        span = spec.statements[0].span
        statements.append(NetStatement("input", span, name, span, items=(Item("I_ext", value, span),)))
    return replace(spec, statements=tuple(statements))


def _peak_rss() -> int:
    """Return this process's peak resident memory so far, in bytes (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_kwargs(backend: str, dtype: str) -> dict | None:
    """Return the backend arguments of Network.run, or None where this modelgen cannot run them."""
    from modelgen.network import Network

    if "backend" in inspect.signature(Network.run).parameters:
        return {"backend": backend, "dtype": dtype}
    return {} if (backend, dtype) == ("numpy", "float64") else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", default=str(NETWORK))
    ap.add_argument("--scale", type=float, default=1.0, help="N and in-degrees times s (0 < s <= 1)")
    ap.add_argument("--duration", default="1000ms", help="time over which rates are measured")
    ap.add_argument("--transient", default="100ms", help="simulated first and dropped")
    ap.add_argument("--dt", type=float, default=0.1, help="ms")
    ap.add_argument("--backend", default="numpy", choices=["numpy", "numba", "cuda"])
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    if not 0 < args.scale <= 1:
        ap.error("--scale must lie in (0, 1]")
    from modelgen.api import quantity
    from modelgen.units import TIME

    duration = quantity(args.duration, TIME, "duration", "ms")
    transient = quantity(args.transient, TIME, "transient", "ms")
    out = {
        "file": args.file,
        "scale": args.scale,
        "backend": args.backend,
        "dtype": args.dtype,
        "dt_ms": args.dt,
        "seed": args.seed,
        "duration_ms": duration,
        "transient_ms": transient,
    }
    kwargs = run_kwargs(args.backend, args.dtype)
    if kwargs is None:
        out["status"] = "unavailable"
        print(f"backend {args.backend} / {args.dtype}: unavailable for networks in this modelgen; skipped")
        return _finish(out, args.json)

    spec = scaled_spec(parse_network_text(Path(args.file).read_text(), args.file), args.scale, REFERENCE_RATES)
    start = time.perf_counter()
    net = build_network(spec, seed=args.seed)
    out["build_s"] = time.perf_counter() - start
    out["build_peak_rss_bytes"] = _peak_rss()
    out["neurons"] = net.n_neurons
    out["synapses"] = net.n_synapses
    out["connectivity_bytes"] = sum(p.nbytes for p in net.projections)
    print(
        f"built {net.n_neurons:,} neurons, {net.n_synapses:,} synapses in {out['build_s']:.1f} s "
        f"(connectivity {out['connectivity_bytes'] / 2**30:.2f} GiB, peak RSS {out['build_peak_rss_bytes'] / 2**30:.2f} GiB)"
    )
    try:
        result = net.run(transient + duration, args.dt, **kwargs)
    except (ValueError, NotImplementedError) as e:  # a backend that cannot run networks says so
        out["status"] = f"unavailable: {e}"
        print(f"backend {args.backend} / {args.dtype}: unavailable ({e}); skipped")
        return _finish(out, args.json)
    out["status"] = "ok"
    out["run_wall_s"] = result.wall_time
    out["real_time_factor"] = result.wall_time / ((transient + duration) / 1000)
    out["peak_rss_bytes"] = _peak_rss()
    out["synaptic_events"] = result.synaptic_events
    late = result.spike_t > transient
    counts = np.bincount(result.spike_pop[late], minlength=len(result.populations))
    rows = {}
    print(f"{'population':>10} {'rate (Hz)':>10} {'NEST (Hz)':>10} {'rel. error':>10}")
    for i, name in enumerate(result.populations):
        rate = counts[i] / result.sizes[i] / (duration / 1000)
        ref = REFERENCE_RATES.get(name)
        err = (rate - ref) / ref if ref else None
        rows[name] = {"rate_hz": rate, "reference_hz": ref, "relative_error": err}
        print(f"{name:>10} {rate:10.3f} {ref:10.3f} {err:+10.1%}")
    out["populations"] = rows
    out["max_abs_relative_error"] = max(abs(r["relative_error"]) for r in rows.values())
    print(
        f"run: {result.wall_time:.1f} s wall for {transient + duration:g} ms: real-time factor "
        f"{out['real_time_factor']:.1f}; peak RSS {out['peak_rss_bytes'] / 2**30:.2f} GiB"
    )
    return _finish(out, args.json)


def _finish(out: dict, path: str | None) -> int:
    if path:
        Path(path).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

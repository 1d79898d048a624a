"""The numba backend's network program: a network's layout -> one module whose compiled loop makes
many steps of every population, delivering spikes and drawing drives in compiled code.

Each population's step is the per-neuron kernel's (the model module's data, from
:meth:`NumpyBackend.module_context`: the step's lines on floats, its values, its event), laid out by
``network.py.j2`` with its receptors read from ring buffers; the layout (what is where: populations,
rings, projections, drives, recorded states) comes from :mod:`modelgen.network.compiled`.
"""

from __future__ import annotations

from pathlib import Path

from ... import __version__
from ...integrity import TEXT_HASH_PLACEHOLDER, check_generated_text, seal
from ...optimise import step_program
from ..base import python_names, receptor_statements, template_environment
from ..numpy.backend import scalar_block
from .printer import NumbaPrinter

__all__ = ["generate_network"]

FOLDER = Path(__file__).parent
# delivering a spike, the synapses of the spike this many ahead are fetched (and where they are, twice as far)
PREFETCH_AHEAD = 4
# run_steps_threaded (the parts on numba's threads) only for networks of at most this many projections:
# numba compiles a threaded loop's body anew, in a time that grows steeply with the arrays it takes
# (CUBA's 4 projections: seconds; the microcircuit's 64: over ten minutes, so it is stepped from Python
# instead, its parts on a pool of threads: run_step_piece, and STEPPED_FROM_PYTHON_FROM in network/compiled.py)
THREADED_MAX_PROJECTIONS = 8


def generate_network(backend, layout, build_hash: str) -> str:
    """Return the text of the network module of ``layout`` (see :class:`modelgen.network.compiled.Layout`)."""
    env = template_environment(FOLDER)
    populations = []
    helpers: set[str] = set()  # the branch-free functions that the printed lines call
    kernels: dict[tuple, dict] = {}  # (model module, receptors) -> the first population of it
    for pop in layout.populations:
        neuron = pop.model  # api.NeuronModel
        plan = neuron.plan(pop.method)
        ctx = backend.module_context(
            neuron.model, neuron.derivation, plan, neuron.build_hash(pop.method, "numba"), None
        )
        printer = NumbaPrinter(python_names(neuron.model))
        program = step_program(neuron.model, neuron.derivation, plan, python_names(neuron.model))
        lines = scalar_block(program, printer, {"arg": ctx["arg"]}, inputs="network")
        weights = NumbaPrinter()  # the factors' names are renamed already
        rings = [
            {
                "index": r.index,
                "receptor": r.receptor,
                "statements": receptor_statements(neuron.model, r.receptor, weights),
            }
            for r in layout.rings
            if r.population == pop.index
        ]
        helpers |= printer.helpers | weights.helpers
        state_names = [name for name, _ in ctx["states"]]
        place = {
            "name": pop.name,
            "index": pop.index,
            "n": pop.n,
            "model_name": neuron.model.name,
            "source": Path(neuron.model.file).name,
            "method": ctx["method"],
            "rings": rings,
            "record": [state_names.index(s) for s in pop.record],
            "states": ctx["states"],
            "step_values": ctx["step_values"],
            "inputs": ctx["inputs"],
            "lines": lines,
            "ctx": ctx,
        }
        key = (neuron.build_hash(pop.method, "numba"), tuple(r["receptor"] for r in rings))
        first = kernels.setdefault(key, place)
        place["kernel"] = list(kernels).index(key)
        first.setdefault("sharing", []).append(pop.name)
        populations.append(place)
    for place in populations:  # each function once, for every population that shares it
        if "sharing" in place:
            ctx = place.pop("ctx")
            place["text"] = env.get_template("network_population.py.j2").render(**ctx, pop=place).rstrip("\n")
        else:
            place["text"] = ""
            del place["ctx"]
    names = [p.name for p in layout.populations]
    projections = [
        {
            "index": i,
            "source": p.source,
            "target": p.target,
            "source_name": names[p.source],
            "target_name": names[p.target],
            "receptor": p.receptor,
            "ring": p.ring,
            "uniform_delay": p.uniform_delay,
        }
        for i, p in enumerate(layout.projections)
    ]
    drives = [
        {"index": i, "ring": d.ring, "target": d.target, "receptor": d.receptor} for i, d in enumerate(layout.drives)
    ]
    for place in populations:  # the projections and drives into it, the projections out of it, in the network's order
        place["incoming"] = [p for p in projections if p["target"] == place["index"]]
        place["outgoing"] = [p for p in projections if p["source"] == place["index"]]
        place["drives"] = [d for d in drives if d["target"] == place["index"]]
    text = env.get_template("network.py.j2").render(
        version=__version__,
        network_name=layout.name,
        source_name=layout.source_name,
        build_hash=build_hash,
        text_hash=TEXT_HASH_PLACEHOLDER,
        dtype=layout.dtype,
        populations=populations,
        projections=projections,
        prefetch_ahead=PREFETCH_AHEAD,
        threaded=len(layout.projections) <= THREADED_MAX_PROJECTIONS,
        rings=[{"index": r.index} for r in layout.rings],
        drives=drives,
        uses_lane_math=bool(helpers & {"_exp", "_expm1", "_exprel_lane"}),
        uses_exprel_lane="_exprel_lane" in helpers,
        repr=repr,
    )
    check_generated_text(text)
    return seal(text)

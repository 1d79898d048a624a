"""The cuda backend's network program: a network's layout -> one module whose kernels run the network
on an NVIDIA GPU, a step at a time, with nothing going back to the host during a chunk of steps.

Each population's step is printed by :meth:`CudaBackend.kernel_parts` (the same lines, names and
event as the single-model kernel, in double and single precision) and laid out by ``network.cu.j2``
with its receptors read from ring buffers and its Poisson drives drawn in the kernel; the host code
(``network.py.j2``) has the numba network program's interface, so that
:func:`modelgen.network.compiled.simulate_compiled` runs either. The layout (what is where:
populations, rings, projections, drives, recorded states) comes from :mod:`modelgen.network.compiled`.
"""

from __future__ import annotations

from pathlib import Path

import sympy

from ... import __version__
from ... import functions as F
from ...integrity import TEXT_HASH_PLACEHOLDER, check_generated_text, seal
from ...optimise import step_program
from ..base import python_names, receptor_statements, template_environment
from .backend import INSTALL_HINT, _cxx_comment

__all__ = ["generate_network", "network_sources", "LANES"]

FOLDER = Path(__file__).parent
LANES = 32  # threads that deliver one spike's synapses together (a warp)

# the network kernels' own names (network.cu.j2), which the arrays named after a model's must not meet
NETWORK_LOCALS = frozenset(
    """_ring _slots _drives _n_drives _slot _w _d _drive _key _c _fired _n_fired _key_base _key_step _spikes
    _n_spikes _n_rec _rec_which _n_which _rec_steps _rec _seed _n_events _mix _poisson _z _piece _u _p _cdf
    _total _mean _pieces _value _j _i _n _k _kk _was _above _spiked _refractory _held _was_above
    _refractory_until _refractory_steps _refractory_per_neuron _per_neuron _input_layout _exprel _x _members
    _n_members _thread _m""".split()
)


def _kernel(backend, neuron, method: str | None, receptors: list[str], single: bool) -> dict:
    """Return the data of a population kernel of ``neuron`` whose spikes arrive at ``receptors``."""
    model = neuron.model
    plan = neuron.plan(method)
    context = backend.module_context(model, neuron.derivation, plan, neuron.build_hash(method, "cuda"), None)
    names = python_names(model)
    program = step_program(model, neuron.derivation, plan, names)
    rename = {sympy.Symbol(k, real=True): sympy.Symbol(v, real=True) for k, v in names.items()}
    factors = tuple(syn.factor.xreplace(rename) for syn in model.synapses if syn.receptor in receptors)
    # the parameters that only a synapse reads (w * k_syn) are values of the step too (from _values_<k>)
    params = [py for _, py, _, _ in context["parameters"]]
    read = {s.name for f in factors for s in f.free_symbols}
    extra = [p for p in params if p in read and p not in context["step_values"]]
    context = {**context, "step_values": [*context["step_values"], *extra]}
    step_values, event_exprs = backend.kernel_values(program, context, factors)
    parts = backend.kernel_parts(program, context, step_values, event_exprs, single, factors, NETWORK_LOCALS)
    cx = parts["cxx"]
    parts["rings"] = [
        {
            "receptor": _cxx_comment(r),
            "statements": [
                (cx.get(target, target), increment, _cxx_comment(text))
                for target, increment, text in receptor_statements(model, r, parts["printer"])
            ],
        }
        for r in receptors
    ]
    parts["method"] = context["method"]
    parts["value_numbers"] = [context["step_values"].index(v) for v in step_values]
    parts["context"] = context
    return parts


def network_sources(kernels: list[dict], single: bool, common: dict) -> str:
    """Return the CUDA source of the network's kernels (``kernels``: each population kernel's data)."""
    printer = kernels[0]["printer"]  # a network has a population: its kernel's printer has the precision
    mantissa = 24 if single else 53
    text = (
        template_environment(FOLDER)
        .get_template("network.cu.j2")
        .render(
            **common,
            kernels=kernels,
            real=printer.real,
            single=single,
            lanes=LANES,
            zero=printer.literal(0.0),
            one=printer.literal(1.0),
            expm1=printer.spelling(F.FUNCTIONS["expm1"]),
            exp=printer.spelling(F.FUNCTIONS["exp"]),
            mantissa=mantissa,
            unit_scale=printer.literal(2.0**-mantissa),
            uses_exprel=any("_exprel" in k["printer"].helpers for k in kernels),
        )
    )
    if '"""' in text or "\\" in text:
        raise AssertionError("kernel source holds a triple quote or a backslash")  # _cxx_comment keeps them out
    return text.rstrip("\n")


def generate_network(backend, layout, build_hash: str) -> str:
    """Return the text of the cuda network module of ``layout`` (see :class:`modelgen.network.compiled.Layout`)."""
    env = template_environment(FOLDER)
    populations = []
    kernels: dict[tuple, dict[bool, dict]] = {}  # (model module, receptors) -> its kernel in both precisions
    for pop in layout.populations:
        neuron = pop.model  # api.NeuronModel
        receptors = [r.receptor for r in layout.rings if r.population == pop.index]
        key = (neuron.build_hash(pop.method, "cuda"), tuple(receptors))
        if key not in kernels:
            kernels[key] = {single: _kernel(backend, neuron, pop.method, receptors, single) for single in (False, True)}
            for k in kernels[key].values():
                k.update(index=len(kernels) - 1, model_name=_cxx_comment(neuron.model.name), sharing=[])
                # the numbers per population of its launch (network.cu.j2): neurons, first thread, states,
                # values, which values are per neuron, inputs, their layout, 4 per ring, 15 more
                k["n_fields"] = (
                    2 + len(k["states"]) + len(k["values"]) + 1 + len(k["inputs"]) + 1 + 4 * len(receptors) + 15
                )
        double = kernels[key][False]
        for k in kernels[key].values():
            k["sharing"].append(_cxx_comment(pop.name))
        context = double["context"]
        state_names = [name for name, _ in context["states"]]
        populations.append(
            {
                "name": pop.name,
                "kernel": double["index"],
                "model_name": neuron.model.name,
                "source": Path(neuron.model.file).name,
                "method": context["method"],
                "rings": [r for r in layout.rings if r.population == pop.index],
                "record": [state_names.index(s) for s in pop.record],
                "states": context["states"],
                "text": ""
                if len(double["sharing"]) > 1
                else env.get_template("network_values.py.j2").render(**context, pop={"kernel": double["index"]}),
            }
        )
    common = dict(
        network_name=_cxx_comment(layout.name),
        version=__version__,
        build_hash=build_hash,
        uses_drives=bool(layout.drives),
    )
    text = env.get_template("network.py.j2").render(
        version=__version__,
        network_name=layout.name,
        source_name=layout.source_name,
        build_hash=build_hash,
        text_hash=TEXT_HASH_PLACEHOLDER,
        dtype=layout.dtype,
        populations=populations,
        kernels=[k[False] for k in kernels.values()],
        projections=[{"source": p.source, "target": p.target, "ring": p.ring} for p in layout.projections],
        drives=[{"ring": d.ring} for d in layout.drives],
        lanes=LANES,
        missing_cupy=f"the cuda backend needs CuPy, which is not installed: {INSTALL_HINT}",
        source64=network_sources([k[False] for k in kernels.values()], False, common),
        source32=network_sources([k[True] for k in kernels.values()], True, common),
        repr=repr,
    )
    check_generated_text(text)
    return seal(text)

"""The CUDA backend: a generated Python module holding a CUDA C++ kernel, compiled by CuPy at run time.

:func:`generate_code` prints the step program (:func:`modelgen.optimise.step_program`) as the
body of one kernel, in double and in single precision (:class:`~.printer.CudaPrinter`), and
lays it out with ``templates/kernel.cu.j2``; ``templates/module.py.j2`` embeds both sources in
a module with the interface of the numpy and numba modules (``initial_state``,
``make_simulator``, the metadata constants), whose host code feeds inputs, collects spikes and
recordings, and copies the state back after each launch. :func:`require_gpu` says, in one
line, what is missing on a machine without CuPy or without a GPU.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import jinja2
import sympy

from ... import __version__
from ...derive import MembraneDerivation
from ...integrity import TEXT_HASH_PLACEHOLDER, check_generated_text, comment_text, seal
from ...model import Model
from ...optimise import regularize, step_program
from ...schemes import Plan
from .printer import CudaPrinter, cxx_names

__all__ = ["generate_code", "kernel_source", "require_gpu", "GpuUnavailableError", "KERNEL", "INSTALL_HINT"]

KERNEL = "modelgen_advance"
INSTALL_HINT = "pip install -e '.[cuda]' (or pip install cupy-cuda12x)"

# the kernel's own names (kernel.cu.j2); arrays named after the model's take a prefix chosen to meet none
_KERNEL_LOCALS = {
    "_n", "_k_start", "_n_steps", "_per_neuron", "_input_layout", "_was_above", "_refractory_until",
    "_refractory_steps", "_refractory_per_neuron", "_rec_row", "_rec_which", "_n_which", "_n_rows", "_rec",
    "_spikes", "_n_spikes", "_spike_capacity", "_i", "_was", "_until", "_ref_steps", "_row", "_kk", "_k",
    "_refractory", "_held", "_above", "_spiked", "_slot", "_j", "_value", "_exprel", "_x", "t", "dt",
}  # fmt: skip


class GpuUnavailableError(RuntimeError):
    """The cuda backend cannot run here: CuPy is not installed, or no NVIDIA GPU (driver) is found."""


def require_gpu() -> None:
    """Return if CuPy is installed and sees a GPU; else raise GpuUnavailableError saying what is missing."""
    try:
        import cupy
    except ImportError:
        raise GpuUnavailableError(f"the cuda backend needs CuPy, which is not installed: {INSTALL_HINT}") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDARuntimeError without a driver; its text names the CUDA error
        raise GpuUnavailableError(
            f"the cuda backend found no usable NVIDIA GPU here ({e}); run on a machine with one"
        ) from None
    if count < 1:
        raise GpuUnavailableError("the cuda backend found no NVIDIA GPU on this machine; run on a machine with one")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["comment"] = comment_text
    return env


def _cxx_comment(text: str) -> str:
    """Return ``text`` safe in a ``//`` comment of source held in a Python raw string: one line
    (as Python comments), no backslash (which would continue the comment), no triple quote."""
    return comment_text(text).replace("\\", "/").replace('"""', "'''")


def _prefixes(names: list[str], taken: set[str]) -> dict[str, str]:
    """Return the prefixes of the kernel's names made from model names: ``array`` (an argument),
    ``column`` (a neuron's column of an input), ``step`` and ``stage`` (an input's strides):
    for each, the first of ``_a_``, ``_a1_``, ... that, put before any of ``names``, meets no
    name in ``taken`` nor one made with another prefix."""
    taken = set(taken)
    out = {}
    for key, letter in (("array", "a"), ("column", "p"), ("step", "ds"), ("stage", "dc")):
        candidates = [f"_{letter}_"] + [f"_{letter}{i}_" for i in range(1, 100)]
        prefix = next(c for c in candidates if not any(c + n in taken for n in names))
        taken |= {prefix + n for n in names}
        out[key] = prefix
    return out


def kernel_source(
    model: Model,
    derivation: MembraneDerivation | None,
    plan: Plan,
    names: dict[str, str],
    single: bool,
    build_hash: str,
) -> str:
    """Return the CUDA C++ source of the kernel that advances ``model`` (Python ``names``, as the
    host module's) by ``plan``, in single or double precision."""
    return _kernel_data(model, derivation, plan, names, build_hash)[1 if single else 0]


def _kernel_data(model, derivation, plan, names, build_hash):
    """Return (double source, single source, step program, step values, event expressions)."""
    py = lambda n: names.get(n, n)  # noqa: E731
    program = step_program(model, derivation, plan, names)
    rename = {sympy.Symbol(k, real=True): sympy.Symbol(v, real=True) for k, v in names.items()}

    event_exprs: list[sympy.Expr] = []
    ev = model.event
    if ev is not None:
        lhs = regularize(model.expand(ev.relation.lhs)).xreplace(rename)
        rhs = regularize(model.expand(ev.relation.rhs)).xreplace(rename)
        resets = [
            (
                py(r.state),
                regularize(model.expand(r.new_value())).xreplace(rename),
                f"{r.state} {r.op} {sympy.sstr(r.expr)}",
            )
            for r in ev.resets
        ]
        event_exprs = [lhs, rhs, *(v for _, v, _ in resets)]
    param_names = [py(p.name) for p in model.parameters]
    invariant_names = [n for n, _, _ in program.invariants]
    used = program.used_names(event_exprs)
    step_values = [n for n in param_names + invariant_names if n in used]

    # C++ names: the Python names, those that C++ or CUDA reserves with `_` appended
    every = set(program.states) | set(step_values) | set(program.inputs) | set(invariant_names)
    every |= {st.target for st in program.statements if st.target}
    every |= {s.name for e in event_exprs for s in e.free_symbols}
    every |= {s.name for st in program.statements if st.expr is not None for s in st.expr.free_symbols}
    cx = cxx_names(sorted(every - {"t", "dt"}))
    c = lambda n: cx.get(n, n)  # noqa: E731
    prefixes = _prefixes(
        [c(n) for n in [*program.states, *step_values, *program.inputs]], {c(n) for n in every} | _KERNEL_LOCALS
    )

    sources = []
    for single in (False, True):
        printer = CudaPrinter(cx, single=single)
        real = printer.real
        declared: set[str] = set()
        lines = []
        for st in program.statements:
            comments = [_cxx_comment(x) for x in st.comment.split("\n")] if st.comment else []
            if st.kind == "note":
                lines.append({"comments": comments, "code": ""})
                continue
            target = c(st.target)
            if st.kind == "input":
                stage = f" + {st.stage} * {prefixes['stage']}{target}" if st.stage else ""
                value = f"{prefixes['column']}{target}[_kk * {prefixes['step']}{target}{stage}]"
            else:
                value = printer.doprint(st.expr)
            kind = "" if st.kind == "update" or target in declared else f"{real} "
            declared.add(target)
            lines.append({"comments": comments, "code": f"{kind}{target} = {value};"})
        event = None
        if ev is not None:
            event = {
                "condition": f"{printer.doprint(lhs)} {ev.relation.rel_op} {printer.doprint(rhs)}",
                "text": _cxx_comment(_source_line(model, ev.span)),
                "resets": [{"target": c(t), "code": printer.doprint(v), "text": _cxx_comment(x)} for t, v, x in resets],
                "crossing": not ev.resets,
                "refractory": ev.refractory is not None,
                "hold": c(py(model.membrane_state)) if model.membrane_state else None,
            }
        text = (
            _environment()
            .get_template("kernel.cu.j2")
            .render(
                model_name=_cxx_comment(model.name),
                version=__version__,
                build_hash=build_hash,
                method=plan.method,
                real=real,
                single=single,
                zero=printer.doprint(sympy.Integer(0)),
                one=printer.doprint(sympy.Integer(1)),
                expm1=printer.fn("expm1"),
                uses_exprel=any("_exprel(" in ln["code"] for ln in lines) or "_exprel(" in str(event),
                kernel=KERNEL,
                states=[(c(s), prefixes["array"] + c(s)) for s in program.states],
                values=[(c(v), prefixes["array"] + c(v)) for v in step_values],
                inputs=[
                    {
                        "name": c(i),
                        "array": prefixes["array"] + c(i),
                        "column": prefixes["column"] + c(i),
                        "step": prefixes["step"] + c(i),
                        "stage": prefixes["stage"] + c(i),
                    }
                    for i in program.inputs
                ],
                n_offsets=len(program.offsets),
                uses_t=program.uses_t,
                lines=lines,
                event=event,
            )
        )
        if '"""' in text or "\\" in text:
            raise AssertionError("kernel source holds a triple quote or a backslash")  # _cxx_comment keeps them out
        sources.append(text.rstrip("\n"))
    return sources[0], sources[1], program, step_values, event_exprs


@functools.lru_cache(maxsize=1)
def _host_reserved() -> frozenset[str]:
    """Return the names the module's Python code uses: those of the numpy module's (Python's
    keywords and builtins among them) and every identifier of templates/module.py.j2's code."""
    from ...codegen import _TEMPLATE_CODE, generated_names

    def code(m):
        if m.group("string") is not None and "f" in m.group("prefix").lower():
            return " ".join(re.findall(r"\{([^{}!:]*)", m.group("string")))
        return " "

    template = (Path(__file__).parent / "templates" / "module.py.j2").read_text()
    return generated_names() | frozenset(re.findall(r"\b[^\W\d]\w*", _TEMPLATE_CODE.sub(code, template)))


def host_names(model: Model) -> dict[str, str]:
    """Return model name -> Python name in the module: a name its code uses gets `_` appended until free."""
    from ...codegen import _all_names

    taken = set(_all_names(model)) | _host_reserved()
    out = {}
    for n in sorted(_all_names(model)):
        if n in _host_reserved():
            new = n + "_"
            while new in taken:
                new += "_"
            out[n] = new
            taken.add(new)
    return out


def _source_line(model: Model, span) -> str:
    from ...codegen import _source_line as line

    return line(model, span)


def generate_code(
    model: Model, derivation: MembraneDerivation | None, plan: Plan, hash_value: str, origin: str | None = None
) -> str:
    """Return the text of the generated cuda module for ``model`` integrated by ``plan``."""
    # the host code's numpy pieces are printed as the numpy module's (until backends/base.py holds them)
    from ...codegen import Line, NumpyPrinter, _float_text, _observe_body, _source_ref

    names = host_names(model)
    printer = NumpyPrinter(names)
    py = lambda n: names.get(n, n)  # noqa: E731
    rename = {sympy.Symbol(k, real=True): sympy.Symbol(v, real=True) for k, v in names.items()}
    source64, source32, program, step_values, _ = _kernel_data(model, derivation, plan, names, hash_value)

    event = None
    if model.event is not None:
        ev = model.event
        lhs = regularize(model.expand(ev.relation.lhs)).xreplace(rename)
        rhs = regularize(model.expand(ev.relation.rhs)).xreplace(rename)
        refractory = ev.refractory.xreplace(rename) if ev.refractory is not None else None
        event = {
            "condition": f"{printer.doprint(lhs)} {ev.relation.rel_op} {printer.doprint(rhs)}",
            "text": _source_line(model, ev.span),
            "refractory": printer.doprint(refractory) if refractory is not None else None,
        }
    receptors = []
    weights = NumpyPrinter()
    for name in model.receptors:
        statements = []
        for syn in model.synapses:
            if syn.receptor == name:
                inc = syn.factor.xreplace(rename) * sympy.Symbol("w", real=True)
                at_index = {s: sympy.Symbol(f"_take({s.name}, index)", real=True) for s in inc.free_symbols}
                at_index[sympy.Symbol("w", real=True)] = sympy.Symbol("w", real=True)
                statements.append(
                    (
                        py(syn.target),
                        weights.doprint(inc),
                        weights.doprint(inc.xreplace(at_index)),
                        f"{syn.text}  {_source_ref(model, syn.span)}",
                    )
                )
        receptors.append({"name": name, "statements": statements})

    obs_body = _observe_body(model, printer, names)
    invariants = [Line(f"{n} = {printer.doprint(e)}", cm) for n, e, cm in program.invariants]
    init_body = [
        (py(name), f"given[{name!r}] if {name!r} in given else {printer.doprint(regularize(expr.xreplace(rename)))}")
        for name, expr in model.initial_order
    ]
    host_code = [ln.code for ln in [*obs_body, *invariants]] + [code for _, code in init_body]
    text = (
        _environment()
        .get_template("module.py.j2")
        .render(
            version=__version__,
            model=model,
            source_name=Path(model.file).name,
            origin=origin,
            build_hash=hash_value,
            source_hash=model.source_hash,
            method=plan.method,
            reasons=plan.reasons,
            states=[(s.name, py(s.name)) for s in model.states],
            parameters=[
                (p.name, py(p.name), _float_text(p.value), f"{p.display_value:g} {p.unit}") for p in model.parameters
            ],
            inputs=[
                (i.name, py(i.name), _float_text(i.default), f"{i.default / i.display_scale:g} {i.unit}")
                for i in model.inputs
            ],
            offsets=[(j, _float_text(float(x))) for j, x in enumerate(program.offsets)],
            observables=[(name, py(name)) for name, _, _ in model.definition_order()],
            obs_body=obs_body,
            invariants=invariants,
            uses_exprel=any("_exprel(" in code for code in host_code),
            invariant_names=[n for n, _, _ in program.invariants],
            step_values=step_values,
            init_body=init_body,
            event=event,
            receptors=receptors,
            receptor_targets=", ".join(dict.fromkeys(py(s.target) for s in model.synapses)),
            kernel=KERNEL,
            source64=source64,
            source32=source32,
            text_hash=TEXT_HASH_PLACEHOLDER,
            repr=repr,
        )
    )
    check_generated_text(text)
    return seal(text)

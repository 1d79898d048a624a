"""The cuda backend: a generated Python module holding a CUDA C++ kernel, compiled by CuPy at run time.

The step program is printed as the body of one kernel (one thread per neuron, its state in
registers, many steps per launch), in double and in single precision (:class:`CudaPrinter`),
and laid out by ``kernel.cu.j2``; ``module.py.j2`` embeds both sources in a module with the
interface of the numpy and numba modules, whose host code (initial state, observe, receive,
inputs) is numpy's (:meth:`NumpyBackend.module_context`) and which feeds inputs, collects
spikes and recordings, and copies the state back after each launch.
"""

from __future__ import annotations

from pathlib import Path

from ... import functions as F
from ...integrity import comment_text
from ...optimise import StepProgram
from .. import BackendUnavailableError
from ..base import template_environment
from ..numpy.backend import NumpyBackend
from .printer import CudaPrinter, cxx_names

__all__ = ["CudaBackend", "GpuUnavailableError", "KERNEL", "INSTALL_HINT", "kernel_prefixes"]

KERNEL = "modelgen_advance"
INSTALL_HINT = "pip install -e '.[cuda]' (or pip install cupy-cuda12x)"

# the kernel's own names (kernel.cu.j2); arrays named after the model's take a prefix chosen to meet none
KERNEL_LOCALS = {
    "_n", "_k_start", "_n_steps", "_per_neuron", "_input_layout", "_was_above", "_refractory_until",
    "_refractory_steps", "_refractory_per_neuron", "_rec_row", "_rec_which", "_n_which", "_n_rows", "_rec",
    "_spikes", "_n_spikes", "_spike_capacity", "_i", "_was", "_until", "_ref_steps", "_row", "_kk", "_k",
    "_refractory", "_held", "_above", "_spiked", "_slot", "_j", "_value", "_exprel", "_x", "t", "dt",
}  # fmt: skip


class GpuUnavailableError(BackendUnavailableError):
    """The cuda backend cannot run here: CuPy is not installed, or no NVIDIA GPU (driver) is found."""


def _cxx_comment(text: str) -> str:
    """Return ``text`` safe in a ``//`` comment of source held in a Python raw string: one line
    (as Python comments), no backslash (which would continue the comment), no triple quote."""
    return comment_text(text).replace("\\", "/").replace('"""', "'''")


def kernel_prefixes(names: list[str], taken: set[str]) -> dict[str, str]:
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


class CudaBackend(NumpyBackend):
    """Generates the cuda module: numpy's host side around one CUDA kernel in two precisions."""

    name = "cuda"
    folder = Path(__file__).parent

    def require(self) -> None:
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

    def generate_network(self, layout, build_hash: str) -> str:
        """Return the text of the network program of ``layout`` on the GPU (see :mod:`.network`)."""
        from .network import generate_network

        return generate_network(self, layout, build_hash)

    def steps_per_call(self, n: int) -> int:
        """Return steps per launch: all of them run on the GPU, so long chunks (~1e10 neuron-steps)."""
        return max(1_000, min(20_000, 2**33 // n))

    def kernel_context(
        self, program: StepProgram, names: dict[str, str], prefixes: dict[str, str], context: dict
    ) -> dict:
        """Return the kernel's sources, in double and in single precision, and the values it reads
        (the refractory period is the host's: it passes the period in steps)."""
        step_values, event_exprs = self.kernel_values(program, context)
        return dict(
            kernel=KERNEL,
            step_values=step_values,
            source64=self.kernel_text(program, context, step_values, event_exprs, single=False),
            source32=self.kernel_text(program, context, step_values, event_exprs, single=True),
        )

    def kernel_values(self, program: StepProgram, context: dict, more: tuple = ()) -> tuple[list[str], list]:
        """Return (the values of the module's ``context`` that a kernel reads: those its step, its event
        and the expressions ``more`` use; the event's expressions)."""
        event = context["event"]
        event_exprs = [*event["relation"][::2], *(r["value"] for r in event["resets"])] if event else []
        used = program.used_names([*event_exprs, *more])
        return [v for v in context["step_values"] if v in used], event_exprs

    def kernel_text(
        self, program: StepProgram, context: dict, step_values: list[str], event_exprs: list, single: bool
    ) -> str:
        """Return the CUDA C++ source of the kernel of ``program`` (the module's ``context``) reading
        ``step_values``, in single or double precision."""
        parts = self.kernel_parts(program, context, step_values, event_exprs, single)
        text = template_environment(self.folder).get_template("kernel.cu.j2").render(**parts)
        if '"""' in text or "\\" in text:
            raise AssertionError("kernel source holds a triple quote or a backslash")  # _cxx_comment keeps them out
        return text.rstrip("\n")

    def kernel_parts(
        self,
        program: StepProgram,
        context: dict,
        step_values: list[str],
        event_exprs: list,
        single: bool,
        more: tuple = (),
        taken: frozenset[str] = frozenset(),
    ) -> dict:
        """Return what a kernel template lays out of one neuron's step: the step's lines printed in
        C++ (single or double precision), its names and arrays, its event; ``more``: other expressions
        whose names the kernel needs; ``taken``: the template's own names besides KERNEL_LOCALS.
        Also ``cxx`` (model name -> C++ name) and ``printer``, for printing more of the model."""
        event = context["event"]

        # C++ names: the Python names, those that C++ or CUDA reserves with `_` appended
        every = set(program.states) | set(step_values) | set(program.inputs) | set(context["invariant_names"])
        every |= {st.target for st in program.statements if st.target}
        every |= {s.name for e in [*event_exprs, *more] for s in e.free_symbols}
        every |= {s.name for st in program.statements if st.expr is not None for s in st.expr.free_symbols}
        cx = cxx_names(sorted(every - {"t", "dt"}))
        c = lambda n: cx.get(n, n)  # noqa: E731
        arrays = [c(n) for n in [*program.states, *step_values, *program.inputs]]
        prefixes = kernel_prefixes(arrays, {c(n) for n in every} | KERNEL_LOCALS | taken)

        printer = CudaPrinter(cx, single=single)
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
            kind = "" if st.kind == "update" or target in declared else f"{printer.real} "
            declared.add(target)
            lines.append({"comments": comments, "code": f"{kind}{target} = {value};"})
        kernel_event = None
        if event is not None:
            lhs, op, rhs = event["relation"]
            kernel_event = {
                "condition": f"{printer.doprint(lhs)} {op} {printer.doprint(rhs)}",
                "text": _cxx_comment(event["text"]),
                "resets": [
                    {"target": c(r["target"]), "code": printer.doprint(r["value"]), "text": _cxx_comment(r["text"])}
                    for r in event["resets"]
                ],
                "crossing": event["crossing"],
                "refractory": event["refractory"] is not None,
                "hold": c(event["hold"]) if event["hold"] else None,
            }
        model = context["model"]
        return dict(
            model_name=_cxx_comment(model.name),
            version=context["version"],
            build_hash=context["build_hash"],
            method=context["method"],
            real=printer.real,
            single=single,
            zero=printer.literal(0.0),
            one=printer.literal(1.0),
            expm1=printer.spelling(F.FUNCTIONS["expm1"]),
            uses_exprel="_exprel" in printer.helpers,
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
            event=kernel_event,
            cxx=cx,
            printer=printer,
        )

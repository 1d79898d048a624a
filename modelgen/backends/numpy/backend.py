"""The numpy backend: a checked model and its plan -> a Python module stepping neurons with numpy.

One step of the model is a straight-line program (:func:`modelgen.optimise.step_program`)
printed two ways: as numpy ufunc calls writing into preallocated buffers over blocks of
neurons small enough for the buffers to stay in cache (the vectorised path), and as plain
Python on floats, one neuron at a time (the per-neuron kernel, for a handful of neurons, where
numpy's per-call overhead dominates). Decisions are made here; the templates
(``module.py.j2`` here, ``python_module.py.j2`` and ``per_neuron.py.j2`` shared) only lay out.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from pathlib import Path

import sympy

from ... import __version__
from ...derive import MembraneDerivation
from ...integrity import TEXT_HASH_PLACEHOLDER, check_generated_text, seal
from ...model import Model
from ...optimise import Statement, StepProgram, regularize, step_program
from ...schemes import Plan
from ..base import (
    Line,
    ScalarPrinter,
    all_names,
    float_text,
    python_names,
    source_line,
    source_ref,
    template_environment,
)
from .printer import NumpyPrinter
from .ufuncs import RELATIONS, UfuncWriter

__all__ = ["NumpyBackend", "KERNEL_LOCALS", "kernel_prefixes"]

# the kernels' own locals (the templates); the arrays of states, parameters and inputs that the
# kernels take are named with a prefix chosen so that they can meet none of these
KERNEL_LOCALS = {
    "_i", "_j", "_k", "_kk", "_c", "_q", "_w", "_lo", "_block", "_n_all", "_n_spiked", "_row",
    "_was", "_until", "_ref_steps", "_above", "_spiked", "_refractory", "_free", "_held", "_k_start",
    "_k_stop", "_was_above", "_refractory_until", "_refractory_steps", "_rec_row", "_rec_which",
    "_rec", "_spikes", "_n_spikes", "_note_spike", "_new_spike_buffer", "_blk_was", "_blk_until", "_blk_spiked", "_blk_recorded", "_exp", "_expm1",
    "_exprel", "_exprel_scalar", "_taylor13", "_int_bits_as_float", "_in", "_at", "_fired", "_n_fired",
}  # fmt: skip


def kernel_prefixes(names: list[str], taken: set[str]) -> dict[str, str]:
    """Return the prefixes of the kernels' array names: ``arg`` (the arrays passed in), ``lane``
    (a block's copies, one value per neuron), ``view`` (a block's part of a state array) and
    ``column`` (the serial kernel's column of an input for its neuron).

    Each is the first of its candidates (``_``, ``_a_``, ``_a1_``, ...) that, put before any
    of ``names``, gives no name in ``taken`` nor one of another prefix."""
    taken = set(taken)
    out = {}
    for key, first, letter in (("arg", "_", "a"), ("lane", "_b_", "b"), ("view", "_s_", "s"), ("column", "_x_", "x")):
        candidates = [first, f"_{letter}_"] + [f"_{letter}{i}_" for i in range(1, 100)]
        prefix = next(c for c in candidates if not any(c + n in taken for n in names))
        taken |= {prefix + n for n in names}
        out[key] = prefix
    return out


def held_into_buffer(program: StepProgram, hold: str | None) -> bool:
    """Return whether the vectorised step can write the new value of a refractory period's held
    variable ``hold`` into the buffer ``_held`` (then copied where not refractory) instead of over
    the variable (saved before and copied back): one call fewer. It can if one statement assigns
    ``hold`` and none after it reads it."""
    if hold is None:
        return False
    writes = [i for i, st in enumerate(program.statements) if st.kind != "note" and st.target == hold]
    if len(writes) != 1:
        return False
    later = program.statements[writes[0] + 1 :]
    return not any(st.expr is not None and any(s.name == hold for s in st.expr.free_symbols) for st in later)


def share_scaled(program: StepProgram) -> StepProgram:
    """Return ``program`` with each product of a number and a name (``-0.1*V``; not ``-V``) that two
    or more statements read computed once, into a named value before the first of them.

    For the vectorised step: one pass over the block instead of one per statement (HH's rates read
    ``-0.1*V`` three times). The value is the same, so are the numbers. A statement that writes the
    name ends the statements that share its product; products of a stage's values (rk) stay apart.
    """
    statements = program.statements
    taken = program.used_names() | {st.target for st in statements}
    uses: dict[sympy.Expr, list[list[int]]] = {}  # product -> runs of the statements reading it (no write between)
    for i, st in enumerate(statements):
        if st.expr is not None:
            for p in sorted(st.expr.atoms(sympy.Mul), key=sympy.default_sort_key):  # (a set: in a fixed order)
                c, *rest = p.args
                if len(rest) == 1 and c.is_Number and rest[0].is_Symbol and abs(c) != 1:
                    runs = uses.setdefault(p, [[]])
                    runs[-1].append(i)
        if st.kind != "note" and st.target:
            for p, runs in uses.items():
                if p.args[1].name == st.target and runs[-1]:
                    runs.append([])
    before: dict[int, list[Statement]] = {}
    replace: dict[int, dict[sympy.Expr, sympy.Symbol]] = {}
    names = (f"_scaled{j}" for j in itertools.count(1))
    for p, runs in uses.items():
        for run in runs:
            if len(run) >= 2:
                name = next(n for n in names if n not in taken)
                before.setdefault(run[0], []).append(
                    Statement("assign", name, p, f"{sympy.sstr(p)}, read by {len(run)} statements: computed once")
                )
                for i in run:
                    replace.setdefault(i, {})[p] = sympy.Symbol(name, real=True)
    if not before:
        return program
    out = []
    for i, st in enumerate(statements):
        out.extend(before.get(i, []))
        out.append(dataclasses.replace(st, expr=st.expr.xreplace(replace[i])) if i in replace else st)
    return dataclasses.replace(program, statements=out)


def vector_block(
    program: StepProgram, printer: NumpyPrinter, comments: NumpyPrinter, into_held: str | None = None
) -> tuple[list[Line], UfuncWriter, list[str], list[str]]:
    """Return the step's lines as ufunc calls, the writer (scratch counts), the buffers assigned and
    the values kept from step to step (the ``inputs_only`` ones: assigned under ``if _refresh:``);
    ``into_held``: a variable whose new value goes to the buffer ``_held`` (see held_into_buffer)."""
    w = UfuncWriter()
    lines: list[Line] = []
    buffers: list[str] = []
    kept: list[str] = []
    for st in program.statements:
        if st.kind == "note":
            lines.append(Line("", st.comment))
        elif st.kind == "input":
            lines.append(Line(f"{st.target} = _part(_{st.target}_{st.stage}, _lo, _hi)"))
        else:
            if st.inputs_only:
                kept.append(st.target)
            elif st.kind == "assign" and st.target not in buffers:
                buffers.append(st.target)
            start = len(w.lines)
            w.assign("_held" if st.target == into_held else st.target, st.expr)
            formula = f"{st.target} = {comments.doprint(st.expr)}"
            if st.target == into_held:
                formula += f"  (into _held: copied to {st.target} where not refractory)"
            comment = f"{st.comment}\n{formula}" if st.comment else formula
            calls = w.lines[start:]
            if st.inputs_only:  # on the first step, and on every step where an input varies
                lines.append(Line("if _refresh:", comment))
                lines.extend(Line("    " + c) for c in calls)
            else:
                lines.append(Line(calls[0], comment))
                lines.extend(Line(c) for c in calls[1:])
    return lines, w, buffers, kept


_CALL = re.compile(r"np\.(\w+)\(([\w.]+(?:, [\w.]+)*)\)")  # a call of the block: np.f(a, b, out)
_NAME = re.compile(r"[A-Za-z_]\w*")


def buffer_slots(lines: list[Line], names: list[str], live_in: set[str], live_out: set[str]) -> list[int]:
    """Return a buffer number for each of ``names`` (the block's float buffers) from the calls ``lines``
    that use them: buffers whose values do not live at the same time share one.

    A name lives from the first call that mentions it to the last (``live_in``: from before the
    first call; ``live_out``: after the last). A name may also take the buffer of one whose last
    use is the very call that first writes it, with all its operands read: ``np.multiply(V, _X, _held)``
    where ``_X`` is read for the last time writes in place, into ``_X``'s buffer (no fresh memory
    for the result: measured 8 % faster for LIF's step over 10**4 neurons).
    """
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    wanted = set(names)
    calls = [line.code for line in lines if line.code]
    for i, code in enumerate(calls):
        for name in _NAME.findall(code):
            if name in wanted:
                first.setdefault(name, i)
                last[name] = i
    end = len(calls)
    for name in names:
        if name in live_in:
            first[name] = -1
        if name in live_out:
            last[name] = end
        first.setdefault(name, end)  # unused: lives nowhere
        last.setdefault(name, first[name])

    def in_place(before: str, after: str) -> bool:
        """Whether ``after`` may take ``before``'s buffer at the call where one ends and the other starts."""
        i = first[after]
        if last[before] != i or not 0 <= i < end:
            return False
        m = _CALL.fullmatch(calls[i])
        if m is None or (m.group(1) == "copyto" and "where" in calls[i]):
            return False
        *operands, out = m.group(2).split(", ")
        return out == after and before in operands and after not in operands

    slots: dict[str, int] = {}
    owner: list[str] = []  # slot -> the name that holds it last
    for name in sorted(names, key=lambda n: (first[n], names.index(n))):
        taken = [j for j, o in enumerate(owner) if in_place(o, name)]
        free = [j for j, o in enumerate(owner) if last[o] < first[name]]
        slot = (taken or free or [len(owner)])[0]
        if slot == len(owner):
            owner.append(name)
        owner[slot] = name
        slots[name] = slot
    return [slots[n] for n in names]


def scalar_block(
    program: StepProgram, printer: ScalarPrinter, prefixes: dict[str, str], inputs: str = "kernel"
) -> list[Line]:
    """Return the step of one neuron on floats, reading its inputs (``inputs``) from the kernel's
    arrays (``"kernel"``), from numba's block kernel's copies (``"lanes"``) or, in a network program,
    through its ``_input`` helper for neuron ``_i`` (``"network"``)."""
    out = []
    for st in program.statements:
        if st.kind == "note":
            out.append(Line("", st.comment))
        elif st.kind == "input" and inputs == "lanes":
            out.append(Line(f"{st.target} = {prefixes['lane']}{st.target}[{st.stage}, _j]"))
        elif st.kind == "input" and inputs == "network":
            out.append(Line(f"{st.target} = _input({prefixes['arg']}{st.target}, _kk, {st.stage}, _i)"))
        elif st.kind == "input":
            a, column = prefixes["arg"] + st.target, prefixes["column"] + st.target
            out.append(Line(f"{st.target} = float({a}[_kk if {a}.shape[0] > 1 else 0, {st.stage}, {column}])"))
        else:
            out.append(Line(f"{st.target} = {printer.doprint(st.expr)}", st.comment))
    return out


def observe_body(model: Model, printer: NumpyPrinter, names: dict[str, str]) -> list[Line]:
    """Return observe()'s assignments of every intermediate and current, shared parts computed once."""
    rename = {sympy.Symbol(k, real=True): sympy.Symbol(v, real=True) for k, v in names.items()}
    named = [(names.get(n, n), regularize(e.xreplace(rename))) for n, e, _ in model.definition_order()]
    if not named:
        return []
    symbols = sympy.numbered_symbols("_o", real=True)
    replacements, reduced = sympy.cse([e for _, e in named], symbols=symbols, optimizations=None, order="none")
    temps = dict(replacements)
    emitted: set[sympy.Symbol] = set()
    out: list[Line] = []

    def emit_temps(e):  # each temporary just before its first use
        for s in sorted(e.free_symbols, key=lambda s: s.name):
            if s in temps and s not in emitted:
                emit_temps(temps[s])
                emitted.add(s)
                out.append(Line(f"{s.name} = {printer.doprint(temps[s])}"))

    for (n, _), e in zip(named, reduced):
        emit_temps(e)
        out.append(Line(f"{n} = {printer.doprint(e)}"))
    return out


class NumpyBackend:
    """Generates the numpy module; its ``module_context`` is the host side that numba's module shares."""

    name = "numpy"
    folder = Path(__file__).parent
    # decorators of the shared templates' functions (none: plain Python)
    # spikes_in_place: the kernels write spikes into a buffer large enough for every neuron-step (see
    # the numba backend), else through _note_spike, which grows the buffer
    jit = {"kernel": "", "note_spike": "", "scalar_helper": "", "spikes_in_place": False}

    def require(self) -> None:
        """Return: numpy runs everywhere modelgen does."""

    def steps_per_call(self, n: int) -> int:
        """Return the steps per call between the runtime's NaN checks: about 2**16 neuron-steps, at most 1000."""
        return min(1000, 2**16 // n)

    def generate(
        self,
        model: Model,
        derivation: MembraneDerivation | None,
        plan: Plan,
        build_hash: str,
        origin: str | None = None,
    ) -> str:
        """Return the text of the generated module for ``model`` integrated by ``plan``."""
        context = self.module_context(model, derivation, plan, build_hash, origin)
        text = template_environment(self.folder).get_template("module.py.j2").render(**context)
        check_generated_text(text)  # no user text can have ended a comment or declared a coding
        return seal(text)

    def module_context(
        self, model: Model, derivation: MembraneDerivation | None, plan: Plan, build_hash: str, origin: str | None
    ) -> dict:
        """Return the templates' data: the module's interface, host code, per-neuron kernel and events."""
        names = python_names(model)
        printer = NumpyPrinter(names)
        scalar = ScalarPrinter(names)
        py = lambda n: names.get(n, n)  # noqa: E731
        rename = {sympy.Symbol(k, real=True): sympy.Symbol(v, real=True) for k, v in names.items()}

        program = step_program(model, derivation, plan, names)

        # event: threshold, resets, refractory period
        event = None
        event_exprs: list[sympy.Expr] = []
        if model.event is not None:
            ev = model.event
            lhs = regularize(model.expand(ev.relation.lhs)).xreplace(rename)
            rhs = regularize(model.expand(ev.relation.rhs)).xreplace(rename)
            resets = []
            state_names = {py(s.name) for s in model.states}
            for r in ev.resets:
                value = regularize(model.expand(r.new_value())).xreplace(rename)
                event_exprs.append(value)
                # the new value at the spiking neurons _fired: states there, other per-neuron values
                # there (_take leaves a shared one as it is)
                at_fired = {
                    s: sympy.Symbol(
                        f"{s.name}[_fired]" if s.name in state_names else f"_take({s.name}, _fired)", real=True
                    )
                    for s in value.free_symbols
                    if s.name != "t"
                }
                resets.append(
                    {
                        "target": py(r.state),
                        "op": r.op,
                        "indexed": printer.doprint(value.xreplace(at_fired)),
                        "scalar": scalar.doprint(value),
                        "text": f"{r.state} {r.op} {sympy.sstr(r.expr)}",
                        "value": value,
                    }
                )
            refractory = ev.refractory.xreplace(rename) if ev.refractory is not None else None
            event_exprs += [lhs, rhs] + ([refractory] if refractory is not None else [])
            event = {
                "condition": f"{printer.doprint(lhs)} {ev.relation.rel_op} {printer.doprint(rhs)}",
                "ufunc": RELATIONS[ev.relation.rel_op],
                "lhs": printer.doprint(lhs),
                "rhs": printer.doprint(rhs),
                "scalar_condition": f"{scalar.doprint(lhs)} {ev.relation.rel_op} {scalar.doprint(rhs)}",
                "text": source_line(model, ev.span),
                "resets": resets,
                "crossing": not ev.resets,
                "refractory": printer.doprint(refractory) if refractory is not None else None,
                "hold": py(model.membrane_state) if model.membrane_state else None,
                "relation": (lhs, ev.relation.rel_op, rhs),
            }

        # what the step reads besides states and inputs: parameters and hoisted invariants
        param_names = [py(p.name) for p in model.parameters]
        invariant_names = [n for n, _, _ in program.invariants]
        used = program.used_names(event_exprs)
        step_values = [n for n in param_names + invariant_names if n in used]

        kernel_arrays = [*program.states, *step_values, *program.inputs]
        taken = KERNEL_LOCALS | {py(n) for n in all_names(model)} | set(invariant_names)
        taken |= {f"_slot_{j}" for j in range(len(program.states))}  # the per-neuron kernel's places in _rec
        taken |= {st.target for st in program.statements} | {s.name for e in event_exprs for s in e.free_symbols}
        taken |= {s.name for st in program.statements if st.expr is not None for s in st.expr.free_symbols}
        prefixes = kernel_prefixes(kernel_arrays, taken)
        scalar_lines = scalar_block(program, scalar, prefixes)

        invariants = [Line(f"{n} = {printer.doprint(e)}", c) for n, e, c in program.invariants]
        obs_body = observe_body(model, printer, names)
        init_body = [
            (
                py(name),
                f"given[{name!r}] if {name!r} in given else {printer.doprint(regularize(expr.xreplace(rename)))}",
            )
            for name, expr in model.initial_order
        ]

        receptors = []
        # the factors' names are renamed already, and `w` is receive()'s argument, not a model's `w`
        weights = NumpyPrinter()
        for name in model.receptors:
            statements = []
            for syn in model.synapses:
                if syn.receptor == name:
                    inc = syn.factor.xreplace(rename) * sympy.Symbol("w", real=True)
                    # for receive(..., index): w holds the weights of the neurons `index`; so do the factor's values
                    at_index = {s: sympy.Symbol(f"_take({s.name}, index)", real=True) for s in inc.free_symbols}
                    at_index[sympy.Symbol("w", real=True)] = sympy.Symbol("w", real=True)
                    statements.append(
                        (
                            py(syn.target),
                            weights.doprint(inc),
                            weights.doprint(inc.xreplace(at_index)),
                            f"{syn.text}  {source_ref(model, syn.span)}",
                        )
                    )
            receptors.append({"name": name, "statements": statements})
        receptor_targets = ", ".join(dict.fromkeys(py(s.target) for s in model.synapses))

        context = dict(
            version=__version__,
            backend=self.name,
            jit=self.jit,
            model=model,
            source_name=Path(model.file).name,
            origin=origin,
            build_hash=build_hash,
            source_hash=model.source_hash,
            method=plan.method,
            reasons=plan.reasons,
            states=[(s.name, py(s.name)) for s in model.states],
            parameters=[
                (p.name, py(p.name), float_text(p.value), f"{p.display_value:g} {p.unit}") for p in model.parameters
            ],
            inputs=[
                (i.name, py(i.name), float_text(i.default), f"{i.default / i.display_scale:g} {i.unit}")
                for i in model.inputs
            ],
            offsets=[(j, float_text(float(c))) for j, c in enumerate(program.offsets)],
            observables=[(name, py(name)) for name, _, _ in model.definition_order()],
            obs_body=obs_body,
            invariants=invariants,
            invariant_names=invariant_names,
            step_values=step_values,
            scalar_lines=scalar_lines,
            arg=prefixes["arg"],
            lane=prefixes["lane"],
            view=prefixes["view"],
            column=prefixes["column"],
            receptors=receptors,
            receptor_targets=receptor_targets,
            init_body=init_body,
            event=event,
            uses_t=program.uses_t,
            text_hash=TEXT_HASH_PLACEHOLDER,
            repr=repr,
        )
        context.update(self.kernel_context(program, names, prefixes, context))
        # the helpers that the printed expressions call (each printer notes the table's helpers it spelled)
        context["uses_exprel"] = "_exprel" in printer.helpers | weights.helpers
        context["uses_exprel_scalar"] = "_exprel_scalar" in scalar.helpers
        return context

    def kernel_context(
        self, program: StepProgram, names: dict[str, str], prefixes: dict[str, str], context: dict
    ) -> dict:
        """Return the vectorised step's data: its lines, buffers and block size."""
        printer, comments = NumpyPrinter(names), NumpyPrinter(names)
        event = context["event"]
        hold = event["hold"] if event is not None and event["refractory"] else None
        into_held = hold if held_into_buffer(program, hold) else None
        if event is not None:
            event["into_held"] = into_held is not None
        vector_lines, writer, buffers, kept = vector_block(share_scaled(program), printer, comments, into_held)
        stateset = set(program.states)
        buffers = [b for b in buffers if b not in stateset]
        # buffers of the named values, then the scratch buffers, then one for the held membrane potential
        floats = [*buffers, *(f"_s{i}" for i in range(writer.floats)), "_held"]
        holding = event is not None and event["refractory"] is not None
        live_in = {"_held"} if holding and into_held is None else set()  # saved before the step's calls
        float_slots = buffer_slots(vector_lines, floats, live_in, {"_held"} if holding else set())
        # neurons per block: 2**15, or fewer where the block's float buffers would fill more than 1.5 MB,
        # but at least 2**14: below that numpy's per-call overhead (~0.4 us) costs more than the buffers
        # spilling out of the L2 cache (measured at N = 10**5: Izhikevich rk4 1.11x the expert numpy with
        # 2**14, 0.85x with 2**13; HH rk4 1.24x with 2**14, 0.93x with 2**12)
        block = 2 ** max(14, min(15, int(math.log2(1.5 * 2**20 / (8 * len(set(float_slots)))))))
        return dict(
            vector_lines=vector_lines,
            buffers=buffers,
            float_slots=float_slots,
            block=block,
            kept=kept,
            float_scratch=[f"_s{i}" for i in range(writer.floats)],
            bool_scratch=[f"_b{i}" for i in range(writer.bools)],
            numbers=sorted(writer.numbers.items()),
        )

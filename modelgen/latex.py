"""LaTeX of a model: the derivation from Q = C V to dV/dt, every ODE, and a parameter table."""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass

import sympy
from sympy.printing.latex import LatexPrinter

from . import functions as F
from .derive import MembraneDerivation, all_odes
from .model import Model

__all__ = ["Block", "model_blocks", "model_latex", "scoped_names", "symbol_latex"]


# LaTeX of the names a model took from current files (``I_Na_m`` -> ``m_{Na}``), while its blocks are built
_SCOPED: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("scoped_names", default=None)


def symbol_latex(name: str) -> str:
    """Return LaTeX for a model name: ``g_Na`` -> ``g_{\\mathrm{Na}}``, ``alpha_m`` -> ``\\alpha_{m}``."""
    return (_SCOPED.get() or {}).get(name) or sympy.latex(sympy.Symbol(name))


def scoped_names(model: Model) -> dict[str, str]:
    """Return LaTeX for each name scoped by a ``use`` line: the file's own name tagged with the current's.

    ``use "currents/na_hh" as I_Na`` makes ``I_Na_m``, ``I_Na_g``, ``I_Na_alpha_m``; they are shown as
    ``m_{Na}``, ``g_{Na}``, ``\\alpha_{m,Na}`` (the way a textbook writes them), not ``I_{Na m}``. A name
    belongs to the current declared in the same file whose name is its longest prefix.
    """
    aliases: dict[str, list[str]] = {}
    for c in model.currents:
        if c.span is not None and c.span.file != model.file:
            aliases.setdefault(c.span.file, []).append(c.name)
    out = {}
    for item in (*model.parameters, *model.states, *model.expressions):
        for alias in sorted(aliases.get(item.span.file if item.span else "", ()), key=len, reverse=True):
            if item.name.startswith(alias + "_"):
                tag = (alias[2:] if alias.startswith("I_") and len(alias) > 2 else alias).replace("_", " ")
                local = sympy.latex(sympy.Symbol(item.name[len(alias) + 1 :]))
                out[item.name] = (
                    f"{local[:-1]},{tag}}}" if local.endswith("}") and "_{" in local else f"{local}_{{{tag}}}"
                )
                break
    return out


def _ddt(name: str) -> str:
    return rf"\frac{{d{symbol_latex(name)}}}{{dt}}"


class _Printer(LatexPrinter):
    """sympy's LaTeX printer keeping the written order and printing units upright."""

    def __init__(self):
        super().__init__({"order": "none"})

    def _print_Symbol(self, expr, style="plain"):
        if expr.name.startswith("unit:"):
            unit = (
                expr.name[5:].replace("u", r"\mu ", 1)
                if expr.name[5:6] == "u" and len(expr.name) > 6
                else expr.name[5:]
            )
            return r"\,\mathrm{" + unit + "}"  # a thin space after the number, as in print
        return (_SCOPED.get() or {}).get(expr.name) or super()._print_Symbol(expr, style)

    def _print_Function(self, expr, exp=None):
        # a function of the table with a LaTeX name of its own (where sympy's default will not do)
        entry = F.FUNCTIONS.get(expr.func.__name__)
        if entry is None or entry.latex is None:
            return super()._print_Function(expr, exp)
        tex = rf"{entry.latex}\left({', '.join(self._print(a) for a in expr.args)}\right)"
        return self._do_exponent(tex, exp)

    def _print_ExpBase(self, expr, exp=None):
        r"""Return ``e^{x}`` for a simple argument, ``\exp(…)`` for a fraction or sum (legible, not a tiny superscript)."""
        arg = expr.args[0]
        if arg.is_Atom or (arg.is_Mul and all(a.is_Atom for a in arg.args) and not arg.has(sympy.Pow)):
            return super()._print_ExpBase(expr, exp)
        return self._do_exponent(rf"\exp\left({self._print(arg)}\right)", exp)


def _tex(expr) -> str:
    # units get a thin space after a number or a name, but not at the start of a group
    return re.sub(r"(^|[{(]\s*|\\left\(\s*)\\,\\mathrm", r"\1\\mathrm", _Printer().doprint(expr))


def _net_current(model: Model) -> str:
    """Return inward minus outward currents in declaration order, e.g. ``I_{ext} - I_{Na}``."""
    out = ""
    for c in model.currents:
        sign = "+" if c.direction == "inward" else "-"
        if not out:
            out = ("" if sign == "+" else "-") + symbol_latex(c.name)
        else:
            out += f" {sign} {symbol_latex(c.name)}"
    return out or "0"


def _time_derivative_tex(expr) -> str:
    """Return LaTeX of an expression in functions of t, printing x(t) as x and d/dt as dx/dt."""
    t = sympy.Symbol("t", real=True)
    marks = {}
    for d in expr.atoms(sympy.Derivative):
        name = d.expr.func.__name__
        marks[d] = sympy.Symbol(f"zzdtmark{len(marks)}")
        marks[marks[d]] = name
    rep = {d: m for d, m in marks.items() if isinstance(d, sympy.Derivative)}
    e = expr.xreplace(rep)
    e = e.xreplace({f: sympy.Symbol(f.func.__name__, real=True) for f in e.atoms(sympy.Function) if f.args == (t,)})
    text = sympy.latex(e)  # sympy's canonical order puts the marks (zz…) last: C dV/dt
    for m, name in marks.items():
        if isinstance(m, sympy.Symbol):
            text = text.replace(sympy.latex(m), _ddt(name))
    return text


def _unit_tex(unit: str) -> str:
    r"""Return a unit as upright LaTeX, micro as \mu: ``uF/cm^2`` -> ``\mathrm{\mu F/cm^{2}}``."""
    if unit in ("", "1"):
        return ""
    unit = re.sub(r"(?<![A-Za-z])u(?=[A-Za-z])", r"\\mu ", unit)
    unit = re.sub(r"\^\(?(-?\d+)\)?", r"^{\1}", unit)
    return r"\mathrm{" + unit.replace("*", r"\,") + "}"


@dataclass(frozen=True)
class Block:
    """One group of equations as LaTeX rows ``(lhs, rhs, note)``, or the parameter table.

    Event rows have an empty ``lhs`` (their ``rhs`` is the whole statement); table rows are
    ``(name, value, unit)``.
    """

    title: str
    rows: tuple[tuple[str, str, str], ...]
    kind: str = "equations"  # or "table"


def _expanded(model: Model, expr: sympy.Expr) -> sympy.Expr:
    """Return ``expr`` (display form) with intermediate expressions and currents substituted."""
    shown = {e.symbol: e.shown for e in model.expressions if e.shown is not None}
    shown.update({c.symbol: c.shown for c in model.currents if not c.is_input and c.shown is not None})
    for _ in range(len(shown) + 1):
        with sympy.evaluate(False):  # keep the written form of every piece
            new = expr.xreplace(shown)
        if new == expr:
            break
        expr = new
    return expr


_SCHEME_NAMES = {
    "euler": "forward Euler",
    "rk2": "RK2 (midpoint)",
    "rk4": "RK4",
    "exponential_euler": "exponential Euler",
}


def _scheme_notes(model: Model, derivation: MembraneDerivation | None) -> dict[str, str]:
    """Return each state's scheme as a note (``method: RK4``), for a model with per-state ``method`` lines; else none."""
    if not model.state_methods:
        return {}
    from .schemes import plan_integration

    plan = plan_integration(model, derivation)
    return {s: f"method: {_SCHEME_NAMES[plan.scheme(s)]}" for s in plan.odes}


def model_blocks(
    model: Model, derivation: MembraneDerivation | None, derivation_steps: bool = True, expand: bool = False
) -> list[Block]:
    """Return the model's equations grouped for display: membrane, currents, ODEs, expressions, events, parameters.

    ``expand`` substitutes intermediate expressions and currents into the ODEs.
    """
    token = _SCOPED.set(scoped_names(model))
    try:
        return _model_blocks(model, derivation, derivation_steps, expand)
    finally:
        _SCOPED.reset(token)


def _model_blocks(
    model: Model, derivation: MembraneDerivation | None, derivation_steps: bool, expand: bool
) -> list[Block]:
    blocks: list[Block] = []
    schemes = _scheme_notes(model, derivation)
    if derivation is not None:
        V = derivation.state
        C = sympy.simplify(model.charge / sympy.Symbol(V, real=True))
        C_tex = _tex(C)
        net = _net_current(model)
        Q = symbol_latex(model.charge_name)
        rows = []
        if derivation_steps:
            rows.append((Q, _tex(model.charge), "charge on the membrane capacitor"))
            rows.append((rf"\frac{{d{Q}}}{{dt}}", _time_derivative_tex(derivation.charge_rate.rhs), "differentiating"))
            rows.append(("I_m", rf"{C_tex} \, {_ddt(V)}", "the membrane current charges the capacitor"))
        rows.append((rf"{C_tex} \, {_ddt(V)}", net, "Kirchhoff: inward minus outward currents"))
        rows.append((_ddt(V), rf"\frac{{{net}}}{{{C_tex}}}", schemes.get(V, "")))
        if expand:
            inward = [_expanded(model, c.symbol) for c in model.currents if c.direction == "inward"]
            outward = [_expanded(model, c.symbol) for c in model.currents if c.direction == "outward"]
            terms = [*inward, *(sympy.Mul(-1, o, evaluate=False) for o in outward)]
            total = sympy.Add(*terms, evaluate=False) if len(terms) > 1 else (terms[0] if terms else sympy.Integer(0))
            rows.append((_ddt(V), rf"\frac{{1}}{{{C_tex}}} \left({_tex(total)}\right)", "currents substituted"))
        blocks.append(Block("Membrane equation, derived from the charge relation", tuple(rows)))
        blocks.append(
            Block(
                "Membrane currents",
                tuple(
                    (symbol_latex(c.name), r"\text{input}" if c.is_input else _tex(c.shown), c.direction)
                    for c in model.currents
                ),
            )
        )
    other = [s for s in all_odes(model, derivation) if derivation is None or s != derivation.state]
    if other:
        rows = []
        for s in other:
            rhs = model.ode(s).shown
            rows.append((_ddt(s), _tex(_expanded(model, rhs) if expand else rhs), schemes.get(s, "")))
        blocks.append(Block("State equations", tuple(rows)))
    if model.expressions:
        blocks.append(
            Block(
                "Intermediate expressions", tuple((symbol_latex(e.name), _tex(e.shown), "") for e in model.expressions)
            )
        )
    if model.event is not None:
        ev = model.event
        rows = [("", rf"\text{{spike when }} {_tex(ev.shown if ev.shown is not None else ev.relation)}", "")]
        for r in ev.resets:
            rows.append(("", rf"\text{{then }} {symbol_latex(r.state)} \leftarrow {_tex(r.new_value())}", ""))
        if ev.refractory is not None:
            rows.append(("", rf"\text{{refractory for }} {_tex(ev.refractory)}", ""))
        blocks.append(Block("Events", tuple(rows)))
    if model.parameters:
        blocks.append(
            Block(
                "Parameters",
                tuple((symbol_latex(p.name), f"{p.display_value:g}", _unit_tex(p.unit)) for p in model.parameters),
                kind="table",
            )
        )
    return blocks


def _aligned_rows(block: Block) -> list[str]:
    r"""Return the rows of an equation block as ``lhs &= rhs && \text{note}`` lines (no row ends)."""
    out = []
    for lhs, rhs, note in block.rows:
        row = f"{lhs} &= {rhs}" if lhs else f"&{rhs}"
        out.append(row + (rf" && \text{{{note}}}" if note else ""))
    return out


def model_latex(
    model: Model,
    derivation: MembraneDerivation | None,
    derivation_steps: bool = True,
    expand: bool = False,
    fmt: str = "tex",
    standalone: bool = False,
) -> str:
    """Return the model's equations as a LaTeX fragment (amsmath ``align*`` blocks), Markdown or HTML.

    ``fmt`` is ``tex``, ``markdown`` or ``html`` (math between ``$$`` delimiters, for docs
    sites and notebooks with MathJax/KaTeX); ``standalone`` makes a complete document (a
    compilable ``.tex`` file with amsmath, or an HTML page that loads MathJax).
    """
    blocks = model_blocks(model, derivation, derivation_steps, expand)
    if fmt == "tex":
        return _as_tex(model, blocks, standalone)
    if fmt == "markdown":
        return _as_markdown(model, blocks)
    if fmt == "html":
        return _as_html(model, blocks, standalone)
    raise ValueError(f"unknown format {fmt!r}: use tex, markdown or html")


def _as_tex(model: Model, blocks: list[Block], standalone: bool) -> str:
    lines: list[str] = [f"% {model.name}: equations generated by modelgen from {model.file}"]
    if model.description:
        lines.append(f"% {model.description}")
    for block in blocks:
        lines.append(f"% {block.title}")
        if block.kind == "table":
            lines.append(r"\begin{tabular}{lrl}")
            lines.append(r"parameter & value & unit \\ \hline")
            # a dimensionless parameter has an empty unit cell (not `$$`, which is display math)
            lines += [rf"${name}$ & {value} & {f'${unit}$' if unit else ''} \\" for name, value, unit in block.rows]
            lines.append(r"\end{tabular}")
        else:
            lines.append(r"\begin{align*}")
            lines.append(" \\\\\n".join(_aligned_rows(block)))
            lines.append(r"\end{align*}")
    if not standalone:
        return "\n".join(lines) + "\n"
    title = _tex_escape(model.name + (f": {model.description}" if model.description else ""))
    head = [
        r"\documentclass{article}",
        r"\usepackage{amsmath}",
        r"\usepackage[margin=2cm]{geometry}",
        r"\begin{document}",
        rf"\section*{{{title}}}",
    ]
    body = [
        ln if not ln.startswith("% ") or ln[2:] not in {b.title for b in blocks} else rf"\subsection*{{{ln[2:]}}}"
        for ln in lines
    ]
    return "\n".join(head + body + [r"\end{document}"]) + "\n"


def _tex_escape(text: str) -> str:
    out = text
    for ch in "\\&%$#_{}":
        out = out.replace(ch, "\\" + ch if ch != "\\" else r"\textbackslash{}")
    return out.replace("~", r"\textasciitilde{}").replace("^", r"\textasciicircum{}")


def _as_markdown(model: Model, blocks: list[Block]) -> str:
    lines = [f"## {model.name}", ""]
    if model.description:
        lines += [model.description, ""]
    for block in blocks:
        lines += [f"### {block.title}", ""]
        if block.kind == "table":
            lines += ["| parameter | value | unit |", "|---|---:|---|"]
            lines += [
                f"| ${name}$ | {value} | ${unit}$ |" if unit else f"| ${name}$ | {value} | |"
                for name, value, unit in block.rows
            ]
        else:
            lines += ["$$", r"\begin{aligned}", " \\\\\n".join(_aligned_rows(block)), r"\end{aligned}", "$$"]
        lines.append("")
    return "\n".join(lines)


def _as_html(model: Model, blocks: list[Block], standalone: bool) -> str:
    from html import escape

    lines = [f"<h2>{escape(model.name)}</h2>"]
    if model.description:
        lines.append(f"<p>{escape(model.description)}</p>")
    for block in blocks:
        lines.append(f"<h3>{escape(block.title)}</h3>")
        if block.kind == "table":
            lines.append("<table>")
            lines.append("<tr><th>parameter</th><th>value</th><th>unit</th></tr>")
            for name, value, unit in block.rows:
                cell = rf"\({escape(unit)}\)" if unit else ""
                lines.append(
                    rf'<tr><td>\({escape(name)}\)</td><td style="text-align:right">{escape(value)}</td><td>{cell}</td></tr>'
                )
            lines.append("</table>")
        else:
            math = "\\begin{aligned}\n" + " \\\\\n".join(_aligned_rows(block)) + "\n\\end{aligned}"
            lines.append(f'<div class="math">$$\n{escape(math)}\n$$</div>')
    body = "\n".join(lines) + "\n"
    if not standalone:
        return body
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(model.name)}</title>\n"
        '<script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>\n'
        "</head>\n<body>\n" + body + "</body>\n</html>\n"
    )

"""Code generation: a checked model and its integration plan -> a numpy module (text).

Decisions are made here and handed to the jinja2 template as plain data: which
assignments run in which order, which subexpressions are shared (sympy ``cse``), which
scheme updates each state. The template only lays the code out. The output is
deterministic: the same model, method and toolkit version give byte-identical text.
"""

from __future__ import annotations

import functools
import hashlib
import keyword
from dataclasses import dataclass
from pathlib import Path

import jinja2
import sympy
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import precedence

from . import __version__
from .derive import MembraneDerivation
from .model import TIME_SYMBOL, Model
from .schemes import Plan

__all__ = ["generate_code", "NumpyPrinter", "build_hash"]

# names the generated module uses at top level besides `_`-prefixed ones
_RESERVED = {"np", "math"}


class NumpyPrinter(NumPyPrinter):
    """sympy's numpy printer, printing ``np.f`` and readable numbers and branches."""

    def __init__(self, names: dict[str, str] | None = None):
        super().__init__({"fully_qualified_modules": True, "allow_unknown_functions": False})
        self.names = names or {}

    def _module_format(self, fqn, register=True):
        s = super()._module_format(fqn, register)
        return "np." + s[len("numpy.") :] if s.startswith("numpy.") else s

    def doprint(self, expr, assign_to=None):
        # print non-integer rationals as floats, so that 3/10*x reads 0.3*x
        expr = sympy.sympify(expr)
        rationals = {r: sympy.Float(float(r)) for r in expr.atoms(sympy.Rational) if not r.is_Integer}
        return super().doprint(expr.xreplace(rationals) if rationals else expr, assign_to)

    def _print_Symbol(self, expr):
        return self.names.get(expr.name, expr.name)

    def _print_Rational(self, expr):
        return _float_text(float(expr))

    def _print_Integer(self, expr):
        return str(int(expr))

    def _print_Float(self, expr):
        return _float_text(float(expr))

    def _print_Half(self, expr):
        return "0.5"

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.as_base_exp()
        if exp.is_Integer and exp < 0:
            inner = base if exp == -1 else base ** (-exp)
            return "1/" + self.parenthesize(inner, precedence(expr) + 1)
        if exp == sympy.Rational(1, 2):
            return f"np.sqrt({self._print(base)})"
        if exp == -sympy.Rational(1, 2):
            return f"1/np.sqrt({self._print(base)})"
        return super()._print_Pow(expr, rational=rational)

    def _nested(self, fn: str, args) -> str:
        args = [self._print(a) for a in sorted(args, key=sympy.default_sort_key)]
        out = args[0]
        for a in args[1:]:
            out = f"np.{fn}({out}, {a})"
        return out

    def _print_exprel(self, expr):
        return f"_exprel({self._print(expr.args[0])})"

    def _print_Max(self, expr):
        return self._nested("maximum", expr.args)

    def _print_Min(self, expr):
        return self._nested("minimum", expr.args)

    def _print_Piecewise(self, expr):
        # the last branch of our Piecewise is always (value, True)
        out = self._print(expr.args[-1][0])
        for value, cond in reversed(expr.args[:-1]):
            out = f"np.where({self._print(cond)}, {self._print(value)}, {out})"
        return out


class exprel(sympy.Function):  # noqa: N801 (printed as _exprel)
    """(exp(x) - 1)/x, which is 1 at x = 0: removes the 0/0 of rate functions like HH's alpha_m."""

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sympy.Integer(1)

    def fdiff(self, argindex=1):
        x = self.args[0]
        return (sympy.exp(x) * x - sympy.exp(x) + 1) / x**2


def regularize(expr: sympy.Expr) -> sympy.Expr:
    """Return ``expr`` with every 1/(c - c*exp(u)) rewritten through exprel(u).

    ``u/(1 - exp(-u))`` (HH's alpha_m at V = -40 mV) is 0/0 where u = 0, though its limit
    is finite; written as ``1/exprel(-u)`` it is finite everywhere.
    """
    reps = {}
    for p in expr.atoms(sympy.Pow):
        if not (p.exp.is_Integer and p.exp < 0 and p.base.is_Add and len(p.base.args) == 2):
            continue
        a, b = p.base.args
        for const, term in ((a, b), (b, a)):
            coeff, rest = term.as_coeff_Mul()
            if const.is_Number and const != 0 and isinstance(rest, sympy.exp) and coeff == -const:
                u = rest.args[0]
                reps[p] = (coeff * u * exprel(u)) ** p.exp
                break
    if not reps:
        return expr
    return sympy.factor_terms(expr.xreplace(reps))


def _float_text(x: float) -> str:
    """Return the shortest text that reads back as exactly ``x``."""
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x)}.0"
    return repr(x)


def python_names(model: Model) -> dict[str, str]:
    """Return model name -> identifier used in generated code (renaming clashes)."""
    taken = {n for n in _all_names(model)}
    out = {}
    for n in sorted(taken):
        if n in _RESERVED or keyword.iskeyword(n) or keyword.issoftkeyword(n):
            new = n + "_"
            while new in taken or new in out.values():
                new += "_"
            out[n] = new
    return out


def _all_names(model: Model):
    for group in (model.parameters, model.states, model.inputs, model.expressions, model.currents):
        for q in group:
            yield q.name


@functools.lru_cache(maxsize=1)
def toolkit_fingerprint() -> str:
    """Return a hash of the code generator itself (its modules and templates)."""
    here = Path(__file__).parent
    h = hashlib.sha256(__version__.encode())
    for f in sorted([*here.glob("*.py"), *(here / "templates").glob("*.j2")]):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def build_hash(model: Model, method: str) -> str:
    """Return the hash recorded in generated code: model source, method and toolkit."""
    h = hashlib.sha256()
    h.update(model.source.encode("utf-8"))
    h.update(f"\0{method}\0{toolkit_fingerprint()}".encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Assign:
    target: str
    code: str
    comment: str = ""


def _schedule(named: list[tuple[str, sympy.Expr, str]], printer: NumpyPrinter, tmp_prefix: str) -> list[Assign]:
    """Return assignments for ``named`` (target, expr, comment) with shared subexpressions.

    Each temporary is emitted just before its first use, so it never runs ahead of a
    named quantity it depends on.
    """
    exprs = [regularize(e) for _, e, _ in named]
    symbols = sympy.numbered_symbols(tmp_prefix, real=True)
    replacements, reduced = sympy.cse(exprs, symbols=symbols, optimizations=None, order="none")
    # a temporary for -x or 2*x saves nothing and hides the formula: put it back
    cheap = {}
    kept = []
    for sym, e in replacements:
        e = e.xreplace(cheap)
        if e.is_Mul and len(e.args) == 2 and e.args[0].is_Number and e.args[1].is_Symbol:
            cheap[sym] = e
        else:
            kept.append((sym, e))
    reduced = [r.xreplace(cheap) for r in reduced]
    temps = {s: e for s, e in kept}
    emitted: set[sympy.Symbol] = set()
    out: list[Assign] = []

    def emit_temps(expr):
        for s in sorted(expr.free_symbols, key=lambda s: s.name):
            if s in temps and s not in emitted:
                emit_temps(temps[s])
                emitted.add(s)
                out.append(Assign(printer.doprint(s), printer.doprint(temps[s])))

    for (target, _, comment), expr in zip(named, reduced):
        emit_temps(expr)
        out.append(Assign(target, printer.doprint(expr), comment))
    return out


def _needed(definitions: list[tuple[str, sympy.Expr, str]], targets) -> list[tuple[str, sympy.Expr, str]]:
    """Return the definitions that the target expressions use, directly or indirectly, in order."""
    by_name = {d[0]: d for d in definitions}
    need: set[str] = set()
    stack = [s.name for _, e, _ in targets for s in e.free_symbols]
    while stack:
        n = stack.pop()
        if n in by_name and n not in need:
            need.add(n)
            stack.extend(s.name for s in by_name[n][1].free_symbols)
    return [d for d in definitions if d[0] in need]


def _function(name: str, doc: str, definitions, targets, printer: NumpyPrinter) -> dict:
    """Return a generated function's data: the definitions it needs, then its targets."""
    named = _needed(definitions, targets) + list(targets)
    returns = ", ".join(t[0] for t in targets) + ("," if len(targets) == 1 else "")
    return {"name": name, "doc": doc, "body": _schedule(named, printer, "_x"), "returns": returns, "named": named}


def _propagator_code(prop, printer: NumpyPrinter, py) -> dict:
    """Return the step-invariant propagator entries and the update of each state."""
    from .schemes import DT_SYMBOL

    entries, updates = [], []
    for i, state in enumerate(prop.states):
        terms = []
        for j, col in enumerate(prop.columns):
            e = prop.matrix[i, j]
            if e == 0:
                continue
            name = f"_P_{state}_{'const' if col == '1' else col}"
            entries.append((name, e.xreplace({DT_SYMBOL: sympy.Symbol("dt", real=True)}), ""))
            terms.append(name if col == "1" else f"{name}*{py(col)}")
        updates.append((state, py(state), " + ".join(terms) or "0.0"))
    return {"entries": _schedule(entries, printer, "_p"), "names": [e[0] for e in entries], "updates": updates}


def _source_ref(model: Model, span) -> str:
    return f"[{Path(model.file).name}:{span.line}]" if span else ""


def _source_line(model: Model, span) -> str:
    """Return the user's line (without its comment, spaces collapsed) and its reference."""
    from .language import _strip_comment

    text = " ".join(_strip_comment(span.text).split())
    return f"{text}  {_source_ref(model, span)}"


def generate_code(model: Model, derivation: MembraneDerivation | None, plan: Plan) -> str:
    """Return the text of the generated numpy module for ``model`` integrated by ``plan``."""
    names = python_names(model)
    printer = NumpyPrinter(names)
    py = lambda n: names.get(n, n)  # noqa: E731
    states = [s.name for s in model.states]

    definitions = [(py(name), expr, _source_line(model, span)) for name, expr, span in model.definition_order()]

    def derivative(s: str) -> tuple[str, sympy.Expr, str]:
        if derivation is not None and s == derivation.state:
            ref = f"{s} from {model.charge_name} = {sympy.sstr(model.charge)} and the currents"
        else:
            ref = _source_line(model, model.ode(s).span)
        return (f"_d{s}_dt", plan.odes[s], f"d{s}/dt: {ref}")

    def rate(s: str) -> tuple[str, sympy.Expr, str]:
        return (f"_B_{s}", plan.linear_rates[s], f"B = d(d{s}/dt)/d{s}")

    # the functions the step calls: name, what they return, and their scheduled bodies
    functions = []
    groups: list[tuple[str, str, list[str]]] = []
    if plan.method == "exponential_euler":
        membrane = model.membrane_state if model.membrane_state and len(states) > 1 else None
        others = [s for s in states if s != membrane]
        groups.append(
            ("_rhs_states" if membrane else "_rhs", "derivatives and linear rates B of " + ", ".join(others), others)
        )
        if membrane:
            groups.append(("_rhs_membrane", f"derivative and linear rate B of {membrane}", [membrane]))
        for fname, doc, group in groups:
            targets = [derivative(s) for s in group] + [rate(s) for s in group if plan.linear_rates.get(s) is not None]
            functions.append(_function(fname, doc, definitions, targets, printer))
    elif plan.method != "exact":
        functions.append(_function("_rhs", "time derivatives", definitions, [derivative(s) for s in states], printer))
    propagator = None
    if plan.propagator is not None:
        propagator = _propagator_code(plan.propagator, printer, py)
    update_groups = [[(s, py(s), plan.linear_rates.get(s) is not None) for s in group] for _, _, group in groups]
    obs_body = _schedule(definitions, printer, "_o")
    named = [t for f in functions for t in f["named"]]

    # initial values: expressions of parameters and inputs
    init_body = [
        Assign(py(name), f"given[{name!r}] if {name!r} in given else {printer.doprint(regularize(expr))}")
        for name, expr in model.initial_order
    ]

    # event
    event = None
    if model.event is not None:
        ev = model.event
        resets = [
            (py(r.state), printer.doprint(model.expand(r.new_value())), f"{r.state} {r.op} {sympy.sstr(r.expr)}")
            for r in ev.resets
        ]
        event = {
            "condition": f"{printer.doprint(model.expand(ev.relation.lhs))} {ev.relation.rel_op} {printer.doprint(model.expand(ev.relation.rhs))}",
            "text": _source_line(model, ev.span),
            "resets": resets,
            "crossing": not ev.resets,
            "refractory": printer.doprint(model.expand(ev.refractory)) if ev.refractory is not None else None,
            "hold": py(model.membrane_state) if model.membrane_state else None,
        }

    receptors = []
    for name in model.receptors:
        statements = []
        for syn in model.synapses:
            if syn.receptor == name:
                inc = syn.factor * sympy.Symbol("w", real=True)
                statements.append((py(syn.target), printer.doprint(inc), f"{syn.text}  {_source_ref(model, syn.span)}"))
        receptors.append({"name": name, "statements": statements})
    receptor_targets = ", ".join(dict.fromkeys(py(s.target) for s in model.synapses))

    uses_t = any(TIME_SYMBOL in e.free_symbols for _, e, _ in named)
    tableau = None
    if plan.tableau is not None:
        tb = plan.tableau
        tableau = {
            "stages": [
                {"c": _float_text(float(c)), "a": [(j, _float_text(float(a))) for j, a in enumerate(row) if a != 0]}
                for row, c in zip(tb.a, tb.c)
            ],
            "b": [(i, _float_text(float(b))) for i, b in enumerate(tb.b) if b != 0],
        }

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("modelgen", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    template = env.get_template("numpy_module.py.j2")
    return template.render(
        version=__version__,
        model=model,
        source_name=Path(model.file).name,
        build_hash=build_hash(model, plan.method),
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
        rhs_args=", ".join(["t"] + [py(s.name) for s in model.states] + [py(i.name) for i in model.inputs]),
        derivs=", ".join(f"_d{s.name}_dt" for s in model.states) + ("," if len(model.states) == 1 else ""),
        state_names=", ".join(py(s.name) for s in model.states),
        input_args=", ".join(py(i.name) for i in model.inputs),
        observables=[(name, py(name)) for name, _, _ in model.definition_order()],
        obs_body=obs_body,
        functions=functions,
        propagator=propagator,
        receptors=receptors,
        receptor_targets=receptor_targets,
        update_groups=update_groups,
        init_body=init_body,
        event=event,
        uses_t=uses_t,
        uses_exprel=any(
            "_exprel(" in a.code
            for a in [
                *obs_body,
                *init_body,
                *(a for f in functions for a in f["body"]),
                *(propagator or {}).get("entries", []),
            ]
        ),
        tableau=tableau,
        repr=repr,
    )

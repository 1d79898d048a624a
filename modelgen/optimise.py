"""Optimise: a checked model and its integration plan -> one time step as a straight-line program.

The program is what every backend prints: a list of statements (read an input, assign a
named value, update a state in place) in execution order, plus the *step-invariant*
values -- subexpressions of parameters and ``dt`` only, such as ``1/C_m`` or
``exp(-dt/tau)`` -- which are hoisted out of the step and computed once per run.
Shared subexpressions are computed once (sympy ``cse``); a division by a step-invariant
value becomes a multiplication by its hoisted reciprocal.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import sympy
from sympy.codegen.cfunctions import expm1

from .derive import MembraneDerivation
from .functions import exprel
from .model import TIME_SYMBOL, Model
from .schemes import DT_SYMBOL, SCHEMES, Plan

__all__ = ["Statement", "StepProgram", "step_program", "regularize", "exprel", "DT"]

DT = sympy.Symbol("dt", real=True)  # the time step as it appears in generated code


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


@dataclass(frozen=True)
class Statement:
    """One line of the step program.

    kind ``input``: read input ``target`` at time t + offset*dt (``stage`` indexes the offset);
    ``assign``: ``target = expr``; ``update``: the state ``target`` becomes ``expr`` (in place);
    ``note``: a comment only. ``inputs_only``: an assign whose value reads only inputs, parameters
    and dt (``_in1 = I_ext + _c0``): it changes only when an input does, so a step whose inputs are
    constant may keep it from the step before (numpy's vectorised step does).
    """

    kind: str
    target: str = ""
    expr: sympy.Expr | None = None
    comment: str = ""
    stage: int = 0
    inputs_only: bool = False


@dataclass
class StepProgram:
    """One time step of a model: hoisted invariants, then statements; all names are Python names."""

    invariants: list[tuple[str, sympy.Expr, str]]  # (name, expression of parameters and dt, comment)
    statements: list[Statement]
    states: list[str]  # Python names of the states, in declaration order
    parameters: list[str]  # Python names of the parameters the statements use
    inputs: list[str]  # Python names of the inputs
    offsets: list[sympy.Rational]  # the distinct t + c*dt at which inputs are read
    uses_t: bool = False
    names: dict[str, str] = field(default_factory=dict)  # model name -> Python name

    def used_names(self, extra: list[sympy.Expr] = ()) -> set[str]:
        """Return the names the statements (and ``extra`` expressions) read directly."""
        used = set()
        for st in self.statements:
            if st.expr is not None:
                used |= {s.name for s in st.expr.free_symbols}
        for e in extra:
            used |= {s.name for s in e.free_symbols}
        return used

    def used_invariants(self, extra: list[sympy.Expr] = ()) -> list[str]:
        """Return the invariants that the statements (and ``extra`` expressions) read directly."""
        used = self.used_names(extra)
        return [name for name, _, _ in self.invariants if name in used]


def _sym(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, real=True)


def floats(e: sympy.Expr) -> sympy.Expr:
    """Return ``e`` with non-integer rationals as floats (3/10*x -> 0.3*x; exp(-V/18 - 65/18) -> c*exp(-V/18))."""
    rationals = {r: sympy.Float(float(r)) for r in e.atoms(sympy.Rational) if not r.is_Integer}
    return e.xreplace(rationals) if rationals else e


def _source_line(model: Model, span) -> str:
    """Return the user's line (without its comment, spaces collapsed) and its reference."""
    from .language import _strip_comment

    if span is None:
        return ""
    text = " ".join(_strip_comment(span.text).split())
    return f"{text}  [{Path(model.file).name}:{span.line}]"


class _Builder:
    """Collects statements, numbering CSE temporaries uniquely across the whole step."""

    def __init__(self, model: Model, names: dict[str, str]):
        self.model = model
        self.names = names
        self.rename = {_sym(k): _sym(v) for k, v in names.items()}
        self.temps = itertools.count(1)
        self.statements: list[Statement] = []
        self.definitions = [
            (names.get(n, n), floats(regularize(e.xreplace(self.rename))), _source_line(model, span))
            for n, e, span in model.definition_order()
        ]
        # a named value that is another name (NMODL's v = V/mV is V in internal units) is read as that
        # name: copying it would cost a step an array copy
        self.aliases: dict[sympy.Symbol, sympy.Expr] = {}
        for n, e, _ in self.definitions:
            if e.is_Symbol:
                self.aliases[_sym(n)] = e.xreplace(self.aliases)
        if self.aliases:
            self.definitions = [(n, e.xreplace(self.aliases), c) for n, e, c in self.definitions]

    def py(self, name: str) -> str:
        return self.names.get(name, name)

    def expr(self, e: sympy.Expr) -> sympy.Expr:
        return floats(regularize(e.xreplace(self.rename)).xreplace({DT_SYMBOL: DT}).xreplace(self.aliases))

    def needed(self, targets: list[tuple[str, sympy.Expr, str]]) -> list[tuple[str, sympy.Expr, str]]:
        """Return the definitions the targets use, directly or indirectly, in dependency order."""
        by_name = {d[0]: d for d in self.definitions}
        need: set[str] = set()
        stack = [s.name for _, e, _ in targets for s in e.free_symbols]
        while stack:
            n = stack.pop()
            if n in by_name and n not in need:
                need.add(n)
                stack.extend(s.name for s in by_name[n][1].free_symbols)
        return [d for d in self.definitions if d[0] in need]

    def invariant(self, e: sympy.Expr, params: set[str]) -> bool:
        """Whether ``e`` reads only parameters, dt and named values of these (q10 = 3^((T - 6.3 degC)/10 K))."""
        by_name = {d[0]: d[1] for d in self.definitions}
        return all(
            s.name in params or s == DT or (s.name in by_name and self.invariant(by_name[s.name], params))
            for s in e.free_symbols
        )

    def schedule(
        self, targets: list[tuple[str, sympy.Expr, str]], subs: dict | None = None, reads: list[sympy.Expr] = ()
    ) -> None:
        """Append the definitions the targets need and the targets, sharing subexpressions (cse).

        ``subs`` replaces symbols (the stage values of states in a Runge-Kutta stage).
        ``reads``: expressions of named values that later statements read (a gate's x_inf).
        Each temporary is emitted just before its first use.
        """
        named = self.needed(list(targets) + [("", e, "") for e in reads]) + list(targets)
        exprs = [e.xreplace(subs) if subs else e for _, e, _ in named]
        symbols = (sympy.Symbol(f"_x{i}", real=True) for i in self.temps)
        replacements, reduced = sympy.cse(exprs, symbols=symbols, optimizations=None, order="none")
        # a temporary for -x or 2*x saves nothing and hides the formula: put it back
        cheap, kept = {}, []
        for s, e in replacements:
            e = e.xreplace(cheap)
            if e.is_Mul and len(e.args) == 2 and e.args[0].is_Number and e.args[1].is_Symbol:
                cheap[s] = e
            elif isinstance(e, (sympy.Rel, sympy.And, sympy.Or, sympy.Not)):  # a condition stays in its where()
                cheap[s] = e
            else:
                kept.append((s, e))
        reduced = [r.xreplace(cheap) for r in reduced]
        # a named value that is just a temporary takes the temporary's place (alpha_m, not _x1)
        alias = {}
        for (target, _, comment), e in zip(named, reduced):
            if e.is_Symbol and e in dict(kept) and e not in alias:
                alias[e] = (target, comment)
        to_name = {s: _sym(t) for s, (t, _) in alias.items()}
        temps = {s: e.xreplace(to_name) for s, e in kept}
        reduced = [r.xreplace(to_name) for r in reduced]
        emitted: set[sympy.Symbol] = set()

        def emit_temps(e):
            for s in sorted(e.free_symbols, key=lambda s: s.name):
                if s in to_name.values():
                    s = next(k for k, v in to_name.items() if v == s)
                if s in temps and s not in emitted:
                    emit_temps(temps[s])
                    emitted.add(s)
                    target, comment = alias.get(s, (s.name, ""))
                    self.statements.append(Statement("assign", target, temps[s], comment))

        for (target, _, comment), e in zip(named, reduced):
            emit_temps(e)
            if any(t == target for t, _ in alias.values()):
                continue  # already assigned in the temporary's place
            self.statements.append(Statement("assign", target, e, comment))


def _derivative_comment(model: Model, derivation: MembraneDerivation | None, s: str) -> str:
    if derivation is not None and s == derivation.state:
        return f"d{s}/dt: {s} from {model.charge_name} = {sympy.sstr(model.charge)} and the currents"
    ode = model.ode(s)
    return f"d{s}/dt: {_source_line(model, ode.span) if ode else ''}"


def step_program(model: Model, derivation: MembraneDerivation | None, plan: Plan, names: dict[str, str]) -> StepProgram:
    """Return the straight-line program of one step of ``model`` integrated by ``plan``."""
    b = _Builder(model, names)
    py = b.py
    states = [s.name for s in model.states]
    inputs = [py(i.name) for i in model.inputs]
    offsets: list[sympy.Rational] = [sympy.Integer(0)]
    params = {py(p.name) for p in model.parameters}

    def read_inputs(c) -> None:
        c = sympy.nsimplify(c)
        if c not in offsets:
            offsets.append(c)
        for name in inputs:
            b.statements.append(Statement("input", name, None, "", offsets.index(c)))

    def derivative(s: str) -> tuple[str, sympy.Expr, str]:
        return (f"_d{py(s)}_dt", b.expr(plan.odes[s]), _derivative_comment(model, derivation, s))

    def exponential_euler(group_states: list[str], h: sympy.Expr, subs: dict | None) -> None:
        """Append exponential Euler updates of ``group_states`` over ``h`` (``subs``: t at the sub-step's start)."""
        hs = "dt" if h == DT else sympy.sstr(h)  # the step in comments: dt, or dt/2 for a half step
        membrane = model.membrane_state if model.membrane_state in group_states and len(group_states) > 1 else None
        groups = [[s for s in group_states if s != membrane]] + ([[membrane]] if membrane else [])
        for gi, group in enumerate(groups):
            if len(groups) > 1:
                b.statements.append(
                    Statement(
                        "note",
                        comment=(
                            "exponential Euler (exact for dx/dt = A + B*x with A, B frozen over the step):\n"
                            "first every state but the membrane potential, from the values at t ..."
                            if gi == 0
                            else "... then the membrane potential, with those states already updated (staggered, as in NEURON)"
                        ),
                    )
                )
            else:
                b.statements.append(
                    Statement(
                        "note", comment="exponential Euler (exact for dx/dt = A + B*x with A, B frozen over the step)"
                    )
                )
            # dx/dt = A + B*x with B constant (a leak, a synaptic decay): x = x*exp(B*dt) + A*(exp(B*dt) - 1)/B,
            # where exp(B*dt) is computed once
            fixed = {s: _constant_rate(model, b, plan, s, params) for s in group}
            # a gate, dx/dt = alpha*(1 - x) - beta*x: f = A + B*x with A = alpha, B = -(alpha + beta)
            split = {s: _split_rate(model, b, plan, s) if fixed[s] is None else None for s in group}
            factored: dict[str, bool] = {}  # state -> whether F is affine in it (F = F0 + G*x)
            relaxing: set[str] = set()  # affine states updated as x_inf + (x - x_inf)*exp(-c*S*h)
            relax: dict[str, tuple[sympy.Expr, sympy.Expr]] = {}  # gate -> (its rate S, its x_inf) in the update
            targets = []
            for s in group:
                if split[s] is not None:
                    A, B = split[s]
                    S = sympy.expand(-B)  # the relaxation rate, alpha + beta for a gate
                    # dx/dt = (x_inf - x)/tau: A/S is x_inf itself, a named value; nothing to compute
                    inf = A / S if (A / S).is_Symbol else None
                    if inf is not None:
                        S = _rate_of_time_constant(b, S, params)
                    elif not (A.is_Symbol and A in S.free_symbols):
                        targets.append((f"_A_{py(s)}", A, _derivative_comment(model, derivation, s) + " = A + B*x"))
                    if _scaled_name(b, S, params):  # c*sum: the factor c joins dt's in the update's hoisted constant
                        S_value = S
                    else:
                        targets.append((f"_S_{py(s)}", S, f"{s} relaxes at the rate S = -d(d{s}/dt)/d{s}"))
                        S_value = _sym(f"_S_{py(s)}")
                    if inf is None:
                        A_value = A if A.is_Symbol and A in S.free_symbols else _sym(f"_A_{py(s)}")
                        targets.append((f"_{py(s)}_inf", A_value / S_value, f"... to {s}_inf = A/S"))
                    relax[s] = (S_value, inf if inf is not None else _sym(f"_{py(s)}_inf"))
                elif fixed[s] is None:
                    f_full, rate = derivative(s), plan.linear_rates.get(s)
                    common = _common_factor(f_full[1], b.expr(rate), params) if rate is not None else None
                    if common is not None:
                        # dV/dt = c*F and B = c*G with c constant (c = 1/C_m): the update needs only F/G and c*dt
                        c, F, G = common
                        F0 = _value_at_zero(model, b, plan, s, c)
                        G_sym = _sym(f"_G_{py(s)}")
                        if F0 is not None:
                            sources = [d[2] for d in b.needed([f_full]) if d[2]]  # the currents, inlined in F0 and G
                            comment = "\n".join([f_full[2], *sources, f"= c*(F0 + G*{s}) with c = {c}: F0"])
                            targets.append((f"_F0_{py(s)}", F0, comment))
                            if _moves_with(b, plan, G, s, states):
                                # G reads states whose derivative reads x (a membrane's gates): relax to
                                # x_inf = F0/S, S = -G, whose divide runs beside exp(-c*S*h); after it
                                # only a subtract and a multiply-add (the gates' form)
                                S_sym = _sym(f"_S_{py(s)}")
                                relaxing.add(s)
                                rate = f"S = -G: {s} relaxes at the rate c*S = -d(d{s}/dt)/d{s}"
                                targets.append((f"_S_{py(s)}", sympy.expand(-G), rate))
                                targets.append(
                                    (f"_{py(s)}_inf", _sym(f"_F0_{py(s)}") / S_sym, f"... to {s}_inf = F0/S")
                                )
                                targets.append((f"_X_{py(s)}", sympy.exp(-S_sym * (c * h)), f"exp(-c*S*{hs})"))
                            else:
                                # G does not move with x: x*exp(B*h) + F0*(exp(B*h) - 1)/G, the form of the fixed
                                # rates above, whose chain of dependent operations from x to x is a multiply and an add
                                targets.append((f"_G_{py(s)}", G, f"B = d(d{s}/dt)/d{s} = c*G"))
                                targets.append((f"_X_{py(s)}", sympy.exp(G_sym * (c * h)), f"exp(B*{hs})"))
                                targets.append(
                                    (f"_E_{py(s)}", (_sym(f"_X_{py(s)}") - 1) / G_sym, f"(exp(B*{hs}) - 1)/G")
                                )
                        else:
                            targets.append((f"_F_{py(s)}", F, f"{f_full[2]}\n= c*F with c = {c}"))
                            targets.append((f"_G_{py(s)}", G, f"B = d(d{s}/dt)/d{s} = c*G"))
                            targets.append(_growth_factor(py(s), G_sym, c * h))
                        factored[s] = F0 is not None
                    else:
                        targets.append(f_full)
                        if rate is not None:
                            targets.append((f"_B_{py(s)}", b.expr(rate), f"B = d(d{s}/dt)/d{s}"))
                            targets.append(_growth_factor(py(s), _sym(f"_B_{py(s)}"), h))
                elif fixed[s][1] != 0:
                    comment = f"d{s}/dt = A + B*{s} with a constant B: A  ({_derivative_comment(model, derivation, s)})"
                    targets.append((f"_A_{py(s)}", fixed[s][1], comment))
            reads = [e for pair in relax.values() for e in pair]
            if targets or reads:
                b.schedule(targets, subs, reads)
            for s in group:
                x = _sym(py(s))
                if fixed[s] is not None:
                    B, A = fixed[s]
                    new = x * sympy.exp(B * h) + (_sym(f"_A_{py(s)}") * (expm1(B * h) / B) if A != 0 else 0)
                    comment = f"{s} = {s}*exp(B*{hs}) + A*(exp(B*{hs}) - 1)/B, B = {sympy.sstr(B)}"
                elif split[s] is not None:
                    S, inf = relax[s]
                    new = inf + (x - inf) * sympy.exp(-h * S)
                    comment = (
                        f"{_derivative_comment(model, derivation, s)}\n= A + B*{s} with A = {split[s][0]}, B = -S: "
                        f"{s} = {s}_inf + ({s} - {s}_inf)*exp(-S*{hs})"
                    )
                elif s in relaxing:
                    inf = _sym(f"_{py(s)}_inf")
                    new = inf + (x - inf) * _sym(f"_X_{py(s)}")
                    comment = f"{s} = {s}_inf + ({s} - {s}_inf)*exp(-c*S*{hs}) (= {s} + c*F*(exp(B*{hs}) - 1)/B)"
                elif s in factored and factored[s]:
                    new = x * _sym(f"_X_{py(s)}") + _sym(f"_F0_{py(s)}") * _sym(f"_E_{py(s)}")
                    comment = f"{s} = {s}*exp(B*{hs}) + F0*(exp(B*{hs}) - 1)/G (= {s} + c*F*(exp(B*{hs}) - 1)/B)"
                elif s in factored:
                    new = x + _sym(f"_F_{py(s)}") * _sym(f"_E_{py(s)}")
                    comment = f"{s} += f*(exp(B*{hs}) - 1)/B with f = c*F, B = c*G"
                elif plan.linear_rates.get(s) is not None:
                    new = x + _sym(f"_d{py(s)}_dt") * _sym(f"_E_{py(s)}")
                    comment = ""
                else:
                    new = x + _sym(f"_d{py(s)}_dt") * h
                    comment = ""
                b.statements.append(Statement("update", py(s), new, comment))

    def runge_kutta(rk_states: list[str]) -> None:
        """Append the stages of ``plan.tableau`` and the update of ``rk_states`` (other states held)."""
        tb = plan.tableau
        ks: list[dict[str, sympy.Symbol]] = []
        x = {s: _sym(py(s)) for s in rk_states}
        for i, (row, c) in enumerate(zip(tb.a, tb.c)):
            b.statements.append(Statement("note", comment=f"stage {i + 1} of {len(tb.c)}"))
            read_inputs(c)
            subs = {}
            if any(a != 0 for a in row):
                for s in rk_states:
                    stage_value = x[s] + DT * sympy.Add(*[a * ks[j][s] for j, a in enumerate(row) if a != 0])
                    name = f"_{py(s)}_{i + 1}"
                    b.statements.append(Statement("assign", name, stage_value))
                    subs[x[s]] = _sym(name)
            if c != 0:
                subs[TIME_SYMBOL] = TIME_SYMBOL + c * DT
            targets = [
                (f"_k{i + 1}_{py(s)}", b.expr(plan.odes[s]), _derivative_comment(model, derivation, s))
                for s in rk_states
            ]
            b.schedule(targets, subs)
            ks.append({s: _sym(f"_k{i + 1}_{py(s)}") for s in rk_states})
        # the weights over their common denominator (rk4: dt/6*(k1 + 2*k2 + 2*k3 + k4)): fewer
        # multiplies, and from the last stage to x an add, a multiply and an add
        weights = [sympy.S(bi) for bi in tb.b]
        d = math.lcm(*[int(w.q) for w in weights]) if all(w.is_Rational for w in weights) else 1
        d = d if d <= 1000 else 1
        b.statements.append(
            Statement(
                "note", comment="x += dt * (sum of b_i k_i)" + (f" = dt/{d} * (sum of {d}*b_i k_i)" if d > 1 else "")
            )
        )
        for s in rk_states:
            incr = sympy.Add(*[w * d * ks[j][s] for j, w in enumerate(weights) if w != 0])
            b.statements.append(Statement("update", py(s), x[s] + DT / d * incr))

    def whole_exponential_euler() -> None:
        read_inputs(0)
        exponential_euler(states, DT, None)

    def exact() -> None:
        """Append x(t + dt) = exp(A dt) x(t) + (the response to what is held over the step)."""
        prop = plan.propagator
        read_inputs(0)
        b.statements.append(
            Statement(
                "note",
                comment="x(t + dt) = exp(A dt) x(t) + (the response to constants and inputs held over the step)",
            )
        )
        cols = [sympy.Integer(1) if c == "1" else _sym(py(c)) for c in prop.columns]
        news = {}
        for i, s in enumerate(prop.states):
            terms = [b.expr(prop.matrix[i, j]) * cols[j] for j in range(len(cols)) if prop.matrix[i, j] != 0]
            news[py(s)] = sympy.Add(*terms)
        for s, e in _in_place_order(news):
            b.statements.append(Statement("assign", s, e) if s.startswith("_") else Statement("update", s, e))

    if plan.is_split:
        # Strang splitting: half a step of exponential Euler (the other states held), a whole step of the
        # Runge-Kutta states (these held), half a step again: second order where the half steps are exact
        ee = [s for s in states if plan.scheme(s) == "exponential_euler"]
        rk = [s for s in states if s not in ee]
        split = (
            f"{', '.join(ee)} by exponential Euler, {', '.join(rk)} by {plan.method.split('+')[0]} (Strang splitting)"
        )
        b.statements.append(
            Statement("note", comment=f"{split}:\nhalf a step (dt/2) of {', '.join(ee)}, the others held at t")
        )
        read_inputs(0)
        exponential_euler(ee, DT / 2, None)
        b.statements.append(Statement("note", comment=f"a whole step of {', '.join(rk)}, {', '.join(ee)} held"))
        runge_kutta(rk)
        b.statements.append(Statement("note", comment=f"the second half step of {', '.join(ee)}, at t + dt"))
        read_inputs(1)
        exponential_euler(ee, DT / 2, {TIME_SYMBOL: TIME_SYMBOL + DT})
    else:
        # the step of the plan's scheme, by its kind (a registered Runge-Kutta tableau needs nothing here)
        {"exponential_euler": whole_exponential_euler, "exact": exact, "runge_kutta": lambda: runge_kutta(states)}[
            SCHEMES[plan.method].kind
        ]()

    invariants, statements = _hoist(b.statements, params, set(inputs))
    used = set()
    for st in statements:
        if st.expr is not None:
            used |= {s.name for s in st.expr.free_symbols}
    for _, e, _ in invariants:
        used |= {s.name for s in e.free_symbols}
    uses_t = TIME_SYMBOL.name in used
    return StepProgram(
        invariants=invariants,
        statements=statements,
        states=[py(s) for s in states],
        parameters=[py(p.name) for p in model.parameters if py(p.name) in used],
        inputs=inputs,
        offsets=offsets,
        uses_t=uses_t,
        names=dict(names),
    )


def _growth_factor(s: str, B: sympy.Symbol, h: sympy.Expr) -> tuple[str, sympy.Expr, str]:
    """Return the target ``_E_s = (exp(B*h) - 1)/B`` of exponential Euler's update ``s += f*_E_s``
    (``s``: the state's Python name).

    Named on its own so that the division is made before the multiplication by f: B does not
    depend on s, f does, so one neuron's chain of dependent operations from s to s (what bounds
    a compiled loop's speed for a few neurons) holds a multiply and an add, not also a divide.
    """
    return (f"_E_{s}", expm1(B * h) / B, "(exp(B*h) - 1)/B over the step h, before f multiplies it")


def _reads(b: _Builder, e: sympy.Expr, x: sympy.Symbol) -> bool:
    """Whether ``e`` reads ``x``, itself or through the named values it uses."""
    return x in e.free_symbols or any(x in d[1].free_symbols for d in b.needed([("", e, "")]))


def _moves_with(b: _Builder, plan: Plan, G: sympy.Expr, s: str, states: list[str]) -> bool:
    """Whether G (of dX/dt = c*(F0 + G*X)) reads another state whose derivative reads X.

    Then G, and exp(B*h) with it, lie on the chain of dependent operations from one step's X to
    the next (a membrane's gates follow V), and the update that puts the divide beside the
    exponential is the shorter one; else (a synaptic conductance decaying on its own) the one
    whose chain from X to X is a multiply and an add.
    """
    x = _sym(b.py(s))
    return any(
        _reads(b, G, _sym(b.py(other))) and _reads(b, b.expr(plan.odes[other]), x)
        for other in states
        if other != s and other in plan.odes
    )


def _value_at_zero(model: Model, b: _Builder, plan: Plan, s: str, c: sympy.Expr) -> sympy.Expr | None:
    """Return F0 with dX/dt = c*(F0 + G*X), F0 and G free of X (a conductance-based membrane), else None."""
    x = _sym(b.py(s))
    F = sympy.expand(b.expr(model.expand(plan.odes[s])) / c)
    if sympy.diff(F, x, 2) != 0 or x in sympy.diff(F, x).free_symbols:
        return None
    return F.subs(x, 0)


def _constant_rate(model: Model, b: _Builder, plan: Plan, s: str, params: set[str]):
    """Return (B, A) if dX/dt = A + B*X with B of parameters only (else None); A may vary."""
    rate = plan.linear_rates.get(s)
    if rate is None:
        return None
    B = b.expr(model.expand(rate))
    if not B.free_symbols <= {_sym(p) for p in params}:
        return None
    x = _sym(b.py(s))
    A = sympy.expand(b.expr(model.expand(plan.odes[s])) - B * x)
    if x in A.free_symbols:
        return None
    return B, A


def _common_factor(f: sympy.Expr, B: sympy.Expr, params: set[str]):
    """Return (c, F, G) with f = c*F, B = c*G and c a product of parameters (not 1), else None."""
    constant = {_sym(p) for p in params}

    def split(e):
        if not e.is_Mul:
            return sympy.Integer(1), e
        c = [a for a in e.args if a.free_symbols and a.free_symbols <= constant]
        return sympy.Mul(*c), sympy.Mul(*[a for a in e.args if a not in c])

    (cf, F), (cb, G) = split(f), split(B)
    if cf == 1 or cf != cb:
        return None
    return cf, F, G


def _split_rate(model: Model, b: _Builder, plan: Plan, s: str):
    """Return (A, B) of dX/dt = A + B*X in the names the model wrote, if no named value in dX/dt reads X.

    For a gate, dm/dt = alpha_m*(1 - m) - beta_m*m: A = alpha_m, B = -alpha_m - beta_m. None
    where a named value reads X (the membrane potential: the currents read it).
    """
    if plan.linear_rates.get(s) is None:
        return None
    x = _sym(b.py(s))
    f = b.expr(plan.odes[s])
    if any(x in e.free_symbols for _, e, _ in b.needed([("", f, "")])):
        return None
    B = sympy.expand(sympy.diff(f, x))
    A = sympy.expand(f.subs(x, 0))
    if x in B.free_symbols or sympy.expand(f - A - B * x) != 0:
        return None
    return A, B


def _rate_of_time_constant(b: _Builder, S: sympy.Expr, params: set[str]) -> sympy.Expr:
    """Return the rate S = 1/tau with tau's definition put in where tau is a product.

    NMODL's rates write ``mtau = 1/(q10*(alpha + beta))``: 1/mtau is then q10*(alpha + beta), a
    multiplication where computing mtau and its reciprocal takes two divisions. A time
    constant that is a sum (``0.36 ms + 1.2 ms/(1 + exp(...))``) is left as it is.
    """
    if not (S.is_Pow and S.exp == -1 and S.base.is_Symbol):
        return S
    tau = next((e for name, e, _ in b.definitions if name == S.base.name), None)
    if tau is None or not (tau.is_Mul or tau.is_Pow):
        return S
    return 1 / tau


def _scaled_name(b: _Builder, e: sympy.Expr, params: set[str]) -> bool:
    """Whether ``e`` is one named value, or one times step-invariant factors (q10*sum): no name of its own needed."""
    varying = [a for a in sympy.Mul.make_args(e) if not b.invariant(a, params)]
    return len(varying) == 1 and varying[0].is_Symbol


def _in_place_order(news: dict[str, sympy.Expr]) -> list[tuple[str, sympy.Expr]]:
    """Return assignments that give every state its new value when applied in order, in place.

    A state can be overwritten once no other state's new value still reads its old value;
    where that is impossible (a cycle), new values go to temporaries ``_X_next`` first.
    """
    pending = dict(news)
    order = []
    while pending:
        free = [s for s in pending if not any(_sym(s) in e.free_symbols for other, e in pending.items() if other != s)]
        if not free:
            break
        for s in free:
            order.append((s, pending.pop(s)))
    if pending:
        for s, e in pending.items():
            order.append((f"_{s}_next", e))
        for s in pending:
            order.append((s, _sym(f"_{s}_next")))
    return order


def _trivial(e: sympy.Expr) -> bool:
    """A leaf: nothing to gain by precomputing it."""
    return e.is_Symbol or e.is_Number


def _hoist(
    statements: list[Statement], params: set[str], inputs: set[str] = frozenset()
) -> tuple[list[tuple[str, sympy.Expr, str]], list[Statement]]:
    """Return (invariants, statements) with every step-invariant subexpression precomputed once.

    A subexpression is step-invariant when it reads only parameters and dt; named values
    assigned such an expression become invariants themselves. The terms of a sum (or factors of
    a product) that read only ``inputs`` and such values are gathered into a named value of their
    own (``_F0_V = E*g + I_ext + _c1`` -> ``_in1 = I_ext + _c1``, ``_F0_V = E*g + _in1``), marked
    ``inputs_only`` and assigned before the statement, once per reading of the inputs.
    """
    constant = {_sym(p) for p in params} | {DT}
    input_symbols = {_sym(i) for i in inputs}
    invariants: list[tuple[str, sympy.Expr, str]] = []
    known: dict[sympy.Expr, sympy.Symbol] = {}
    counter = itertools.count()
    by_inputs: dict[sympy.Expr, sympy.Symbol] = {}  # the inputs-only values since the inputs were last read
    named = (f"_in{i}" for i in itertools.count(1))
    taken = {st.target for st in statements} | {
        s.name for st in statements if st.expr is not None for s in st.expr.free_symbols
    }
    before: list[Statement] = []  # the inputs-only values the current statement needs first
    branches = [0]  # how deep in where()'s branches: a value there is not made outside its branch

    def is_const(e) -> bool:
        return e.free_symbols <= constant

    def inputs_only(e) -> bool:
        return bool(e.free_symbols & input_symbols) and e.free_symbols <= constant | input_symbols

    def of_inputs(e) -> sympy.Expr:
        """The named value of ``e``, which reads inputs and constants only (assigned before the statement)."""
        fixed = [a for a in e.args if is_const(a)]
        if len(fixed) > 1 or (fixed and not fixed[0].is_Number):
            fixed = [hoist(e.func(*fixed))]
        e = e.func(*fixed, *[split(a) for a in e.args if not is_const(a)])  # its constant parts hoisted
        if e not in by_inputs:
            name = next(n for n in named if n not in taken)
            by_inputs[e] = _sym(name)
            comment = "inputs and constants only: kept from the step before while the inputs do not change"
            before.append(Statement("assign", name, e, comment, inputs_only=True))
        return by_inputs[e]

    def hoist(e) -> sympy.Expr:
        if _trivial(e):
            return e
        if e not in known:
            s = _sym(f"_c{next(counter)}")
            known[e] = s
            invariants.append((s.name, e, ""))
            constant.add(s)
        return known[e]

    def split(e) -> sympy.Expr:
        if e.is_Atom:
            return e
        if is_const(e):
            return hoist(e)
        if isinstance(e, sympy.Piecewise):  # where(cond, a, b): hoist inside the branches, never a (value, cond) pair
            branches[0] += 1
            try:
                return sympy.Piecewise(*[(split(value), cond) for value, cond in e.args])
            finally:
                branches[0] -= 1
        if e.is_Add or e.is_Mul:
            fixed = [a for a in e.args if is_const(a)]
            given = [a for a in e.args if not is_const(a) and inputs_only(a)]
            if given and not branches[0] and len(fixed) + len(given) > 1 and len(given) + len(fixed) < len(e.args):
                # the terms of inputs and constants as one value: I_ext + _c1 in E*g + I_ext + _c1
                rest = [split(a) for a in e.args if not is_const(a) and not inputs_only(a)]
                return e.func(of_inputs(e.func(*fixed, *given)), *rest)
            varying = [split(a) for a in e.args if not is_const(a)]
            if len(fixed) > 1 or (fixed and not fixed[0].is_Number):
                fixed = [hoist(e.func(*fixed))]
            return e.func(*fixed, *varying)
        return e.func(*[split(a) for a in e.args])

    out = []
    for st in statements:
        if st.kind == "input":  # the inputs are read again (a later stage): their values start afresh
            by_inputs = {e: s for e, s in by_inputs.items() if _sym(st.target) not in e.free_symbols}
        if st.kind == "assign" and st.expr is not None and is_const(st.expr) and st.target not in params:
            if _sym(st.target) not in constant:  # a value of parameters only, assigned again in a later stage
                invariants.append((st.target, st.expr, st.comment))
                constant.add(_sym(st.target))
            continue
        if st.expr is not None:
            st = Statement(st.kind, st.target, split(st.expr), st.comment, st.stage)
        out.extend(before)
        before.clear()
        out.append(st)
    return invariants, out

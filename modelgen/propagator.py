"""Exact propagators: the step x(t + dt) = exp(A dt) x(t) + ... of a linear system, in closed form.

A linear system dx/dt = A x + c + B u with constant coefficients and inputs held over a
step is the augmented system d[x, 1, u]/dt = M [x, 1, u]. When no two states feed back on
each other, M is triangular in some order of the states, and each entry of exp(M dt) is a
sum over the paths that lead from a column to a row through the nonzero entries of M
(the product of the entries along the path) times the divided difference of
``z -> exp(z dt)`` at the diagonal entries met on the path:

    exp(M dt)[i, j] = sum over paths j -> ... -> i of  M[i, .] ... M[., j] * exp[dt; m_jj, ..., m_ii]

The divided difference of distinct nodes is ``sum_r exp(m_r dt) / prod_{q != r} (m_r - m_q)``;
repeated nodes (equal time constants, a state without leak, the constant and the inputs,
whose diagonal is 0) give the confluent form with powers of dt. Each coefficient is a
product of the model's parameters, so sympy only factors products; the general symbolic
matrix exponential (``Matrix.exp``: a Jordan form of a symbolic matrix) took minutes for
six synapses. The number of paths can grow quickly with the depth of the system, so the
construction stops at ``MAX_PROPAGATOR_TERMS`` and the caller takes another scheme.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from math import comb, factorial

import sympy

from .model import TIME_SYMBOL, Model

__all__ = [
    "DT_SYMBOL",
    "MAX_PROPAGATOR_TERMS",
    "LinearSystem",
    "Propagator",
    "TooManyTerms",
    "exact_propagator",
    "linear_system",
    "triangular_order",
]

DT_SYMBOL = sympy.Symbol("dt", positive=True)
# Most (path, node) terms an exact propagator may have: 6 synapses onto V take 23,
# a feed-forward chain of 10 states 224 (planned in about half a second), of 20 states 1544
# (seconds, and a long generated step). Past this auto takes exponential Euler.
MAX_PROPAGATOR_TERMS = 400


@dataclass(frozen=True)
class Propagator:
    """x(t + dt) = P @ [x(t), 1, u]: the exact step of a linear system with constant coefficients.

    ``columns`` names what each column multiplies: the states, ``1``, then the inputs
    (held constant over a step).
    """

    states: tuple[str, ...]
    columns: tuple[str, ...]
    matrix: sympy.Matrix  # len(states) x len(columns), in parameters and dt


@dataclass(frozen=True)
class LinearSystem:
    """dx/dt = A x + c + B u with A, c, B constant, stored by row: only the nonzero entries."""

    states: tuple[str, ...]
    inputs: tuple[str, ...]
    A: tuple[dict[int, sympy.Expr], ...]  # row i: {state j: A[i, j]}
    c: tuple[sympy.Expr, ...]
    B: tuple[dict[int, sympy.Expr], ...]  # row i: {input q: B[i, q]}


def linear_system(model: Model, odes: dict) -> LinearSystem | str:
    """Return dx/dt = A x + c + B u with A, c, B constant, or why not."""
    X = {sympy.Symbol(s, real=True): j for j, s in enumerate(odes)}
    U = {i.symbol: q for q, i in enumerate(model.inputs)}
    varying = set(X) | set(U) | {TIME_SYMBOL}
    rows_A, rows_B, c = [], [], []
    for name, rhs in odes.items():
        f = model.expand(rhs)
        # only the states the equation mentions have a nonzero coefficient: this keeps a
        # model of many states linear in its size instead of one derivative per pair
        present = sorted(f.free_symbols & set(X), key=X.__getitem__)
        row = {X[x]: sympy.diff(f, x) for x in present}
        for x in present:
            a = row[X[x]]
            if a.free_symbols & varying:
                what = (
                    "time"
                    if TIME_SYMBOL in a.free_symbols
                    else ", ".join(sorted(str(v) for v in a.free_symbols & varying))
                )
                return f"d{name}/dt is not linear with constant coefficients: its coefficient of {x} depends on {what}"
        rest = sympy.expand(f - sum(row[X[x]] * x for x in present))
        b_row = {q: sympy.diff(rest, u) for u, q in U.items()}
        const = sympy.expand(rest - sum(b * u for u, b in zip(U, b_row.values())))
        if any(b.free_symbols & varying for b in b_row.values()) or const.free_symbols & varying:
            return f"d{name}/dt has a term that is not linear in the inputs or that depends on time"
        rows_A.append({j: a for j, a in row.items() if a != 0})
        rows_B.append({q: b for q, b in b_row.items() if b != 0})
        c.append(const)
    return LinearSystem(tuple(odes), tuple(i.name for i in model.inputs), tuple(rows_A), tuple(c), tuple(rows_B))


def triangular_order(A: sympy.Matrix | tuple[dict[int, sympy.Expr], ...]) -> list[int] | None:
    """Return an order of the states that makes A lower triangular, or None if states feed back on each other.

    A is a matrix or its rows as {column: nonzero entry}. The order puts the lowest-numbered
    state whose drivers are all placed next.
    """
    if isinstance(A, sympy.MatrixBase):
        A = tuple({j: A[i, j] for j in range(A.shape[1]) if A[i, j] != 0} for i in range(A.shape[0]))
    n = len(A)
    drivers = [{j for j in row if j != i} for i, row in enumerate(A)]
    driven: list[list[int]] = [[] for _ in range(n)]
    for i, ds in enumerate(drivers):
        for j in ds:
            driven[j].append(i)
    waiting = [len(ds) for ds in drivers]
    ready = [i for i in range(n) if not waiting[i]]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        j = heapq.heappop(ready)
        order.append(j)
        for i in driven[j]:
            waiting[i] -= 1
            if not waiting[i]:
                heapq.heappush(ready, i)
    return order if len(order) == n else None


class TooManyTerms(Exception):
    """The exact propagator would have more than MAX_PROPAGATOR_TERMS terms."""


def _divided_difference(nodes: list[sympy.Expr], difference) -> dict[tuple[sympy.Expr, int], sympy.Expr]:
    """Return exp[dt; nodes] as {(rate m, power p): coefficient} of coefficient * dt**p * exp(m dt).

    ``difference(a, b)`` returns a - b in factored form. Equal nodes (the same expression)
    are confluent: for a node m of multiplicity k the terms are the (k-1)-th derivative in z
    of exp(z dt) / prod_{other q} (z - q) at z = m, divided by (k-1)!, expanded by Leibniz's
    rule into powers of dt.
    """
    mult: dict[sympy.Expr, int] = {}
    for m in nodes:
        mult[m] = mult.get(m, 0) + 1
    out: dict[tuple[sympy.Expr, int], sympy.Expr] = {}
    for m, k in mult.items():
        if k == 1:  # a simple node: 1 / prod_{q != m} (m - q)
            out[(m, 0)] = sympy.Mul(*[difference(m, q) ** -kq for q, kq in mult.items() if q != m])
            continue
        z = sympy.Dummy("z")
        g = sympy.Mul(*[(z - q) ** -kq for q, kq in mult.items() if q != m])
        for p in range(k):  # d^(k-1) [exp(z dt) g] = sum_p C(k-1, p) dt^p exp(z dt) g^(k-1-p)
            derivative = sympy.diff(g, z, k - 1 - p) if k - 1 - p else g
            out[(m, p)] = sympy.factor(comb(k - 1, p) * derivative.subs(z, m) / factorial(k - 1))
    return out


def exact_propagator(system: LinearSystem, order: list[int], max_terms: int = MAX_PROPAGATOR_TERMS) -> Propagator:
    """Return the propagator exp(M dt) of the augmented system [x, 1, u] in closed form (sympy, at build time).

    ``order`` makes A lower triangular (:func:`triangular_order`). Raises TooManyTerms when
    the sum over paths would pass ``max_terms``.
    """
    n, k = len(system.states), len(system.inputs)
    # the augmented system's columns and their diagonal: the states, then 1 and the inputs (diagonal 0)
    diagonal = [system.A[i].get(i, sympy.S.Zero) for i in range(n)] + [sympy.S.Zero] * (1 + k)
    # nodes whose rates are the same rational function are the same node (confluent)
    canonical: dict[sympy.Expr, sympy.Expr] = {}
    diagonal = [canonical.setdefault(sympy.cancel(d), d) for d in diagonal]
    drivers = [
        [(j, a) for j, a in sorted(system.A[i].items()) if j != i]
        + ([(n, system.c[i])] if system.c[i] != 0 else [])
        + [(n + 1 + q, b) for q, b in sorted(system.B[i].items())]
        for i in range(n)
    ]
    differences: dict[tuple[sympy.Expr, sympy.Expr], sympy.Expr] = {}

    def difference(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
        if (a, b) not in differences:
            differences[(a, b)] = sympy.factor(a - b)
            differences[(b, a)] = -differences[(a, b)]
        return differences[(a, b)]

    # paths[i]: (column, weight, nodes) for each path from a column to state i
    paths: list[list[tuple[int, sympy.Expr, tuple[int, ...]]]] = [[] for _ in range(n)]
    count = 0
    for i in order:
        found = [(i, sympy.S.One, (i,))]
        for j, a in drivers[i]:
            if j < n:
                found += [(col, w * a, (*nodes, i)) for col, w, nodes in paths[j]]
            else:
                found.append((j, a, (j, i)))
        count += sum(len(nodes) for _, _, nodes in found)
        if count > max_terms:
            raise TooManyTerms(count)
        paths[i] = found
    P = sympy.zeros(n, n + 1 + k)
    for i in range(n):
        terms: dict[int, dict[tuple[sympy.Expr, int], sympy.Expr]] = {}
        for col, weight, nodes in paths[i]:
            column = terms.setdefault(col, {})
            for key, coef in _divided_difference([diagonal[v] for v in nodes], difference).items():
                column[key] = column.get(key, sympy.S.Zero) + weight * coef
        for col, column in terms.items():
            P[i, col] = sympy.Add(*[coef * DT_SYMBOL**p * sympy.exp(m * DT_SYMBOL) for (m, p), coef in column.items()])
    return Propagator(system.states, (*system.states, "1", *system.inputs), P)

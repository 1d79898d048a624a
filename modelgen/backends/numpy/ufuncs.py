"""The vectorised step: expressions as numpy ufunc calls into preallocated buffers.

Every call passes its output buffer as its last positional argument (numpy parses ``out=`` as a
keyword more slowly), and reads numbers from 0-d arrays made once (``_f0_5`` holds 0.5): numpy
takes an array operand in about half the time of a Python or numpy float, which is most of a
call's cost over a small block.
"""

from __future__ import annotations

import sympy
from sympy.codegen.cfunctions import expm1

from ... import functions as F
from ...functions import exprel
from ..base import float_text

__all__ = ["UfuncWriter", "RELATIONS"]


def _ufunc(node) -> str | None:
    """Return the numpy ufunc of a one-argument function of the table (``np.exp``), if it has one."""
    fn = F.for_node(node)
    spelled = fn.spelled("numpy") if fn is not None and fn.arity[1] == 1 else None
    return spelled if spelled is not None and spelled.startswith("np.") else None


RELATIONS = {
    ">": "np.greater",
    ">=": "np.greater_equal",
    "<": "np.less",
    "<=": "np.less_equal",
    "==": "np.equal",
    "!=": "np.not_equal",
}


class UfuncWriter:
    """Writes expressions as numpy ufunc calls into preallocated buffers (the last argument).

    ``assign(target, expr)`` appends the calls that leave ``expr`` in the buffer named
    ``target``; intermediate values go to the target itself where it is not read later,
    else to scratch buffers ``_s0, _s1, ...`` (floats) and ``_b0, ...`` (booleans), reused
    as soon as they are consumed. No call allocates. Numbers are read from named 0-d arrays,
    listed in ``numbers`` (name -> the number's text) for the module to make once.
    """

    def __init__(self):
        self.lines: list[str] = []
        self.floats = 0
        self.bools = 0
        self._free_f: list[str] = []
        self._free_b: list[str] = []
        self.numbers: dict[str, str] = {}

    # scratch buffers
    def _scratch(self) -> str:
        if self._free_f:
            return self._free_f.pop()
        self.floats += 1
        return f"_s{self.floats - 1}"

    def _bool(self) -> str:
        if self._free_b:
            return self._free_b.pop()
        self.bools += 1
        return f"_b{self.bools - 1}"

    def _release(self, name: str, keep: str | None = None) -> None:
        if name == keep:
            return
        if name.startswith("_s") and name[2:].isdigit() and name not in self._free_f:
            self._free_f.append(name)
        elif name.startswith("_b") and name[2:].isdigit() and name not in self._free_b:
            self._free_b.append(name)

    def emit(self, line: str) -> None:
        self.lines.append(line)

    # entry point
    def assign(self, target: str, expr: sympy.Expr) -> None:
        reads_target = any(s.name == target for s in expr.free_symbols)
        v = self.value(expr, target, safe=not reads_target)
        if v != target:
            self.emit(f"np.copyto({target}, {v})")
            self._release(v)

    # values
    @staticmethod
    def _leaf(e) -> str | None:
        if e.is_Symbol:
            return e.name
        if e.is_Number:
            return float_text(float(e))
        return None

    def number(self, x) -> str:
        """Return the name of the 0-d array that holds the number ``x`` (``_f0_5``, ``_fm65_0``)."""
        text = float_text(float(x))
        name = "_f" + text.replace("-", "m").replace("+", "p").replace(".", "_")
        self.numbers[name] = text
        return name

    def value(self, e, dest: str | None = None, safe: bool = True) -> str:
        """Emit calls computing ``e``; return its text: a leaf, ``dest``, or a scratch buffer.

        With ``safe`` False, ``dest`` is read by ``e`` and may only be written by the last call.
        """
        if e.is_Number:
            return self.number(e)
        leaf = self._leaf(e)
        if leaf is not None:
            return leaf
        if dest is None:
            dest, safe = self._scratch(), True
        if e.is_Add:
            return self._add(e, dest, safe)
        if e.is_Mul:
            return self._mul(e, dest, safe)
        if not safe:  # compute aside, then write dest with one call
            tmp = self.value(e, None)
            self.emit(f"np.copyto({dest}, {tmp})")
            self._release(tmp)
            return dest
        if e.is_Pow:
            return self._pow(e, dest)
        if isinstance(e, exprel):
            return self._exprel(e.args[0], dest, reciprocal=False)
        if e.func == expm1:
            # expm1 appears only in exponential Euler's factor (exp(B*dt) - 1)/B. numpy's expm1 is a
            # scalar loop and its exp is vectorised, so exp(.) - 1 costs ~40% less; its absolute error,
            # ~1e-16 |x_inf - x| on the update, stays below the rounding of x unless |B*dt| < 1e-8.
            self._unary(F.FUNCTIONS["exp"].spelled("numpy"), e.args[0], dest)
            self.emit(f"np.subtract({dest}, {self.number(1)}, {dest})")
            return dest
        ufunc = _ufunc(e.func)
        if ufunc is not None:
            return self._unary(ufunc, e.args[0], dest)
        if isinstance(e, (sympy.Max, sympy.Min)):
            fn = F.FUNCTIONS["max" if isinstance(e, sympy.Max) else "min"].spelled("numpy")
            args = sorted(e.args, key=lambda a: (self._leaf(a) is not None, sympy.default_sort_key(a)))
            return self._fold((None, args[0]), [(fn, a, False) for a in args[1:]], dest, True)
        if isinstance(e, sympy.Piecewise):
            return self._piecewise(e, dest)
        raise NotImplementedError(f"cannot write {type(e).__name__} as ufunc calls: {e}")

    def _unary(self, fn: str, arg, dest: str) -> str:
        a = self.value(arg, dest)
        self.emit(f"{fn}({a}, {dest})")
        return dest

    def _fold(self, first, rest, dest: str, safe: bool) -> str:
        """Emit ``first`` then each ``(ufunc, operand, swapped)`` of ``rest`` applied to the running value."""
        unary, e0 = first
        if not rest and unary is None:
            return self.value(e0, dest, safe)
        acc = dest if safe else self._scratch()
        v = self.value(e0, acc)
        if unary is not None:
            out = dest if not rest else acc
            self.emit(f"{unary}({v}, {out})")
            v = out
        for j, (fn, e, swapped) in enumerate(rest):
            out = dest if j == len(rest) - 1 else acc
            w = self.value(e, None)
            a, b = (w, v) if swapped else (v, w)
            self.emit(f"{fn}({a}, {b}, {out})")
            self._release(w)
            v = out
        if acc != dest:
            self._release(acc)
        return dest

    def _order(self, operands):
        # compound operands first (the first one is computed straight into the destination)
        return sorted(operands, key=lambda a: self._leaf(a) is not None)

    @staticmethod
    def _grouped(terms) -> list:
        """Return the terms of a sum regrouped for fewer ufunc calls: powers of one symbol in Horner's
        form (0.04*v**2 + 5*v: three calls, not four), then terms sharing a numeric coefficient (not 1)
        as one product c*(a + b + ...) (Runge-Kutta's k1/6 + k2/3 + k3/3 + k4/6: two multiplications,
        not four). The same value to round-off."""
        powers: dict = {}  # c*x**k (k >= 1) by x: written in Horner's form, c2*x**2 + c1*x = (c2*x + c1)*x
        for term in terms:
            base, k = term.as_coeff_Mul()[1].as_base_exp()
            if base.is_Symbol and k.is_Integer and k >= 1:
                powers.setdefault(base, []).append(term)
        horner = {x: group for x, group in powers.items() if len(group) > 1}
        terms = [t for t in terms if not any(t in group for group in horner.values())]
        terms += [sympy.horner(sympy.Add(*group), x) for x, group in horner.items()]
        by_coeff: dict = {}
        for term in terms:
            by_coeff.setdefault(term.as_coeff_Mul()[0], []).append(term)
        out = []
        for coeff, group in by_coeff.items():
            if coeff == 1 or len(group) < 2:
                out.extend(group)
            else:
                inner = sympy.Add(*[t.as_coeff_Mul()[1] for t in group], evaluate=False)
                out.append(sympy.Mul(coeff, inner, evaluate=False))
        return out

    def _add(self, e, dest: str, safe: bool) -> str:
        pos, neg = [], []
        for term in self._grouped(e.args):
            coeff, _ = term.as_coeff_Mul()
            (neg if coeff.is_negative else pos).append(-term if coeff.is_negative else term)
        pos, neg = self._order(pos), self._order(neg)
        if pos:
            first = (None, pos[0])
            rest = [("np.add", a, False) for a in pos[1:]]
        else:
            # start from a term with a coefficient (-0.1*V: one multiplication), else negate one
            scaled = [a for a in neg if a.is_Mul and a.as_coeff_Mul()[0] != 1]
            start = scaled[0] if scaled else neg[0]
            first = (None, -start) if scaled else ("np.negative", start)
            rest, neg = [], [a for a in neg if a is not start]
        rest += [("np.subtract", a, False) for a in neg]
        return self._fold(first, rest, dest, safe)

    def _mul(self, e, dest: str, safe: bool) -> str:
        coeff, rest_factor = e.as_coeff_Mul()
        factors = sympy.Mul.make_args(rest_factor)
        num, den = [], []
        for f in factors:
            if f.is_Pow and f.exp.is_Integer and f.exp < 0 and not isinstance(f.base, exprel):
                den.append(f.base ** (-f.exp))
            else:
                num.append(f)
        num = self._order(num)
        if num:
            first, rest = (None, num[0]), [("np.multiply", a, False) for a in num[1:]]
        else:
            first, rest = (None, coeff), []
            coeff = sympy.Integer(1)
        rest += [("np.divide", d, False) for d in den]
        if coeff != 1:
            rest.append(("np.multiply", coeff, False))
        return self._fold(first, rest, dest, safe)

    def _pow(self, e, dest: str) -> str:
        base, exp = e.as_base_exp()
        if isinstance(base, exprel) and exp == -1:
            return self._exprel(base.args[0], dest, reciprocal=True)
        if exp == sympy.Rational(1, 2):
            return self._unary(F.FUNCTIONS["sqrt"].spelled("numpy"), base, dest)
        if exp.is_Integer and exp < 0:
            inner = self.value(base ** (-exp), dest)
            self.emit(f"np.divide({self.number(1)}, {inner}, {dest})")
            return dest
        if exp.is_Integer and 2 <= exp <= 4:
            x = self.value(base, None)
            self.emit(f"np.multiply({x}, {x}, {dest})")
            if exp == 3:
                self.emit(f"np.multiply({dest}, {x}, {dest})")
            elif exp == 4:
                self.emit(f"np.multiply({dest}, {dest}, {dest})")
            self._release(x)
            return dest
        x = self.value(base, None)
        p = self.value(exp, None)
        self.emit(f"np.power({x}, {p}, {dest})")
        self._release(x)
        self._release(p)
        return dest

    def _exprel(self, arg, dest: str, reciprocal: bool) -> str:
        u = self.value(arg, None)
        self.emit(f"np.expm1({u}, {dest})")
        self.emit(f"np.divide({u}, {dest}, {dest})" if reciprocal else f"np.divide({dest}, {u}, {dest})")
        # the limit 1 at 0, where the division gave nan: found by one dot product (nan if any is; half
        # the time of u.all()), fixed only where needed
        self.emit(f"if math.isnan({dest} @ {dest}):  # x was 0 somewhere (the limit is 1 there)")
        self.emit(f"    np.copyto({dest}, 1.0, where={u} == 0)")
        self._release(u)
        return dest

    def condition(self, c) -> str:
        """Emit calls computing the boolean ``c``; return a boolean buffer (or leaf)."""
        if c is sympy.true:
            return "True"
        if c is sympy.false:
            return "False"
        if isinstance(c, sympy.Rel):
            a, b = self.value(c.lhs, None), self.value(c.rhs, None)
            out = self._bool()
            self.emit(f"{RELATIONS[c.rel_op]}({a}, {b}, {out})")
            self._release(a)
            self._release(b)
            return out
        if isinstance(c, (sympy.And, sympy.Or)):
            fn = "np.logical_and" if isinstance(c, sympy.And) else "np.logical_or"
            parts = [self.condition(a) for a in c.args]
            for p in parts[1:]:
                self.emit(f"{fn}({parts[0]}, {p}, {parts[0]})")
                self._release(p)
            return parts[0]
        if isinstance(c, sympy.Not):
            p = self.condition(c.args[0])
            self.emit(f"np.logical_not({p}, {p})")
            return p
        raise NotImplementedError(f"cannot write the condition {c} as ufunc calls")

    def _piecewise(self, e, dest: str) -> str:
        last = self.value(e.args[-1][0], dest)
        if last != dest:
            self.emit(f"np.copyto({dest}, {last})")
        for value, cond in reversed(e.args[:-1]):
            v = self.value(value, None)
            c = self.condition(cond)
            self.emit(f"np.copyto({dest}, {v}, where={c})")
            self._release(v)
            self._release(c)
        return dest

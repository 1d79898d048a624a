"""Code generation: a checked model and its integration plan -> a simulator module (text).

Decisions are made here and in :mod:`modelgen.optimise` and handed to the jinja2 template
as plain data; the template only lays the code out. One step of the model is a
straight-line program (:func:`modelgen.optimise.step_program`) printed three ways:

- as numpy ufunc calls writing into preallocated buffers (``out=``), over blocks of
  neurons small enough for the buffers to stay in cache (the vectorised path);
- as plain Python on floats, one neuron at a time (the per-neuron kernel): the numpy
  backend uses it for a handful of neurons, where numpy's per-call overhead dominates;
- as the same per-neuron kernel compiled by numba (``backend="numba"``).

The output is deterministic: the same model, method, backend and toolkit give
byte-identical text.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import keyword
import math
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
import sympy
from sympy.codegen.cfunctions import expm1
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import precedence
from sympy.printing.pycode import PythonCodePrinter

from . import __version__
from .derive import MembraneDerivation
from .integrity import TEXT_HASH_PLACEHOLDER, check_generated_text, comment_text, seal
from .model import Model
from .optimise import DT, StepProgram, exprel, regularize, step_program
from .schemes import Plan

__all__ = ["generate_code", "NumpyPrinter", "ScalarPrinter", "UfuncWriter", "build_hash", "BACKENDS", "exprel"]

BACKENDS = ("numpy", "numba", "cuda")

# Names. Every name that generated code makes up starts with `_`, which model names may not
# (language.check_name), except the names Python and the template fix: keywords, builtins, the
# modules and the metadata, the functions and their arguments (params, given, dtype, record, w,
# index, ...). A model name that is one of those is written with `_` appended in generated code
# (`len` -> `len_`); the module's interface (PARAMETERS, STATES, ... and the dicts its functions
# take and return) keeps the model's names. The template's names made from a model name X end
# with a fixed suffix (`_X_input`, `_X_fixed`, `_X_columns`, `_X_column`, `_X_0`) that none of
# its own names ends with; the kernels' array prefixes are chosen to meet none (_kernel_prefixes).
_TEMPLATE = Path(__file__).parent / "templates" / "module.py.j2"
_TEMPLATE_CODE = re.compile(
    r"""\{\#[\s\S]*?\#\}|\{%[\s\S]*?%\}|\{\{[\s\S]*?\}\}  # jinja: comments, statements, expressions
    |\#[^\n]*                                             # Python comments
    |(?P<prefix>[rRbBfF]{0,2})(?P<string>\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"[^"\n]*"|'[^'\n]*')
    |\.\s*[^\W\d]\w*                                      # attribute names""",
    re.X,
)


@functools.lru_cache(maxsize=1)
def template_names() -> frozenset[str]:
    """Return the identifiers of the template's Python code: all that its code can read or bind
    (comments, docstrings, jinja tags and attribute names left out; f-strings' fields kept)."""

    def code(m: re.Match) -> str:
        if m.group("string") is not None and "f" in m.group("prefix").lower():
            return " ".join(re.findall(r"\{([^{}!:]*)", m.group("string")))  # {x!r:>8}: x
        return " "

    return frozenset(re.findall(r"\b[^\W\d]\w*", _TEMPLATE_CODE.sub(code, _TEMPLATE.read_text())))


@functools.lru_cache(maxsize=1)
def generated_names() -> frozenset[str]:
    """Return the names generated code may use besides made-up `_` ones: Python's keywords and
    builtins (all of them, used or not) and every name of the template's code."""
    return frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins)) | template_names()


# the kernels' own locals (module.py.j2); the arrays of states, parameters and inputs that the
# kernels take are named with a prefix chosen so that they can meet none of these
_KERNEL_LOCALS = {
    "_i", "_j", "_k", "_kk", "_c", "_q", "_w", "_lo", "_block", "_n_all", "_n_spiked", "_row",
    "_was", "_until", "_ref_steps", "_above", "_spiked", "_refractory", "_held", "_k_start",
    "_k_stop", "_was_above", "_refractory_until", "_refractory_steps", "_rec_row", "_rec_which",
    "_rec", "_spikes", "_n_spikes", "_note_spike", "_new_spike_buffer", "_blk_was", "_blk_until", "_blk_spiked", "_blk_recorded", "_exp", "_expm1",
    "_exprel", "_exprel_scalar", "_taylor13", "_int_bits_as_float",
}  # fmt: skip


def _kernel_prefixes(names: list[str], taken: set[str]) -> dict[str, str]:
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


class _ReadablePrinting:
    """What both printers share: model names as renamed for Python, numbers as short floats."""

    names: dict[str, str]

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


class NumpyPrinter(_ReadablePrinting, NumPyPrinter):
    """sympy's numpy printer, printing ``np.f`` and readable numbers and branches."""

    def __init__(self, names: dict[str, str] | None = None):
        super().__init__({"fully_qualified_modules": True, "allow_unknown_functions": False})
        self.names = names or {}

    def _module_format(self, fqn, register=True):
        s = super()._module_format(fqn, register)
        return "np." + s[len("numpy.") :] if s.startswith("numpy.") else s

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


class ScalarPrinter(_ReadablePrinting, PythonCodePrinter):
    """Python (and numba) code on floats: ``math.exp``, ``a if c else b``, ``min``/``max``."""

    def __init__(self, names: dict[str, str] | None = None):
        super().__init__({"fully_qualified_modules": True})
        self.names = names or {}

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.as_base_exp()
        if exp.is_Integer and exp < 0:
            inner = base if exp == -1 else base ** (-exp)
            return "1/" + self.parenthesize(inner, precedence(expr) + 1)
        if exp.is_Integer and 1 < exp <= 4:
            # x*x*x: no overflow exception in Python, and as fast as x**3
            b = self.parenthesize(base, precedence(expr))
            return "*".join([b] * int(exp))
        return super()._print_Pow(expr, rational=rational)

    def _print_expm1(self, expr):
        # as in the vectorised step (UfuncWriter.value): exp(.) - 1 is cheaper than expm1 (in
        # compiled code, a call into libm of about twice exp's cost), to round-off of the update
        return f"(math.exp({self._print(expr.args[0])}) - 1.0)"

    def _print_exprel(self, expr):
        return f"_exprel_scalar({self._print(expr.args[0])})"

    def _print_Max(self, expr):
        return "max(" + ", ".join(self._print(a) for a in sorted(expr.args, key=sympy.default_sort_key)) + ")"

    def _print_Min(self, expr):
        return "min(" + ", ".join(self._print(a) for a in sorted(expr.args, key=sympy.default_sort_key)) + ")"


class NumbaPrinter(ScalarPrinter):
    """Scalar code for numba's block kernel: exp, expm1 and exprel through the module's own
    branch-free versions (``_exp``, ``_expm1``, ``_exprel_lane``), so that loops over neurons
    compile to SIMD instructions (numba's math.exp is a call into libm, which the compiler
    cannot vectorise without Intel's SVML, absent from llvmlite's PyPI wheels)."""

    def _print_exp(self, expr):
        return f"_exp({self._print(expr.args[0])})"

    def _print_expm1(self, expr):
        return f"_expm1({self._print(expr.args[0])})"

    def _print_exprel(self, expr):
        return f"_exprel_lane({self._print(expr.args[0])})"


def _float_text(x: float) -> str:
    """Return the shortest text that reads back as exactly ``x``."""
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x)}.0"
    return repr(x)


# ----------------------------------------------------------------------- ufunc lowering
_UFUNCS = {
    sympy.exp: "np.exp",
    expm1: "np.expm1",
    sympy.log: "np.log",
    sympy.sin: "np.sin",
    sympy.cos: "np.cos",
    sympy.tan: "np.tan",
    sympy.sinh: "np.sinh",
    sympy.cosh: "np.cosh",
    sympy.tanh: "np.tanh",
    sympy.Abs: "np.absolute",
}
_RELATIONS = {
    ">": "np.greater",
    ">=": "np.greater_equal",
    "<": "np.less",
    "<=": "np.less_equal",
    "==": "np.equal",
    "!=": "np.not_equal",
}


class UfuncWriter:
    """Writes expressions as numpy ufunc calls into preallocated buffers (``out=``).

    ``assign(target, expr)`` appends the calls that leave ``expr`` in the buffer named
    ``target``; intermediate values go to the target itself where it is not read later,
    else to scratch buffers ``_s0, _s1, ...`` (floats) and ``_b0, ...`` (booleans), reused
    as soon as they are consumed. No call allocates.
    """

    def __init__(self):
        self.lines: list[str] = []
        self.floats = 0
        self.bools = 0
        self._free_f: list[str] = []
        self._free_b: list[str] = []

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
            return _float_text(float(e))
        return None

    def value(self, e, dest: str | None = None, safe: bool = True) -> str:
        """Emit calls computing ``e``; return its text: a leaf, ``dest``, or a scratch buffer.

        With ``safe`` False, ``dest`` is read by ``e`` and may only be written by the last call.
        """
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
            self._unary("np.exp", e.args[0], dest)
            self.emit(f"np.subtract({dest}, 1.0, out={dest})")
            return dest
        if e.func in _UFUNCS:
            return self._unary(_UFUNCS[e.func], e.args[0], dest)
        if isinstance(e, (sympy.Max, sympy.Min)):
            fn = "np.maximum" if isinstance(e, sympy.Max) else "np.minimum"
            args = sorted(e.args, key=lambda a: (self._leaf(a) is not None, sympy.default_sort_key(a)))
            return self._fold((None, args[0]), [(fn, a, False) for a in args[1:]], dest, True)
        if isinstance(e, sympy.Piecewise):
            return self._piecewise(e, dest)
        raise NotImplementedError(f"cannot write {type(e).__name__} as ufunc calls: {e}")

    def _unary(self, fn: str, arg, dest: str) -> str:
        a = self.value(arg, dest)
        self.emit(f"{fn}({a}, out={dest})")
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
            self.emit(f"{unary}({v}, out={out})")
            v = out
        for j, (fn, e, swapped) in enumerate(rest):
            out = dest if j == len(rest) - 1 else acc
            w = self.value(e, None)
            a, b = (w, v) if swapped else (v, w)
            self.emit(f"{fn}({a}, {b}, out={out})")
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
            return self._unary("np.sqrt", base, dest)
        if exp.is_Integer and exp < 0:
            inner = self.value(base ** (-exp), dest)
            self.emit(f"np.divide(1.0, {inner}, out={dest})")
            return dest
        if exp.is_Integer and 2 <= exp <= 4:
            x = self.value(base, None)
            self.emit(f"np.multiply({x}, {x}, out={dest})")
            if exp == 3:
                self.emit(f"np.multiply({dest}, {x}, out={dest})")
            elif exp == 4:
                self.emit(f"np.multiply({dest}, {dest}, out={dest})")
            self._release(x)
            return dest
        x = self.value(base, None)
        p = self.value(exp, None)
        self.emit(f"np.power({x}, {p}, out={dest})")
        self._release(x)
        self._release(p)
        return dest

    def _exprel(self, arg, dest: str, reciprocal: bool) -> str:
        u = self.value(arg, None)
        self.emit(f"np.expm1({u}, out={dest})")
        self.emit(f"np.divide({u}, {dest}, out={dest})" if reciprocal else f"np.divide({dest}, {u}, out={dest})")
        # the limit 1 at 0, where the division gave nan; a test pass, a fix only where needed
        self.emit(f"if not {u}.all():  # an exact 0 (the limit is 1 there)")
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
            self.emit(f"{_RELATIONS[c.rel_op]}({a}, {b}, out={out})")
            self._release(a)
            self._release(b)
            return out
        if isinstance(c, (sympy.And, sympy.Or)):
            fn = "np.logical_and" if isinstance(c, sympy.And) else "np.logical_or"
            parts = [self.condition(a) for a in c.args]
            for p in parts[1:]:
                self.emit(f"{fn}({parts[0]}, {p}, out={parts[0]})")
                self._release(p)
            return parts[0]
        if isinstance(c, sympy.Not):
            p = self.condition(c.args[0])
            self.emit(f"np.logical_not({p}, out={p})")
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


# ----------------------------------------------------------------------- names and hashes
def python_names(model: Model) -> dict[str, str]:
    """Return model name -> identifier in generated code, for the model's names that generated
    code uses itself (:func:`generated_names`): each gets `_` appended until it is free."""
    taken = set(_all_names(model)) | generated_names()
    out = {}
    for n in sorted(_all_names(model)):
        if n in generated_names():
            new = n + "_"
            while new in taken:
                new += "_"
            out[n] = new
            taken.add(new)
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
    for f in sorted([*here.glob("backends/**/*.py"), *here.glob("backends/**/*.j2")]):  # the backends' packages
        h.update(f.relative_to(here).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def build_hash(model: Model, method: str, backend: str = "numpy") -> str:
    """Return the hash recorded in generated code: model source, method, backend and toolkit."""
    h = hashlib.sha256()
    h.update(model.source.encode("utf-8"))
    h.update(f"\0{method}\0{toolkit_fingerprint()}".encode())
    if backend != "numpy":
        h.update(f"\0{backend}".encode())
    return h.hexdigest()


def _source_ref(model: Model, span) -> str:
    # spans of used currents point into their own files
    return f"[{Path(span.file or model.file).name}:{span.line}]" if span else ""


def _source_line(model: Model, span) -> str:
    """Return the user's line (without its comment, spaces collapsed) and its reference."""
    from .language import _strip_comment

    text = " ".join(_strip_comment(span.text).split())
    return f"{text}  {_source_ref(model, span)}"


# ----------------------------------------------------------------------- rendering data
@dataclass(frozen=True)
class Line:
    """A generated line (code) with an optional comment line above it."""

    code: str
    comment: str = ""


def _vector_block(program: StepProgram, printer: NumpyPrinter) -> tuple[list[Line], UfuncWriter, list[str]]:
    """Return the step's lines as ufunc calls, the writer (scratch counts) and the buffers assigned."""
    w = UfuncWriter()
    lines: list[Line] = []
    buffers: list[str] = []
    for st in program.statements:
        if st.kind == "note":
            lines.append(Line("", st.comment))
        elif st.kind == "input":
            lines.append(Line(f"{st.target} = _part(_{st.target}_{st.stage}, _lo, _hi)"))
        else:
            if st.kind == "assign" and st.target not in buffers:
                buffers.append(st.target)
            start = len(w.lines)
            w.assign(st.target, st.expr)
            formula = f"{st.target} = {printer.doprint(st.expr)}"
            comment = f"{st.comment}\n{formula}" if st.comment else formula
            calls = w.lines[start:]
            lines.append(Line(calls[0], comment))
            lines.extend(Line(c) for c in calls[1:])
    return lines, w, buffers


def _buffer_slots(program: StepProgram, buffers: list[str]) -> list[int]:
    """Return a buffer number for each named value: values whose lifetimes do not overlap share one.

    A value lives from its first assignment to its last use; a buffer is reused only by a value
    assigned after the previous owner's last use (the statement that reads a value for the last
    time may not also write its buffer).
    """
    start: dict[str, int] = {}
    end: dict[str, int] = {}
    for i, st in enumerate(program.statements):
        if st.expr is not None:
            for sym in st.expr.free_symbols:
                if sym.name in start:
                    end[sym.name] = i
        if st.kind == "assign" and st.target in buffers:
            start.setdefault(st.target, i)
            end[st.target] = max(end.get(st.target, i), i)
    slots: dict[str, int] = {}
    busy: list[tuple[int, int]] = []  # (last use, slot)
    free: list[int] = []
    count = 0
    for name in sorted(buffers, key=lambda b: start[b]):
        for entry in [e for e in busy if e[0] < start[name]]:
            busy.remove(entry)
            free.append(entry[1])
        if free:
            free.sort()
            slot = free.pop(0)
        else:
            slot, count = count, count + 1
        slots[name] = slot
        busy.append((end[name], slot))
    return [slots[b] for b in buffers]


def _scalar_block(program: StepProgram, printer: ScalarPrinter, prefixes: dict[str, str], lanes=False) -> list[Line]:
    """Return the step of one neuron on floats, reading inputs from the kernel's arrays, or
    (``lanes``: numba's block kernel) from its block's copies."""
    out = []
    for st in program.statements:
        if st.kind == "note":
            out.append(Line("", st.comment))
        elif st.kind == "input" and lanes:
            out.append(Line(f"{st.target} = {prefixes['lane']}{st.target}[{st.stage}, _j]"))
        elif st.kind == "input":
            a, column = prefixes["arg"] + st.target, prefixes["column"] + st.target
            out.append(Line(f"{st.target} = float({a}[_kk if {a}.shape[0] > 1 else 0, {st.stage}, {column}])"))
        else:
            out.append(Line(f"{st.target} = {printer.doprint(st.expr)}", st.comment))
    return out


def generate_code(
    model: Model,
    derivation: MembraneDerivation | None,
    plan: Plan,
    backend: str = "numpy",
    hash_value: str | None = None,
    origin: str | None = None,
) -> str:
    """Return the text of the generated module for ``model`` integrated by ``plan``.

    ``hash_value`` is the build hash to record (default: that of ``plan.method`` and ``backend``);
    ``origin``, if given, the model file the module belongs to (see :mod:`modelgen.cache`).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "cuda":  # cuda: its own package (issue 12)
        from .backends import cuda

        return cuda.generate_code(
            model, derivation, plan, hash_value or build_hash(model, plan.method, backend), origin
        )
    names = python_names(model)
    printer = NumpyPrinter(names)
    scalar = ScalarPrinter(names)
    lanes = NumbaPrinter(names)
    py = lambda n: names.get(n, n)  # noqa: E731
    rename = {sympy.Symbol(k, real=True): sympy.Symbol(v, real=True) for k, v in names.items()}

    program = step_program(model, derivation, plan, names)
    states = program.states

    # event: threshold, resets, refractory period
    event = None
    event_exprs: list[sympy.Expr] = []
    if model.event is not None:
        ev = model.event
        lhs = regularize(model.expand(ev.relation.lhs)).xreplace(rename)
        rhs = regularize(model.expand(ev.relation.rhs)).xreplace(rename)
        resets = []
        for r in ev.resets:
            value = regularize(model.expand(r.new_value())).xreplace(rename)
            event_exprs.append(value)
            resets.append(
                {
                    "target": py(r.state),
                    "op": r.op,
                    "vector": printer.doprint(value),
                    "scalar": scalar.doprint(value),
                    "text": f"{r.state} {r.op} {sympy.sstr(r.expr)}",
                }
            )
        refractory = ev.refractory.xreplace(rename) if ev.refractory is not None else None
        event_exprs += [lhs, rhs] + ([refractory] if refractory is not None else [])
        event = {
            "condition": f"{printer.doprint(lhs)} {ev.relation.rel_op} {printer.doprint(rhs)}",
            "ufunc": _RELATIONS[ev.relation.rel_op],
            "lhs": printer.doprint(lhs),
            "rhs": printer.doprint(rhs),
            "scalar_condition": f"{scalar.doprint(lhs)} {ev.relation.rel_op} {scalar.doprint(rhs)}",
            "lane_condition": f"{lanes.doprint(lhs)} {ev.relation.rel_op} {lanes.doprint(rhs)}",
            "text": _source_line(model, ev.span),
            "resets": resets,
            "crossing": not ev.resets,
            "refractory": printer.doprint(refractory) if refractory is not None else None,
            "hold": py(model.membrane_state) if model.membrane_state else None,
        }

    # what the step reads besides states and inputs: parameters and hoisted invariants
    param_names = [py(p.name) for p in model.parameters]
    invariant_names = [n for n, _, _ in program.invariants]
    used = program.used_names(event_exprs)
    step_values = [n for n in param_names + invariant_names if n in used]

    vector_lines, writer, buffers = _vector_block(program, printer)
    kernel_arrays = [*states, *step_values, *program.inputs]
    taken = _KERNEL_LOCALS | {py(n) for n in _all_names(model)} | set(invariant_names)
    taken |= {st.target for st in program.statements} | {s.name for e in event_exprs for s in e.free_symbols}
    taken |= {s.name for st in program.statements if st.expr is not None for s in st.expr.free_symbols}
    prefixes = _kernel_prefixes(kernel_arrays, taken)
    scalar_lines = _scalar_block(program, scalar, prefixes)
    lane_lines = _scalar_block(program, lanes, prefixes, lanes=True) if backend == "numba" else []
    stateset = set(states)
    buffers = [b for b in buffers if b not in stateset]
    slots = _buffer_slots(program, buffers)
    n_slots = max(slots, default=-1) + 1
    # buffers of the named values, then the scratch buffers, then one for the held membrane potential
    float_slots = slots + list(range(n_slots, n_slots + writer.floats + 1))
    # neurons per block: the block's float buffers fill at most 1.5 MB (most of a 2 MB L2 cache);
    # larger blocks spread numpy's per-call overhead (~0.4 us) over more neurons
    block = 2 ** max(11, min(15, int(math.log2(1.5 * 2**20 / (8 * len(set(float_slots)))))))

    invariants = [Line(f"{n} = {printer.doprint(e)}", c) for n, e, c in program.invariants]
    obs_body = _observe_body(model, printer, names)
    init_body = [
        (py(name), f"given[{name!r}] if {name!r} in given else {printer.doprint(regularize(expr.xreplace(rename)))}")
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
                        f"{syn.text}  {_source_ref(model, syn.span)}",
                    )
                )
        receptors.append({"name": name, "statements": statements})
    receptor_targets = ", ".join(dict.fromkeys(py(s.target) for s in model.synapses))

    all_code = [ln.code for ln in [*vector_lines, *scalar_lines, *invariants, *obs_body]] + [c for _, c in init_body]
    all_code += [r[k] for r in (event or {}).get("resets", []) for k in ("vector", "scalar")]
    all_code += [event["scalar_condition"]] if event else []
    lane_code = [ln.code for ln in lane_lines] + ([event["lane_condition"]] if event and lane_lines else [])
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("modelgen", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["comment"] = comment_text
    template = env.get_template("module.py.j2")
    text = template.render(
        version=__version__,
        backend=backend,
        model=model,
        source_name=Path(model.file).name,
        origin=origin,
        build_hash=hash_value or build_hash(model, plan.method, backend),
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
        offsets=[(j, _float_text(float(c))) for j, c in enumerate(program.offsets)],
        observables=[(name, py(name)) for name, _, _ in model.definition_order()],
        obs_body=obs_body,
        invariants=invariants,
        invariant_names=invariant_names,
        step_values=step_values,
        vector_lines=vector_lines,
        scalar_lines=scalar_lines,
        lane_lines=lane_lines,
        arg=prefixes["arg"],
        lane=prefixes["lane"],
        view=prefixes["view"],
        column=prefixes["column"],
        buffers=buffers,
        float_slots=float_slots,
        block=block,
        float_scratch=[f"_s{i}" for i in range(writer.floats)],
        bool_scratch=[f"_b{i}" for i in range(writer.bools)],
        receptors=receptors,
        receptor_targets=receptor_targets,
        init_body=init_body,
        event=event,
        uses_t=program.uses_t,
        uses_exprel=any("_exprel(" in c for c in all_code),
        uses_exprel_scalar=any("_exprel_scalar(" in c for c in all_code),
        uses_lane_math=any(f in c for c in lane_code for f in ("_exp(", "_expm1(", "_exprel_lane(")),
        uses_exprel_lane=any("_exprel_lane(" in c for c in lane_code),
        text_hash=TEXT_HASH_PLACEHOLDER,
        repr=repr,
    )
    check_generated_text(text)  # no user text can have ended a comment or declared a coding
    return seal(text)


def _observe_body(model: Model, printer: NumpyPrinter, names: dict[str, str]) -> list[Line]:
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


__all__ += ["regularize", "DT"]

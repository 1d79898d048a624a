"""What every backend shares: the printers' base, number formatting, names, and the template loader.

A printer is a sympy code printer with a ``target`` (a column of :mod:`modelgen.functions`):
the functions of the model language are spelled from the table, and powers, ``Max``/``Min``,
``Piecewise`` and rationals are written once here, shaped by a few class attributes. While it
prints, a printer collects the module helpers that its spellings call (``helpers``), so that a
backend emits the helpers that its expressions need.
"""

from __future__ import annotations

import builtins
import functools
import keyword
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
import sympy
from sympy.printing.precedence import precedence
from sympy.printing.pycode import PythonCodePrinter

from .. import functions as F
from ..integrity import comment_text
from ..model import Model

__all__ = [
    "BACKENDS_DIR",
    "CodePrinter",
    "ScalarPrinter",
    "Line",
    "float_text",
    "template_names",
    "generated_names",
    "python_names",
    "all_names",
    "template_environment",
    "source_ref",
    "source_line",
]

BACKENDS_DIR = Path(__file__).parent


def float_text(x: float) -> str:
    """Return the shortest text that reads back as exactly ``x``."""
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x)}.0"
    return repr(x)


class CodePrinter:
    """The printers' shared base (a mixin before a sympy printer): names as renamed for the generated
    code, numbers as short floats, functions spelled from the table for ``target``."""

    target = "python"
    small_powers = False  # x**2 .. x**4 as x*x*x (scalar code: as fast, and no overflow exception)
    variadic_min_max = True  # max(a, b, c); else nested pairs: np.maximum(np.maximum(a, b), c)
    # Piecewise((v1, c1), ..., (vn, True)): each branch around the rest, the last value, the whole
    select = ("({value}) if {cond} else {rest}", "({})", "({})")

    def __init__(self, names: dict[str, str] | None = None, settings: dict | None = None):
        super().__init__(settings or {})
        self.names = names or {}
        self.helpers: set[str] = set()

    def doprint(self, expr, assign_to=None):
        # print non-integer rationals as floats, so that 3/10*x reads 0.3*x
        expr = sympy.sympify(expr)
        rationals = {r: sympy.Float(float(r)) for r in expr.atoms(sympy.Rational) if not r.is_Integer}
        return super().doprint(expr.xreplace(rationals) if rationals else expr, assign_to)

    def _print(self, expr, **kwargs):
        fn = F.for_node(type(expr))
        if fn is not None and fn.arity[1] == 1:
            spelled = self.spelling(fn)
            if spelled is not None:
                self.helpers.update(fn.helpers.get(self.target, ()))
                arg = self._print(expr.args[0])
                return spelled.format(arg) if "{}" in spelled else f"{spelled}({arg})"
        return super()._print(expr, **kwargs)

    def spelling(self, fn: F.Function) -> str | None:
        """Return how this printer spells ``fn``: the table's column for its ``target``."""
        return fn.spelled(self.target)

    def _print_Symbol(self, expr):
        return self.names.get(expr.name, expr.name)

    def _print_Rational(self, expr):
        return float_text(float(expr))

    def _print_Integer(self, expr):
        return str(int(expr))

    def _print_Float(self, expr):
        return float_text(float(expr))

    def _print_Half(self, expr):
        return "0.5"

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.as_base_exp()
        if exp.is_Integer and exp < 0:
            inner = base if exp == -1 else base ** (-exp)
            return f"{self._print(sympy.S.One)}/" + self.parenthesize(inner, precedence(expr) + 1)
        if self.small_powers and exp.is_Integer and 1 < exp <= 4:
            b = self.parenthesize(base, precedence(expr))
            return "*".join([b] * int(exp))
        if exp == sympy.Rational(1, 2) or exp == -sympy.Rational(1, 2):
            root = f"{self.spelling(F.FUNCTIONS['sqrt'])}({self._print(base)})"
            return root if exp > 0 else f"{self._print(sympy.S.One)}/" + root
        return self._general_power(expr, rational)

    def _general_power(self, expr, rational=False) -> str:
        """Return a power that none of the rules above writes: as the sympy printer writes it."""
        return super()._print_Pow(expr, rational=rational)

    def _min_max(self, name: str, expr) -> str:
        fn = self.spelling(F.FUNCTIONS[name])
        args = [self._print(a) for a in sorted(expr.args, key=sympy.default_sort_key)]
        if self.variadic_min_max:
            return f"{fn}({', '.join(args)})"
        out = args[0]
        for a in args[1:]:
            out = f"{fn}({out}, {a})"
        return out

    def _print_Max(self, expr):
        return self._min_max("max", expr)

    def _print_Min(self, expr):
        return self._min_max("min", expr)

    def _print_Piecewise(self, expr):
        # the last branch of our Piecewise is always (value, True)
        branch, last, whole = self.select
        out = last.format(self._print(expr.args[-1][0]))
        for value, cond in reversed(expr.args[:-1]):
            out = branch.format(value=self._print(value), cond=self._print(cond), rest=out)
        return whole.format(out)


class ScalarPrinter(CodePrinter, PythonCodePrinter):
    """Python code on floats (the per-neuron kernels): ``math.exp``, ``a if c else b``, ``min``/``max``."""

    target = "python"
    small_powers = True

    def __init__(self, names: dict[str, str] | None = None):
        super().__init__(names, {"fully_qualified_modules": True})


@dataclass(frozen=True)
class Line:
    """A generated line (code) with an optional comment line above it."""

    code: str
    comment: str = ""


def source_ref(model: Model, span) -> str:
    """Return ``[file:line]`` of a span (spans of used currents point into their own files)."""
    return f"[{Path(span.file or model.file).name}:{span.line}]" if span else ""


def source_line(model: Model, span) -> str:
    """Return the user's line (without its comment, spaces collapsed) and its reference."""
    from ..language import _strip_comment

    text = " ".join(_strip_comment(span.text).split())
    return f"{text}  {source_ref(model, span)}"


def template_environment(folder: Path) -> jinja2.Environment:
    """Return the jinja2 environment of a backend's templates (its folder, then the shared ones here)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(folder), str(BACKENDS_DIR)]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["comment"] = comment_text
    return env


# ----------------------------------------------------------------------- names
# Every name that generated code makes up starts with `_`, which model names may not
# (language.check_name), except the names Python and the templates fix: keywords, builtins, the
# modules and the metadata, the functions and their arguments (params, given, dtype, record, w,
# index, ...). A model name that is one of those is written with `_` appended in generated code
# (`len` -> `len_`); the module's interface (PARAMETERS, STATES, ... and the dicts its functions
# take and return) keeps the model's names. The templates' names made from a model name X end
# with a fixed suffix (`_X_input`, `_X_fixed`, `_X_columns`, `_X_column`, `_X_0`) that none of
# their own names ends with; the kernels' array prefixes are chosen to meet none (kernel_prefixes).
_TEMPLATE_CODE = re.compile(
    r"""\{\#[\s\S]*?\#\}|\{%[\s\S]*?%\}|\{\{[\s\S]*?\}\}  # jinja: comments, statements, expressions
    |\#[^\n]*                                             # Python comments
    |(?P<prefix>[rRbBfF]{0,2})(?P<string>\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"[^"\n]*"|'[^'\n]*')
    |\.\s*[^\W\d]\w*                                      # attribute names""",
    re.X,
)


def template_files() -> list[Path]:
    """Return every backend's templates of Python code (the shared ones and each backend folder's
    ``*.py.j2``), in a fixed order; templates of other languages (cuda's kernel) reserve their own names."""
    return sorted(BACKENDS_DIR.rglob("*.py.j2"))


@functools.lru_cache(maxsize=1)
def template_names() -> frozenset[str]:
    """Return the identifiers of the templates' code, of every backend: all that their code can read or
    bind (comments, docstrings, jinja tags and attribute names left out; f-strings' fields kept)."""

    def code(m: re.Match) -> str:
        if m.group("string") is not None and "f" in m.group("prefix").lower():
            return " ".join(re.findall(r"\{([^{}!:]*)", m.group("string")))  # {x!r:>8}: x
        return " "

    out: set[str] = set()
    for f in template_files():
        out |= set(re.findall(r"\b[^\W\d]\w*", _TEMPLATE_CODE.sub(code, f.read_text())))
    return frozenset(out)


@functools.lru_cache(maxsize=1)
def generated_names() -> frozenset[str]:
    """Return the names generated code may use besides made-up `_` ones: Python's keywords and
    builtins (all of them, used or not) and every name of the templates' code."""
    return frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins)) | template_names()


def all_names(model: Model):
    """Yield every name the model declares (parameters, states, inputs, expressions, currents)."""
    for group in (model.parameters, model.states, model.inputs, model.expressions, model.currents):
        for q in group:
            yield q.name


def python_names(model: Model) -> dict[str, str]:
    """Return model name -> identifier in generated code, for the model's names that generated
    code uses itself (:func:`generated_names`): each gets `_` appended until it is free."""
    taken = set(all_names(model)) | generated_names()
    out = {}
    for n in sorted(all_names(model)):
        if n in generated_names():
            new = n + "_"
            while new in taken:
                new += "_"
            out[n] = new
            taken.add(new)
    return out


def receptor_statements(model: Model, receptor: str, printer) -> list[tuple[str, str, str]]:
    """Return (state, increment, source text) of each synapse statement of ``receptor``, the
    increment printed by ``printer`` (names renamed already) with ``_w`` the summed weights of the
    spikes that arrived (the network programs' receptors, numba's and cuda's)."""
    names = python_names(model)
    rename = {sympy.Symbol(k, real=True): sympy.Symbol(v, real=True) for k, v in names.items()}
    out = []
    for syn in model.synapses:
        if syn.receptor == receptor:
            inc = syn.factor.xreplace(rename) * sympy.Symbol("_w", real=True)
            text = f"{syn.text}  {source_ref(model, syn.span)}"
            out.append((names.get(syn.target, syn.target), printer.doprint(inc), text))
    return out

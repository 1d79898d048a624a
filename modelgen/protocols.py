"""Input protocols and per-neuron values: what drives a run, written as text or built in Python.

A protocol describes an input as a function of time; a per-neuron value gives each neuron of
the population its own number. Both are resolved against the declared dimension of the
input or parameter they drive when a run starts (units are checked then) and become what
the runtime wants: a callable of t (ms) returning a float or a per-neuron array, or an array,
in internal units.

Text forms (``--input NAME=…``, ``--param NAME=…``, or strings given to ``NeuronModel.run``)::

    10 uA/cm^2                                      a constant
    step(10 uA/cm^2, on=20 ms, off=80 ms)           amplitude in [on, off), baseline outside
    ramp(0 uA/cm^2, 20 uA/cm^2, on=0 ms, off=1 s)   linear from start to stop over [on, off)
    pulses(5 nA, width=2 ms, period=50 ms, on=10 ms, count=3)
    sine(5 uA/cm^2, 10 Hz, offset=2 uA/cm^2)        offset + amplitude sin(2 pi f (t - on) + phase)
    ou(mean=5 uA/cm^2, sigma=2 uA/cm^2, tau=5 ms)   Ornstein-Uhlenbeck noise (seeded)
    file(trace.csv)                                 a time series, linearly interpolated
    linspace(0, 20, n) uA/cm^2                      per neuron: n evenly spaced values
    normal(120, 5) mS/cm^2                          per neuron: normally distributed values
    uniform(-70, -60) mV                            per neuron: uniformly distributed values
    step(10 uA/cm^2, on=20 ms) + ou(mean=0 uA/cm^2, sigma=1 uA/cm^2, tau=2 ms)

Arguments are positional in the order shown by :data:`SIGNATURES` or ``name=value``. In text,
every value carries a unit (``0`` may go without); a unit written after a call's closing
parenthesis applies to its bare numbers (``normal(120, 5) mS/cm^2``). In Python, numbers
mean the unit the model declares for the input or parameter, times are in ms and
frequencies in Hz. Per-neuron values may stand for any value argument of a protocol
(``step(linspace(0, 20, n) uA/cm^2, on=10 ms)``). The parser is a small hand-written one:
nothing is evaluated, and every value goes through the unit parser of the model language.

Every protocol except ``file`` takes ``on`` and ``off`` (default: the whole run): inside
that window it follows its waveform, with time measured from ``on``; outside it it is
``baseline`` (default 0). Times are compared with a tolerance of 1e-6 dt, so a step on at
20 ms at dt = 0.01 ms switches on exactly at the step that starts at t = 20 ms.

Randomness (``normal``, ``uniform``, ``ou``) comes from numpy generators seeded by the run's
seed and the position of the call (input name and argument path), so a run is reproducible
from its seed and separate inputs get independent streams; ``ou(…, seed=…)`` fixes a
stream regardless of the run's seed.
"""

from __future__ import annotations

import difflib
import math
import re
import zlib
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import memory
from .diagnostics import Diagnostic, ModelError, Span
from .language import FUNCTIONS
from .model import parse_quantity
from .unit_objects import carries_units, refuse_units, to_internal
from .units import DIMENSIONLESS, FREQUENCY, TIME, Dimension, describe, suggested_unit, unit_text_scale

__all__ = [
    "SIGNATURES",
    "Protocol",
    "PerNeuron",
    "RunContext",
    "Target",
    "constant",
    "step",
    "ramp",
    "pulses",
    "sine",
    "ou",
    "from_file",
    "linspace",
    "normal",
    "uniform",
    "parse",
    "is_spec",
    "resolve",
    "implied_n",
    "describe_value",
    "OrnsteinUhlenbeck",
    "TimeSeries",
]

# kinds of argument: what dimension a value must have and what a bare Python number means
VALUE = "value"  # the driven quantity's dimension; numbers in its declared unit
TIME_ARG = "time"  # numbers in ms
FREQ_ARG = "frequency"  # numbers in Hz
NUMBER = "number"  # dimensionless (radians for a phase)
COUNT = "count"  # a positive whole number
SIZE = "size"  # `n` (the population size) or a whole number equal to it
SEED = "seed"  # a non-negative whole number
TEXT = "text"  # a file path, column name or unit, taken as written
_REQUIRED = object()

_WINDOW = (("on", TIME_ARG, 0.0), ("off", TIME_ARG, None), ("baseline", VALUE, 0.0))

# name -> ((argument, kind, default), ...) in positional order
SIGNATURES: dict[str, tuple[tuple[str, str, object], ...]] = {
    "constant": (("value", VALUE, _REQUIRED),),
    "step": (("amplitude", VALUE, _REQUIRED), *_WINDOW),
    "ramp": (("start", VALUE, _REQUIRED), ("stop", VALUE, _REQUIRED), *_WINDOW),
    "pulses": (
        ("amplitude", VALUE, _REQUIRED),
        ("width", TIME_ARG, _REQUIRED),
        ("period", TIME_ARG, _REQUIRED),
        *_WINDOW,
        ("count", COUNT, None),
    ),
    "sine": (
        ("amplitude", VALUE, _REQUIRED),
        ("frequency", FREQ_ARG, _REQUIRED),
        ("offset", VALUE, 0.0),
        ("phase", NUMBER, 0.0),
        *_WINDOW,
    ),
    "ou": (
        ("mean", VALUE, _REQUIRED),
        ("sigma", VALUE, _REQUIRED),
        ("tau", TIME_ARG, _REQUIRED),
        *_WINDOW,
        ("seed", SEED, None),
    ),
    "file": (("path", TEXT, _REQUIRED), ("column", TEXT, None), ("time_unit", TEXT, None), ("unit", TEXT, None)),
    # per-neuron values
    "linspace": (("start", VALUE, _REQUIRED), ("stop", VALUE, _REQUIRED), ("n", SIZE, "n")),
    "normal": (("mean", VALUE, _REQUIRED), ("sd", VALUE, _REQUIRED)),
    "uniform": (("low", VALUE, _REQUIRED), ("high", VALUE, _REQUIRED)),
}
PER_NEURON = frozenset({"linspace", "normal", "uniform"})
_LIMITS = {"text": 2000, "depth": 4, "terms": 16}


# ----------------------------------------------------------------------- specs
@dataclass(frozen=True)
class _Spec:
    """A call of a protocol or per-neuron function: name, arguments as written, where."""

    name: str
    args: tuple[tuple[str, object], ...]  # argument name -> text, number, array or nested _Spec
    unit: str = ""  # a unit written after the closing parenthesis (text forms only)
    source: str = ""  # the whole text it was parsed from ("" if built in Python)
    cols: tuple[tuple[str, int, int], ...] = ()  # argument -> (1-based column, length) in source
    col: int = 1  # where the call starts in source

    def arg(self, name: str):
        return dict(self.args).get(name)

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={_show(v)}" for k, v in self.args)
        return f"{self.name}({inner})" + (f" {self.unit}" if self.unit else "")


@dataclass(frozen=True)
class Protocol(_Spec):
    """An input waveform of time; ``a + b`` adds two protocols (or a protocol and a constant)."""

    parts: tuple = ()  # for name == "sum": the terms

    def __add__(self, other) -> Protocol:
        left = self.parts if self.name == "sum" else (self,)
        right = other.parts if isinstance(other, Protocol) and other.name == "sum" else (other,)
        return Protocol("sum", (), parts=left + right)

    def __radd__(self, other) -> Protocol:
        return Protocol("sum", (), parts=(other,)) + self

    def __str__(self) -> str:
        if self.name == "sum":
            return " + ".join(_show(p) for p in self.parts)
        return super().__str__()


@dataclass(frozen=True)
class PerNeuron(_Spec):
    """One value per neuron (``linspace``, ``normal``, ``uniform``), constant in time."""


def _show(v) -> str:
    if isinstance(v, np.ndarray):
        return f"<{v.size} values>"
    if isinstance(v, _Spec):
        return str(v)
    return str(v)


def _make(cls, name: str, values: dict) -> _Spec:
    sig = SIGNATURES[name]
    args = tuple((arg, values[arg]) for arg, _, _ in sig if values.get(arg) is not None)
    return cls(name, args)


def constant(value) -> Protocol:
    """Return a constant input (``value`` may be per-neuron)."""
    return _make(Protocol, "constant", locals())


def step(amplitude, on=0.0, off=None, baseline=0.0) -> Protocol:
    """Return ``amplitude`` during [on, off) and ``baseline`` outside (``off`` default: the end of the run)."""
    return _make(Protocol, "step", locals())


def ramp(start, stop, on=0.0, off=None, baseline=0.0) -> Protocol:
    """Return a linear ramp from ``start`` at ``on`` to ``stop`` at ``off``, ``baseline`` outside."""
    return _make(Protocol, "ramp", locals())


def pulses(amplitude, width, period, on=0.0, off=None, baseline=0.0, count=None) -> Protocol:
    """Return a pulse train: ``amplitude`` for ``width`` every ``period`` from ``on`` (at most ``count`` pulses)."""
    return _make(Protocol, "pulses", locals())


def sine(amplitude, frequency, offset=0.0, phase=0.0, on=0.0, off=None, baseline=0.0) -> Protocol:
    """Return ``offset + amplitude*sin(2 pi frequency (t - on) + phase)`` in [on, off) (phase in radians)."""
    return _make(Protocol, "sine", locals())


def ou(mean, sigma, tau, on=0.0, off=None, baseline=0.0, seed=None) -> Protocol:
    """Return Ornstein-Uhlenbeck noise: stationary mean ``mean``, standard deviation ``sigma``, correlation time ``tau``.

    The process, ``dx = (mean - x)/tau dt + sigma sqrt(2/tau) dW``, starts from its
    stationary distribution and is sampled exactly at every step (``x[k+1] = mean +
    (x[k] - mean) e^(-dt/tau) + sigma sqrt(1 - e^(-2 dt/tau)) z``), independently per neuron;
    between steps (Runge-Kutta stages) it is interpolated linearly.
    """
    return _make(Protocol, "ou", locals())


def from_file(path, column=None, time_unit=None, unit=None) -> Protocol:
    """Return a time series read from a .csv or .npy file, interpolated linearly (``file(…)`` in text).

    Column 0 is time, the others values: one value column drives every neuron, as many as
    neurons drive one each, else choose one with ``column`` (a header name or a column
    index). Units come from ``time_unit``/``unit``, else from a CSV header such as
    ``t (ms),I (pA)``, else ms and the input's declared unit. Before the first and after
    the last sample the end values hold.
    """
    return _make(Protocol, "file", {"path": str(path), "column": column, "time_unit": time_unit, "unit": unit})


def linspace(start, stop, n="n") -> PerNeuron:
    """Return per-neuron values evenly spaced from ``start`` to ``stop`` (inclusive)."""
    return _make(PerNeuron, "linspace", locals())


def normal(mean, sd) -> PerNeuron:
    """Return per-neuron values drawn from a normal distribution (seeded by the run's seed)."""
    return _make(PerNeuron, "normal", locals())


def uniform(low, high) -> PerNeuron:
    """Return per-neuron values drawn uniformly from [low, high) (seeded by the run's seed)."""
    return _make(PerNeuron, "uniform", locals())


# ----------------------------------------------------------------------- text parser
class _Fail(Exception):
    def __init__(self, col: int, length: int, message: str, hint: str = ""):
        self.col, self.length, self.message, self.hint = col, length, message, hint


_CALL_RE = re.compile(r"([A-Za-z_]\w*)\s*\(")
_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def is_spec(value) -> bool:
    """Return whether ``value`` is a protocol or per-neuron value (an object, or text calling one).

    Text calling only functions of the model language (``exp(1) mV``) is a plain quantity.
    """
    if isinstance(value, _Spec):
        return True
    return isinstance(value, str) and any(m.group(1) not in FUNCTIONS for m in _CALL_RE.finditer(value))


def parse(text: str, what: str = "value") -> Protocol | PerNeuron | str:
    """Return the protocol or per-neuron value written in ``text`` (plain quantities come back as text).

    Raises ModelError pointing into ``text`` for syntax errors, unknown functions or
    arguments; units are checked later, by :func:`resolve`.
    """
    if len(text) > _LIMITS["text"]:
        raise _error(what, text, 1, 1, f"the value of {what} is longer than {_LIMITS['text']} characters")
    try:
        terms = _Parser(text).parse_sum()
    except _Fail as f:
        raise _error(what, text, f.col, f.length, f.message, f.hint) from None
    if len(terms) == 1:
        return terms[0]
    return Protocol("sum", (), source=text, parts=tuple(terms))


class _Parser:
    """``sum := term ('+' term)*;  term := call [unit] | quantity;  call := NAME '(' [arg (',' arg)*] ')'``."""

    def __init__(self, text: str):
        self.s = text
        self.i = 0

    def skip(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def parse_sum(self) -> list:
        terms = [self.parse_term(0)]
        while True:
            self.skip()
            if self.i >= len(self.s):
                return terms
            if self.s[self.i] != "+":  # pragma: no cover - parse_term stops only at '+' or the end
                raise _Fail(self.i + 1, 1, f"unexpected `{self.s[self.i]}`")
            self.i += 1
            if len(terms) >= _LIMITS["terms"]:
                raise _Fail(self.i, 1, f"at most {_LIMITS['terms']} terms may be added")
            terms.append(self.parse_term(0))

    def parse_term(self, depth: int, stops: str = "+"):
        """Return a call (with its trailing unit) or the text of a quantity, up to a top-level stop."""
        self.skip()
        start = self.i
        m = _CALL_RE.match(self.s, self.i)
        if m is None or m.group(1) not in SIGNATURES:
            if m is not None and m.group(1) not in FUNCTIONS:
                close = difflib.get_close_matches(m.group(1), list(SIGNATURES), n=1)
                raise _Fail(
                    start + 1,
                    len(m.group(1)),
                    f"unknown function `{m.group(1)}`",
                    f"did you mean `{close[0]}`?" if close else "use one of " + ", ".join(SIGNATURES),
                )
            text, col = self.raw(stops)
            if not text:
                raise _Fail(col, 1, "expected a value")
            return text
        return self.parse_call(m, depth, stops)

    def raw(self, stops: str) -> tuple[str, int]:
        """Return (stripped text, 1-based column) up to a top-level stop character or unmatched ')'."""
        self.skip()
        start, depth = self.i, 0
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and c in stops and not (c == "+" and _in_exponent(self.s, self.i)):
                break
            self.i += 1
        return self.s[start : self.i].strip(), start + 1

    def parse_call(self, m: re.Match, depth: int, stops: str) -> _Spec:
        name, start = m.group(1), self.i
        if depth >= _LIMITS["depth"]:
            raise _Fail(start + 1, len(name), f"calls nested more than {_LIMITS['depth']} deep")
        self.i = m.end()
        sig = SIGNATURES[name]
        names = [a for a, _, _ in sig]
        args: dict[str, object] = {}
        cols: list[tuple[str, int, int]] = []
        positional_ok = True
        while True:
            self.skip()
            if self.i >= len(self.s):
                raise _Fail(len(self.s) + 1, 1, f"`{name}(` is missing its closing `)`")
            if self.s[self.i] == ")" and not args and not cols:
                self.i += 1
                break
            key_m = re.compile(r"([A-Za-z_]\w*)\s*=(?!=)").match(self.s, self.i)
            if key_m:
                key = key_m.group(1)
                if key not in names:
                    close = difflib.get_close_matches(key, names, n=1)
                    raise _Fail(
                        self.i + 1,
                        len(key),
                        f"{name}() has no argument `{key}`",
                        f"did you mean `{close[0]}`?" if close else f"{name}() takes " + ", ".join(names),
                    )
                self.i = key_m.end()
                positional_ok = False
            else:
                if not positional_ok:
                    raise _Fail(self.i + 1, 1, "a positional argument cannot follow a `name=value` argument")
                if len(args) >= len(names):
                    raise _Fail(self.i + 1, 1, f"{name}() takes at most {len(names)} arguments ({', '.join(names)})")
                key = names[len(args)]
            if key in args:
                raise _Fail(self.i + 1, 1, f"argument `{key}` of {name}() is given twice")
            kind = next(k for a, k, _ in sig if a == key)
            self.skip()
            vstart = self.i
            if kind == TEXT and self.i < len(self.s) and self.s[self.i] in "\"'":
                quote = self.s[self.i]
                end = self.s.find(quote, self.i + 1)
                if end < 0:
                    raise _Fail(self.i + 1, 1, "unterminated quoted text")
                value = self.s[self.i + 1 : end]
                self.i = end + 1
            elif kind == VALUE and (cm := _CALL_RE.match(self.s, self.i)) and cm.group(1) in SIGNATURES:
                value = self.parse_call(cm, depth + 1, ",")
                if not isinstance(value, PerNeuron):
                    raise _Fail(
                        vstart + 1,
                        len(cm.group(1)),
                        f"`{cm.group(1)}(…)` cannot be the {key} of {name}()",
                        "only linspace, normal and uniform give values",
                    )
            else:
                value, _ = self.raw(",")
                if not value:
                    raise _Fail(vstart + 1, 1, f"argument `{key}` of {name}() is empty")
            args[key] = value
            cols.append((key, vstart + 1, max(1, self.i - vstart)))
            self.skip()
            if self.i < len(self.s) and self.s[self.i] == ",":
                self.i += 1
                continue
            if self.i < len(self.s) and self.s[self.i] == ")":
                self.i += 1
                break
            raise _Fail(self.i + 1, 1, f"expected `,` or `)` in {name}(…)")
        missing = [a for a, _, d in sig if d is _REQUIRED and a not in args]
        if missing:
            raise _Fail(start + 1, len(name), f"{name}() needs " + ", ".join(f"`{a}`" for a in missing))
        unit, ucol = self.raw(stops)
        if unit and unit[0].isdigit() and not unit.startswith("1/"):
            raise _Fail(ucol, len(unit), f"unexpected `{unit}` after {name}(…)", "is a `+` or `,` missing?")
        cls = PerNeuron if name in PER_NEURON else Protocol
        ordered = tuple((a, args[a]) for a in names if a in args)
        return cls(name, ordered, unit=unit, source=self.s, cols=tuple(cols), col=start + 1)


def _in_exponent(s: str, i: int) -> bool:
    """Return whether the '+' at ``s[i]`` is the sign of a number's exponent (``1e+3``)."""
    return i >= 2 and s[i - 1] in "eE" and s[i - 2].isdigit() and i + 1 < len(s) and s[i + 1].isdigit()


def _error(what: str, text: str, col: int, length: int, message: str, hint: str = "") -> ModelError:
    return ModelError([Diagnostic("E501", Span(what, 1, col, length, text), message, hint)])


# ----------------------------------------------------------------------- resolution
@dataclass(frozen=True)
class Target:
    """What a value drives: an input or a parameter with its dimension and declared unit."""

    name: str
    dimension: Dimension
    unit: str  # as declared in the model
    scale: float  # internal value of one declared unit

    @classmethod
    def of(cls, declared) -> Target:
        """Return the target of a model Input or Parameter."""
        return cls(declared.name, declared.dimension, declared.unit, declared.display_scale)


@dataclass
class RunContext:
    """What resolving a protocol needs to know about the run: population, step, duration, seed."""

    n: int
    dt: float  # ms
    duration: float  # ms
    seed: int | None = None
    base_dir: Path = field(default_factory=Path)  # relative file paths start here
    # where a file named in the text is (None: the user's own path, `~` expanded); a network
    # file gives its rule, which keeps paths inside its folder
    resolve_path: Callable[[str], Path] | None = None
    max_memory: int | None = None  # bytes a file may take once read (None: the memory available)
    # a sweep's grid index of each neuron: each neuron then draws from its own stream, so its
    # random values do not depend on which other points share its run (None: one stream per key)
    neuron_ids: np.ndarray | None = None

    def seed_sequence(self, key: str) -> np.random.SeedSequence:
        """Return the seed of the random stream at ``key`` (input name and argument path)."""
        if self.seed is None:
            self.seed = int(np.random.SeedSequence().entropy)
        return np.random.SeedSequence([int(self.seed), zlib.crc32(key.encode())])

    def stream_seeds(self, key: str, fixed: int | None = None) -> np.random.SeedSequence | list[np.random.SeedSequence]:
        """Return the seed of the stream at ``key``, or with ``neuron_ids`` one seed per neuron.

        ``fixed``: a seed written in the protocol, used instead of the run's seed and ``key``.
        """
        if self.neuron_ids is None:
            return np.random.SeedSequence(fixed) if fixed is not None else self.seed_sequence(key)
        words = [int(fixed)] if fixed is not None else list(self.seed_sequence(key).entropy)
        return [np.random.SeedSequence([*words, int(i)]) for i in self.neuron_ids]

    def draw(self, key: str, draw: Callable[[np.random.Generator, int | None], np.ndarray | float]) -> np.ndarray:
        """Return ``n`` values made by ``draw(generator, size)`` from the stream at ``key`` (per neuron with ``neuron_ids``)."""
        seeds = self.stream_seeds(key)
        if isinstance(seeds, list):
            return np.array([draw(np.random.default_rng(s), None) for s in seeds], dtype=float)
        return draw(np.random.default_rng(seeds), self.n)


def resolve(value, target: Target, ctx: RunContext, time_varying: bool = True):
    """Return ``value`` (a spec object or its text) in internal units: a callable of t (ms), an array or a float.

    ``time_varying=False`` (parameters) accepts only constants and per-neuron values.
    """
    spec = parse(value, target.name) if isinstance(value, str) else value
    if isinstance(spec, str):
        return _Resolver(target, ctx, None, "").value(spec, VALUE, "value", target.name)
    if isinstance(spec, Protocol) and not time_varying:
        raise _spec_error(
            target.name,
            spec,
            None,
            f"`{_head(spec)}(…)` varies in time, but parameters are constant",
            "drive an input with it, or give per-neuron values with linspace, normal or uniform",
        )
    return _Resolver(target, ctx, spec, target.name).spec(spec)


def _head(spec: _Spec) -> str:
    return spec.parts[0].name if spec.name == "sum" and isinstance(spec.parts[0], _Spec) else spec.name


def _spec_error(what: str, spec: _Spec | None, arg: str | None, message: str, hint: str = "") -> ModelError:
    if spec is not None and spec.source:
        col, length = spec.col, len(spec.name)
        for a, c, n in spec.cols:
            if a == arg:
                col, length = c, n
        return _error(what, spec.source, col, length, message, hint)
    return ModelError([Diagnostic("E501", None, f"{what}: {message}", hint)])


def _meaning(kind: str, target: Target) -> tuple[Dimension, str, float]:
    """Return (dimension, unit a plain Python number means, internal value of one such unit) of an argument kind."""
    return {
        VALUE: (target.dimension, target.unit, target.scale),
        TIME_ARG: (TIME, "ms", 1.0),
        FREQ_ARG: (FREQUENCY, "Hz", 1e-3),
        NUMBER: (DIMENSIONLESS, "", 1.0),
    }[kind]


class _Resolver:
    """Turns one spec tree into internal values for one target (keys random streams by position)."""

    def __init__(self, target: Target, ctx: RunContext, root, key: str):
        self.target, self.ctx, self.root, self.key = target, ctx, root, key

    def spec(self, spec, key: str | None = None):
        key = key or self.key
        if spec.name == "sum":
            parts = [
                self.spec(p, f"{key}+{i}") if isinstance(p, _Spec) else self.value(p, VALUE, "value", key)
                for i, p in enumerate(spec.parts)
            ]
            return _sum(parts)
        args = {}
        for arg, kind, default in SIGNATURES[spec.name]:
            raw = spec.arg(arg)
            if raw is None:
                args[arg] = None if default is _REQUIRED else default
                if default is not None and default is not _REQUIRED:
                    args[arg] = self.value(default, kind, arg, key, spec)
                continue
            if kind == VALUE and spec.unit and isinstance(raw, str) and _NUMBER_RE.fullmatch(raw.strip()):
                raw = f"{raw} {spec.unit}"
            if kind == VALUE and spec.unit and isinstance(raw, PerNeuron) and not raw.unit:
                raw = PerNeuron(raw.name, raw.args, spec.unit, raw.source, raw.cols, raw.col)
            args[arg] = self.value(raw, kind, arg, f"{key}.{arg}", spec)
        if spec.name in PER_NEURON:
            return self.per_neuron(spec, args, key)
        return _WAVEFORMS[spec.name](self, spec, args, key)

    def value(self, raw, kind: str, arg: str, key: str, spec: _Spec | None = None):
        """Return one argument in internal units (float, per-neuron array, int or text)."""
        where = f"{spec.name}({arg}=…)" if spec is not None else self.target.name
        if isinstance(raw, PerNeuron):
            if kind != VALUE:
                raise _spec_error(
                    self.target.name, spec, arg, f"{where} must be a single {kind}, not per-neuron values"
                )
            return self.spec(raw, key)
        if kind == TEXT:
            refuse_units(raw, f"{self.target.name}: {where}", "text (write a unit as text, e.g. unit='nA')")
            return str(raw)
        if kind in (COUNT, SEED, SIZE):
            refuse_units(raw, f"{self.target.name}: {where}", "a whole number")
            return self.whole(raw, kind, arg, spec)
        dim, unit, scale = _meaning(kind, self.target)
        if isinstance(raw, str):
            try:
                got, got_dim = parse_quantity(raw.strip(), self.target.name)
            except ModelError as e:
                raise _spec_error(
                    self.target.name, spec, arg, f"cannot read `{raw}`: {e.diagnostics[0].message}"
                ) from None
            if got_dim != dim and not (got == 0 and got_dim.is_dimensionless):
                example = unit if unit and unit != "1" else suggested_unit(dim)
                hint = f"write it with a unit, e.g. `{raw.strip()} {example}`" if got_dim.is_dimensionless else ""
                raise _spec_error(
                    self.target.name,
                    spec,
                    arg,
                    f"{where} must be {describe(dim)} (e.g. {example}), but `{raw.strip()}` is {describe(got_dim)}",
                    hint,
                )
            return got
        if isinstance(raw, _Spec):  # a waveform where a value is wanted (text forms are refused by the parser)
            raise _spec_error(
                self.target.name,
                spec,
                arg,
                f"`{_head(raw)}(…)` cannot be the {arg} of {spec.name if spec else self.target.name}()",
                "only linspace, normal and uniform give values",
            )
        if carries_units(raw):  # pint, quantities, astropy, unyt, brian2: converted, never stripped
            arr = np.asarray(to_internal(raw, dim, where if spec is None else f"{self.target.name}: {where}", unit))
            scale = 1.0
        elif isinstance(raw, bool) or callable(raw):
            raise _spec_error(self.target.name, spec, arg, f"{where} must be a number or text with a unit, not {raw!r}")
        else:
            arr = np.asarray(raw, dtype=float)
        if arr.ndim == 0:
            return float(arr) * scale
        if arr.shape != (self.ctx.n,):
            raise _spec_error(
                self.target.name, spec, arg, f"{where}: per-neuron values need shape ({self.ctx.n},), got {arr.shape}"
            )
        return arr * scale

    def whole(self, raw, kind: str, arg: str, spec: _Spec):
        if kind == SIZE and isinstance(raw, str) and raw.strip() == "n":
            return self.ctx.n
        try:
            number = int(raw.strip()) if isinstance(raw, str) else int(raw) if float(raw).is_integer() else None
        except (TypeError, ValueError, OverflowError):
            number = None
        if number is None or number < (0 if kind == SEED else 1) or number >= 2**128:
            what = (
                "`n` or a whole number" if kind == SIZE else "a whole number" + (" >= 0" if kind == SEED else " >= 1")
            )
            raise _spec_error(self.target.name, spec, arg, f"{spec.name}({arg}=…) must be {what}, not `{raw}`")
        if kind == SIZE and int(number) != self.ctx.n:
            raise _spec_error(
                self.target.name,
                spec,
                arg,
                f"{spec.name}() makes {int(number)} values but the run has {self.ctx.n} neurons",
                f"write `n` for the population size, or run {int(number)} neurons (--n {int(number)})",
            )
        return int(number)

    def per_neuron(self, spec: _Spec, a: dict, key: str) -> np.ndarray:
        n = self.ctx.n
        for name, v in a.items():
            if np.ndim(v):
                raise _spec_error(self.target.name, spec, name, f"{spec.name}({name}=…) must be a single value")
        if spec.name == "linspace":
            return np.linspace(a["start"], a["stop"], n)
        if spec.name == "normal":
            if a["sd"] < 0:
                raise _spec_error(self.target.name, spec, "sd", "normal(sd=…) must not be negative")
            return self.ctx.draw(key, lambda rng, size: rng.normal(a["mean"], a["sd"], size))
        if a["high"] < a["low"]:
            raise _spec_error(self.target.name, spec, "high", "uniform(high=…) must not be below low")
        return self.ctx.draw(key, lambda rng, size: rng.uniform(a["low"], a["high"], size))

    # windows: inside [on, off) the waveform, else the baseline
    def window(self, spec: _Spec, a: dict) -> tuple[float, float]:
        on, off = a["on"], a["off"]
        if off is not None and off < on:
            raise _spec_error(
                self.target.name, spec, "off", f"{spec.name}(): off ({off:g} ms) is before on ({on:g} ms)"
            )
        eps = 1e-6 * self.ctx.dt
        return on - eps, (math.inf if off is None else off - eps)


def _sum(parts: list):
    constants = [p for p in parts if not callable(p)]
    funcs = [p for p in parts if callable(p)]
    offset = sum(constants) if constants else 0.0
    if not funcs:
        return offset

    def total(t, funcs=tuple(funcs), offset=offset):
        out = offset
        for f in funcs:
            out = out + f(t)
        return out

    return total


def _constant(r: _Resolver, spec: _Spec, a: dict, key: str):
    return a["value"]


def _step(r: _Resolver, spec: _Spec, a: dict, key: str):
    lo, hi = r.window(spec, a)
    amplitude, baseline = a["amplitude"], a["baseline"]

    def step_input(t):
        return amplitude if lo <= t < hi else baseline

    return step_input


def _ramp(r: _Resolver, spec: _Spec, a: dict, key: str):
    lo, hi = r.window(spec, a)
    on = a["on"]
    length = (r.ctx.duration if a["off"] is None else a["off"]) - on
    if length <= 0:
        raise _spec_error(r.target.name, spec, "off", "ramp() needs off after on")
    start, slope, baseline = a["start"], (a["stop"] - a["start"]) / length, a["baseline"]

    def ramp_input(t):
        return start + slope * (t - on) if lo <= t < hi else baseline

    return ramp_input


def _pulses(r: _Resolver, spec: _Spec, a: dict, key: str):
    lo, hi = r.window(spec, a)
    on, width, period, count = a["on"], a["width"], a["period"], a["count"]
    if not 0 < width <= period:
        raise _spec_error(
            r.target.name,
            spec,
            "width",
            f"pulses(): width ({width:g} ms) must be > 0 and at most the period ({period:g} ms)",
        )
    eps = 1e-6 * r.ctx.dt
    amplitude, baseline = a["amplitude"], a["baseline"]
    last = math.inf if count is None else count

    def pulse_input(t):
        if not lo <= t < hi:
            return baseline
        i = math.floor((t - on + eps) / period)
        return amplitude if i < last and t - on - i * period < width - eps else baseline

    return pulse_input


def _sine(r: _Resolver, spec: _Spec, a: dict, key: str):
    lo, hi = r.window(spec, a)
    on, omega = a["on"], 2 * math.pi * a["frequency"]
    amplitude, offset, phase, baseline = a["amplitude"], a["offset"], a["phase"], a["baseline"]

    def sine_input(t):
        return offset + amplitude * math.sin(omega * (t - on) + phase) if lo <= t < hi else baseline

    return sine_input


def _ou(r: _Resolver, spec: _Spec, a: dict, key: str):
    lo, hi = r.window(spec, a)
    if not a["tau"] > 0:
        raise _spec_error(r.target.name, spec, "tau", "ou(tau=…) must be positive")
    if np.any(np.asarray(a["sigma"]) < 0):
        raise _spec_error(r.target.name, spec, "sigma", "ou(sigma=…) must not be negative")
    seed = r.ctx.stream_seeds(key, a["seed"])
    process = OrnsteinUhlenbeck(a["mean"], a["sigma"], a["tau"], r.ctx.dt, r.ctx.n, seed)
    baseline = a["baseline"]
    if lo <= 0 and hi == math.inf:
        return process

    def ou_input(t):
        return process(t) if lo <= t < hi else baseline

    return ou_input


class OrnsteinUhlenbeck:
    """An OU process per neuron, sampled exactly at t = k dt and interpolated linearly between.

    Values are generated forwards in blocks of steps, so memory does not grow with the run;
    asking for an earlier time than the current block restarts the (seeded) stream, so the
    process is a deterministic function of its seed, dt and the neuron count (numpy draws
    the same normal numbers whatever the block size).
    """

    max_block = 1024

    def __init__(
        self, mean, sigma, tau: float, dt: float, n: int, seed: np.random.SeedSequence | list[np.random.SeedSequence]
    ):
        self.mean = np.broadcast_to(np.asarray(mean, dtype=float), (n,)).copy()
        self.sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (n,)).copy()
        self.decay = math.exp(-dt / tau)
        self.kick = self.sigma * math.sqrt(-math.expm1(-2 * dt / tau))
        self.dt, self.n, self.seed = dt, n, seed
        self.block = max(1, min(self.max_block, 2**20 // n))  # at most ~8 MB per block
        self.restart()

    def restart(self) -> None:
        # one seed per neuron (a sweep): each neuron's values come from its own stream
        if isinstance(self.seed, list):
            self.rngs = [np.random.default_rng(s) for s in self.seed]
        else:
            self.rngs = None
            self.rng = np.random.default_rng(self.seed)
        x0 = self.mean + self.sigma * self.normals(None)
        self.first = 0  # step index of rows[0]
        self.rows = self.fill(x0)

    def fill(self, x0: np.ndarray) -> np.ndarray:
        """Return the values at steps first .. first + block (block + 1 rows), x0 first."""
        z = self.normals(self.block)
        rows = np.empty((self.block + 1, self.n))
        rows[0] = x0
        dev = x0 - self.mean
        for j in range(self.block):
            dev = self.decay * dev + self.kick * z[j]
            rows[j + 1] = dev
        rows[1:] += self.mean
        return rows

    def normals(self, rows: int | None) -> np.ndarray:
        """Return standard normal numbers, (rows, n) or (n,) for ``rows`` None, from the stream or the neurons' streams."""
        if self.rngs is None:
            return self.rng.standard_normal(self.n if rows is None else (rows, self.n))
        return np.array([rng.standard_normal(rows) for rng in self.rngs]).T

    def at_step(self, k: int) -> np.ndarray:
        if k < self.first:
            self.restart()
        while k > self.first + self.block:
            x0 = self.rows[-1]
            self.first += self.block
            self.rows = self.fill(x0)
        return self.rows[k - self.first]

    def __call__(self, t: float) -> np.ndarray:
        u = t / self.dt
        k = math.floor(u + 1e-9)
        frac = u - k
        if frac < 1e-9:
            return self.at_step(k)
        x0 = self.at_step(k)
        x1 = self.at_step(k + 1)  # may start a new block; x0 still refers to the old one
        return x0 + frac * (x1 - x0)


def _file(r: _Resolver, spec: _Spec, a: dict, key: str):
    return TimeSeries.read(a["path"], a["column"], a["time_unit"], a["unit"], r, spec)


class TimeSeries:
    """Samples (t_i, x_i) interpolated linearly; the end values hold outside the samples."""

    def __init__(self, t: np.ndarray, values: np.ndarray):
        self.t = t
        self.values = values  # (n_samples, k) with k = 1 or the number of neurons
        self.shared = values.shape[1] == 1

    def __call__(self, t: float):
        ts = self.t
        i = int(np.searchsorted(ts, t, side="right"))
        if i <= 0:
            row = self.values[0]
        elif i >= ts.size:
            row = self.values[-1]
        else:
            w = (t - ts[i - 1]) / (ts[i] - ts[i - 1])
            row = self.values[i - 1] + w * (self.values[i] - self.values[i - 1])
        return float(row[0]) if self.shared else row

    @classmethod
    def read(cls, path_text: str, column, time_unit: str, unit, r: _Resolver, spec: _Spec) -> TimeSeries:
        what = r.target.name

        def fail(message: str, hint: str = "") -> ModelError:
            return _spec_error(what, spec, "path", message, hint)

        if r.ctx.resolve_path is not None:
            path = r.ctx.resolve_path(path_text)
        else:
            path = Path(path_text).expanduser()
            if not path.is_absolute():
                path = r.ctx.base_dir / path
        if not path.is_file():
            return_hint = "give the path of a .csv or .npy file" if not path.exists() else f"{path_text} is not a file"
            raise fail(f"cannot read `{path_text}`: no such file", return_hint)
        header: list[str] = []
        npy = path.suffix.lower() == ".npy"
        try:
            size = path.stat().st_size
            values = _npy_values(path) if npy else memory.csv_values(path, size)
        except (OSError, ValueError) as e:
            raise fail(f"cannot read `{path_text}`: {e}") from None
        # read, converted to float, scaled: about three copies of the numbers at the peak
        memory.require(
            {"its numbers": 3 * memory.FLOAT * values},
            f"reading `{path_text}` ({memory.format_size(size)}, about {values:,} numbers, for {what})",
            "give a shorter or coarser time series",
            r.ctx.max_memory,
        )
        try:
            if npy:
                data = np.load(path, allow_pickle=False)
            else:
                header, data = _read_csv(path)
        except (OSError, ValueError, UnicodeDecodeError) as e:
            raise fail(f"cannot read `{path_text}`: {_excerpt(str(e), 200)}") from None
        data = np.asarray(data, dtype=float) if data.dtype.kind in "iuf" else None
        if data is None or data.ndim != 2 or data.shape[1] < 2 or data.shape[0] < 1:
            raise fail(f"`{path_text}` must hold a table of numbers: a time column and at least one value column")
        if not np.all(np.isfinite(data)):
            raise fail(f"`{path_text}` contains values that are not finite numbers")
        t = data[:, 0]
        if np.any(np.diff(t) <= 0):
            raise fail(f"the times in `{path_text}` must increase strictly")
        names = [_header_name(h) for h in header]
        if column is not None:
            col = str(column).strip()
            if col in names[1:]:
                idx = names.index(col)
            elif col.isdigit() and 1 <= int(col) < data.shape[1]:
                idx = int(col)
            else:
                raise _spec_error(
                    what,
                    spec,
                    "column",
                    f"`{path_text}` has no value column `{col}`",
                    "its columns: " + _excerpt(", ".join(names[1:] or [str(i) for i in range(1, data.shape[1])])),
                )
            value_cols = [idx]
        else:
            value_cols = list(range(1, data.shape[1]))
            if len(value_cols) not in (1, r.ctx.n):
                raise fail(
                    f"`{path_text}` has {len(value_cols)} value columns but the run has {r.ctx.n} neurons",
                    "choose one with column=…, or give one column per neuron",
                )
        t_scale = _unit_scale(time_unit or _header_unit(header, 0) or "ms", TIME, "time_unit", r, spec)
        unit_text = unit or _header_unit(header, value_cols[0])
        v_scale = r.target.scale if not unit_text else _unit_scale(unit_text, r.target.dimension, "unit", r, spec)
        return cls(t * t_scale, data[:, value_cols] * v_scale)


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """Return (header cells, numbers) of a comma-, semicolon- or whitespace-separated table.

    Read line by line into one growing array of floats, so reading takes little more memory
    than the numbers themselves.
    """
    header: list[str] = []
    numbers = array("d")
    sep, width, row, seen = None, 0, 0, False
    with open(path, encoding="utf-8") as f:
        for line in f:
            ln = line.strip()
            if not ln or ln.startswith("#"):
                continue
            if not seen:
                seen = True
                sep = "," if "," in ln else ";" if ";" in ln else None
                first = [c.strip() for c in ln.split(sep)]
                if not all(_NUMBER_RE.fullmatch(c) for c in first):
                    header, row = first, 1
                    continue
            row += 1
            cells = [c.strip() for c in ln.split(sep)]
            expected = len(header) or width
            if expected and len(cells) != expected:
                raise ValueError(f"row {row} has {len(cells)} columns, expected {expected}")
            try:
                numbers.extend([float(c) for c in cells])
            except ValueError:
                raise ValueError(f"row {row} is not a row of numbers: `{_excerpt(ln)}`") from None
            width = len(cells)
    if not seen:
        raise ValueError("the file is empty")
    if not width:
        raise ValueError("the file has no rows of numbers")
    return header, np.frombuffer(numbers, dtype=float).reshape(-1, width)


def _npy_values(path: Path) -> int:
    """Return how many values the .npy file at ``path`` holds, after checking its header against its size."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
        start = f.tell()
    count = math.prod(shape)
    size = path.stat().st_size - start
    if dtype.itemsize and count * dtype.itemsize > size:
        raise ValueError(
            f"its header announces {count} values of shape {shape} ({memory.format_size(count * dtype.itemsize)}), "
            f"but it holds {memory.format_size(size)} of data (a damaged or truncated file)"
        )
    return count


def _excerpt(text: str, limit: int = 40) -> str:
    """Return at most ``limit`` characters of ``text`` read from a file, escaped (what an error may show of it)."""
    head = text[:limit]
    return (head if head.isprintable() else repr(head)[1:-1]) + ("…" if len(text) > limit else "")


_HEADER_UNIT = re.compile(r"^\s*([^(\[]*?)\s*[(\[]\s*([^)\]]*)\s*[)\]]\s*$")


def _header_name(cell: str) -> str:
    m = _HEADER_UNIT.match(cell)
    return (m.group(1) if m else cell).strip()


def _header_unit(header: list[str], i: int) -> str:
    if i >= len(header):
        return ""
    m = _HEADER_UNIT.match(header[i])
    return m.group(2).strip() if m else ""


def _unit_scale(text: str, dim: Dimension, arg: str, r: _Resolver, spec: _Spec) -> float:
    try:
        got, got_dim = parse_quantity(f"1 {text}", r.target.name)
    except ModelError:
        try:
            got_dim, scale = unit_text_scale(text)
            got = float(scale)
        except (KeyError, ValueError):
            raise _spec_error(r.target.name, spec, arg, f"file(): `{_excerpt(text)}` is not a unit") from None
    if got_dim != dim:
        raise _spec_error(
            r.target.name,
            spec,
            arg,
            f"file(): the {'time' if dim == TIME else 'value'} unit `{_excerpt(text)}` is {describe(got_dim)}, but must be {describe(dim)} (e.g. {suggested_unit(dim)})",
        )
    return got


_WAVEFORMS: dict[str, Callable] = {
    "constant": _constant,
    "step": _step,
    "ramp": _ramp,
    "pulses": _pulses,
    "sine": _sine,
    "ou": _ou,
    "file": _file,
}


def describe_value(value, target: Target) -> str:
    """Return the text form of a spec, Python numbers written with their units (for metadata)."""
    if isinstance(value, str):
        return value
    if per_neuron_with_units(value):
        return "[" + ", ".join(describe_value(v, target) for v in value) + "]"  # per neuron, each with its unit
    if not isinstance(value, _Spec):
        try:
            return _number_text(_plain(value, VALUE, target), target.unit)
        except (TypeError, ValueError):
            return repr(value)  # not a value: the run says so
    if value.source:
        return value.source
    if value.name == "sum":
        return " + ".join(describe_value(p, target) for p in value.parts)
    out = []
    for arg, kind, default in SIGNATURES[value.name]:
        raw = value.arg(arg)
        raw = raw if isinstance(raw, _Spec) else _plain(raw, kind, target)
        if raw is None or (default is not _REQUIRED and _same(raw, default)):
            continue
        unit = {VALUE: target.unit, TIME_ARG: "ms", FREQ_ARG: "Hz"}.get(kind, "")
        text = describe_value(raw, target) if isinstance(raw, _Spec) else _number_text(raw, unit)
        out.append(text if default is _REQUIRED else f"{arg}={text}")
    return f"{value.name}({', '.join(out)})"


def per_neuron_with_units(value) -> bool:
    """Return whether ``value`` is a sequence of values of which some carry units (text or objects)."""
    return (
        isinstance(value, (list, tuple, np.ndarray))
        and not carries_units(value)
        and np.ndim(value) == 1
        and any(isinstance(v, str) or carries_units(v) for v in value)
    )


def _plain(raw, kind: str, target: Target):
    """Return ``raw`` as plain numbers in the unit a number of that kind means (values with units converted)."""
    if kind not in (VALUE, TIME_ARG, FREQ_ARG, NUMBER) or not carries_units(raw):
        return raw
    dim, unit, scale = _meaning(kind, target)
    return to_internal(raw, dim, target.name, unit) / scale


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a.strip() == b.strip()
    try:
        return not isinstance(a, str) and np.ndim(a) == 0 and float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _number_text(raw, unit: str) -> str:
    if isinstance(raw, str):
        return raw
    unit = "" if unit in ("", "1") else " " + unit
    if np.ndim(raw) == 0:
        return f"{float(raw):g}{unit}"
    return "[" + ", ".join(f"{float(x):g}" for x in np.ravel(raw)) + "]" + unit


def implied_n(values) -> int | None:
    """Return the population size that per-neuron values with an explicit count ask for (``linspace(0, 20, 21)``)."""
    for value in values:
        try:
            spec = parse(value) if isinstance(value, str) else value
        except ModelError:
            continue
        stack = [spec]
        while stack:
            s = stack.pop()
            if not isinstance(s, _Spec):
                continue
            if s.name == "linspace":
                size = s.arg("n")
                if size is not None and str(size).strip().isdigit():
                    return int(str(size).strip())
            stack.extend(getattr(s, "parts", ()))
            stack.extend(v for _, v in s.args)
    return None

"""Values that carry their own units (pint, quantities, astropy, unyt, brian2): converted exactly or refused.

A number given from Python means the unit the model declares for what it sets (an input
declared in pA takes 300 for 300 pA). An object from a units library says its own unit, so
reading it as a bare number would be wrong whenever that unit is another one (``0.3 nA``
read as 0.3 pA) or another dimension (``300 mV`` for a current). Such values are recognised
by the class they come from, without importing any units library; each library converts the
value to the SI unit of the target's dimension itself (so offsets such as degC are its own
business), and that SI value is scaled to modelgen's internal unit by an exact power of ten.
A wrong dimension, a unit the library cannot decompose into SI, or an object that looks as
if it carries units (``.units``, ``.unit``, ``.dimensionality``, ``.dimensions``) but comes
from no library known here is refused with an error naming the value, the unit expected and
the unit a plain number is read in -- never stripped to its number.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import sympy

from .diagnostics import Diagnostic, ModelError
from .units import _BASE_SYMBOL, BASE, Dimension, describe, suggested_unit

__all__ = ["LIBRARIES", "carries_units", "library_of", "to_internal", "refuse_units"]

LIBRARIES = ("pint", "quantities", "astropy", "unyt", "brian2")
_MARKS = ("units", "unit", "dimensionality", "dimensions")  # what a unit-carrying object usually has


class _Unsupported(Exception):
    """The library's value has a unit modelgen cannot take (the message says why)."""


def library_of(value) -> str | None:
    """Return the units library ``value``'s class comes from ("pint", "quantities", ...), or None."""
    for cls in type(value).__mro__:
        root = (getattr(cls, "__module__", None) or "").partition(".")[0]
        if root in LIBRARIES:
            return root
    return None


def carries_units(value) -> bool:
    """Return whether ``value`` carries units of its own (and so must not be read as a plain number)."""
    if type(value) in (float, int, bool) or isinstance(value, (str, np.generic)):
        return False
    if type(value) is np.ndarray and value.dtype != object:
        return False
    if library_of(value) is not None:
        return True
    if isinstance(value, (list, tuple)):
        return any(carries_units(v) for v in value)
    if isinstance(value, np.ndarray) and value.dtype == object:
        return any(carries_units(v) for v in value.ravel())
    return any(hasattr(value, mark) for mark in _MARKS)


def to_internal(value, dim: Dimension, what: str, plain_unit: str = ""):
    """Return ``value`` (which carries units) in internal units of ``dim``: a float or an ndarray.

    ``what`` names the value in errors; ``plain_unit`` is the unit a plain number means there.
    Raises ModelError if the dimension is not ``dim`` or the object is not one modelgen knows.
    """
    plain_unit = plain_unit if plain_unit not in ("", "1") else suggested_unit(dim)
    lib = library_of(value)
    if lib is None and isinstance(value, (list, tuple, np.ndarray)):
        items = list(value) if isinstance(value, (list, tuple)) else list(value.ravel())
        if not all(carries_units(v) for v in items):
            raise _error(
                f"{what}: some of the values carry units and some do not",
                f"give every value with a unit, or plain numbers (in {plain_unit})",
            )
        converted = np.array([to_internal(v, dim, what, plain_unit) for v in items], dtype=float)
        return converted.reshape(value.shape) if isinstance(value, np.ndarray) else converted
    if lib is None:
        raise _error(
            f"{what}: `{_shown(value)}` ({type(value).__name__}) seems to carry units, but modelgen does not know "
            "its kind, so it is not read as a plain number",
            f"give a value from {', '.join(LIBRARIES)}, text with a unit (e.g. `{_example(plain_unit)}`), "
            f"or a plain number in {plain_unit}",
        )
    try:
        given, factor = _unit_facts(value, lib, dim)
        if given == dim:
            internal = _convert(value, lib, dim, factor)
    except _Unsupported as e:
        raise _error(
            f"{what}: `{_shown(value)}` ({lib}) {e}", f"give it in another unit, or a plain number in {plain_unit}"
        ) from None
    except Exception as e:  # the library itself could not convert it: say so rather than guess
        raise _error(
            f"{what}: {lib} cannot convert `{_shown(value)}` to {describe(dim)} ({type(e).__name__}: {e})",
            f"give a plain number in {plain_unit}",
        ) from None
    if given != dim:
        raise _error(
            f"{what} must be {describe(dim)} (a plain number means {plain_unit}), "
            f"but `{_shown(value)}` ({lib}) is {describe(given)}",
            f"give a value of {describe(dim)} (e.g. in {plain_unit}), or a plain number, which means {plain_unit}",
        )
    return internal


def refuse_units(value, what: str, expected: str) -> None:
    """Raise ModelError if ``value`` carries units where only ``expected`` (e.g. "a whole number") is taken."""
    if carries_units(value):
        raise _error(f"{what} must be {expected}, not a value with units (`{_shown(value)}`)")


# ----------------------------------------------------------------------- conversions
_FACTS: dict = {}  # (library, unit, target dimension) -> (the unit's dimension, factor): a function of t's values


def _unit_facts(value, lib: str, dim: Dimension) -> tuple[Dimension, Fraction | None]:
    """Return (dimension of ``value``'s unit, exact factor to internal units of ``dim`` or None).

    The factor is the unit's SI value (as the library gives it, read as the decimal it stands
    for: ``1e-06`` is 1/10**6) over the internal unit's, so ``10 us`` gives 0.01 ms as the text
    ``"10 us"`` does; None where the library converts itself (a unit with an offset, such as
    degC, and brian2's values, which are SI already). Remembered per unit: a function of t
    that returns values with units is converted at every step.
    """
    try:
        key = (lib, _UNIT_KEY[lib](value), dim)
        hash(key)
    except Exception:  # an unhashable unit: worked out every time
        key = None
    if key is not None and key in _FACTS:
        return _FACTS[key]
    given = _DIMENSION[lib](value, dim)
    factor = None
    _, make = _SPLIT[lib](value)
    if given == dim and make is not None:
        to_si = _TO_SI[lib]
        if float(np.max(np.abs(to_si(make(0.0), dim)))) == 0.0:  # no offset (6.3 degC is 279.45 K)
            factor = _decimal(float(np.ravel(to_si(make(1.0), dim))[0])) / _fraction(dim.internal_scale())
    if key is not None:
        if len(_FACTS) > 1000:
            _FACTS.clear()
        _FACTS[key] = (given, factor)
    return given, factor


def _convert(value, lib: str, dim: Dimension, factor: Fraction | None):
    """Return ``value`` (of dimension ``dim``) in internal units: a float or an ndarray."""
    magnitude, make = _SPLIT[lib](value)
    if factor is not None:
        return _times(magnitude, factor)
    si = magnitude if make is None else _TO_SI[lib](value, dim)  # brian2's numbers are SI already
    return _times(si, 1 / _fraction(dim.internal_scale()))


def _fraction(x) -> Fraction:
    """Return the sympy number ``x`` as a Fraction (a float's exact value if it is irrational)."""
    return Fraction(int(x.p), int(x.q)) if getattr(x, "is_Rational", False) else Fraction(float(x))


def _decimal(x: float) -> Fraction:
    """Return the short decimal that the float ``x`` rounds (1e-09 -> 1/10**9), else its exact value."""
    short = Fraction(f"{x:.12g}")
    return short if abs(float(short) - x) <= 4 * math.ulp(x) else Fraction(x)


def _times(values, factor: Fraction):
    """Return ``values * factor`` rounded once: multiplying or dividing by a whole number where it is one."""
    arr = np.asarray(values, dtype=float)
    if factor.denominator == 1:
        out = arr * float(factor.numerator)
    elif factor.numerator == 1:
        out = arr / float(factor.denominator)
    else:
        out = arr * float(factor)
    return float(out) if out.ndim == 0 else out


def _si_text(dim: Dimension, one: str = "dimensionless") -> str:
    """Return the SI unit of ``dim`` spelled so every library parses it (``kg*m**2*s**-3*A**-1``)."""
    parts = []
    for sym, e in zip(_BASE_SYMBOL, dim.exps):
        if e:
            parts.append(sym if e == 1 else f"{sym}**{e.numerator if e.denominator == 1 else float(e)}")
    return "*".join(parts) or one


def _dimension(exponents: dict[str, float]) -> Dimension:
    """Return the Dimension of base name -> exponent (names as in units.BASE)."""
    return Dimension(tuple(Fraction(exponents.get(b, 0)).limit_denominator(1000) for b in BASE))


def _known(named: dict[str, float], names: dict[str, str], unit: str) -> Dimension:
    """Return the Dimension of a library's base -> exponent map, refusing bases modelgen has not got."""
    out = {}
    for base, e in named.items():
        if not e:
            continue
        if base not in names:
            raise _Unsupported(f"is in {unit}, which modelgen cannot convert (its base `{base}` has no modelgen unit)")
        out[names[base]] = float(e)
    return _dimension(out)


# pint: dimensionality {'[current]': 1, '[length]': -2}; the library converts (offsets included)
_PINT_BASES = {
    "[length]": "length",
    "[mass]": "mass",
    "[time]": "time",
    "[current]": "current",
    "[temperature]": "temperature",
    "[substance]": "amount",
}


def _pint_dimension(value, dim: Dimension) -> Dimension:
    return _known(dict(value.dimensionality), _PINT_BASES, f"{value.units:~}" if hasattr(value, "units") else "it")


def _pint_split(value):
    if not hasattr(value, "magnitude"):  # a unit alone means one of it
        value = value._REGISTRY.Quantity(1.0, value)
    return value.magnitude, lambda x: value._REGISTRY.Quantity(x, value.units)


def _pint_si(value, dim: Dimension):
    return value.to(_si_text(dim)).magnitude


# quantities: SI base units after .simplified; it treats degC/degF as differences, so a bare one is refused
_QUANTITIES_BASES = {"m": "length", "kg": "mass", "s": "time", "A": "current", "K": "temperature", "mol": "amount"}


def _quantities_dimension(value, dim: Dimension) -> Dimension:
    units = {getattr(u, "symbol", str(u)): e for u, e in value.dimensionality.items()}
    if list(units.values()) == [1] and set(units) & {"degC", "degF"}:
        raise _Unsupported(
            "is a temperature in degrees Celsius or Fahrenheit, which quantities converts without the offset "
            "(6.3 degC would be 6.3 K)"
        )
    simplified = {getattr(u, "symbol", str(u)): e for u, e in value.simplified.dimensionality.items()}
    return _known(simplified, _QUANTITIES_BASES, value.dimensionality.string)


def _quantities_split(value):
    return value.magnitude, lambda x: x * value.units


def _quantities_si(value, dim: Dimension):
    return np.asarray(value.rescale(_si_text(dim)).magnitude)


# astropy: the unit decomposed into irreducible bases (m, kg, s, A, K, mol, cd, rad, ...)
_ASTROPY_BASES = _QUANTITIES_BASES


def _astropy_unit(value):
    return value.unit if hasattr(value, "unit") else value


def _astropy_dimension(value, dim: Dimension) -> Dimension:
    unit = _astropy_unit(value)
    decomposed = unit.decompose()
    names = {b.to_string(): p for b, p in zip(decomposed.bases, decomposed.powers)}
    return _known(names, _ASTROPY_BASES, unit.to_string())


def _astropy_split(value):
    unit = _astropy_unit(value)
    return (value.value if hasattr(value, "unit") else 1.0), lambda x: x * unit


def _astropy_si(value, dim: Dimension):
    return value.to_value(_si_text(dim, ""))


# unyt: dimensions are a sympy expression of (length), (mass), (time), (current_mks), ...; unyt's
# mol is a number (Avogadro's), so an amount of substance has no dimension of its own there
_UNYT_BASES = {
    "(length)": "length",
    "(mass)": "mass",
    "(time)": "time",
    "(current_mks)": "current",
    "(temperature)": "temperature",
}


def _unyt_dimension(value, dim: Dimension) -> Dimension:
    units = getattr(value, "units", value)
    powers = {str(b): float(e) for b, e in sympy.sympify(units.dimensions).as_powers_dict().items() if str(b) != "1"}
    given = _known(powers, _UNYT_BASES, str(units))
    amount = BASE.index("amount")
    if dim.exps[amount] and given.exps[amount] == 0:  # unyt's mM is (length)**-3: compare without amount
        without = Dimension(tuple(Fraction(0) if i == amount else e for i, e in enumerate(dim.exps)))
        return dim if given == without else given
    return given


def _unyt_split(value):
    units = getattr(value, "units", value)
    return (value.to_value() if hasattr(value, "to_value") else 1.0), lambda x: x * units


def _unyt_si(value, dim: Dimension):
    return value.to_value(_si_text(dim))


# brian2: values are stored in SI; .dim holds the exponents of m, kg, s, A, K, mol, cd
_BRIAN2_BASES = ("length", "mass", "time", "current", "temperature", "amount", "luminosity")


def _brian2_dimension(value, dim: Dimension) -> Dimension:
    exps = [float(e) for e in np.ravel(getattr(value.dim, "_dims", ()))]
    if len(exps) != len(_BRIAN2_BASES):
        raise _Unsupported("has dimensions modelgen cannot read")
    return _known(dict(zip(_BRIAN2_BASES, exps)), {b: b for b in BASE}, str(value.dim))


def _brian2_split(value):
    return np.asarray(value).view(np.ndarray).astype(float), None  # brian2 stores SI values


_DIMENSION = {
    "pint": _pint_dimension,
    "quantities": _quantities_dimension,
    "astropy": _astropy_dimension,
    "unyt": _unyt_dimension,
    "brian2": _brian2_dimension,
}
_SPLIT = {  # value -> (its numbers in its own unit, x -> x of that unit), or (SI numbers, None)
    "pint": _pint_split,
    "quantities": _quantities_split,
    "astropy": _astropy_split,
    "unyt": _unyt_split,
    "brian2": _brian2_split,
}
# value -> its unit, as something hashable (pint's units of two registries cannot even be compared)
_UNIT_KEY = {
    "pint": lambda v: (id(v._REGISTRY), str(v.units if hasattr(v, "magnitude") else v)),
    "quantities": lambda v: v.dimensionality.string,
    "astropy": _astropy_unit,
    "unyt": lambda v: str(getattr(v, "units", v)),
    "brian2": lambda v: v.dim,
}
_TO_SI = {"pint": _pint_si, "quantities": _quantities_si, "astropy": _astropy_si, "unyt": _unyt_si}


# ----------------------------------------------------------------------- messages
def _shown(value, limit: int = 80) -> str:
    """Return ``value`` as its library prints it, on one line and at most about ``limit`` characters."""
    try:
        text = " ".join(str(value).split())
    except Exception:  # a broken __str__ must not hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 25] + " … " + text[-20:]


def _example(unit: str) -> str:
    return f"1 {unit}" if unit not in ("", "1") else "1"


def _error(message: str, hint: str = "") -> ModelError:
    return ModelError([Diagnostic("E501", None, message, hint)])

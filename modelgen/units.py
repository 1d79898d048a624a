"""Units and dimensions: a small registry of the units electrophysiologists write.

A dimension is a vector of rational exponents over the SI base dimensions. Every unit
has a dimension and a scale to modelgen's *internal* unit system, which is coherent and
chosen so that the usual per-area numbers are unchanged:

====================  ==========  ====================  ==========
quantity              internal    quantity              internal
====================  ==========  ====================  ==========
time                  ms          voltage               mV
current               uA          conductance           mS
capacitance           uF          length                cm
concentration         mM          temperature           K
====================  ==========  ====================  ==========

(so uF/cm^2 * mV/ms = uA/cm^2 and mS/cm^2 * mV = uA/cm^2 hold with factor 1).
Conversions happen once, when a model is built; generated code holds plain floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import sympy

__all__ = ["Dimension", "Unit", "UNITS", "DIMENSIONLESS", "lookup_unit", "describe"]

BASE = ("length", "mass", "time", "current", "temperature", "amount")
_BASE_SYMBOL = ("m", "kg", "s", "A", "K", "mol")
# SI value of one internal base unit: cm, 1e-14 kg, ms, uA, K, umol (see module doc).
_INTERNAL_BASE_SI = (
    sympy.Rational(1, 100),
    sympy.Rational(1, 10**14),
    sympy.Rational(1, 1000),
    sympy.Rational(1, 10**6),
    sympy.Integer(1),
    sympy.Rational(1, 10**6),
)


@dataclass(frozen=True)
class Dimension:
    """Exponents of the SI base dimensions (length, mass, time, current, temperature, amount)."""

    exps: tuple[Fraction, ...] = (Fraction(0),) * 6

    def __mul__(self, other: Dimension) -> Dimension:
        return Dimension(tuple(a + b for a, b in zip(self.exps, other.exps)))

    def __truediv__(self, other: Dimension) -> Dimension:
        return Dimension(tuple(a - b for a, b in zip(self.exps, other.exps)))

    def __pow__(self, p) -> Dimension:
        p = Fraction(p)
        return Dimension(tuple(a * p for a in self.exps))

    @property
    def is_dimensionless(self) -> bool:
        return all(e == 0 for e in self.exps)

    def internal_scale(self) -> sympy.Rational:
        """Return the SI value of one internal unit of this dimension."""
        scale = sympy.Integer(1)
        for base, e in zip(_INTERNAL_BASE_SI, self.exps):
            if e:
                scale *= base ** sympy.Rational(e.numerator, e.denominator)
        return scale

    def si_string(self) -> str:
        parts = []
        for sym, e in zip(_BASE_SYMBOL, self.exps):
            if e == 1:
                parts.append(sym)
            elif e:
                parts.append(f"{sym}^{e}")
        return "*".join(parts) or "1"

    def __str__(self) -> str:
        return describe(self)


def _dim(length=0, mass=0, time=0, current=0, temperature=0, amount=0) -> Dimension:
    return Dimension(tuple(Fraction(x) for x in (length, mass, time, current, temperature, amount)))


DIMENSIONLESS = _dim()
LENGTH = _dim(length=1)
AREA = _dim(length=2)
TIME = _dim(time=1)
CURRENT = _dim(current=1)
VOLTAGE = _dim(length=2, mass=1, time=-3, current=-1)
CHARGE = CURRENT * TIME
CAPACITANCE = CHARGE / VOLTAGE
CONDUCTANCE = CURRENT / VOLTAGE
RESISTANCE = VOLTAGE / CURRENT
FREQUENCY = DIMENSIONLESS / TIME
CONCENTRATION = _dim(amount=1, length=-3)
TEMPERATURE = _dim(temperature=1)
MASS = _dim(mass=1)
AMOUNT = _dim(amount=1)
ENERGY = _dim(length=2, mass=1, time=-2)
POWER = ENERGY / TIME


@dataclass(frozen=True)
class Unit:
    """A named unit: its dimension and its value in SI base units (exact)."""

    name: str
    dimension: Dimension
    si: sympy.Rational

    @property
    def to_internal(self) -> sympy.Rational:
        """Return the factor that turns a number in this unit into internal units."""
        return sympy.nsimplify(self.si / self.dimension.internal_scale())


_PREFIXES = {
    "G": sympy.Integer(10) ** 9,
    "M": sympy.Integer(10) ** 6,
    "k": sympy.Integer(10) ** 3,
    "": sympy.Integer(1),
    "c": sympy.Rational(1, 10**2),
    "m": sympy.Rational(1, 10**3),
    "u": sympy.Rational(1, 10**6),
    "µ": sympy.Rational(1, 10**6),
    "μ": sympy.Rational(1, 10**6),
    "n": sympy.Rational(1, 10**9),
    "p": sympy.Rational(1, 10**12),
    "f": sympy.Rational(1, 10**15),
}

# base unit -> (dimension, SI value, prefixes allowed)
_BASE_UNITS: dict[str, tuple[Dimension, sympy.Rational, str]] = {
    "V": (VOLTAGE, sympy.Integer(1), "GMkmuµμnpf"),
    "A": (CURRENT, sympy.Integer(1), "kmuµμnpf"),
    "S": (CONDUCTANCE, sympy.Integer(1), "kmuµμnpf"),
    "siemens": (CONDUCTANCE, sympy.Integer(1), ""),
    "F": (CAPACITANCE, sympy.Integer(1), "muµμnpf"),
    "Ohm": (RESISTANCE, sympy.Integer(1), "GMkm"),
    "ohm": (RESISTANCE, sympy.Integer(1), "GMkm"),
    "s": (TIME, sympy.Integer(1), "muµμnp"),
    "second": (TIME, sympy.Integer(1), ""),
    "Hz": (FREQUENCY, sympy.Integer(1), "kM"),
    "m": (LENGTH, sympy.Integer(1), "kcmuµμnp"),
    "metre": (LENGTH, sympy.Integer(1), ""),
    "meter": (LENGTH, sympy.Integer(1), ""),
    "M": (CONCENTRATION, sympy.Integer(1000), "muµμnp"),  # molar = mol/L
    "molar": (CONCENTRATION, sympy.Integer(1000), ""),
    "mol": (AMOUNT, sympy.Integer(1), "muµμnp"),
    "L": (_dim(length=3), sympy.Rational(1, 1000), "mu"),
    "C": (CHARGE, sympy.Integer(1), "muµμnp"),
    "J": (ENERGY, sympy.Integer(1), "km"),
    "W": (POWER, sympy.Integer(1), "kmuµμnp"),
    "g": (MASS, sympy.Rational(1, 1000), "kmuµμn"),
    "K": (TEMPERATURE, sympy.Integer(1), "m"),
    "kelvin": (TEMPERATURE, sympy.Integer(1), ""),
    "min": (TIME, sympy.Integer(60), ""),
}


def _build_registry() -> dict[str, Unit]:
    reg: dict[str, Unit] = {}
    for base, (dim, si, prefixes) in _BASE_UNITS.items():
        for p in "" + prefixes:
            reg[p + base] = Unit(p + base, dim, si * _PREFIXES[p])
        reg[base] = Unit(base, dim, si)
    # "min" is a function name in expressions; minutes are spelled "minute".
    del reg["min"]
    reg["minute"] = Unit("minute", TIME, sympy.Integer(60))
    # Celsius: only as a literal `6.3 degC` (converted to K with its offset when lowered)
    reg["degC"] = Unit("degC", TEMPERATURE, sympy.Integer(1))
    reg["Mohm"] = reg["MOhm"]
    reg["kohm"] = reg["kOhm"]
    reg["Gohm"] = reg["GOhm"]
    return reg


UNITS: dict[str, Unit] = _build_registry()


def lookup_unit(name: str) -> Unit | None:
    """Return the unit called ``name`` or None."""
    return UNITS.get(name)


# Names for the dimensions a modeller meets, with the unit we suggest for each.
_NAMED: list[tuple[Dimension, str, str]] = [
    (DIMENSIONLESS, "dimensionless", "1"),
    (VOLTAGE, "voltage", "mV"),
    (VOLTAGE / TIME, "voltage/time", "mV/ms"),
    (CURRENT, "current", "pA"),
    (CURRENT / AREA, "current/area", "uA/cm^2"),
    (CONDUCTANCE, "conductance", "nS"),
    (CONDUCTANCE / AREA, "conductance/area", "mS/cm^2"),
    (CAPACITANCE, "capacitance", "pF"),
    (CAPACITANCE / AREA, "capacitance/area", "uF/cm^2"),
    (RESISTANCE, "resistance", "MOhm"),
    (RESISTANCE * AREA, "resistance*area", "kOhm*cm^2"),
    (CHARGE, "charge", "pC"),
    (CHARGE / AREA, "charge/area", "nC/cm^2"),
    (CHARGE / TIME / AREA, "charge/(area*time)", "uA/cm^2"),
    (TIME, "time", "ms"),
    (FREQUENCY, "1/time", "1/ms"),
    (LENGTH, "length", "um"),
    (AREA, "area", "um^2"),
    (CONCENTRATION, "concentration", "mM"),
    (CONCENTRATION / TIME, "concentration/time", "mM/ms"),
    (TEMPERATURE, "temperature", "K"),
    (CONDUCTANCE / TIME, "conductance/time", "nS/ms"),
    (CONDUCTANCE / AREA / TIME, "conductance/(area*time)", "mS/cm^2/ms"),
    (CURRENT / TIME, "current/time", "pA/ms"),
    (CURRENT / AREA / TIME, "current/(area*time)", "uA/cm^2/ms"),
    (DIMENSIONLESS / VOLTAGE, "1/voltage", "1/mV"),
    (FREQUENCY / VOLTAGE, "1/(voltage*time)", "1/(mV*ms)"),
]


def describe(dim: Dimension) -> str:
    """Return a readable name of a dimension, e.g. ``current/area``."""
    for d, name, _ in _NAMED:
        if d == dim:
            return name
    return dim.si_string()


def suggested_unit(dim: Dimension) -> str:
    """Return a unit spelling we would suggest for this dimension (internal unit if unnamed)."""
    for d, _, unit in _NAMED:
        if d == dim:
            return unit
    return internal_unit_name(dim)


def internal_unit_name(dim: Dimension) -> str:
    """Return a spelling of the internal unit of ``dim`` (e.g. ``mV``, ``uA/cm^2``)."""
    for d, unit in (
        (VOLTAGE, "mV"),
        (TIME, "ms"),
        (CURRENT, "uA"),
        (CONDUCTANCE, "mS"),
        (CAPACITANCE, "uF"),
        (CURRENT / AREA, "uA/cm^2"),
        (CONDUCTANCE / AREA, "mS/cm^2"),
        (CAPACITANCE / AREA, "uF/cm^2"),
        (FREQUENCY, "1/ms"),
        (CONCENTRATION, "mM"),
        (RESISTANCE, "kOhm"),  # mV/uA
        (CHARGE, "nC"),  # uA*ms
        (CHARGE / AREA, "nC/cm^2"),
        (VOLTAGE / TIME, "mV/ms"),
        (LENGTH, "cm"),
        (AREA, "cm^2"),
        (TEMPERATURE, "K"),
        (DIMENSIONLESS, "1"),
    ):
        if d == dim:
            return unit
    names = ("cm", "(1e-14 kg)", "ms", "uA", "K", "umol")
    parts = []
    for n, e in zip(names, dim.exps):
        if e == 1:
            parts.append(n)
        elif e:
            parts.append(f"{n}^{e}")
    return "*".join(parts) or "1"


def units_of_dimension(dim: Dimension) -> list[str]:
    """Return the registered unit names with this dimension (for hints)."""
    return sorted(name for name, u in UNITS.items() if u.dimension == dim)


def unit_text_scale(text: str) -> tuple[Dimension, sympy.Expr]:
    """Return (dimension, internal value) of a unit spelled like ``uA/cm^2`` or ``1/(mV*ms)``."""
    import re

    dim, scale = DIMENSIONLESS, sympy.Integer(1)
    divide = in_group = False  # after "/", the next factor (or parenthesised group) divides
    for tok in re.findall(r"[A-Za-zµμ]+(?:\^-?\d+)?|[/*()]", text):
        if tok == "/":
            divide = True
        elif tok == "(":
            in_group = True
        elif tok == ")":
            in_group = divide = False
        elif tok != "*":
            name, _, exp = tok.partition("^")
            e = (-1 if divide else 1) * int(exp or 1)
            u = UNITS[name]
            dim = dim * u.dimension**e
            scale *= u.to_internal**e
            divide = divide and in_group
    return dim, scale

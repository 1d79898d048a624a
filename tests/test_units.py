"""The unit registry: internal units, exact conversion factors, dimension arithmetic, names."""

from __future__ import annotations

from fractions import Fraction

import pytest
import sympy

from modelgen import units as U
from modelgen.diagnostics import ModelError
from modelgen.model import parse_quantity


def internal(unit: str) -> sympy.Rational:
    """The value of one ``unit`` in modelgen's internal units."""
    return U.lookup_unit(unit).to_internal


# ----------------------------------------------------------------------- internal units
@pytest.mark.parametrize("unit", ["ms", "mV", "uA", "mS", "uF", "cm", "mM", "K"])
def test_internal_units_have_factor_one(unit):
    assert internal(unit) == 1


@pytest.mark.parametrize(
    "unit, value",
    [
        ("pA", sympy.Rational(1, 10**6)),
        ("nA", sympy.Rational(1, 1000)),
        ("A", 10**6),
        ("MOhm", 1000),  # internal resistance is mV/uA = kOhm
        ("kOhm", 1),
        ("Ohm", sympy.Rational(1, 1000)),
        ("GOhm", 10**6),
        ("s", 1000),
        ("us", sympy.Rational(1, 1000)),
        ("V", 1000),
        ("uV", sympy.Rational(1, 1000)),
        ("nS", sympy.Rational(1, 10**6)),
        ("uS", sympy.Rational(1, 1000)),
        ("S", 1000),
        ("pF", sympy.Rational(1, 10**6)),
        ("nF", sympy.Rational(1, 1000)),
        ("um", sympy.Rational(1, 10**4)),
        ("mm", sympy.Rational(1, 10)),
        ("m", 100),
        ("M", 1000),
        ("uM", sympy.Rational(1, 1000)),
        ("Hz", sympy.Rational(1, 1000)),  # internal frequency is 1/ms
        ("minute", 60_000),
    ],
)
def test_conversion_factors_are_exact(unit, value):
    assert internal(unit) == value
    assert isinstance(internal(unit), sympy.Rational)


def test_micro_has_three_spellings():
    assert U.lookup_unit("µF").dimension == U.lookup_unit("μF").dimension == U.CAPACITANCE
    assert internal("uF") == internal("µF") == internal("μF")  # U+0075, U+00B5, U+03BC


def test_aliases_and_names_that_are_not_units():
    assert internal("Mohm") == internal("MOhm") and internal("kohm") == internal("kOhm")
    assert U.lookup_unit("min") is None  # min() is a function; minutes are `minute`
    for name in ("mv", "msec", "volts", "", "uF/cm^2"):
        assert U.lookup_unit(name) is None


@pytest.mark.parametrize(
    "text, value, dim",
    [
        ("1 uF/cm^2 * 1 mV / 1 ms", 1, U.CURRENT / U.AREA),  # C dV/dt
        ("1 mS/cm^2 * 1 mV", 1, U.CURRENT / U.AREA),  # g (V - E)
        ("1 nS * 1 mV", 1e-6, U.CURRENT),  # pA-sized
        ("200 pF / (10 nS)", 20, U.TIME),  # tau = C/g in ms
        ("1 pA", 1e-6, U.CURRENT),
        ("1 MOhm * 1 nA", 1, U.VOLTAGE),  # Ohm's law in mV
        ("10 uA/cm^2", 10, U.CURRENT / U.AREA),
        ("1 um^2", 1e-8, U.AREA),
        ("-65 mV", -65, U.VOLTAGE),
        ("2 s^-1", 2e-3, U.FREQUENCY),
    ],
)
def test_quantities_in_internal_units(text, value, dim):
    got, got_dim = parse_quantity(text)
    assert got == pytest.approx(value, rel=1e-12)
    assert got_dim == dim


def test_a_bare_unit_is_a_quantity():
    assert parse_quantity("V") == (1000, U.VOLTAGE)


def test_quantity_errors():
    cases = [("10 mv", "E106"), ("1 mV + 1 ms", "E301"), ("x", "E101"), ("t", "E205"), ("1 mV / 0", "E304")]
    for text, code in cases:
        with pytest.raises(ModelError) as info:
            parse_quantity(text)
        assert info.value.diagnostics[0].code == code, text


# ----------------------------------------------------------------------- dimensions
def test_dimension_arithmetic():
    assert U.CAPACITANCE / U.AREA * U.VOLTAGE / U.TIME == U.CURRENT / U.AREA
    assert U.CONDUCTANCE * U.VOLTAGE == U.CURRENT
    assert U.RESISTANCE == U.VOLTAGE / U.CURRENT == U.DIMENSIONLESS / U.CONDUCTANCE
    assert U.CHARGE == U.CAPACITANCE * U.VOLTAGE
    assert U.AREA ** Fraction(1, 2) == U.LENGTH
    assert U.LENGTH**2 == U.AREA and U.LENGTH**0 == U.DIMENSIONLESS
    assert (U.VOLTAGE / U.VOLTAGE).is_dimensionless
    assert not U.VOLTAGE.is_dimensionless
    assert U.FREQUENCY * U.TIME == U.DIMENSIONLESS


def test_dimensions_are_values():
    a = U.VOLTAGE / U.TIME
    b = U.VOLTAGE * U.TIME**-1
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1


def test_exponents_are_exact_fractions():
    root = U.TIME ** Fraction(1, 3)
    assert root.exps[U.BASE.index("time")] == Fraction(1, 3)
    assert root**3 == U.TIME


def test_si_strings():
    assert U.DIMENSIONLESS.si_string() == "1"
    assert U.VOLTAGE.si_string() == "m^2*kg*s^-3*A^-1"
    assert U.CURRENT.si_string() == "A"


# ----------------------------------------------------------------------- names for people
@pytest.mark.parametrize(
    "dim, name",
    [
        (U.DIMENSIONLESS, "dimensionless"),
        (U.VOLTAGE, "voltage"),
        (U.CURRENT / U.AREA, "current/area"),
        (U.CONDUCTANCE / U.AREA, "conductance/area"),
        (U.CAPACITANCE, "capacitance"),
        (U.TIME, "time"),
        (U.FREQUENCY, "1/time"),
        (U.RESISTANCE, "resistance"),
        (U.CONCENTRATION, "concentration"),
    ],
)
def test_describe(dim, name):
    assert U.describe(dim) == name
    assert str(dim) == name


def test_describe_falls_back_to_si():
    assert U.describe(U.LENGTH**3) == "m^3"
    assert U.describe(U.VOLTAGE**2) == "m^4*kg^2*s^-6*A^-2"


def test_suggested_units_have_their_dimension():
    for dim, _, unit in U._NAMED:
        if unit == "1":
            continue
        got, _ = U.unit_text_scale(unit)
        assert got == dim, unit


@pytest.mark.parametrize(
    "dim",
    [U.VOLTAGE, U.TIME, U.CURRENT, U.CURRENT / U.AREA, U.RESISTANCE, U.CHARGE, U.CHARGE / U.AREA, U.LENGTH, U.AREA],
)
def test_internal_unit_names_have_factor_one(dim):
    name = U.internal_unit_name(dim)
    got, scale = U.unit_text_scale(name)
    assert got == dim and scale == 1, name


def test_units_of_dimension():
    volts = U.units_of_dimension(U.VOLTAGE)
    assert {"V", "mV", "uV", "kV"} <= set(volts)
    assert "ms" not in volts

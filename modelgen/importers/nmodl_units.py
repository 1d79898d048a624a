"""NMODL's units and numbers in the model language: unit spellings (``(mA/cm2)`` -> ``mA/cm^2``),
the UNITS block's constants, NEURON's ion defaults, and quantity literals."""

from __future__ import annotations

import re

import sympy

from ..units import DIMENSIONLESS, Dimension, lookup_unit, unit_text_scale

__all__ = [
    "wrap",
    "NEURON_ION_DEFAULTS",
    "UNIT_ALIASES",
    "UNITS_CONSTANTS",
    "ION_UNITS",
    "VALENCES",
    "with_unit",
    "quantity",
    "unit_dim",
    "number_text",
    "translate_unit",
    "resolve_unit_name",
    "safe_scale",
]

# NEURON's defaults for ion variables a mechanism reads (nrn/src/nrnoc/ion.cpp, celsius = 6.3):
# reversal potentials (mV) and concentrations (mM); an unknown ion starts at 0 and 1 mM.
NEURON_ION_DEFAULTS = {
    "na": {"e": 50.0, "i": 10.0, "o": 140.0},
    "k": {"e": -77.0, "i": 54.4, "o": 2.5},
    "ca": {"e": 132.4579341637009, "i": 5e-5, "o": 2.0},
}


ION_UNITS = {"e": "mV", "i": "mM", "o": "mM", "current": "mA/cm^2"}


# NMODL unit names -> the language's (nrnunits.lib spellings that real files use)
UNIT_ALIASES = {
    "mho": "S",
    "umho": "uS",
    "mmho": "mS",
    "siemens": "S",
    "micron": "um",
    "microns": "um",
    "millivolt": "mV",
    "volt": "V",
    "milliamp": "mA",
    "microamp": "uA",
    "nanoamp": "nA",
    "amp": "A",
    "coulomb": "C",
    "coulombs": "C",
    "faraday": "C/mol",
    "joule": "J",
    "molar": "M",
    "millimolar": "mM",
    "micromolar": "uM",
    "ms": "ms",
    "msec": "ms",
    "sec": "s",
    "second": "s",
    "millisecond": "ms",
    "microfarad": "uF",
    "nanofarad": "nF",
    "picofarad": "pF",
    "centimeter": "cm",
    "micrometer": "um",
    "kelvin": "K",
    "degC": "degC",
    "deg": "degC",
    "1": "1",
}


VALENCES = {"na": 1, "k": 1, "ca": 2, "cl": -1}


# constants of the UNITS block (`FARADAY = (faraday) (coulomb)`): NEURON 9's values (nrnunits.lib, CODATA 2018)
UNITS_CONSTANTS = {
    "faraday": 96485.33212331001,
    "k-mole": 8.314462618153241,
    "R": 8.314462618153241,
    "e": 1.602176634e-19,
    "k": 1.380649e-23,
    "avogadro": 6.02214076e23,
}


def with_unit(text: str, unit: str | None) -> str:
    """Return the language text of NEURON's number ``text`` taken in ``unit``."""
    if unit in (None, "1"):
        return text
    if unit == "degC":
        return f"({wrap(text)} + 273.15) * K"
    if unit.startswith("1/"):
        return f"{wrap(text)} / {unit[2:] if re.fullmatch(r'[A-Za-z]+', unit[2:]) else '(' + unit[2:] + ')'}"
    return f"{wrap(text)} * {unit if re.fullmatch(r'[A-Za-z]+', unit) else '(' + unit + ')'}"


def quantity(value: float, unit: str | None) -> str:
    """Return a constant's literal: ``0.12 S/cm^2``, ``0.03 / ms``, ``23 degC``."""
    if unit in (None, "1"):
        return number_text(value)
    if unit.startswith("1/"):
        return f"{number_text(value)} / {unit[2:]}"
    return f"{number_text(value)} {unit}"


def unit_dim(unit: str | None) -> tuple[Dimension, sympy.Expr] | None:
    if unit is None:
        return None
    if unit in ("1", "degC"):
        return (DIMENSIONLESS if unit == "1" else lookup_unit("K").dimension), sympy.Integer(1)
    return unit_text_scale(unit)


def number_text(x: float) -> str:
    return str(int(x)) if x == int(x) and abs(x) < 1e15 else repr(x)


# ---------------------------------------------------------------- the importer


def translate_unit(text: str, aliases: dict[str, str], depth: int = 0) -> str | None:
    """Return the language's spelling of an NMODL unit, or None."""
    text = text.strip()
    if text in ("", "1"):
        return "1"
    if "/" not in text and " " not in text and resolve_unit_name(text, aliases) is None:
        for table in (aliases, UNIT_ALIASES):  # an alias to a compound unit: (faraday) = (coulomb/mol)
            if text in table and table[text] != text and depth < 5:
                return translate_unit(table[text], aliases, depth + 1)
    num, _, den = text.partition("/")
    parts = []
    for group, sign in ((num, ""), (den, "-")):
        for factor in re.split(r"[\s\-*]+", group.strip()) if group.strip() else []:
            m = re.fullmatch(r"([A-Za-z]+)(\d*)", factor)
            if m is None:
                if factor == "1":
                    continue
                return None
            base = resolve_unit_name(m.group(1), aliases)
            if base is None:
                base_text = translate_unit(aliases.get(m.group(1), ""), aliases, depth + 1) if depth < 5 else None
                if base_text in (None, "1"):
                    return None
                parts.append((f"({base_text})", m.group(2), sign))
                continue
            parts.append((base, m.group(2), sign))
    if not parts:
        return "1"
    numer = [f"{b}^{e}" if e else b for b, e, s in parts if not s]
    denom = [f"{b}^{e}" if e else b for b, e, s in parts if s]
    head = "*".join(numer) if numer else "1"
    if not denom:
        return head
    return f"{head}/{denom[0]}" if len(denom) == 1 else f"{head}/({'*'.join(denom)})"


def resolve_unit_name(name: str, aliases: dict[str, str]) -> str | None:
    """Return the language's unit for an NMODL unit name (following UNITS-block aliases), or None."""
    for _ in range(6):
        if name == "degC" or lookup_unit(name) is not None:
            return name
        if name in aliases and re.fullmatch(r"[A-Za-z]+", aliases[name]):
            name = aliases[name] if aliases[name] != name else UNIT_ALIASES.get(name, "")
        elif name in UNIT_ALIASES and re.fullmatch(r"[A-Za-z]+", UNIT_ALIASES[name]):
            name = UNIT_ALIASES[name]
        else:
            return None
    return None


def safe_scale(unit: str):
    try:
        return unit_text_scale(unit)
    except (KeyError, ValueError):
        return None


_ATOM = re.compile(r"^-?[A-Za-z_][A-Za-z_0-9]*(\(.*\))?$|^[0-9.]+(e[-+]?[0-9]+)?$")


def wrap(text: str) -> str:
    """Return ``text`` in parentheses unless it is a name, a number or a call."""
    if _ATOM.match(text) and text.count("(") == text.count(")") and _balanced_call(text):
        return text
    return f"({text})"


def _balanced_call(text: str) -> bool:
    """Return whether a call's parentheses close only at its end (``f(x)``, not ``f(x) - g(y)``)."""
    if "(" not in text:
        return True
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and ch == ")" and i != len(text) - 1:
            return False
    return True

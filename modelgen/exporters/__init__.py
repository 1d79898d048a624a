"""Exporters: a checked model written in another format, one module per format.

Each module ``modelgen/exporters/<format>.py`` reads the checked :class:`~modelgen.model.Model`
(never a backend) and has ``export(model) -> str``; a format that can hold networks also has
``export_network(network) -> str``. How each format spells the model language's functions is its
column of :mod:`modelgen.functions`, which its printer reads through :mod:`.printing`.
"""

from __future__ import annotations

from importlib import import_module

from ..model import Model

__all__ = ["FORMATS", "export_model", "export_network"]

# format -> (module, what it writes)
FORMATS: dict[str, tuple[str, str]] = {
    "json": ("json", "a versioned JSON description of the checked model (docs/export-json.md)"),
    "brian2": ("brian2", "a runnable Brian2 script"),
    "neuroml": ("neuroml", "a LEMS file with the NeuroML2 cell ComponentType, runnable by pylems/jNeuroML"),
    "nmodl": ("nmodl", "a NEURON .mod file of the model's currents (for current files)"),
}


def _module(fmt: str):
    return import_module(f".{FORMATS[fmt][0]}", __name__)


def export_model(model: Model, fmt: str) -> str:
    """Return ``model`` written in format ``fmt`` (a key of :data:`FORMATS`)."""
    return _module(fmt).export(model)


def export_network(network, fmt: str) -> str:
    """Return ``network`` (a built :class:`~modelgen.network.Network`) in ``fmt``; ValueError if it cannot."""
    module = _module(fmt)
    if not hasattr(module, "export_network"):
        can = [f for f in FORMATS if hasattr(_module(f), "export_network")]
        raise ValueError(f"networks cannot be exported to {fmt}; formats that hold networks: {', '.join(can)}")
    return module.export_network(network)

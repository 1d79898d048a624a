"""The jinja2 environment of the exporters' templates (``modelgen/exporters/templates/``), and the
provenance every exported file states."""

from __future__ import annotations

from pathlib import Path

import jinja2

from .. import __version__

__all__ = ["environment", "provenance"]


def environment(**options) -> jinja2.Environment:
    """Return an environment that loads the exporters' templates: strict, trailing newlines kept,
    block lines trimmed; ``options`` adds jinja2 settings (``autoescape`` for XML)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("modelgen.exporters", "templates"),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        **options,
    )


def provenance(model) -> dict:
    """Return what an exported file says of its source: the model's name and description,
    modelgen's version, the model file's name and its text's sha256."""
    return {
        "name": model.name,
        "description": model.description,
        "version": __version__,
        "file": Path(model.file).name,
        "sha256": model.source_hash,
    }

"""The jinja2 environment of the exporters' templates (``modelgen/exporters/templates/``)."""

from __future__ import annotations

import jinja2

__all__ = ["environment"]


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

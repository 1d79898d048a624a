"""What the network modules share: the file suffix, where a value was written, finding a file the network names."""

from __future__ import annotations

from pathlib import Path

from ..diagnostics import Diagnostic, ModelError, Span

__all__ = ["is_network_file", "node_span", "node_file", "resolve_path"]


def is_network_file(path) -> bool:
    """Return True for a network file (by suffix ``.network``)."""
    return str(path).endswith(".network")


def node_span(node) -> Span | None:
    return getattr(node, "span", None)


def node_file(node) -> str:
    s = node_span(node)
    return s.file if s else "<value>"


def resolve_path(spec_file: str, path: str, span: Span | None) -> Path:
    base = Path(spec_file).resolve().parent
    p = Path(path)
    if p.is_absolute():
        raise ModelError([Diagnostic("E003", span, f"path {path!r} must be relative to the network file")])
    for root in (base, Path.cwd().resolve()):
        candidate = (root / p).resolve()
        if candidate.is_relative_to(root) and candidate.is_file():
            return candidate
    raise ModelError(
        [
            Diagnostic(
                "E101",
                span,
                f"file {path!r} not found next to {Path(spec_file).name}",
                "paths are relative to the network file and may not leave its folder",
            )
        ]
    )

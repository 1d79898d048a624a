"""Composition: ``use "currents/na_hh" as I_Na (g = 120 mS/cm^2)`` -> the current's statements.

A current file (``*.current``) is written in the model language under a ``current Name``
header: parameters, gates (``gate m: alpha = …, beta = …``), states and ODEs, intermediate
expressions, and one or more ``current … inward|outward`` lines (optionally ``reset`` lines
for spike-triggered currents and ``synapse`` lines for synaptic ones). Names it does not
declare (``V``, ``temperature``, …) are taken from the model that uses it.

This stage runs between parsing and model building: every ``use`` statement is replaced by
the statements of its file, with the file's names scoped under the alias (``g`` of
``I_Na`` becomes ``I_Na_g``; the file's single current becomes ``I_Na`` itself) and the
``use`` line's settings applied (a parameter's value replaced, or a free name bound to an
expression of the host). Spans keep pointing into the current file, so an error inside
it is reported there.

Files are looked up relative to the model file, then on the search path
(``MODELGEN_PATH``, ``--path``), then in the bundled library; a path that leaves those
folders is refused.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from pathlib import Path

from . import language as L
from .diagnostics import Diagnostic, ModelError, Span
from .units import lookup_unit

__all__ = ["expand_uses", "library_paths", "resolve_current"]

ALLOWED_IN_CURRENTS = {"parameter", "state", "expression", "ode", "current", "reset", "synapse", "input"}


def library_paths() -> list[Path]:
    """Return the bundled library folders (the repository's models/ when installed from a checkout)."""
    here = Path(__file__).resolve().parent
    return [p for p in (here / "library", here.parent / "models") if p.is_dir()]


def _search_roots(model_file: str, search_path: list[str] | None) -> list[Path]:
    roots = []
    if model_file and not model_file.startswith("<"):
        roots.append(Path(model_file).resolve().parent)
    env = os.environ.get("MODELGEN_PATH", "")
    for entry in [*(search_path or []), *(e for e in env.split(os.pathsep) if e)]:
        roots.append(Path(entry).resolve())
    roots.extend(library_paths())
    if not roots or model_file.startswith("<"):
        roots.append(Path.cwd().resolve())
    return list(dict.fromkeys(roots))


def resolve_current(path: str, model_file: str, span: Span | None, search_path: list[str] | None = None) -> Path:
    """Return the current file ``path`` names; raise ModelError if missing or outside the roots."""
    roots = _search_roots(model_file, search_path)
    names = [path] if path.endswith(".current") else [path + ".current", path]
    if Path(path).is_absolute():
        raise ModelError([Diagnostic("E003", span, f"`use` takes a path relative to the model file or the library, not {path!r}")])
    for root in roots:
        for name in names:
            candidate = (root / name).resolve()
            if candidate.is_relative_to(root) and candidate.is_file():
                return candidate
            if not candidate.is_relative_to(root):
                raise ModelError([Diagnostic("E003", span, f"{path!r} leaves the folders currents are read from", "current files live next to the model, on MODELGEN_PATH, or in the bundled library")])
    shown = ", ".join(str(r) for r in roots)
    raise ModelError([Diagnostic("E101", span, f"no current file {path!r}", f"looked in: {shown}")])


def _rename(node, names: dict[str, str], bindings: dict[str, object]):
    """Return ``node`` with declared names renamed and free names replaced by bound expressions."""
    if isinstance(node, L.Name):
        if node.id in bindings:
            return bindings[node.id]
        if node.id in names:
            return dataclasses.replace(node, id=names[node.id])
        return node
    if isinstance(node, L.Unary):
        return dataclasses.replace(node, operand=_rename(node.operand, names, bindings))
    if isinstance(node, (L.Binary, L.Compare)):
        return dataclasses.replace(node, left=_rename(node.left, names, bindings), right=_rename(node.right, names, bindings))
    if isinstance(node, L.Call):
        return dataclasses.replace(node, args=tuple(_rename(a, names, bindings) for a in node.args))
    return node


def _free_names(tree: L.SyntaxTree, declared: set[str]) -> set[str]:
    out: set[str] = set()

    def walk(node):
        if isinstance(node, L.Name):
            if node.id not in declared and node.id != "t" and lookup_unit(node.id) is None:
                out.add(node.id)
        elif isinstance(node, L.Unary):
            walk(node.operand)
        elif isinstance(node, (L.Binary, L.Compare)):
            walk(node.left)
            walk(node.right)
        elif isinstance(node, L.Call):
            for a in node.args:
                walk(a)

    for s in tree.statements:
        if s.expr is not None:
            walk(s.expr)
    return out


def _expand_one(use: L.Statement, host: L.SyntaxTree, search_path) -> tuple[list[L.Statement], str, list[Diagnostic]]:
    path = resolve_current(use.path, host.file, use.path_span, search_path)
    shown, text = L.read_source(path)
    tree = L.parse_model_text(text, shown)
    if tree.kind != "current":
        raise ModelError([Diagnostic("E003", use.path_span, f"{use.path!r} is not a current file", 'a current file starts with `current Name "description"`')])
    diags: list[Diagnostic] = []
    for s in tree.statements:
        if s.kind not in ALLOWED_IN_CURRENTS:
            diags.append(Diagnostic("E002", s.name_span or s.span, f"`{s.kind}` cannot appear in a current file", "a current file holds parameters, gates, states, expressions, currents, resets and synapses"))
    declared = {s.name for s in tree.statements if s.kind in ("parameter", "state", "input", "expression", "current")}
    currents = [s for s in tree.statements if s.kind == "current"]
    if not currents:
        diags.append(Diagnostic("E003", use.path_span, f"{use.path!r} declares no `current … inward|outward` line"))
    alias = use.name
    names = {n: f"{alias}_{n}" for n in declared}
    if len(currents) == 1:
        names[currents[0].name] = alias
    receptors = list(dict.fromkeys(s.receptor for s in tree.statements if s.kind == "synapse"))
    receptor_names = {r: (alias if len(receptors) == 1 else f"{alias}_{r}") for r in receptors}
    parameters = {s.name for s in tree.statements if s.kind == "parameter"}
    free = _free_names(tree, declared)
    values: dict[str, object] = {}
    bindings: dict[str, object] = {}
    for key, kspan, expr in use.items:
        if key in parameters:
            values[key] = expr
        elif key in free:
            bindings[key] = expr
        else:
            close = difflib.get_close_matches(key, sorted(parameters | free), n=1)
            hint = f"did you mean `{close[0]}`?" if close else f"{tree.name} has parameters: {', '.join(sorted(parameters)) or 'none'}"
            diags.append(Diagnostic("E101", kspan, f"current {tree.name} ({use.path}) has no parameter or free name `{key}`", hint))
    out = []
    for s in tree.statements:
        expr = values[s.name] if s.kind == "parameter" and s.name in values else s.expr
        expr = _rename(expr, names, bindings) if expr is not None else None
        out.append(dataclasses.replace(s, name=names.get(s.name, s.name), expr=expr, receptor=receptor_names.get(s.receptor, s.receptor)))
    return out, f"\n# --- {use.path} ({path.name})\n{text}", diags


def expand_uses(tree: L.SyntaxTree, search_path: list[str] | None = None) -> L.SyntaxTree:
    """Return ``tree`` with every ``use`` statement replaced by its current's statements."""
    if not any(s.kind == "use" for s in tree.statements):
        return tree
    if tree.kind == "current":
        first = next(s for s in tree.statements if s.kind == "use")
        raise ModelError([Diagnostic("E002", first.name_span, "a current file cannot `use` other currents", "use them all from the model")])
    statements: list[L.Statement] = []
    used_sources = []
    diags: list[Diagnostic] = []
    for s in tree.statements:
        if s.kind != "use":
            statements.append(s)
            continue
        try:
            expanded, source, problems = _expand_one(s, tree, search_path)
        except ModelError as e:
            diags.extend(e.diagnostics)
            continue
        statements.extend(expanded)
        used_sources.append(source)
        diags.extend(problems)
    if diags:
        raise ModelError(diags)
    # the source (and so the build hash) covers every used file: editing a current rebuilds
    return dataclasses.replace(tree, statements=tuple(statements), source=tree.source + "".join(used_sources))

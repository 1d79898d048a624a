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
(``search_path`` of ``modelgen.load``, then ``MODELGEN_PATH``), then in the bundled library; a path that leaves those
folders is refused.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from pathlib import Path

from . import language as L
from .diagnostics import Diagnostic, ModelError, Span
from .units import AREA, CAPACITANCE, CONDUCTANCE, CURRENT, DIMENSIONLESS, lookup_unit

__all__ = ["expand_uses", "library_paths", "resolve_current", "standalone_model"]

ALLOWED_IN_CURRENTS = {"parameter", "state", "expression", "ode", "current", "reset", "synapse", "input"}


def library_paths() -> list[Path]:
    """Return the bundled library folders: ``modelgen/library``, where ``use "currents/na_hh"`` finds its file."""
    return [Path(__file__).resolve().parent / "library"]


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
        raise ModelError(
            [Diagnostic("E003", span, f"`use` takes a path relative to the model file or the library, not {path!r}")]
        )
    for root in roots:
        for name in names:
            candidate = (root / name).resolve()
            if candidate.is_relative_to(root) and candidate.is_file():
                return candidate
            if not candidate.is_relative_to(root):
                raise ModelError(
                    [
                        Diagnostic(
                            "E003",
                            span,
                            f"{path!r} leaves the folders currents are read from",
                            "current files live next to the model, on MODELGEN_PATH, or in the bundled library",
                        )
                    ]
                )
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
        return dataclasses.replace(
            node, left=_rename(node.left, names, bindings), right=_rename(node.right, names, bindings)
        )
    if isinstance(node, L.Call):
        return dataclasses.replace(node, args=tuple(_rename(a, names, bindings) for a in node.args))
    return node


def _nodes(node):
    """Yield every node of an expression."""
    yield node
    if isinstance(node, L.Unary):
        yield from _nodes(node.operand)
    elif isinstance(node, (L.Binary, L.Compare)):
        yield from _nodes(node.left)
        yield from _nodes(node.right)
    elif isinstance(node, L.Call):
        for a in node.args:
            yield from _nodes(a)


def _names_in(node):
    """Yield the Name nodes of an expression."""
    return (n for n in _nodes(node) if isinstance(n, L.Name))


def _free_names(tree: L.SyntaxTree, declared: set[str]) -> dict[str, Span]:
    """Return the names ``tree`` reads but does not declare (taken from the host), with their first use."""
    out: dict[str, Span] = {}
    for s in tree.statements:
        builtin = {"t", "w"} if s.kind == "synapse" else {"t"}  # w: a synapse's weight
        for node in _names_in(s.expr) if s.expr is not None else ():
            if node.id not in declared and node.id not in builtin and lookup_unit(node.id) is None:
                out.setdefault(node.id, node.span)
    return out


def _expand_one(use: L.Statement, host: L.SyntaxTree, search_path) -> tuple[list[L.Statement], str, list[Diagnostic]]:
    path = resolve_current(use.path, host.file, use.path_span, search_path)
    shown, text = L.read_source(path)
    tree = L.parse_model_text(text, shown)
    if tree.kind != "current":
        raise ModelError(
            [
                Diagnostic(
                    "E003",
                    use.path_span,
                    f"{use.path!r} is not a current file",
                    'a current file starts with `current Name "description"`',
                )
            ]
        )
    host_names = {
        s.name for s in host.statements if s.kind in ("parameter", "state", "input", "expression", "current", "charge")
    }
    out, diags, needs = _scoped(tree, use, host_names)
    return out, f"\n# --- {use.path} ({path.name})\n{text}", diags, [(tree.name, name) for name in needs]


def _is_constant(node, host_names: set[str]) -> bool:
    """Return whether a setting's value is a constant (numbers and units only, no names of the host)."""
    return all(n.id not in host_names and lookup_unit(n.id) is not None for n in _names_in(node))


def _misplaced_statements(tree: L.SyntaxTree) -> list[Diagnostic]:
    """Return an error for each statement a current file may not hold (charge, threshold, use, …)."""
    return [
        Diagnostic(
            "E002",
            s.name_span or s.span,
            f"`{s.kind}` cannot appear in a current file",
            "a current file holds parameters, gates, states, expressions, currents, resets and synapses",
        )
        for s in tree.statements
        if s.kind not in ALLOWED_IN_CURRENTS
    ]


def _scoped(
    tree: L.SyntaxTree, use: L.Statement, host_names: set[str]
) -> tuple[list[L.Statement], list[Diagnostic], list[str]]:
    """Return the statements of the current file ``tree`` scoped under the alias of ``use``, with its settings.

    Also returns problems, and the free names left for the host to declare (those not bound by a setting).
    """
    diags = _misplaced_statements(tree)
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
    states = {s.name for s in tree.statements if s.kind == "state"}
    free = _free_names(tree, declared)
    values: dict[str, object] = {}
    bindings: dict[str, object] = {}
    for key, kspan, expr in use.items:
        if key in parameters and not _is_constant(expr, host_names):
            bindings[key] = expr  # `(E = E_K)`: the current reads the host's E_K in place of its parameter
        elif key in parameters or key in states:
            values[key] = expr
        elif key in free:
            bindings[key] = expr
        else:
            close = difflib.get_close_matches(key, sorted(parameters | set(free)), n=1)
            hint = (
                f"did you mean `{close[0]}`?"
                if close
                else f"{tree.name} has parameters: {', '.join(sorted(parameters)) or 'none'}"
            )
            diags.append(
                Diagnostic(
                    "E101", kspan, f"current {tree.name} ({use.path}) has no parameter or free name `{key}`", hint
                )
            )
    out = []
    for s in tree.statements:
        if s.kind == "parameter" and s.name in bindings:
            continue
        if s.kind in ("parameter", "state") and s.name in values:
            expr = values[s.name]  # an expression of the host: not renamed into the current's scope
        else:
            expr = _rename(s.expr, names, bindings) if s.expr is not None else None
        out.append(
            dataclasses.replace(
                s, name=names.get(s.name, s.name), expr=expr, receptor=receptor_names.get(s.receptor, s.receptor)
            )
        )
    return out, diags, [n for n in free if n not in bindings]


# free names a current file checked on its own may read, and the values its checking model gives them
STANDALONE_VALUES = {"temperature": "6.3 degC", "Ca": "50 nM"}


def _per_area(tree: L.SyntaxTree) -> bool:
    """Return whether the file's conductances, currents or capacitances are per area (mS/cm^2), not absolute (nS)."""
    per_area = {CONDUCTANCE / AREA, CURRENT / AREA, CAPACITANCE / AREA}
    absolute = {CONDUCTANCE, CURRENT, CAPACITANCE}
    seen = set()
    for s in tree.statements:
        for node in _nodes(s.expr) if s.expr is not None else ():
            if isinstance(node, L.UnitLit) and all(lookup_unit(n) is not None for n, _, _ in node.factors):
                dim = DIMENSIONLESS
                for n, e, _ in node.factors:
                    dim = dim * lookup_unit(n).dimension ** e
                seen.add(dim)
    return bool(seen & per_area) or not seen & absolute


def standalone_model(tree: L.SyntaxTree) -> L.SyntaxTree:
    """Return a model holding the current file ``tree`` alone, so that ``modelgen check x.current`` checks it.

    The file's names are kept as written. The model adds a membrane potential V (1 uF/cm^2, or
    100 pF for a file written in absolute units such as nS), an input current I_ext, a threshold
    at 0 mV (for reset lines), the rk4 scheme,
    and the values of :data:`STANDALONE_VALUES` for the free names the file reads; any other
    free name is reported, since only a model that uses the file can say what it is.
    """
    declared = {s.name for s in tree.statements if s.kind in ("parameter", "state", "input", "expression", "current")}
    free = _free_names(tree, declared)
    diags = _misplaced_statements(tree)
    if not any(s.kind == "current" for s in tree.statements):
        diags.append(Diagnostic("E003", tree.name_span, f"{tree.name} declares no `current … inward|outward` line"))
    # the file's names stay as written (errors name them so); the membrane's own names avoid them
    c_m, q, i_ext = (name if name not in declared else f"{name}_alone" for name in ("C_m", "Q", "I_ext"))
    capacitance = "1 uF/cm^2" if _per_area(tree) else "100 pF"
    lines = [
        f'model {tree.name} "{tree.description}"',
        f"parameter {c_m} = {capacitance}",
        "state V = -65 mV",
        f"charge {q} = {c_m} * V",
        f"current {i_ext} = input inward",
        "threshold V > 0 mV",
        # a current alone has no scheme of its own (its model decides); rk4 takes any file and is planned at
        # once, where `auto` could pick the exact propagator, slow for coupled pairs such as V and w
        "method rk4",
    ]
    for name, span in free.items():
        if name in STANDALONE_VALUES:
            lines.append(f"parameter {name} = {STANDALONE_VALUES[name]}")
        elif name != "V":
            known = ", ".join(["V", *STANDALONE_VALUES])
            diags.append(
                Diagnostic(
                    "E101",
                    span,
                    f"`{name}` is not declared in {tree.name}: it must come from the model that uses the file",
                    f"checked on its own, a current file may read only {known}; check a model that uses it (binding `{name}` in its `use` line if needed)",
                )
            )
    if diags:
        raise ModelError(diags)
    host = L.parse_model_text("\n".join(lines) + "\n", f"{tree.file} (checked alone)")
    return dataclasses.replace(
        host,
        file=tree.file,
        source=tree.source,
        name_span=tree.name_span,
        statements=(*host.statements, *tree.statements),
    )


def expand_uses(tree: L.SyntaxTree, search_path: list[str] | None = None) -> L.SyntaxTree:
    """Return ``tree`` with every ``use`` statement replaced by its current's statements.

    A current file on its own becomes the model of :func:`standalone_model`.
    """
    if tree.kind == "current":
        first = next((s for s in tree.statements if s.kind == "use"), None)
        if first is not None:
            raise ModelError(
                [
                    Diagnostic(
                        "E002",
                        first.name_span,
                        "a current file cannot `use` other currents",
                        "use them all from the model",
                    )
                ]
            )
        return standalone_model(tree)
    if not any(s.kind == "use" for s in tree.statements):
        return tree
    statements: list[L.Statement] = []
    used_sources = []
    diags: list[Diagnostic] = []
    wanted: list[tuple[L.Statement, str, str]] = []  # (use, current, free name it reads)
    for s in tree.statements:
        if s.kind != "use":
            statements.append(s)
            continue
        try:
            expanded, source, problems, needs = _expand_one(s, tree, search_path)
        except ModelError as e:
            diags.extend(e.diagnostics)
            continue
        statements.extend(expanded)
        used_sources.append(source)
        diags.extend(problems)
        wanted.extend((s, current, name) for current, name in needs)
    declared = {
        s.name for s in statements if s.kind in ("parameter", "state", "input", "expression", "current", "charge")
    }
    for use, current, name in wanted:
        if name not in declared:
            hint = f'declare `{name}` in the model, or bind it in the use line: `use "{use.path}" as {use.name} ({name} = …)`'
            diags.append(
                Diagnostic(
                    "E101",
                    use.name_span,
                    f"current {current} ({use.path}) reads `{name}`, which the model does not declare",
                    hint,
                )
            )
    if diags:
        raise ModelError(diags)
    # the source (and so the build hash) covers every used file: editing a current rebuilds
    return dataclasses.replace(tree, statements=tuple(statements), source=tree.source + "".join(used_sources))

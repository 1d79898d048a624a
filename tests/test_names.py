"""Model names never meet the names of generated code (codegen.generated_names).

A model whose parameters, states, inputs and intermediates are named after every Python
builtin and every identifier of generated modules (read from their tokens, so the list follows
the template) runs, on numpy and numba, to the same bits as the same model with plain names.
The names enter as exact no-ops: parameters and states of value 1 multiply the leak
conductance, inputs of value 0 add to the drive, so the order of those operations, which
sympy sorts by name, cannot change a bit, while a name that reads a wrong value shows.
"""

import ast
import builtins
import functools
import importlib.util
import io
import keyword
import re
import tokenize
from pathlib import Path

import numpy as np
import pytest

import modelgen
from modelgen.codegen import generated_names, python_names
from modelgen.language import check_name

MODELS = Path(__file__).resolve().parent.parent / "models"
ROLES = ("parameter", "state", "input", "intermediate")
CORE = {"V", "C", "g_L", "E_L", "V_th", "V_reset", "t_ref", "tau", "I_in", "w", "Q", "I_leak", "I_drive", "exc"}


def _model_text(names: dict[str, list[str]], name: str = "Names") -> str:
    """Return a LIF with, for each k, a parameter P_k = 1, an input X_k = 0 pA, an intermediate
    E_k = P_k + X_k/pA and a state S_k = 1 relaxing to E_k (``names`` gives P, S, X and E):
    every S_k stays exactly 1 unless a name reads a wrong value."""
    lines = [
        f"model {name}",
        "parameter C = 200 pF",
        "parameter g_L = 10 nS",
        "parameter E_L = -65 mV",
        "parameter V_th = -50 mV",
        "parameter V_reset = -65 mV",
        "parameter t_ref = 2 ms",
        "parameter tau = 5 ms",
        "state V = E_L",
        "input I_in = 0 pA",
        "charge Q = C * V",
        "current I_leak = g_L * (V - E_L) outward",
        "current I_drive = I_in inward",
        "threshold V > V_th",
        "reset V = V_reset",
        "refractory t_ref",
        "method exponential_euler",  # not exact: a matrix exponential of hundreds of states takes long
    ]
    for p, s, x, e in zip(*(names[r] for r in ROLES)):
        lines += [f"parameter {p} = 1", f"input {x} = 0 pA", f"{e} = {p} + {x} / (1 pA)"]
        lines += [f"state {s} = 1", f"d{s}/dt = ({e} - {s}) / tau"]
    lines.append(f"synapse exc: {names['state'][0]} += w")
    lines.append(f"synapse exc: {names['state'][1]} += 2 * w")
    return "\n".join(lines) + "\n"


def _plain(k: int) -> dict[str, list[str]]:
    return {r: [f"{letter}{i:03d}" for i in range(k)] for r, letter in zip(ROLES, "psxe")}


def _allowed(name: str) -> bool:
    return name.isidentifier() and name not in CORE and check_name(name, None) is None


def _names_in(code: str) -> set[str]:
    """Return the names a model could take from ``code``: its identifiers but attributes, and for
    each `_`-prefixed one the leading and trailing runs of its words (`_ref_steps_array`:
    ref, ref_steps, ..., steps_array, array), what a name made from a model name could meet."""
    out = set()
    previous = None
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.NAME and previous != ".":
            out.add(tok.string)
            if tok.string.startswith("_"):
                words = tok.string.lstrip("_").split("_")
                out |= {"_".join(words[:j]) for j in range(1, len(words) + 1)}
                out |= {"_".join(words[i:]) for i in range(len(words))}
        previous = tok.string
    return {n for n in out if _allowed(n)}


@functools.lru_cache
def _generated_identifiers(backends: tuple[str, ...]) -> set[str]:
    """Return the names a model could take from generated modules (bundled models covering the
    template's branches: refractoriness and receptors, rate functions, resets, exact propagators)."""
    names = set()
    for model in ("lif.model", "hh.model", "izhikevich.model", "lif_cuba.model"):
        m = modelgen.load(MODELS / model)
        for backend in backends:
            names |= _names_in(m.code(backend=backend))
    return names


def _dealt(names: list[str], turn: int) -> dict[str, list[str]]:
    """Return ``names`` dealt out to the roles in turn, starting at role ``turn``, each role
    padded with plain names to the same length (so that one plain model matches every turn)."""
    k = -(-len(names) // len(ROLES))
    roles = _plain(k)
    for i, n in enumerate(names):
        roles[ROLES[(i + turn) % len(ROLES)]][i // len(ROLES)] = n
    return roles


def _runs(names: dict[str, list[str]], tmp_path, backend: str, sizes: tuple[int, ...]):
    """Return the results of runs of ``sizes`` neurons, every state recorded; the model's first
    extra parameter and state set through their names (params, initial)."""
    m = modelgen.load_text(_model_text(names), "names.model")
    out = []
    for n in sizes:
        result = m.run(
            duration="30 ms",
            dt="0.05 ms",
            n=n,
            inputs={"I_in": np.linspace(300, 600, n), names["input"][0]: 0.0},
            params={names["parameter"][0]: 1.0},
            initial={"V": -60.0, names["state"][0]: 1.0},
            record=list(m.states),
            record_indices=np.arange(n),
            out_dir=tmp_path,
            backend=backend,
        )
        out.append([result[s] for s in m.states] + [result.spike_i, result.spike_t])
    return out


def _check_names(funny: list[str], tmp_path, backend: str, sizes: tuple[int, ...]) -> None:
    """Run the model with ``funny`` names in every role (four turns) and with plain names: same bits."""
    plain = _runs(_plain(-(-len(funny) // len(ROLES))), tmp_path, backend, sizes)
    for size, (*traces, _, spike_t) in zip(sizes, plain):
        assert spike_t.size > 0 and np.all(np.concatenate(traces[1:]) == 1.0), size
    for turn in range(len(ROLES)):
        for got, want in zip(_runs(_dealt(funny, turn), tmp_path, backend, sizes), plain):
            for a, b in zip(got, want):
                np.testing.assert_array_equal(a, b)


def test_generated_names_cover_the_template_and_python():
    names = generated_names()
    assert {"len", "getattr", "slice", "print", "float", "np", "math", "numba", "dt"} <= names
    # the issue's names: arguments and locals of the generated functions
    assert {"params", "inputs", "given", "record", "dtype", "spikes", "saved", "args", "k_start"} <= names
    assert {"observe", "step", "run", "receive", "receptor", "index", "w"} <= names
    # the helpers' locals start with `_`, so that common names stay as written
    assert not {"x", "y", "k", "c", "v", "p"} & names


# The plain names (no `_`, not UPPER_CASE) that the templates' code uses. Each one renames a model's
# name in every generated module (`h` -> `h_`), so a new one must be a deliberate choice: a
# template's locals, parameters and imports start with `_` (`import numba.extending`, not
# `from numba.extending import overload`). The network programs once added ~60 (h, n, d, i, ...).
_PLAIN_TEMPLATE_NAMES = {
    *("args axis bits builder cache check code codegen compiled_kernel concurrent context count cp cupy dt").split(),
    *("dtype error_model fastmath first given group_rows index initial_state inline inputs intrinsic").split(),
    *("ir job jobs k_end k_start k_stop key keys layout llvmlite make_simulator math module ndim").split(),
    *("nogil np numba numpy observe options os out params parts per_step rec receive receptor").split(),
    *("record rows run run_step_piece run_steps saved seed self side signature spike_neurons spike_steps").split(),
    *("spikes start_run state step steps t tables thread_name_prefix threads typingctx upload value").split(),
    *("w where widths wraparound").split(),
}


def test_templates_reserve_no_new_plain_names():
    plain = {
        n
        for n in generated_names()
        if not n.startswith("_") and not n.isupper() and not keyword.iskeyword(n) and not keyword.issoftkeyword(n)
    } - set(dir(builtins))
    assert plain - _PLAIN_TEMPLATE_NAMES == set(), "name template locals with a leading `_`"
    assert _PLAIN_TEMPLATE_NAMES - plain == set(), "a name is no longer used: take it out of the list"


def test_clashing_names_get_a_trailing_underscore():
    names = {
        "parameter": ["len", "p1"],
        "state": ["saved", "w"],
        "input": ["given", "x1"],
        "intermediate": ["len_", "e1"],
    }
    model = modelgen.load_text(_model_text(names)).model
    assert python_names(model) == {"len": "len__", "saved": "saved_", "given": "given_", "w": "w_"}
    code = modelgen.load_text(_model_text(names)).code()
    # the receptor's weight is receive()'s argument `w`, the state `w` is `w_`
    assert "saved_ += w  # synapse exc: saved += w" in code
    assert "w_ += 2*w  # synapse exc: w += 2 * w" in code


@pytest.mark.slow  # ~45 s; the issue's names run in the network and sweep tests below by default
def test_every_builtin_and_generated_name_runs_on_numpy(tmp_path):
    funny = sorted({n for n in dir(builtins) if _allowed(n)} | _generated_identifiers(("numpy", "numba")))
    assert len(funny) > 400
    _check_names(funny, tmp_path, "numpy", (2, 12))  # the per-neuron kernel, then the vectorised step


def _kernel_names() -> set[str]:
    """Return the names a model could take from the numba kernels: every name their code reads
    or binds (`_` stripped) but those made from the models' names or numbered temporaries."""
    names, own = set(), set()
    for model in ("lif.model", "hh.model"):  # refractoriness, receptors, rate functions
        m = modelgen.load(MODELS / model)
        own |= {q.name for g in (m.model.parameters, m.model.states, m.model.inputs) for q in g}
        own |= {q.name for g in (m.model.expressions, m.model.currents) for q in g}
        for f in ast.parse(m.code(backend="numba")).body:
            if isinstance(f, ast.FunctionDef) and f.name.startswith("_advance"):
                found = {n.id for n in ast.walk(f) if isinstance(n, ast.Name)} | {a.arg for a in f.args.args}
                names |= {n.lstrip("_") for n in found} | found

    def made_up(name: str) -> bool:
        words = name.split("_")
        runs = {"_".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}
        return bool(runs & own) or re.fullmatch(r"[a-z]\d+", name) is not None

    return {n for n in names if not made_up(n)}


@pytest.mark.slow  # ~50 s of numba compiling
@pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba backend: pip install -e '.[numba]'")
def test_generated_names_run_on_numba(tmp_path):
    # numba compiles are slow: the names of the compiled kernels only, in one turn
    funny = sorted(n for n in _kernel_names() if _allowed(n))
    assert {"float", "range", "k_start", "i", "kk", "spikes", "BLOCK"} <= set(funny)
    plain = _runs(_plain(-(-len(funny) // len(ROLES))), tmp_path, "numba", (2, 300))
    for got, want in zip(_runs(_dealt(funny, 0), tmp_path, "numba", (2, 300)), plain):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


ISSUE_NAMES = {  # the names of the issue, each in the role where it crashed
    "parameter": ["len", "params", "given", "observe", "receive"],
    "state": ["index", "w", "receptor", "saved", "dtype"],
    "input": ["given_", "inputs", "spikes", "k_start", "k_stop"],
    "intermediate": ["getattr", "record", "step", "args", "run"],
}


def test_names_through_a_network(tmp_path):
    from modelgen.network import load_network

    results = []
    for names in (ISSUE_NAMES, _plain(5)):
        (tmp_path / "m.model").write_text(_model_text(names))
        (tmp_path / "n.network").write_text(
            'network N\npopulation A = "m.model" (n = 3)\npopulation B = "m.model" (n = 2)\n'
            f"input A (I_in = 500 pA, {names['input'][1]} = 0 pA)\n"
            "connect A to B (receptor = exc, rule = all_to_all, weight = 0.5, delay = 1 ms)\n"
            f"record B (V, {names['state'][0]}, {names['state'][1]})\n"
        )
        results.append(load_network(tmp_path / "n.network").run(40.0, 0.1, out_dir=tmp_path / "gen"))
    funny, plain = results
    assert funny.spike_t.size > 0
    np.testing.assert_array_equal(funny.traces["B.V"], plain.traces["B.V"])
    np.testing.assert_array_equal(funny.traces["B.index"], plain.traces["B.s000"])
    np.testing.assert_array_equal(funny.traces["B.w"], plain.traces["B.s001"])
    assert funny.traces["B.index"].max() > 1.5  # spikes of A arrived at B's state `index`
    assert funny.traces["B.w"].max() > 2 * funny.traces["B.index"].max() - 1.5  # twice the weight, not w itself
    np.testing.assert_array_equal(funny.spike_t, plain.spike_t)


def test_names_through_a_sweep(tmp_path):
    from click.testing import CliRunner

    from modelgen.cli import main

    tables = []
    for names in (ISSUE_NAMES, _plain(5)):
        (tmp_path / "m.model").write_text(_model_text(names))
        args = ["sweep", tmp_path / "m.model", "--input", "I_in=300,600 pA", "--param", f"{names['parameter'][0]}=1"]
        r = CliRunner().invoke(main, [str(a) for a in [*args, "--duration", "50 ms", "-o", tmp_path, "-q"]])
        assert r.exit_code == 0, r.output
        tables.append(r.output.replace(names["parameter"][0], "P"))
    assert tables[0] == tables[1]
    assert len(tables[0].splitlines()) == 3

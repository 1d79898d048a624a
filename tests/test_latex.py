"""LaTeX output: every emitted equation parses (matplotlib mathtext), formats, --expand, --standalone."""

from __future__ import annotations

import html
import random
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sympy
from click.testing import CliRunner

import modelgen
from modelgen.cli import main
from modelgen.latex import _expanded, model_blocks

MODELS = sorted((Path(__file__).resolve().parent.parent / "models").glob("*.model"))


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def math_rows(text: str, fmt: str) -> list[str]:
    """Return every formula in the output: each aligned row (with & removed), each note, each table cell."""
    if fmt == "html":
        text = html.unescape(text)
    env = "align\\*" if fmt == "tex" else "aligned"
    rows = []
    for body in re.findall(rf"\\begin{{{env}}}\n(.*?)\n\\end{{{env}}}", text, re.S):
        for row in body.split(" \\\\\n"):
            eq, _, note = row.partition(" && ")
            rows.append(eq.replace("&", ""))
            if note:
                rows.append(note)
    cell = {"tex": r"\$([^$]+)\$", "markdown": r"\| \$([^$]+)\$", "html": r"\\\((.*?)\\\)"}[fmt]
    rows += re.findall(cell, text)
    return rows


# tex in the default run; markdown and html wrap the same equations (each parse takes matplotlib ~0.1 s): slow
@pytest.mark.parametrize(
    "fmt", ["tex", pytest.param("markdown", marks=pytest.mark.slow), pytest.param("html", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_every_equation_parses_with_mathtext(path, fmt):
    mathtext = pytest.importorskip("matplotlib.mathtext")
    parser = mathtext.MathTextParser("path")
    m = modelgen.load(path)
    for expand in (False, True):
        text = m.latex(expand=expand, fmt=fmt)
        rows = math_rows(text, fmt)
        n_equations = sum(len(b.rows) for b in model_blocks(m.model, m.derivation, expand=expand))
        assert len(rows) >= n_equations
        for row in rows:
            parser.parse(f"${row}$")  # raises ValueError on anything mathtext cannot read


def test_fragment_contents(hh_path, lif_path):
    text = modelgen.load(hh_path).latex()
    assert r"\frac{dQ}{dt} &= C_{m} \frac{dV}{dt}" in text
    assert r"\frac{dm}{dt} &= \alpha_{m} \left(1 - m\right) - \beta_{m} m" in text
    assert r"$C_{m}$ & 1 & $\mathrm{\mu F/cm^{2}}$ \\" in text  # micro as \mu, power braced
    lif = modelgen.load(lif_path).latex()
    # signs follow the declared directions: inward +, outward -
    assert r"C \, \frac{dV}{dt} &= -I_{leak} + I_{syn} + I_{ext}" in lif
    assert r"&\text{then } V \leftarrow V_{reset}" in lif and r"&\text{refractory for } t_{ref}" in lif


def test_expand_substitutes_intermediates(hh_path):
    m = modelgen.load(hh_path)
    plain, expanded = m.latex(), m.latex(expand=True)
    ode_m = next(line for line in expanded.splitlines() if line.startswith(r"\frac{dm}{dt}"))
    assert r"\alpha_{m}" not in ode_m and r"\beta_{m}" not in ode_m and r"\exp\left(" in ode_m
    assert r"\frac{dV}{dt} &= \frac{1}{C_{m}} \left(I_{ext} - g_{Na} m^{3} h" in expanded
    assert "currents substituted" in expanded and "currents substituted" not in plain


def test_expanded_forms_equal_the_model_equations(hh_path):
    # independent of printing: the displayed expansion (units as symbols) must equal the
    # model's own expansion (internal units) at random points; HH's units are all internal (scale 1)
    m = modelgen.load(hh_path).model
    rng = random.Random(1)
    for ode in m.odes:
        shown = _expanded(m, ode.shown)
        units = {s: 1 for s in shown.free_symbols if s.name.startswith("unit:")}
        a = shown.xreplace(units)
        b = m.expand(ode.rhs)
        names = sorted({s.name for s in a.free_symbols | b.free_symbols})
        for _ in range(5):
            point = {n: rng.uniform(-80, 40) if n == "V" else rng.uniform(0.05, 0.95) for n in names}
            va = float(a.xreplace({s: point[s.name] for s in a.free_symbols}))
            vb = float(b.xreplace({s: point[s.name] for s in b.free_symbols}))
            assert va == pytest.approx(vb, rel=1e-12), ode.state
    assert sympy.Symbol("alpha_m", real=True) not in _expanded(m, m.ode("m").shown).free_symbols


def test_markdown_and_html(hh_path):
    m = modelgen.load(hh_path)
    md = m.latex(fmt="markdown")
    assert md.startswith("## HodgkinHuxley\n")
    assert md.count("$$") == 2 * md.count(r"\begin{aligned}") == 2 * 5
    assert "| $g_{Na}$ | 120 | $\\mathrm{mS/cm^{2}}$ |" in md
    assert m._repr_markdown_() == md
    page = m.latex(fmt="html", standalone=True)
    assert page.startswith("<!DOCTYPE html>") and "mathjax" in page

    class Balanced(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack = []

        def handle_starttag(self, tag, attrs):
            if tag not in ("meta",):
                self.stack.append(tag)

        def handle_endtag(self, tag):
            assert self.stack.pop() == tag

    checker = Balanced()
    checker.feed(page)
    assert checker.stack == []
    assert "&amp;= g_{Na}" in page and "&= g_{Na}" not in page  # & escaped inside HTML


def test_standalone_document(lif_path, tmp_path):
    r = invoke("latex", "--standalone", lif_path)
    assert r.exit_code == 0, r.output
    doc = r.output
    assert doc.startswith("\\documentclass{article}\n\\usepackage{amsmath}")
    assert doc.rstrip().endswith("\\end{document}")
    assert "\\section*{LIF: Leaky integrate-and-fire" in doc
    assert doc.count("\\begin{align*}") == doc.count("\\end{align*}") > 0
    engine = shutil.which("pdflatex")
    if engine is None:
        pytest.skip("no LaTeX engine installed: the equations are checked with mathtext above")
    (tmp_path / "lif.tex").write_text(doc)
    done = subprocess.run(
        [engine, "-interaction=nonstopmode", "-halt-on-error", "lif.tex"],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout.decode(errors="replace")[-2000:]
    assert (tmp_path / "lif.pdf").exists()


def test_cli_options(hh_path):
    r = invoke("latex", "--format", "markdown", "--expand", "--no-derivation", hh_path)
    assert r.exit_code == 0, r.output
    assert r"\frac{dQ}{dt}" not in r.output and "currents substituted" in r.output
    r = invoke("latex", "--format", "pdf", hh_path)
    assert r.exit_code == 2 and "Invalid value for '--format'" in r.output


POOL = """model Pool "a calcium pool that fires when it passes half a micromolar"
parameter tau = 10 ms
input J = 0 mM/ms
state c = 0 mM
dc/dt = J - c/tau
threshold c > 0.5 uM
reset c = 0 mM
"""


@pytest.mark.parametrize(
    "threshold, shown",
    [
        ("threshold V > 0 mV", r"&\text{spike when } V > 0 \,\mathrm{mV}"),
        ("threshold V >= -20 mV", r"&\text{spike when } V \geq - 20 \,\mathrm{mV}"),  # was (-1) 20
        (None, r"&\text{spike when } c > 0.5 \,\mathrm{\mu M}"),
    ],
)
def test_threshold_keeps_its_unit_in_latex_and_render(tmp_path, monkeypatch, threshold, shown):
    pytest.importorskip("matplotlib")
    if threshold is None:
        path = tmp_path / "pool.model"
        path.write_text(POOL)
    else:
        path = tmp_path / "hh.model"
        text = (MODELS[0].parent / "hh.model").read_text()
        assert "threshold V > 0 mV" in text
        path.write_text(text.replace("threshold V > 0 mV", threshold))
    r = invoke("latex", path)
    assert r.exit_code == 0, r.output
    assert shown + " \\\\\n" in r.stdout or shown + "\n" in r.stdout
    from matplotlib import mathtext

    mathtext.MathTextParser("path").parse("$" + shown.replace("&", "") + "$")
    # `render` draws the same rows
    import modelgen.plots

    drawn = []
    monkeypatch.setattr(modelgen.plots, "render_equations", lambda blocks, out, title="": drawn.append(blocks) or out)
    r = invoke("render", path, "-o", tmp_path / "eq.png")
    assert r.exit_code == 0, r.output
    events = next(b for b in drawn[0] if b.title == "Events")
    assert events.rows[0] == ("", shown.removeprefix("&"), "")

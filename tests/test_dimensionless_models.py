"""Abstract models without a charge relation: FitzHugh-Nagumo, dimensionless states, against scipy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.integrate import solve_ivp

import modelgen
from modelgen.cli import main

FHN = Path(__file__).resolve().parent.parent / "models" / "fitzhugh_nagumo.model"


def fhn_reference(t: np.ndarray, I: float) -> np.ndarray:  # noqa: E741 (FitzHugh's name)
    """v and w of FitzHugh-Nagumo (a = 0.7, b = 0.8, tau = 1 ms, tau_w = 12.5 ms) from scipy, written here."""

    def f(_, y):
        v, w = y
        return [v - v**3 / 3 - w + I, (v + 0.7 - 0.8 * w) / 12.5]

    v0 = -1.199
    sol = solve_ivp(f, (0, t[-1]), [v0, (v0 + 0.7) / 0.8], t_eval=t, method="DOP853", rtol=1e-10, atol=1e-12)
    return sol.y


def test_fitzhugh_nagumo_matches_solve_ivp(tmp_path):
    m = modelgen.load(FHN)
    assert m.model.charge is None and not m.currents
    r = m.run(duration="100 ms", dt="0.01 ms", inputs={"I": 0.5}, record=["v", "w"], out_dir=tmp_path)
    v, w = fhn_reference(r.t, 0.5)
    np.testing.assert_allclose(r["v"][0], v, rtol=0, atol=1e-7)  # rk4 at dt = 0.01: ~1e-8
    np.testing.assert_allclose(r["w"][0], w, rtol=0, atol=1e-7)
    # repetitive firing: upward crossings of v = 1, as scipy's trajectory crosses it
    crossings = r.t[1:][(v[:-1] <= 1) & (v[1:] > 1)]
    assert len(r.spike_t) == len(crossings) >= 2
    np.testing.assert_allclose(r.spike_t, crossings, atol=0.011)


def test_fitzhugh_nagumo_rests_without_input(tmp_path):
    r = modelgen.load(FHN).run(duration="200 ms", dt="0.05 ms", record=["v", "w"], out_dir=tmp_path)
    assert len(r.spike_t) == 0
    assert r["v"][0, -1] == pytest.approx(-1.1994, abs=1e-3)


def test_cli_check_latex_run_on_a_dimensionless_model(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["check", str(FHN)])
    assert r.exit_code == 0 and "ok -- model FitzHughNagumo: 2 states, 0 currents" in r.output, r.output
    r = runner.invoke(main, ["latex", str(FHN)])
    assert r.exit_code == 0 and r"\frac{dv}{dt}" in r.output and "charge" not in r.output, r.output
    r = runner.invoke(main, ["run", str(FHN), "--duration", "100ms", "--input", "I=0.5", "-o", str(tmp_path)])
    assert r.exit_code == 0 and "FitzHughNagumo: simulated 100 ms" in r.output and " 0 spikes" not in r.output

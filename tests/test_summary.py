"""`modelgen show`: the readable summary of a model."""

from click.testing import CliRunner

import modelgen
from modelgen.cli import main


def test_show_hh(hh_path):
    r = CliRunner().invoke(main, ["show", str(hh_path)])
    assert r.exit_code == 0, r.output
    text = r.output
    assert text.startswith("HodgkinHuxley -- Squid giant axon")
    # states with units and evaluated initial values (m at its steady state at -65 mV)
    assert "  V     mV    -65" in text and "(membrane potential)" in text
    assert "  m     1     0.0529325      alpha_m / (alpha_m + beta_m)" in text
    assert "C_m*dV/dt = I_ext - I_Na - I_K - I_L" in text
    assert "  I_Na   outward    uA/cm^2  g_Na * m^3 * h * (V - E_Na)" in text
    assert "  I_ext  inward     uA/cm^2  input" in text
    assert "  g_L   0.3 mS/cm^2" in text
    assert "spike: threshold V > 0 mV  (an upward crossing)" in text
    assert "integration: exponential_euler (the model's `method` line)" in text
    assert "  n  dn/dt is linear in n: exponential Euler (Rush-Larsen)" in text


def test_show_lif_events_units_and_method_override(lif_path):
    m = modelgen.load(lif_path)
    text = m.summary(method="rk4")
    assert "  g_syn  nS    0\n" in text  # declared unit, not the internal mS
    assert "  I_leak  outward    pA    g_L * (V - E_L)" in text
    assert "then:  reset V = V_reset" in text
    assert "refractory t_ref = 2 ms" in text
    assert "integration: rk4 (chosen with --method)" in text


def test_show_reports_errors_without_traceback(tmp_path):
    bad = tmp_path / "bad.model"
    bad.write_text("model Bad\nstate x = 1\n")
    r = CliRunner().invoke(main, ["show", str(bad)])
    assert r.exit_code == 1
    assert "error[E201]" in r.output and "Traceback" not in r.output

"""The benchmark suite runs (a tiny version): workloads agree with their baselines and results are written."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_script_quick(tmp_path):
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--sizes", "1,100"]
    cmd += ["--workloads", "hh_exp_euler,lif,izhikevich", "--backends", "numpy", "--budget", "0.02"]
    cmd += ["--json", str(out), "--plot", str(tmp_path / "plot.png")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "agree" in run.stdout
    results = json.loads(out.read_text())
    rows = {(r["workload"], r["n"]): r for r in results["rows"]}
    assert set(rows) == {(w, n) for w in ("hh_exp_euler", "lif", "izhikevich") for n in (1, 100)}
    assert all(r["numpy_ratio"] > 0 and r["baseline_neuron_steps_per_s"] > 0 for r in rows.values())

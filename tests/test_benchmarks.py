"""The benchmark suite runs (a tiny version): workloads agree with their baselines and results are written."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # runs the benchmark script (numba compiles of four models)
def test_benchmark_script_quick(tmp_path):
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--sizes", "1,100"]
    cmd += ["--workloads", "hh_exp_euler,lif,izhikevich", "--backends", "numpy", "--budget", "0.02"]
    cmd += ["--json", str(out), "--plot", str(tmp_path / "plot.png")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "modelgen and the hand-written versions agree" in run.stdout
    results = json.loads(out.read_text())
    rows = {(r["workload"], r["n"]): r for r in results["rows"]}
    assert set(rows) == {(w, n) for w in ("hh_exp_euler", "lif", "izhikevich") for n in (1, 100)}
    for r in rows.values():
        # modelgen numpy is measured against the expert numpy version, and the naive one is kept for reference
        assert r["numpy_rival"] == "expert_numpy"
        assert r["numpy_ratio"] == r["expert_numpy_s"] / r["numpy_s"]
        assert r["numpy_vs_naive"] == r["naive_s"] / r["numpy_s"]
        assert r["naive_neuron_steps_per_s"] > 0
    # the table states the ratio against expert numpy
    assert "| workload | N | naive numpy | expert numpy | modelgen numpy |" in run.stdout

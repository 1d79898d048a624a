"""The benchmark suite runs (a tiny version): workloads agree with their baselines and results are written."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
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


# ----------------------------------------------------------------------------- benchmarks/networks.py
def _networks_module():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import networks

    return networks


@pytest.mark.parametrize("kind", ["cuba", "coba"])
def test_network_benchmark_rows_and_baseline_agreement(tmp_path, kind):
    """A tiny network timed on modelgen numpy and the hand-written version: they spike alike, the table has their rows."""
    networks = _networks_module()
    path, inputs, check = networks.prepare(kind, 200, [1, 2], 0.1, tmp_path)
    # the hand-written version spikes as modelgen's numpy backend does, spike for spike
    assert check["steps"] == 200 and check["identical"]
    assert check["modelgen_spikes"] == check["handwritten_spikes"] >= 20
    spec = {"network": kind, "n": 200, "duration_ms": 20.0, "dt_ms": 0.1, "seeds": [1, 2]}
    spec.update(path=str(path), inputs=inputs)
    rows = [networks.measure({**spec, "implementation": impl}) for impl in ("numpy", "handwritten")]
    mine, theirs = rows
    # 200 steps: the same spikes, hence the same events, rates and CVs for every seed
    assert mine["synaptic_events"] == theirs["synaptic_events"] > 0
    assert set(mine["seeds"]) == {"1", "2"}
    np.testing.assert_equal(mine["seeds"], theirs["seeds"])  # CVs nan alike: no neuron fires 3 times in 20 ms
    for row in rows:
        assert row["run_s"] > 0 and row["loop_s"] <= row["run_s"]
        assert row["synaptic_events_per_s"] == row["synaptic_events"] / row["loop_s"]
        assert row["peak_rss_MB"] >= row["base_rss_MB"] > 0
    # rounds: the best warm times, the first round's cold ones, the largest peak memory
    later = {**mine, "first_run_s": 0.0, "run_s": mine["run_s"] / 2, "loop_s": mine["loop_s"] / 4, "peak_rss_MB": 1e6}
    best = networks.best_of([mine, later])
    assert (best["first_run_s"], best["run_s"], best["loop_s"]) == (
        mine["first_run_s"],
        later["run_s"],
        later["loop_s"],
    )
    assert best["peak_rss_MB"] == 1e6 and best["synaptic_events_per_s"] == pytest.approx(
        4 * mine["synaptic_events_per_s"]
    )
    rows.append({"network": kind, "n": 200, "implementation": "numba", "unavailable": "TypeError: no backend"})
    ratios = networks.ratios(rows)
    assert [(e["modelgen"], e["rival"]) for e in ratios] == [("numba", "brian2-cython"), ("numpy", "handwritten")]
    assert ratios[1]["run_ratio"] == theirs["run_s"] / mine["run_s"]
    assert ratios[1]["loop_ratio"] == theirs["loop_s"] / mine["loop_s"]
    assert ratios[0]["missing"] == "modelgen numba, Brian2 cython"
    table = networks.markdown(rows, ratios).splitlines()
    assert table[0].startswith("| network | N | implementation | build s | first run s | run s | loop s |")
    assert sum(line.startswith(f"| {kind} | 200 | modelgen numpy | ") for line in table) == 2  # times; rates
    assert sum(line.startswith(f"| {kind} | 200 | hand-written numpy | — | ") for line in table) == 1  # no build
    assert f"| {kind} | 200 | modelgen numba | unavailable: TypeError: no backend | | | | | |" in table
    assert any(line.startswith(f"| {kind} | 200 | modelgen numpy over hand-written numpy | ") for line in table)
    assert (
        f"| {kind} | 200 | modelgen numba over Brian2 cython | not measured (modelgen numba, Brian2 cython) | | ≥ 2× | |"
        in table
    )


def test_network_benchmark_rate_and_cv():
    """Rate and ISI CV as modelgen's NetworkResult defines them: neurons with 3 spikes or more, mean of std/mean."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from measures import rate_and_cv

    neurons = np.array([3, 0, 0, 3, 0, 1, 1, 3])
    times = np.array([40.0, 30.0, 0.0, 10.0, 10.0, 5.0, 7.0, 0.0])  # neuron 0: ISIs 10, 20; neuron 3: 10, 30
    rate, cv = rate_and_cv(neurons, times, n=4, duration_ms=500.0)
    assert rate == 8 / 4 / 0.5
    assert cv == pytest.approx((5 / 15 + 10 / 20) / 2)
    assert np.isnan(rate_and_cv(np.array([1, 1]), np.array([1.0, 2.0]), n=2, duration_ms=10.0)[1])


@pytest.mark.slow  # the whole script: a fresh process per measurement
def test_network_benchmark_script_quick(tmp_path):
    out = tmp_path / "networks.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "networks.py"), "--quick", "--n", "400", "--duration", "50"]
    cmd += ["--implementations", "numpy,numba,handwritten", "--json", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(out.read_text())
    assert [(r["network"], r["implementation"]) for r in results["rows"]] == [
        (k, i) for k in ("cuba", "coba") for i in ("numpy", "numba", "handwritten")
    ]
    assert all(check["identical"] for check in results["agreement"].values())
    assert "| cuba | 400 | modelgen numpy over hand-written numpy |" in run.stdout


@pytest.mark.slow  # runs the benchmark machinery (a few seconds)
def test_variant_script_compares_an_edited_module(tmp_path):
    from modelgen.cli import main

    with pytest.raises(SystemExit) as done:
        main(["build", str(ROOT / "models" / "lif.model"), "-o", str(tmp_path)], standalone_mode=True)
    assert done.value.code == 0
    generated = (tmp_path / "lif.py").read_text()
    cmd = [sys.executable, str(ROOT / "benchmarks" / "variant.py"), "lif"]
    cmd += ["--backend", "numpy", "--n", "100", "--repeats", "1", "--steps", "50"]
    same = tmp_path / "same.py"
    same.write_text(generated)
    run = subprocess.run([*cmd[:3], str(same), *cmd[3:]], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "max |dV| edited vs generated: 0; same spikes: True" in run.stdout
    assert "edited / expert:" in run.stdout
    # an edit that changes what the neurons do is reported, and fails
    other = tmp_path / "other.py"
    assert "V[_fired] = _take(V_reset, _fired)" in generated
    other.write_text(generated.replace("V[_fired] = _take(V_reset, _fired)", "V[_fired] = _take(V_th, _fired)"))
    run = subprocess.run([*cmd[:3], str(other), *cmd[3:]], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "same spikes: False" in run.stdout


@pytest.mark.slow  # runs the benchmark machinery (a few seconds)
def test_blocks_script_times_block_sizes_that_give_the_same_numbers():
    cmd = [sys.executable, str(ROOT / "benchmarks" / "blocks.py"), "izhikevich", "--n", "700"]
    cmd += ["--blocks", "64,256,4096", "--rounds", "1", "--steps", "20"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "the same numbers with every block size: True" in run.stdout
    for b in (64, 256, 4096):
        assert f"BLOCK {b:>8}: " in run.stdout

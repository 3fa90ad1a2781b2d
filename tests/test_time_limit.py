"""Time limits: the best plan found, with its gap, and exit 1; never a traceback, never a lost plan."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from placement.api import exit_code_of, solve_scenario
from placement.errors import ExitCode
from tests.helpers import write_scenario
from tests.test_cli import run
from tests.test_formulation import CASES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_scale import write_instance  # noqa: E402


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    """1,000 workloads (about 135k variables): proving gap 1e-7 takes far longer than a few seconds (300
    workloads no longer do: branch-and-price proves them in about 5 s)."""
    return write_instance(tmp_path_factory.mktemp("hard"), 1000)


def test_hard_instance_under_a_short_limit_returns_a_checked_plan_with_its_gap(hard):
    result = solve_scenario(hard, baselines=False, explain=False, time_limit_s=6, mip_gap=1e-7)
    assert result.violations == []
    assert result.plan["status"] == "feasible"
    assert result.exit_code == ExitCode.FEASIBLE
    objective = result.plan["objective"]
    assert objective["bound"] is not None and objective["bound"] <= objective["value"]
    assert 0 < objective["gap"] < 0.1     # a 6-second plan on a 135k-variable model, with its proven gap
    assert result.plan["solver"]["notes"], "the plan says what was cut short"


def test_time_limit_holds_for_the_whole_command(hard, tmp_path):
    """--time-limit is the whole command's budget (parse, lookup, solve, tie-breaks, baselines, outputs):
    within 10% + 1 s of it, beyond what starting Python and importing the tool takes."""
    started = time.perf_counter()  # starting Python and importing what a solve imports (pandas, scipy, HiGHS...)
    subprocess.run([sys.executable, "-c", "import placement.api, placement.plan, highspy"], capture_output=True,
                   check=True, cwd=Path(__file__).resolve().parents[1])
    startup = time.perf_counter() - started
    for limit in (3.0, 8.0):
        out = tmp_path / f"plan-{limit:g}"
        started = time.perf_counter()
        done = run("solve", str(hard), "--time-limit", str(limit), "--gap", "1e-7", "--out", str(out))
        wall = time.perf_counter() - started
        assert done.returncode in (0, 1, 4), done.stderr
        assert wall <= 1.1 * limit + 1.0 + startup, f"--time-limit {limit} ran {wall:.1f} s"
        if done.returncode == 1:
            plan = json.loads((out / "plan.json").read_text())
            assert plan["solver"]["notes"]


def test_cp_sat_plans_exit_1(tmp_path):
    spec, _ = CASES["reserved_block_rounding_prefers_on_demand"]  # LP bound 3.0 < 7.5: nothing proves it
    scenario = write_scenario(tmp_path / "in", spec)
    done = run("solve", str(scenario), "--engine", "cp-sat", "--out", str(tmp_path / "plan"))
    assert done.returncode == 1, done.stderr
    assert "feasible" in done.stderr


def test_exit_codes_follow_plan_status():
    assert exit_code_of({"status": "optimal"}, []) == ExitCode.OPTIMAL
    assert exit_code_of({"status": "feasible"}, []) == ExitCode.FEASIBLE
    assert exit_code_of({"status": "infeasible"}, []) == ExitCode.INFEASIBLE
    assert exit_code_of({"status": "no_solution"}, []) == ExitCode.SOLVER_FAILURE
    assert exit_code_of({"status": "optimal"}, ["a violation"]) == ExitCode.SOLVER_FAILURE


def test_explanations_that_would_overrun_the_limit_are_skipped_and_said_so(tmp_path, monkeypatch):
    """Explanations cost about 1e-5 s per (bucket, deployment) pair (23.6 s at 20,000 workloads, which
    pushed that command 21 s past its limit): when what is left is less than that, they are skipped."""
    import placement.api

    scenario = write_instance(tmp_path, 20)
    explained = solve_scenario(scenario, baselines=False, explain=True, time_limit_s=60).plan
    assert explained["explanations"]
    monkeypatch.setattr(placement.api, "EXPLAIN_SECONDS_PER_PAIR", 1.0)   # 40 buckets x 72 deployments
    skipped = solve_scenario(scenario, baselines=False, explain=True, time_limit_s=60).plan
    assert not skipped.get("explanations")
    assert any(n.startswith("explanations skipped: they take about") for n in skipped["solver"]["notes"])
    assert skipped["status"] == explained["status"] and skipped["cost"] == explained["cost"]


def test_cbc_past_its_limit_is_stopped(monkeypatch, tmp_path):
    """The bundled CBC ignores its limit in strong branching (1,000 workloads, 30 s asked: 261 s): a CBC
    process still running OVERRUN_GRACE_S after the limit is killed and the solve returns no solution, at
    once. Here the grace is made negative so the watchdog fires 2 s in, while CBC is still proving a
    300-workload optimum (about 10 s on its own)."""
    import time
    from dataclasses import replace

    import solvers
    import solvers.pulp_backend
    from tests.helpers import benchmark_model

    _, _, arrays, settings = benchmark_model(tmp_path, 300)
    monkeypatch.setattr(solvers.pulp_backend, "OVERRUN_GRACE_S", -58.0)
    clock = time.perf_counter()
    result = solvers.solve(arrays, replace(settings, backend="pulp", engine="cbc", mip_gap=0.0, time_limit_s=60))
    assert time.perf_counter() - clock < 10
    assert result.status == solvers.Status.NO_SOLUTION and "was stopped" in result.message, result.message
    assert solvers.pulp_backend._cbc_children() == []

"""Time limits: the best plan found, with its gap, and exit 1; never a traceback, never a lost plan."""

from __future__ import annotations

import sys
from pathlib import Path

from placement.api import exit_code_of, solve_scenario
from placement.errors import ExitCode
from tests.helpers import write_scenario
from tests.test_cli import run
from tests.test_formulation import CASES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_scale import LADDER, synthetic  # noqa: E402


def test_hard_instance_under_a_short_limit_returns_a_checked_plan_with_its_gap():
    loaded = synthetic(*LADDER[4])  # 56k arcs; HiGHS needs ~50 s to prove optimality at gap 1e-4
    result = solve_scenario(loaded, baselines=False, explain=False, time_limit_s=6, mip_gap=1e-7)
    assert result.violations == []
    assert result.plan["status"] == "feasible"
    assert result.exit_code == ExitCode.FEASIBLE
    objective = result.plan["objective"]
    assert objective["bound"] is not None and objective["bound"] <= objective["value"]
    assert 0 < objective["gap"] < 0.05


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

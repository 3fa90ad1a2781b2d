"""The library entry point: a scenario in, a checked plan document out (what `placement solve` runs).

For notebooks and pipelines that want the plan without the command line:

    from placement.api import solve_scenario
    result = solve_scenario("inputs/speed-lanes/scenario.yaml")
    result.plan["cost"]["per_hour"], result.exit_code
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from placement.checker import check_plan
from placement.diagnosis import diagnose
from placement.errors import ExitCode
from placement.plan import plan_document
from placement.profiles import DEPLOYMENT_KEY
from placement.report import explanations, summary_markdown, unasked_speed_notes, unused_field_notes
from placement.scenario import LoadedScenario, load_scenario
import time

from placement.solve import Budget, Outcome, optimize, settings_from
from solvers import SolverSettings


@dataclass
class PlanResult:
    plan: dict[str, Any]
    summary: str
    exit_code: ExitCode
    violations: list[str]
    outcome: Outcome


def solve_scenario(scenario: str | Path | LoadedScenario, settings: SolverSettings | None = None,
                   baselines: bool | None = None, explain: bool = True, budget: Budget | None = None,
                   rolling: int | None = None, **overrides) -> PlanResult:
    """Solve, diagnose if infeasible, explain, and re-verify with the independent checker.

    overrides: backend, engine, time_limit_s, mip_gap, threads (None keeps the scenario's option).
    `budget`: the wall-clock seconds of the whole command (default: the time limit, from now); every stage
    takes what is left of it, and what had to be skipped is listed in the plan's solver.notes.
    `rolling`: a look-ahead window in periods: solve as a rolling horizon (placement.rolling), committing
    one period at a time; the plan is `feasible` at best.
    Raises InputError on bad input. A checker violation gives exit code 4 and is listed in
    `violations`: it is a bug, and the plan must not be used.
    """
    loaded = scenario if isinstance(scenario, LoadedScenario) else load_scenario(scenario)
    settings = settings or settings_from(loaded.scenario, **overrides)
    budget = budget or Budget(settings.time_limit_s)
    parse_s = loaded.load_s   # read, parse, validate (done before the call when the command loaded it)
    if rolling is None:
        outcome = optimize(loaded, settings, baselines=baselines, budget=budget)
    else:
        from placement.rolling import optimize_rolling

        outcome = optimize_rolling(loaded, rolling, settings, budget)
    outcome.timings = {"parse": parse_s, **outcome.timings}
    diagnosis = []
    if outcome.solution is None and outcome.status.value == "infeasible":
        clock = time.perf_counter()
        diagnosis = diagnose(loaded.scenario, outcome.table, outcome.cells, outcome.candidates, settings, budget,
                             outcome.notes)
        outcome.timings["diagnosis"] = time.perf_counter() - clock
    plan = plan_document(loaded, outcome, settings, diagnosis)
    if outcome.table is not None:
        plan["notes"] = list(outcome.table.attrs.get("not_estimated", []))
    violations: list[str] = []
    if outcome.solution is not None:
        needs = explanation_seconds(outcome)
        if explain and budget.remaining > needs:
            clock = time.perf_counter()
            plan["explanations"] = explanations(loaded.scenario, outcome.table, outcome.cells, plan)
            plan["solver"]["stages_s"]["explanations"] = time.perf_counter() - clock
        elif explain:
            plan["solver"]["notes"].append(f"explanations skipped: they take about {needs:.0f} s here, more than "
                                           "the time limit leaves")
        plan.setdefault("notes", [])
        plan["notes"] += unused_field_notes(loaded.scenario)
        plan["notes"] += unasked_speed_notes(loaded.scenario, pd.DataFrame(plan["routing"]), planned=True)
        clock = time.perf_counter()
        violations = check_plan(loaded, plan, outcome.table)
        plan["solver"]["stages_s"]["check"] = time.perf_counter() - clock
    plan["solver"]["total_s"] = budget.elapsed
    return PlanResult(plan, summary_markdown(plan), exit_code_of(plan, violations), violations, outcome)


# Explanations weigh every (bucket, deployment) pair: measured 7-8 microseconds a pair (7.8 s for 1.08M
# pairs at 7,500 workloads, 23.6 s for 2.9M at 20,000).
EXPLAIN_SECONDS_PER_PAIR = 1e-5


def explanation_seconds(outcome: Outcome) -> float:
    """What the explanations will take, from the number of (bucket, deployment) pairs they weigh."""
    if outcome.table is None or outcome.cells is None:
        return 0.0
    deployments = len(outcome.table[DEPLOYMENT_KEY].drop_duplicates())
    return EXPLAIN_SECONDS_PER_PAIR * len(outcome.cells) * deployments


def exit_code_of(plan: dict[str, Any], violations: list[str]) -> ExitCode:
    if violations:
        return ExitCode.SOLVER_FAILURE
    return {"optimal": ExitCode.OPTIMAL, "feasible": ExitCode.FEASIBLE,
            "infeasible": ExitCode.INFEASIBLE}.get(plan["status"], ExitCode.SOLVER_FAILURE)

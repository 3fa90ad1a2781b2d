"""A reported bound is a proven one: the solver's dual bound or the LP relaxation, never the incumbent.

fleet-sizing solved with a loose gap (5%) by every backend and engine: each bound must lie at or below
the true optimum (the same model solved with gap 0), and the plan's gap must be computed from it.
CBC and OR-Tools' HiGHS used to report the incumbent as the bound (CBC's was above the optimum).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import solvers
from placement.formulation import build_model
from placement.indexsets import build_index_sets
from placement.scenario import load_scenario
from placement.solve import prepare, settings_from, solve_with_incumbent
from solvers.base import relative_gap

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def fleet():
    loaded = load_scenario(REPO / "inputs/fleet-sizing/scenario.yaml")
    table, cells, candidates = prepare(loaded)
    arrays = build_model(build_index_sets(loaded.scenario, cells, candidates)).arrays()
    settings = settings_from(loaded.scenario)
    exact = solvers.solve(arrays, replace(settings, backend="highspy", engine="highs", mip_gap=0.0))
    assert exact.status == solvers.Status.OPTIMAL
    return arrays, settings, exact.objective


@pytest.mark.parametrize("backend,engine", [("highspy", "highs"), ("ortools", "highs"), ("ortools", "scip"),
                                            ("pulp", "cbc"), ("pulp", "highs")])
def test_backend_bound_never_exceeds_the_optimum(fleet, backend, engine):
    arrays, settings, optimum = fleet
    result = solvers.solve(arrays, replace(settings, backend=backend, engine=engine, mip_gap=0.05, time_limit_s=120))
    assert result.has_solution
    assert result.objective >= optimum - 1e-6 * optimum
    if result.bound is not None:
        assert result.bound <= optimum + 1e-6 * optimum


def test_the_solve_reports_a_proven_bound_and_its_gap(fleet):
    arrays, settings, optimum = fleet
    loose = replace(settings, mip_gap=0.05)
    result, lp_bound = solve_with_incumbent(arrays, loose)
    assert lp_bound <= optimum
    assert result.bound is not None and result.bound <= optimum + 1e-6 * optimum
    assert relative_gap(result.objective, result.bound) <= 0.05 + 1e-12


def test_ortools_after_pulp_in_one_process():
    """PuLP's import loads highspy's HiGHS; an OR-Tools loaded after it segfaulted in its first Solve. The
    PuLP backend loads OR-Tools first, so a process that used PuLP can still use the ortools backend."""
    import subprocess
    import sys

    code = ("import solvers.pulp_backend, solvers; from dataclasses import replace; "
            "from placement.scenario import load_scenario; from placement.api import solve_scenario; "
            "r = solve_scenario(load_scenario('inputs/fleet-sizing/scenario.yaml'), backend='ortools', "
            "engine='highs', baselines=False, explain=False); print(r.plan['status'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() in ("optimal", "feasible")

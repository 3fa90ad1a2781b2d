"""OR-Tools backend (default): HiGHS, SCIP or CP-SAT through OR-Tools' model builder.

The model is handed over in one call from a CSR matrix (`fill_model_from_sparse_data`), so the
build cost is that of the arrays, not of Python objects per variable.
"""

from __future__ import annotations

import time

import numpy as np
import ortools
from ortools.linear_solver.python import model_builder_helper as mbh

from solvers.base import HIGHS_THREADS, SolverResult, SolverSettings, Status
from solvers.quiet import quiet_native_output

ENGINE_NAMES = {"highs": "highs", "scip": "scip", "cp-sat": "cp_sat", "glop": "glop"}

# CP-SAT solves integer programs; continuous variables are scaled onto an integer grid of this
# resolution, then the continuous part is re-solved exactly with the integers fixed (polish).
CP_SAT_VARIABLE_SCALING = 1000


def _parameters(engine: str, settings: SolverSettings) -> str:
    gap, threads = settings.mip_gap, settings.threads
    if engine == "highs":
        return f"output_flag=false\nmip_rel_gap={gap}\nthreads={HIGHS_THREADS}\nrandom_seed=0"
    if engine == "scip":
        return f"limits/gap = {gap}\ndisplay/verblevel = 0\nrandomization/randomseedshift = 0"
    if engine == "cp_sat":
        return (
            f"relative_gap_limit:{gap}, num_workers:{threads}, random_seed:0, "
            f"mip_var_scaling:{CP_SAT_VARIABLE_SCALING}, log_search_progress:false"
        )
    return ""


def _helper(model, lower: np.ndarray, upper: np.ndarray, integer: np.ndarray) -> mbh.ModelBuilderHelper:
    helper = mbh.ModelBuilderHelper()
    helper.fill_model_from_sparse_data(
        lower, upper, model.cost, model.row_lower, model.row_upper, model.matrix()
    )
    for column in np.flatnonzero(integer):
        helper.set_var_integrality(int(column), True)
    if model.objective_offset:
        helper.set_objective_offset(model.objective_offset)
    return helper


def _run(helper, engine: str, settings: SolverSettings, time_limit: float):
    solver = mbh.ModelSolverHelper(engine)
    if not solver.solver_is_supported():
        raise RuntimeError(f"OR-Tools was built without {engine}")
    solver.set_time_limit_in_seconds(max(time_limit, 0.01))
    solver.set_solver_specific_parameters(_parameters(engine, settings))
    with quiet_native_output():
        solver.solve(helper)
    return solver


def solve(model, settings: SolverSettings, start=None) -> SolverResult:
    engine = ENGINE_NAMES[settings.engine]
    integer = np.zeros(model.num_variables, dtype=bool) if settings.relax_integrality else model.integer
    if settings.relax_integrality and engine == "cp_sat":
        engine = "glop"
    version = f"ortools {ortools.__version__}"
    started = time.perf_counter()
    helper = _helper(model, model.lower, model.upper, integer)
    try:
        solver = _run(helper, engine, settings, settings.time_limit_s)
    except RuntimeError as exc:
        return SolverResult(Status.NO_SOLUTION, None, None, None, time.perf_counter() - started,
                            "ortools", settings.engine, version, str(exc))
    status = _status(solver)
    x = np.asarray(solver.variable_values(), dtype=float) if status in (Status.OPTIMAL, Status.FEASIBLE) else None
    objective = float(solver.objective_value()) if x is not None else None
    # OR-Tools' HiGHS wrapper reports the incumbent as the "best bound" (its dual bound is not passed
    # through), so only SCIP's is taken; otherwise the caller falls back on the LP relaxation's bound.
    bound = float(solver.best_objective_bound()) if x is not None and engine == "scip" else None
    if integer.sum() == 0 and x is not None and status == Status.OPTIMAL:
        bound = objective
    message = solver.status_string() or ""
    if x is not None and engine == "cp_sat" and not integer.all():
        # CP-SAT proved optimality on a share grid only: the plan is feasible, not proven optimal.
        x, objective = _polish(model, x, settings, started)
        status, bound = Status.FEASIBLE, None
        message = f"CP-SAT solved shares on a 1/{CP_SAT_VARIABLE_SCALING} grid; continuous optimality not proven"
    return SolverResult(status, x, objective, bound, time.perf_counter() - started,
                        "ortools", settings.engine, version, message)


def _status(solver) -> Status:
    status = solver.status()
    name = getattr(status, "name", str(status))
    if name == "OPTIMAL":
        return Status.OPTIMAL
    if name == "FEASIBLE" and solver.has_solution():
        return Status.FEASIBLE
    if name == "INFEASIBLE":
        return Status.INFEASIBLE
    if name == "UNBOUNDED":
        return Status.UNBOUNDED
    return Status.NO_SOLUTION


def _polish(model, x: np.ndarray, settings: SolverSettings, started: float) -> tuple[np.ndarray, float]:
    """Fix CP-SAT's integers and re-solve the continuous part exactly (GLOP), undoing its grid."""
    integer = model.integer
    fixed = np.round(x[integer])
    lower, upper = model.lower.copy(), model.upper.copy()
    lower[integer] = fixed
    upper[integer] = fixed
    helper = _helper(model, lower, upper, np.zeros(model.num_variables, dtype=bool))
    remaining = settings.time_limit_s - (time.perf_counter() - started)
    solver = _run(helper, "glop", settings, max(remaining, 1.0))
    if _status(solver) != Status.OPTIMAL:
        return x, float(model.cost @ x + model.objective_offset)
    polished = np.asarray(solver.variable_values(), dtype=float)
    return polished, float(solver.objective_value())

"""HiGHS through its own Python API (highspy): the default backend.

The CSR arrays go to HiGHS in one `passModel` call. Going direct rather than through OR-Tools buys what a
pipeline needs: the time limit is held inside a solve (OR-Tools' wrapper overran it several-fold on large
models), a MIP stopped by the limit still returns its incumbent (OR-Tools reported no solution), the
reported bound is HiGHS's own dual bound (`mip_dual_bound`), a MIP can start from a known plan
(`setSolution`), and an LP returns its row duals.
"""

from __future__ import annotations

import time
from dataclasses import replace

import highspy
import numpy as np

from solvers.base import HIGHS_THREADS, SolverResult, SolverSettings, Status
from solvers.quiet import quiet_native_output

_STATUS = {
    highspy.HighsModelStatus.kOptimal: Status.OPTIMAL,
    highspy.HighsModelStatus.kInfeasible: Status.INFEASIBLE,
    highspy.HighsModelStatus.kUnbounded: Status.UNBOUNDED,
    highspy.HighsModelStatus.kUnboundedOrInfeasible: Status.INFEASIBLE,
}


def _pass_model(highs: highspy.Highs, model, integer: np.ndarray) -> None:
    """The arrays straight into HiGHS (passModel's array overload): no per-attribute copies through a
    HighsLp object, which cost more than HiGHS's own load at a million columns."""
    matrix = model.matrix()
    status = highs.passModel(
        int(model.num_variables), int(model.num_constraints), int(matrix.nnz),
        int(highspy.MatrixFormat.kRowwise), int(highspy.ObjSense.kMinimize), float(model.objective_offset),
        np.ascontiguousarray(model.cost, dtype=np.float64), np.ascontiguousarray(model.lower, dtype=np.float64),
        np.ascontiguousarray(model.upper, dtype=np.float64), np.ascontiguousarray(model.row_lower, dtype=np.float64),
        np.ascontiguousarray(model.row_upper, dtype=np.float64), matrix.indptr.astype(np.int32),
        matrix.indices.astype(np.int32), matrix.data.astype(np.float64), integer.astype(np.int32))
    if status == highspy.HighsStatus.kError:
        raise ValueError("HiGHS refused the model (a coefficient or bound out of its range)")


def new_highs(**options) -> highspy.Highs:
    """A HiGHS instance with its logging off, one thread and a fixed seed, then `options`. Made under
    quiet_native_output: the first instance in a process prints HiGHS's banner from native code, before any
    option can turn it off, and stdout belongs to `--json`."""
    with quiet_native_output():
        highs = highspy.Highs()
        for name, value in {"output_flag": False, "log_to_console": False, "threads": HIGHS_THREADS,
                            "random_seed": 0, **options}.items():
            highs.setOptionValue(name, value)
    return highs


def solve(model, settings: SolverSettings, start=None, stop=None) -> SolverResult:
    with quiet_native_output():  # HiGHS prints a banner from native code, whatever output_flag says
        return _solve(model, settings, start, stop)


def _solve(model, settings: SolverSettings, start=None, stop=None) -> SolverResult:
    """One run, checked: a MIP answer whose plan does not cost what HiGHS says, or breaks a row, is run
    again without the start, then without presolve (HiGHS 1.16 handed a start returned that start as
    `Optimal` with a lower objective than the true optimum: tests/test_enumeration_time.py)."""
    started = time.perf_counter()
    result = _run(model, settings, start, stop)
    retries = ([("without the start", None, True)] if start is not None else []) + [("without presolve", None, False)]
    while result.x is not None and model.integer.any() and not settings.relax_integrality \
            and not _consistent(model, result) and retries:
        said, start, presolve = retries.pop(0)
        left = max(float(settings.time_limit_s) - (time.perf_counter() - started), 0.01)
        wrong = f"HiGHS reported {result.objective:.12g} for a plan that costs {_cost(model, result.x):.12g}"
        result = _run(model, replace(settings, time_limit_s=left), start, stop, presolve)
        result = replace(result, message=f"{result.message} ({wrong}; run again {said})")
    if result.x is not None and model.integer.any() and not _consistent(model, result):
        # no run agreed with itself: keep the plan at what it costs, prove nothing
        result = replace(result, status=Status.FEASIBLE, objective=_cost(model, result.x), bound=None)
    return replace(result, solve_s=time.perf_counter() - started)


def _cost(model, x: np.ndarray) -> float:
    return float(np.asarray(model.cost, dtype=float) @ x + model.objective_offset)


def _consistent(model, result: SolverResult, tolerance: float = 1e-6) -> bool:
    """The plan costs what the solver says, and keeps every row and bound (to a tolerance)."""
    if abs(_cost(model, result.x) - result.objective) > tolerance * max(1.0, abs(result.objective)):
        return False
    rows = model.matrix() @ result.x
    slack = tolerance * np.maximum(1.0, np.abs(rows))
    return bool(np.all(rows >= model.row_lower - slack) and np.all(rows <= model.row_upper + slack)
                and np.all(result.x >= model.lower - tolerance) and np.all(result.x <= model.upper + tolerance))


def _run(model, settings: SolverSettings, start=None, stop=None, presolve: bool = True) -> SolverResult:
    started = time.perf_counter()
    integer = np.zeros(model.num_variables, dtype=bool) if settings.relax_integrality else model.integer
    highs = new_highs(time_limit=max(float(settings.time_limit_s), 0.01), mip_rel_gap=float(settings.mip_gap),
                      **({} if presolve else {"presolve": "off"}))
    version = f"highs {highs.version()}" if hasattr(highs, "version") else "highspy"
    if model.num_variables == 0:
        return _empty(model, settings, started, version)
    _pass_model(highs, model, integer)
    watched = model.num_variables >= DEADLINE_MIN_COLUMNS
    if watched:
        _hold_the_deadline(highs, started + max(float(settings.time_limit_s), 0.01))
    stopping = stop is not None and bool(integer.any())
    if stopping:
        _stop_when(highs, stop)
    if start is not None and integer.any():
        for name, value in _SEARCH_FROM_A_PLAN if settings.mip_heuristics else _SEARCH_FROM_A_PLAN + _PROOF_SEARCH:
            highs.setOptionValue(name, value)
        solution = highspy.HighsSolution()
        solution.col_value = np.asarray(start, dtype=float).tolist()
        solution.value_valid = True
        highs.setSolution(solution)
    highs.run()
    if watched or stopping:
        highs.clearCallbacks()   # no Python callback outlives the run
    status = highs.getModelStatus()
    info = highs.getInfo()
    mip = bool(integer.any())
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    result_status = _STATUS.get(status, Status.FEASIBLE if has_solution else Status.NO_SOLUTION)
    if result_status == Status.OPTIMAL and not has_solution:
        result_status = Status.NO_SOLUTION
    x = duals = objective = bound = None
    if result_status in (Status.OPTIMAL, Status.FEASIBLE) and has_solution:
        solution = highs.getSolution()
        x = np.asarray(solution.col_value, dtype=float)
        objective = float(info.objective_function_value)
        if mip:
            bound = float(info.mip_dual_bound)
            bound = bound if np.isfinite(bound) else None
        elif result_status == Status.OPTIMAL:
            bound = objective          # an LP solved to optimality: its value is proven by its duals
            duals = np.asarray(solution.row_dual, dtype=float)
    elif result_status == Status.FEASIBLE:
        result_status = Status.NO_SOLUTION
    message = highs.modelStatusToString(status)
    return SolverResult(result_status, x, objective, bound, time.perf_counter() - started, "highspy",
                        settings.engine, version, message, duals=duals)


# A MIP handed a plan: the plan comes from this tool's own heuristics (rounding, the neighbourhood MIP), and
# HiGHS's root sub-MIPs (RENS, root reduced cost) and feasibility jump then cost most of the run; RINS
# stays, at the default effort, unless the caller says the plan is already near its bound
# (`mip_heuristics=False`: effort 0, a proof search). Measured: the 300-workload benchmark's full MIP 29 s ->
# 4.7 s from the same plan; the 1,000-workload restricted MIP from a plan 0.61% above the LP bound stopped
# at 60 s at a 0.12% gap with every heuristic, was proven optimal in 30 s at effort 0; the four-quarter
# example (its plan 2.1% above a weak LP bound) needs RINS and the effort: 2,526.28 USD/h in 94 s, where
# effort 0 kept 2,532.38.
_SEARCH_FROM_A_PLAN = (("mip_heuristic_run_rens", False), ("mip_heuristic_run_root_reduced_cost", False),
                       ("mip_heuristic_run_feasibility_jump", False))
# A proof search also keeps its nodes cheap: no cut separation below the root, and a branching score trusted
# after 2 strong-branching samples instead of 8. The 1,000-workload restricted MIP from the same plan
# (three seeds): 30.6 / 38.2 / 46.5 s -> 22.3 / 17.7 / 23.3 s; its full MIP (135k columns) from the optimal
# plan: not proven in 205 s -> proven in 188 s.
_PROOF_SEARCH = (("mip_heuristic_effort", 0.0), ("mip_allow_cut_separation_at_nodes", False),
                 ("mip_pscost_minreliable", 2))

# HiGHS checks its time limit between phases; inside a MIP's sub-MIPs and heuristics on a large model it has
# run several times past it. These callbacks, polled by HiGHS's MIP loop and its simplex, interrupt it once
# the deadline is passed by this much (its own limit normally stops it first).
DEADLINE_GRACE_S = 0.5
# Only models this large have been seen to overrun; small ones (every test's) run without callbacks.
DEADLINE_MIN_COLUMNS = 50_000


def _hold_the_deadline(highs: highspy.Highs, deadline: float) -> None:
    def interrupt_when_late(event) -> None:
        if time.perf_counter() > deadline + DEADLINE_GRACE_S:
            event.interrupt()

    highs.cbMipInterrupt.subscribe(interrupt_when_late)
    highs.cbSimplexInterrupt.subscribe(interrupt_when_late)
    highs.cbIpmInterrupt.subscribe(interrupt_when_late)   # the root's analytic centre (IPX) included


def _stop_when(highs: highspy.Highs, stop) -> None:
    """Interrupt the MIP once `stop` (of its best objective so far) says the caller has what it needs."""
    def interrupt_when_done(event) -> None:
        best = event.data_out.mip_primal_bound
        if np.isfinite(best) and stop(float(best)):
            event.interrupt()

    highs.cbMipInterrupt.subscribe(interrupt_when_done)


def _empty(model, settings, started, version) -> SolverResult:
    feasible = bool(np.all(model.row_lower <= 1e-9) and np.all(model.row_upper >= -1e-9))
    x = np.zeros(0)
    return SolverResult(Status.OPTIMAL if feasible else Status.INFEASIBLE, x if feasible else None,
                        float(model.objective_offset) if feasible else None,
                        float(model.objective_offset) if feasible else None, time.perf_counter() - started,
                        "highspy", settings.engine, version, "empty model")

"""An LP solved by pricing columns in (column generation), for models with far more columns than a basis needs.

A placement model has a share column for every (cell, deployment, period, slice) arc, yet an optimal basis
uses a few per cell. Dual simplex on every column pays for all of them in every pricing pass; here HiGHS
solves the LP over a small set, the reduced costs of all columns are computed in one sparse product
(rc = c - A^T y), the columns that price out are added to the same HiGHS instance (its basis kept, so each
round is a short warm start), until none does.

The bound reported is a proven one: the Lagrangian bound of the final duals, the restricted optimum plus
what every column left out could still gain within its bounds (sum of min(0, rc_j) x u_j). Columns left
out must have lower bound 0 (they sit at 0 in the restricted LP).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np

from solvers.base import SolverResult, SolverSettings, Status
from solvers.highs_backend import _hold_the_deadline, _pass_model, new_highs
from solvers.model import ArrayModel
from solvers.quiet import quiet_native_output

MAX_ROUNDS = 60
# Columns added per round, per row of the model. Fewer columns per round means more rounds but each a
# cheap warm start; measured on the benchmark (LP seconds at 2 / 1 / 0.5 / 0.25 per row): 7,500 workloads
# 20.5 / - / 11.3 / 13.6; 1,000 workloads x 4 periods x 3 slices 64-73 / 80 / 47 / 46; 3,000 workloads
# 2.7 / - / 2.7 / 3.0.
COLUMNS_PER_ROW = 0.5
# A round that adds few columns runs primal simplex, which only has to pivot them into a basis that stays
# primal feasible; a round that adds many runs dual simplex. The old rule (primal for every round from the
# one whose candidates all fit, 19.4k columns at 1,000 x 4 x 3) spent 13.2 s on that round at 0.9 ms an
# iteration, where dual simplex took 2.3 s. Dual on every round instead stalled on the last few thousand
# columns (3.3k: 6.6 s, where primal takes 0.45 s). Measured, the whole priced LP (old rule -> this one):
# 1,000 x 4 x 3 29.9 -> 18.0 s; 20,000 workloads 29.1 -> 21.1 s; 7,500 6.0 -> 5.5 s. The rule counts
# columns, not seconds, so a solve's path never depends on the machine's load.
PRIMAL_COLUMNS_PER_ROW = 0.2


# An arc one (period, slice)'s LP uses is likely used in the others (the same workload on the same
# deployment at another hour or quarter), but prices out there only after rounds that first push load to
# other arcs. So each round also takes in, in every (period, slice), the arcs its LP point uses anywhere. At
# 1,000 x 4 x 3 (a script, the same rounds otherwise): 40.5 s -> 33.2 s. Taking in every (period, slice) of
# each column that prices out instead was slower (86 s: too many columns that never enter); the arcs the
# optimum uses, known in advance, would give 18.6 s.
def _siblings_of_used(siblings: np.ndarray, used: np.ndarray, active: np.ndarray) -> np.ndarray:
    """The columns not yet in the LP that share a sibling label with a column in `used`."""
    labels = siblings[used]
    labels = labels[labels >= 0]
    if not len(labels):
        return np.zeros(0, dtype=np.int64)
    hot = np.zeros(int(siblings.max()) + 1, dtype=bool)
    hot[labels] = True
    return np.flatnonzero(~active & (siblings >= 0) & hot[np.maximum(siblings, 0)])


@dataclass
class PricedLP:
    result: SolverResult
    active: np.ndarray        # columns in the final restricted LP
    rounds: int


def solve_lp_by_pricing(model: ArrayModel, initial: np.ndarray, settings: SolverSettings,
                        siblings: np.ndarray | None = None) -> PricedLP | None:
    """The LP relaxation of `model` from the columns in `initial` (every column outside it must have lower
    bound 0), adding columns while any prices out. Out of time with columns still pricing out, the result
    is `feasible`: the last round's LP point (feasible for the whole LP) and its proven bound. None when not
    even the first round was solved (infeasible with the columns it has, or out of time): the caller then
    solves the whole LP. `siblings`: a label per column (-1 for none), the same for columns that are one
    choice in different places (an arc in each (period, slice)); while columns still price out, each round
    also takes in the siblings of every column the round's LP point uses (_siblings_of_used)."""
    started = time.perf_counter()
    if np.any(model.lower[~initial] != 0):
        raise ValueError("columns left out of a priced LP must have lower bound 0")
    csc = model.a.tocsc()
    transpose = model.a.T.tocsr()           # A^T y for every column in one product
    active = initial.copy()
    columns = np.flatnonzero(active)
    scale = max(1.0, float(np.abs(model.cost).max(initial=0.0)))
    tolerance = 1e-9 * scale
    highs = new_highs(solver="simplex", simplex_strategy=1)
    restricted = ArrayModel(csc[:, columns].tocsr(), model.lower[columns], model.upper[columns],
                            model.cost[columns], np.zeros(len(columns), dtype=bool), model.row_lower,
                            model.row_upper, model.objective_offset)
    last = None     # the last round solved to optimality: (x over its columns, duals, objective, bound)
    rounds = 0
    with quiet_native_output():
        _pass_model(highs, restricted, restricted.integer)
        _hold_the_deadline(highs, started + float(settings.time_limit_s))
        while True:
            left = settings.time_limit_s - (time.perf_counter() - started)
            if left <= 0:
                break
            # HiGHS's time limit counts its run time over every round of this instance: the whole budget
            highs.setOptionValue("time_limit", float(settings.time_limit_s))
            highs.run()
            if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                break
            rounds += 1
            solution = highs.getSolution()
            duals = np.asarray(solution.row_dual, dtype=float)
            reduced = model.cost - transpose @ duals
            objective = float(highs.getInfo().objective_function_value)
            last = (np.asarray(solution.col_value, dtype=float), duals, objective,
                    _lagrangian_bound(objective, reduced, ~active, model.upper, tolerance))
            candidates = np.flatnonzero(~active & (reduced < -tolerance) & (model.upper > 0))
            if not len(candidates) or rounds >= MAX_ROUNDS:
                break
            # the most negative first, at most COLUMNS_PER_ROW per row of the model per round: enough to move
            # the basis, few enough that each round stays a short warm start
            limit = max(int(COLUMNS_PER_ROW * model.num_constraints), 1000)
            if len(candidates) > limit:
                candidates = candidates[np.argpartition(reduced[candidates], limit)[:limit]]
            if siblings is not None:
                candidates = np.union1d(candidates, _siblings_of_used(siblings, columns[last[0] > 0], active))
            candidates.sort()
            # primal for a round that only has a few columns to pivot in, dual otherwise (PRIMAL_COLUMNS_PER_ROW)
            few = len(candidates) <= PRIMAL_COLUMNS_PER_ROW * model.num_constraints
            highs.setOptionValue("simplex_strategy", 4 if few else 1)
            _add_columns(highs, csc, candidates, model.cost, model.lower, model.upper)
            active[candidates] = True
            columns = np.concatenate([columns, candidates])
        highs.clearCallbacks()   # no Python callback outlives the solve
        finished = last is not None and len(columns) == len(last[0])
        basis = _basis_of(highs, columns, model.num_variables) if finished else None
    if last is None:
        return None
    values, duals, objective, bound = last
    x = np.zeros(model.num_variables)
    x[columns[:len(values)]] = values
    active[:] = False
    active[columns[:len(values)]] = True
    version = f"highs {highs.version()}" if hasattr(highs, "version") else "highspy"
    # stopped by the time limit with columns still pricing out: a feasible LP point and a proven (weaker)
    # bound, not the LP optimum
    status = Status.OPTIMAL if finished and bound is not None and objective - bound <= 1e-6 * max(1.0, abs(objective)) \
        else Status.FEASIBLE
    message = (f"LP by pricing: {int(active.sum()):,} of {model.num_variables:,} columns, {rounds} rounds"
               + ("" if status == Status.OPTIMAL else "; stopped by the time limit before pricing finished"))
    result = SolverResult(status, x, objective, bound, time.perf_counter() - started, "highspy",
                          settings.engine, version, message, duals=duals, basis=basis)
    return PricedLP(result, active, rounds)


def _basis_of(highs: highspy.Highs, columns: np.ndarray, num_variables: int) -> tuple[np.ndarray, np.ndarray]:
    """The instance's basis over the model's columns (those it does not hold: at their lower bound, 0) and
    its rows, as HighsBasisStatus codes."""
    basis = highs.getBasis()
    status = np.full(num_variables, int(highspy.HighsBasisStatus.kLower), dtype=np.int8)
    status[columns] = np.fromiter((int(s) for s in basis.col_status), dtype=np.int8, count=len(columns))
    rows = np.fromiter((int(s) for s in basis.row_status), dtype=np.int8, count=len(basis.row_status))
    return status, rows


def _add_columns(highs: highspy.Highs, csc, columns: np.ndarray, cost: np.ndarray, lower: np.ndarray,
                 upper: np.ndarray) -> None:
    """The model's `columns` (from its CSC matrix), with their costs and bounds, appended to a HiGHS instance."""
    block = csc[:, columns]
    highs.addCols(len(columns), cost[columns].astype(np.float64), lower[columns].astype(np.float64),
                  upper[columns].astype(np.float64), int(block.nnz), block.indptr[:-1].astype(np.int32),
                  block.indices.astype(np.int32), block.data.astype(np.float64))


def _lagrangian_bound(objective: float, reduced: np.ndarray, left_out: np.ndarray, upper: np.ndarray,
                      tolerance: float) -> float | None:
    """The restricted optimum plus what each column left out could still gain within its bounds: a lower
    bound on the whole LP for any duals. None if a column left out could gain without limit."""
    rc, up = reduced[left_out], upper[left_out]
    if np.any((rc < -tolerance) & ~np.isfinite(up)):
        return None
    return objective + float(np.minimum(rc, 0.0) @ np.where(np.isfinite(up), up, 0.0))

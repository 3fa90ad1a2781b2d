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
from solvers.highs_backend import _pass_model
from solvers.model import ArrayModel
from solvers.quiet import quiet_native_output

MAX_ROUNDS = 60


@dataclass
class PricedLP:
    result: SolverResult
    active: np.ndarray        # columns in the final restricted LP
    rounds: int


def solve_lp_by_pricing(model: ArrayModel, initial: np.ndarray, settings: SolverSettings) -> PricedLP | None:
    """The LP relaxation of `model` from the columns in `initial` (every column outside it must have lower
    bound 0), adding columns while any prices out. None when the restricted LP is not solved to optimality
    (infeasible with the columns it has, or out of time): the caller then solves the whole LP."""
    started = time.perf_counter()
    if np.any(model.lower[~initial] != 0):
        raise ValueError("columns left out of a priced LP must have lower bound 0")
    csc = model.a.tocsc()
    transpose = model.a.T.tocsr()           # A^T y for every column in one product
    active = initial.copy()
    columns = np.flatnonzero(active)
    scale = max(1.0, float(np.abs(model.cost).max(initial=0.0)))
    tolerance = 1e-9 * scale
    highs = highspy.Highs()
    for name, value in (("output_flag", False), ("log_to_console", False), ("threads", settings.threads),
                        ("random_seed", 0), ("solver", "simplex")):
        highs.setOptionValue(name, value)
    restricted = ArrayModel(csc[:, columns].tocsr(), model.lower[columns], model.upper[columns],
                            model.cost[columns], np.zeros(len(columns), dtype=bool), model.row_lower,
                            model.row_upper, model.objective_offset)
    with quiet_native_output():
        _pass_model(highs, restricted, restricted.integer)
        rounds = 0
        while True:
            left = settings.time_limit_s - (time.perf_counter() - started)
            if left <= 0:
                return None
            highs.setOptionValue("time_limit", float(left))
            highs.run()
            rounds += 1
            if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                return None
            solution = highs.getSolution()
            duals = np.asarray(solution.row_dual, dtype=float)
            reduced = model.cost - transpose @ duals
            candidates = np.flatnonzero(~active & (reduced < -tolerance) & (model.upper > 0))
            if not len(candidates) or rounds >= MAX_ROUNDS:
                break
            # the most negative first, at most a few per row of the model per round: enough to move the
            # basis, few enough that each round stays a short warm start
            limit = max(2 * model.num_constraints, 1000)
            if len(candidates) > limit:
                candidates = candidates[np.argpartition(reduced[candidates], limit)[:limit]]
            candidates.sort()
            block = csc[:, candidates]
            highs.addCols(len(candidates), model.cost[candidates], model.lower[candidates],
                          model.upper[candidates], int(block.nnz), block.indptr[:-1].astype(np.int32),
                          block.indices.astype(np.int32), block.data.astype(np.float64))
            active[candidates] = True
            columns = np.concatenate([columns, candidates])
        info = highs.getInfo()
    x = np.zeros(model.num_variables)
    x[columns] = np.asarray(solution.col_value, dtype=float)
    objective = float(info.objective_function_value)
    left_out = ~active
    gain = float(np.minimum(reduced[left_out], 0.0) @ np.where(np.isfinite(model.upper[left_out]),
                                                                  model.upper[left_out], 0.0))
    unbounded_gain = bool(np.any((reduced[left_out] < -tolerance) & ~np.isfinite(model.upper[left_out])))
    bound = None if unbounded_gain else objective + gain
    version = f"highs {highs.version()}" if hasattr(highs, "version") else "highspy"
    message = f"LP by pricing: {int(active.sum()):,} of {model.num_variables:,} columns, {rounds} rounds"
    result = SolverResult(Status.OPTIMAL, x, objective, bound, time.perf_counter() - started, "highspy",
                          settings.engine, version, message, duals=duals)
    return PricedLP(result, active, rounds)

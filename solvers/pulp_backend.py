"""PuLP backend: the same arrays handed to CBC (or HiGHS) through PuLP.

PuLP has no array interface, so the build loops over rows; it is the slower, independent second
opinion, not the default.
"""

from __future__ import annotations

import math
import os
import re
import signal
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

# OR-Tools' solvers must be loaded before PuLP: PuLP's import loads highspy's HiGHS, and an OR-Tools loaded
# after it segfaults in its first Solve (reproduced: `import pulp`, then the ortools/highs backend).
import solvers.ortools_backend  # noqa: E402,F401  (load order only)
import pulp  # noqa: E402

from solvers.base import HIGHS_THREADS, SolverResult, SolverSettings, Status
from solvers.quiet import quiet_native_output


def build(model, relax: bool) -> tuple[pulp.LpProblem, list[pulp.LpVariable]]:
    problem = pulp.LpProblem("placement", pulp.LpMinimize)
    lower, upper, integer = model.lower, model.upper, model.integer
    variables = [
        problem.add_variable(
            f"v{j}",
            lowBound=None if math.isinf(lower[j]) else float(lower[j]),
            upBound=None if math.isinf(upper[j]) else float(upper[j]),
            cat=pulp.LpInteger if (integer[j] and not relax) else pulp.LpContinuous,
        )
        for j in range(model.num_variables)
    ]
    cost = model.cost
    problem += pulp.LpAffineExpression(
        [(variables[j], float(cost[j])) for j in np.flatnonzero(cost)], constant=float(model.objective_offset)
    )
    matrix = model.matrix()
    row_lower, row_upper = model.row_lower, model.row_upper
    for i in range(model.num_constraints):
        lo, hi = matrix.indptr[i], matrix.indptr[i + 1]
        terms = [(variables[j], float(c)) for j, c in zip(matrix.indices[lo:hi], matrix.data[lo:hi])]
        expression = pulp.LpAffineExpression(terms)
        if row_lower[i] == row_upper[i]:
            problem += pulp.LpConstraint(expression, pulp.LpConstraintEQ, f"r{i}", float(row_lower[i]))
            continue
        if not math.isinf(row_lower[i]):
            problem += pulp.LpConstraint(expression, pulp.LpConstraintGE, f"r{i}_lo", float(row_lower[i]))
        if not math.isinf(row_upper[i]):
            problem += pulp.LpConstraint(expression, pulp.LpConstraintLE, f"r{i}_hi", float(row_upper[i]))
    return problem, variables


def _solver(settings: SolverSettings, log_path: str):
    # CBC is given `threads` only above 1: PuLP's bundled CBC 2.10.3 with `threads 1` now and then sat idle
    # until its time limit on a three-variable model (2 runs in 100; 0 in 100 without it, or with 2)
    cbc_threads = settings.threads if settings.threads > 1 else None
    common = dict(msg=False, timeLimit=settings.time_limit_s, gapRel=settings.mip_gap,
                  threads=cbc_threads if settings.engine == "cbc" else HIGHS_THREADS)
    if settings.engine == "cbc":
        # PuLP's bundled CBC binary; PuLP 4 moves it to the pulp[cbc] extra (pyproject pins pulp < 4).
        # Heuristics off: PuLP's bundled CBC 2.10.3 can stop at a heuristic's solution at the root and
        # call it optimal (found by tests/test_properties.py; kept there as an explicit example).
        return pulp.PULP_CBC_CMD(logPath=log_path, options=["randomSeed 1", "randomCbcSeed 1", "heur off"], **common)
    if settings.engine == "highs":
        return pulp.HiGHS(**common)
    raise ValueError(f"pulp backend has no engine {settings.engine!r}")


# The bundled CBC 2.10.3 does not hold its time limit: strong branching at one node and its clean-up after
# "Exiting on maximum time" are not interrupted (1,000 workloads, 30 s asked: B&B left at 103 s, the process
# at 261 s; SIGINT is ignored there too). So a CBC process still running this long after its limit is killed;
# the solve then returns no solution, and the caller keeps the plan it started from (PuLP has no start for it).
OVERRUN_GRACE_S = 5.0


class _Watchdog:
    """Kills the CBC processes this process started once `limit` + OVERRUN_GRACE_S seconds have passed, and
    any it starts after that, until cancelled (Linux /proc; elsewhere it does nothing)."""

    def __init__(self, limit: float):
        self.fired = False
        self.stop = threading.Event()
        self.deadline = time.perf_counter() + float(limit) + OVERRUN_GRACE_S
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def cancel(self) -> None:
        self.stop.set()

    def _watch(self) -> None:
        if self.stop.wait(max(self.deadline - time.perf_counter(), 0.0)):
            return
        while not self.fired and not self.stop.wait(0.2):
            for pid in _cbc_children():
                try:
                    os.kill(pid, signal.SIGKILL)
                    self.fired = True
                except OSError:
                    pass


def _cbc_children() -> list[int]:
    """Process ids of this process's children whose command is cbc."""
    me = str(os.getpid())
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.find("(") + 1:stat.rfind(")")], stat[stat.rfind(")") + 2:].split()
        if len(rest) > 1 and rest[1] == me and name.startswith("cbc"):
            found.append(int(entry))
    return found


def _cbc_bound(text: str, objective: float | None) -> float | None:
    """The bound CBC proved, from its log: 'Lower bound:' when it stopped within a gap or at a limit (printed
    rounded, so lowered by half a unit of its last digit); the objective itself only when CBC says it
    found the optimum with no gap left. Never the incumbent otherwise."""
    found = re.findall(r"Lower bound:\s*([-+0-9.]+)(?:[eE]([-+]?[0-9]+))?", text)
    if found:
        digits, exponent = found[-1]
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        half_unit = 0.5 * 10.0 ** (-decimals) * (10.0 ** int(exponent) if exponent else 1.0)
        return float(digits) * (10.0 ** int(exponent) if exponent else 1.0) - half_unit
    if objective is not None and "Result - Optimal solution found" in text and "within gap tolerance" not in text:
        return objective
    return None


def solve(model, settings: SolverSettings, start=None) -> SolverResult:
    started = time.perf_counter()
    problem, variables = build(model, settings.relax_integrality)
    with tempfile.TemporaryDirectory(prefix="placement-cbc-") as folder:
        log_path = str(Path(folder) / "cbc.log")
        solver = _solver(settings, log_path)
        if not solver.available():
            return SolverResult(Status.NO_SOLUTION, None, None, None, time.perf_counter() - started, "pulp",
                                settings.engine, f"pulp {pulp.__version__}",
                                f"PuLP cannot run {settings.engine} here (is its package installed?)")
        watchdog = _Watchdog(settings.time_limit_s) if settings.engine == "cbc" else None
        try:
            with quiet_native_output():
                problem.solve(solver)
        except pulp.PulpSolverError as exc:
            message = (f"CBC ran {OVERRUN_GRACE_S:.0f} s past its {settings.time_limit_s:.1f} s limit and was stopped"
                       if watchdog is not None and watchdog.fired else str(exc))
            return SolverResult(Status.NO_SOLUTION, None, None, None, time.perf_counter() - started,
                                "pulp", settings.engine, f"pulp {pulp.__version__}", message)
        finally:
            if watchdog is not None:
                watchdog.cancel()
        try:
            log_text = Path(log_path).read_text(errors="replace")
        except OSError:
            log_text = ""
    status = _status(problem)
    x = None
    objective = bound = None
    if status in (Status.OPTIMAL, Status.FEASIBLE):
        x = np.array([v.value() if v.value() is not None else 0.0 for v in variables], dtype=float)
        objective = float(model.cost @ x + model.objective_offset)
        # a proven bound only: CBC's from its log; PuLP's HiGHS gives none, so the caller falls back on the
        # LP relaxation's
        bound = (_cbc_bound(log_text, objective) if settings.engine == "cbc" and not settings.relax_integrality else
                 (objective if settings.relax_integrality and status == Status.OPTIMAL else None))
    # CBC's own verdict and timing with PuLP's status, so a plan that is only `feasible` says why
    verdict = [line.strip() for line in log_text.splitlines() if line.startswith(("Result -", "Total time"))]
    return SolverResult(status, x, objective, bound, time.perf_counter() - started,
                        "pulp", settings.engine, f"pulp {pulp.__version__} ({settings.engine})",
                        "; ".join([pulp.LpStatus.get(problem.status, ""), *verdict]))


def _status(problem: pulp.LpProblem) -> Status:
    if problem.sol_status == pulp.LpSolutionOptimal:
        return Status.OPTIMAL
    if problem.sol_status == pulp.LpSolutionIntegerFeasible:
        return Status.FEASIBLE
    if problem.status == pulp.LpStatusInfeasible or problem.sol_status == pulp.LpSolutionInfeasible:
        return Status.INFEASIBLE
    if problem.status == pulp.LpStatusUnbounded:
        return Status.UNBOUNDED
    return Status.NO_SOLUTION

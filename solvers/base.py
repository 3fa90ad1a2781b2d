"""Types shared by every backend."""

from __future__ import annotations

import enum
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class Status(str, enum.Enum):
    OPTIMAL = "optimal"          # proven optimal within the requested gap
    FEASIBLE = "feasible"        # a solution, not proven optimal (limit reached)
    INFEASIBLE = "infeasible"    # proven infeasible
    NO_SOLUTION = "no_solution"  # limit reached with no solution, or the solver failed
    UNBOUNDED = "unbounded"


# Every HiGHS run asks for one thread. HiGHS gives each Python thread one task scheduler, sized by the first
# run in it; a later run in that thread asking another count fails with no solution (reproduced: a solve at
# 1 thread, then one at 2 in the same process, exit 4). HiGHS's MIP and simplex gain little from more, so
# `threads` is placement's own parallelism instead: that many fix-and-optimize windows at once, each on a
# HiGHS of one thread in a new Python thread. SCIP and CP-SAT take `threads` themselves, CBC its own process.
HIGHS_THREADS = 1

# `threads: auto` (the default) uses the CPUs this process may run on, at most this many. Measured at
# 1,000 x 4 x 3: two threads prove the default gap in 68-72 s where one needs 112-118 s and is cut short
# at 120 s about half the time. Each thread holds a HiGHS of its own (a node LP of the blocks' search, a
# window's MIP: 1.57 GB peak there on two, 2.25 GB on four). Beyond two the speed was not measured (this
# machine has two cores: four threads there still end optimal, in 77 s); four: one per period window of a
# four-period horizon, the most that could ever run at once there.
AUTO_THREADS_MAX = 4


def available_cpus(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The CPUs this process may use: its affinity mask, less a container's CPU quota (cgroup v2
    `cpu.max`, "quota period"), which the mask does not show; at least 1."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = cgroup.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass                      # no cgroup v2 quota readable: the mask stands
    return max(1, cpus)


def resolve_threads(threads: int | str) -> int:
    """`auto` -> the CPUs available, at most AUTO_THREADS_MAX; a number stands as given."""
    return min(available_cpus(), AUTO_THREADS_MAX) if threads == "auto" else int(threads)


@dataclass(frozen=True)
class SolverSettings:
    backend: str = "highspy"
    engine: str = "highs"
    time_limit_s: float = 60.0
    mip_gap: float = 1e-4
    threads: int = 1
    relax_integrality: bool = False
    # False: the MIP is a proof search from a plan already near its bound (HiGHS's heuristic effort 0)
    mip_heuristics: bool = True


@dataclass
class SolverResult:
    status: Status
    x: np.ndarray | None
    objective: float | None
    bound: float | None
    solve_s: float
    backend: str
    engine: str
    version: str
    message: str = ""
    duals: np.ndarray | None = None   # row duals of an LP solved to optimality (backends that give them)
    # an LP's optimal basis, HiGHS's status codes (HighsBasisStatus) per column and per row, for a later LP
    # over the same rows to start from (the priced LP's, for the blocks' search)
    basis: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def has_solution(self) -> bool:
        return self.x is not None and self.status in (Status.OPTIMAL, Status.FEASIBLE)

    @property
    def gap(self) -> float | None:
        return None if self.objective is None else relative_gap(self.objective, self.bound)


def relative_gap(value: float, bound: float | None) -> float | None:
    """(value - bound) / max(|value|, 1e-9), never negative; None without a finite bound."""
    if bound is None or not math.isfinite(bound):
        return None
    return max(0.0, value - bound) / max(abs(value), 1e-9)

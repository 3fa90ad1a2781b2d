"""Types shared by every backend."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np


class Status(str, enum.Enum):
    OPTIMAL = "optimal"          # proven optimal within the requested gap
    FEASIBLE = "feasible"        # a solution, not proven optimal (limit reached)
    INFEASIBLE = "infeasible"    # proven infeasible
    NO_SOLUTION = "no_solution"  # limit reached with no solution, or the solver failed
    UNBOUNDED = "unbounded"


@dataclass(frozen=True)
class SolverSettings:
    backend: str = "ortools"
    engine: str = "highs"
    time_limit_s: float = 60.0
    mip_gap: float = 1e-4
    threads: int = 1
    relax_integrality: bool = False


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

    @property
    def has_solution(self) -> bool:
        return self.x is not None and self.status in (Status.OPTIMAL, Status.FEASIBLE)

    @property
    def gap(self) -> float | None:
        """Relative gap |objective - bound| / max(|objective|, 1e-9); 0 when both are 0."""
        if self.objective is None or self.bound is None or not math.isfinite(self.bound):
            return None
        return abs(self.objective - self.bound) / max(abs(self.objective), 1e-9)

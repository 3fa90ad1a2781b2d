"""Exit codes of the command-line contract and the one error type for bad input."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ExitCode(enum.IntEnum):
    OPTIMAL = 0        # a plan proven optimal within the requested gap
    FEASIBLE = 1       # a feasible plan, not proven optimal (time limit)
    INFEASIBLE = 2     # no plan meets every hard constraint; diagnosis written
    BAD_INPUT = 3      # the scenario or a table is invalid
    SOLVER_FAILURE = 4 # solver failure, or time limit with no plan


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where it is, what is wrong, and how to fix it."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"


class InputError(Exception):
    """Bad input (exit 3). Carries every problem found, so the user fixes them all in one pass."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, file: str, field: str, message: str) -> "InputError":
        return cls([Problem(file, field, message)])

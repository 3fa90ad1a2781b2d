"""Solver backends behind one small interface: `solve(model, settings) -> SolverResult`.

Each backend takes a `solvers.model.LinearModel` (arrays) and returns the raw solution vector with
status, objective, best bound and timings. Nothing here knows about placement.
"""

from __future__ import annotations

from solvers.base import SolverResult, SolverSettings, Status


def solve(model, settings: SolverSettings, start=None, stop=None) -> SolverResult:
    """Solve with the backend named in settings (imported lazily: a backend's package is loaded only when used).

    `model` is a LinearModel (assembled here) or an ArrayModel. `start`, a feasible solution vector, is
    handed to backends that can warm-start a MIP from it (others ignore it). `stop`, a function of a MIP's
    best objective so far, ends the search early (as `feasible`) once it returns True: HiGHS polls it while
    it searches; the other backends run to their limits.
    """
    if hasattr(model, "arrays"):
        model = model.arrays()
    if settings.backend == "highspy":
        from solvers.highs_backend import solve as backend_solve
    elif settings.backend == "ortools":
        from solvers.ortools_backend import solve as backend_solve
    elif settings.backend == "pulp":
        from solvers.pulp_backend import solve as backend_solve
    else:
        raise ValueError(f"unknown backend {settings.backend!r}")
    if settings.backend == "highspy":
        return backend_solve(model, settings, start=start, stop=stop)
    return backend_solve(model, settings, start=start)


__all__ = ["SolverResult", "SolverSettings", "Status", "solve"]

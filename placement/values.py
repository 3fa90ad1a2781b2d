"""What capacity is worth, exactly, by re-solving (`placement solve --values`).

For every capped pool: how much the optimal objective falls when its cap rises by one step
(`plus_per_hour`) and rises when it falls by one step (`minus_per_hour`, null when that is
infeasible). A step is one block for reserved pools, one replica's chips otherwise (the smallest
replica of the pool's accelerator in the plan, else among the candidate deployments).

For every priced pool, `break_even_price`: the price per chip-hour at which the optimal plan starts
(pool unused now) or stops (pool used now) using the pool. The optimal cost f(p) as a function of
the pool's price is the lower envelope of lines (one per plan: cost without the pool + p x chips
billed), so concave and piecewise linear; g, the cost with the pool forbidden, is where it ends. The
search is Newton's method on f(p) = g from the left: from a plan billed c chips at price p, the next
price is where that plan's line meets g. Each step passes at least one breakpoint, and the first
price where the re-solved cost reaches g is the break-even, exactly (to the solver's gap).

The LP relaxation's dual of each cap is the continuous approximation the contract labels
`lp_dual_per_chip_hour`; it needs duals from the formulation, so it is null here, with a note.
(Fixing the integers and re-solving would zero every cap dual in this formulation: not a price.)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from placement.edits import edit_loaded
from placement.errors import InputError
from placement.scenario import LoadedScenario
from solvers import SolverSettings

VALUES_GAP = 1e-7          # marginal values are differences of optima: solve them tightly
MAX_NEWTON_STEPS = 25
LP_DUAL_NOTE = ("lp_dual_per_chip_hour: null until the formulation exposes the LP relaxation's duals; "
                "plus_per_hour and minus_per_hour are exact (re-solved)")


def capacity_values(loaded: LoadedScenario, settings: SolverSettings | None = None,
                    plan: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """capacity_values rows (one per capped pool) and notes. `plan`: the plan already solved, whose
    replicas size the steps; the base is re-solved at the tight gap every difference is taken at."""
    from placement.solve import settings_from

    settings = settings or settings_from(loaded.scenario)
    settings = replace(settings, mip_gap=min(settings.mip_gap, VALUES_GAP))
    base_plan = _solve(loaded, settings)
    if base_plan is None:
        return [], ["capacity values need a feasible base plan"]
    base = base_plan["objective"]["value"]
    notes = [LP_DUAL_NOTE]
    rows = []
    for pool in loaded.scenario.pools:
        step = step_chips(loaded, pool.id, plan or base_plan)
        plus = _objective_with_cap(loaded, settings, pool.id, pool.max_chips + step)
        minus = (_objective_with_cap(loaded, settings, pool.id, pool.max_chips - step)
                 if pool.max_chips - step >= 0 else None)
        row = {"pool": pool.id, "period": None, "step_chips": step,
               "plus_per_hour": None if plus is None else _round(base - plus),
               "minus_per_hour": None if minus is None else _round(minus - base),
               "lp_dual_per_chip_hour": None}
        if pool.kind != "prepaid" and pool.price_per_chip_hour is not None:
            row["break_even_price"], note = break_even_price(loaded, settings, pool.id, base_plan)
            if note:
                notes.append(f"{pool.id}: {note}")
        rows.append(row)
    return rows, notes


def step_chips(loaded: LoadedScenario, pool_id: str, plan: dict[str, Any] | None) -> int:
    """One block for reserved pools; else the smallest replica of the pool's accelerator in the plan,
    else among the candidates, else 1."""
    pool = next(p for p in loaded.scenario.pools if p.id == pool_id)
    if pool.kind == "reserved":
        return pool.block_chips
    sizes = [r.get("chips_per_replica") for r in (plan or {}).get("replicas") or []
             if r.get("accelerator") == pool.accelerator and r.get("chips_per_replica")]
    if not sizes:
        from placement.solve import prepare

        _, _, candidates = prepare(loaded)
        sizes = candidates.loc[candidates["accelerator"] == pool.accelerator, "chips_per_replica"].tolist()
    return int(min(sizes)) if sizes else 1


def break_even_price(loaded: LoadedScenario, settings: SolverSettings, pool_id: str,
                     base_plan: dict[str, Any]) -> tuple[float | None, str]:
    """The price per chip-hour where the optimal plan starts or stops using the pool (see module doc).

    Returns (price, note); price None with the reason when there is none (needed at any price, or
    unused even when free).
    """
    pool = next(p for p in loaded.scenario.pools if p.id == pool_id)
    used_now = _billed_chips(base_plan, pool_id) > 0
    without = _objective_with_cap(loaded, settings, pool_id, 0)
    if without is None:
        return None, "needed at any price (no plan without it)"
    if used_now:
        price, plan = pool.price, base_plan
    else:
        price, plan = 0.0, _solve(_with_price(loaded, pool_id, 0.0), settings)
        if plan is None or _billed_chips(plan, pool_id) == 0:
            return None, "unused even when free"
    for _ in range(MAX_NEWTON_STEPS):
        chips = _billed_chips(plan, pool_id)
        cost = plan["objective"]["value"]
        if chips == 0 or cost >= without - _tolerance(without):
            return _round(price), ""
        rest = cost - price * chips           # the plan's cost apart from this pool
        price = (without - rest) / chips      # where this plan's line meets the cost without the pool
        plan = _solve(_with_price(loaded, pool_id, price), settings)
        if plan is None:
            return None, "a re-solve failed during the search"
    return _round(price), f"search stopped after {MAX_NEWTON_STEPS} steps"


def _billed_chips(plan: dict[str, Any], pool_id: str) -> int:
    row = next((p for p in plan.get("pools") or [] if p.get("pool") == pool_id), None)
    return int(row.get("chips_committed", row.get("chips_used")) or 0) if row else 0


def _with_price(loaded: LoadedScenario, pool_id: str, price: float) -> LoadedScenario:
    return edit_loaded(loaded, {f"pools[{pool_id}].price_per_chip_hour": price}, label="--values")


def _objective_with_cap(loaded: LoadedScenario, settings: SolverSettings, pool_id: str, cap: int) -> float | None:
    plan = _solve(edit_loaded(loaded, {f"pools[{pool_id}].max_chips": cap}, label="--values"), settings)
    return None if plan is None else plan["objective"]["value"]


def _solve(loaded: LoadedScenario, settings: SolverSettings) -> dict[str, Any] | None:
    """The plan document, or None when there is no plan (infeasible, no solution)."""
    from placement.api import solve_scenario

    try:
        result = solve_scenario(loaded, settings, baselines=False, explain=False)
    except InputError:
        return None
    plan = result.plan
    if plan.get("status") not in ("optimal", "feasible") or result.violations:
        return None
    return plan


def _tolerance(value: float) -> float:
    return 1e-6 * max(1.0, abs(value))


def _round(value: float) -> float:
    return round(float(value), 6)

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
`lp_dual_per_chip_hour`: the rows' duals from HiGHS, mapped back through the rows' coordinates
(pool, period, slice), one more chip of max_chips(p, t) being worth the sum over slices of
availability(s) x the slice row's dual (for reserved pools: the contract-cap row's), per hour of the
period. It is labelled an approximation: whole replicas and blocks make the exact values above differ.
(Fixing the integers and re-solving would zero every cap dual in this formulation: not a price.)

With several periods, the exact values are per (pool, period): the cap of that period alone moves.
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
LP_DUAL_NOTE = ("lp_dual_per_chip_hour is the LP relaxation's dual of the cap (a continuous approximation, "
                "currency per chip-hour); plus_per_hour and minus_per_hour are exact (re-solved)")


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
    duals = lp_duals(loaded, settings)
    periods = [p.id for p in loaded.scenario.periods] if loaded.scenario.periods else [None]
    rows = []
    for pool in loaded.scenario.pools:
        step = step_chips(loaded, pool.id, plan or base_plan)
        break_even = None
        if pool.kind != "prepaid" and pool.price_per_chip_hour is not None:
            break_even, note = break_even_price(loaded, settings, pool.id, base_plan)
            if note:
                notes.append(f"{pool.id}: {note}")
        for period in periods:
            cap = pool.cap(period) if period is not None else pool.peak_chips
            plus = _objective_with_cap(loaded, settings, pool.id, cap + step, period)
            minus = _objective_with_cap(loaded, settings, pool.id, cap - step, period) if cap - step >= 0 else None
            row = {"pool": pool.id, "period": period, "step_chips": step,
                   "plus_per_hour": None if plus is None else _round(base - plus),
                   "minus_per_hour": None if minus is None else _round(minus - base),
                   "lp_dual_per_chip_hour": duals.get((pool.id, period))}
            if break_even is not None or (pool.kind != "prepaid" and pool.price_per_chip_hour is not None):
                row["break_even_price"] = break_even
            rows.append(row)
    return rows, notes


def lp_duals(loaded: LoadedScenario, settings: SolverSettings) -> dict[tuple[str, str | None], float]:
    """Per (pool, period): what one more chip of max_chips is worth in the LP relaxation, per chip-hour
    (period None for a single-period scenario). From HiGHS's row duals of the cap rows."""
    import numpy as np

    import solvers
    from placement.formulation import build_model
    from placement.indexsets import build_index_sets
    from placement.solve import prepare

    table, cells, candidates = prepare(loaded)
    sets = build_index_sets(loaded.scenario, cells, candidates)
    model = build_model(sets)
    arrays = model.arrays()
    # the integer variables' upper bounds repeat the caps (a tightening for the MIP); in the LP the rows alone
    # must carry them, or a bound takes the price and the row's dual reads 0
    upper = arrays.upper.copy()
    for name in ("replicas", "fleet", "blocks"):
        if name in model.variables:
            upper[model.variables[name].columns] = np.inf
    arrays = replace(arrays, upper=upper)
    relaxed = solvers.solve(arrays.relaxed(), replace(settings, backend="highspy", engine="highs",
                                                      relax_integrality=True))
    if relaxed.duals is None:
        return {}
    single = loaded.scenario.periods is None
    hours = dict(zip(sets.horizon.period_ids, sets.horizon.hours))
    availability = {(p, s): sets.availability[i, j] for i, p in enumerate(sets.pools["pool"])
                    for j, s in enumerate(sets.horizon.slice_ids)}
    values: dict[tuple[str, str | None], float] = {}
    for name in model.constraints:
        if not (name.startswith("Pool-") and (name.endswith("-slice-cap") and "reserved" not in name
                                              or name == "Pool-reserved-contract-cap")):
            continue
        frame = model.row_values(name, relaxed.duals)
        weight = (frame.apply(lambda r: availability[(r["pool"], r["slice"])], axis=1)
                  if "slice" in frame.columns else 1.0)
        frame = frame.assign(worth=-frame["value"] * weight)
        for (pool, period), worth in frame.groupby(["pool", "period"], sort=False)["worth"].sum().items():
            values[(pool, None if single else period)] = _round(float(worth) / hours[period]) + 0.0
    return {k: (0.0 if abs(v) < 1e-12 else v) for k, v in values.items() if np.isfinite(v)}


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
    used_now = _billed_per_hour(base_plan, pool_id) > 0
    without = _objective_with_cap(loaded, settings, pool_id, 0)
    if without is None:
        return None, "needed at any price (no plan without it)"
    if used_now:
        price, plan = pool.price, base_plan
    else:
        price, plan = 0.0, _solve(_with_price(loaded, pool_id, 0.0), settings)
        if plan is None or _billed_per_hour(plan, pool_id) == 0:
            return None, "unused even when free"
    for _ in range(MAX_NEWTON_STEPS):
        slope = _billed_per_hour(plan, pool_id)
        cost = plan["objective"]["value"]
        if slope == 0 or cost >= without - _tolerance(without):
            return _round(price), ""
        rest = cost - price * slope           # the plan's cost apart from this pool
        price = (without - rest) / slope      # where this plan's line meets the cost without the pool
        plan = _solve(_with_price(loaded, pool_id, price), settings)
        if plan is None:
            return None, "a re-solve failed during the search"
    return _round(price), f"search stopped after {MAX_NEWTON_STEPS} steps"


def _billed_per_hour(plan: dict[str, Any], pool_id: str) -> float:
    """How much the plan's objective (currency per hour of the horizon) moves per unit of the pool's price:
    the chip-hours it bills there (every period and slice, reserved terms beyond the horizon included)
    over the horizon's hours. Exact for any number of periods: each pool kind's cost is linear in its price."""
    row = next((p for p in (plan.get("cost") or {}).get("by_pool") or [] if p.get("pool") == pool_id), None)
    hours = sum(p["hours"] for p in plan.get("periods") or [])
    return float(row.get("billed_chip_hours") or 0.0) / hours if row and hours > 0 else 0.0


def _with_price(loaded: LoadedScenario, pool_id: str, price: float) -> LoadedScenario:
    return edit_loaded(loaded, {f"pools[{pool_id}].price_per_chip_hour": price}, label="--values")


def _objective_with_cap(loaded: LoadedScenario, settings: SolverSettings, pool_id: str, cap: int,
                        period: str | None = None) -> float | None:
    """The optimum with one pool's cap set (in one period only, when `period` is given)."""
    pool = next(p for p in loaded.scenario.pools if p.id == pool_id)
    if period is None:
        edit = {f"pools[{pool_id}].max_chips": cap}
    elif isinstance(pool.max_chips, dict):
        edit = {f"pools[{pool_id}].max_chips.{period}": cap}
    else:  # a number for every period: write it out per period, this one changed
        edit = {f"pools[{pool_id}].max_chips": {p.id: (cap if p.id == period else pool.max_chips)
                                                for p in loaded.scenario.periods}}
    try:
        edited = edit_loaded(loaded, edit, label="--values")
    except InputError:
        return None
    plan = _solve(edited, settings)
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

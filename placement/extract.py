"""From the solver's vector to a plan in labelled frames: routing, replicas, fleet, pools, commitments, cost.

Every row carries its period and slice. The vector is normalized by documented rules so plans do not
depend on how a solver spent zero-cost slack: shares below noise are 0; replicas beyond what each
(deployment, period, slice) load needs are removed from the dearest pool first; reserved purchases are
re-chosen as the cheapest whole blocks that hold the chips the trimmed plan uses. Costs are recomputed
from the rows, by each pool kind's own rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from placement.capacity_types import KINDS, reserved
from placement.formulation import SECONDS_PER_HOUR, per_use_price
from placement.indexsets import IndexSets

SHARE_EPS = 1e-9       # shares below this are numerical noise, reported as 0
REPLICA_EPS = 1e-6     # load within this of an integer needs no extra replica


@dataclass
class Solution:
    """A plan in frames labelled by the index sets, plus its cost recomputed from the rows."""

    routing: pd.DataFrame
    unserved: pd.DataFrame
    replicas: pd.DataFrame
    fleet: pd.DataFrame
    pools: pd.DataFrame
    commitments: pd.DataFrame
    by_period: pd.DataFrame       # per period: pools cost, churn cost, shedding penalty, total
    churn: pd.DataFrame           # per period: chips moved, cost
    total: float                  # horizon total: pools + beyond-horizon terms + churn + shedding penalty
    beyond_horizon: float         # reserved terms paid after the last period
    total_hours: float
    fixed: float                  # sunk: signed contracts and prepaid fixed_cost over the horizon
    extra: dict = field(default_factory=dict)
    # per pool: chip-hours billed at its price, beyond-horizon terms included; the plan's cost moves by
    # this much per unit of the pool's price (what a break-even search needs, any number of periods)
    billed_chip_hours: dict = field(default_factory=dict)
    beyond_by_pool: dict = field(default_factory=dict)   # per reserved pool: its terms paid after the last period

    @property
    def pools_total(self) -> float:
        return float(self.by_period["pools"].sum() + self.beyond_horizon)

    @property
    def unserved_total(self) -> float:
        return float(self.by_period["unserved_penalty"].sum())

    @property
    def cost_per_hour(self) -> float:
        """Pool cost per hour of the horizon (what capacity costs, shedding apart)."""
        return self.pools_total / self.total_hours

    @property
    def unserved_cost_per_hour(self) -> float:
        return self.unserved_total / self.total_hours

    @property
    def objective(self) -> float:
        """Currency per hour: the horizon total over the horizon's hours."""
        return self.total / self.total_hours


def extract(model, sets: IndexSets, x: np.ndarray, solver_blocks: np.ndarray | None = None) -> Solution:
    fleet = np.round(model.array("fleet", x)).clip(min=0) if "fleet" in model.variables else None
    return solution_from_arrays(sets, model.array("share", x), np.round(model.array("replicas", x)).clip(min=0),
                                fleet, solver_blocks)


def solution_from_arrays(sets: IndexSets, share: np.ndarray, placed: np.ndarray, fleet: np.ndarray | None = None,
                         solver_blocks: np.ndarray | None = None, bought: np.ndarray | None = None) -> Solution:
    """The plan from decisions laid out on the index sets: share (arcs, T, S), replicas (placements, T, S),
    fleet (placements, T; None = each period's largest slice) and, when decided elsewhere (a rolling
    horizon's committed purchases), blocks bought per (pool, period), kept as given."""
    horizon = sets.horizon
    periods, slices = np.array(horizon.period_ids, dtype=object), np.array(horizon.slice_ids, dtype=object)
    T, S = len(periods), len(slices)
    share = np.clip(share, 0.0, 1.0)
    share[share < SHARE_EPS] = 0.0
    arcs, cells = sets.arcs, sets.cells
    cell = arcs["cell"].to_numpy()
    rate = sets.rates[cell]                                            # (A, T, S)
    a, t, s = np.nonzero(share)
    routing = arcs.iloc[a].reset_index(drop=True).assign(
        period=periods[t], slice=slices[s], share=share[a, t, s], requests_per_s=rate[a, t, s] * share[a, t, s])
    routing = routing.merge(cells[["input_tokens", "output_tokens"]], left_on="cell", right_index=True, how="left")

    served = np.zeros(sets.rates.shape)
    np.add.at(served, cell, share)
    unserved_share = np.clip(1.0 - served, 0.0, 1.0)
    unserved_share[unserved_share < SHARE_EPS] = 0.0
    c, t, s = np.indices(sets.rates.shape).reshape(3, -1)
    unserved = cells[["workload", "bucket"]].iloc[c].reset_index(drop=True).assign(
        period=periods[t], slice=slices[s], share=unserved_share.ravel(),
        requests_per_s=(sets.rates * unserved_share).ravel())
    penalty = (sets.rates * unserved_share * SECONDS_PER_HOUR
               * cells["unserved_cost_per_request"].to_numpy()[:, None, None] * horizon.duration[None])

    usable = arcs["replica_requests_per_s"].to_numpy() * (1.0 - cells["headroom"].to_numpy()[cell])
    load = np.zeros((len(sets.deployments), T, S))
    np.add.at(load, arcs["deployment"].to_numpy(), rate * share / usable[:, None, None])
    needed = np.ceil(load - REPLICA_EPS).clip(min=0)
    running = trim_replicas(sets, placed, needed)                      # (placements, T, S)
    tracked = fleet is not None
    if not tracked:         # untracked: each period's largest slice
        fleet = running.max(axis=2)
    else:                   # the solver's, held to spare churn: the trim must not undercut it
        running = keep_rented_fleet_running(sets, placed, running, fleet)
    replicas = _replica_rows(sets, running, periods, slices, load)
    fleet_rows = _fleet_rows(sets, fleet, periods)

    chips = sets.placement_chips
    pool_of = sets.placements["pool_position"].to_numpy()
    used = np.zeros((len(sets.pools), T, S))
    np.add.at(used, pool_of, running * chips[:, None, None])
    held = np.zeros((len(sets.pools), T))     # chips each pool's fleet holds, when it is the solver's
    if tracked:
        np.add.at(held, pool_of, fleet * chips[:, None])
    bought = choose_blocks(sets, np.maximum(used.max(axis=2), held), solver_blocks) if bought is None else bought
    pools, commitments, paid, beyond_by_pool, billed = _pool_rows(sets, used, bought, periods)
    beyond = float(sum(beyond_by_pool.values()))
    churn = _churn(sets, fleet, periods)
    by_period = pd.DataFrame({"period": periods, "pools": paid.sum(axis=0), "churn": churn["cost"].to_numpy(),
                              "unserved_penalty": penalty.sum(axis=(0, 2)), "hours": horizon.hours})
    by_period["total"] = by_period["pools"] + by_period["churn"] + by_period["unserved_penalty"]
    for i, pool in enumerate(pools["pool"].unique()):
        by_period[f"pool:{pool}"] = paid[i]
    total = float(by_period["total"].sum() + beyond)
    fixed = _fixed_cost(sets)
    return Solution(routing, unserved, replicas, fleet_rows, pools, commitments, by_period, churn, total, beyond,
                    horizon.total_hours, fixed, billed_chip_hours=billed, beyond_by_pool=beyond_by_pool)


def trim_replicas(sets: IndexSets, placed: np.ndarray, needed: np.ndarray) -> np.ndarray:
    """Drop replicas beyond what each (deployment, period, slice) needs, from the dearest pool first.

    Dearest = highest price per chip-hour (prepaid and reserved count 0: already paid), ties by later pool
    position. Trimming never raises cost and never breaks a constraint.
    """
    placements = sets.placements
    price = per_use_price(sets)                    # each pool kind's own rule (capacity_types)
    order = np.lexsort((placements["pool_position"].to_numpy(), price[placements["pool_position"].to_numpy()],
                        placements["deployment"].to_numpy()))
    deployment = placements["deployment"].to_numpy()[order]
    ordered = placed[order]
    cumulative = np.cumsum(ordered, axis=0)
    # cumulative replicas within each deployment's group, cheapest first
    starts = np.r_[0, np.flatnonzero(np.diff(deployment)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(deployment)]))
    offset = np.where(group_start[:, None, None] > 0, cumulative[np.maximum(group_start - 1, 0)], 0.0)
    before = cumulative - ordered - offset
    kept = np.clip(needed[deployment] - before, 0, ordered)
    out = np.empty_like(placed)
    out[order] = kept
    return out


def keep_rented_fleet_running(sets: IndexSets, placed: np.ndarray, running: np.ndarray,
                              fleet: np.ndarray) -> np.ndarray:
    """A fleet on rented chips runs, and is paid, in its largest slice (the model's N <= n[s*]): a churn
    limit or price may hold it above the load, and the trim must not drop that slice below it, or the plan
    would hold replicas nobody pays for."""
    rented = np.flatnonzero(per_use_price(sets)[sets.placements["pool_position"].to_numpy()] > 0)
    if not rented.size:
        return running
    rows, periods = rented[:, None], np.arange(placed.shape[1])[None, :]
    peak = placed[rented].argmax(axis=2)                                       # (rented, T): the slice s*
    out = running.copy()
    out[rows, periods, peak] = np.maximum(running[rows, periods, peak],
                                          np.minimum(fleet[rented], placed[rows, periods, peak]))
    return out


def choose_blocks(sets: IndexSets, held: np.ndarray, solver_blocks: np.ndarray | None) -> np.ndarray:
    """Blocks bought per (reserved pool, period): the cheapest whole blocks holding the chips `held`
    (pools, T): the most any slice runs, or the fleet held there to spare churn if more.

    Single period: ceil(held / block) - signed. Several: the solver's purchases, lowered greedily from the
    last period back while every active window still holds those chips (so a trimmed plan never pays for
    blocks it no longer needs).
    """
    positions = np.flatnonzero(sets.pools["kind"].to_numpy() == "reserved")
    T = held.shape[1]
    bought = np.zeros((len(sets.pools), T))
    if not len(positions):
        return bought
    block = sets.pools["block_chips"].to_numpy(dtype=float)
    need = np.ceil(held / block[:, None] - 1e-9) - sets.committed               # blocks to buy, per period
    active = reserved.window(sets, positions)                                     # (R, tau, t)
    for r, p in enumerate(positions):
        if T == 1 or solver_blocks is None:
            bought[p] = np.maximum(need[p], 0) if T == 1 else 0
            continue
        k = np.round(solver_blocks[r]).clip(min=0)
        for tau in reversed(range(T)):
            while k[tau] > 0:
                k[tau] -= 1
                if np.all(active[r].T.astype(float) @ k >= need[p] - 1e-9):
                    continue
                k[tau] += 1
                break
        bought[p] = k
    return bought


def _replica_rows(sets, running, periods, slices, load) -> pd.DataFrame:
    d, t, s = np.nonzero(running)
    placements = sets.placements.iloc[d].reset_index(drop=True)
    deployments = sets.deployments.iloc[placements["deployment"].to_numpy()].reset_index(drop=True)
    chips = deployments["chips_per_replica"].to_numpy()
    return pd.DataFrame({
        "model": deployments["model"], "accelerator": deployments["accelerator"],
        "chips_per_replica": chips, "pool": placements["pool"], "period": periods[t], "slice": slices[s],
        "replicas": running[d, t, s].astype(int), "chips": (running[d, t, s] * chips).astype(int),
        "deployment": placements["deployment"], "load_replicas": load[placements["deployment"].to_numpy(), t, s],
    })


def _fleet_rows(sets, fleet, periods) -> pd.DataFrame:
    d, t = np.nonzero(fleet)
    placements = sets.placements.iloc[d].reset_index(drop=True)
    deployments = sets.deployments.iloc[placements["deployment"].to_numpy()].reset_index(drop=True)
    return pd.DataFrame({
        "model": deployments["model"], "accelerator": deployments["accelerator"],
        "chips_per_replica": deployments["chips_per_replica"], "pool": placements["pool"], "period": periods[t],
        "replicas": fleet[d, t].astype(int),
    })


def _pool_rows(sets, used, bought, periods):
    """Per (pool, period): chips used (largest slice), committed, cap, cost paid in the period, by kind."""
    horizon = sets.horizon
    rows, commitments = [], []
    paid = np.zeros((len(sets.pools), len(periods)))
    beyond = {}
    billed = {}
    pools = sets.pools
    for i, pool in enumerate(pools.itertuples(index=False)):
        largest = used[i].max(axis=1)
        block = pool.block_chips
        at_unit_price = pool._replace(price_per_chip_hour=1.0)
        if pool.kind == "reserved":
            active_blocks = sets.committed[i] + reserved.window(sets, np.array([i]))[0].T.astype(float) @ bought[i]
            committed = active_blocks * block
            paid[i], after = reserved.period_cost(pool, bought[i], horizon.hours)
            beyond[pool.pool] = float(after)
            unit, unit_after = reserved.period_cost(at_unit_price, bought[i], horizon.hours)
            billed[pool.pool] = float(unit.sum() + unit_after)
            for tau in np.flatnonzero(bought[i]):
                first = tau + pool.lead_periods
                last = first + pool.term_periods - 1
                commitments.append({
                    "pool": pool.pool, "bought_in": periods[tau], "blocks": int(bought[i, tau]),
                    "chips": int(bought[i, tau] * block), "first_period": periods[first],
                    "last_period": periods[last] if last < len(periods) else f"{periods[-1]}+{last - len(periods) + 1}",
                    "cost": float(bought[i, tau] * block * pool.price_per_chip_hour
                                  * sum(horizon.hours[min(first + j, len(periods) - 1)]
                                        for j in range(pool.term_periods))),
                })
        else:
            committed = largest
            paid[i] = KINDS[pool.kind].period_cost(pool, used[i], horizon.duration)
            billed[pool.pool] = float(KINDS[pool.kind].period_cost(at_unit_price, used[i], horizon.duration).sum())
        for t, period in enumerate(periods):
            cap = sets.caps[i, t]
            rows.append({
                "pool": pool.pool, "accelerator": pool.accelerator, "kind": pool.kind, "period": period,
                "chips_used": int(largest[t]), "chips_committed": int(committed[t]), "max_chips": int(cap),
                "utilization": float(largest[t] / cap) if cap > 0 else 0.0,
                "blocks": int(committed[t] / block) if pool.kind == "reserved" else 0, "block_chips": int(block),
                "cost": float(paid[i, t]), "per_hour": float(paid[i, t] / horizon.hours[t]),
                "fixed_cost": float(pool.fixed_cost),
            })
    return pd.DataFrame(rows), pd.DataFrame(commitments, columns=[
        "pool", "bought_in", "blocks", "chips", "first_period", "last_period", "cost"]), paid, beyond, billed


def _churn(sets, fleet, periods) -> pd.DataFrame:
    """Chips moved per period: sum over (deployment, pool) of chips x |N_t - N_{t-1}| (N_0 = running fleet)."""
    chips = sets.placement_chips.astype(float)
    before = np.concatenate([sets.fleet[:, None], fleet[:, :-1]], axis=1)
    moved = (np.abs(fleet - before) * chips[:, None]).sum(axis=0)
    if not sets.has_fleet:
        moved[0] = 0.0   # the first period builds from nothing: not churn
    return pd.DataFrame({"period": periods, "chips_moved": moved.astype(int), "cost": moved * sets.churn_cost,
                         "limit": sets.churn_limit})


def _fixed_cost(sets) -> float:
    """Sunk over the horizon: prepaid fixed_cost per period, and contracts already signed."""
    hours = sets.horizon.hours
    total = float(sets.pools["fixed_cost"].sum()) * len(hours)
    block = sets.pools["block_chips"].to_numpy(dtype=float)
    price = sets.pools["price_per_chip_hour"].to_numpy(dtype=float)
    total += float((sets.committed * (block * price)[:, None] * hours[None]).sum())
    return total

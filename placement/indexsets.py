"""Index sets of the MIP (formulation.md), derived from the scenario and the profile lookup.

cells (w, b), deployments d = (model, accelerator, chips_per_replica), arcs (w, b, d) with R > 0
that pass the model filters, pools p, and placements (d, p) with a(p) = accelerator of d; the horizon's
periods t and slices s are the dense dimensions every time-dependent block carries (rates[c, t, s],
caps[p, t], availability[p, s]). Arcs that can never be used are dropped here, and each drop is recorded
with its reason so an infeasible scenario can be explained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from placement.horizon import Horizon, build_horizon, cell_rates
from placement.profiles import DEPLOYMENT_KEY, model_eligibility
from placement.scenario import Scenario


@dataclass
class IndexSets:
    cells: pd.DataFrame        # per (workload, bucket): rate, shedding terms
    workloads: pd.DataFrame    # per workload: mean-quality floor
    deployments: pd.DataFrame  # per d: model, accelerator, chips_per_replica
    arcs: pd.DataFrame         # per usable (cell, d): R, quality score
    pools: pd.DataFrame        # per pool: kind, cap, block, price
    placements: pd.DataFrame   # per (d, pool)
    headroom: float
    dropped: pd.DataFrame      # candidate arcs removed before the build, with the reason
    max_shapes: int | None = None  # replica sizes allowed per (model, accelerator); None = any
    horizon: Horizon | None = None
    rates: np.ndarray | None = None         # (cells, T, S) req/s
    caps: np.ndarray | None = None          # (pools, T) chips each pool may hold per period
    availability: np.ndarray | None = None  # (pools, S) fraction of the cap obtainable per slice
    committed: np.ndarray | None = None     # (pools, T) blocks of signed contracts active per period
    fleet: np.ndarray | None = None         # (placements,) replicas running before the first period
    has_fleet: bool = False                 # churn of the first period counts against `fleet`
    churn_limit: np.ndarray | None = None   # (T,) chips moved per period, inf = no limit
    churn_cost: float = 0.0                 # currency per chip moved
    max_spot_share: float | None = None     # share of running chips that may be spot, per (period, slice)

    @property
    def track_fleet(self) -> bool:
        """The fleet N[d, p, t] is a variable only when churn is limited or priced."""
        return bool(np.isfinite(self.churn_limit).any() or self.churn_cost > 0)

    @property
    def placement_chips(self) -> np.ndarray:
        return self.deployments["chips_per_replica"].to_numpy()[self.placements["deployment"].to_numpy()]


def build_index_sets(
    scenario: Scenario,
    cells: pd.DataFrame,
    candidates: pd.DataFrame,
    accelerators: set[str] | None = None,
    prune: bool = True,
    require_fit: bool = True,
    horizon: Horizon | None = None,
) -> IndexSets:
    """Assemble the index sets; `accelerators` restricts to some chip types (single-type baselines).

    prune=False keeps deployments with no placement and arcs on them (their capacity is zero);
    it exists to test that pruning never changes the optimum. require_fit=False lets a replica be
    placed in a pool too small for it (the elastic diagnosis model buys the missing chips).
    """
    horizon = horizon or build_horizon(scenario)
    rates = cell_rates(scenario, cells, horizon)
    cells = _cell_table(scenario, cells)
    pools = _pool_table(scenario, accelerators)
    arcs = candidates.copy()
    if accelerators is not None:
        arcs = arcs[arcs["accelerator"].isin(accelerators)]
    arcs, dropped = _filter_arcs(scenario, cells, arcs)
    fleet = _fleet_table(scenario, pools)
    deployments = pd.concat([arcs[DEPLOYMENT_KEY], fleet[DEPLOYMENT_KEY]]).drop_duplicates()
    pool_columns = pools.reset_index(names="pool_position")[["pool", "accelerator", "max_chips", "pool_position"]]
    placements = deployments.merge(pool_columns, on="accelerator")
    if require_fit:  # a pool too small for a replica holds none, unless some run there today (they must move)
        running = placements.merge(fleet[[*DEPLOYMENT_KEY, "pool"]], on=[*DEPLOYMENT_KEY, "pool"], how="left",
                                   indicator=True)["_merge"].eq("both").to_numpy()
        placements = placements[(placements["chips_per_replica"] <= placements["max_chips"]).to_numpy() | running]
    if prune:
        placed = placements[DEPLOYMENT_KEY].drop_duplicates()
        marked = arcs.merge(placed, on=DEPLOYMENT_KEY, how="left", indicator=True)
        unplaced = (marked["_merge"] == "left_only").to_numpy()
        if unplaced.any():
            lost = arcs[unplaced].assign(reason="no pool of this accelerator can hold one replica")
            dropped = pd.concat([dropped, lost], ignore_index=True)
            arcs = arcs[~unplaced]
        deployments = placed
    deployments = deployments.sort_values(DEPLOYMENT_KEY, kind="mergesort").reset_index(drop=True)
    numbered = deployments.reset_index(names="deployment")
    arcs = arcs.merge(numbered, on=DEPLOYMENT_KEY)
    arcs = arcs.sort_values(["cell", "deployment"], kind="mergesort").reset_index(drop=True)
    placements = placements.merge(numbered, on=DEPLOYMENT_KEY)
    placements = placements.sort_values(["deployment", "pool_position"], kind="mergesort")
    placements = placements[["deployment", "pool", "pool_position"]].reset_index(drop=True)
    workloads = _workload_table(scenario)
    periods, slices = horizon.period_ids, horizon.slice_ids
    by_id = {p.id: p for p in scenario.pools}
    chosen = [by_id[p] for p in pools["pool"]]
    caps = np.array([[p.cap(t) for t in periods] for p in chosen], dtype=float).reshape(len(chosen), len(periods))
    availability = np.array([[p.availability.get(s, 1.0) for s in slices] for p in chosen],
                            dtype=float).reshape(len(chosen), len(slices))
    committed = np.zeros((len(chosen), len(periods)))
    for i, pool in enumerate(chosen):
        for contract in pool.committed:
            first = periods.index(contract.starts) if contract.starts is not None else 0
            committed[i, first: periods.index(contract.through) + 1] += contract.blocks
    start = placements.merge(numbered, on="deployment").merge(fleet, on=[*DEPLOYMENT_KEY, "pool"], how="left")
    limit = scenario.options.max_churn_chips
    churn_limit = np.array([np.inf if limit is None else (limit[t] if isinstance(limit, dict) else limit)
                            for t in periods], dtype=float)
    return IndexSets(cells, workloads, deployments, arcs, pools, placements, scenario.options.headroom,
                     dropped.reset_index(drop=True), scenario.options.max_shapes_per_model_accelerator,
                     horizon, rates, caps, availability, committed,
                     start["replicas"].fillna(0.0).to_numpy(dtype=float), scenario.fleet is not None,
                     churn_limit, float(scenario.options.churn_cost_per_chip), scenario.options.max_spot_share)


def _fleet_table(scenario: Scenario, pools: pd.DataFrame) -> pd.DataFrame:
    """The running fleet, summed per (deployment, pool), restricted to the pools in the sets."""
    rows = [{"model": f.model, "accelerator": f.accelerator, "chips_per_replica": f.chips_per_replica,
             "pool": f.pool, "replicas": f.replicas} for f in scenario.fleet or []]
    frame = pd.DataFrame(rows, columns=[*DEPLOYMENT_KEY, "pool", "replicas"])
    frame = frame[frame["pool"].isin(pools["pool"])]
    frame = frame.astype({"chips_per_replica": "int64", "replicas": float})
    return frame.groupby([*DEPLOYMENT_KEY, "pool"], as_index=False, sort=True)["replicas"].sum()


def _cell_table(scenario: Scenario, cells: pd.DataFrame) -> pd.DataFrame:
    by_id = {w.id: w for w in scenario.workloads}
    cells = cells.reset_index(drop=True).copy()
    cells["must_serve"] = cells["workload"].map({w: by_id[w].must_serve for w in by_id}).astype(bool)
    cells["unserved_cost_per_request"] = cells["workload"].map(
        {w: by_id[w].unserved_cost_per_request or 0.0 for w in by_id}).astype(float)
    headroom = {w: by_id[w].headroom if by_id[w].headroom is not None else scenario.options.headroom for w in by_id}
    cells["headroom"] = cells["workload"].map(headroom).astype(float)
    return cells


def _workload_table(scenario: Scenario) -> pd.DataFrame:
    records = []
    for workload in scenario.workloads:
        floor = workload.quality
        records.append(
            {
                "workload": workload.id,
                "metric": floor.metric if floor else None,
                "min_mean": floor.min_mean if floor and floor.min_mean is not None else np.nan,
            }
        )
    return pd.DataFrame.from_records(records)


def _pool_table(scenario: Scenario, accelerators: set[str] | None) -> pd.DataFrame:
    records = [
        {
            "pool": p.id,
            "accelerator": p.accelerator,
            "kind": p.kind,
            "max_chips": p.peak_chips,
            "block_chips": p.block_chips if p.kind == "reserved" else 1,
            "price_per_chip_hour": p.price,
            "fixed_cost": p.fixed_cost,
            "term_periods": p.term_periods,
            "lead_periods": p.lead_periods,
        }
        for p in scenario.pools
        if accelerators is None or p.accelerator in accelerators
    ]
    columns = ["pool", "accelerator", "kind", "max_chips", "block_chips", "price_per_chip_hour", "fixed_cost",
               "term_periods", "lead_periods"]
    return pd.DataFrame.from_records(records, columns=columns)


def _filter_arcs(scenario: Scenario, cells: pd.DataFrame, arcs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep arcs whose model is allowed, meets the per-request floor and holds the bucket's context.

    Kept arcs carry `quality`, the model's score on the workload's quality metric (NaN without one).
    """
    arcs = arcs.merge(model_eligibility(scenario), on=["workload", "model"], how="left")
    cell = arcs["cell"].to_numpy()
    length = cells["input_tokens"].to_numpy()[cell] + cells["output_tokens"].to_numpy()[cell]
    context = pd.Series({m.id: m.max_context_tokens or np.inf for m in scenario.models}, dtype=float)
    limit = context.reindex(arcs["model"]).to_numpy()
    too_long = (arcs["reason"].to_numpy() == "") & (length > limit)
    reason = arcs["reason"].to_numpy(dtype=object).copy()
    reason[too_long] = [f"context {n} > model max_context_tokens {lim:g}"
                        for n, lim in zip(length[too_long], limit[too_long])]
    arcs = arcs.assign(reason=reason)
    dropped = arcs[arcs["reason"] != ""]
    kept = arcs[arcs["reason"] == ""].drop(columns="reason")
    return kept.reset_index(drop=True), dropped.reset_index(drop=True)

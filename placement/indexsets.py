"""Index sets of the MIP (formulation.md), derived from the scenario and the profile lookup.

cells (w, b), deployments d = (model, accelerator, chips_per_replica), arcs (w, b, d) with R > 0
that pass the model filters, pools p, and placements (d, p) with a(p) = accelerator of d.
Arcs that can never be used are dropped here, and each drop is recorded with its reason so an
infeasible scenario can be explained. Adding a period or site index is a column here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

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


def build_index_sets(
    scenario: Scenario,
    cells: pd.DataFrame,
    candidates: pd.DataFrame,
    accelerators: set[str] | None = None,
    prune: bool = True,
    require_fit: bool = True,
) -> IndexSets:
    """Assemble the index sets; `accelerators` restricts to some chip types (single-type baselines).

    prune=False keeps deployments with no placement and arcs on them (their capacity is zero);
    it exists to test that pruning never changes the optimum. require_fit=False lets a replica be
    placed in a pool too small for it (the elastic diagnosis model buys the missing chips).
    """
    cells = _cell_table(scenario, cells)
    pools = _pool_table(scenario, accelerators)
    arcs = candidates.copy()
    if accelerators is not None:
        arcs = arcs[arcs["accelerator"].isin(accelerators)]
    arcs, dropped = _filter_arcs(scenario, cells, arcs)
    deployments = arcs[DEPLOYMENT_KEY].drop_duplicates()
    pool_columns = pools.reset_index(names="pool_position")[["pool", "accelerator", "max_chips", "pool_position"]]
    placements = deployments.merge(pool_columns, on="accelerator")
    if require_fit:
        placements = placements[placements["chips_per_replica"] <= placements["max_chips"]]
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
    return IndexSets(cells, workloads, deployments, arcs, pools, placements, scenario.options.headroom,
                     dropped.reset_index(drop=True), scenario.options.max_shapes_per_model_accelerator)


def _cell_table(scenario: Scenario, cells: pd.DataFrame) -> pd.DataFrame:
    by_id = {w.id: w for w in scenario.workloads}
    cells = cells.reset_index(drop=True).copy()
    cells["must_serve"] = cells["workload"].map({w: by_id[w].must_serve for w in by_id}).astype(bool)
    cells["unserved_cost_per_request"] = cells["workload"].map(
        {w: by_id[w].unserved_cost_per_request or 0.0 for w in by_id}).astype(float)
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
            "max_chips": p.max_chips,
            "block_chips": p.block_chips if p.kind == "reserved" else 1,
            "price_per_chip_hour": p.price,
            "fixed_cost": p.fixed_cost,
        }
        for p in scenario.pools
        if accelerators is None or p.accelerator in accelerators
    ]
    columns = ["pool", "accelerator", "kind", "max_chips", "block_chips", "price_per_chip_hour", "fixed_cost"]
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

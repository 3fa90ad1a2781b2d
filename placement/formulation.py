"""The placement MIP of formulation.md, built from index-set arrays.

One small function per family of variables or constraints; each takes the index sets and the
model and adds one labelled block as sparse triplets. No Python call per variable.

Objective in currency per hour: pool chips (on-demand, spot) or committed blocks (reserved) times
price, plus the penalty of shed requests. Prepaid capacity costs nothing at the margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from placement.indexsets import IndexSets
from solvers.model import LinearModel

SECONDS_PER_HOUR = 3600.0

# A shed request never costs less than this (currency) in the objective, so free capacity serves
# traffic before free shedding drops it; plans report the scenario's own price (0 stays 0).
SHED_TIE_BREAK = 1e-6


@dataclass(frozen=True)
class Elastic:
    """Penalties of the elastic model used to diagnose infeasibility: hard limits become priced slacks.

    Each penalty dwarfs any real cost, so the elastic optimum relaxes as little as it can and
    says by how much (extra chips per pool, mean-quality points, must-serve traffic shed).
    """

    chip_penalty: float          # per extra chip-hour beyond max_chips
    quality_penalty: float       # per unit of share-weighted quality shortfall
    shed_penalty: float          # per unit of must-serve share shed


def build_model(sets: IndexSets, elastic: Elastic | None = None) -> LinearModel:
    model = LinearModel()
    add_share_variables(model, sets)
    add_unserved_variables(model, sets, elastic)
    add_replica_variables(model, sets, elastic)
    add_block_variables(model, sets, elastic)
    add_slack_variables(model, sets, elastic)
    add_shape_variables(model, sets)
    add_coverage_constraints(model, sets)
    add_capacity_constraints(model, sets)
    add_supply_constraints(model, sets)
    add_commitment_constraints(model, sets)
    add_mean_quality_constraints(model, sets)
    add_shape_constraints(model, sets, elastic)
    return model


def _chips(sets: IndexSets) -> np.ndarray:
    """chips(d) for every placement row."""
    return sets.deployments["chips_per_replica"].to_numpy()[sets.placements["deployment"].to_numpy()]


def _pool_attr(sets: IndexSets, column: str) -> np.ndarray:
    """A pool attribute for every placement row."""
    return sets.pools[column].to_numpy()[sets.placements["pool_position"].to_numpy()]


def add_share_variables(model: LinearModel, sets: IndexSets) -> None:
    """x_wbd in [0, 1]: share of cell (w, b) served by deployment d (arcs only)."""
    index = pd.MultiIndex.from_frame(sets.arcs[["cell", "deployment"]])
    model.add_variables("share", index, lower=0.0, upper=1.0)


def add_unserved_variables(model: LinearModel, sets: IndexSets, elastic: Elastic | None = None) -> None:
    """u_wb in [0, 1], fixed to 0 when the workload must be served; priced at the shedding penalty.

    In the elastic model must-serve traffic may be shed too, at the elastic penalty. A cell with no
    demand has nothing to serve: it may be "shed" for free (a must-serve bucket nobody can serve is
    then no obstacle while its rate is 0).
    """
    cells = sets.cells
    must = cells["must_serve"].to_numpy() & (cells["requests_per_s"].to_numpy() > 0)
    price = np.maximum(cells["unserved_cost_per_request"].to_numpy(), SHED_TIE_BREAK)
    cost = cells["requests_per_s"].to_numpy() * SECONDS_PER_HOUR * price
    upper = np.where(must, 0.0, 1.0)
    if elastic is not None:
        upper = np.ones(len(cells))
        cost = np.where(must, elastic.shed_penalty, cost)
    model.add_variables("unserved", pd.RangeIndex(len(cells), name="cell"), lower=0.0, upper=upper, cost=cost)


def add_replica_variables(model: LinearModel, sets: IndexSets, elastic: Elastic | None = None) -> None:
    """n_dp integer >= 0: replicas of d in pool p; on-demand and spot chips are paid per chip-hour."""
    chips = _chips(sets)
    kind = _pool_attr(sets, "kind")
    paid_per_use = np.isin(kind, ["on_demand", "spot"])
    cost = np.where(paid_per_use, _pool_attr(sets, "price_per_chip_hour") * chips, 0.0)
    upper = np.floor(_pool_attr(sets, "max_chips") / chips) if elastic is None else np.inf
    index = pd.MultiIndex.from_frame(sets.placements[["deployment", "pool"]])
    model.add_variables("replicas", index, lower=0.0, upper=upper, cost=cost, integer=True)


def _reserved(sets: IndexSets) -> pd.DataFrame:
    return sets.pools[sets.pools["kind"] == "reserved"]


def add_block_variables(model: LinearModel, sets: IndexSets, elastic: Elastic | None = None) -> None:
    """k_p integer >= 0: committed blocks of a reserved pool, paid whether used or not."""
    reserved = _reserved(sets)
    block = reserved["block_chips"].to_numpy()
    upper = np.ceil(reserved["max_chips"].to_numpy() / block) if elastic is None else np.inf
    cost = reserved["price_per_chip_hour"].to_numpy() * block
    model.add_variables("blocks", pd.Index(reserved["pool"], name="pool"), lower=0.0, upper=upper, cost=cost, integer=True)


def add_slack_variables(model: LinearModel, sets: IndexSets, elastic: Elastic | None) -> None:
    """Elastic model only: extra chips per pool and mean-quality shortfall per workload, at a penalty."""
    pools = pd.Index(sets.pools["pool"], name="pool")
    floors = pd.Index(sets.workloads.loc[sets.workloads["min_mean"].notna(), "workload"], name="workload")
    on = elastic is not None
    model.add_variables("supply_slack", pools, upper=np.inf if on else 0.0, cost=elastic.chip_penalty if on else 0.0)
    model.add_variables("quality_slack", floors, upper=np.inf if on else 0.0,
                        cost=elastic.quality_penalty if on else 0.0)


def add_shape_variables(model: LinearModel, sets: IndexSets) -> None:
    """y_d binary: deployment d has replicas. Only when the plan limits replica sizes per pair."""
    index = pd.RangeIndex(len(sets.deployments) if sets.max_shapes is not None else 0, name="deployment")
    model.add_variables("shape_used", index, lower=0.0, upper=1.0, integer=True)


def add_shape_constraints(model: LinearModel, sets: IndexSets, elastic: Elastic | None = None) -> None:
    """n_dp <= U_dp y_d, and sum of y_d over the sizes of one (model, accelerator) <= max_shapes.

    U_dp is the pool's cap in replicas; the elastic model may buy chips beyond caps, so there U_dp is
    what ten times every pool's chips would hold.
    """
    if sets.max_shapes is None:
        return
    replicas, used = model.variables["replicas"], model.variables["shape_used"]
    deployment = sets.placements["deployment"].to_numpy()
    chips = _pool_attr(sets, "max_chips") if elastic is None else 10.0 * max(sets.pools["max_chips"].sum(), 1)
    upper = np.floor(chips / _chips(sets))
    rows = np.arange(len(sets.placements))
    model.add_constraints("shape_link", pd.RangeIndex(len(rows), name="placement"),
                          np.concatenate([rows, rows]), np.concatenate([replicas.columns, used.columns[deployment]]),
                          np.concatenate([np.ones(len(rows)), -upper]), upper=0.0)
    pair = sets.deployments.groupby(["model", "accelerator"], sort=True).ngroup().to_numpy()
    model.add_constraints("shapes", pd.RangeIndex(int(pair.max()) + 1 if len(pair) else 0, name="pair"),
                          pair, used.columns, np.ones(len(pair)), upper=float(sets.max_shapes))


def add_coverage_constraints(model: LinearModel, sets: IndexSets) -> None:
    """sum_d x_wbd + u_wb = 1 for every cell."""
    share, unserved = model.variables["share"], model.variables["unserved"]
    rows = np.concatenate([sets.arcs["cell"].to_numpy(), np.arange(len(sets.cells))])
    cols = np.concatenate([share.columns, unserved.columns])
    coefs = np.ones(len(rows))
    model.add_constraints("coverage", pd.RangeIndex(len(sets.cells), name="cell"), rows, cols, coefs, 1.0, 1.0)


def add_capacity_constraints(model: LinearModel, sets: IndexSets) -> None:
    """sum_wb r_wb x_wbd / R_wbd <= (1 - headroom) sum_p n_dp for every deployment."""
    share, replicas = model.variables["share"], model.variables["replicas"]
    arcs = sets.arcs
    rate = sets.cells["requests_per_s"].to_numpy()[arcs["cell"].to_numpy()]
    load = rate / arcs["replica_requests_per_s"].to_numpy()
    rows = np.concatenate([arcs["deployment"].to_numpy(), sets.placements["deployment"].to_numpy()])
    cols = np.concatenate([share.columns, replicas.columns])
    coefs = np.concatenate([load, np.full(len(sets.placements), -(1.0 - sets.headroom))])
    index = pd.RangeIndex(len(sets.deployments), name="deployment")
    model.add_constraints("capacity", index, rows, cols, coefs, upper=0.0)


def add_supply_constraints(model: LinearModel, sets: IndexSets) -> None:
    """sum_d chips(d) n_dp <= max_chips(p) for every pool."""
    replicas, slack = model.variables["replicas"], model.variables["supply_slack"]
    index = pd.Index(sets.pools["pool"], name="pool")
    rows = np.concatenate([sets.placements["pool_position"].to_numpy(), np.arange(len(index))])
    cols = np.concatenate([replicas.columns, slack.columns])
    coefs = np.concatenate([_chips(sets), -np.ones(len(index))])
    model.add_constraints("supply", index, rows, cols, coefs, upper=sets.pools["max_chips"].to_numpy(dtype=float))


def add_commitment_constraints(model: LinearModel, sets: IndexSets) -> None:
    """sum_d chips(d) n_dp <= block_chips(p) k_p for every reserved pool (take-or-pay)."""
    replicas, blocks = model.variables["replicas"], model.variables["blocks"]
    reserved = _reserved(sets)
    row_of_pool = pd.Series(np.arange(len(reserved)), index=reserved["pool"].to_numpy())
    in_reserved = sets.placements["pool"].isin(row_of_pool.index).to_numpy()
    rows = np.concatenate([row_of_pool.loc[sets.placements["pool"][in_reserved]].to_numpy(), np.arange(len(reserved))])
    cols = np.concatenate([replicas.columns[in_reserved], blocks.columns])
    coefs = np.concatenate([_chips(sets)[in_reserved], -reserved["block_chips"].to_numpy(dtype=float)])
    model.add_constraints("commitment", pd.Index(reserved["pool"], name="pool"), rows, cols, coefs, upper=0.0)


def add_mean_quality_constraints(model: LinearModel, sets: IndexSets) -> None:
    """Traffic-weighted mean quality of the served traffic >= min_mean, for workloads that ask for it.

    sum_b share_b sum_d q_d x_wbd >= min_mean sum_b share_b (1 - u_wb); with coverage,
    1 - u_wb = sum_d x_wbd, so the row is sum_b share_b sum_d (q_d - min_mean) x_wbd >= 0.
    """
    share = model.variables["share"]
    floors = sets.workloads[sets.workloads["min_mean"].notna()].reset_index(drop=True)
    arcs = sets.arcs
    workload_of_arc = arcs["workload"].to_numpy()
    row_of_workload = pd.Series(np.arange(len(floors)), index=floors["workload"].to_numpy())
    selected = np.isin(workload_of_arc, floors["workload"].to_numpy())
    min_mean = floors.set_index("workload")["min_mean"].reindex(workload_of_arc[selected]).to_numpy()
    bucket_share = sets.cells["share"].to_numpy()[arcs["cell"].to_numpy()[selected]]
    coefs = bucket_share * (arcs["quality"].to_numpy()[selected] - min_mean)
    rows = row_of_workload.reindex(workload_of_arc[selected]).to_numpy()
    slack = model.variables["quality_slack"]
    model.add_constraints(
        "mean_quality", pd.Index(floors["workload"], name="workload"),
        np.concatenate([rows, np.arange(len(floors))]), np.concatenate([share.columns[selected], slack.columns]),
        np.concatenate([coefs, np.ones(len(floors))]), lower=0.0,
    )

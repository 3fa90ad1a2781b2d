"""The placement MIP (formulation.md, time-and-contracts.md), built from index-set arrays.

One small function per family of variables or constraints; each adds one named block whose coordinates
(arcs, cells, deployments, placements, pools, workloads, times period and slice) come from the index sets,
and finds the columns it touches by key. Pool kinds add their own variables and rows
(placement/capacity_types/). No Python call per variable.

Objective: total currency over the horizon. Running replicas pay their pool's price per chip-hour in
every (period, slice) for the slice's hours; reserved blocks pay their term; a shed request pays its
price; a moved chip pays the churn price. Prepaid capacity costs nothing at the margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from placement.capacity_types import KINDS
from placement.indexsets import IndexSets
from solvers.model import Coords, LinearModel

SECONDS_PER_HOUR = 3600.0

# A shed request never costs less than this (currency) in the objective, so free capacity serves
# traffic before free shedding drops it; plans report the scenario's own price (0 stays 0).
SHED_TIE_BREAK = 1e-6


@dataclass(frozen=True)
class Elastic:
    """Penalties of the elastic model used to diagnose infeasibility: hard limits become priced slacks.

    Each penalty dwarfs any real cost, so the elastic optimum relaxes as little as it can and
    says by how much (extra chips per pool, period and slice, mean-quality points, chips of churn,
    must-serve traffic shed).
    """

    chip_penalty: float          # per extra chip-hour beyond a cap
    quality_penalty: float       # per unit of quality shortfall
    shed_penalty: float          # per unit of must-serve share shed, per hour of its slice
    churn_penalty: float = 0.0   # per chip moved beyond max_churn_chips
    # chips the elastic model may place in one pool, as a multiple of the largest cap (at least 64 chips),
    # so its integers keep finite bounds and its big-M rows stay tight
    stretch: float = 10.0


def build_model(sets: IndexSets, elastic: Elastic | None = None) -> LinearModel:
    model = LinearModel()
    add_share_variables(model, sets)
    add_unserved_variables(model, sets, elastic)
    add_replica_variables(model, sets, elastic)
    add_fleet_variables(model, sets, elastic)
    for kind in KINDS.values():
        kind.add_variables(model, sets, elastic)
    add_quality_slack_variables(model, sets, elastic)
    add_shape_variables(model, sets)
    add_coverage_constraints(model, sets)
    add_capacity_constraints(model, sets)
    for kind in KINDS.values():
        kind.add_constraints(model, sets, elastic)
    add_fleet_constraints(model, sets, elastic)
    add_mean_quality_constraints(model, sets)
    add_shape_constraints(model, sets, elastic)
    return model


def elastic_cap(sets: IndexSets, elastic: Elastic) -> float:
    """Chips any one pool may reach in the elastic model: `stretch` times the largest cap, at least 64."""
    return elastic.stretch * max(float(sets.caps.max(initial=0.0)), 64.0)


def _dense(sets: IndexSets, *names: str) -> dict[str, list[str]]:
    labels = {"period": sets.horizon.period_ids, "slice": sets.horizon.slice_ids}
    return {name: labels[name] for name in names}


def _ts(sets: IndexSets) -> tuple[np.ndarray, np.ndarray]:
    """Period and slice positions shaped to broadcast after a leading base axis: (1, T, 1), (1, 1, S)."""
    T, S = len(sets.horizon.period_ids), len(sets.horizon.slice_ids)
    return np.arange(T).reshape(1, T, 1), np.arange(S).reshape(1, 1, S)


def placement_coords(sets: IndexSets, *dense: str) -> Coords:
    return Coords(sets.placements[["deployment", "pool"]], _dense(sets, *dense))


def add_share_variables(model: LinearModel, sets: IndexSets) -> None:
    """x[w,b,d,t,s] in [0, 1]: share of cell (w, b) served by deployment d in (t, s) (arcs only)."""
    model.add_variables("share", Coords(sets.arcs[["cell", "deployment"]], _dense(sets, "period", "slice")),
                        lower=0.0, upper=1.0)


def add_unserved_variables(model: LinearModel, sets: IndexSets, elastic: Elastic | None = None) -> None:
    """u[w,b,t,s] in [0, 1], fixed to 0 where the workload must be served; priced at the shedding penalty.

    A cell with no demand in (t, s) has nothing to serve: it may be "shed" for free. In the elastic model
    must-serve traffic may be shed too, at the elastic penalty.
    """
    cells = sets.cells
    rates = sets.rates
    must = cells["must_serve"].to_numpy()[:, None, None] & (rates > 0)
    price = np.maximum(cells["unserved_cost_per_request"].to_numpy(), SHED_TIE_BREAK)[:, None, None]
    cost = rates * SECONDS_PER_HOUR * price * sets.horizon.duration[None]
    upper = np.where(must, 0.0, 1.0)
    if elastic is not None:
        upper = np.ones_like(upper)
        cost = np.where(must, elastic.shed_penalty * sets.horizon.duration[None] / sets.horizon.total_hours, cost)
    model.add_variables("unserved", Coords(pd.RangeIndex(len(cells), name="cell"), _dense(sets, "period", "slice")),
                        lower=0.0, upper=upper, cost=cost)


def per_use_price(sets: IndexSets) -> np.ndarray:
    """Price per chip-hour a running replica pays, per pool (its kind decides)."""
    price = np.zeros(len(sets.pools))
    kinds = sets.pools["kind"].to_numpy()
    for name, kind in KINDS.items():
        mask = kinds == name
        price[mask] = kind.price_per_chip_hour(sets.pools[mask])
    return price


def replica_need(sets: IndexSets) -> np.ndarray:
    """Replicas of each deployment that serving every cell it can reach, whole, would take: (D, T, S).

    No optimal plan runs more (a replica beyond the whole load only costs), so it bounds n and, with the
    running fleet, N: tighter bounds, a tighter relaxation, smaller big-M rows.
    """
    need = np.zeros((len(sets.deployments),) + sets.rates.shape[1:])
    np.add.at(need, sets.arcs["deployment"].to_numpy(), arc_load(sets))
    return np.ceil(need - 1e-9)


def held_fleet_bound(sets: IndexSets) -> np.ndarray:
    """Most replicas of each placement any optimal plan holds in a period: its largest need over the horizon,
    or the running fleet if larger. A fleet is held beyond a slice's need only to spare churn, and clipping
    every period's fleet at this level never moves more chips (clipping at a level >= the start is
    1-Lipschitz) nor costs more."""
    need = replica_need(sets)[sets.placements["deployment"].to_numpy()].max(axis=(1, 2), initial=0.0)
    return np.maximum(need, sets.fleet)


def add_replica_variables(model: LinearModel, sets: IndexSets, elastic: Elastic | None = None) -> None:
    """n[d,p,t,s] integer >= 0: replicas of d running in pool p in (t, s), paying per chip-hour of the slice."""
    chips = sets.placement_chips.astype(float)
    pool = sets.placements["pool_position"].to_numpy()
    price = per_use_price(sets)[pool] * chips
    cost = price[:, None, None] * sets.horizon.duration[None]
    caps = sets.caps[pool][:, :, None] * sets.availability[pool][:, None, :]
    if elastic is not None:
        caps = np.full_like(caps, elastic_cap(sets, elastic))
    need = replica_need(sets)[sets.placements["deployment"].to_numpy()]
    if sets.track_fleet:  # on rented chips the fleet is a running slice: held to spare churn, it runs (and pays)
        rented = _rented(sets)
        need[rented] = held_fleet_bound(sets)[rented, None, None]
    upper = np.minimum(np.floor(caps / chips[:, None, None]), need)
    model.add_variables("replicas", placement_coords(sets, "period", "slice"), lower=0.0, upper=upper, cost=cost,
                        integer=True)


def add_fleet_variables(model: LinearModel, sets: IndexSets, elastic: Elastic | None = None) -> None:
    """N[d,p,t] integer: the fleet of a period (>= every slice's replicas), and the chips moved into and out of
    it against the period before (churn_in, churn_out >= 0, priced per chip). Only when churn is limited or
    priced; otherwise the fleet is simply each period's largest slice and needs no variable.

    Without a running `fleet` the first period builds from nothing: that is not churn (free, unlimited).
    """
    if not sets.track_fleet:
        return
    chips = sets.placement_chips.astype(float)
    pool = sets.placements["pool_position"].to_numpy()
    coords = placement_coords(sets, "period")
    caps = sets.caps[pool] if elastic is None else np.full(sets.caps[pool].shape, elastic_cap(sets, elastic))
    held = held_fleet_bound(sets)[:, None]
    model.add_variables("fleet", coords, upper=np.minimum(np.floor(caps / chips[:, None]), held), integer=True)
    price = np.broadcast_to((sets.churn_cost * chips)[:, None], coords.shape).copy()
    out_upper = np.full(coords.shape, np.inf)
    if not sets.has_fleet:
        price[:, 0] = 0.0
        out_upper[:, 0] = 0.0
    model.add_variables("churn_in", coords, cost=price)
    model.add_variables("churn_out", coords, upper=out_upper, cost=price)
    if len(sets.horizon.slice_ids) > 1:  # which slice sets a rented fleet (see _add_rented_fleet_is_largest_slice)
        rented = sets.placements.iloc[_rented(sets)][["deployment", "pool"]]
        model.add_variables("fleet_peak_slice", Coords(rented, _dense(sets, "period", "slice")), upper=1.0,
                            integer=True)
    if elastic is not None:
        model.add_variables("churn_slack", Coords(pd.Index(sets.horizon.period_ids, name="period")),
                            cost=elastic.churn_penalty)


def add_fleet_constraints(model: LinearModel, sets: IndexSets, elastic: Elastic | None = None) -> None:
    """n[d,p,t,s] <= N[d,p,t];  N[d,p,t] - N[d,p,t-1] - churn_in + churn_out = 0, with N before the first
    period = the running `fleet`;  sum chips(d) (churn_in + churn_out) <= max_churn_chips(t)."""
    if "fleet" not in model.variables:
        return
    replicas, fleet = model.variables["replicas"], model.variables["fleet"]
    churn_in, churn_out = model.variables["churn_in"], model.variables["churn_out"]
    coords = placement_coords(sets, "period", "slice")
    t, s = _ts(sets)
    placement = np.arange(len(sets.placements)).reshape(-1, 1, 1)
    rows = np.arange(coords.size)
    _add_rented_fleet_is_largest_slice(model, sets)
    model.add_constraints("Fleet-largest-slice", coords, np.concatenate([rows, rows]),
                          np.concatenate([replicas.columns, fleet.at(placement, period=t + 0 * s)]),
                          np.concatenate([np.ones(coords.size), -np.ones(coords.size)]), upper=0.0)
    coords = placement_coords(sets, "period")
    n, T = coords.shape
    grid = np.arange(coords.size).reshape(n, T)
    start = np.zeros(coords.shape)
    start[:, 0] = sets.fleet if sets.has_fleet else 0.0
    model.add_constraints("Fleet-churn-balance", coords,
                          np.concatenate([grid.ravel(), grid[:, 1:].ravel(), grid.ravel(), grid.ravel()]),
                          np.concatenate([fleet.columns, fleet.columns.reshape(n, T)[:, :-1].ravel(),
                                          churn_in.columns, churn_out.columns]),
                          np.concatenate([np.ones(coords.size), -np.ones(n * (T - 1)), -np.ones(coords.size),
                                          np.ones(coords.size)]),
                          lower=start, upper=start)
    chips = np.repeat(sets.placement_chips.astype(float), T)
    period = np.tile(np.arange(T), n)
    counted = period > 0 if not sets.has_fleet else np.ones(len(period), dtype=bool)
    rows = [period[counted], period[counted]]
    cols = [churn_in.columns[counted], churn_out.columns[counted]]
    coefs = [chips[counted], chips[counted]]
    if elastic is not None:
        rows.append(np.arange(T)), cols.append(model.variables["churn_slack"].columns), coefs.append(-np.ones(T))
    model.add_constraints("Fleet-churn-limit", Coords(pd.Index(sets.horizon.period_ids, name="period")),
                          np.concatenate(rows), np.concatenate(cols), np.concatenate(coefs), upper=sets.churn_limit)


def _rented(sets: IndexSets) -> np.ndarray:
    """Placements in pools paid per use (on-demand, spot): a replica there is paid only while it runs."""
    return np.flatnonzero(per_use_price(sets)[sets.placements["pool_position"].to_numpy()] > 0)


def _add_rented_fleet_is_largest_slice(model: LinearModel, sets: IndexSets) -> None:
    """On rented chips the fleet is exactly the largest slice (N <= n[s*] for one slice s*), so no replica
    is held idle, unpaid, just to dodge churn. On chips one owns (prepaid, reserved) a replica may stay
    deployed beyond the largest slice: those chips are paid for anyway.

    One slice: N <= n. Several: binaries z[s] pick the slice that sets the fleet, N <= n[s] + U (1 - z[s]),
    sum_s z[s] = 1, with U the replicas' upper bound; and only that slice runs beyond its own need,
    n[s] <= need[s] + (U - need[s]) z[s] (lowering any other to its need keeps the plan and costs less): a
    tighter model, the four-quarter example at 0.2% in 18 s instead of 27.
    """
    rented = _rented(sets)
    if not len(rented):
        return
    replicas, fleet = model.variables["replicas"], model.variables["fleet"]
    T, S = len(sets.horizon.period_ids), len(sets.horizon.slice_ids)
    t, s = _ts(sets)
    placement = rented.reshape(-1, 1, 1)
    coords = Coords(sets.placements.iloc[rented][["deployment", "pool"]], _dense(sets, "period", "slice"))
    rows = np.arange(coords.size)
    n_cols = replicas.at(placement, period=t, slice=s)
    N_cols = fleet.at(placement, period=t + 0 * s)
    if S == 1:
        model.add_constraints("Fleet-rented-largest-slice", coords, np.concatenate([rows, rows]),
                              np.concatenate([N_cols, n_cols]), np.concatenate([np.ones(coords.size),
                                                                                -np.ones(coords.size)]), upper=0.0)
        return
    z = model.variables["fleet_peak_slice"]
    # big-M: the fleet's own bound (N - n[s] <= N's upper bound whatever the slice)
    upper = np.minimum(model.upper_of("fleet")[N_cols - fleet.start], 1e6)
    model.add_constraints("Fleet-rented-largest-slice", coords, np.concatenate([rows, rows, rows]),
                          np.concatenate([N_cols, n_cols, z.columns]),
                          np.concatenate([np.ones(coords.size), -np.ones(coords.size), upper]), upper=upper)
    # only the slice that sets the fleet runs beyond its own need (to spare churn): n[s] <= need[s] + (U - need[s]) z[s]
    need = replica_need(sets)[sets.placements["deployment"].to_numpy()[rented]].ravel()
    spare = np.maximum(model.upper_of("replicas")[n_cols - replicas.start] - need, 0.0)
    model.add_constraints("Fleet-rented-beyond-need", coords, np.concatenate([rows, rows]),
                          np.concatenate([n_cols, z.columns]), np.concatenate([np.ones(coords.size), -spare]),
                          upper=need)
    periods = Coords(sets.placements.iloc[rented][["deployment", "pool"]], _dense(sets, "period"))
    model.add_constraints("Fleet-rented-one-peak-slice", periods,
                          periods.at(np.arange(len(rented)).reshape(-1, 1, 1), period=t + 0 * s), z.columns,
                          np.ones(z.coords.size), lower=1.0, upper=1.0)


def add_quality_slack_variables(model: LinearModel, sets: IndexSets, elastic: Elastic | None) -> None:
    """Elastic model only: mean-quality shortfall per (workload, period), at a penalty."""
    floors = sets.workloads.loc[sets.workloads["min_mean"].notna(), ["workload"]]
    on = elastic is not None
    model.add_variables("quality_slack", Coords(floors, _dense(sets, "period")), upper=np.inf if on else 0.0,
                        cost=elastic.quality_penalty if on else 0.0)


def add_shape_variables(model: LinearModel, sets: IndexSets) -> None:
    """y_d binary: deployment d has replicas somewhere in the horizon. Only when the plan limits replica
    sizes per (model, accelerator)."""
    index = pd.RangeIndex(len(sets.deployments) if sets.max_shapes is not None else 0, name="deployment")
    model.add_variables("shape_used", index, lower=0.0, upper=1.0, integer=True)


def add_shape_constraints(model: LinearModel, sets: IndexSets, elastic: Elastic | None = None) -> None:
    """n[d,p,t,s] <= U y_d, and sum of y_d over the sizes of one (model, accelerator) <= max_shapes.

    U is the pool's cap in replicas; the elastic model may buy chips beyond caps, so there U is what ten
    times every pool's chips would hold.
    """
    if sets.max_shapes is None:
        return
    replicas, used = model.variables["replicas"], model.variables["shape_used"]
    deployment = sets.placements["deployment"].to_numpy()
    chips = sets.caps.max(axis=1)[sets.placements["pool_position"].to_numpy()] if elastic is None else \
        np.full(len(deployment), elastic_cap(sets, elastic))
    upper = np.floor(chips / sets.placement_chips)
    coords = placement_coords(sets, "period", "slice")
    repeat = coords.size // max(len(deployment), 1)
    rows = np.arange(coords.size)
    model.add_constraints("Shape-link", coords, np.concatenate([rows, rows]),
                          np.concatenate([replicas.columns, np.repeat(used.columns[deployment], repeat)]),
                          np.concatenate([np.ones(coords.size), -np.repeat(upper, repeat)]), upper=0.0)
    pair = sets.deployments.groupby(["model", "accelerator"], sort=True).ngroup().to_numpy()
    model.add_constraints("Shape-count", pd.RangeIndex(int(pair.max()) + 1 if len(pair) else 0, name="pair"),
                          pair, used.columns, np.ones(len(pair)), upper=float(sets.max_shapes))


def add_coverage_constraints(model: LinearModel, sets: IndexSets) -> None:
    """sum_d x[w,b,d,t,s] + u[w,b,t,s] = 1 for every cell, period and slice."""
    share, unserved = model.variables["share"], model.variables["unserved"]
    coords = Coords(pd.RangeIndex(len(sets.cells), name="cell"), _dense(sets, "period", "slice"))
    t, s = _ts(sets)
    cell = sets.arcs["cell"].to_numpy().reshape(-1, 1, 1)
    rows = np.concatenate([coords.at(cell, period=t, slice=s), np.arange(coords.size)])
    cols = np.concatenate([share.columns, unserved.columns])
    model.add_constraints("Cell-coverage", coords, rows, cols, np.ones(len(rows)), 1.0, 1.0)


def arc_load(sets: IndexSets) -> np.ndarray:
    """Replicas one unit of share uses: rate[c,t,s] / (R x (1 - headroom of the cell's workload)), (A, T, S)."""
    cell = sets.arcs["cell"].to_numpy()
    usable = sets.arcs["replica_requests_per_s"].to_numpy() * (1.0 - sets.cells["headroom"].to_numpy()[cell])
    return sets.rates[cell] / usable[:, None, None]


def add_capacity_constraints(model: LinearModel, sets: IndexSets) -> None:
    """sum_wb x[w,b,d,t,s] rate / (R (1 - headroom_w)) <= sum_p n[d,p,t,s] for every deployment, period, slice."""
    share, replicas = model.variables["share"], model.variables["replicas"]
    coords = Coords(pd.RangeIndex(len(sets.deployments), name="deployment"), _dense(sets, "period", "slice"))
    t, s = _ts(sets)
    arc_deployment = sets.arcs["deployment"].to_numpy().reshape(-1, 1, 1)
    placement_deployment = sets.placements["deployment"].to_numpy().reshape(-1, 1, 1)
    rows = np.concatenate([coords.at(arc_deployment, period=t, slice=s),
                           coords.at(placement_deployment, period=t, slice=s)])
    cols = np.concatenate([share.columns, replicas.columns])
    coefs = np.concatenate([arc_load(sets).ravel(), -np.ones(replicas.coords.size)])
    model.add_constraints("Deployment-capacity", coords, rows, cols, coefs, upper=0.0)


def add_mean_quality_constraints(model: LinearModel, sets: IndexSets) -> None:
    """Request-weighted mean quality of the served traffic >= min_mean, per (workload, period).

    sum_s weight_s sum_b rate[w,b,t,s] sum_d (q_d - min_mean) x[w,b,d,t,s] >= 0 (with coverage, the served
    traffic is what the shares route). Rows are divided by the workload's requests in the period, so a
    single-period, single-slice row is today's sum_b share_b sum_d (q_d - min_mean) x.
    """
    share, slack = model.variables["share"], model.variables["quality_slack"]
    floors = sets.workloads[sets.workloads["min_mean"].notna()].reset_index(drop=True)
    coords = Coords(floors[["workload"]], _dense(sets, "period"))
    row_of = pd.Series(np.arange(len(floors)), index=floors["workload"].to_numpy())
    arcs = sets.arcs
    floor_row = row_of.reindex(arcs["workload"].to_numpy()).to_numpy()
    selected = ~np.isnan(floor_row)
    cell = arcs["cell"].to_numpy()[selected]
    weight = sets.horizon.weights
    requests = sets.rates * weight[None, None, :]                       # (C, T, S) request weight
    cell_workload = row_of.reindex(sets.cells["workload"].to_numpy()).to_numpy()
    total = np.zeros((len(floors), requests.shape[1]))
    has_floor = ~np.isnan(cell_workload)
    np.add.at(total, cell_workload[has_floor].astype(int), requests[has_floor].sum(axis=2))
    norm = np.where(total > 0, total, 1.0)
    row = floor_row[selected].astype(int)
    margin = arcs["quality"].to_numpy()[selected] - floors["min_mean"].to_numpy()[row]
    t, s = _ts(sets)
    coefs = margin[:, None, None] * requests[cell] / norm[row][:, :, None]
    rows = coords.at(row.reshape(-1, 1, 1), period=t + 0 * s)
    cols = share.columns.reshape(share.coords.shape)[selected].ravel()
    model.add_constraints("Workload-mean-quality", coords,
                          np.concatenate([rows, np.arange(coords.size)]), np.concatenate([cols, slack.columns]),
                          np.concatenate([coefs.ravel(), np.ones(coords.size)]), lower=0.0)

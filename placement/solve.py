"""A solve from validated scenario to labelled solution: lookup, index sets, MIP, backend, baselines.

The raw solver vector is turned back into frames labelled by the index sets, then normalized by
a documented rule (replicas trimmed to what the routing needs, most expensive pool first; reserved
blocks to the fewest that hold the used chips), so plans are deterministic and never pay for idle
capacity the solver left in by tolerance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

import solvers
from placement.formulation import SECONDS_PER_HOUR, build_model
from placement.indexsets import IndexSets, build_index_sets
from placement.profiles import demand_cells, lookup, profile_table
from placement.scenario import LoadedScenario, Scenario
from solvers import SolverResult, SolverSettings, Status
from solvers.base import relative_gap

SHARE_EPS = 1e-9       # shares below this are numerical noise, reported as 0
REPLICA_EPS = 1e-6     # load within this of an integer needs no extra replica


@dataclass
class Solution:
    """A plan in frames labelled by the index sets, plus its cost recomputed from the rows."""

    routing: pd.DataFrame
    unserved: pd.DataFrame
    replicas: pd.DataFrame
    pools: pd.DataFrame
    cost_per_hour: float
    unserved_cost_per_hour: float

    @property
    def objective(self) -> float:
        return self.cost_per_hour + self.unserved_cost_per_hour


@dataclass
class Baseline:
    name: str
    accelerator: str
    feasible: bool
    status: str
    cost_per_hour: float | None
    reason: str = ""


@dataclass
class Outcome:
    """Everything a plan document is made from."""

    status: Status
    sets: IndexSets
    result: SolverResult | None
    solution: Solution | None
    lp_bound: float | None
    build_s: float
    baselines: list[Baseline] = field(default_factory=list)
    table: pd.DataFrame | None = None        # the profile table the solve used
    cells: pd.DataFrame | None = None        # demand cells
    candidates: pd.DataFrame | None = None   # every (cell, deployment) with R > 0 under the SLO
    model_stats: dict[str, int] = field(default_factory=dict)


def settings_from(scenario: Scenario, **overrides) -> SolverSettings:
    options = scenario.options.solver
    backend, engine = options.resolved
    values = dict(backend=backend, engine=engine, time_limit_s=options.time_limit_s, mip_gap=options.mip_gap,
                  threads=options.threads)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return SolverSettings(**values)


def prepare(loaded: LoadedScenario) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Profile table, demand cells and candidate arcs (every (cell, deployment) with R > 0 under the SLO)."""
    table = profile_table(loaded)
    cells = demand_cells(loaded.scenario)
    return table, cells, lookup(cells, table)


def optimize(loaded: LoadedScenario, settings: SolverSettings, baselines: bool | None = None) -> Outcome:
    scenario = loaded.scenario
    started = time.perf_counter()
    table, cells, candidates = prepare(loaded)
    sets = build_index_sets(scenario, cells, candidates)
    outcome = solve_sets(sets, settings, started)
    outcome.table, outcome.cells, outcome.candidates = table, cells, candidates
    want_baselines = scenario.options.baselines if baselines is None else baselines
    if want_baselines and outcome.solution is not None:
        outcome.baselines = single_accelerator_baselines(scenario, cells, candidates, settings)
    return outcome


def solve_sets(sets: IndexSets, settings: SolverSettings, started: float | None = None) -> Outcome:
    """Build and solve the MIP on given index sets; infeasible at once if a must-serve cell has no arc."""
    started = time.perf_counter() if started is None else started
    if unservable_cells(sets).any():
        return Outcome(Status.INFEASIBLE, sets, None, None, None, time.perf_counter() - started)
    model = build_model(sets)
    arrays = model.arrays()
    build_s = time.perf_counter() - started
    share = model.variables["share"]
    result, lp_bound = solve_with_incumbent(arrays, settings, share.columns, sets.arcs["deployment"].to_numpy())
    solution = None
    if result.has_solution:
        x = least_load_routing(model, sets, arrays, result.x, settings)
        solution = extract(model, sets, x)
    return Outcome(result.status, sets, result, solution, lp_bound, build_s, model_stats=model.stats())


def solve_with_incumbent(arrays, settings: SolverSettings, arc_columns: np.ndarray | None = None,
                         arc_groups: np.ndarray | None = None) -> tuple[SolverResult, float | None]:
    """LP relaxation, then a heuristic plan, then the MIP within what is left of the time limit.

    The relaxation gives the bound the contract reports and proves infeasibility early. The heuristic
    plan is the MIP restricted to the deployments the relaxation uses (`arc_groups` names each arc
    column's deployment), or failing that the relaxation's routing with only replicas and blocks left
    to solve. When that plan is within the requested gap of the LP bound it is proven optimal and the
    full MIP is skipped; otherwise the MIP runs, and if it stops with nothing better (time limit) the
    heuristic plan is returned as `feasible` with the best bound known, instead of no plan at all.
    """
    started = time.perf_counter()
    relaxed = solvers.solve(arrays.relaxed(), replace(settings, relax_integrality=True))
    if relaxed.status == Status.INFEASIBLE:
        return relaxed, None
    lp_bound = relaxed.objective if relaxed.status == Status.OPTIMAL else None
    incumbent = None
    if lp_bound is not None and arrays.integer.any() and (~arrays.integer).any():
        budget = max((settings.time_limit_s - (time.perf_counter() - started)) / 3, 0.1)
        incumbent = (_restricted_to_used(arrays, relaxed.x, arc_columns, arc_groups, settings, budget)
                     or _routing_fixed(arrays, relaxed.x, settings, budget))
        if incumbent is not None and relative_gap(incumbent[1], lp_bound) <= settings.mip_gap:
            return SolverResult(Status.OPTIMAL, incumbent[0], incumbent[1], lp_bound,
                                time.perf_counter() - started, relaxed.backend, settings.engine, relaxed.version,
                                "proven by the LP bound: the restricted MIP's plan is within the gap"), lp_bound
    remaining = settings.time_limit_s - (time.perf_counter() - started)
    result = solvers.solve(arrays, replace(settings, time_limit_s=max(remaining, 0.1)))
    result.solve_s = time.perf_counter() - started
    if result.status == Status.OPTIMAL or incumbent is None:
        return result, lp_bound
    if result.has_solution and result.objective <= incumbent[1]:
        return result, lp_bound
    bounds = [b for b in (result.bound, lp_bound) if b is not None]
    bound = max(bounds) if bounds else None
    message = f"{result.message}; plan from the heuristic (the MIP found nothing better in time)"
    return SolverResult(Status.FEASIBLE, incumbent[0], incumbent[1], bound, result.solve_s, result.backend,
                        result.engine, result.version, message.strip("; ")), lp_bound


def _restricted_to_used(arrays, x_lp, arc_columns, arc_groups, settings, time_limit):
    """The MIP with only the arcs of deployments the relaxation uses (a few percent of all arcs)."""
    if arc_columns is None or not len(arc_columns):
        return None
    used = np.unique(arc_groups[x_lp[arc_columns] > SHARE_EPS])
    dropped = np.zeros(arrays.num_variables, dtype=bool)
    dropped[arc_columns[~np.isin(arc_groups, used)]] = True
    result = solvers.solve(arrays.fix(dropped, np.zeros(int(dropped.sum()))), replace(settings, time_limit_s=time_limit))
    if not result.has_solution:
        return None
    x = np.zeros(arrays.num_variables)
    x[~dropped] = result.x
    return x, float(arrays.cost @ x + arrays.objective_offset)


def _routing_fixed(arrays, x_lp, settings, time_limit):
    """The relaxation's routing kept, replicas and blocks solved: always feasible unless caps bind."""
    integer = arrays.integer
    result = solvers.solve(arrays.fix(~integer, x_lp[~integer]), replace(settings, time_limit_s=time_limit))
    if not result.has_solution:
        return None
    x = x_lp.copy()
    x[integer] = result.x
    return x, float(arrays.cost @ x + arrays.objective_offset)


def least_load_routing(model, sets: IndexSets, arrays, x: np.ndarray, settings: SolverSettings) -> np.ndarray:
    """The tie rule for routing: with the solver's replicas, blocks and cost kept, serve as much
    traffic as possible, then use the least total replica load (the most spare capacity).

    Many routings cost the same (prepaid capacity is free at the margin; a replica has room to spare;
    free shedding costs what free capacity costs), and a solver picks among them by whim. Two LPs
    with the integers fixed and the cost capped at its value pick by this rule instead.
    """
    integer = arrays.integer
    fixed = arrays.fix(integer, np.round(x[integer]))
    tidy = fixed.with_row(fixed.cost, -np.inf, _cap(float(fixed.cost @ x[~integer])))
    unserved = np.zeros(arrays.num_variables)
    unserved[model.variables["unserved"].columns] = sets.cells["requests_per_s"].to_numpy()
    if (unserved[~integer] * arrays.upper[~integer]).any():  # some traffic may be shed: serve the most
        most = solvers.solve(tidy.with_objective(unserved[~integer]), replace(settings, relax_integrality=True))
        if most.status != Status.OPTIMAL:
            return x
        tidy = tidy.with_row(unserved[~integer], -np.inf, _cap(most.objective))
    load = np.zeros(arrays.num_variables)
    rate = sets.cells["requests_per_s"].to_numpy()[sets.arcs["cell"].to_numpy()]
    load[model.variables["share"].columns] = rate / sets.arcs["replica_requests_per_s"].to_numpy()
    result = solvers.solve(tidy.with_objective(load[~integer]), replace(settings, relax_integrality=True))
    if result.status != Status.OPTIMAL:
        return x
    tidied = x.copy()
    tidied[~integer] = result.x
    return tidied


def _cap(value: float) -> float:
    """A bound that keeps `value` feasible through solver tolerances."""
    return value + 1e-9 * max(1.0, abs(value))


def unservable_cells(sets: IndexSets) -> np.ndarray:
    """Must-serve cells with positive demand and no arc: no plan can exist."""
    cells = sets.cells
    has_arc = np.isin(np.arange(len(cells)), sets.arcs["cell"].to_numpy())
    return cells["must_serve"].to_numpy() & (cells["requests_per_s"].to_numpy() > 0) & ~has_arc


def extract(model, sets: IndexSets, x: np.ndarray) -> Solution:
    """Label the solver's vector by the index sets and normalize it (see module docstring)."""
    share = np.clip(model.values("share", x).to_numpy(), 0.0, 1.0)
    share[share < SHARE_EPS] = 0.0
    arcs = sets.arcs
    cells = sets.cells
    rate = cells["requests_per_s"].to_numpy()[arcs["cell"].to_numpy()]
    routing = arcs.assign(share=share, requests_per_s=rate * share)
    routing = routing.merge(cells[["input_tokens", "output_tokens"]], left_on="cell", right_index=True)
    routing = routing[routing["share"] > 0].reset_index(drop=True)

    served = np.bincount(arcs["cell"].to_numpy(), weights=share, minlength=len(cells))
    unserved_share = np.clip(1.0 - served, 0.0, 1.0)
    unserved_share[unserved_share < SHARE_EPS] = 0.0
    unserved = cells[["workload", "bucket"]].assign(
        share=unserved_share, requests_per_s=cells["requests_per_s"].to_numpy() * unserved_share
    )
    unserved_cost = float(
        (unserved["requests_per_s"] * SECONDS_PER_HOUR * cells["unserved_cost_per_request"]).sum()
    )

    load = np.bincount(
        routing["deployment"].to_numpy(),
        weights=(routing["requests_per_s"] / routing["replica_requests_per_s"]).to_numpy(),
        minlength=len(sets.deployments),
    )
    needed = np.ceil(load / (1.0 - sets.headroom) - REPLICA_EPS).clip(min=0)
    placed = np.round(model.values("replicas", x).to_numpy()).clip(min=0)
    replicas = trim_replicas(sets, placed, needed)
    return _assemble(sets, routing, unserved, replicas, load, unserved_cost)


def trim_replicas(sets: IndexSets, placed: np.ndarray, needed: np.ndarray) -> pd.DataFrame:
    """Drop replicas beyond what each deployment's load needs, from the dearest pool first.

    Dearest = highest price per chip-hour (prepaid counts 0), ties by later pool position. Trimming
    never raises cost and never breaks a constraint, and makes the plan independent of how the
    solver spent zero-cost slack.
    """
    placements = sets.placements.assign(replicas=placed)
    placements["price"] = sets.pools["price_per_chip_hour"].to_numpy()[placements["pool_position"].to_numpy()]
    order = placements.sort_values(["deployment", "price", "pool_position"], ascending=[True, True, True],
                                   kind="mergesort")
    # keep replicas in the cheapest pools first: cumulative replicas per deployment capped at need
    cumulative = order.groupby("deployment")["replicas"].cumsum().to_numpy()
    need = needed[order["deployment"].to_numpy()]
    before = cumulative - order["replicas"].to_numpy()
    kept = np.clip(need - before, 0, order["replicas"].to_numpy())
    order = order.assign(replicas=kept)
    return order.sort_values(["deployment", "pool_position"], kind="mergesort").drop(columns="price").reset_index(
        drop=True
    )


def _assemble(sets, routing, unserved, replicas, load, unserved_cost) -> Solution:
    deployments = sets.deployments
    chips = deployments["chips_per_replica"].to_numpy()[replicas["deployment"].to_numpy()]
    replicas = replicas.assign(chips=replicas["replicas"] * chips)
    replicas = replicas.merge(deployments, left_on="deployment", right_index=True)
    replicas = replicas[replicas["replicas"] > 0].reset_index(drop=True)
    replicas["replicas"] = replicas["replicas"].astype(int)
    replicas["chips"] = replicas["chips"].astype(int)

    pools = sets.pools.copy()
    used = replicas.groupby("pool")["chips"].sum().reindex(pools["pool"]).fillna(0).to_numpy()
    block = pools["block_chips"].to_numpy()
    reserved = (pools["kind"] == "reserved").to_numpy()
    committed = np.where(reserved, np.ceil(used / block - 1e-9) * block, used)
    price = pools["price_per_chip_hour"].to_numpy()
    per_hour = np.where(np.isin(pools["kind"], ["on_demand", "spot"]), used * price, 0.0)
    per_hour = np.where(reserved, committed * price, per_hour)
    max_chips = pools["max_chips"].to_numpy()
    pools = pools.assign(
        chips_used=used.astype(int),
        chips_committed=committed.astype(int),
        blocks=np.where(reserved, committed / block, 0).astype(int),
        utilization=np.where(max_chips > 0, used / np.maximum(max_chips, 1), 0.0),
        per_hour=per_hour,
    )
    deployment_load = pd.Series(load, index=deployments.index)
    replicas["load_replicas"] = deployment_load.reindex(replicas["deployment"]).to_numpy()
    return Solution(routing, unserved, replicas, pools, float(per_hour.sum()), unserved_cost)


def single_accelerator_baselines(scenario, cells, candidates, settings: SolverSettings) -> list[Baseline]:
    """The best plan using one accelerator type only, for every type that has a pool."""
    baselines = []
    for accelerator in sorted({pool.accelerator for pool in scenario.pools}):
        sets = build_index_sets(scenario, cells, candidates, accelerators={accelerator})
        outcome = solve_sets(sets, settings)
        name = f"only {accelerator}"
        if outcome.solution is None:
            reason = (
                "some must-serve bucket has no deployment on this accelerator"
                if outcome.result is None
                else f"solver: {outcome.status.value}"
            )
            baselines.append(Baseline(name, accelerator, False, outcome.status.value, None, reason))
        else:
            baselines.append(
                Baseline(name, accelerator, True, outcome.status.value, outcome.solution.objective)
            )
    return baselines

"""A solve from validated scenario to labelled solution: lookup, index sets, MIP, backend, baselines.

One wall-clock budget (`Budget`) covers the whole command: relaxation, heuristic, full MIP, the canonical
pass, tie-break LPs, baselines and diagnosis all take what is left of it, and whatever a stage had to
skip or cut short is recorded in `Outcome.notes` and the plan.

Bounds are only ever proven ones: the LP relaxation's optimum, or a MIP solver's dual bound. An incumbent
is never reported as a bound.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

import solvers
from placement.extract import SHARE_EPS, Solution, extract
from placement.formulation import SECONDS_PER_HOUR, arc_load, build_model
from placement.indexsets import IndexSets, build_index_sets
from placement.profiles import demand_cells, lookup, profile_table
from placement.scenario import LoadedScenario, Scenario
from solvers import SolverResult, SolverSettings, Status
from solvers.base import relative_gap

# The canonical pass (exact optimum, then the fewest replicas among plans of that cost) runs on models of at
# most this many variables: small instances, where two more exact MIPs cost little and make every engine
# return the same rows. Larger plans agree across engines in cost within the gap, not row by row.
CANONICAL_MAX_VARIABLES = 5000


class Budget:
    """Wall-clock seconds for a whole command, shared by its stages."""

    def __init__(self, seconds: float, started: float | None = None):
        self.seconds = float(seconds)
        self.started = time.perf_counter() if started is None else started

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def remaining(self) -> float:
        return max(self.seconds - self.elapsed, 0.0)

    def slice(self, fraction: float = 1.0, floor: float = 0.05) -> float:
        """Seconds a stage may take: a fraction of what remains, at least `floor`, never past the end."""
        return max(min(self.remaining * fraction, self.remaining), floor)

    @property
    def exhausted(self) -> bool:
        return self.remaining <= 0.05


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
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    canonical: bool = False
    rolling: dict | None = None              # a rolling horizon's window and steps (placement.rolling)

    @property
    def hours(self) -> float:
        return self.sets.horizon.total_hours


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


def optimize(loaded: LoadedScenario, settings: SolverSettings, baselines: bool | None = None,
             budget: Budget | None = None) -> Outcome:
    scenario = loaded.scenario
    budget = budget or Budget(settings.time_limit_s)
    started = time.perf_counter()
    table, cells, candidates = prepare(loaded)
    lookup_s = time.perf_counter() - started
    sets = build_index_sets(scenario, cells, candidates)
    outcome = solve_sets(sets, settings, budget, started)
    outcome.timings = {"lookup": lookup_s, **outcome.timings}
    outcome.table, outcome.cells, outcome.candidates = table, cells, candidates
    want_baselines = scenario.options.baselines if baselines is None else baselines
    if want_baselines and outcome.solution is not None:
        started = time.perf_counter()
        outcome.baselines = single_accelerator_baselines(scenario, cells, candidates, settings, budget,
                                                         outcome.notes)
        outcome.timings["baselines"] = time.perf_counter() - started
    elif not want_baselines:
        outcome.notes.append("single-accelerator baselines skipped (not asked for)")
    return outcome


def solve_sets(sets: IndexSets, settings: SolverSettings, budget: Budget | None = None,
               started: float | None = None, canonical: bool = True) -> Outcome:
    """Build and solve the MIP on given index sets; infeasible at once if a must-serve cell has no arc."""
    budget = budget or Budget(settings.time_limit_s)
    started = time.perf_counter() if started is None else started
    if unservable_cells(sets).any():
        return Outcome(Status.INFEASIBLE, sets, None, None, None, time.perf_counter() - started)
    clock = time.perf_counter()
    model = build_model(sets)
    arrays = model.arrays()
    timings = {"build": time.perf_counter() - clock}
    build_s = time.perf_counter() - started
    notes: list[str] = []
    share = model.variables["share"]
    groups = np.repeat(sets.arcs["deployment"].to_numpy(), share.coords.size // max(len(sets.arcs), 1))
    result, lp_bound = solve_with_incumbent(arrays, settings, share.columns, groups, budget, timings, notes)
    solution = None
    is_canonical = False
    if result.has_solution:
        x = result.x
        if canonical:
            clock = time.perf_counter()
            x, result, is_canonical = canonical_integers(model, sets, arrays, x, result, settings, budget, notes)
            timings["canonical"] = time.perf_counter() - clock
        clock = time.perf_counter()
        x = least_load_routing(model, sets, arrays, x, settings, budget, notes)
        timings["tie_break"] = time.perf_counter() - clock
        clock = time.perf_counter()
        blocks = model.array("blocks", x) if "blocks" in model.variables else None
        solution = extract(model, sets, x, blocks)
        timings["extract"] = time.perf_counter() - clock
    return Outcome(result.status, sets, result, solution, lp_bound, build_s, model_stats=model.stats(),
                   timings=timings, notes=notes, canonical=is_canonical)


def solve_with_incumbent(arrays, settings: SolverSettings, arc_columns: np.ndarray | None = None,
                         arc_groups: np.ndarray | None = None, budget: Budget | None = None,
                         timings: dict[str, float] | None = None,
                         notes: list[str] | None = None) -> tuple[SolverResult, float | None]:
    """LP relaxation, then a heuristic plan, then the MIP within what is left of the budget.

    The relaxation gives a proven bound and proves infeasibility early. The heuristic plan is the MIP
    restricted to the deployments the relaxation uses (`arc_groups` names each arc column's deployment),
    or failing that the relaxation's routing with only replicas and blocks left to solve. When that plan is
    within the requested gap of the LP bound it is proven optimal and the full MIP is skipped; otherwise the
    full MIP runs with the plan as its starting point, and if it stops with nothing better the heuristic
    plan is returned as `feasible` with the best proven bound, instead of no plan at all.
    """
    budget = budget or Budget(settings.time_limit_s)
    timings = timings if timings is not None else {}
    notes = notes if notes is not None else []
    clock = time.perf_counter()
    relaxed = solvers.solve(arrays.relaxed(), replace(settings, relax_integrality=True,
                                                      time_limit_s=budget.slice(0.5)))
    timings["relaxation"] = time.perf_counter() - clock
    if relaxed.status == Status.INFEASIBLE:
        return relaxed, None
    lp_bound = relaxed.objective if relaxed.status == Status.OPTIMAL else None
    incumbent = None
    if lp_bound is not None and arrays.integer.any() and (~arrays.integer).any():
        clock = time.perf_counter()
        allowance = budget.slice(1 / 3)
        incumbent = (_restricted_to_used(arrays, relaxed.x, arc_columns, arc_groups, settings, allowance)
                     or _routing_fixed(arrays, relaxed.x, settings, budget.slice(1 / 3)))
        timings["heuristic"] = time.perf_counter() - clock
        if incumbent is not None and relative_gap(incumbent[1], lp_bound) <= settings.mip_gap:
            return SolverResult(Status.OPTIMAL, incumbent[0], incumbent[1], lp_bound,
                                time.perf_counter() - clock, relaxed.backend, settings.engine, relaxed.version,
                                "proven by the LP bound: the restricted MIP's plan is within the gap"), lp_bound
    if budget.exhausted and incumbent is not None:
        notes.append("full MIP skipped: the time limit was reached after the heuristic plan")
        return SolverResult(Status.FEASIBLE, incumbent[0], incumbent[1], lp_bound, 0.0, relaxed.backend,
                            settings.engine, relaxed.version, "time limit: heuristic plan"), lp_bound
    clock = time.perf_counter()
    start = incumbent[0] if incumbent is not None else None
    result = solvers.solve(arrays, replace(settings, time_limit_s=budget.slice()), start=start)
    timings["mip"] = time.perf_counter() - clock
    bound = _proven_bound(result.bound, lp_bound)
    if result.has_solution and (incumbent is None or result.objective <= incumbent[1]):
        status = result.status
        if status == Status.FEASIBLE:
            notes.append("MIP stopped at the time limit: plan not proven optimal")
        return replace(result, bound=bound), lp_bound
    if incumbent is None:
        return replace(result, bound=bound), lp_bound
    notes.append("MIP found nothing better than the heuristic plan in time")
    message = f"{result.message}; plan from the heuristic (the MIP found nothing better in time)"
    gap = relative_gap(incumbent[1], bound)
    status = Status.OPTIMAL if gap is not None and gap <= settings.mip_gap else Status.FEASIBLE
    return SolverResult(status, incumbent[0], incumbent[1], bound, result.solve_s, result.backend,
                        result.engine, result.version, message.strip("; ")), lp_bound


def _proven_bound(*bounds: float | None) -> float | None:
    known = [b for b in bounds if b is not None and np.isfinite(b)]
    return max(known) if known else None


def _restricted_to_used(arrays, x_lp, arc_columns, arc_groups, settings, time_limit):
    """The MIP with only the arcs of deployments the relaxation uses (a few percent of all arcs)."""
    if arc_columns is None or not len(arc_columns):
        return None
    used = np.zeros(int(arc_groups.max()) + 1, dtype=bool)
    used[arc_groups[x_lp[arc_columns] > SHARE_EPS]] = True
    dropped = np.zeros(arrays.num_variables, dtype=bool)
    dropped[arc_columns[~used[arc_groups]]] = True
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


def canonical_integers(model, sets: IndexSets, arrays, x: np.ndarray, result: SolverResult,
                       settings: SolverSettings, budget: Budget, notes: list[str]):
    """The documented rule after cost, so every engine returns the same plan: the exact optimum (gap 0),
    then among plans of that cost the one with the fewest replicas, ties broken by deployment and pool
    order (each replica weighs 1 + rank / placements, in (model, accelerator, chips, pool) order).

    Runs on small models only (CANONICAL_MAX_VARIABLES) and within the budget; otherwise the solver's plan
    stands and the note says so.
    """
    if arrays.num_variables > CANONICAL_MAX_VARIABLES:
        notes.append(f"canonical pass skipped: {arrays.num_variables:,} variables > {CANONICAL_MAX_VARIABLES:,} "
                     "(plans from different engines agree in cost within the gap, not row by row)")
        return x, result, False
    exact = replace(settings, mip_gap=0.0)
    optimum = result
    if relative_gap(result.objective, result.bound) not in (None, 0.0) or result.status != Status.OPTIMAL:
        optimum = solvers.solve(arrays, replace(exact, time_limit_s=budget.slice(0.5)), start=x)
        if optimum.status != Status.OPTIMAL or optimum.objective > result.objective + 1e-9 * abs(result.objective):
            notes.append("canonical pass skipped: the exact optimum was not proven within the time limit")
            return x, result, False
    cap = _cap(optimum.objective) + 1e-7 * max(1.0, abs(optimum.objective))
    replicas = model.variables["replicas"]
    weight = np.zeros(arrays.num_variables)
    shape = replicas.coords.shape
    rank = np.arange(shape[0], dtype=float)[:, None, None] * np.ones(shape)
    weight[replicas.columns] = 1.0 + rank.ravel() / (shape[0] + 1)
    fewest = arrays.with_row(arrays.cost, -np.inf, cap - arrays.objective_offset).with_objective(weight)
    chosen = solvers.solve(fewest, replace(exact, time_limit_s=budget.slice(0.5)), start=optimum.x)
    if chosen.status != Status.OPTIMAL:
        notes.append("canonical pass skipped: the fewest-replica plan was not proven within the time limit")
        return optimum.x, optimum, False
    value = float(arrays.cost @ chosen.x + arrays.objective_offset)
    # a solve at gap 0 that ends optimal proves its objective: it is the bound (engines that report no dual
    # bound included)
    bound = _proven_bound(optimum.bound, result.bound, optimum.objective if optimum is not result else None)
    return chosen.x, replace(optimum, x=chosen.x, objective=value, bound=min(bound, value) if bound is not None
                             else None, status=Status.OPTIMAL), True


def least_load_routing(model, sets: IndexSets, arrays, x: np.ndarray, settings: SolverSettings,
                       budget: Budget | None = None, notes: list[str] | None = None) -> np.ndarray:
    """The tie rule for routing: with the solver's integers and cost kept, serve as much traffic as
    possible, then use the least total replica load (the most spare capacity).

    Many routings cost the same (prepaid capacity is free at the margin; a replica has room to spare;
    free shedding costs what free capacity costs), and a solver picks among them by whim. Two LPs with the
    integers fixed and the cost capped at its value pick by this rule instead. Arcs whose deployment has no
    replica in that (period, slice) can carry nothing, so they are left out of both LPs.
    """
    budget = budget or Budget(settings.time_limit_s)
    integer = arrays.integer
    fixed_columns = integer.copy()
    share = model.variables["share"]
    replicas = np.round(model.array("replicas", x))
    running = np.zeros((len(sets.deployments),) + replicas.shape[1:])
    np.add.at(running, sets.placements["deployment"].to_numpy(), replicas)
    idle = running[sets.arcs["deployment"].to_numpy()] <= 0            # (arcs, T, S)
    fixed_columns[share.columns[idle.ravel()]] = True
    values = np.where(integer, np.round(x), 0.0)
    fixed = arrays.fix(fixed_columns, values[fixed_columns])
    free = ~fixed_columns
    tidy = fixed.with_row(fixed.cost, -np.inf, _cap(float(fixed.cost @ x[free])))
    duration = sets.horizon.duration[None]
    unserved = np.zeros(arrays.num_variables)
    unserved[model.variables["unserved"].columns] = (sets.rates * duration).ravel()
    # the rule's LPs are solved by HiGHS whatever engine found the integers, so every engine's plan gets
    # the same routing to the last digit
    lp = replace(settings, backend="highspy", engine="highs", relax_integrality=True)
    if ((unserved[free] > 0) & (fixed.upper > 0)).any():  # some traffic may be shed: serve the most
        most = solvers.solve(tidy.with_objective(unserved[free]), replace(lp, time_limit_s=budget.slice(0.5)))
        if most.status != Status.OPTIMAL:
            (notes or []).append("routing tie rule skipped: its LP did not finish within the time limit")
            return x
        tidy = tidy.with_row(unserved[free], -np.inf, _cap(most.objective))
    load = np.zeros(arrays.num_variables)
    load[share.columns] = (arc_load(sets) * duration).ravel()
    result = solvers.solve(tidy.with_objective(load[free]), replace(lp, time_limit_s=budget.slice()))
    if result.status != Status.OPTIMAL:
        (notes or []).append("routing tie rule skipped: its LP did not finish within the time limit")
        return x
    tidied = np.where(fixed_columns, values, 0.0)
    tidied[free] = result.x
    return tidied


def _cap(value: float) -> float:
    """A bound that keeps `value` feasible through solver tolerances."""
    return value + 1e-9 * max(1.0, abs(value))


def unservable_cells(sets: IndexSets) -> np.ndarray:
    """Must-serve cells with positive demand somewhere in the horizon and no arc: no plan can exist."""
    cells = sets.cells
    has_arc = np.zeros(len(cells), dtype=bool)
    has_arc[sets.arcs["cell"].to_numpy()] = True
    demand = (sets.rates > 0).any(axis=(1, 2))
    return cells["must_serve"].to_numpy() & demand & ~has_arc


def single_accelerator_baselines(scenario, cells, candidates, settings: SolverSettings,
                                 budget: Budget | None = None, notes: list[str] | None = None) -> list[Baseline]:
    """The best plan using one accelerator type only, for every type that has a pool.

    Baselines solve to the same gap within what is left of the budget; one that cannot run in time is
    reported as skipped, not silently dropped.
    """
    budget = budget or Budget(settings.time_limit_s)
    accelerators = sorted({pool.accelerator for pool in scenario.pools})
    baselines = []
    for i, accelerator in enumerate(accelerators):
        name = f"only {accelerator}"
        if budget.exhausted:
            baselines.append(Baseline(name, accelerator, False, "skipped", None, "skipped: time limit reached"))
            (notes if notes is not None else []).append(f"baseline {name} skipped: time limit reached")
            continue
        sets = build_index_sets(scenario, cells, candidates, accelerators={accelerator})
        share = Budget(budget.remaining / (len(accelerators) - i))
        outcome = solve_sets(sets, replace(settings, time_limit_s=share.seconds), share, canonical=False)
        if outcome.solution is None:
            baselines.append(Baseline(name, accelerator, False, outcome.status.value, None,
                                      baseline_reason(scenario, sets, outcome, settings, share)))
        else:
            baselines.append(Baseline(name, accelerator, True, outcome.status.value, outcome.solution.objective))
    return baselines


def baseline_reason(scenario, sets: IndexSets, outcome: Outcome, settings: SolverSettings, budget: Budget) -> str:
    """What binds when one accelerator type cannot carry the plan: buckets it cannot serve at all, or the
    chips its pools lack (from the elastic model)."""
    stuck = unservable_cells(sets)
    if stuck.any():
        cells = sets.cells[stuck]
        listed = ", ".join(f"{w} bucket {b} ({i:,} in / {o:,} out)" for w, b, i, o in
                           zip(cells["workload"], cells["bucket"], cells["input_tokens"], cells["output_tokens"]))
        return f"no deployment on this accelerator can serve {listed} (context, SLO or quality)"
    if outcome.status != Status.INFEASIBLE:
        return f"solver: {outcome.status.value}"
    from placement.diagnosis import elastic_findings_for_sets

    findings = elastic_findings_for_sets(sets, replace(settings, time_limit_s=budget.slice()))
    supply = [f["message"] for f in findings if f.get("kind") in ("supply", "churn", "quality_mean")]
    return "; ".join(supply) or "infeasible: " + "; ".join(f["message"] for f in findings[:3])

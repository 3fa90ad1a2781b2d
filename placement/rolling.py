"""Rolling horizon: plan W periods ahead, commit the first, move on; for horizons too big to solve whole.

Step k solves periods k..k+W-1 (fewer at the end) as a scenario of their own, made by editing the
validated scenario document (placement.edits.validate_document): the window's periods, growth, caps, demand
and churn limits; as `fleet`, the fleet period k-1 ended with; as signed contracts (`committed`, with
`starts` when a purchase is still in its lead time), the scenario's own plus every block bought in the
periods already committed, so a later step neither re-buys nor loses them. Churn limits and costs apply at
every step as in the full model. Only period k's decisions are kept: its routing, replicas, fleet and the
blocks bought in it. Steps skip the canonical pass (an exact re-solve that only picks among equal-cost
plans): the time goes to the steps themselves.

The kept decisions are laid out on the full horizon's index sets and costed by the same code as any plan
(placement.extract.solution_from_arrays, purchases kept as committed), so the stitched plan has every
field of a full plan and the independent checker verifies it against the original scenario.

What it costs: a step sees W periods, so it buys a contract only if its term pays off within them (the
periods beyond the window are charged at the window's last period's hours), and a purchase whose lead time
ends past the window is never made. No bound covers the whole horizon, so a rolling plan is `feasible` at
best (exit 1). A step that runs out of its share of the time keeps, for its period, the plan the step
before made for it (when that step's window covered it); a step with no plan at all after earlier periods
were committed leaves no plan (`no_solution`): the full solve may still have one.

    from placement.rolling import solve_rolling
    result = solve_rolling("inputs/speed-lanes/quarters.yaml", window=2)
    result.plan["cost"]["total"], result.plan["solver"]["rolling"]
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from placement.edits import validate_document
from placement.errors import InputError
from placement.extract import solution_from_arrays
from placement.indexsets import IndexSets, build_index_sets
from placement.profiles import DEPLOYMENT_KEY
from placement.scenario import LoadedScenario
from placement.solve import Budget, Outcome, prepare, solve_sets
from solvers import SolverResult, SolverSettings, Status


def solve_rolling(scenario: str | Path | LoadedScenario, window: int, **options):
    """`placement solve SCENARIO --rolling W` from Python: a checked PlanResult (placement.api)."""
    from placement.api import solve_scenario

    return solve_scenario(scenario, rolling=window, **options)


def check_window(window: Any, where: tuple[str, str] = ("rolling", "window")) -> int:
    """The look-ahead window, or bad input (exit 3) naming where it was given."""
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise InputError.single(*where, f"the look-ahead window is a whole number of periods >= 1, got {window!r}")
    return int(window)


def optimize_rolling(loaded: LoadedScenario, window: int, settings: SolverSettings,
                     budget: Budget | None = None) -> Outcome:
    """Solve step by step and stitch the committed periods into one Outcome over the whole horizon."""
    window = check_window(window)
    budget = budget or Budget(settings.time_limit_s)
    clock = time.perf_counter()
    table, cells, candidates = prepare(loaded)
    full = build_index_sets(loaded.scenario, cells, candidates)
    timings: dict[str, float] = {"lookup": time.perf_counter() - clock}
    periods = full.horizon.period_ids
    document = loaded.scenario.model_dump(mode="python", exclude={"profiles"})
    windows = [periods[k: k + window] for k in range(len(periods))]
    plan = _Stitched(full, loaded.scenario)
    contracts = _signed(loaded.scenario, periods)
    fleet = document.get("fleet")
    steps: list[dict[str, Any]] = []
    stats: list[dict[str, int]] = []
    notes: list[str] = []
    version = ""
    previous = None    # the last step with a plan: (its solution, its window)
    for k, ids in enumerate(windows):
        started = time.perf_counter()
        step_doc = window_document(document, periods, k, len(ids), fleet, contracts) if len(periods) > 1 \
            else document
        sub = validate_document(step_doc, loaded, f"{loaded.path} (rolling step {ids[0]})")
        sets = build_index_sets(sub.scenario, cells, candidates)
        share = Budget(max(budget.remaining * len(ids) / sum(len(w) for w in windows[k:]), 0.05))
        outcome = solve_sets(sets, replace(settings, time_limit_s=share.seconds), share, canonical=False)
        seconds = time.perf_counter() - started
        for stage, value in outcome.timings.items():
            timings[stage] = timings.get(stage, 0.0) + value
        notes += [f"step {ids[0]}: {note}" for note in outcome.notes]
        stats.append(outcome.model_stats)
        version = outcome.result.version if outcome.result is not None else version
        steps.append({"period": ids[0], "window": list(ids), "status": outcome.status.value,
                      "gap": outcome.result.gap if outcome.result is not None else None, "seconds": seconds,
                      "variables": outcome.model_stats.get("variables", 0)})
        if outcome.solution is not None:
            previous = (outcome.solution, ids)
            steps[-1]["window_total"] = outcome.solution.total
        elif outcome.status != Status.INFEASIBLE and previous is not None and ids[0] in previous[1]:
            # out of time, not of plans: the step before planned this period too, consistently with every
            # period committed since; keep its plan for it
            steps[-1]["kept_plan_of"] = previous[1][0]
            notes.append(f"step {ids[0]}: no plan within its share of the time limit; {ids[0]} keeps the plan "
                         f"step {previous[1][0]} made for it")
        else:
            return _stopped(full, k, ids[0], outcome, settings, timings, notes, window, steps, stats, version,
                            (table, cells, candidates))
        fleet = plan.commit(k, previous[0])
        for pool_id, rows in plan.bought_in(k, previous[0]).items():
            contracts.setdefault(pool_id, []).extend(rows)
    clock = time.perf_counter()
    solution = plan.solution()
    timings["stitch"] = time.perf_counter() - clock
    message = (f"rolling horizon: {len(steps)} steps of {window} period(s) ahead, each period committed in turn; "
               "no bound against the full horizon")
    result = SolverResult(Status.FEASIBLE, None, solution.total, None, sum(s["seconds"] for s in steps),
                          settings.backend, settings.engine, version, message)
    notes.append("single-accelerator baselines skipped (rolling horizon)")
    return Outcome(Status.FEASIBLE, full, result, solution, None, timings.get("build", 0.0), table=table,
                   cells=cells, candidates=candidates, model_stats=_largest(stats), timings=timings, notes=notes,
                   rolling=_summary(window, steps))


def window_document(document: dict[str, Any], periods: list[str], k: int, width: int,
                    fleet: list[dict[str, Any]] | None, contracts: dict[str, list[tuple[int, int, int]]]
                    ) -> dict[str, Any]:
    """The scenario of periods k..k+width-1: the document with everything keyed by period cut to them,
    the fleet it starts from, and every contract active in the window as signed (`committed`).

    `contracts[pool]` lists (blocks, first, last) period positions over the whole horizon (last may lie
    beyond it); each is clipped to the window, starting late (`starts`) while still in its lead time.
    """
    ids = periods[k: k + width]
    keep = set(ids)

    def cut(mapping):
        return {p: v for p, v in mapping.items() if p in keep} if isinstance(mapping, dict) else mapping

    def signed(pool_id: str) -> list[dict[str, Any]]:
        rows = []
        for blocks, first, last in contracts.get(pool_id, []):
            lo, hi = max(first, k), min(last, k + width - 1)
            if lo <= hi:
                rows.append({"blocks": blocks, "through": periods[hi], **({"starts": periods[lo]} if lo > k else {})})
        return rows

    doc = dict(document)
    doc["periods"] = [p for p in document["periods"] if p["id"] in keep]
    doc["workloads"] = [{**w, "growth": cut(w.get("growth"))} for w in document["workloads"]]
    doc["pools"] = [{**p, "max_chips": cut(p["max_chips"]),
                     **({"committed": signed(p["id"])} if p["kind"] == "reserved" else {})}
                    for p in document["pools"]]
    if document.get("demand") is not None:
        doc["demand"] = [row for row in document["demand"] if row["period"] in keep]
    options = dict(document.get("options") or {})
    options["max_churn_chips"] = cut(options.get("max_churn_chips"))
    doc["options"] = options
    doc["fleet"] = fleet
    return doc


def _signed(scenario, periods: list[str]) -> dict[str, list[tuple[int, int, int]]]:
    """The scenario's signed contracts as (blocks, first, last) period positions."""
    position = {p: i for i, p in enumerate(periods)}
    return {pool.id: [(c.blocks, position[c.starts] if c.starts is not None else 0, position[c.through])
                      for c in pool.committed]
            for pool in scenario.pools if pool.kind == "reserved"}


class _Stitched:
    """The committed periods' decisions laid out on the full horizon's index sets."""

    def __init__(self, full: IndexSets, scenario):
        self.full = full
        self.pools = {p.id: p for p in scenario.pools}
        T, S = full.rates.shape[1:]
        self.share = np.zeros((len(full.arcs), T, S))
        self.replicas = np.zeros((len(full.placements), T, S))
        self.fleet = np.zeros((len(full.placements), T))
        self.bought = np.zeros((len(full.pools), T))
        self.slice_of = {s: i for i, s in enumerate(full.horizon.slice_ids)}
        self.arc_keys = full.arcs[["cell", *DEPLOYMENT_KEY]]
        deployments = full.deployments.iloc[full.placements["deployment"].to_numpy()].reset_index(drop=True)
        self.placement_keys = pd.concat([deployments[DEPLOYMENT_KEY], full.placements[["pool"]]], axis=1)
        self.pool_of = {p: i for i, p in enumerate(full.pools["pool"])}

    def commit(self, k: int, solution) -> list[dict[str, Any]]:
        """Keep period k of a step's plan (its first period); return the fleet it ends with."""
        period = self.full.horizon.period_ids[k]
        routing = solution.routing[solution.routing["period"] == period]
        at = _positions(self.arc_keys, routing, ["cell", *DEPLOYMENT_KEY], "routing")
        self.share[at, k, routing["slice"].map(self.slice_of).to_numpy()] = routing["share"].to_numpy()
        replicas = solution.replicas[solution.replicas["period"] == period]
        at = _positions(self.placement_keys, replicas, [*DEPLOYMENT_KEY, "pool"], "replicas")
        self.replicas[at, k, replicas["slice"].map(self.slice_of).to_numpy()] = replicas["replicas"].to_numpy()
        fleet = solution.fleet[solution.fleet["period"] == period]
        at = _positions(self.placement_keys, fleet, [*DEPLOYMENT_KEY, "pool"], "fleet")
        self.fleet[at, k] = fleet["replicas"].to_numpy()
        return [{"model": m, "accelerator": a, "chips_per_replica": int(c), "pool": p, "replicas": int(n)}
                for m, a, c, p, n in fleet[[*DEPLOYMENT_KEY, "pool", "replicas"]].itertuples(index=False)]

    def bought_in(self, k: int, solution) -> dict[str, list[tuple[int, int, int]]]:
        """Blocks a step's plan buys in period k: kept, and signed for every later step."""
        period = self.full.horizon.period_ids[k]
        added: dict[str, list[tuple[int, int, int]]] = {}
        bought = solution.commitments[solution.commitments["bought_in"] == period]
        for pool_id, blocks in zip(bought["pool"], bought["blocks"]):
            pool = self.pools[pool_id]
            self.bought[self.pool_of[pool_id], k] += blocks
            first = k + pool.lead_periods
            added.setdefault(pool_id, []).append((int(blocks), first, first + pool.term_periods - 1))
        return added

    def solution(self):
        return solution_from_arrays(self.full, self.share, self.replicas, self.fleet, bought=self.bought)


def _stopped(full: IndexSets, k: int, period: str, outcome: Outcome, settings: SolverSettings,
             timings: dict[str, float], notes: list[str], window: int, steps: list[dict[str, Any]],
             stats: list[dict[str, int]], version: str, prepared: tuple) -> Outcome:
    """No plan: the first step infeasible proves the scenario is (its window's rows are the full model's);
    a later one only that the periods committed before leave none (the full solve may find one)."""
    if k == 0 and outcome.status == Status.INFEASIBLE:
        status, why = Status.INFEASIBLE, f"the first window ({', '.join(steps[0]['window'])}) has no plan"
    else:
        status = Status.NO_SOLUTION
        why = (f"step {period} found no plan ({outcome.status.value})"
               + (" after the periods before it were committed; the full solve may still find one" if k else ""))
    notes.append(f"rolling horizon stopped: {why}")
    result = SolverResult(status, None, None, None, sum(s["seconds"] for s in steps), settings.backend,
                          settings.engine, version, f"rolling horizon: {why}")
    table, cells, candidates = prepared
    return Outcome(status, full, result, None, None, timings.get("build", 0.0), table=table, cells=cells,
                   candidates=candidates, model_stats=_largest(stats), timings=timings, notes=notes,
                   rolling=_summary(window, steps))


def _largest(stats: list[dict[str, int]]) -> dict[str, int]:
    """The model size of the largest step (what the machine had to hold at once)."""
    return max(stats, key=lambda s: s.get("variables", 0), default={})


def _summary(window: int, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """plan.json's solver.rolling: the window, and per step its periods, status, gap and seconds."""
    return {"window": window, "steps": steps, "seconds": sum(s["seconds"] for s in steps),
            "commits": "each step's first period: routing, replicas, fleet and the blocks bought in it",
            "bound": None}


def _positions(keys: pd.DataFrame, rows: pd.DataFrame, on: list[str], what: str) -> np.ndarray:
    """Where each of a step's rows sits in the full horizon's arcs or placements, by key."""
    found = rows[on].merge(keys[on].reset_index(names="_position"), on=on, how="left")["_position"]
    if found.isna().any():
        raise RuntimeError(f"rolling horizon: a step's {what} row has no place in the full horizon's model")
    return found.to_numpy(dtype=int)

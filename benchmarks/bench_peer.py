"""placement against the way peers build the same MIP: PuLP, one Python call per variable and per term, CBC.

The instance is bench_scale.write_instance's (one period, one slice). Both sides share the lookup (which arcs
exist and their replica throughput R): `load_scenario`, `prepare` and `build_index_sets`, timed apart. The peer
then builds formulation.md's model from those tables the usual PuLP way (a dict of variables, one `add_variable` call per arc share,
per replica count per (deployment, pool), per reserved pool's blocks; one lpSum per constraint) and solves it
with PuLP's bundled CBC. Objective in placement's units: currency over the horizon (printed per hour).

Each size runs once, in a fresh process (its peak memory is its own); placement runs as `placement solve` on
the same instance through bench_scale.run, for the comparison column.

    python benchmarks/bench_peer.py --workloads 300 1000 3000 --time-limit 600
    python benchmarks/bench_peer.py --workloads 300 --no-placement
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

import solvers.pulp_backend  # noqa: E402,F401  (loads OR-Tools before PuLP: see solvers/pulp_backend.py)
import pulp  # noqa: E402

from bench_scale import run as run_placement, write_instance  # noqa: E402
from placement.formulation import SECONDS_PER_HOUR, SHED_TIE_BREAK  # noqa: E402
from placement.indexsets import IndexSets, build_index_sets  # noqa: E402
from placement.scenario import load_scenario  # noqa: E402
from placement.solve import prepare  # noqa: E402
from solvers.pulp_backend import _cbc_bound  # noqa: E402


@dataclass
class PeerModel:
    problem: pulp.LpProblem
    hours: float             # horizon hours: objective / hours is currency per hour
    variables: int
    constraints: int


def read_sets(scenario: Path) -> tuple[IndexSets, dict[str, float]]:
    """Parse the YAML and CSV, then the shared lookup (profile table, cells, arcs, index sets), each timed."""
    started = time.perf_counter()
    loaded = load_scenario(scenario)
    parsed = time.perf_counter()
    _, cells, candidates = prepare(loaded)
    sets = build_index_sets(loaded.scenario, cells, candidates)
    return sets, {"parse_s": parsed - started, "lookup_s": time.perf_counter() - parsed}


def _check_supported(sets: IndexSets) -> None:
    """The peer writes the single-period, single-slice families only; refuse anything it would get wrong."""
    pools = sets.pools
    unsupported = {
        "more than one period or slice": not sets.horizon.single,
        "churn limits or prices (fleet variables)": sets.track_fleet,
        "max_shapes_per_model_accelerator": sets.max_shapes is not None,
        "max_spot_share": sets.max_spot_share is not None,
        "signed reserved contracts": bool(sets.committed.any()),
        "reserved lead_periods > 0": bool((pools.loc[pools["kind"] == "reserved", "lead_periods"] > 0).any()),
        "spot availability < 1": bool((sets.availability < 1).any()),
    }
    found = [name for name, present in unsupported.items() if present]
    if found:
        raise ValueError(f"bench_peer's model does not write: {', '.join(found)}")


def build_peer(sets: IndexSets, relax: bool = False) -> PeerModel:
    """formulation.md's MIP written as peers write it: Python loops, one add_variable per variable, lpSum per row.

    Same variables, bounds, costs and rows as placement.formulation.build_model for a one-period, one-slice
    scenario (replica bounds included: min(cap / chips, replicas that serving every reachable cell whole
    would take)). relax=True makes every variable continuous (the LP relaxation).
    """
    _check_supported(sets)
    integer = pulp.LpContinuous if relax else pulp.LpInteger
    hours = float(sets.horizon.total_hours)
    problem = pulp.LpProblem("peer", pulp.LpMinimize)

    cells = sets.cells
    rate = [float(r) for r in sets.rates[:, 0, 0]]
    must = cells["must_serve"].tolist()
    shed_price = cells["unserved_cost_per_request"].tolist()
    headroom = cells["headroom"].tolist()
    cell_workload = cells["workload"].tolist()
    arc_cell = sets.arcs["cell"].tolist()
    arc_deployment = sets.arcs["deployment"].tolist()
    arc_R = sets.arcs["replica_requests_per_s"].tolist()
    arc_quality = sets.arcs["quality"].tolist()
    chips = sets.deployments["chips_per_replica"].tolist()
    pool_kind = sets.pools["kind"].tolist()
    pool_price = sets.pools["price_per_chip_hour"].tolist()
    pool_block = sets.pools["block_chips"].tolist()
    pool_term = sets.pools["term_periods"].tolist()
    pool_cap = [float(c) for c in sets.caps[:, 0]]
    floors = dict(zip(sets.workloads["workload"].tolist(), sets.workloads["min_mean"].tolist()))

    # x[a]: share of the arc's cell served by its deployment; load: replicas one unit of share uses
    share = {}
    load = {}
    arcs_of_cell = defaultdict(list)
    arcs_of_deployment = defaultdict(list)
    need = defaultdict(float)
    for a in range(len(arc_cell)):
        c, d = arc_cell[a], arc_deployment[a]
        share[a] = problem.add_variable(f"x_{c}_{d}", lowBound=0, upBound=1)
        load[a] = rate[c] / (arc_R[a] * (1.0 - headroom[c]))
        arcs_of_cell[c].append(a)
        arcs_of_deployment[d].append(a)
        need[d] += load[a]

    # u[c]: unserved share, fixed to 0 where the workload must be served
    unserved = {}
    objective = []
    for c in range(len(rate)):
        fixed = must[c] and rate[c] > 0
        unserved[c] = problem.add_variable(f"u_{c}", lowBound=0, upBound=0 if fixed else 1)
        objective.append(rate[c] * SECONDS_PER_HOUR * max(shed_price[c], SHED_TIE_BREAK) * hours * unserved[c])

    # n[d, p]: replicas of deployment d in pool p; on-demand and spot pay per chip-hour, the others nothing
    replicas = {}
    placements_of_deployment = defaultdict(list)
    placements_of_pool = defaultdict(list)
    for d, p in zip(sets.placements["deployment"].tolist(), sets.placements["pool_position"].tolist()):
        upper = min(math.floor(pool_cap[p] / chips[d]), math.ceil(need[d] - 1e-9))
        replicas[d, p] = problem.add_variable(f"n_{d}_{p}", lowBound=0, upBound=upper, cat=integer)
        placements_of_deployment[d].append(p)
        placements_of_pool[p].append(d)
        if pool_kind[p] in ("on_demand", "spot"):
            objective.append(pool_price[p] * chips[d] * hours * replicas[d, p])

    # k[p]: blocks of a reserved pool, paid for the term (beyond the horizon at the period's hours)
    blocks = {}
    for p, kind in enumerate(pool_kind):
        if kind == "reserved":
            blocks[p] = problem.add_variable(f"k_{p}", lowBound=0, upBound=math.floor(pool_cap[p] / pool_block[p]),
                                        cat=integer)
            objective.append(pool_price[p] * pool_block[p] * hours * pool_term[p] * blocks[p])
    problem += pulp.lpSum(objective)

    for c in range(len(rate)):
        problem += pulp.lpSum(share[a] for a in arcs_of_cell[c]) + unserved[c] == 1, f"coverage_{c}"
    for d in range(len(chips)):
        problem += (pulp.lpSum(load[a] * share[a] for a in arcs_of_deployment[d])
                    - pulp.lpSum(replicas[d, p] for p in placements_of_deployment[d]) <= 0), f"capacity_{d}"
    cap_rows = 0
    for p, kind in enumerate(pool_kind):
        used = pulp.lpSum(chips[d] * replicas[d, p] for d in placements_of_pool[p])
        if kind == "reserved":
            cap_rows += 2
            problem += used - pool_block[p] * blocks[p] <= 0, f"reserved_blocks_{p}"
            problem += pool_block[p] * blocks[p] <= pool_cap[p], f"reserved_cap_{p}"
        elif placements_of_pool[p]:  # a pool no replica fits in has no row
            problem += used <= pool_cap[p], f"cap_{p}"
            cap_rows += 1

    # request-weighted mean quality of each workload's traffic >= its floor (rows divided by its requests)
    requests = defaultdict(float)
    arcs_of_workload = defaultdict(list)
    for c in range(len(rate)):
        requests[cell_workload[c]] += rate[c]
    for a in range(len(arc_cell)):
        arcs_of_workload[cell_workload[arc_cell[a]]].append(a)
    quality_rows = 0
    for w, floor in floors.items():
        if floor != floor:  # NaN: no mean-quality floor
            continue
        total = requests[w] if requests[w] > 0 else 1.0
        problem += pulp.lpSum((arc_quality[a] - floor) * rate[arc_cell[a]] / total * share[a]
                              for a in arcs_of_workload[w]) >= 0, f"quality_{w}"
        quality_rows += 1

    variables = len(share) + len(unserved) + len(replicas) + len(blocks)
    constraints = len(rate) + len(chips) + cap_rows + quality_rows
    return PeerModel(problem, hours, variables, constraints)


def solve_peer(model: PeerModel, time_limit: float, gap: float = 1e-4) -> dict:
    """CBC through PuLP as a peer calls it; CBC's own log gives its wall seconds, its result line and bound."""
    with tempfile.TemporaryDirectory(prefix="peer-cbc-") as folder:
        log = Path(folder) / "cbc.log"
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=gap, threads=1, logPath=str(log))
        started = time.perf_counter()
        model.problem.solve(solver)
        solve_s = time.perf_counter() - started
        text = log.read_text(errors="replace") if log.exists() else ""
    objective = pulp.value(model.problem.objective)
    has_solution = model.problem.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
    objective = float(objective) if has_solution and objective is not None else None
    result = re.findall(r"Result - (.+)", text)
    cbc_wall = re.findall(r"Wallclock seconds\):\s*([0-9.]+)", text)
    bound = _cbc_bound(text, objective) if objective is not None else None
    return {
        "status": pulp.LpStatus[model.problem.status],
        "solution": pulp.LpSolution[model.problem.sol_status],
        "cbc_result": result[-1].strip() if result else "",
        "objective": objective,
        "objective_per_hour": None if objective is None else objective / model.hours,
        "bound_per_hour": None if bound is None else bound / model.hours,
        "gap": None if objective is None or bound is None else max(0.0, objective - bound) / max(abs(objective),
                                                                                                   1e-9),
        "solve_s": solve_s,
        "cbc_s": float(cbc_wall[-1]) if cbc_wall else None,
    }


def peer_run(workloads: int, time_limit: float) -> dict:
    """One size, end to end, in this process: write the instance, read it, build, solve."""
    with tempfile.TemporaryDirectory(prefix="peer-bench-") as tmp:
        scenario = write_instance(Path(tmp) / "in", workloads)
        sets, timings = read_sets(scenario)
    started = time.perf_counter()
    model = build_peer(sets)
    timings["build_s"] = time.perf_counter() - started
    outcome = solve_peer(model, time_limit)
    timings["solve_s"] = outcome.pop("solve_s")
    row = {"workloads": workloads, "arcs": len(sets.arcs), "variables": model.variables,
           "constraints": model.constraints, **outcome, **timings}
    row["total_s"] = sum(timings.values())
    row["python_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row["cbc_peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {k: round(v, 4) if isinstance(v, float) and k.endswith("_s") else v for k, v in row.items()}


def peer_in_fresh_process(workloads: int, time_limit: float) -> dict:
    """The peer in its own process group; stopped (CBC included) when it overruns its limit by far.

    CBC does not check its time limit in every phase: at 3,000 workloads it ran 28 min past a 600 s limit.
    """
    wall_limit = 2 * time_limit + 120
    child = subprocess.Popen([sys.executable, __file__, "--one", str(workloads), "--time-limit", str(time_limit)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                             start_new_session=True)
    try:
        out, err = child.communicate(timeout=wall_limit)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        return {"workloads": workloads, "cbc_result": f"killed: no answer within {wall_limit:.0f} s wall",
                "total_s": None}
    if child.returncode != 0:
        return {"workloads": workloads, "error": err.strip()[-300:]}
    return json.loads(out.strip().splitlines()[-1])


def compare(peer: dict, ours: dict) -> dict:
    """One row: the peer's stages, placement's whole command, the speed-up and the cost difference."""
    row = {"workloads": peer["workloads"], "variables": peer.get("variables"),
           **{f"peer_{k}": peer.get(k) for k in ("parse_s", "lookup_s", "build_s", "solve_s", "cbc_s", "total_s",
                                                  "objective_per_hour", "gap", "cbc_result")}}
    if ours:
        row.update({"placement_variables": ours.get("variables"), "placement_wall_s": ours.get("wall_s"),
                    "placement_status": ours.get("status"), "placement_per_hour": ours.get("objective"),
                    "placement_gap": ours.get("gap")})
        if ours.get("wall_s") and peer.get("total_s"):
            row["speedup"] = round(peer["total_s"] / ours["wall_s"], 2)
        if ours.get("objective") and peer.get("objective_per_hour"):
            row["cost_diff_rel"] = (peer["objective_per_hour"] - ours["objective"]) / ours["objective"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, nargs="+", default=[300, 1000, 3000])
    parser.add_argument("--time-limit", type=float, default=600)
    parser.add_argument("--no-placement", action="store_true", help="skip the `placement solve` column")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one size, one JSON line
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(peer_run(args.one, args.time_limit)), flush=True)
        return
    rows = []
    for workloads in args.workloads:
        peer = peer_in_fresh_process(workloads, args.time_limit)
        print(json.dumps({"peer": peer}), flush=True)
        ours = {} if args.no_placement else run_placement(workloads, 1, 1, "highspy", "highs", args.time_limit)
        if ours:
            print(json.dumps({"placement": ours}), flush=True)
        rows.append(compare(peer, ours))
        print(json.dumps(rows[-1]), flush=True)
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()

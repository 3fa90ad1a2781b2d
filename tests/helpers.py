"""Test helpers: write small scenarios to disk, and find their optimum by brute-force enumeration.

The brute force shares no code with the formulation: it enumerates integer replicas per
(deployment, pool), prices them by the scenario rules, and checks routing with scipy's linprog.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.optimize import linprog

from placement.scenario import load_scenario


def write_scenario(folder: Path, spec: dict[str, Any], name: str = "scenario.yaml") -> Path:
    """Write a scenario from a compact spec; `profiles` rows are tuples
    (model, accelerator, chips, input_tokens, output_tokens, requests_per_s[, tok/s/user, ttft_s])."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "name": spec.get("name", "test"),
        "hours": spec.get("hours", 100),
        "accelerators": [{"id": a} if isinstance(a, str) else a for a in spec["accelerators"]],
        "models": spec["models"],
        "workloads": [_workload(w) for w in spec["workloads"]],
        "pools": spec["pools"],
        "options": {"headroom": spec.get("headroom", 0.0), "solver": spec.get("solver", {}),
                    "baselines": spec.get("baselines", False),
                    **({"max_shapes_per_model_accelerator": spec["max_shapes"]} if spec.get("max_shapes") else {})},
    }
    doc.update(spec.get("extra", {}))                 # top-level fields beyond the helper's (periods, fleet...)
    doc["options"].update(spec.get("options", {}))     # options beyond the helper's (churn...)
    rows = spec.get("profiles", [])
    header = ["model", "accelerator", "chips_per_replica", "input_tokens", "output_tokens", "requests_per_s",
              "output_tokens_per_s_per_user", "ttft_s"]
    lines = [",".join(header)]
    for row in rows:
        cells = list(row) + [""] * (len(header) - len(row))
        lines.append(",".join(str(c) for c in cells))
    (folder / "profiles.csv").write_text("\n".join(lines) + "\n")
    doc["profiles"] = "profiles.csv"
    path = folder / name
    if name.endswith(".json"):
        path.write_text(json.dumps(doc))
    else:
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _workload(w: dict[str, Any]) -> dict[str, Any]:
    out = dict(w)
    out["buckets"] = [
        {"input_tokens": b[0], "output_tokens": b[1], "share": b[2]} if isinstance(b, (tuple, list)) else b
        for b in w["buckets"]
    ]
    return out


def brute_force(path: Path, max_replicas: int = 8) -> float | None:
    """Least objective (per hour) over every integer replica vector up to max_replicas per placement.

    Lengths in these tests match profile rows exactly and carry no SLO columns, so R is the row.
    Returns None when no vector is feasible.
    """
    scenario = load_scenario(path).scenario
    profiles = load_scenario(path).profiles
    headroom = scenario.options.headroom
    cells = []
    for w in scenario.workloads:
        for b, bucket in enumerate(w.buckets):
            cells.append((w, b, bucket, w.requests_per_s * bucket.share))
    deployments = sorted({(r.model, r.accelerator, int(r.chips_per_replica)) for r in profiles.itertuples()})
    models = {m.id: m for m in scenario.models}
    R = {}
    for ci, (w, b, bucket, rate) in enumerate(cells):
        for di, (m, a, c) in enumerate(deployments):
            match = profiles[(profiles.model == m) & (profiles.accelerator == a) & (profiles.chips_per_replica == c)
                             & (profiles.input_tokens == bucket.input_tokens)
                             & (profiles.output_tokens == bucket.output_tokens)]
            if match.empty or match.requests_per_s.max() <= 0:
                continue
            if w.allowed_models is not None and m not in w.allowed_models:
                continue
            if w.quality is not None:
                score = models[m].quality.get(w.quality.metric)
                if score is None or (w.quality.min is not None and score < w.quality.min):
                    continue
            R[(ci, di)] = float(match.requests_per_s.max())
    placements = [(di, p) for di, d in enumerate(deployments) for p in scenario.pools
                  if p.accelerator == d[1] and d[2] <= p.max_chips]
    best = None
    for vector in itertools.product(range(max_replicas + 1), repeat=len(placements)):
        chips_in = {p.id: 0 for p in scenario.pools}
        replicas = [0] * len(deployments)
        for (di, p), n in zip(placements, vector):
            chips_in[p.id] += n * deployments[di][2]
            replicas[di] += n
        if any(chips_in[p.id] > p.max_chips for p in scenario.pools):
            continue
        cost = 0.0
        for p in scenario.pools:
            used = chips_in[p.id]
            if p.kind in ("on_demand", "spot"):
                cost += used * p.price
            elif p.kind == "reserved":
                cost += math.ceil(used / p.block_chips) * p.block_chips * p.price
        if best is not None and cost >= best:
            continue
        shed = _min_shedding(cells, deployments, R, replicas, headroom, models)
        if shed is None:
            continue
        total = cost + shed
        if best is None or total < best - 1e-9:
            best = total
    return best


def _min_shedding(cells, deployments, R, replicas, headroom, models) -> float | None:
    """Least shedding penalty for given replicas, by an LP over shares (None if infeasible)."""
    arcs = sorted(R)
    n_x, n_u = len(arcs), len(cells)
    cost = np.zeros(n_x + n_u)
    for ci, (w, b, bucket, rate) in enumerate(cells):
        cost[n_x + ci] = rate * 3600 * (w.unserved_cost_per_request or 0.0)
    # a must-serve bucket with no demand has nothing to serve: its (zero) traffic may count as shed
    bounds = [(0, 1)] * n_x + [(0, 0 if w.must_serve and rate > 0 else 1) for (w, _, _, rate) in cells]
    a_eq = np.zeros((n_u, n_x + n_u))
    for k, (ci, di) in enumerate(arcs):
        a_eq[ci, k] = 1
    for ci in range(n_u):
        a_eq[ci, n_x + ci] = 1
    rows, rhs = [], []
    for di in range(len(deployments)):
        row = np.zeros(n_x + n_u)
        for k, (ci, dj) in enumerate(arcs):
            if dj == di:
                row[k] = cells[ci][3] / R[(ci, di)]
        rows.append(row)
        rhs.append((1 - headroom) * replicas[di])
    workloads = {}
    for ci, (w, *_rest) in enumerate(cells):
        workloads.setdefault(w.id, (w, []))[1].append(ci)
    for w, members in workloads.values():
        if w.quality is None or w.quality.min_mean is None:
            continue
        row = np.zeros(n_x + n_u)
        for k, (ci, di) in enumerate(arcs):
            if ci in members:
                score = models[deployments[di][0]].quality[w.quality.metric]
                row[k] = -cells[ci][2].share * (score - w.quality.min_mean)
        rows.append(row)
        rhs.append(0.0)
    result = linprog(cost, A_ub=np.array(rows) if rows else None, b_ub=np.array(rhs) if rows else None,
                     A_eq=a_eq, b_eq=np.ones(n_u), bounds=bounds, method="highs")
    if result.status != 0:
        return None
    return float(result.fun)


def benchmark_model(folder: Path, workloads: int, periods: int = 1, slices: int = 1, seed: int = 7):
    """A benchmark instance (benchmarks/bench_scale.py's generator) built into its model: (index sets,
    model, arrays, settings)."""
    import sys

    from placement.formulation import build_model
    from placement.indexsets import build_index_sets
    from placement.solve import prepare, settings_from

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_scale import write_instance

    loaded = load_scenario(write_instance(folder, workloads, periods, slices, seed=seed))
    _, cells, candidates = prepare(loaded)
    sets = build_index_sets(loaded.scenario, cells, candidates)
    built = build_model(sets)
    return sets, built, built.arrays(), settings_from(loaded.scenario)


def solved_benchmark_model(folder: Path, workloads: int, periods: int = 1, slices: int = 1, seed: int = 7):
    """benchmark_model's, and its exact optimum by HiGHS at gap 0 (a SolverResult)."""
    from dataclasses import replace

    import solvers

    sets, built, arrays, settings = benchmark_model(folder, workloads, periods, slices, seed)
    exact = solvers.solve(arrays, replace(settings, mip_gap=0.0, time_limit_s=300))
    assert exact.status == solvers.Status.OPTIMAL
    return sets, built, arrays, settings, exact

"""Build and solve time as the instance grows (a benchmark, not a test).

Synthetic but shaped like real fleets: W workloads x B length buckets, M models x A accelerators
x C chip counts = deployments, 2-3 pools per accelerator (prepaid, reserved in blocks, on-demand).
Every (cell, deployment) pair gets an operating point, so arcs = cells x deployments before the
SLO and quality filters. Prints one row per size and backend: arcs, variables, nonzeros, lookup,
build and solve seconds (solve = LP relaxation, the MIP restricted to the deployments the LP uses, and
the full MIP only when that plan is not within the gap of the LP bound, as `placement solve` runs it),
status, gap, LP bound, and which proved the plan.

    python benchmarks/bench_scale.py                 # default ladder, both backends where sensible
    python benchmarks/bench_scale.py --sizes 1 2 3 --backends ortools
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from placement.formulation import build_model  # noqa: E402
from placement.indexsets import build_index_sets  # noqa: E402
from placement.profiles import demand_cells, lookup  # noqa: E402
from placement.scenario import LoadedScenario, Scenario, canonical_hash  # noqa: E402
from placement.solve import extract, solve_with_incumbent  # noqa: E402
from solvers import SolverSettings  # noqa: E402

# (workloads, buckets per workload, models, accelerators, chip options per pair)
LADDER = {
    1: (4, 4, 2, 3, 2),
    2: (10, 6, 4, 4, 2),
    3: (20, 8, 6, 6, 3),
    4: (40, 8, 8, 8, 3),
    5: (60, 10, 10, 10, 3),
    6: (80, 10, 12, 10, 3),
}


def synthetic(workloads: int, buckets: int, models: int, accelerators: int, chip_options: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    accel_ids = [f"acc{a}" for a in range(accelerators)]
    model_ids = [f"model{m}" for m in range(models)]
    quality = {m: float(50 + 30 * i / max(models - 1, 1)) for i, m in enumerate(model_ids)}
    lengths = [(int(2 ** rng.integers(10, 18)), int(2 ** rng.integers(8, 13))) for _ in range(workloads * buckets)]
    doc = {
        "name": f"bench-{workloads}x{buckets}x{models}x{accelerators}x{chip_options}",
        "hours": 2190,
        "accelerators": [{"id": a} for a in accel_ids],
        "models": [{"id": m, "quality": {"q": quality[m]}} for m in model_ids],
        "workloads": [],
        "pools": [],
        "options": {"headroom": 0.1, "baselines": False},
    }
    for w in range(workloads):
        shares = rng.dirichlet(np.ones(buckets))
        shares = np.round(shares / shares.sum(), 12)
        shares[-1] = 1.0 - shares[:-1].sum()
        doc["workloads"].append({
            "id": f"w{w}",
            "requests_per_s": float(rng.uniform(100, 2000)),
            "buckets": [{"input_tokens": lengths[w * buckets + b][0], "output_tokens": lengths[w * buckets + b][1],
                         "share": float(shares[b])} for b in range(buckets)],
            "slo": {"min_output_tokens_per_s": float(rng.choice([20, 50, 100]))},
            "quality": {"metric": "q", "min_mean": float(rng.uniform(55, 70))},
        })
    for i, a in enumerate(accel_ids):
        price = float(rng.uniform(1.5, 9))
        doc["pools"] += [
            {"id": f"{a}-prepaid", "accelerator": a, "kind": "prepaid", "max_chips": int(rng.integers(0, 64))},
            {"id": f"{a}-reserved", "accelerator": a, "kind": "reserved", "max_chips": 65536, "block_chips": 32,
             "price_per_chip_hour": round(price * 0.5, 2)},
            {"id": f"{a}-on-demand", "accelerator": a, "kind": "on_demand", "max_chips": 65536,
             "price_per_chip_hour": round(price, 2)},
        ]
    scenario = Scenario.model_validate(doc)
    rows = []
    points = sorted(set(lengths))
    for m_index, m in enumerate(model_ids):
        for a_index, a in enumerate(accel_ids):
            speed_scale = rng.uniform(0.5, 2.0)
            for c in range(chip_options):
                chips = 2 ** c
                for n_in, n_out in points:
                    for batch in (1, 8, 64):
                        speed = speed_scale * 400 / (1 + m_index) / (1 + batch / 32) * chips ** 0.3
                        rps = batch / (n_in / (20000 * chips * speed_scale) + n_out / speed)
                        rows.append((m, a, chips, n_in, n_out, rps, speed, n_in / (20000 * chips)))
    table = pd.DataFrame(rows, columns=["model", "accelerator", "chips_per_replica", "input_tokens", "output_tokens",
                                        "requests_per_s", "output_tokens_per_s_per_user", "ttft_s"])
    for column in ("output_tokens_per_s", "batch_size"):
        table[column] = np.nan
    table["source"] = "measured"
    table["note"] = None
    return LoadedScenario(scenario, Path("<synthetic>"), table, canonical_hash(scenario, table))


def run(size: int, backend: str, engine: str, time_limit: float) -> dict:
    loaded = synthetic(*LADDER[size])
    t0 = time.perf_counter()
    cells = demand_cells(loaded.scenario)
    candidates = lookup(cells, loaded.profiles)
    t1 = time.perf_counter()
    sets = build_index_sets(loaded.scenario, cells, candidates)
    model = build_model(sets)
    arrays = model.arrays()
    t2 = time.perf_counter()
    result, lp_bound = solve_with_incumbent(
        arrays, SolverSettings(backend=backend, engine=engine, time_limit_s=time_limit, mip_gap=1e-4),
        model.variables["share"].columns, sets.arcs["deployment"].to_numpy())
    objective = extract(model, sets, result.x).objective if result.has_solution else None
    stats = model.stats()
    return {
        "size": size, "backend": f"{backend}/{engine}", "cells": len(sets.cells), "deployments": len(sets.deployments),
        "arcs": len(sets.arcs), "variables": stats["variables"], "integers": stats["integer_variables"],
        "rows": stats["constraints"], "nonzeros": stats["nonzeros"],
        "lookup_s": round(t1 - t0, 3), "build_s": round(t2 - t1, 3), "solve_s": round(result.solve_s, 3),
        "status": result.status.value, "objective": None if objective is None else round(objective, 2),
        "gap": None if result.gap is None else round(result.gap, 6),
        "proof": "LP bound" if "proven by the LP bound" in result.message else "MIP",
        "lp_bound": None if lp_bound is None else round(lp_bound, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--backends", nargs="+", default=["ortools", "pulp"])
    parser.add_argument("--time-limit", type=float, default=120)
    parser.add_argument("--pulp-max-size", type=int, default=3, help="PuLP builds row by row; skip it beyond this")
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        for backend, engine in (("ortools", "highs"), ("pulp", "cbc")):
            if backend not in args.backends or (backend == "pulp" and size > args.pulp_max_size):
                continue
            row = run(size, backend, engine, args.time_limit)
            rows.append(row)
            print(pd.DataFrame([row]).to_string(index=False, header=len(rows) == 1), flush=True)
    print()
    print(pd.DataFrame(rows).to_markdown(index=False) if _has_tabulate() else pd.DataFrame(rows).to_string(index=False))


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()

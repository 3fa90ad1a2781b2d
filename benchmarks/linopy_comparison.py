"""linopy versus our LinearModel, measured on the same model in one process.

The model is the core of placement.formulation on real IndexSets (bench_scale.write_instance, or a shipped
scenario): share x[arc, period, slice] in [0, 1], unserved u[cell, period, slice], replicas n[placement,
period, slice] (integer, relaxed for the LP solves), coverage (sum of a cell's arcs x + u = 1) and capacity
(sum of a deployment's arcs load x - sum of its placements n <= 0), objective unserved cost + replica cost.

Ours calls the real family functions (add_share_variables, add_unserved_variables, add_coverage_constraints,
add_capacity_constraints) and assembles the CSR arrays; linopy builds the same with xarray coordinates and
`groupby(...).sum()`, its documented way to sum over a many-to-one mapping. Bounds and costs are the same
arrays for both (taken from our build, outside the timings).

    python benchmarks/linopy_comparison.py              # all sizes, 3 repeats, min taken
    python benchmarks/linopy_comparison.py --quick      # tiny and small only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

import highspy  # noqa: E402
import linopy  # noqa: E402
import xarray as xr  # noqa: E402

from bench_scale import write_instance  # noqa: E402
from placement.formulation import (add_capacity_constraints, add_coverage_constraints,  # noqa: E402
                                   add_share_variables, add_unserved_variables, arc_load, per_use_price,
                                   placement_coords, replica_need)
from placement.indexsets import build_index_sets  # noqa: E402
from placement.scenario import load_scenario  # noqa: E402
from placement.solve import prepare  # noqa: E402
from solvers import highs_backend  # noqa: E402
from solvers.base import SolverSettings, Status  # noqa: E402
from solvers.model import LinearModel  # noqa: E402

SIZES = {  # name: (workloads, periods, slices) for bench_scale.write_instance, or a scenario path
    "tiny": REPO / "inputs" / "speed-lanes" / "scenario.yaml",
    "10k": (100, 1, 1),
    "100k": (1000, 1, 1),
    "1M": (1000, 4, 2),
}
REPEATS = 3


def index_sets(size: str):
    spec = SIZES[size]
    with tempfile.TemporaryDirectory(prefix="linopy-bench-") as tmp:
        path = spec if isinstance(spec, Path) else write_instance(Path(tmp) / "in", *spec)
        loaded = load_scenario(path)
        _, cells, candidates = prepare(loaded)
        return build_index_sets(loaded.scenario, cells, candidates)


def replica_bounds(sets) -> tuple[np.ndarray, np.ndarray]:
    """Upper bound and cost of n[placement, period, slice] (shape P,T,S), as add_replica_variables sets them,
    except that a replica in an owned pool (no per-use price; the real model prices those on the fleet) pays
    1 per chip-hour here, so that the core model's LP has a non-trivial optimum."""
    chips = sets.placement_chips.astype(float)
    pool = sets.placements["pool_position"].to_numpy()
    price = per_use_price(sets)[pool]
    cost = (np.where(price > 0, price, 1.0) * chips)[:, None, None] * sets.horizon.duration[None]
    caps = sets.caps[pool][:, :, None] * sets.availability[pool][:, None, :]
    upper = np.minimum(np.floor(caps / chips[:, None, None]), replica_need(sets)[sets.placements["deployment"]])
    return np.broadcast_to(upper, cost.shape).copy(), cost


def unserved_bounds(sets) -> tuple[np.ndarray, np.ndarray]:
    """Upper bound and cost of u[cell, period, slice], taken from the real add_unserved_variables."""
    model = LinearModel()
    add_unserved_variables(model, sets)
    shape = model.variables["unserved"].coords.shape
    return model.upper.reshape(shape), model.cost.reshape(shape)


# ---------------------------------------------------------------- ours

def build_ours(sets, data, integer: bool = True):
    model = LinearModel()
    add_share_variables(model, sets)
    add_unserved_variables(model, sets)
    model.add_variables("replicas", placement_coords(sets, "period", "slice"), upper=data["n_upper"],
                        cost=data["n_cost"], integer=integer)
    add_coverage_constraints(model, sets)
    add_capacity_constraints(model, sets)
    return model, model.arrays()


def handoff_ours(arrays) -> highspy.Highs:
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.passModel(highs_backend._lp(arrays, arrays.integer))
    return highs


def solve_ours(sets, data) -> tuple[float, float]:
    """Build, assemble, solve the LP relaxation, read x back shaped by its coordinates: what a study pays."""
    model, arrays = build_ours(sets, data)
    result = highs_backend.solve(arrays, SolverSettings(relax_integrality=True, time_limit_s=600))
    assert result.status == Status.OPTIMAL, result.message
    model.array("share", result.x)
    return result.objective, result.solve_s


# ---------------------------------------------------------------- linopy

def build_linopy(sets, data, integer: bool = True) -> linopy.Model:
    periods = pd.Index(sets.horizon.period_ids, name="period")
    slices = pd.Index(sets.horizon.slice_ids, name="slice")
    arcs = pd.RangeIndex(len(sets.arcs), name="arc")
    cells = pd.RangeIndex(len(sets.cells), name="cell")
    placements = pd.RangeIndex(len(sets.placements), name="placement")

    def grid(values, base):
        return xr.DataArray(values, coords=[base, periods, slices])

    m = linopy.Model()
    x = m.add_variables(lower=0.0, upper=1.0, coords=[arcs, periods, slices], name="share")
    u = m.add_variables(lower=0.0, upper=grid(data["u_upper"], cells), name="unserved")
    n_upper = grid(data["n_upper"], placements)
    n = (m.add_variables(lower=0.0, upper=n_upper, name="replicas", integer=True) if integer
         else m.add_variables(lower=0.0, upper=n_upper, name="replicas"))
    cell_of_arc = xr.DataArray(sets.arcs["cell"].to_numpy(), coords=[arcs], name="cell")
    deployment_of_arc = xr.DataArray(sets.arcs["deployment"].to_numpy(), coords=[arcs], name="deployment")
    deployment_of_placement = xr.DataArray(sets.placements["deployment"].to_numpy(), coords=[placements],
                                           name="deployment")
    m.add_constraints(x.groupby(cell_of_arc).sum() + u == 1, name="Cell-coverage")
    load = grid(arc_load(sets), arcs)
    served = (load * x).groupby(deployment_of_arc).sum()
    replicas = n.groupby(deployment_of_placement).sum()
    m.add_constraints(served - replicas <= 0, name="Deployment-capacity")
    m.add_objective((grid(data["u_cost"], cells) * u).sum() + (grid(data["n_cost"], placements) * n).sum())
    return m


def solve_linopy(sets, data) -> tuple[float, float]:
    m = build_linopy(sets, data, integer=False)
    started = time.perf_counter()
    status, condition = m.solve("highs", io_api="direct", output_flag=False, threads=1, random_seed=0)
    assert status == "ok", (status, condition)
    m.solution["share"].values  # noqa: B018  read the values back, as ours does
    return float(m.objective.value), time.perf_counter() - started


# ---------------------------------------------------------------- measuring

def best(fn, repeats: int = REPEATS) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return min(times), out


def problem_data(sets) -> dict:
    u_upper, u_cost = unserved_bounds(sets)
    n_upper, n_cost = replica_bounds(sets)
    return {"u_upper": u_upper, "u_cost": u_cost, "n_upper": n_upper, "n_cost": n_cost}


def memory_one(size: str, library: str) -> dict:
    """In a fresh process: peak Python-heap memory (tracemalloc: numpy, pandas, xarray buffers; not HiGHS's own
    C++ copy) of build + hand-off to HiGHS, the IndexSets already in memory and not counted."""
    sets = index_sets(size)
    data = problem_data(sets)
    tracemalloc.start()
    if library == "ours":
        handoff_ours(build_ours(sets, data)[1])
    else:
        build_linopy(sets, data).to_highspy()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"peak_mb": round(peak / 2**20, 1)}


def peak_memory(size: str, library: str) -> float | None:
    done = subprocess.run([sys.executable, __file__, "--memory", size, library], capture_output=True, text=True,
                          timeout=1200)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"]
    except (IndexError, ValueError, KeyError):
        print(done.stderr[-500:], file=sys.stderr)
        return None


def measure(size: str, solve: bool, memory: bool) -> dict:
    sets = index_sets(size)
    data = problem_data(sets)
    row = {"size": size, "share_vars": len(sets.arcs) * sets.rates.shape[1] * sets.rates.shape[2]}
    ours_build, (model, arrays) = best(lambda: build_ours(sets, data))
    linopy_build, m = best(lambda: build_linopy(sets, data))
    row.update(vars=arrays.num_variables, rows=arrays.num_constraints, nnz=arrays.a.nnz,
               linopy_vars=int(m.nvars), linopy_rows=int(m.ncons))
    row["ours_build_s"], row["linopy_build_s"] = ours_build, linopy_build
    row["ours_handoff_s"] = best(lambda: handoff_ours(arrays))[0]
    row["linopy_handoff_s"] = best(lambda: m.to_highspy())[0]
    if solve:
        ours_total, (ours_obj, ours_solve) = best(lambda: solve_ours(sets, data))
        linopy_total, (linopy_obj, linopy_solve) = best(lambda: solve_linopy(sets, data))
        assert abs(ours_obj - linopy_obj) <= 1e-6 * max(1.0, abs(ours_obj)), (ours_obj, linopy_obj)
        row.update(ours_build_solve_s=ours_total, linopy_build_solve_s=linopy_total, objective=ours_obj)
    if memory:
        row["ours_peak_mb"], row["linopy_peak_mb"] = peak_memory(size, "ours"), peak_memory(size, "linopy")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--quick", action="store_true", help="tiny and 10k only")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--memory", nargs=2, metavar=("SIZE", "LIBRARY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory:
        print(json.dumps(memory_one(*args.memory)))
        return
    sizes = ["tiny", "10k"] if args.quick else args.sizes
    print(f"linopy {linopy.__version__}, highspy {highspy.Highs().version()}, {REPEATS} repeats, min taken",
          flush=True)
    rows = []
    for size in sizes:
        rows.append(measure(size, solve=size in ("tiny", "10k"), memory=not args.no_memory))
        print(json.dumps(rows[-1], default=float), flush=True)
    table = pd.DataFrame(rows).set_index("size")
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.3f}".format):
        print(table.T)


if __name__ == "__main__":
    main()

"""The plan document (contract: cli-and-outputs.md) and the plan folder, written atomically.

plan.json holds the contract fields plus extras (LP bound, savings, explanations, model size);
replicas.csv, routing.csv and pools.csv hold the same rows for spreadsheets; summary.md says in
words what the plan does and why.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pandas as pd

from placement.files import replace_folder
from placement.charts import plan_chart
from placement.html_report import write_plan_report
from placement.scenario import LoadedScenario
from placement.solve import SOLVE_STAGES, Outcome
from solvers.base import relative_gap
from solvers import SolverSettings, Status

ROUTING_COLUMNS = ["workload", "bucket", "input_tokens", "output_tokens", "model", "accelerator",
                   "chips_per_replica", "period", "slice", "share", "requests_per_s", "replica_requests_per_s",
                   "output_tokens_per_s_per_user", "ttft_s", "source"]
REPLICA_COLUMNS = ["model", "accelerator", "chips_per_replica", "pool", "period", "slice", "replicas", "chips"]
POOL_COLUMNS = ["pool", "accelerator", "kind", "period", "chips_used", "chips_committed", "max_chips", "utilization",
                "per_hour", "cost"]
FLEET_COLUMNS = ["model", "accelerator", "chips_per_replica", "pool", "period", "replicas"]
COMMITMENT_COLUMNS = ["pool", "bought_in", "blocks", "chips", "first_period", "last_period", "cost"]
FLOAT_DIGITS = 9


def _clean(value: Any) -> Any:
    """JSON-safe, rounded numbers: NaN -> None, numpy scalars -> Python, floats to fixed precision."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        rounded = round(value, FLOAT_DIGITS)
        return 0.0 if rounded == 0 else rounded
    return value


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    present = [c for c in columns if c in frame.columns]
    return [_clean(dict(zip(present, row))) for row in frame[present].itertuples(index=False, name=None)]


def plan_document(loaded: LoadedScenario, outcome: Outcome, settings: SolverSettings,
                  diagnosis: list[dict[str, Any]] | None = None,
                  explanations: list[str] | None = None) -> dict[str, Any]:
    scenario = loaded.scenario
    solution = outcome.solution
    result = outcome.result
    status = plan_status(outcome)
    horizon = outcome.sets.horizon
    hours = horizon.total_hours
    doc: dict[str, Any] = {
        "status": status,
        "scenario": {"name": scenario.name, "sha256": loaded.sha256, "file": str(loaded.path),
                     "currency": scenario.currency, "hours": hours},
        "periods": _records(horizon.periods.rename(columns={"period": "id"}), ["id", "hours"]),
        "slices": _records(horizon.slices.rename(columns={"slice": "id"}), ["id", "weight", "hours"]),
    }
    if solution is not None:
        value = solution.objective
        bound = result.bound / hours if result is not None and result.bound is not None else None
        if bound is not None:
            bound = min(bound, value)
        lp = outcome.lp_bound / hours if outcome.lp_bound is not None else None
        doc["objective"] = {"value": value, "bound": bound, "gap": relative_gap(value, bound),
                            "unit": f"{scenario.currency}/h", "lp_relaxation": lp}
        doc["cost"] = _cost(solution, scenario)
        doc["replicas"] = _records(solution.replicas, REPLICA_COLUMNS)
        doc["routing"] = _records(solution.routing, ROUTING_COLUMNS + ["quality"])
        # one row per (bucket, period, slice), zeros included: routing shares + unserved share = 1
        doc["unserved"] = _records(solution.unserved, ["workload", "bucket", "period", "slice", "share",
                                                       "requests_per_s"])
        doc["pools"] = _records(solution.pools, POOL_COLUMNS + ["blocks", "block_chips"])
        doc["fleet"] = _records(solution.fleet, FLEET_COLUMNS)
        doc["commitments"] = _records(solution.commitments, COMMITMENT_COLUMNS)
        doc["baselines"] = _baselines(outcome, value)
    else:
        doc.update({"objective": {"value": None, "bound": None, "gap": None, "unit": f"{scenario.currency}/h"},
                    "cost": None, "replicas": [], "routing": [], "unserved": [], "pools": [], "fleet": [],
                    "commitments": [], "baselines": []})
    doc["solver"] = {
        "backend": settings.backend,
        "engine": settings.engine,
        "version": result.version if result is not None else None,
        "build_s": outcome.build_s,
        "solve_s": sum(v for k, v in outcome.timings.items() if k in SOLVE_STAGES),
        "time_limit_s": settings.time_limit_s,
        "mip_gap": settings.mip_gap,
        "threads": settings.threads,
        "message": result.message if result is not None else "",
        "canonical": outcome.canonical,
        "stages_s": dict(outcome.timings),
        "notes": list(outcome.notes),
        "model": outcome.model_stats,
        "estimates": scenario.options.estimates,
    }
    if outcome.rolling is not None:
        doc["solver"]["rolling"] = outcome.rolling
    doc["diagnosis"] = diagnosis or []
    doc["explanations"] = explanations or []
    return _clean(doc)


def _cost(solution, scenario) -> dict[str, Any]:
    """Horizon totals, the per-hour figures of the single-period contract, and the breakdowns."""
    pools = solution.pools
    by_pool = (pools.groupby(["pool", "kind"], sort=False)["cost"].sum().reset_index())
    period_columns = [c for c in solution.by_period.columns if c.startswith("pool:")]
    return {
        "per_hour": solution.cost_per_hour,
        "period": solution.pools_total,
        "total": solution.total,
        "unserved_penalty_per_hour": solution.unserved_cost_per_hour,
        "unserved_penalty": solution.unserved_total,
        "beyond_horizon": solution.beyond_horizon,
        "fixed": solution.fixed,
        "fixed_cost_period": float(pools.drop_duplicates("pool")["fixed_cost"].sum()),
        # a pool's whole bill: its periods, and for reserved pools the terms past the last period
        "by_pool": [{"pool": p, "kind": k, "per_hour": bill / solution.total_hours, "total": bill,
                     "billed_chip_hours": solution.billed_chip_hours.get(p, 0.0)}
                    for p, k, bill in zip(by_pool["pool"], by_pool["kind"],
                                          by_pool["cost"] + by_pool["pool"].map(solution.beyond_by_pool).fillna(0.0))],
        "by_period": [{"period": row["period"], "total": row["total"], "per_hour": row["total"] / row["hours"],
                       "pools": row["pools"], "churn": row["churn"], "unserved_penalty": row["unserved_penalty"],
                       "by_pool": [{"pool": c[5:], "cost": row[c]} for c in period_columns]}
                      for row in solution.by_period.to_dict("records")],
        "churn": _records(solution.churn, ["period", "chips_moved", "cost", "limit"]),
    }


def plan_status(outcome: Outcome) -> str:
    if outcome.solution is not None:
        return "optimal" if outcome.status == Status.OPTIMAL else "feasible"
    if outcome.status == Status.INFEASIBLE:
        return "infeasible"
    return "no_solution"


def _baselines(outcome: Outcome, mixed: float) -> list[dict[str, Any]]:
    """One row per single-accelerator baseline, then the best of them, each with what mixing saves."""
    def row(name: str, b) -> dict[str, Any]:
        savings = (b.cost_per_hour - mixed) / b.cost_per_hour if b.feasible and b.cost_per_hour else None
        return {"name": name, "accelerator": b.accelerator, "cost_per_hour": b.cost_per_hour, "feasible": b.feasible,
                "status": b.status, "savings_vs_baseline": savings, "reason": b.reason}

    rows = [row(b.name, b) for b in outcome.baselines]
    feasible = [b for b in outcome.baselines if b.feasible]
    if feasible:
        rows.append(row("best single accelerator", min(feasible, key=lambda b: (b.cost_per_hour, b.name))))
    return rows


def write_plan_folder(doc: dict[str, Any], summary: str, out_dir: Path, inputs: list[Path] = ()) -> Path:
    """Write every file into a hidden sibling folder, then swap it into place (placement.files).

    A reader sees the old plan or the new one, never a mix; a failure leaves the old one intact. Only
    an empty folder or a plan folder this tool wrote is ever replaced; `inputs` (the scenario's files)
    are never inside what is replaced.
    """
    def write(staging: Path) -> None:
        started = time.perf_counter()
        for name, key, columns in (("replicas.csv", "replicas", REPLICA_COLUMNS),
                                   ("routing.csv", "routing", ROUTING_COLUMNS),
                                   ("pools.csv", "pools", POOL_COLUMNS),
                                   ("fleet.csv", "fleet", FLEET_COLUMNS),
                                   ("commitments.csv", "commitments", COMMITMENT_COLUMNS)):
            frame = pd.DataFrame(doc.get(key) or [], columns=None)
            frame = frame.reindex(columns=[c for c in columns if c in frame.columns] if len(frame) else columns)
            frame.to_csv(staging / name, index=False, lineterminator="\n")
            frame.to_parquet(staging / name.replace(".csv", ".parquet"), index=False)  # big plans stay usable
        (staging / "summary.md").write_text(summary)
        plan_chart(doc, staging / "plan.png")
        write_plan_report(doc, staging)  # report.html: the page people share
        # plan.json last, with the seconds the other files took (the outputs stage)
        stages = (doc.get("solver") or {}).get("stages_s")
        if isinstance(stages, dict):
            stages["outputs"] = time.perf_counter() - started
        (staging / "plan.json").write_text(plan_json(doc))

    return replace_folder(Path(out_dir), write, inputs)


def plan_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False, allow_nan=False) + "\n"

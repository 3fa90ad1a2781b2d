"""The plan document (contract: cli-and-outputs.md) and the plan folder, written atomically.

plan.json holds the contract fields plus extras (LP bound, savings, explanations, model size);
replicas.csv, routing.csv and pools.csv hold the same rows for spreadsheets; summary.md says in
words what the plan does and why.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from placement.scenario import LoadedScenario
from placement.solve import Outcome
from solvers.base import relative_gap
from solvers import SolverSettings, Status

ROUTING_COLUMNS = ["workload", "bucket", "input_tokens", "output_tokens", "model", "accelerator",
                   "chips_per_replica", "share", "requests_per_s", "replica_requests_per_s",
                   "output_tokens_per_s_per_user", "ttft_s", "source"]
REPLICA_COLUMNS = ["model", "accelerator", "chips_per_replica", "pool", "replicas", "chips"]
POOL_COLUMNS = ["pool", "accelerator", "kind", "chips_used", "chips_committed", "max_chips", "utilization",
                "per_hour"]
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
    doc: dict[str, Any] = {
        "status": status,
        "scenario": {"name": scenario.name, "sha256": loaded.sha256, "file": str(loaded.path),
                     "currency": scenario.currency, "hours": scenario.hours},
    }
    if solution is not None:
        value = solution.objective
        bound = result.bound if result is not None else None
        if bound is not None and status == "optimal":
            bound = min(bound, value)
        doc["objective"] = {"value": value, "bound": bound, "gap": relative_gap(value, bound),
                            "unit": f"{scenario.currency}/h", "lp_relaxation": outcome.lp_bound}
        pools = solution.pools
        by_pool = [{"pool": p, "per_hour": v, "kind": k} for p, v, k in zip(pools["pool"], pools["per_hour"], pools["kind"])]
        doc["cost"] = {
            "per_hour": solution.cost_per_hour,
            "period": solution.cost_per_hour * scenario.hours,
            "unserved_penalty_per_hour": solution.unserved_cost_per_hour,
            "fixed_cost_period": float(pools["fixed_cost"].sum()),
            "by_pool": by_pool,
        }
        doc["replicas"] = _records(solution.replicas, REPLICA_COLUMNS)
        doc["routing"] = _records(solution.routing, ROUTING_COLUMNS + ["quality"])
        # one row per bucket, zeros included: routing shares + unserved share = 1 for every bucket
        doc["unserved"] = _records(solution.unserved, ["workload", "bucket", "share", "requests_per_s"])
        doc["pools"] = _records(pools, POOL_COLUMNS + ["blocks", "block_chips"])
        doc["baselines"] = _baselines(outcome, value)
    else:
        doc.update({"objective": {"value": None, "bound": None, "gap": None, "unit": f"{scenario.currency}/h"},
                    "cost": None, "replicas": [], "routing": [], "unserved": [], "pools": [], "baselines": []})
    doc["solver"] = {
        "backend": settings.backend,
        "engine": settings.engine,
        "version": result.version if result is not None else None,
        "build_s": outcome.build_s,
        "solve_s": result.solve_s if result is not None else 0.0,
        "time_limit_s": settings.time_limit_s,
        "mip_gap": settings.mip_gap,
        "message": result.message if result is not None else "",
        "model": outcome.model_stats,
    }
    doc["diagnosis"] = diagnosis or []
    doc["explanations"] = explanations or []
    return _clean(doc)


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


def write_plan_folder(doc: dict[str, Any], summary: str, out_dir: Path) -> Path:
    """Write every file into a temporary sibling folder, then swap it into place.

    A reader sees the old plan or the new one, never a mix; a failure leaves the old one intact.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        (staging / "plan.json").write_text(plan_json(doc))
        for name, key, columns in (("replicas.csv", "replicas", REPLICA_COLUMNS),
                                   ("routing.csv", "routing", ROUTING_COLUMNS),
                                   ("pools.csv", "pools", POOL_COLUMNS)):
            frame = pd.DataFrame(doc.get(key) or [], columns=None)
            frame = frame.reindex(columns=[c for c in columns if c in frame.columns] if len(frame) else columns)
            frame.to_csv(staging / name, index=False, lineterminator="\n")
        (staging / "summary.md").write_text(summary)
        from placement.html_report import write_plan_report  # report.html: the page people share
        write_plan_report(doc, staging)
        _swap_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """rename() is atomic for a new name; an existing folder is moved aside first, then removed."""
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
        os.rmdir(old)
        os.rename(out_dir, old)
        try:
            os.rename(staging, out_dir)
        except OSError:
            os.rename(old, out_dir)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, out_dir)


def plan_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False, allow_nan=False) + "\n"

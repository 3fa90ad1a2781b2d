"""Infeasibility diagnosis (exit 2): which demand cannot be served, why, and how much to relax.

Two layers. First, the explanation of every must-serve bucket that has no usable deployment at
all (quality floor, context, SLO, pool size), with the numbers. Then the elastic model: the same
MIP with supply caps, mean-quality floors and must-serve coverage turned into priced slacks; its
optimum says how many chips each pool lacks, how many quality points a workload falls short, and
which traffic could not be placed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

import solvers
from placement.explain import candidate_reasons
from placement.formulation import Elastic, build_model
from placement.indexsets import build_index_sets
from placement.scenario import Scenario
from solvers import SolverSettings

SLACK_EPS = 1e-6


def diagnose(scenario: Scenario, table: pd.DataFrame, cells: pd.DataFrame, candidates: pd.DataFrame,
             settings: SolverSettings) -> list[dict[str, Any]]:
    findings = unservable_findings(scenario, table, cells, candidates)
    findings += elastic_findings(scenario, cells, candidates, settings, findings)
    return findings


def unservable_findings(scenario: Scenario, table: pd.DataFrame, cells: pd.DataFrame,
                        candidates: pd.DataFrame) -> list[dict[str, Any]]:
    """Must-serve buckets with no usable deployment, each with the reason per accelerator."""
    sets = build_index_sets(scenario, cells, candidates)
    served_cells = set(sets.arcs["cell"].tolist())
    stuck = [i for i in range(len(cells))
             if sets.cells["must_serve"].iat[i] and cells["requests_per_s"].iat[i] > 0 and i not in served_cells]
    if not stuck:
        return []
    reasons = candidate_reasons(scenario, table, cells.iloc[stuck])
    slos = {w.id: w.slo for w in scenario.workloads}
    findings = []
    for i in stuck:
        cell = cells.iloc[i]
        rows = reasons[reasons["cell"] == i]
        why = {f"{m} on {a} x{c}": reason
               for m, a, c, reason in zip(rows["model"], rows["accelerator"], rows["chips_per_replica"], rows["reason"])}
        covered = set(rows["accelerator"])
        for accelerator in sorted({p.accelerator for p in scenario.pools} - covered):
            why[accelerator] = "no model has an operating point (profile rows) on this accelerator"
        kinds = sorted(set(rows["kind"]) - {""}) or ["no_operating_point"]
        message = (f"{cell['workload']} bucket {int(cell['bucket'])} ({int(cell['input_tokens']):,} in / "
                   f"{int(cell['output_tokens']):,} out) cannot be served by any deployment")
        finding: dict[str, Any] = {}
        fastest = rows[rows["kind"] == "slo"].dropna(subset=["best_speed"])
        asked = slos[cell["workload"]]
        if len(fastest) and asked.min_output_tokens_per_s is not None:
            top = fastest.sort_values("best_speed", ascending=False, kind="mergesort").iloc[0]
            finding["fastest_available_tokens_per_s"] = float(top["best_speed"])
            message += (f"; the fastest per-user speed any deployment reaches is {top['best_speed']:,.0f} tok/s "
                        f"({top['model']} on {top['accelerator']} x{top['chips_per_replica']}), asked "
                        f"{asked.min_output_tokens_per_s:,.0f}")
        findings.append({
            "kind": kinds[0] if len(kinds) == 1 else "several",
            "kinds": kinds,
            "workload": cell["workload"],
            "bucket": int(cell["bucket"]),
            "input_tokens": int(cell["input_tokens"]),
            "output_tokens": int(cell["output_tokens"]),
            "requests_per_s": float(cell["requests_per_s"]),
            "message": message,
            **finding,
            "why": why,
        })
    return findings


def elastic_findings(scenario: Scenario, cells: pd.DataFrame, candidates: pd.DataFrame,
                     settings: SolverSettings, known: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Solve the elastic model and report every slack it had to use."""
    sets = build_index_sets(scenario, cells, candidates, require_fit=False)
    prices = sets.pools["price_per_chip_hour"]
    scale = float(max(prices.max() if len(prices) else 0.0, 1.0))
    elastic = Elastic(chip_penalty=1e3 * scale, quality_penalty=1e7 * scale, shed_penalty=1e9 * scale)
    model = build_model(sets, elastic)
    result = solvers.solve(model, settings)
    if not result.has_solution:
        return [{"kind": "solver", "message": f"the elastic model could not be solved ({result.status.value})"}]
    findings: list[dict[str, Any]] = []
    supply = model.values("supply_slack", result.x)
    chips_used = model.activity("supply", result.x) + supply
    for pool, extra in supply.items():
        if extra > SLACK_EPS:
            row = sets.pools.set_index("pool").loc[pool]
            needed = float(chips_used[pool])
            findings.append({
                "kind": "supply",
                "pool": pool,
                "accelerator": row["accelerator"],
                "chips_needed": needed,
                "chips_available": int(row["max_chips"]),
                "relax_by_chips": float(np.ceil(extra - 1e-9)),
                "message": (f"pool {pool} ({row['accelerator']}): the cheapest plan needs {needed:,.0f} chips, "
                            f"max_chips is {int(row['max_chips']):,}; raise it by {np.ceil(extra - 1e-9):,.0f} "
                            "or add capacity elsewhere"),
            })
    quality = model.values("quality_slack", result.x)
    for workload, shortfall in quality.items():
        if shortfall > SLACK_EPS:
            floor = sets.workloads.set_index("workload").loc[workload, "min_mean"]
            reachable = floor - shortfall
            findings.append({
                "kind": "quality_mean",
                "workload": workload,
                "min_mean": float(floor),
                "reachable_mean": float(reachable),
                "relax_by": float(shortfall),
                "message": (f"{workload}: the best reachable mean quality is {reachable:.4g}, min_mean is "
                            f"{floor:.4g}; lower min_mean by {shortfall:.4g} or allow a better model where it fits"),
            })
    unserved = model.values("unserved", result.x)
    stated = {(f.get("workload"), f.get("bucket")) for f in known}
    for cell, share in unserved.items():
        row = sets.cells.iloc[cell]
        if row["must_serve"] and share > SLACK_EPS and (row["workload"], int(row["bucket"])) not in stated:
            findings.append({
                "kind": "unserved",
                "workload": row["workload"],
                "bucket": int(row["bucket"]),
                "share": float(share),
                "message": f"{row['workload']} bucket {int(row['bucket'])}: {share:.1%} of must-serve traffic cannot be placed",
            })
    return findings

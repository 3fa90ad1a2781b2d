"""Infeasibility diagnosis (exit 2): which demand cannot be served, why, and how much to relax.

Two layers. First, the explanation of every must-serve bucket that has no usable deployment at
all (quality floor, context, SLO, pool size), with the numbers. Then the elastic model: the same
MIP with supply caps, mean-quality floors and must-serve coverage turned into priced slacks; its
optimum says how many chips each pool lacks, how many quality points a workload falls short, and
which traffic could not be placed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from placement.explain import candidate_reasons
from placement.formulation import Elastic, build_model
from placement.indexsets import build_index_sets
from placement.profiles import model_eligibility
from placement.scenario import Scenario
from solvers import SolverSettings

SLACK_EPS = 1e-6


def diagnose(scenario: Scenario, table: pd.DataFrame, cells: pd.DataFrame, candidates: pd.DataFrame,
             settings: SolverSettings, budget=None, notes: list[str] | None = None) -> list[dict[str, Any]]:
    """Unservable buckets first (cheap), then the elastic model within what is left of the budget."""
    findings = unservable_findings(scenario, table, cells, candidates)
    if budget is not None and budget.exhausted:
        if notes is not None:
            notes.append("elastic diagnosis skipped: the time limit was reached (raise --time-limit to learn how "
                         "much each cap, floor or churn limit must move)")
        return findings
    limit = budget.slice() if budget is not None else settings.time_limit_s
    # the elastic model is a guide, not a plan: a 1% gap is plenty to say what binds and by how much
    elastic = replace(settings, time_limit_s=limit, mip_gap=max(settings.mip_gap, 0.01))
    findings += elastic_findings(scenario, cells, candidates, elastic, findings)
    return findings


def unservable_findings(scenario: Scenario, table: pd.DataFrame, cells: pd.DataFrame,
                        candidates: pd.DataFrame) -> list[dict[str, Any]]:
    """Must-serve buckets with no usable deployment, each with the reason per accelerator."""
    from placement.solve import unservable_cells

    sets = build_index_sets(scenario, cells, candidates)
    stuck = np.flatnonzero(unservable_cells(sets)).tolist()
    if not stuck:
        return []
    reasons = candidate_reasons(scenario, table, cells.iloc[stuck])
    slos = {w.id: w.slo for w in scenario.workloads}
    eligible = model_eligibility(scenario)
    eligible = eligible[(eligible["reason"] == "") & ~eligible["model"].isin(set(table["model"]))]
    idle = eligible.groupby("workload")["model"].apply(lambda m: ", ".join(sorted(m))).to_dict()
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
        asked = slos[cell["workload"]]
        clauses, finding = _headline_clauses(rows, kinds, asked)
        if cell["workload"] in idle:
            clauses.append(f"{idle[cell['workload']]} may serve it but has no operating point "
                           "(no profile rows, and no specs for the estimator)")
        message = (f"{cell['workload']} bucket {int(cell['bucket'])} ({int(cell['input_tokens']):,} in / "
                   f"{int(cell['output_tokens']):,} out) cannot be served by any deployment: " + "; ".join(clauses))
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


# SLO parts: the scenario field, the fact columns of explain.candidate_reasons, and how to say them.
SLO_PARTS = [
    ("min_output_tokens_per_s", "speed_ok", "best_speed", False,
     "the fastest per-user speed any deployment reaches is {best:,.0f} tok/s ({where}), asked {asked:,.0f}"),
    ("max_ttft_s", "ttft_ok", "best_ttft", True,
     "the shortest TTFT any deployment reaches is {best:.3g} s ({where}), asked {asked:g} s"),
    ("max_e2e_s", "e2e_ok", "best_e2e", True,
     "the shortest end-to-end time any deployment reaches is {best:.3g} s ({where}), asked {asked:g} s"),
]


def _headline_clauses(rows: pd.DataFrame, kinds: list[str], asked) -> tuple[list[str], dict[str, Any]]:
    """What rules the bucket out, one clause per reason kind, naming the constraint that binds.

    Returns the clauses and extra finding fields (`slo_binding`: the SLO fields that bind;
    `fastest_available_tokens_per_s` when per-user speed binds).
    """
    clauses: list[str] = []
    extra: dict[str, Any] = {}
    for kind in kinds:
        of_kind = rows[rows["kind"] == kind]
        if kind == "slo":
            slo_clauses, extra = _slo_clauses(of_kind, asked)
            clauses += slo_clauses
        elif kind == "no_operating_point":
            clauses.append("no model has an operating point (profile row) on any accelerator with a pool")
        else:
            label = {"quality_floor": "not allowed or below the quality floor",
                     "context": "cannot hold its context", "supply": "does not fit in any pool"}.get(kind, kind)
            reasons = sorted(set(of_kind["reason"]))
            shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
            clauses.append(f"{len(of_kind)} deployment(s) {label} ({shown})")
    return clauses, extra


def _slo_clauses(rows: pd.DataFrame, asked) -> tuple[list[str], dict[str, Any]]:
    """The SLO parts no deployment meets, each with the best value reached; else the parts missed together."""
    clauses, binding, missed = [], [], []
    extra: dict[str, Any] = {}
    for field, ok, best, lower_is_better, text in SLO_PARTS:
        wanted = getattr(asked, field)
        if wanted is None or rows[ok].all():
            continue
        missed.append(field)
        if rows[ok].any():
            continue
        binding.append(field)
        reached = rows.dropna(subset=[best]).sort_values(best, ascending=lower_is_better, kind="mergesort")
        if reached.empty:
            continue
        top = reached.iloc[0]
        where = f"{top['model']} on {top['accelerator']} x{top['chips_per_replica']}"
        clauses.append(text.format(best=float(top[best]), where=where, asked=wanted))
        if field == "min_output_tokens_per_s":
            extra["fastest_available_tokens_per_s"] = float(top[best])
    if not binding:
        binding = missed
        parts = ", ".join(f"{field} {getattr(asked, field):g}" for field in missed) or "every part"
        clauses.append(f"no operating point meets the SLO parts {parts} at once")
    extra["slo_binding"] = binding
    return clauses, extra


def _lead_time_findings(sets, findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A pool short of chips in a period that a reserved pool of the same accelerator could have served,
    had its contracts not taken longer to arrive (lead_periods beyond that period): the lead time binds."""
    pools = sets.pools.reset_index(drop=True)
    periods = sets.horizon.period_ids
    out, seen = [], set()
    for finding in findings:
        if finding.get("kind") != "supply" or finding.get("period") not in periods:
            continue
        t = periods.index(finding["period"])
        for p, pool in pools.iterrows():
            room = float(sets.caps[p, t]) - float(sets.committed[p, t] * pool["block_chips"])
            if (pool["kind"] != "reserved" or pool["accelerator"] != finding["accelerator"]
                    or int(pool["lead_periods"]) <= t or room <= 0 or (pool["pool"], t) in seen):
                continue
            seen.add((pool["pool"], t))
            lead = int(pool["lead_periods"])
            first = periods[lead] if lead < len(periods) else "after the horizon"
            out.append({
                "kind": "lead_time", "pool": pool["pool"], "accelerator": pool["accelerator"],
                "period": finding["period"], "lead_periods": lead, "chips_short": finding["relax_by_chips"],
                "message": (f"pool {pool['pool']} (reserved, {pool['accelerator']}) has room for {room:,.0f} chips "
                            f"in {finding['period']}, but its contracts take {lead} period(s) to arrive "
                            f"(lead_periods): a block bought now is live from {first}. Sign earlier "
                            f"(committed), shorten the lead, or add capacity elsewhere for {finding['period']}"),
            })
    return out


def elastic_findings(scenario: Scenario, cells: pd.DataFrame, candidates: pd.DataFrame,
                     settings: SolverSettings, known: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Solve the elastic model and report every slack it had to use."""
    sets = build_index_sets(scenario, cells, candidates, require_fit=False)
    return elastic_findings_for_sets(sets, settings, known)


def _idle_fleet(sets) -> str:
    """The running fleet's rows that serve no workload of this scenario (no operating point of theirs meets
    any bucket's SLO, context or memory, or a chips_per_replica that does not exist): they must all move."""
    serving = set(sets.arcs["deployment"].tolist())
    rows = sets.placements.merge(sets.deployments, left_on="deployment", right_index=True)
    idle = rows[(sets.fleet > 0) & ~rows["deployment"].isin(serving).to_numpy()]
    if not len(idle):
        return ""
    fleet = sets.fleet[idle.index.to_numpy()]
    named = [f"{r.model}/{r.accelerator} x{r.chips_per_replica} in {r.pool} ({n:,.0f} replicas)"
             for r, n in zip(idle.itertuples(), fleet)]
    return (f". The running fleet's {', '.join(named)} serve no workload here (no operating point passes the "
            "SLOs, context and memory): check those fleet rows")


def elastic_findings_for_sets(sets, settings: SolverSettings,
                              known: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The elastic model on given index sets: caps, churn limits, mean-quality floors and must-serve coverage
    become priced slacks; each slack used is a finding naming the pool, period and slice where it binds."""
    prices = sets.pools["price_per_chip_hour"]
    scale = float(max(prices.max() if len(prices) else 0.0, 1.0))
    elastic = Elastic(chip_penalty=1e3 * scale, quality_penalty=1e7 * scale, shed_penalty=1e9 * scale,
                      churn_penalty=1e3 * scale)
    from placement.solve import solve_model

    model = build_model(sets, elastic)
    # the same stages as a plan (relaxation, rounding, neighbourhood MIP, branch-and-price or MIP): on large models the elastic MIP
    # alone took minutes
    result, _ = solve_model(model, sets, model.arrays(), settings)
    if not result.has_solution:
        return [{"kind": "solver", "message": f"the elastic model could not be solved ({result.status.value})"}]
    findings: list[dict[str, Any]] = []
    single = sets.horizon.single
    pools = sets.pools.set_index("pool")
    for name in [n for n in model.variables if n.endswith("supply_slack")]:
        slack = model.labelled(name, result.x)
        kind, scope = name.split("-")[0], name.split("-")[1]
        for row in slack[slack["value"] > SLACK_EPS].to_dict("records"):
            pool = pools.loc[row["pool"]]
            period, slice_ = row.get("period"), row.get("slice")
            t = sets.horizon.period_ids.index(period)
            available = float(sets.caps[sets.pools["pool"].tolist().index(row["pool"]), t])
            if slice_ is not None:
                p = sets.pools["pool"].tolist().index(row["pool"])
                available *= float(sets.availability[p, sets.horizon.slice_ids.index(slice_)])
            extra = float(np.ceil(row["value"] - 1e-9))
            where = "" if single else f" in {period}" + (f", slice {slice_}" if slice_ is not None else "")
            what = "max_chips under contract" if scope == "contract" else "max_chips"
            findings.append({
                "kind": "supply", "pool": row["pool"], "accelerator": pool["accelerator"], "period": period,
                "slice": slice_, "chips_needed": available + row["value"], "chips_available": available,
                "relax_by_chips": extra,
                "message": (f"pool {row['pool']} ({pool['accelerator']}){where}: the cheapest plan needs "
                            f"{available + row['value']:,.0f} chips, {what} is {available:,.0f}; raise it by "
                            f"{extra:,.0f} or add capacity elsewhere"),
            })
    findings += _lead_time_findings(sets, findings)
    if "churn_slack" in model.variables:
        slack = model.labelled("churn_slack", result.x)
        for row in slack[slack["value"] > SLACK_EPS].to_dict("records"):
            t = sets.horizon.period_ids.index(row["period"])
            limit = float(sets.churn_limit[t])
            findings.append({
                "kind": "churn", "period": row["period"], "chips_needed": limit + row["value"],
                "max_churn_chips": limit, "relax_by_chips": float(np.ceil(row["value"] - 1e-9)),
                "message": (f"{row['period']}: the plan must move {limit + row['value']:,.0f} chips, "
                            f"max_churn_chips is {limit:,.0f}; raise it by {np.ceil(row['value'] - 1e-9):,.0f}"
                            + (_idle_fleet(sets) if t == 0 else "")),
            })
    quality = model.labelled("quality_slack", result.x)
    floors = sets.workloads.set_index("workload")["min_mean"]
    for row in quality[quality["value"] > SLACK_EPS].to_dict("records"):
        floor = float(floors.loc[row["workload"]])
        reachable = floor - row["value"]
        where = "" if single else f" in {row['period']}"
        findings.append({
            "kind": "quality_mean", "workload": row["workload"], "period": row["period"], "min_mean": floor,
            "reachable_mean": float(reachable), "relax_by": float(row["value"]),
            "message": (f"{row['workload']}{where}: the best reachable mean quality is {reachable:.4g}, min_mean is "
                        f"{floor:.4g}; lower min_mean by {row['value']:.4g} or allow a better model where it fits"),
        })
    unserved = model.array("unserved", result.x)
    stated = {(f.get("workload"), f.get("bucket")) for f in known or []}
    must = sets.cells["must_serve"].to_numpy()[:, None, None] & (sets.rates > 0)
    limit = ""  # the one hard limit the elastic model keeps: say it, since it is what binds
    if sets.max_shapes is not None:
        limit = (f" within max_shapes_per_model_accelerator {sets.max_shapes} (the replica sizes that could serve "
                 "it are taken by other buckets); raise the limit or drop it")
    for c, t, s in zip(*np.nonzero(must & (unserved > SLACK_EPS))):
        row = sets.cells.iloc[c]
        if (row["workload"], int(row["bucket"])) in stated:
            continue
        where = "" if single else f" in {sets.horizon.period_ids[t]}, slice {sets.horizon.slice_ids[s]}"
        findings.append({
            "kind": "unserved", "workload": row["workload"], "bucket": int(row["bucket"]),
            "period": sets.horizon.period_ids[t], "slice": sets.horizon.slice_ids[s], "share": float(unserved[c, t, s]),
            "message": f"{row['workload']} bucket {int(row['bucket'])}{where}: {unserved[c, t, s]:.1%} of must-serve "
                       "traffic cannot be placed" + limit,
        })
    return findings

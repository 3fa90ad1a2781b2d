"""summary.md: the plan in words, for the person who signs the capacity order.

What it costs, what it buys, where each bucket goes, and why the buckets that skip an accelerator
skip it (its context limit, its speed, its quality), from `explain.candidate_reasons`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from placement.explain import accelerator_verdicts, candidate_reasons
from placement.profiles import DEPLOYMENT_KEY
from placement.scenario import invisible_characters


def _money(value: float | None, currency: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.2f} {currency}"


def _inline(value: Any) -> str:
    """Text on one Markdown line: control and invisible characters (a free-text note may carry a newline
    or an escape sequence; ids cannot) become spaces."""
    text = str(value)
    if invisible_characters(text):
        text = "".join(" " if invisible_characters(ch) else ch for ch in text)
    return text


def _cell(value: Any) -> str:
    """A Markdown table cell: on one line, pipes escaped (an id may contain '|')."""
    return _inline(value).replace("|", "\\|")


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# Explanations weigh (bucket, deployment) pairs this many at a time: the pairs' table takes about 0.9 KB a
# pair (20,000 workloads, 2.9M pairs at once: peak memory 2.4 GB -> 4.9 GB), so the peak stays bounded.
EXPLAIN_PAIRS_PER_CHUNK = 200_000


def explanations(scenario, table: pd.DataFrame, cells: pd.DataFrame, plan: dict[str, Any]) -> list[str]:
    """One sentence per bucket: where it went, and why each unused accelerator could not take it. Buckets
    are weighed a chunk at a time (EXPLAIN_PAIRS_PER_CHUNK pairs), each sentence depending on its own only."""
    cells = cells.reset_index(drop=True)
    deployments = max(len(table[DEPLOYMENT_KEY].drop_duplicates()), 1)
    step = max(EXPLAIN_PAIRS_PER_CHUNK // deployments, 1)
    routed: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in plan.get("routing", []):
        routed.setdefault((row["workload"], row["bucket"]), []).append(row)
    pooled = sorted({p.accelerator for p in scenario.pools})
    sentences = []
    for first in range(0, len(cells), step):
        chunk = cells.iloc[first:first + step]
        reasons = candidate_reasons(scenario, table, chunk)
        if reasons.empty:
            return []
        verdicts = accelerator_verdicts(reasons)
        verdict_of = {(c, a): (ok, why) for c, a, ok, why in
                      zip(verdicts["cell"], verdicts["accelerator"], verdicts["can_serve"], verdicts["reason"])}
        sentences += [_explained(i, cell, routed, pooled, verdict_of) for i, cell in chunk.iterrows()]
    return sentences


def _explained(i, cell, routed, pooled: list[str], verdict_of) -> str:
    """The sentence of one bucket (`i`, its position among the cells)."""
    rows = routed.get((cell["workload"], int(cell["bucket"])), [])
    used = sorted({r["accelerator"] for r in rows})
    where = ", ".join(
        f"{r['share']:.0%} {r['model']} on {r['accelerator']} x{r['chips_per_replica']}" for r in rows
    ) or "nothing (shed)"
    skipped = []
    for accelerator in pooled:
        if accelerator in used:
            continue
        verdict = verdict_of.get((i, accelerator))
        if verdict is None:
            skipped.append(f"{accelerator}: no operating points")
        elif verdict[0]:
            skipped.append(f"{accelerator}: could serve, but not at a lower cost")
        else:
            skipped.append(f"{accelerator}: {verdict[1]}")
    sentence = (f"{cell['workload']} bucket {int(cell['bucket'])} ({int(cell['input_tokens']):,} in / "
                f"{int(cell['output_tokens']):,} out, {cell['requests_per_s']:.3g} req/s) -> {where}")
    if skipped:
        sentence += ". Not on " + "; ".join(skipped)
    return sentence + "."


def unused_field_notes(scenario) -> list[str]:
    """Fields a scenario gives that the model does not read, said once (legal, so not an error)."""
    if scenario.periods is not None and "hours" in scenario.model_fields_set:
        return [f"hours: {scenario.hours:g} is not used: with periods, each period has its own hours"]
    return []


def unasked_speed_notes(scenario, rows: pd.DataFrame, planned: bool) -> list[str]:
    """One note per workload that asks no per-user speed (neither min_output_tokens_per_s nor max_e2e_s).

    Legal, but the lookup then takes the row with the most requests/s: the largest batch, often a few
    tok/s per user. `rows` are routing rows (planned: weighted by their requests_per_s) or candidate
    arcs (validate: the range over deployments), with `workload` and `output_tokens_per_s_per_user`.
    """
    notes = []
    for workload in scenario.workloads:
        if workload.slo.min_output_tokens_per_s is not None or workload.slo.max_e2e_s is not None:
            continue
        mine = rows[rows["workload"] == workload.id] if len(rows) else rows
        speed = pd.to_numeric(mine.get("output_tokens_per_s_per_user", pd.Series(dtype=float)), errors="coerce")
        known = speed.notna()
        head = f"workload {workload.id} asks no per-user speed"
        tail = "; set slo.min_output_tokens_per_s to ask for more"
        if not known.any():
            if len(mine):
                notes.append(f"{head}; its operating points state none{tail}")
            continue
        if planned:
            weight = mine["requests_per_s"].to_numpy(dtype=float)[known.to_numpy()]
            values = speed[known].to_numpy()
            mean = float((weight * values).sum() / weight.sum()) if weight.sum() > 0 else float(values.mean())
            notes.append(f"{head}; planned at {_speed(values.min())} tok/s per user (slowest routed row; "
                         f"traffic-weighted mean {_speed(mean)} tok/s){tail}")
        else:
            low, high = float(speed[known].min()), float(speed[known].max())
            span = f"{_speed(low)} tok/s" if low == high else f"{_speed(low)} to {_speed(high)} tok/s"
            notes.append(f"{head}; planned at {span} per user (the operating point with the most requests/s "
                         f"of each deployment){tail}")
    return notes


def _speed(value: float) -> str:
    """Tokens per second as people write them: 4.2, 35.5, 1,500."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def summary_markdown(plan: dict[str, Any]) -> str:
    scenario = plan["scenario"]
    currency = scenario.get("currency", "USD")
    lines = [f"# Plan for {scenario['name']}", ""]
    status = plan["status"]
    objective = plan.get("objective") or {}
    solver = plan.get("solver") or {}
    if status in ("optimal", "feasible"):
        cost = plan["cost"]
        gap = objective.get("gap")
        lines += [
            f"**Status:** {status}" + (f" (gap {gap:.4%})" if gap is not None else "") +
            f", solved by {solver.get('backend')}/{solver.get('engine')} in {solver.get('solve_s', 0):.2f} s.",
            "",
            f"**Cost:** {_money(cost['per_hour'], currency)} per hour of capacity, "
            f"{_money(cost['period'], currency)} over {scenario.get('hours'):g} hours"
            + (f" ({_money(cost['total'], currency)} in all, with churn and contract terms beyond the horizon)"
               if cost.get("total") is not None and abs(cost["total"] - cost["period"]
                                                        - cost.get("unserved_penalty", 0.0)) > 1e-6 else "")
            + (f"; shedding penalty {_money(cost['unserved_penalty_per_hour'], currency)}/h"
               if cost.get("unserved_penalty_per_hour") else "")
            + (f"; sunk (signed contracts, prepaid fixed_cost) {_money(cost.get('fixed'), currency)} "
               "(not a decision)" if cost.get("fixed") else "") + ".",
            "",
        ]
        rolling = solver.get("rolling")
        if rolling:
            lines += [f"**Rolling horizon:** planned {rolling['window']} period(s) ahead and committed one period "
                      f"at a time ({len(rolling['steps'])} steps, {rolling['seconds']:.1f} s); no bound against the "
                      "full horizon, so this plan is feasible at best and may cost more than the full solve.", ""]
        best = next((b for b in plan.get("baselines", []) if b["name"] == "best single accelerator"), None)
        if best is not None and best.get("savings_vs_baseline") is not None:
            lines += [f"**Mixing pays:** the best single-accelerator plan ({best['accelerator']}) costs "
                      f"{_money(best['cost_per_hour'], currency)}/h; this plan saves "
                      f"{best['savings_vs_baseline']:.1%}.", ""]
        elif plan.get("baselines"):
            lines += ["**Mixing is required:** no single accelerator type can serve every bucket.", ""]
        horizon = len(plan.get("periods") or []) > 1 or len(plan.get("slices") or []) > 1
        if horizon:
            lines += horizon_story(plan, currency)
        lines += ["## Capacity", "", _table(
            ["pool", "kind"] + (["period"] if horizon else []) + ["chips used", "committed", "max", "cost/h"],
            [[p["pool"], p.get("kind", "")] + ([p.get("period", "")] if horizon else [])
             + [p["chips_used"], p["chips_committed"], p["max_chips"], f"{p.get('per_hour', 0):,.2f}"]
             for p in plan["pools"]]), ""]
        if horizon:  # a horizon's rows are in replicas.csv and routing.csv; the story above aggregates them
            lines += _explanations_and_baselines(plan, objective, currency)
            return "\n".join(lines)
        lines += ["## Replicas", "", _table(
            ["model", "accelerator", "chips/replica", "pool", "replicas", "chips"],
            [[r["model"], r["accelerator"], r["chips_per_replica"], r["pool"], r["replicas"], r["chips"]]
             for r in plan["replicas"]]), ""]
        if len(plan["routing"]) > MAX_ROUTING_ROWS:  # a fleet-sized plan: aggregate, the rows are in routing.csv
            lines += routing_by_workload(plan)
        else:
            lines += ["## Routing", "", _table(
                ["workload", "bucket", "in/out tokens", "model", "accelerator", "share", "req/s", "replica req/s",
                 "tok/s/user", "ttft s"],
                [[r["workload"], r["bucket"], f"{r['input_tokens']:,}/{r['output_tokens']:,}", r["model"],
                  f"{r['accelerator']} x{r['chips_per_replica']}", f"{r['share']:.1%}", f"{r['requests_per_s']:.3g}",
                  f"{r['replica_requests_per_s']:.3g}", _opt(r.get("output_tokens_per_s_per_user"), "{:,.0f}"),
                  _opt(r.get("ttft_s"), "{:.2f}")] for r in plan["routing"]]), ""]
        shed = [u for u in plan.get("unserved", []) if u["share"] > 0]
        if shed:
            lines += ["## Shed", "", _table(["workload", "bucket", "share", "req/s"],
                                            [[u["workload"], u["bucket"], f"{u['share']:.1%}", f"{u['requests_per_s']:.3g}"]
                                             for u in shed]), ""]
        lines += _explanations_and_baselines(plan, objective, currency)
    else:
        lines += [f"**Status:** {status}. No plan meets every hard constraint." if status == "infeasible"
                  else f"**Status:** {status}. The solver returned no plan ({solver.get('message', '')}).", ""]
        if plan.get("diagnosis"):
            lines += ["## Diagnosis", ""]
            for finding in plan["diagnosis"]:
                lines.append(f"- {_inline(finding['message'])}")
                for accelerator, reason in (finding.get("why") or {}).items():
                    lines.append(f"  - {_inline(accelerator)}: {_inline(reason)}")
            lines.append("")
    return "\n".join(lines)


# beyond this many routing rows summary.md aggregates them (routing.csv and .parquet keep every row)
MAX_ROUTING_ROWS = 200


def routing_by_workload(plan: dict[str, Any]) -> list[str]:
    """Routing summed per (model, accelerator): what a person reads in a fleet-sized plan."""
    totals: dict[tuple[str, str], list[float]] = {}
    workloads: dict[tuple[str, str], set] = {}
    for r in plan["routing"]:
        key = (r["model"], r["accelerator"])
        workloads.setdefault(key, set()).add(r["workload"])
        total = totals.setdefault(key, [0.0, 0.0])
        total[0] += r["requests_per_s"]
        total[1] += r["requests_per_s"] / r["replica_requests_per_s"] if r["replica_requests_per_s"] else 0.0
    rows = [[m, a, f"{len(workloads[(m, a)]):,}", f"{rate:.4g}", f"{load:.4g}"]
            for (m, a), (rate, load) in sorted(totals.items())]
    return [f"## Routing ({len(plan['routing']):,} rows in routing.csv; here per model and accelerator)",
            "", _table(["model", "accelerator", "workloads", "req/s", "replica load"], rows), ""]


def _explanations_and_baselines(plan: dict[str, Any], objective: dict[str, Any], currency: str) -> list[str]:
    lines: list[str] = []
    explained = plan.get("explanations") or []
    if explained:
        shown = explained[:MAX_ROUTING_ROWS]
        lines += ["## Why this split", ""] + [f"- {_inline(s)}" for s in shown] + [""]
        if len(explained) > len(shown):
            lines += [f"... and {len(explained) - len(shown):,} more buckets: plan.json `explanations`.", ""]
    if plan.get("baselines"):
        lines += ["## Single-accelerator baselines", "", _table(
            ["baseline", "feasible", "cost/h", "this plan saves"],
            [[b["name"], "yes" if b["feasible"] else "no", _opt(b.get("cost_per_hour"), "{:,.2f}"),
              _opt(b.get("savings_vs_baseline"), "{:.1%}") if b["feasible"] else b.get("reason", "")]
             for b in plan["baselines"]]), ""]
    if plan.get("notes"):
        lines += ["## Notes", ""] + [f"- {_inline(note)}" for note in plan["notes"]] + [""]
    lp = objective.get("lp_relaxation")
    if lp is not None:
        lines += [f"LP relaxation bound: {lp:,.4f} {currency}/h (the integer gap is what whole replicas and "
                  "blocks cost beyond a fractional plan).", ""]
    notes = (plan.get("solver") or {}).get("notes") or []
    if notes:
        lines += ["## What the solve skipped or cut short", ""] + [f"- {n}" for n in notes] + [""]
    return lines


def horizon_story(plan: dict[str, Any], currency: str) -> list[str]:
    """Per period: what it costs, what is bought and when it starts, the churn, what the peak costs
    and what runs where in the quietest slice; then chips by pool in every (period, slice)."""
    periods = [p["id"] for p in plan["periods"]]
    slices = {s["id"]: s["weight"] for s in plan["slices"]}
    chips: dict[tuple[str, str], dict[str, int]] = {}
    for row in plan["replicas"]:
        cell = chips.setdefault((row["period"], row["slice"]), {})
        cell[row["pool"]] = cell.get(row["pool"], 0) + row["chips"]
    demand: dict[tuple[str, str], float] = {}
    for row in plan["routing"] + plan["unserved"]:
        key = (row["period"], row["slice"])
        demand[key] = demand.get(key, 0.0) + row["requests_per_s"]
    by_period = {p["period"]: p for p in plan["cost"]["by_period"]}
    churn = {c["period"]: c for c in plan["cost"].get("churn", [])}
    prices = {p["pool"]: (p.get("per_hour", 0.0), p["kind"]) for p in plan["pools"]}
    lines = ["## The horizon, period by period", "",
             f"Total {_money(plan['cost']['total'], currency)} over {len(periods)} period(s)"
             + (f", of which {_money(plan['cost']['beyond_horizon'], currency)} is paid for contract terms after "
                "the last period" if plan["cost"].get("beyond_horizon") else "")
             + (f"; sunk (signed contracts, prepaid): {_money(plan['cost']['fixed'], currency)}"
                if plan["cost"].get("fixed") else "") + ".", ""]
    for period in periods:
        cost = by_period.get(period, {})
        bought = [c for c in plan.get("commitments", []) if c["bought_in"] == period]
        starting = [c for c in plan.get("commitments", []) if c["first_period"] == period]
        sentence = [f"**{period}:** {_money(cost.get('total'), currency)} ({_money(cost.get('per_hour'), currency)}/h)"]
        if bought:
            sentence.append("buys " + ", ".join(
                f"{c['blocks']} block(s) of {c['pool']} ({c['chips']} chips, live {c['first_period']}"
                f"-{c['last_period']}, {_money(c['cost'], currency)} over the term)" for c in bought))
        if starting and any(c not in bought for c in starting):
            sentence.append("contracts bought earlier go live: " + ", ".join(
                f"{c['chips']} chips of {c['pool']}" for c in starting if c not in bought))
        moved = churn.get(period)
        if moved and moved.get("chips_moved"):
            sentence.append(f"moves {moved['chips_moved']:,} chips" +
                            (f" (limit {moved['limit']:,.0f})" if moved.get("limit") not in (None, float("inf"))
                             and moved.get("limit") is not None else ""))
        in_period = {s: chips.get((period, s), {}) for s in slices}
        if len(slices) > 1:
            peak = max(slices, key=lambda s: (sum(in_period[s].values()), s))
            quiet = min(slices, key=lambda s: (sum(in_period[s].values()), s))
            rented = sum(v for pool, v in in_period[peak].items() if prices.get(pool, (0, ""))[1] in ("on_demand", "spot"))
            sentence.append(f"the {peak} slice runs {sum(in_period[peak].values()):,} chips"
                            + (f" ({rented:,} rented for it)" if rented else "")
                            + f"; in the {quiet} slice " + (", ".join(f"{n:,} on {pool}" for pool, n in
                                                                       sorted(in_period[quiet].items()))
                                                             or "nothing runs"))
        lines.append("; ".join(sentence) + ".")
        lines.append("")
    pools = sorted({pool for cell in chips.values() for pool in cell})
    lines += ["### Chips by pool in every (period, slice)", "", _table(
        ["period", "slice", "req/s"] + pools,
        [[t, s, f"{demand.get((t, s), 0.0):,.3g}"] + [f"{chips.get((t, s), {}).get(p, 0):,}" for p in pools]
         for t in periods for s in slices]), "", "Chart: `plan.png`. Rows: replicas.csv, routing.csv, fleet.csv, "
             "commitments.csv.", ""]
    return lines


def _opt(value, fmt: str) -> str:
    return "" if value is None else fmt.format(value)

"""summary.md: the plan in words, for the person who signs the capacity order.

What it costs, what it buys, where each bucket goes, and why the buckets that skip an accelerator
skip it (its context limit, its speed, its quality), from `explain.candidate_reasons`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from placement.explain import accelerator_verdicts, candidate_reasons
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


def explanations(scenario, table: pd.DataFrame, cells: pd.DataFrame, plan: dict[str, Any]) -> list[str]:
    """One sentence per bucket: where it went, and why each unused accelerator could not take it."""
    reasons = candidate_reasons(scenario, table, cells)
    if reasons.empty:
        return []
    verdicts = accelerator_verdicts(reasons)
    verdict_of = {(c, a): (ok, why) for c, a, ok, why in
                  zip(verdicts["cell"], verdicts["accelerator"], verdicts["can_serve"], verdicts["reason"])}
    routed: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in plan.get("routing", []):
        routed.setdefault((row["workload"], row["bucket"]), []).append(row)
    pooled = sorted({p.accelerator for p in scenario.pools})
    sentences = []
    for i, cell in cells.reset_index(drop=True).iterrows():
        key = (cell["workload"], int(cell["bucket"]))
        rows = routed.get(key, [])
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
        sentences.append(sentence + ".")
    return sentences


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
            f"**Cost:** {_money(cost['per_hour'], currency)} per hour, "
            f"{_money(cost['period'], currency)} over {scenario.get('hours'):g} hours"
            + (f"; shedding penalty {_money(cost['unserved_penalty_per_hour'], currency)}/h"
               if cost.get("unserved_penalty_per_hour") else "")
            + (f"; sunk prepaid cost {_money(cost['fixed_cost_period'], currency)} for the period (not a decision)"
               if cost.get("fixed_cost_period") else "") + ".",
            "",
        ]
        best = next((b for b in plan.get("baselines", []) if b["name"] == "best single accelerator"), None)
        if best is not None and best.get("savings_vs_baseline") is not None:
            lines += [f"**Mixing pays:** the best single-accelerator plan ({best['accelerator']}) costs "
                      f"{_money(best['cost_per_hour'], currency)}/h; this plan saves "
                      f"{best['savings_vs_baseline']:.1%}.", ""]
        elif plan.get("baselines"):
            lines += ["**Mixing is required:** no single accelerator type can serve every bucket.", ""]
        lines += ["## Capacity", "", _table(
            ["pool", "kind", "chips used", "committed", "max", "cost/h"],
            [[p["pool"], p.get("kind", ""), p["chips_used"], p["chips_committed"], p["max_chips"],
              f"{p.get('per_hour', 0):,.2f}"] for p in plan["pools"]]), ""]
        lines += ["## Replicas", "", _table(
            ["model", "accelerator", "chips/replica", "pool", "replicas", "chips"],
            [[r["model"], r["accelerator"], r["chips_per_replica"], r["pool"], r["replicas"], r["chips"]]
             for r in plan["replicas"]]), ""]
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
        if plan.get("explanations"):
            lines += ["## Why this split", ""] + [f"- {_inline(s)}" for s in plan["explanations"]] + [""]
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


def _opt(value, fmt: str) -> str:
    return "" if value is None else fmt.format(value)

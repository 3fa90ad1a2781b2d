"""summary.md: the plan in words, for the person who signs the capacity order.

What it costs, what it buys, where each bucket goes, and why the buckets that skip an accelerator
skip it (its context limit, its speed, its quality), from `explain.candidate_reasons`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from placement.explain import accelerator_verdicts, candidate_reasons


def _money(value: float | None, currency: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.2f} {currency}"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
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
            lines += ["## Why this split", ""] + [f"- {s}" for s in plan["explanations"]] + [""]
        if plan.get("baselines"):
            lines += ["## Single-accelerator baselines", "", _table(
                ["baseline", "feasible", "cost/h", "this plan saves"],
                [[b["name"], "yes" if b["feasible"] else "no", _opt(b.get("cost_per_hour"), "{:,.2f}"),
                  _opt(b.get("savings_vs_baseline"), "{:.1%}") if b["feasible"] else b.get("reason", "")]
                 for b in plan["baselines"]]), ""]
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
                lines.append(f"- {finding['message']}")
                for accelerator, reason in (finding.get("why") or {}).items():
                    lines.append(f"  - {accelerator}: {reason}")
            lines.append("")
    return "\n".join(lines)


def _opt(value, fmt: str) -> str:
    return "" if value is None else fmt.format(value)

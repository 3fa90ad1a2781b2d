"""`placement diff PLAN_A PLAN_B`: what changed between two plans, in Markdown or JSON.

Cost overall and by pool, replicas added and removed, and traffic moved: per bucket, the
requests/s that left one deployment (or the shed) for another; every changed routing row is listed. Rows are matched by their keys; a `period` or `slice` field, where a
plan has one, is part of the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from placement.errors import InputError, Problem

REPLICA_KEY = ["model", "accelerator", "chips_per_replica", "pool"]
ROUTE_KEY = ["workload", "bucket", "model", "accelerator", "chips_per_replica"]
EXTRA_KEYS = ["period", "slice"]
EPS = 1e-9


def read_plan(path: str | Path) -> dict[str, Any]:
    """plan.json, or the plan folder holding it; bad input names the file."""
    path = Path(path)
    if path.is_dir():
        path = path / "plan.json"
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError([Problem(str(path), "", "plan file not found; give plan.json or its folder")]) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError([Problem(str(path), "", f"not a readable plan.json ({exc})")]) from None
    if not isinstance(plan, dict) or "status" not in plan:
        raise InputError([Problem(str(path), "status", "not a plan document (no status field)")])
    return plan


def _key(row: dict[str, Any], fields: list[str]) -> tuple:
    return tuple(row.get(f) for f in fields)


def _keys(a: list[dict], b: list[dict], base: list[str]) -> list[str]:
    return [f for f in EXTRA_KEYS if any(f in r for r in a + b)] + base


def _totals(rows: list[dict], fields: list[str], value: str) -> dict[tuple, float]:
    totals: dict[tuple, float] = {}
    for row in rows:
        totals[_key(row, fields)] = totals.get(_key(row, fields), 0.0) + float(row.get(value) or 0)
    return totals


def diff_plans(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The difference B - A, as plain data (what `--json` prints)."""
    cost_a, cost_b = (a.get("cost") or {}).get("per_hour"), (b.get("cost") or {}).get("per_hour")
    fields = _keys(a.get("pools") or [], b.get("pools") or [], ["pool"])
    pools_a = {_key(p, fields): p for p in a.get("pools") or []}
    pools_b = {_key(p, fields): p for p in b.get("pools") or []}
    pools = []
    for key in list(pools_a) + [k for k in pools_b if k not in pools_a]:
        pa, pb = pools_a.get(key, {}), pools_b.get(key, {})
        ha, hb = float(pa.get("per_hour") or 0), float(pb.get("per_hour") or 0)
        ca, cb = int(pa.get("chips_used") or 0), int(pb.get("chips_used") or 0)
        pools.append(dict(zip(fields, key)) | {"per_hour_a": ha, "per_hour_b": hb, "per_hour_change": _r(hb - ha),
                                               "chips_used_a": ca, "chips_used_b": cb, "chips_change": cb - ca})

    fields = _keys(a.get("replicas") or [], b.get("replicas") or [], REPLICA_KEY)
    rep_a = _totals(a.get("replicas") or [], fields, "replicas")
    rep_b = _totals(b.get("replicas") or [], fields, "replicas")
    added, removed = [], []
    for key in sorted(set(rep_a) | set(rep_b), key=str):
        change = rep_b.get(key, 0) - rep_a.get(key, 0)
        row = dict(zip(fields, key)) | {"replicas_a": int(rep_a.get(key, 0)), "replicas_b": int(rep_b.get(key, 0)),
                                        "change": int(change)}
        (added if change > 0 else removed if change < 0 else []).append(row)

    fields = _keys(a.get("routing") or [], b.get("routing") or [], ROUTE_KEY)
    flow_a = _totals(a.get("routing") or [], fields, "requests_per_s")
    flow_b = _totals(b.get("routing") or [], fields, "requests_per_s")
    shed_fields = [f for f in fields if f in EXTRA_KEYS] + ["workload", "bucket"]
    shed_a = _totals(a.get("unserved") or [], shed_fields, "requests_per_s")
    shed_b = _totals(b.get("unserved") or [], shed_fields, "requests_per_s")
    moved = []
    for key in sorted(set(flow_a) | set(flow_b), key=str):
        change = flow_b.get(key, 0.0) - flow_a.get(key, 0.0)
        if abs(change) > EPS:
            moved.append(dict(zip(fields, key)) | {"requests_per_s_a": _r(flow_a.get(key, 0.0)),
                                                   "requests_per_s_b": _r(flow_b.get(key, 0.0)),
                                                   "change": _r(change)})
    for key in sorted(set(shed_a) | set(shed_b), key=str):
        change = shed_b.get(key, 0.0) - shed_a.get(key, 0.0)
        if abs(change) > EPS:
            moved.append(dict(zip(shed_fields, key)) | {"model": None, "accelerator": "(unserved)",
                                                        "requests_per_s_a": _r(shed_a.get(key, 0.0)),
                                                        "requests_per_s_b": _r(shed_b.get(key, 0.0)),
                                                        "change": _r(change)})
    # per bucket, traffic that left one deployment (or the shed) for another: demand that grew or
    # shrank is not moved
    arrived: dict[tuple, float] = {}
    left: dict[tuple, float] = {}
    for m in moved:
        cell = _key(m, shed_fields)
        arrived[cell] = arrived.get(cell, 0.0) + max(m["change"], 0.0)
        left[cell] = left.get(cell, 0.0) + max(-m["change"], 0.0)
    total_moved = _r(sum(min(arrived[c], left[c]) for c in arrived))
    return {
        "a": _label(a), "b": _label(b),
        "status": {"a": a.get("status"), "b": b.get("status")},
        "cost_per_hour": {"a": cost_a, "b": cost_b,
                          "change": _r(cost_b - cost_a) if cost_a is not None and cost_b is not None else None},
        "pools": pools,
        "replicas_added": added,
        "replicas_removed": removed,
        "traffic_moved": moved,
        "traffic_moved_requests_per_s": total_moved,
    }


def _label(plan: dict[str, Any]) -> dict[str, Any]:
    scenario = plan.get("scenario") or {}
    return {"name": scenario.get("name"), "sha256": scenario.get("sha256")}


def _r(value: float) -> float:
    rounded = round(float(value), 9)
    return 0.0 if rounded == 0 else rounded


def diff_markdown(d: dict[str, Any]) -> str:
    cost = d["cost_per_hour"]
    lines = [f"# Plan diff: {d['a']['name']} -> {d['b']['name']}", "",
             f"Status: {d['status']['a']} -> {d['status']['b']}.", ""]
    if cost["change"] is not None:
        lines += [f"**Cost per hour:** {cost['a']:,.2f} -> {cost['b']:,.2f} ({cost['change']:+,.2f}).", ""]
    lines += ["## Cost by pool", "", "| pool | cost/h A | cost/h B | change | chips A | chips B |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {p['pool']} | {p['per_hour_a']:,.2f} | {p['per_hour_b']:,.2f} | {p['per_hour_change']:+,.2f} | "
              f"{p['chips_used_a']} | {p['chips_used_b']} |" for p in d["pools"]]
    # a single-period plan's rows all carry the same period and slice: name them only when they tell apart
    times = {tuple(r.get(k) for k in EXTRA_KEYS) for r in d["replicas_added"] + d["replicas_removed"]}
    show_time = len(times) > 1
    for title, rows in (("Replicas added", d["replicas_added"]), ("Replicas removed", d["replicas_removed"])):
        lines += ["", f"## {title}", ""]
        if not rows:
            lines.append("None.")
            continue
        lines += ["| model | accelerator | chips/replica | pool | A | B | change |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['accelerator']} | {r['chips_per_replica']} | {r['pool']}"
                  + (f" ({', '.join(str(r[k]) for k in EXTRA_KEYS if k in r)})" if show_time else "")
                  + f" | {r['replicas_a']} | {r['replicas_b']} | {r['change']:+d} |" for r in rows]
    lines += ["", f"## Traffic moved ({d['traffic_moved_requests_per_s']:,.4g} req/s)", ""]
    if not d["traffic_moved"]:
        lines.append("None.")
    else:
        lines += ["| workload | bucket | to/from | req/s A | req/s B | change |", "|---|---|---|---|---|---|"]
        for m in d["traffic_moved"]:
            where = (f"{m['model']} on {m['accelerator']} x{m['chips_per_replica']}" if m.get("model")
                     else m["accelerator"])
            lines.append(f"| {m['workload']} | {m['bucket']} | {where} | {m['requests_per_s_a']:.4g} | "
                         f"{m['requests_per_s_b']:.4g} | {m['change']:+.4g} |")
    return "\n".join(lines) + "\n"

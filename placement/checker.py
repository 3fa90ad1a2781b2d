"""Independent re-verification of a plan against its scenario.

Shares nothing with the formulation, index sets or lookup code: it re-reads the plan's rows and
the scenario (through the parser) and checks every promise with plain loops: demand fully served
or explicitly shed, loads within replicas, pools within caps, reserved blocks committed, SLOs and
quality met, and the cost recomputed from the rows. A violation from a solve is a bug.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pandas as pd

from placement.scenario import LoadedScenario

TOL = 1e-6


def _close(a: float, b: float, tol: float = TOL) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def check_plan(loaded: LoadedScenario, plan: dict[str, Any], table: pd.DataFrame) -> list[str]:
    """Return every violation found (empty list = the plan keeps every promise).

    `table` is the profile table the plan claims to use (measured and estimated rows).
    """
    if plan.get("status") not in ("optimal", "feasible"):
        return []
    scenario = loaded.scenario
    problems: list[str] = []
    workloads = {w.id: w for w in scenario.workloads}
    models = {m.id: m for m in scenario.models}
    pools = {p.id: p for p in scenario.pools}
    headroom = scenario.options.headroom

    served: dict[tuple[str, int], float] = defaultdict(float)
    load: dict[tuple[str, str, int], float] = defaultdict(float)
    quality_sum: dict[str, float] = defaultdict(float)
    quality_weight: dict[str, float] = defaultdict(float)
    rows_by_deployment = _rows_by_deployment(table)

    for i, row in enumerate(plan.get("routing", [])):
        where = f"routing[{i}] ({row.get('workload')} bucket {row.get('bucket')} on {row.get('model')}/{row.get('accelerator')})"
        workload = workloads.get(row["workload"])
        if workload is None or not (0 <= row["bucket"] < len(workload.buckets)):
            problems.append(f"{where}: unknown workload or bucket")
            continue
        bucket = workload.buckets[row["bucket"]]
        model = models.get(row["model"])
        if model is None:
            problems.append(f"{where}: unknown model")
            continue
        share = float(row["share"])
        if share < -TOL or share > 1 + TOL:
            problems.append(f"{where}: share {share} outside [0, 1]")
        if (row["input_tokens"], row["output_tokens"]) != (bucket.input_tokens, bucket.output_tokens):
            problems.append(f"{where}: lengths do not match the bucket")
        rate = workload.requests_per_s * bucket.share
        if not _close(row["requests_per_s"], rate * share):
            problems.append(f"{where}: requests_per_s {row['requests_per_s']} != rate {rate} x share {share}")
        served[(workload.id, row["bucket"])] += share
        if workload.allowed_models is not None and model.id not in workload.allowed_models:
            problems.append(f"{where}: model not in allowed_models")
        if model.max_context_tokens is not None and bucket.input_tokens + bucket.output_tokens > model.max_context_tokens:
            problems.append(f"{where}: context exceeds the model's max_context_tokens")
        if workload.quality is not None:
            score = model.quality.get(workload.quality.metric)
            if score is None:
                problems.append(f"{where}: model has no {workload.quality.metric} score")
            else:
                if workload.quality.min is not None and score < workload.quality.min - TOL:
                    problems.append(f"{where}: {workload.quality.metric} {score} below min {workload.quality.min}")
                quality_sum[workload.id] += bucket.share * share * score
                quality_weight[workload.id] += bucket.share * share
        if not _meets(row, workload.slo, bucket.output_tokens):
            problems.append(f"{where}: reported per-user speed {row.get('output_tokens_per_s_per_user')} tok/s, "
                            f"TTFT {row.get('ttft_s')} s miss the SLO")
        claimed = float(row["replica_requests_per_s"])
        allowed = _best_throughput(rows_by_deployment, row, bucket, workload)
        if allowed is None:
            problems.append(f"{where}: no profile row covers this bucket under the SLO")
        elif claimed > allowed * (1 + TOL):
            problems.append(f"{where}: replica_requests_per_s {claimed} exceeds the best SLO-meeting row {allowed}")
        if claimed <= 0:
            problems.append(f"{where}: non-positive replica throughput")
            continue
        load[(row["model"], row["accelerator"], int(row["chips_per_replica"]))] += row["requests_per_s"] / claimed

    unserved = {(u["workload"], u["bucket"]): float(u["share"]) for u in plan.get("unserved", [])}
    for workload in scenario.workloads:
        for b, bucket in enumerate(workload.buckets):
            shed = unserved.get((workload.id, b), 0.0)
            total = served.get((workload.id, b), 0.0) + shed
            if workload.requests_per_s > 0 and not _close(total, 1.0):
                problems.append(f"{workload.id} bucket {b}: served {total - shed:.9g} + shed {shed:.9g} != 1")
            if workload.must_serve and shed > TOL and workload.requests_per_s > 0:
                problems.append(f"{workload.id} bucket {b}: shed {shed:.9g} but must_serve is true")
        floor = workload.quality
        if floor is not None and floor.min_mean is not None and quality_weight[workload.id] > TOL:
            mean = quality_sum[workload.id] / quality_weight[workload.id]
            if mean < floor.min_mean - 1e-5:
                problems.append(f"{workload.id}: mean {floor.metric} {mean:.6g} below min_mean {floor.min_mean}")

    replicas_by_deployment: dict[tuple[str, str, int], int] = defaultdict(int)
    used: dict[str, int] = defaultdict(int)
    for i, row in enumerate(plan.get("replicas", [])):
        key = (row["model"], row["accelerator"], int(row["chips_per_replica"]))
        pool = pools.get(row["pool"])
        if pool is None:
            problems.append(f"replicas[{i}]: unknown pool {row['pool']!r}")
            continue
        if pool.accelerator != row["accelerator"]:
            problems.append(f"replicas[{i}]: {row['accelerator']} replica in pool {pool.id} of {pool.accelerator}")
        if int(row["replicas"]) != row["replicas"] or row["replicas"] < 0:
            problems.append(f"replicas[{i}]: replicas must be a whole number >= 0")
        if row["chips"] != row["replicas"] * row["chips_per_replica"]:
            problems.append(f"replicas[{i}]: chips {row['chips']} != replicas x chips_per_replica")
        replicas_by_deployment[key] += int(row["replicas"])
        used[pool.id] += int(row["replicas"]) * int(row["chips_per_replica"])

    limit = scenario.options.max_shapes_per_model_accelerator
    if limit is not None:
        shapes: dict[tuple[str, str], set[int]] = defaultdict(set)
        for (model_id, accel_id, chips), count in replicas_by_deployment.items():
            if count > 0:
                shapes[(model_id, accel_id)].add(chips)
        for (model_id, accel_id), sizes in sorted(shapes.items()):
            if len(sizes) > limit:
                problems.append(f"{model_id} on {accel_id}: {len(sizes)} replica sizes {sorted(sizes)} > "
                                f"max_shapes_per_model_accelerator {limit}")

    for key, needed in sorted(load.items()):
        have = replicas_by_deployment.get(key, 0) * (1 - headroom)
        if needed > have + TOL * max(1.0, needed):
            problems.append(f"deployment {key}: load {needed:.9g} replicas exceeds {have:.9g} usable replicas")

    cost = 0.0
    plan_pools = {p["pool"]: p for p in plan.get("pools", [])}
    for pool in scenario.pools:
        chips = used.get(pool.id, 0)
        if chips > pool.max_chips:
            problems.append(f"pool {pool.id}: {chips} chips used > max_chips {pool.max_chips}")
        if pool.kind == "reserved":
            committed = math.ceil(chips / pool.block_chips - 1e-9) * pool.block_chips
            reported = plan_pools.get(pool.id, {}).get("chips_committed", committed)
            if reported % pool.block_chips != 0 or reported < chips:
                problems.append(f"pool {pool.id}: committed {reported} chips is not whole blocks covering {chips}")
            committed = max(committed, reported)
            cost += committed * pool.price
        elif pool.kind in ("on_demand", "spot"):
            cost += chips * pool.price
    reported_cost = (plan.get("cost") or {}).get("per_hour")
    if reported_cost is None or not _close(reported_cost, cost, 1e-7):
        problems.append(f"cost per hour {reported_cost} != {cost} recomputed from the rows")
    penalty = sum(
        float(u["requests_per_s"]) * 3600 * (workloads[u["workload"]].unserved_cost_per_request or 0.0)
        for u in plan.get("unserved", [])
        if u["workload"] in workloads
    )
    objective = (plan.get("objective") or {}).get("value")
    if objective is None or not _close(objective, cost + penalty, 1e-7):
        problems.append(f"objective {objective} != cost {cost} + shedding penalty {penalty}")
    return problems


def _rows_by_deployment(table: pd.DataFrame) -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    grouped: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in table.to_dict("records"):
        grouped[(row["model"], row["accelerator"], int(row["chips_per_replica"]))].append(row)
    return grouped


def _best_throughput(rows_by_deployment, route: dict[str, Any], bucket, workload) -> float | None:
    """Best requests/s the table allows for this bucket under the SLO, by the nearest-covering rule."""
    rows = rows_by_deployment.get((route["model"], route["accelerator"], int(route["chips_per_replica"])), [])
    covering = [r for r in rows if r["input_tokens"] >= bucket.input_tokens and r["output_tokens"] >= bucket.output_tokens]
    if not covering:
        return None
    point = min((r["input_tokens"], r["output_tokens"]) for r in covering)
    best = None
    for r in covering:
        if (r["input_tokens"], r["output_tokens"]) != point or not _meets(r, workload.slo, bucket.output_tokens):
            continue
        throughput = r["requests_per_s"]
        if throughput is not None and not math.isnan(throughput) and (best is None or throughput > best):
            best = throughput
    return best


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _meets(row: dict[str, Any], slo, output_tokens: int) -> bool:
    speed, ttft = row.get("output_tokens_per_s_per_user"), row.get("ttft_s")
    if slo.min_output_tokens_per_s is not None and _given(speed) and speed < slo.min_output_tokens_per_s:
        return False
    if slo.max_ttft_s is not None and _given(ttft) and ttft > slo.max_ttft_s:
        return False
    if slo.max_e2e_s is not None:
        e2e = (ttft if _given(ttft) else 0.0) + (output_tokens / speed if _given(speed) else 0.0)
        if e2e > slo.max_e2e_s:
            return False
    return True

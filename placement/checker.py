"""Independent re-verification of a plan against its scenario.

Shares nothing with the formulation, index sets, horizon or lookup code: it re-reads the plan's rows and
the scenario (through the parser) and checks every promise with plain loops, in every (period, slice):
demand fully served or explicitly shed, loads within replicas, pools within caps (deliveries, spot
availability, reserved blocks active), contracts bought whole with their term and lead, the fleet at
least every slice (on rented chips, exactly its largest) and its churn within the limit, SLOs and quality
met, and the horizon's cost recomputed from the rows. A violation from a solve is a bug.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pandas as pd

from placement.scenario import DEFAULT_PERIOD, DEFAULT_SLICE, LoadedScenario

TOL = 1e-6


def _close(a: float, b: float, tol: float = TOL) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def _time(scenario, plan) -> tuple[list[str], dict[str, float], list[str], dict[str, float], list[str]]:
    """Periods (ids, hours) and slices (ids, weights) as the scenario defines them; slices derived from a
    load curve are taken from the plan and their weights checked against the hours they list."""
    problems: list[str] = []
    if scenario.periods is None:
        periods, hours = [DEFAULT_PERIOD], {DEFAULT_PERIOD: float(scenario.hours)}
    else:
        periods, hours = [p.id for p in scenario.periods], {p.id: float(p.hours) for p in scenario.periods}
    if scenario.load_curve:
        listed = plan.get("slices") or []
        slices = [s["id"] for s in listed]
        weights = {s["id"]: float(s["weight"]) for s in listed}
        curve_hours = {r.hour for r in scenario.load_curve}
        members = [h for s in listed for h in _slice_hours(s)]
        if sorted(members, key=str) != sorted(curve_hours, key=str):
            problems.append("derived slices do not partition the load curve's hours")
        for s in listed:
            count = len(_slice_hours(s))
            if not _close(weights[s["id"]], count / max(len(curve_hours), 1)):
                problems.append(f"slice {s['id']}: weight {weights[s['id']]} != {count} of {len(curve_hours)} hours")
    elif scenario.slices is None:
        slices, weights = [DEFAULT_SLICE], {DEFAULT_SLICE: 1.0}
    else:
        slices, weights = [s.id for s in scenario.slices], {s.id: float(s.weight) for s in scenario.slices}
    return periods, hours, slices, weights, problems


def _slice_hours(listed: dict[str, Any]) -> list[Any]:
    """A derived slice's curve hours: a list (or, in plans before 2026-11, a comma-joined text)."""
    hours = listed.get("hours")
    items = hours if isinstance(hours, list) else [h for h in str(hours or "").split(",") if h != ""]
    return [int(h) if isinstance(h, int) or (isinstance(h, str) and h.strip().isdigit()) else h for h in items]


def _rates(scenario, periods, slices, plan) -> dict[tuple[str, str, str], float]:
    """Total rate of every (workload, period, slice), straight from the scenario's definitions."""
    curve: dict[tuple[str, str], float] = {}
    if scenario.load_curve:
        by_hour = defaultdict(dict)
        for r in scenario.load_curve:
            by_hour[r.workload][r.hour] = r.requests_per_s
        for s in plan.get("slices") or []:
            members = _slice_hours(s)
            for workload, series in by_hour.items():
                curve[(workload, s["id"])] = sum(series.get(h, 0.0) for h in members) / max(len(members), 1)
    rates = {}
    for w in scenario.workloads:
        for t in periods:
            for s in slices:
                base = curve[(w.id, s)] if (w.id, s) in curve else w.requests_per_s * w.shape.get(s, 1.0)
                rates[(w.id, t, s)] = base * w.growth.get(t, 1.0)
    for row in scenario.demand or []:
        rates[(row.workload, row.period, row.slice)] = row.requests_per_s
    return rates


def check_plan(loaded: LoadedScenario, plan: dict[str, Any], table: pd.DataFrame) -> list[str]:
    """Return every violation found (empty list = the plan keeps every promise).

    `table` is the profile table the plan claims to use (measured and estimated rows).
    """
    if plan.get("status") not in ("optimal", "feasible"):
        return []
    scenario = loaded.scenario
    periods, hours, slices, weights, problems = _time(scenario, plan)
    rates = _rates(scenario, periods, slices, plan)
    workloads = {w.id: w for w in scenario.workloads}
    models = {m.id: m for m in scenario.models}
    pools = {p.id: p for p in scenario.pools}
    global_headroom = scenario.options.headroom
    first_period, first_slice = periods[0], slices[0]

    def when(row: dict[str, Any]) -> tuple[str, str]:
        return row.get("period", first_period), row.get("slice", first_slice)

    served: dict[tuple[str, int, str, str], float] = defaultdict(float)
    load: dict[tuple[str, str, int, str, str], float] = defaultdict(float)
    quality_sum: dict[tuple[str, str], float] = defaultdict(float)
    quality_weight: dict[tuple[str, str], float] = defaultdict(float)
    rows_by_deployment = _rows_by_deployment(table)

    for i, row in enumerate(plan.get("routing", [])):
        where = (f"routing[{i}] ({row.get('workload')} bucket {row.get('bucket')} on "
                 f"{row.get('model')}/{row.get('accelerator')})")
        workload = workloads.get(row["workload"])
        if workload is None or not (0 <= row["bucket"] < len(workload.buckets)):
            problems.append(f"{where}: unknown workload or bucket")
            continue
        period, slice_ = when(row)
        if period not in hours or slice_ not in weights:
            problems.append(f"{where}: unknown period {period!r} or slice {slice_!r}")
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
        rate = rates[(workload.id, period, slice_)] * bucket.share
        if not _close(row["requests_per_s"], rate * share):
            problems.append(f"{where}: requests_per_s {row['requests_per_s']} != rate {rate} x share {share}")
        served[(workload.id, row["bucket"], period, slice_)] += share
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
                requests = rate * share * weights[slice_]
                quality_sum[(workload.id, period)] += requests * score
                quality_weight[(workload.id, period)] += requests
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
        headroom = workload.headroom if workload.headroom is not None else global_headroom
        key = (row["model"], row["accelerator"], int(row["chips_per_replica"]), period, slice_)
        load[key] += row["requests_per_s"] / (claimed * (1 - headroom))

    unserved = {(u["workload"], u["bucket"], *when(u)): float(u["share"]) for u in plan.get("unserved", [])}
    penalty = 0.0
    for workload in scenario.workloads:
        for b, bucket in enumerate(workload.buckets):
            for period in periods:
                for slice_ in slices:
                    rate = rates[(workload.id, period, slice_)] * bucket.share
                    shed = unserved.get((workload.id, b, period, slice_), 0.0)
                    total = served.get((workload.id, b, period, slice_), 0.0) + shed
                    label = f"{workload.id} bucket {b}" + ("" if len(periods) * len(slices) == 1
                                                          else f" in {period}/{slice_}")
                    if rate > 0 and not _close(total, 1.0):
                        problems.append(f"{label}: served {total - shed:.9g} + shed {shed:.9g} != 1")
                    if workload.must_serve and shed > TOL and rate > 0:
                        problems.append(f"{label}: shed {shed:.9g} but must_serve is true")
                    penalty += (rate * shed * 3600 * (workload.unserved_cost_per_request or 0.0)
                                * hours[period] * weights[slice_])
        floor = workload.quality
        if floor is not None and floor.min_mean is not None:
            for period in periods:
                weight = quality_weight[(workload.id, period)]
                if weight > TOL:
                    mean = quality_sum[(workload.id, period)] / weight
                    if mean < floor.min_mean - 1e-5:
                        problems.append(f"{workload.id} in {period}: mean {floor.metric} {mean:.6g} below "
                                        f"min_mean {floor.min_mean}")

    running: dict[tuple[str, str, int, str, str], int] = defaultdict(int)
    placed: dict[tuple[str, str, int, str, str, str], int] = defaultdict(int)
    used: dict[tuple[str, str, str], int] = defaultdict(int)
    for i, row in enumerate(plan.get("replicas", [])):
        period, slice_ = when(row)
        pool = pools.get(row["pool"])
        if pool is None:
            problems.append(f"replicas[{i}]: unknown pool {row['pool']!r}")
            continue
        if period not in hours or slice_ not in weights:
            problems.append(f"replicas[{i}]: unknown period {period!r} or slice {slice_!r}")
            continue
        if pool.accelerator != row["accelerator"]:
            problems.append(f"replicas[{i}]: {row['accelerator']} replica in pool {pool.id} of {pool.accelerator}")
        if int(row["replicas"]) != row["replicas"] or row["replicas"] < 0:
            problems.append(f"replicas[{i}]: replicas must be a whole number >= 0")
        if row["chips"] != row["replicas"] * row["chips_per_replica"]:
            problems.append(f"replicas[{i}]: chips {row['chips']} != replicas x chips_per_replica")
        key = (row["model"], row["accelerator"], int(row["chips_per_replica"]))
        running[(*key, period, slice_)] += int(row["replicas"])
        placed[(*key, row["pool"], period, slice_)] += int(row["replicas"])
        used[(pool.id, period, slice_)] += int(row["replicas"]) * int(row["chips_per_replica"])

    limit = scenario.options.max_shapes_per_model_accelerator
    if limit is not None:
        shapes: dict[tuple[str, str], set[int]] = defaultdict(set)
        for (model_id, accel_id, chips, _, _), count in running.items():
            if count > 0:
                shapes[(model_id, accel_id)].add(chips)
        for (model_id, accel_id), sizes in sorted(shapes.items()):
            if len(sizes) > limit:
                problems.append(f"{model_id} on {accel_id}: {len(sizes)} replica sizes {sorted(sizes)} > "
                                f"max_shapes_per_model_accelerator {limit}")

    for key, needed in sorted(load.items()):
        have = running.get(key, 0)
        if needed > have + TOL * max(1.0, needed):
            problems.append(f"deployment {key}: load {needed:.9g} replicas exceeds {have} replicas")

    blocks_active, contract_cost, contract_chip_hours, contract_problems = _contracts(scenario, plan, periods, hours)
    problems += contract_problems
    cost = sum(contract_cost.values())
    # chip-hours billed per pool at its price (what break-even searches read from cost.by_pool)
    billed: dict[str, float] = defaultdict(float)
    for pool_id, chip_hours in contract_chip_hours:
        billed[pool_id] += chip_hours
    for pool in scenario.pools:
        for period in periods:
            cap = pool.cap(period)
            for slice_ in slices:
                chips = used.get((pool.id, period, slice_), 0)
                obtainable = cap * pool.availability.get(slice_, 1.0)
                if chips > obtainable + TOL:
                    problems.append(f"pool {pool.id} in {period}/{slice_}: {chips} chips used > "
                                    f"{obtainable:g} obtainable (max_chips {cap})")
                if pool.kind == "reserved":
                    held = blocks_active.get((pool.id, period), 0) * pool.block_chips
                    if chips > held:
                        problems.append(f"pool {pool.id} in {period}/{slice_}: {chips} chips used > {held} "
                                        "under active contracts")
                elif pool.kind in ("on_demand", "spot"):
                    cost += chips * pool.price * hours[period] * weights[slice_]
                    billed[pool.id] += chips * hours[period] * weights[slice_]
            if pool.kind == "reserved" and blocks_active.get((pool.id, period), 0) * pool.block_chips > cap:
                problems.append(f"pool {pool.id} in {period}: {blocks_active[(pool.id, period)]} active blocks "
                                f"x {pool.block_chips} chips > max_chips {cap}")

    share = scenario.options.max_spot_share
    if share is not None:
        for period in periods:
            for slice_ in slices:
                total = sum(used.get((p.id, period, slice_), 0) for p in scenario.pools)
                spot = sum(used.get((p.id, period, slice_), 0) for p in scenario.pools if p.kind == "spot")
                if spot > share * total + TOL * max(1.0, total):
                    problems.append(f"{period}/{slice_}: {spot} of {total} chips on spot > max_spot_share {share}")

    prices = {p.id: p.price for p in scenario.pools}
    for row in (plan.get("cost") or {}).get("by_pool") or []:
        if "billed_chip_hours" in row and not _close(float(row["billed_chip_hours"]), billed[row.get("pool")], 1e-7):
            problems.append(f"cost.by_pool {row.get('pool')}: billed_chip_hours {row['billed_chip_hours']} != "
                            f"{billed[row.get('pool')]} recomputed from the rows")
        bill = billed[row.get("pool")] * prices.get(row.get("pool"), 0.0)
        if "total" in row and not _close(float(row["total"]), bill, 1e-7):
            problems.append(f"cost.by_pool {row.get('pool')}: total {row['total']} != {bill} recomputed from the rows "
                            "(its periods and any term past the last)")

    churn_cost, fleet_problems = _fleet_and_churn(scenario, plan, periods, placed, blocks_active)
    problems += fleet_problems
    total = cost + churn_cost + penalty
    horizon_hours = sum(hours.values())
    reported = plan.get("cost") or {}
    reported_total = reported.get("total", (reported.get("per_hour") or 0.0) * horizon_hours)
    if reported_total is None or not _close(reported_total, total, 1e-7):
        problems.append(f"cost.total {reported_total} != {total} recomputed from the rows "
                        f"(pools {cost}, churn {churn_cost}, shedding {penalty})")
    reported_hour = reported.get("per_hour")
    if reported_hour is None or not _close(reported_hour, cost / horizon_hours, 1e-7):
        problems.append(f"cost per hour {reported_hour} != {cost / horizon_hours} recomputed from the rows")
    objective = (plan.get("objective") or {}).get("value")
    if objective is None or not _close(objective, total / horizon_hours, 1e-7):
        problems.append(f"objective {objective} != {total / horizon_hours} (horizon total over its hours)")
    return problems


def _contracts(scenario, plan, periods, hours):
    """Blocks active per (reserved pool, period) from the plan's commitments and the signed contracts, the
    currency each purchase pays (its whole term), and anything malformed."""
    problems: list[str] = []
    active: dict[tuple[str, str], int] = defaultdict(int)
    paid: dict[int, float] = {}
    chip_hours: list[tuple[str, float]] = []   # (pool, chip-hours of one purchase's whole term)
    pools = {p.id: p for p in scenario.pools}
    position = {p: i for i, p in enumerate(periods)}
    for pool in scenario.pools:
        for contract in pool.committed:
            first = position[contract.starts] if contract.starts is not None else 0
            for period in periods[first: position[contract.through] + 1]:
                active[(pool.id, period)] += contract.blocks
    commitments = plan.get("commitments")
    if commitments is None:  # a plan from before contracts over time: committed chips per pool
        for row in plan.get("pools", []):
            pool = pools.get(row["pool"])
            if pool is not None and pool.kind == "reserved":
                committed = row.get("chips_committed", 0)
                if committed % pool.block_chips != 0:
                    problems.append(f"pool {pool.id}: committed {committed} chips is not whole blocks")
                active[(pool.id, row.get("period", periods[0]))] += committed // pool.block_chips
                paid[len(paid)] = committed * pool.price * hours[row.get("period", periods[0])]
                chip_hours.append((pool.id, committed * hours[row.get("period", periods[0])]))
        return active, paid, chip_hours, problems
    for i, row in enumerate(commitments):
        pool = pools.get(row.get("pool"))
        if pool is None or pool.kind != "reserved":
            problems.append(f"commitments[{i}]: {row.get('pool')!r} is not a reserved pool")
            continue
        blocks = row.get("blocks")
        if not isinstance(blocks, int) or blocks < 0:
            problems.append(f"commitments[{i}]: blocks must be a whole number >= 0")
            continue
        if row.get("bought_in") not in position:
            problems.append(f"commitments[{i}]: unknown period {row.get('bought_in')!r}")
            continue
        first = position[row["bought_in"]] + pool.lead_periods
        if first >= len(periods):
            problems.append(f"commitments[{i}]: bought in {row['bought_in']} with lead {pool.lead_periods}, "
                            "never usable inside the horizon")
            continue
        if row.get("first_period") != periods[first]:
            problems.append(f"commitments[{i}]: first_period {row.get('first_period')} != {periods[first]} "
                            f"(bought in {row['bought_in']}, lead {pool.lead_periods})")
        last = first + pool.term_periods - 1
        if last < len(periods) and "last_period" in row and row["last_period"] != periods[last]:
            problems.append(f"commitments[{i}]: last_period {row['last_period']} != {periods[last]} "
                            f"(first {periods[first]}, term {pool.term_periods})")
        if "chips" in row and row["chips"] != blocks * pool.block_chips:
            problems.append(f"commitments[{i}]: chips {row['chips']} != {blocks} blocks x {pool.block_chips}")
        term_hours = 0.0
        for j in range(pool.term_periods):
            t = first + j
            if t < len(periods):
                active[(pool.id, periods[t])] += blocks
            term_hours += hours[periods[min(t, len(periods) - 1)]]
        paid[i] = blocks * pool.block_chips * pool.price * term_hours
        chip_hours.append((pool.id, blocks * pool.block_chips * term_hours))
        if "cost" in row and not _close(float(row["cost"]), paid[i], 1e-7):
            problems.append(f"commitments[{i}]: cost {row['cost']} != {paid[i]} (blocks x chips x price x "
                            "the hours of its whole term)")
    return active, paid, chip_hours, problems


def _fleet_and_churn(scenario, plan, periods, placed, blocks_active) -> tuple[float, list[str]]:
    """The fleet of a period holds every slice's replicas (on rented chips it is its largest slice: they are
    paid only while they run); chips moved per period within max_churn_chips.

    Plans without fleet rows (from before fleets) have the largest slice as their fleet.
    """
    problems: list[str] = []
    fleet: dict[tuple, int] = defaultdict(int)
    rows = plan.get("fleet")
    if rows is None:
        for (model, accel, chips, pool, period, _), count in placed.items():
            key = (model, accel, chips, pool, period)
            fleet[key] = max(fleet[key], count)
    else:
        for row in rows:
            fleet[(row["model"], row["accelerator"], int(row["chips_per_replica"]), row["pool"], row["period"])] += \
                int(row["replicas"])
    for (model, accel, chips, pool, period, slice_), count in placed.items():
        if count > fleet.get((model, accel, chips, pool, period), 0):
            problems.append(f"fleet of {model}/{accel} x{chips} in {pool}, {period}: "
                            f"{fleet.get((model, accel, chips, pool, period), 0)} < {count} replicas running in "
                            f"slice {slice_}")
    pools = {p.id: p for p in scenario.pools}
    largest: dict[tuple, int] = defaultdict(int)
    for (model, accel, chips, pool, period, _), count in placed.items():
        largest[(model, accel, chips, pool, period)] = max(largest[(model, accel, chips, pool, period)], count)
    for key, count in fleet.items():
        pool = pools.get(key[3])
        # a rented replica is paid only while it runs: a fleet above its largest slice would be held unpaid
        if pool is not None and pool.kind in ("on_demand", "spot") and pool.price > 0 and count > largest[key]:
            problems.append(f"fleet of {key[0]}/{key[1]} x{key[2]} in {key[3]}, {key[4]}: {count} > {largest[key]} "
                            f"replicas running in its largest slice ({pool.kind} chips are paid only while they run)")
    # With churn limited or priced the fleet is what stays deployed, so a pool's whole fleet fits its cap and,
    # on reserved chips, its contracts. Otherwise it only reports each deployment's largest slice (different
    # deployments may peak in different slices), and each deployment's fits the cap.
    tracked = scenario.options.max_churn_chips is not None or scenario.options.churn_cost_per_chip > 0
    held: dict[tuple[str, str], int] = defaultdict(int)
    for (model, accel, chips, pool, period), count in fleet.items():
        key = (pool, period) if tracked else (pool, period, model, accel, chips)
        held[key] = held[key] + count * chips
    running: dict[tuple[str, str, str], int] = defaultdict(int)
    for (model, accel, chips, pool, period, slice_), count in placed.items():
        running[(pool, period, slice_)] += count * chips
    busiest: dict[tuple[str, str], int] = defaultdict(int)     # chips of each pool's busiest slice, per period
    for (pool, period, _), chips in running.items():
        busiest[(pool, period)] = max(busiest[(pool, period)], chips)
    for (pool, period, *_), chips in sorted(held.items()):
        if pool in pools and chips > pools[pool].cap(period):
            problems.append(f"fleet in {pool}, {period}: {chips} chips > max_chips {pools[pool].cap(period)}")
        # beyond its busiest slice (that slice's own rule covers the rest): held chips need contracts too
        if tracked and pool in pools and pools[pool].kind == "reserved" and chips > busiest[(pool, period)] and \
                chips > blocks_active.get((pool, period), 0) * pools[pool].block_chips:
            problems.append(f"fleet in {pool}, {period}: {chips} chips > "
                            f"{blocks_active.get((pool, period), 0) * pools[pool].block_chips} under active contracts "
                            "(a replica held on reserved chips needs them under contract)")
    before: dict[tuple, int] = defaultdict(int)
    for row in scenario.fleet or []:
        before[(row.model, row.accelerator, row.chips_per_replica, row.pool)] += row.replicas
    limit = scenario.options.max_churn_chips
    total_cost = 0.0
    for t, period in enumerate(periods):
        now: dict[tuple, int] = defaultdict(int)
        for (model, accel, chips, pool, p), count in fleet.items():
            if p == period:
                now[(model, accel, chips, pool)] += count
        moved = sum(abs(now.get(k, 0) - before.get(k, 0)) * k[2] for k in set(now) | set(before))
        if t == 0 and scenario.fleet is None:
            moved = 0
        cap = None if limit is None else (limit[period] if isinstance(limit, dict) else limit)
        if cap is not None and moved > cap:
            problems.append(f"{period}: {moved} chips moved > max_churn_chips {cap}")
        total_cost += moved * scenario.options.churn_cost_per_chip
        before = now
    return total_cost, problems


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

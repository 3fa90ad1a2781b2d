"""The independent checker, rule by rule: solve a small plan, break one promise, and the checker names
exactly that promise (and nothing else).

The plan (hand-checked in `test_the_plan_is_what_the_tampers_assume`):

    replicas  distilled a x1 in a-res: 1      frontier a x1 in a-pre: 2 (prepaid, full)
              plain b x2 in b-spot: 1 (2.5/chip-h), in b-od: 1 (3/chip-h)
    routing   0 premium  -> frontier (R 1, 60 tok/s, 0.5 s)   load 1
              1 mixed/0  -> frontier (R 3, the batch row)       load 1/3
              2 mixed/1  -> distilled (R 2)                     load 1/2
              3 bulk     -> distilled (R 4)                     load 1/2
              4 side     -> plain on b (R 4)                    load 6/4 of 2 replicas
              5 long     -> frontier (R 0.5)                    load 1/2
    cost      a-res one block of 4 (6.0) + spot 2 chips (5.0) + on-demand 2 chips (6.0) = 17.0; b-idle unused

Spare room the tampers use without breaking anything else: a-res holds 3 more chips at no cost
(committed, unused), frontier has 1/6 of a replica spare, plain 1/2.
"""

from __future__ import annotations

import copy

import pytest

from placement.api import solve_scenario
from placement.checker import check_plan
from placement.profiles import profile_table
from placement.scenario import load_scenario
from tests.helpers import write_scenario

SPEC = {
    "accelerators": ["a", "b"],
    "models": [{"id": "frontier", "quality": {"q": 80}, "max_context_tokens": 200000},
               {"id": "distilled", "quality": {"q": 60}, "max_context_tokens": 32000},
               {"id": "plain"}],
    "workloads": [
        {"id": "premium", "requests_per_s": 1, "buckets": [(1000, 100, 1.0)],
         "quality": {"metric": "q", "min": 70}, "slo": {"min_output_tokens_per_s": 50, "max_ttft_s": 1}},
        {"id": "mixed", "requests_per_s": 2, "buckets": [(1000, 100, 0.5), (8000, 100, 0.5)],
         "quality": {"metric": "q", "min_mean": 70}, "allowed_models": ["frontier", "distilled"]},
        {"id": "bulk", "requests_per_s": 2, "buckets": [(1000, 100, 1.0)], "must_serve": False,
         "unserved_cost_per_request": 0.01, "allowed_models": ["distilled", "frontier"]},
        {"id": "side", "requests_per_s": 6, "buckets": [(1000, 100, 1.0)], "allowed_models": ["plain"]},
        {"id": "long", "requests_per_s": 0.25, "buckets": [(40000, 100, 1.0)], "slo": {"max_e2e_s": 5}},
    ],
    "pools": [{"id": "b-spot", "accelerator": "b", "kind": "spot", "max_chips": 2, "price_per_chip_hour": 2.5},
              {"id": "b-od", "accelerator": "b", "kind": "on_demand", "max_chips": 8, "price_per_chip_hour": 3.0},
              {"id": "a-pre", "accelerator": "a", "kind": "prepaid", "max_chips": 2},
              {"id": "a-res", "accelerator": "a", "kind": "reserved", "max_chips": 8, "block_chips": 4,
               "price_per_chip_hour": 1.5},
              {"id": "b-idle", "accelerator": "b", "kind": "on_demand", "max_chips": 4, "price_per_chip_hour": 100.0}],
    "profiles": [("frontier", "a", 1, 1000, 100, 0.8, 60, 1.5),  # fewer req/s and too slow to first token
                 ("frontier", "a", 1, 1000, 100, 1, 60, 0.5), ("frontier", "a", 1, 1000, 100, 3, 30, 0.9),
                 ("frontier", "a", 1, 8000, 100, 0.5, 55, 1.0), ("frontier", "a", 1, 40000, 100, 0.5, 55, 2.0),
                 ("distilled", "a", 1, 1000, 50, 2, 200, 0.1),  # covers the input, not the output: never used
                 ("distilled", "a", 1, 1000, 100, 4, 200, 0.1), ("distilled", "a", 1, 8000, 100, 2, 180, 0.2),
                 ("distilled", "a", 1, 40000, 100, 1, 100, 0.5),  # covers, but the model accepts 32k
                 ("plain", "b", 2, 1000, 100, 4, 100, 0.2)],
    "max_shapes": 1,
}

PREMIUM, MIXED_SHORT, MIXED_LONG, BULK, SIDE, LONG = range(6)
DISTILLED_RES, FRONTIER_PRE, PLAIN_SPOT, PLAIN_OD = range(4)
SHED_BULK, SHED_SIDE = 3, 4  # unserved rows: one per bucket, in scenario order


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    path = write_scenario(tmp_path_factory.mktemp("tamper"), SPEC)
    result = solve_scenario(path, baselines=False, explain=False)
    loaded = load_scenario(path)
    plan = result.plan
    # Frontier 1 in a-pre + 1 in a-res with distilled in a-pre costs the same 17: a tie the solver may break
    # either way. The tampers index the documented layout, so it is written here (the checker accepts it).
    assert plan["cost"]["per_hour"] == 17.0 and len(plan["replicas"]) in (4, 5)
    where = {"model": "x", "accelerator": "a", "chips_per_replica": 1, "period": "p1", "slice": "all"}
    plan["replicas"] = [
        {**where, "model": "distilled", "pool": "a-res", "replicas": 1, "chips": 1},
        {**where, "model": "frontier", "pool": "a-pre", "replicas": 2, "chips": 2},
        {**where, "model": "plain", "accelerator": "b", "chips_per_replica": 2, "pool": "b-spot", "replicas": 1,
         "chips": 2},
        {**where, "model": "plain", "accelerator": "b", "chips_per_replica": 2, "pool": "b-od", "replicas": 1,
         "chips": 2}]
    fleet_follows_replicas(plan)
    return loaded, plan, profile_table(loaded)


def fleet_follows_replicas(plan):
    """Fleet rows rebuilt from the replica rows (the most of any slice): a tamper of the replicas then breaks
    only the rule under test, not the fleet rule as well."""
    fleet: dict[tuple, int] = {}
    for r in plan.get("replicas", []):
        key = (r["model"], r["accelerator"], r["chips_per_replica"], r["pool"], r.get("period", "p1"))
        fleet[key] = max(fleet.get(key, 0), r["replicas"])
    plan["fleet"] = [{"model": m, "accelerator": a, "chips_per_replica": c, "pool": pool, "period": t,
                      "replicas": n} for (m, a, c, pool, t), n in fleet.items()]


def billed_follows_rows(loaded, plan):
    """cost.by_pool's billed chip-hours and totals rebuilt from the replica and commitment rows, so a tamper
    of those rows breaks only the rule under test."""
    pools = {p.id: p for p in loaded.scenario.pools}
    periods = [p["id"] for p in plan["periods"]]
    hours = {p["id"]: p["hours"] for p in plan["periods"]}
    weight = {s["id"]: s.get("weight", 1.0) for s in plan.get("slices") or [{"id": "all"}]}
    billed = dict.fromkeys(pools, 0.0)
    for r in plan.get("replicas", []):
        if pools.get(r["pool"]) is not None and pools[r["pool"]].kind in ("on_demand", "spot"):
            billed[r["pool"]] += r["replicas"] * r["chips_per_replica"] * hours.get(r.get("period", periods[0]), 0.0) \
                * weight.get(r.get("slice", "all"), 0.0)
    if "commitments" not in plan:  # a plan from before contracts over time: committed chips per pool and period
        for row in plan.get("pools", []):
            if pools.get(row["pool"]) is not None and pools[row["pool"]].kind == "reserved":
                billed[row["pool"]] += row.get("chips_committed", 0) * hours[row.get("period", periods[0])]
    for c in plan.get("commitments") or []:
        pool = pools.get(c.get("pool"))
        if pool is not None and c.get("bought_in") in periods and isinstance(c.get("blocks"), int) \
                and c["blocks"] >= 0 and pool.kind == "reserved":
            first = periods.index(c["bought_in"]) + pool.lead_periods
            term = sum(hours[periods[min(first + j, len(periods) - 1)]] for j in range(pool.term_periods))
            billed[pool.id] += c["blocks"] * pool.block_chips * term
    for row in plan["cost"].get("by_pool", []):
        row["billed_chip_hours"] = billed.get(row["pool"], 0.0)
        if "total" in row:  # and the pool's bill, which is its chip-hours at its price
            row["total"] = row["billed_chip_hours"] * pools[row["pool"]].price


def violations(solved, edit, fleet_follows=True, billed_follows=True) -> list[str]:
    """Violations of the plan after `edit`; the fleet rows and the billed chip-hours follow the edited rows
    unless the test tampers with them itself (fleet_follows=False, billed_follows=False)."""
    loaded, plan, table = solved
    tampered = copy.deepcopy(plan)
    edit(tampered)
    if fleet_follows and "fleet" in tampered:
        fleet_follows_replicas(tampered)
    if billed_follows and isinstance(tampered.get("cost"), dict) and "by_pool" in tampered["cost"]:
        billed_follows_rows(loaded, tampered)
    return check_plan(loaded, tampered, table)


def spare_distilled_replica(plan):
    """One more distilled replica in a-res: inside the committed block, so it costs nothing."""
    plan["replicas"][DISTILLED_RES].update(replicas=2, chips=2)


def test_the_plan_is_what_the_tampers_assume(solved):
    loaded, plan, table = solved
    assert plan["status"] == "optimal"
    assert check_plan(loaded, plan, table) == []
    assert [(r["model"], r["pool"], r["replicas"]) for r in plan["replicas"]] == [
        ("distilled", "a-res", 1), ("frontier", "a-pre", 2), ("plain", "b-spot", 1), ("plain", "b-od", 1)]
    assert [(r["workload"], r["bucket"], r["model"], r["share"], r["replica_requests_per_s"]) for r in plan["routing"]] == [
        ("premium", 0, "frontier", 1.0, 1.0), ("mixed", 0, "frontier", 1.0, 3.0), ("mixed", 1, "distilled", 1.0, 2.0),
        ("bulk", 0, "distilled", 1.0, 4.0), ("side", 0, "plain", 1.0, 4.0), ("long", 0, "frontier", 1.0, 0.5)]
    assert plan["cost"]["per_hour"] == 17.0 and plan["objective"]["value"] == 17.0
    assert {p["pool"]: p["chips_committed"] for p in plan["pools"]} == {
        "b-spot": 2, "b-od": 2, "a-pre": 2, "a-res": 4, "b-idle": 0}


def test_plans_without_rows_are_not_checked(solved):
    assert violations(solved, lambda p: p.update(status="infeasible", cost=None)) == []
    assert violations(solved, lambda p: p.update(status="no_solution", cost=None)) == []
    assert violations(solved, lambda p: p.update(status="feasible", cost={"per_hour": 1.0, "total": 1700.0})) == [
        "cost per hour 1.0 != 17.0 recomputed from the rows"]


# ---- routing rows ----

def _first_row(**fields):
    """An extra routing row put first: the rows after a skipped one must still be checked."""
    return lambda p: p["routing"].insert(0, {**p["routing"][BULK], **fields})


def test_unknown_workload_or_bucket(solved):
    assert violations(solved, _first_row(workload="nope")) == [
        "routing[0] (nope bucket 0 on distilled/a): unknown workload or bucket"]
    assert violations(solved, _first_row(bucket=1)) == [
        "routing[0] (bulk bucket 1 on distilled/a): unknown workload or bucket"]
    assert violations(solved, _first_row(bucket=-1)) == [
        "routing[0] (bulk bucket -1 on distilled/a): unknown workload or bucket"]


def test_unknown_model(solved):
    assert violations(solved, _first_row(model="nope")) == ["routing[0] (bulk bucket 0 on nope/a): unknown model"]


def test_a_zero_share_row_is_legal(solved):
    assert violations(solved, _first_row(share=0.0, requests_per_s=0.0)) == []


def test_share_outside_zero_one(solved):
    def split(p):  # 1.5 + (-0.5): coverage and loads still add up
        row = p["routing"][SIDE]
        row.update(share=1.5, requests_per_s=9.0)
        p["routing"].append({**row, "share": -0.5, "requests_per_s": -3.0})
    assert violations(solved, split) == [
        "routing[4] (side bucket 0 on plain/b): share 1.5 outside [0, 1]",
        "routing[6] (side bucket 0 on plain/b): share -0.5 outside [0, 1]"]


def test_lengths_must_match_the_bucket(solved):
    for field, value in (("input_tokens", 2000), ("output_tokens", 99)):
        assert violations(solved, lambda p: p["routing"][BULK].update({field: value})) == [
            "routing[3] (bulk bucket 0 on distilled/a): lengths do not match the bucket"]


def test_requests_per_s_is_rate_times_share(solved):
    assert violations(solved, lambda p: p["routing"][SIDE].update(requests_per_s=5.9)) == [
        "routing[4] (side bucket 0 on plain/b): requests_per_s 5.9 != rate 6.0 x share 1.0"]


def test_allowed_models(solved):
    def to_plain(p):  # bulk on plain's spare half replica
        p["routing"][BULK].update(model="plain", accelerator="b", chips_per_replica=2)
    assert violations(solved, to_plain) == ["routing[3] (bulk bucket 0 on plain/b): model not in allowed_models"]


def test_context_beyond_the_model(solved):
    def to_distilled(p):
        p["routing"][LONG].update(model="distilled")
        spare_distilled_replica(p)
    assert violations(solved, to_distilled) == [
        "routing[5] (long bucket 0 on distilled/a): context exceeds the model's max_context_tokens"]


def test_quality_min_per_request(solved):
    def to_distilled(p):
        p["routing"][PREMIUM].update(model="distilled", replica_requests_per_s=4.0)
        spare_distilled_replica(p)
    assert violations(solved, to_distilled) == ["routing[0] (premium bucket 0 on distilled/a): q 60.0 below min 70.0"]


def test_model_without_a_score_on_the_floor_metric(solved):
    def to_plain(p):
        p["routing"][PREMIUM].update(model="plain", accelerator="b", chips_per_replica=2, replica_requests_per_s=4.0)
    assert violations(solved, to_plain) == ["routing[0] (premium bucket 0 on plain/b): model has no q score"]


def test_quality_min_mean(solved):
    def short_bucket_to_distilled(p):  # mean 60 < 70
        p["routing"][MIXED_SHORT].update(model="distilled", replica_requests_per_s=4.0)
        spare_distilled_replica(p)
    assert violations(solved, short_bucket_to_distilled) == ["mixed in p1: mean q 60 below min_mean 70.0"]

    def half_of_it(p):  # half the short bucket on distilled: 0.25 x 80 + 0.75 x 60 = 65
        short = p["routing"][MIXED_SHORT]
        short.update(share=0.5, requests_per_s=0.5)
        p["routing"].append({**short, "model": "distilled", "replica_requests_per_s": 4.0})
        spare_distilled_replica(p)
    assert violations(solved, half_of_it) == ["mixed in p1: mean q 65 below min_mean 70.0"]


def test_quality_min_mean_is_over_the_served_traffic(solved):
    def a_sliver_below(p):  # 5% of the short bucket on distilled: 70 - 0.5 = 69.5
        short = p["routing"][MIXED_SHORT]
        short.update(share=0.95, requests_per_s=0.95)
        p["routing"].append({**short, "share": 0.05, "requests_per_s": 0.05, "model": "distilled",
                             "replica_requests_per_s": 4.0})
        spare_distilled_replica(p)
    assert violations(solved, a_sliver_below) == ["mixed in p1: mean q 69.5 below min_mean 70.0"]

    def half_of_the_long_bucket_missing(p):  # mean of what is served: (40 + 15) / 0.75 = 73.3 >= 70
        p["routing"][MIXED_LONG].update(share=0.5, requests_per_s=0.5)
    assert violations(solved, half_of_the_long_bucket_missing) == ["mixed bucket 1: served 0.5 + shed 0 != 1"]


def test_slo_the_claimed_throughput_must_meet_it(solved):
    # premium asks 50 tok/s per user: frontier's batch row (3 req/s) runs at 30, so 1 req/s is the most
    assert violations(solved, lambda p: p["routing"][PREMIUM].update(replica_requests_per_s=3.0)) == [
        "routing[0] (premium bucket 0 on frontier/a): replica_requests_per_s 3.0 exceeds the best SLO-meeting row 1.0"]
    assert violations(solved, lambda p: p["routing"][PREMIUM].update(replica_requests_per_s=1.5)) == [
        "routing[0] (premium bucket 0 on frontier/a): replica_requests_per_s 1.5 exceeds the best SLO-meeting row 1.0"]
    # the mixed workload asks no speed: the batch row is fine there
    assert violations(solved, lambda p: p["routing"][MIXED_SHORT].update(replica_requests_per_s=3.0)) == []


@pytest.mark.parametrize("field,value,slo", [
    ("output_tokens_per_s_per_user", 30.0, "per-user speed 30.0 tok/s, TTFT 0.5 s"),
    ("ttft_s", 1.5, "per-user speed 60.0 tok/s, TTFT 1.5 s"),
])
def test_slo_the_reported_speed_and_ttft_must_meet_it(solved, field, value, slo):
    assert violations(solved, lambda p: p["routing"][PREMIUM].update({field: value})) == [
        f"routing[0] (premium bucket 0 on frontier/a): reported {slo} miss the SLO"]


@pytest.mark.parametrize("field,value", [("output_tokens_per_s_per_user", 50.0), ("ttft_s", 1.0)])
def test_slo_met_exactly_is_met(solved, field, value):
    assert violations(solved, lambda p: p["routing"][PREMIUM].update({field: value})) == []


@pytest.mark.parametrize("ttft,speed,ok", [
    (3.0, 50.0, True),      # 3 + 100 / 50 = 5 s: exactly the 5 s asked
    (None, 21.0, True),     # no TTFT reported: decode alone, 4.76 s
    (None, 19.0, False),    # 5.26 s
    (4.5, None, True),      # no speed reported: the TTFT alone, 4.5 s
    (5.5, None, False),
])
def test_slo_end_to_end_with_parts_missing(solved, ttft, speed, ok):
    found = violations(solved, lambda p: p["routing"][LONG].update(ttft_s=ttft, output_tokens_per_s_per_user=speed))
    assert found == ([] if ok else [f"routing[5] (long bucket 0 on frontier/a): reported per-user speed {speed} "
                                    f"tok/s, TTFT {ttft} s miss the SLO"])


def test_slo_end_to_end(solved):
    # long asks e2e <= 5 s: 2.0 + 100 / 55 = 3.8 s; reporting 25 tok/s makes it 6 s
    assert violations(solved, lambda p: p["routing"][LONG].update(output_tokens_per_s_per_user=25.0)) == [
        "routing[5] (long bucket 0 on frontier/a): reported per-user speed 25.0 tok/s, TTFT 2.0 s miss the SLO"]
    assert violations(solved, lambda p: p["routing"][LONG].update(ttft_s=3.2)) == [
        "routing[5] (long bucket 0 on frontier/a): reported per-user speed 55.0 tok/s, TTFT 3.2 s miss the SLO"]
    assert violations(solved, lambda p: p["routing"][LONG].update(ttft_s=3.1)) == []  # 3.1 + 1.82 = 4.92 s


def test_no_operating_point_covers_the_bucket(solved):
    def frontier_on_b(p):  # no frontier row on b at all; give it a replica so only the coverage is wrong
        p["routing"][LONG].update(accelerator="b")
        p["replicas"].append({"model": "frontier", "accelerator": "b", "chips_per_replica": 1, "pool": "b-od",
                              "replicas": 1, "chips": 1})
        p["replicas"][-1].update(period="p1", slice="all")
        p["cost"]["per_hour"] += 3.0
        p["cost"]["total"] += 300.0
        p["objective"]["value"] += 3.0
    assert violations(solved, frontier_on_b) == [
        "routing[5] (long bucket 0 on frontier/b): no profile row covers this bucket under the SLO"]


def test_non_positive_replica_throughput(solved):
    for value in (0.0, -1.0):
        assert violations(solved, lambda p: p["routing"][BULK].update(replica_requests_per_s=value)) == [
            "routing[3] (bulk bucket 0 on distilled/a): non-positive replica throughput"]


# ---- coverage and shedding ----

def test_coverage_served_plus_shed_is_one(solved):
    assert violations(solved, lambda p: p["routing"][SIDE].update(share=0.6, requests_per_s=3.6)) == [
        "side bucket 0: served 0.6 + shed 0 != 1"]

    def shed_too_much(p):
        p["unserved"][SHED_BULK].update(share=0.5, requests_per_s=1.0)  # bulk may shed, but not on top of serving all
        p["objective"]["value"] += 36.0
        p["cost"]["total"] += 3600.0
    assert violations(solved, shed_too_much) == ["bulk bucket 0: served 1 + shed 0.5 != 1"]


def test_coverage_of_small_rates(solved):
    # long has 0.25 req/s: a rate below 1 is checked like any other
    assert violations(solved, lambda p: p["routing"][LONG].update(share=0.5, requests_per_s=0.125)) == [
        "long bucket 0: served 0.5 + shed 0 != 1"]


def test_a_bucket_shed_whole_has_no_routing_row(solved):
    def shed_bulk(p):
        del p["routing"][BULK]
        p["unserved"][SHED_BULK].update(share=1.0, requests_per_s=2.0)
        p["objective"]["value"] = 17.0 + 2 * 3600 * 0.01
        p["cost"]["total"] = 100 * p["objective"]["value"]  # the horizon: 100 hours
    assert violations(solved, shed_bulk) == []


def test_missing_sections_and_rows_read_as_nothing(solved):
    def without(*keys):
        return lambda p: [p.pop(key) for key in keys]
    assert violations(solved, without("unserved", "pools")) == []
    del_shed_row = lambda p: p["unserved"].pop(SHED_SIDE)  # noqa: E731
    assert violations(solved, del_shed_row) == []
    assert violations(solved, without("routing")) == [
        f"{w} bucket {b}: served 0 + shed 0 != 1"
        for w, b in (("premium", 0), ("mixed", 0), ("mixed", 1), ("bulk", 0), ("side", 0), ("long", 0))]
    assert violations(solved, without("replicas", "unserved")) == [
        "deployment ('distilled', 'a', 1, 'p1', 'all'): load 1 replicas exceeds 0 replicas",
        "deployment ('frontier', 'a', 1, 'p1', 'all'): load 1.83333333 replicas exceeds 0 replicas",
        "deployment ('plain', 'b', 2, 'p1', 'all'): load 1.5 replicas exceeds 0 replicas",
        # the a-res block is still committed (and the fleet rows, rebuilt from no replicas, are empty)
        "cost.total 1700.0 != 600.0 recomputed from the rows (pools 600.0, churn 0.0, shedding 0.0)",
        "cost per hour 17.0 != 6.0 recomputed from the rows",
        "objective 17.0 != 6.0 (horizon total over its hours)"]


def test_must_serve_traffic_is_never_shed(solved):
    def shed_side(p):
        p["routing"][SIDE].update(share=0.6, requests_per_s=3.6)
        p["unserved"][SHED_SIDE].update(share=0.4, requests_per_s=2.4)
    assert violations(solved, shed_side) == ["side bucket 0: shed 0.4 but must_serve is true"]

    def shed_premium(p):  # 1 req/s: a small rate is no excuse
        p["routing"][PREMIUM].update(share=0.5, requests_per_s=0.5)
        p["unserved"][0].update(share=0.5, requests_per_s=0.5)
    assert violations(solved, shed_premium) == ["premium bucket 0: shed 0.5 but must_serve is true"]


def test_shedding_is_priced_in_the_objective(solved):
    def shed_half_of_bulk(p):
        p["routing"][BULK].update(share=0.5, requests_per_s=1.0)
        p["unserved"][SHED_BULK].update(share=0.5, requests_per_s=1.0)
    # 1 req/s x 3600 s x 0.01 = 36 per hour, 3600 over the 100 hours (cost per hour is the pools' alone)
    assert violations(solved, shed_half_of_bulk) == [
        "cost.total 1700.0 != 5300.0 recomputed from the rows (pools 1700.0, churn 0.0, shedding 3600.0)",
        "objective 17.0 != 53.0 (horizon total over its hours)"]

    def priced(p):
        shed_half_of_bulk(p)
        p["objective"]["value"] = 53.0
        p["cost"]["total"] = 5300.0
    assert violations(solved, priced) == []


# ---- replicas ----

def test_capacity_load_within_replicas(solved):
    assert violations(solved, lambda p: p["replicas"][FRONTIER_PRE].update(replicas=1, chips=1)) == [
        "deployment ('frontier', 'a', 1, 'p1', 'all'): load 1.83333333 replicas exceeds 1 replicas"]


def test_capacity_counts_headroom(solved, tmp_path):
    # with 20% kept free: frontier 1.83 / 0.8 = 2.29 > 2, distilled 1 / 0.8 = 1.25 > 1; plain 1.5 / 0.8 = 1.875 fits
    loaded, plan, table = solved
    roomy = load_scenario(write_scenario(tmp_path, {**SPEC, "headroom": 0.2}))
    assert check_plan(roomy, {**plan, "scenario": plan["scenario"]}, table) == [
        "deployment ('distilled', 'a', 1, 'p1', 'all'): load 1.25 replicas exceeds 1 replicas",
        "deployment ('frontier', 'a', 1, 'p1', 'all'): load 2.29166667 replicas exceeds 2 replicas"]


def test_a_deployment_with_load_and_no_replica_row(solved):
    assert violations(solved, lambda p: p["replicas"].pop(DISTILLED_RES)) == [
        "deployment ('distilled', 'a', 1, 'p1', 'all'): load 1 replicas exceeds 0 replicas"]


@pytest.mark.parametrize("excess,ok", [(5e-7, True), (1.5e-6, False)])
def test_capacity_tolerance_is_one_in_a_million(solved, excess, ok):
    # distilled is loaded exactly 1.0 on 1 replica; claiming a little less throughput loads it a little more
    def squeeze(p):
        for index in (MIXED_LONG, BULK):
            p["routing"][index]["replica_requests_per_s"] /= 1 + excess
    found = violations(solved, squeeze)
    assert found == [] if ok else found == [
        f"deployment ('distilled', 'a', 1, 'p1', 'all'): load {1 + excess:.9g} replicas exceeds 1 replicas"]


@pytest.mark.parametrize("off,ok", [(5e-8, True), (5e-7, False)])
def test_cost_tolerance_is_one_in_ten_million(solved, off, ok):
    found = violations(solved, lambda p: p["cost"].update(per_hour=17.0 * (1 + off)))
    assert (found == []) is ok
    found = violations(solved, lambda p: p["objective"].update(value=17.0 * (1 + off)))
    assert (found == []) is ok


@pytest.mark.parametrize("off,ok", [(5e-7, True), (1.5e-6, False)])
def test_rates_agree_within_one_in_a_million_even_when_small(solved, off, ok):
    # long: 0.25 req/s; the tolerance is absolute below 1 (1e-6), relative above
    assert (violations(solved, lambda p: p["routing"][LONG].update(requests_per_s=0.25 + off)) == []) is ok
    assert (violations(solved, lambda p: p["routing"][SIDE].update(requests_per_s=6 * (1 + off))) == []) is ok


def test_pool_cap(solved):
    assert violations(solved, lambda p: p["replicas"][FRONTIER_PRE].update(replicas=3, chips=3)) == [
        "pool a-pre in p1/all: 3 chips used > 2 obtainable (max_chips 2)",
        "fleet in a-pre, p1: 3 chips > max_chips 2"]  # the fleet holds the 3 replicas, so it is over the cap too


def test_reserved_commitment_is_whole_blocks_covering_the_use(solved):
    def blocks(n, paid=None):  # n blocks of 4 chips bought in p1, usable in p1; costs reported for `paid` blocks
        paid = n if paid is None else paid

        def edit(p):
            p["commitments"][0].update(blocks=n, chips=4 * n, cost=600.0 * paid)
            p["cost"].update(total=1100.0 + 600.0 * paid, per_hour=11.0 + 6.0 * paid)
            p["objective"]["value"] = 11.0 + 6.0 * paid
        return edit
    assert violations(solved, blocks(0)) == ["pool a-res in p1/all: 1 chips used > 0 under active contracts"]
    assert violations(solved, blocks(0.5, paid=0)) == [
        "commitments[0]: blocks must be a whole number >= 0",
        "pool a-res in p1/all: 1 chips used > 0 under active contracts"]  # the half block is no block at all
    assert violations(solved, blocks(-1, paid=0)) == [
        "commitments[0]: blocks must be a whole number >= 0",
        "pool a-res in p1/all: 1 chips used > 0 under active contracts"]
    # a second block is legal but paid for: the reported cost must include it
    assert violations(solved, blocks(2)) == []
    assert violations(solved, blocks(2, paid=1)) == [
        "commitments[0]: cost 600.0 != 1200.0 (blocks x chips x price x the hours of its whole term)",
        "cost.total 1700.0 != 2300.0 recomputed from the rows (pools 2300.0, churn 0.0, shedding 0.0)",
        "cost per hour 17.0 != 23.0 recomputed from the rows",
        "objective 17.0 != 23.0 (horizon total over its hours)"]
    # three blocks of 4 hold 12 chips: more than a-res's 8
    assert violations(solved, blocks(3)) == ["pool a-res in p1: 3 active blocks x 4 chips > max_chips 8"]


def test_replica_rows_chips_and_whole_numbers(solved):
    assert violations(solved, lambda p: p["replicas"][PLAIN_OD].update(chips=3)) == [
        "replicas[3]: chips 3 != replicas x chips_per_replica"]
    assert violations(solved, lambda p: p["replicas"][FRONTIER_PRE].update(replicas=2.5, chips=2.5)) == [
        "replicas[1]: replicas must be a whole number >= 0"]
    negative = {"model": "frontier", "accelerator": "a", "chips_per_replica": 1, "pool": "a-res", "replicas": -1,
                "chips": -1}
    assert violations(solved, lambda p: p["replicas"].append(negative)) == [
        "replicas[4]: replicas must be a whole number >= 0",
        "deployment ('frontier', 'a', 1, 'p1', 'all'): load 1.83333333 replicas exceeds 1 replicas"]


def test_replica_rows_name_a_pool_of_their_accelerator(solved):
    spare = {"model": "plain", "accelerator": "b", "chips_per_replica": 2, "replicas": 1, "chips": 2}
    assert violations(solved, lambda p: p["replicas"].insert(0, {**spare, "pool": "nope"})) == [
        "replicas[0]: unknown pool 'nope'"]
    assert violations(solved, lambda p: p["replicas"].append({**spare, "pool": "a-res"})) == [
        "replicas[4]: b replica in pool a-res of a"]


def test_replica_sizes_per_model_and_accelerator(solved):
    two_chip = {"model": "frontier", "accelerator": "a", "chips_per_replica": 2, "pool": "a-res", "replicas": 1,
                "chips": 2}
    assert violations(solved, lambda p: p["replicas"].append(two_chip)) == [
        "frontier on a: 2 replica sizes [1, 2] > max_shapes_per_model_accelerator 1"]
    assert violations(solved, lambda p: p["replicas"].append({**two_chip, "replicas": 0, "chips": 0})) == []


# ---- cost and objective ----

@pytest.mark.parametrize("pool,chips,cost", [
    ("b-od", 4, 23.0),     # on demand: every chip used, 3.0 each
    ("b-spot", 4, 22.0),   # spot: 2.5 each (the cap is broken too)
    ("a-pre", 4, 17.0),    # prepaid: free at the margin (the cap is broken too)
])
def test_cost_is_recomputed_from_the_rows(solved, pool, chips, cost):
    index = {"b-od": PLAIN_OD, "b-spot": PLAIN_SPOT, "a-pre": FRONTIER_PRE}[pool]
    per_replica = 2 if pool != "a-pre" else 1
    found = violations(solved, lambda p: p["replicas"][index].update(replicas=chips // per_replica, chips=chips))
    cost_lines = [v for v in found if v.startswith(("cost", "objective"))]
    if cost == 17.0:
        assert cost_lines == []
    else:
        assert cost_lines == [
            f"cost.total 1700.0 != {100 * cost} recomputed from the rows (pools {100 * cost}, churn 0.0, shedding 0.0)",
            f"cost per hour 17.0 != {cost} recomputed from the rows",
            f"objective 17.0 != {cost} (horizon total over its hours)"]


def test_reported_cost_and_objective(solved):
    assert violations(solved, lambda p: p["cost"].update(per_hour=16.0)) == [
        "cost per hour 16.0 != 17.0 recomputed from the rows"]
    assert violations(solved, lambda p: p["cost"].update(per_hour=None)) == [
        "cost per hour None != 17.0 recomputed from the rows"]
    assert violations(solved, lambda p: p["cost"].update(total=1600.0)) == [
        "cost.total 1600.0 != 1700.0 recomputed from the rows (pools 1700.0, churn 0.0, shedding 0.0)"]
    assert violations(solved, lambda p: p["cost"].update(total=None)) == [
        "cost.total None != 1700.0 recomputed from the rows (pools 1700.0, churn 0.0, shedding 0.0)"]
    # a plan from before horizons has no total: per_hour x the horizon's hours stands for it
    assert violations(solved, lambda p: p["cost"].pop("total")) == []
    assert violations(solved, lambda p: p.update(cost=None)) == [
        "cost.total 0.0 != 1700.0 recomputed from the rows (pools 1700.0, churn 0.0, shedding 0.0)",
        "cost per hour None != 17.0 recomputed from the rows"]
    assert violations(solved, lambda p: p["objective"].update(value=16.0)) == [
        "objective 16.0 != 17.0 (horizon total over its hours)"]
    assert violations(solved, lambda p: p.update(objective=None)) == [
        "objective None != 17.0 (horizon total over its hours)"]


# ---- a plan that sits exactly on every limit ----

EDGE = {
    "accelerators": ["a"],
    "models": [{"id": "frontier", "quality": {"q": 80}, "max_context_tokens": 200000},
               {"id": "distilled", "quality": {"q": 60}, "max_context_tokens": 32000}],
    "workloads": [
        # 31,900 + 100 = 32,000 tokens: distilled's whole context; its row meets each SLO part exactly:
        # 100 tok/s, 0.5 s TTFT, 0.5 + 100 / 100 = 1.5 s end to end; q 60 = the floor
        {"id": "exact", "requests_per_s": 1.5, "buckets": [(31900, 100, 1.0)],
         "quality": {"metric": "q", "min": 60, "min_mean": 60},
         "slo": {"min_output_tokens_per_s": 100, "max_ttft_s": 0.5, "max_e2e_s": 1.5}},
        # 32,050 tokens: too long for distilled, frontier serves it
        {"id": "over", "requests_per_s": 0.2, "buckets": [(31950, 100, 1.0)]},
        {"id": "zero", "requests_per_s": 0, "buckets": [(100000, 100, 1.0)]},  # no demand: "shed", and legal
    ],
    "pools": [{"id": "od", "accelerator": "a", "kind": "on_demand", "max_chips": 8, "price_per_chip_hour": 2.0},
              {"id": "res", "accelerator": "a", "kind": "reserved", "max_chips": 8, "block_chips": 2,
               "price_per_chip_hour": 1.5}],
    "profiles": [("distilled", "a", 1, 32000, 100, 1, 100, 0.5), ("frontier", "a", 1, 32000, 100, 0.5, 100, 0.5)],
}


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    path = write_scenario(tmp_path_factory.mktemp("edge"), EDGE)
    result = solve_scenario(path, baselines=False, explain=False)
    loaded = load_scenario(path)
    return loaded, result.plan, profile_table(loaded)


def test_a_plan_exactly_on_every_limit_keeps_every_promise(edge):
    loaded, plan, table = edge
    # distilled: 1.5 req/s on 2 replicas = one full reserved block (3.0); frontier: 0.4 of a replica on demand
    assert [(r["model"], r["pool"], r["replicas"]) for r in plan["replicas"]] == [
        ("distilled", "res", 2), ("frontier", "od", 1)]
    assert plan["cost"]["per_hour"] == 5.0
    assert plan["unserved"][-1] == {"workload": "zero", "bucket": 0, "period": "p1", "slice": "all", "share": 1.0,
                                    "requests_per_s": 0.0}
    assert check_plan(loaded, plan, table) == []


def test_context_counts_input_and_output(edge):
    def over_to_distilled(p):  # 31,950 - 100 would fit 32,000; 31,950 + 100 does not
        p["routing"][1].update(model="distilled", replica_requests_per_s=1.0)
    assert violations(edge, over_to_distilled) == [
        "routing[1] (over bucket 0 on distilled/a): context exceeds the model's max_context_tokens"]


def test_a_zero_rate_bucket_needs_no_coverage(edge):
    assert violations(edge, lambda p: p["unserved"].pop()) == []


@pytest.mark.parametrize("excess,ok", [(5e-7, True), (1.5e-6, False)])
def test_capacity_tolerance_scales_with_the_load(edge, excess, ok):
    # distilled: 1.5 req/s on 2 replicas; claim the throughput that loads them 2 x (1 + excess)
    found = violations(edge, lambda p: p["routing"][0].update(replica_requests_per_s=0.75 / (1 + excess)))
    assert found == [] if ok else found == [
        f"deployment ('distilled', 'a', 1, 'p1', 'all'): load {2 * (1 + excess):.9g} replicas exceeds 2 replicas"]


# ---- periods, slices, the fleet, churn and contracts ----
# One model m on g, 1-chip replicas serving 1 req/s each, so r req/s need r chips; periods of 100 hours.

def _over_time(pools, rate=10, extra=None, options=None, **workload):
    return {"accelerators": ["g"], "models": [{"id": "m"}],
            "workloads": [{"id": "w", "requests_per_s": rate, "buckets": [(1000, 100, 1.0)], **workload}],
            "pools": pools, "profiles": [("m", "g", 1, 1000, 100, 1.0)],
            "extra": {"periods": [{"id": "q1", "hours": 100}, {"id": "q2", "hours": 100}], **(extra or {})},
            "options": options or {}}


def _solved(tmp_path_factory, name, spec):
    path = write_scenario(tmp_path_factory.mktemp(name), spec)
    result = solve_scenario(path, baselines=False, explain=False)
    loaded = load_scenario(path)
    return loaded, result.plan, profile_table(loaded)


ON_DEMAND = {"id": "od", "accelerator": "g", "kind": "on_demand", "max_chips": 100, "price_per_chip_hour": 3.0}


@pytest.fixture(scope="module")
def sliced(tmp_path_factory):
    """Peak (20 h of each 100) needs 20 chips, base 10. Spot (1.0/h) gives half its 20 chips at the peak;
    wafers (prepaid, free) arrive in q2: 10.
    q1: base 10 spot (800), peak 10 spot + 10 on demand (200 + 600).  q2: base 10 wafer, peak 10 wafer +
    10 spot (200). Total 1800, 9 per hour. Fleet q1: spot 10, od 10; q2: wafer 10, spot 10."""
    return _solved(tmp_path_factory, "sliced", _sliced_spec())


def _sliced_spec(**options):
    spot = {"id": "spot", "accelerator": "g", "kind": "spot", "max_chips": 20, "price_per_chip_hour": 1.0,
            "availability": {"peak": 0.5}}
    wafer = {"id": "wafer", "accelerator": "g", "kind": "prepaid", "max_chips": {"q1": 0, "q2": 10}}
    return _over_time([spot, wafer, ON_DEMAND], shape={"peak": 2.0}, options=options,
                      extra={"slices": [{"id": "peak", "weight": 0.2}, {"id": "base", "weight": 0.8}]})


def _row(rows, **match):
    return next(r for r in rows if all(r[k] == v for k, v in match.items()))


def test_the_sliced_plan_is_what_the_tampers_assume(sliced):
    loaded, plan, table = sliced
    assert check_plan(loaded, plan, table) == []
    assert sorted((r["period"], r["slice"], r["pool"], r["replicas"]) for r in plan["replicas"] if r["replicas"]) == [
        ("q1", "base", "spot", 10), ("q1", "peak", "od", 10), ("q1", "peak", "spot", 10),
        ("q2", "base", "wafer", 10), ("q2", "peak", "spot", 10), ("q2", "peak", "wafer", 10)]
    assert sorted((r["period"], r["pool"], r["replicas"]) for r in plan["fleet"] if r["replicas"]) == [
        ("q1", "od", 10), ("q1", "spot", 10), ("q2", "spot", 10), ("q2", "wafer", 10)]
    assert plan["cost"]["total"] == 1800.0 and plan["objective"]["value"] == 9.0


def test_fleet_below_a_slices_replicas(sliced):
    def shrink(p):  # the on-demand fleet of q1 runs only at the peak
        _row(p["fleet"], period="q1", pool="od")["replicas"] = 9
    assert violations(sliced, shrink, fleet_follows=False) == [
        "fleet of m/g x1 in od, q1: 9 < 10 replicas running in slice peak"]
    assert violations(sliced, lambda p: p["fleet"].remove(_row(p["fleet"], period="q1", pool="od")),
                      fleet_follows=False) == ["fleet of m/g x1 in od, q1: 0 < 10 replicas running in slice peak"]
    # without fleet rows (a plan from before fleets) the largest slice is the fleet
    assert violations(sliced, lambda p: p.pop("fleet"), fleet_follows=False) == []


def test_rented_fleet_runs_in_its_largest_slice(sliced):
    def hold(p):  # an 11th on-demand replica held in q1's fleet that no slice runs (nor pays for)
        _row(p["fleet"], period="q1", pool="od")["replicas"] = 11
    assert violations(sliced, hold, fleet_follows=False) == [
        "fleet of m/g x1 in od, q1: 11 > 10 replicas running in its largest slice (on_demand chips are paid only "
        "while they run)"]


def test_fleet_beyond_the_pools_cap(sliced):
    def grow(p):  # an 11th wafer in q2 (10 delivered) that no slice runs
        _row(p["fleet"], period="q2", pool="wafer")["replicas"] = 11
    assert violations(sliced, grow, fleet_follows=False) == ["fleet in wafer, q2: 11 chips > max_chips 10"]


def test_a_single_replica_needs_its_fleet_row(solved):
    assert violations(solved, lambda p: p["fleet"].remove(_row(p["fleet"], model="distilled")),
                      fleet_follows=False) == ["fleet of distilled/a x1 in a-res, p1: 0 < 1 replicas running in slice all"]


def test_fleet_cap_counts_chips(solved):
    def second_spot_replica(p):  # 2 plain replicas of 2 chips in b-spot's 2 chips, running in no slice
        _row(p["fleet"], pool="b-spot")["replicas"] = 2
    # on spot, a fleet above its largest slice is also held unpaid
    assert violations(solved, second_spot_replica, fleet_follows=False) == [
        "fleet of plain/b x2 in b-spot, p1: 2 > 1 replicas running in its largest slice (spot chips are paid only "
        "while they run)",
        "fleet in b-spot, p1: 4 chips > max_chips 2"]


def test_spot_within_availability_in_each_slice(sliced):
    def peak_onto_spot(p):  # one peak replica of q1 from on demand to spot: 11 > 0.5 x 20; cheaper by 40
        _row(p["replicas"], period="q1", slice="peak", pool="od").update(replicas=9, chips=9)
        _row(p["replicas"], period="q1", slice="peak", pool="spot").update(replicas=11, chips=11)
        p["cost"].update(total=1760.0, per_hour=8.8)
        p["objective"]["value"] = 8.8
    assert violations(sliced, peak_onto_spot) == ["pool spot in q1/peak: 11 chips used > 10 obtainable (max_chips 20)"]

    def base_onto_spot(p):  # the same at the base is within spot's 20 chips
        _row(p["replicas"], period="q2", slice="base", pool="wafer").update(replicas=9, chips=9)
        p["replicas"].append({**_row(p["replicas"], period="q2", slice="peak", pool="spot"), "slice": "base",
                              "replicas": 11, "chips": 11})
        p["cost"].update(total=2680.0, per_hour=13.4)  # 11 spot chips x 80 h more
        p["objective"]["value"] = 13.4
    assert violations(sliced, base_onto_spot) == []


def test_chips_within_each_periods_deliveries(sliced):
    def eleventh_wafer(p):  # 10 wafers in q2: an 11th replica costs nothing but is not there
        _row(p["replicas"], period="q2", slice="base", pool="wafer").update(replicas=11, chips=11)
    assert violations(sliced, eleventh_wafer) == [
        "pool wafer in q2/base: 11 chips used > 10 obtainable (max_chips 10)",
        "fleet in wafer, q2: 11 chips > max_chips 10"]  # the fleet holds the 11, so it is over the cap too

    def wafer_in_q1(p):  # none delivered before q2: one base replica of q1 from spot onto a wafer
        _row(p["replicas"], period="q1", slice="base", pool="spot").update(replicas=9, chips=9)
        p["replicas"].append({**_row(p["replicas"], period="q2", slice="base", pool="wafer"), "period": "q1",
                              "replicas": 1, "chips": 1})
        p["cost"].update(total=1720.0, per_hour=8.6)  # one spot chip x 80 h less
        p["objective"]["value"] = 8.6
    assert violations(sliced, wafer_in_q1) == [
        "pool wafer in q1/base: 1 chips used > 0 obtainable (max_chips 0)",
        "fleet in wafer, q1: 1 chips > max_chips 0"]


def test_horizon_cost_and_objective(sliced):
    assert violations(sliced, lambda p: p["cost"].update(total=1801.0)) == [
        "cost.total 1801.0 != 1800.0 recomputed from the rows (pools 1800.0, churn 0.0, shedding 0.0)"]
    # the objective is the horizon's total over its 200 hours, not one period's
    assert violations(sliced, lambda p: p["objective"].update(value=18.0)) == [
        "objective 18.0 != 9.0 (horizon total over its hours)"]


@pytest.fixture(scope="module")
def churned(tmp_path_factory):
    """10 replicas run on `old` (3.0/h); `new` costs 1.0/h; at most 10 chips move per period (a move is
    1 out + 1 in): 5 move in q1 (1500 + 500), 5 in q2 (1000). Total 3000, 15 per hour."""
    fleet = [{"model": "m", "accelerator": "g", "chips_per_replica": 1, "pool": "old", "replicas": 10}]
    return _solved(tmp_path_factory, "churned", _over_time(
        [{**ON_DEMAND, "id": "old"}, {**ON_DEMAND, "id": "new", "price_per_chip_hour": 1.0}],
        extra={"fleet": fleet}, options={"max_churn_chips": 10}))


def test_churn_within_max_churn_chips(churned):
    loaded, plan, table = churned
    assert check_plan(loaded, plan, table) == []
    assert sorted((r["period"], r["pool"], r["replicas"]) for r in plan["fleet"] if r["replicas"]) == [
        ("q1", "new", 5), ("q1", "old", 5), ("q2", "new", 10)]

    def a_sixth_move(p):  # q1: 6 out + 6 in = 12 chips; q2 then moves 4 + 4; 200 cheaper
        _row(p["replicas"], period="q1", pool="old").update(replicas=4, chips=4)
        _row(p["replicas"], period="q1", pool="new").update(replicas=6, chips=6)
        p["cost"].update(total=2800.0, per_hour=14.0)
        p["objective"]["value"] = 14.0
    assert violations(churned, a_sixth_move) == ["q1: 12 chips moved > max_churn_chips 10"]


@pytest.fixture(scope="module")
def contracted(tmp_path_factory):
    """Reserved blocks of 1 chip at 1.0/h, usable a period after purchase (lead 1) for 2 periods (term 2),
    so a block bought in q1 serves q2 and a period past the horizon, paid in full: 10 x 200 = 2000 against
    3000 on demand. q1 on demand 3000 + the contract 2000 = 5000, 25 per hour."""
    reserved = {"id": "res", "accelerator": "g", "kind": "reserved", "block_chips": 1, "max_chips": 100,
                "price_per_chip_hour": 1.0, "lead_periods": 1, "term_periods": 2}
    return _solved(tmp_path_factory, "contracted", _over_time([reserved, ON_DEMAND]))


def test_commitments_lead_term_and_blocks(contracted):
    loaded, plan, table = contracted
    assert check_plan(loaded, plan, table) == []
    assert [(c["bought_in"], c["blocks"], c["first_period"], c["cost"]) for c in plan["commitments"]] == [
        ("q1", 10, "q2", 2000.0)]
    assert plan["cost"]["total"] == 5000.0
    assert violations(contracted, lambda p: p["commitments"][0].update(first_period="q1")) == [
        "commitments[0]: first_period q1 != q2 (bought in q1, lead 1)"]
    # the rows a reader sees: chips are the blocks' chips
    assert violations(contracted, lambda p: p["commitments"][0].update(chips=9)) == [
        "commitments[0]: chips 9 != 10 blocks x 1"]
    # priced for q2 alone, as if the term ended at the horizon
    assert violations(contracted, lambda p: p["commitments"][0].update(cost=1000.0)) == [
        "commitments[0]: cost 1000.0 != 2000.0 (blocks x chips x price x the hours of its whole term)"]

    def split(p):  # two rows of 5 blocks, each paid 1000
        first = p["commitments"][0]
        first.update(blocks=5, chips=5, cost=1000.0)
        p["commitments"].append(dict(first))
    assert violations(contracted, split) == []

    def q1_on_blocks_not_yet_usable(p):  # q1's 10 replicas moved onto the blocks, usable from q2 only
        _row(p["replicas"], period="q1", pool="od")["pool"] = "res"
        p["cost"].update(total=2000.0, per_hour=10.0)
        p["objective"]["value"] = 10.0
    assert violations(contracted, q1_on_blocks_not_yet_usable) == [
        "pool res in q1/all: 10 chips used > 0 under active contracts"]

    def nine_blocks(p):  # 10 chips used in q2 on 9 blocks, every cost reported for 9
        p["commitments"][0].update(blocks=9, chips=9, cost=1800.0)
        p["cost"].update(total=4800.0, per_hour=24.0)
        p["objective"]["value"] = 24.0
    assert violations(contracted, nine_blocks) == ["pool res in q2/all: 10 chips used > 9 under active contracts"]


def test_commitments_name_a_reserved_pool_and_a_period_of_use(contracted):
    # each bad row put first: the rows after a skipped one must still be counted
    extra = {"pool": "res", "bought_in": "q2", "blocks": 0, "chips": 0, "first_period": "q2", "cost": 0.0}
    assert violations(contracted, lambda p: p["commitments"].insert(0, extra)) == [
        "commitments[0]: bought in q2 with lead 1, never usable inside the horizon"]
    assert violations(contracted, lambda p: p["commitments"].insert(0, {**extra, "bought_in": "q9"})) == [
        "commitments[0]: unknown period 'q9'"]
    assert violations(contracted, lambda p: p["commitments"].insert(0, {**extra, "pool": "od"})) == [
        "commitments[0]: 'od' is not a reserved pool"]
    assert violations(contracted, lambda p: p["commitments"].insert(0, {**extra, "blocks": -1})) == [
        "commitments[0]: blocks must be a whole number >= 0"]


@pytest.fixture(scope="module")
def uneven(tmp_path_factory):
    """q1 of 100 hours, q2 of 50: blocks bought in q1 serve q2 (lead 1, term 1): q1 on demand 3000, the
    contract 10 x 1.0 x 50 = 500."""
    reserved = {"id": "res", "accelerator": "g", "kind": "reserved", "block_chips": 1, "max_chips": 100,
                "price_per_chip_hour": 1.0, "lead_periods": 1, "term_periods": 1}
    periods = [{"id": "q1", "hours": 100}, {"id": "q2", "hours": 50}]
    return _solved(tmp_path_factory, "uneven", _over_time([reserved, ON_DEMAND], extra={"periods": periods}))


def test_plans_without_commitment_rows_pay_their_periods_hours(uneven):
    loaded, plan, table = uneven
    assert check_plan(loaded, plan, table) == [] and plan["cost"]["total"] == 3500.0
    assert violations(uneven, lambda p: p.pop("commitments")) == []  # res commits 10 chips in q2's row: 500


@pytest.fixture(scope="module")
def curved(tmp_path_factory):
    """Slices derived from a 4-hour load curve (10, 10, 20, 10 req/s): the peak hour alone (weight 0.25)
    and the other three (0.75). Each period: 20 chips x 3.0 x 25 h + 10 x 3.0 x 75 h = 3750; total 7500."""
    curve = [{"workload": "w", "hour": h, "requests_per_s": r} for h, r in enumerate([10, 10, 20, 10])]
    return _solved(tmp_path_factory, "curved", _over_time(
        [ON_DEMAND], extra={"load_curve": curve}, options={"slices": {"count": 2}}))


def test_slices_derived_from_a_load_curve(curved):
    loaded, plan, table = curved
    assert check_plan(loaded, plan, table) == []
    assert plan["slices"] == [{"id": "peak-w", "weight": 0.25, "hours": [2]}, {"id": "c1", "weight": 0.75,
                                                                            "hours": [0, 1, 3]}]
    assert plan["cost"]["total"] == 7500.0

    def priced(total):
        return {"total": total, "per_hour": total / 200}

    def hour_dropped(p):  # c1 lists hours 0 and 1 only, weighted as such: hour 3 belongs to no slice
        p["slices"][1].update(hours=[0, 1], weight=0.5)
        p["cost"].update(priced(6000.0))
        p["objective"]["value"] = 30.0
    assert violations(curved, hour_dropped) == ["derived slices do not partition the load curve's hours"]

    def old_text_form(p):  # plans written before the hours were a list said "0,1,3": still read
        p["slices"][1]["hours"], p["slices"][0]["hours"] = "0,1,3", "2"
    assert violations(curved, old_text_form) == []

    def junk_hours(p):  # hours that are not the curve's: reported, not a traceback
        p["slices"][1]["hours"] = ["zero", 1, 3]
    assert violations(curved, junk_hours)[0] == "derived slices do not partition the load curve's hours"

    def misweighted(p):  # 0.7 of the hours for c1's 3 of 4
        p["slices"][1]["weight"] = 0.7
        p["cost"].update(priced(7200.0))
        p["objective"]["value"] = 36.0
    assert violations(curved, misweighted) == ["slice c1: weight 0.7 != 3 of 4 hours"]

    def peak_at_base_rate(p):  # the peak slice's rate is its hours' mean, 20 req/s; 10 is the other slice's
        _row(p["routing"], period="q2", slice="peak-w").update(requests_per_s=10.0)
    assert violations(curved, peak_at_base_rate) == [
        "routing[2] (w bucket 0 on m/g): requests_per_s 10.0 != rate 20.0 x share 1.0"]


@pytest.fixture(scope="module")
def contracted_within(tmp_path_factory):
    """Three periods; reserved blocks of 2 chips at 1.0/h, lead 1, term 1: a block bought in q1 serves q2
    alone, paid 2 x 100 = 200 per block; blocks bought in q1 and q2 serve q2 and q3 (5 each)."""
    reserved = {"id": "res", "accelerator": "g", "kind": "reserved", "block_chips": 2, "max_chips": 100,
                "price_per_chip_hour": 1.0, "lead_periods": 1, "term_periods": 1}
    periods = [{"id": f"q{i}", "hours": 100} for i in (1, 2, 3)]
    return _solved(tmp_path_factory, "within", _over_time([reserved, ON_DEMAND], extra={"periods": periods}))


def test_commitment_last_period_inside_the_horizon(contracted_within):
    loaded, plan, table = contracted_within
    assert check_plan(loaded, plan, table) == []
    assert [(c["bought_in"], c["blocks"], c["first_period"], c["last_period"], c["cost"])
            for c in plan["commitments"]] == [("q1", 5, "q2", "q2", 1000.0), ("q2", 5, "q3", "q3", 1000.0)]
    assert violations(contracted_within, lambda p: p["commitments"][0].update(last_period="q3")) == [
        "commitments[0]: last_period q3 != q2 (first q2, term 1)"]


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    """10 blocks of 1 chip already signed through q2 in two contracts (sunk: free here); q3 buys 10 for
    10 x 1.0 x 100 = 1000."""
    reserved = {"id": "res", "accelerator": "g", "kind": "reserved", "block_chips": 1, "max_chips": 100,
                "price_per_chip_hour": 1.0, "committed": [{"blocks": 6, "through": "q2"},
                                                                        {"blocks": 4, "through": "q2"}]}
    periods = [{"id": f"q{i}", "hours": 100} for i in (1, 2, 3)]
    return _solved(tmp_path_factory, "signed", _over_time([reserved, ON_DEMAND], extra={"periods": periods}))


def test_signed_contracts_hold_through_their_last_period(signed):
    loaded, plan, table = signed
    assert check_plan(loaded, plan, table) == []  # q1 and q2 on the signed blocks
    assert [(c["bought_in"], c["blocks"]) for c in plan["commitments"]] == [("q3", 10)]
    assert plan["cost"]["total"] == 1000.0

    def unbought(p):  # without q3's purchase the signed blocks, over after q2, hold nothing in q3
        p["commitments"].clear()
        p["cost"].update(total=0.0, per_hour=0.0)
        p["objective"]["value"] = 0.0
    assert violations(signed, unbought) == ["pool res in q3/all: 10 chips used > 0 under active contracts"]


def test_plans_without_commitment_rows_commit_whole_blocks_per_pool(solved):
    def legacy(chips):  # a plan from before contracts over time: a-res commits `chips` in its pools row
        def edit(p):
            p.pop("commitments")
            next(q for q in p["pools"] if q["pool"] == "a-res")["chips_committed"] = chips
            p["cost"].update(total=1100.0 + 150.0 * chips, per_hour=11.0 + 1.5 * chips)
            p["objective"]["value"] = 11.0 + 1.5 * chips
        return edit
    assert violations(solved, legacy(4)) == []
    assert violations(solved, legacy(8)) == []  # a second block, paid
    assert violations(solved, legacy(6)) == ["pool a-res: committed 6 chips is not whole blocks"]
    assert violations(solved, legacy(0)) == ["pool a-res in p1/all: 1 chips used > 0 under active contracts"]

    def neither(p):  # no commitment rows and no pools rows: nothing committed
        legacy(0)(p)
        p.pop("pools")
    assert violations(solved, neither) == ["pool a-res in p1/all: 1 chips used > 0 under active contracts"]

    def unsaid(p):  # the a-res row without chips_committed: nothing committed there
        legacy(0)(p)
        next(q for q in p["pools"] if q["pool"] == "a-res").pop("chips_committed")
    assert violations(solved, unsaid) == ["pool a-res in p1/all: 1 chips used > 0 under active contracts"]

    def no_period(p):  # pools rows from before periods: the first period
        legacy(4)(p)
        next(q for q in p["pools"] if q["pool"] == "a-res").pop("period")
    assert violations(solved, no_period) == []


def test_plans_without_commitment_rows_commit_per_period(contracted):
    def legacy(p):  # res commits its 10 chips in q2's pools row, paid for q2's 100 hours alone
        p.pop("commitments")
        assert [(q["pool"], q["period"], q["chips_committed"]) for q in p["pools"] if q["pool"] == "res"] == [
            ("res", "q1", 0), ("res", "q2", 10)]
        p["cost"].update(total=4000.0, per_hour=20.0)
        p["objective"]["value"] = 20.0
    assert violations(contracted, legacy) == []


def test_fleet_rows_of_one_deployment_add_up(sliced):
    def split(p):  # the q1 spot fleet as two rows of 5
        row = _row(p["fleet"], period="q1", pool="spot")
        row["replicas"] = 5
        p["fleet"].append(dict(row))
    assert violations(sliced, split, fleet_follows=False) == []


def test_churn_is_counted_from_the_second_period_without_a_fleet(sliced, tmp_path):
    # the same plan under churn options: no fleet before q1, so q1 moves nothing; q2 moves od 10 out, wafer
    # 10 in: 20 chips (spot stays)
    _, plan, table = sliced
    priced = load_scenario(write_scenario(tmp_path / "priced", _sliced_spec(churn_cost_per_chip=1.0)))
    assert check_plan(priced, plan, table) == [
        "cost.total 1800.0 != 1820.0 recomputed from the rows (pools 1800.0, churn 20.0, shedding 0.0)",
        "objective 9.0 != 9.1 (horizon total over its hours)"]
    limited = load_scenario(write_scenario(tmp_path / "limited", _sliced_spec(max_churn_chips={"q1": 0, "q2": 19})))
    assert check_plan(limited, plan, table) == ["q2: 20 chips moved > max_churn_chips 19"]
    limited = load_scenario(write_scenario(tmp_path / "enough", _sliced_spec(max_churn_chips={"q1": 0, "q2": 20})))
    assert check_plan(limited, plan, table) == []


def test_rows_name_a_period_and_slice_of_the_scenario(solved):
    assert violations(solved, _first_row(period="q9")) == [
        "routing[0] (bulk bucket 0 on distilled/a): unknown period 'q9' or slice 'all'"]
    assert violations(solved, _first_row(slice="peak")) == [
        "routing[0] (bulk bucket 0 on distilled/a): unknown period 'p1' or slice 'peak'"]
    spare = {"model": "plain", "accelerator": "b", "chips_per_replica": 2, "pool": "b-od", "replicas": 1, "chips": 2}
    assert violations(solved, lambda p: p["replicas"].append({**spare, "period": "q9"}), fleet_follows=False) == [
        "replicas[4]: unknown period 'q9' or slice 'all'"]
    assert violations(solved, lambda p: p["replicas"].append({**spare, "slice": "peak"}), fleet_follows=False) == [
        "replicas[4]: unknown period 'p1' or slice 'peak'"]


@pytest.fixture(scope="module")
def mixed_quality(tmp_path_factory):
    """`hi` (q 80, 1 req/s per chip) and `lo` (q 60, 2 req/s) serve w, mean q >= 70 per period over its
    slices' requests. Peak (weight 0.2) 20 req/s: 30% hi (6 replicas), 70% lo (7); base (0.8) 10 req/s:
    60% hi (6), 40% lo (2). Requests per period: peak 4 units at 66, base 8 at 72: 840 / 12 = 70."""
    spec = _over_time([ON_DEMAND], quality={"metric": "q", "min_mean": 70}, shape={"peak": 2.0},
                      extra={"slices": [{"id": "peak", "weight": 0.2}, {"id": "base", "weight": 0.8}]})
    spec.update(models=[{"id": "hi", "quality": {"q": 80}}, {"id": "lo", "quality": {"q": 60}}],
                profiles=[("hi", "g", 1, 1000, 100, 1.0), ("lo", "g", 1, 1000, 100, 2.0)])
    return _solved(tmp_path_factory, "quality", spec)


def test_mean_quality_weighs_each_slices_requests(mixed_quality):
    loaded, plan, table = mixed_quality
    assert check_plan(loaded, plan, table) == []
    assert sorted((r["period"], r["slice"], r["model"], r["share"]) for r in plan["routing"]) == [
        (t, s, m, share) for t in ("q1", "q2") for s, m, share in (
            ("base", "hi", 0.6), ("base", "lo", 0.4), ("peak", "hi", 0.3), ("peak", "lo", 0.7))]

    def base_leans_low(p):  # q1 base half on lo, on a third lo replica (3.0 x 80 h = 240 more): base mean 70
        _row(p["routing"], period="q1", slice="base", model="hi").update(share=0.5, requests_per_s=5.0)
        _row(p["routing"], period="q1", slice="base", model="lo").update(share=0.5, requests_per_s=5.0)
        _row(p["replicas"], period="q1", slice="base", model="lo").update(replicas=3, chips=3)
        p["cost"].update(total=5640.0, per_hour=28.2)
        p["objective"]["value"] = 28.2
    # q1: peak 4 units at 66 + base 8 at 70 = 824 over 12 (weighing by rate alone would say 2020 / 30)
    assert violations(mixed_quality, base_leans_low) == ["w in q1: mean q 68.6667 below min_mean 70.0"]


def test_churn_counts_chips_against_the_fleet_before(solved, tmp_path):
    # the same plan after a fleet of one plain replica (2 chips) on b-od: p1 adds the spot plain (2 chips),
    # distilled (1) and 2 frontier (2): 5 chips moved
    loaded, plan, table = solved
    before = [{"model": "plain", "accelerator": "b", "chips_per_replica": 2, "pool": "b-od", "replicas": 1}]
    priced = load_scenario(write_scenario(tmp_path / "p", {**SPEC, "extra": {"fleet": before},
                                                           "options": {"churn_cost_per_chip": 1.0}}))
    assert check_plan(priced, plan, table) == [
        "cost.total 1700.0 != 1705.0 recomputed from the rows (pools 1700.0, churn 5.0, shedding 0.0)",
        "objective 17.0 != 17.05 (horizon total over its hours)"]
    limited = load_scenario(write_scenario(tmp_path / "l", {**SPEC, "extra": {"fleet": before},
                                                            "options": {"max_churn_chips": 4}}))
    assert check_plan(limited, plan, table) == ["p1: 5 chips moved > max_churn_chips 4"]


def test_plans_without_commitment_rows_keep_the_signed_contracts(signed):
    def legacy(p):  # q3's 10 chips committed in its pools row; q1 and q2 stand on the signed blocks
        p.pop("commitments")
        for q in p["pools"]:
            q["chips_committed"] = 10 if (q["pool"], q["period"]) == ("res", "q3") else 0
    assert violations(signed, legacy) == []


def test_billed_chip_hours_are_recomputed_from_the_rows(solved):
    # the plan bills b-spot 2 chips x 100 h, b-od 2 x 100 h, a-res one 4-chip block x 100 h; a break-even
    # search reads these, so a wrong figure is a wrong price
    billed = {r["pool"]: r["billed_chip_hours"] for r in solved[1]["cost"]["by_pool"]}
    assert billed == {"b-spot": 200.0, "b-od": 200.0, "a-pre": 0.0, "a-res": 400.0, "b-idle": 0.0}

    def off(p):
        next(r for r in p["cost"]["by_pool"] if r["pool"] == "b-od")["billed_chip_hours"] = 300.0
    assert violations(solved, off, billed_follows=False) == [
        "cost.by_pool b-od: billed_chip_hours 300.0 != 200.0 recomputed from the rows"]

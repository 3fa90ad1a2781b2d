"""The MIP piece by piece on small cases whose optimum is computed by hand and by brute force.

Every case runs on every exact backend (OR-Tools HiGHS and SCIP, PuLP CBC); each plan must also
pass the independent checker.
"""

from __future__ import annotations

import pytest

from placement.api import solve_scenario
from placement.scenario import load_scenario
from tests.helpers import brute_force, write_scenario

BACKENDS = [("ortools", "highs"), ("ortools", "scip"), ("pulp", "cbc")]

M = [{"id": "m", "quality": {"q": 70}}]
AB = ["a", "b"]


def od(pool_id: str, accel: str, price: float, cap: int = 100) -> dict:
    return {"id": pool_id, "accelerator": accel, "kind": "on_demand", "max_chips": cap, "price_per_chip_hour": price}


CASES = {
    # short bucket is cheap on a, long bucket is cheap on b: mixing costs 2 + 3 = 5;
    # only a: 1 + 5 replicas x 2 = 12; only b: 2 + 1 replicas x 3 = 9.
    "mixing_beats_every_single_type": (
        {
            "accelerators": AB, "models": M,
            "workloads": [{"id": "w", "requests_per_s": 10, "buckets": [(1000, 100, 0.5), (100000, 100, 0.5)]}],
            "pools": [od("a-od", "a", 2.0), od("b-od", "b", 3.0)],
            "profiles": [("m", "a", 1, 1000, 100, 5), ("m", "a", 1, 100000, 100, 1),
                         ("m", "b", 1, 1000, 100, 2.5), ("m", "b", 1, 100000, 100, 5)],
        },
        5.0,
    ),
    # the long bucket only b can serve (a's row is 0): 2 replicas of b (6) + 1 of a for the short (2) = 8.
    "bucket_only_one_deployment_serves": (
        {
            "accelerators": AB, "models": M,
            "workloads": [{"id": "w", "requests_per_s": 6, "buckets": [(1000, 100, 4 / 6), (100000, 100, 2 / 6)]}],
            "pools": [od("a-od", "a", 2.0), od("b-od", "b", 3.0)],
            "profiles": [("m", "a", 1, 1000, 100, 4), ("m", "a", 1, 100000, 100, 0),
                         ("m", "b", 1, 1000, 100, 2), ("m", "b", 1, 100000, 100, 1)],
        },
        8.0,
    ),
    # 3 chips needed. Reserved is 1.0/chip-h but comes in blocks of 8 (8.0) > on-demand 3 x 2.5 = 7.5.
    "reserved_block_rounding_prefers_on_demand": (
        {
            "accelerators": ["a"], "models": M,
            "workloads": [{"id": "w", "requests_per_s": 3, "buckets": [(1000, 100, 1.0)]}],
            "pools": [{"id": "a-res", "accelerator": "a", "kind": "reserved", "max_chips": 64, "block_chips": 8,
                       "price_per_chip_hour": 1.0}, od("a-od", "a", 2.5, 64)],
            "profiles": [("m", "a", 1, 1000, 100, 1)],
        },
        7.5,
    ),
    # the same with blocks of 1: 3 reserved chips = 3.0.
    "reserved_without_blocks": (
        {
            "accelerators": ["a"], "models": M,
            "workloads": [{"id": "w", "requests_per_s": 3, "buckets": [(1000, 100, 1.0)]}],
            "pools": [{"id": "a-res", "accelerator": "a", "kind": "reserved", "max_chips": 64, "block_chips": 1,
                       "price_per_chip_hour": 1.0}, od("a-od", "a", 2.5, 64)],
            "profiles": [("m", "a", 1, 1000, 100, 1)],
        },
        3.0,
    ),
    # 10 chips: one block of 8 (8.0) + 2 on-demand (5.0) = 13 beats 2 blocks (16) and 10 on-demand (25).
    "reserved_block_plus_on_demand_top_up": (
        {
            "accelerators": ["a"], "models": M,
            "workloads": [{"id": "w", "requests_per_s": 10, "buckets": [(1000, 100, 1.0)]}],
            "pools": [{"id": "a-res", "accelerator": "a", "kind": "reserved", "max_chips": 64, "block_chips": 8,
                       "price_per_chip_hour": 1.0}, od("a-od", "a", 2.5, 64)],
            "profiles": [("m", "a", 2, 1000, 100, 2)],
        },
        13.0,
    ),
    # mean quality >= 70 with frontier 80 (R=1) and distilled 60 (R=4): half the traffic on the
    # frontier: 4 + 1 replicas x 2 = 10 (distilled alone would be 2 x 2 = 4).
    "quality_floor_forces_frontier_share": (
        {
            "accelerators": ["a"],
            "models": [{"id": "frontier", "quality": {"q": 80}}, {"id": "distilled", "quality": {"q": 60}}],
            "workloads": [{"id": "w", "requests_per_s": 8, "buckets": [(1000, 100, 1.0)],
                           "quality": {"metric": "q", "min_mean": 70}}],
            "pools": [od("a-od", "a", 2.0)],
            "profiles": [("frontier", "a", 1, 1000, 100, 1), ("distilled", "a", 1, 1000, 100, 4)],
        },
        10.0,
    ),
    # per-request floor 70 rules the distilled model out entirely: 8 frontier replicas = 16.
    "per_request_floor_excludes_distilled": (
        {
            "accelerators": ["a"],
            "models": [{"id": "frontier", "quality": {"q": 80}}, {"id": "distilled", "quality": {"q": 60}}],
            "workloads": [{"id": "w", "requests_per_s": 8, "buckets": [(1000, 100, 1.0)],
                           "quality": {"metric": "q", "min": 70}}],
            "pools": [od("a-od", "a", 2.0)],
            "profiles": [("frontier", "a", 1, 1000, 100, 1), ("distilled", "a", 1, 1000, 100, 4)],
        },
        16.0,
    ),
    # 5 replicas needed, 2 prepaid chips free: 3 on-demand x 2 = 6.
    "prepaid_used_first": (
        {
            "accelerators": ["a"], "models": M,
            "workloads": [{"id": "w", "requests_per_s": 5, "buckets": [(1000, 100, 1.0)]}],
            "pools": [{"id": "a-pre", "accelerator": "a", "kind": "prepaid", "max_chips": 2, "fixed_cost": 1000},
                      od("a-od", "a", 2.0)],
            "profiles": [("m", "a", 1, 1000, 100, 1)],
        },
        6.0,
    ),
    # headroom 0.2: 4 req/s at R=1 needs 4 / 0.8 = 5 replicas = 10.
    "headroom": (
        {
            "accelerators": ["a"], "models": M, "headroom": 0.2,
            "workloads": [{"id": "w", "requests_per_s": 4, "buckets": [(1000, 100, 1.0)]}],
            "pools": [od("a-od", "a", 2.0)],
            "profiles": [("m", "a", 1, 1000, 100, 1)],
        },
        10.0,
    ),
    # 1.5 req/s, a replica (R=1) costs 2/h, shedding costs 0.001 x 3600 = 3.6/h per req/s:
    # serve 1 req/s (2.0) and shed 0.5 (1.8) = 3.8, cheaper than a second replica (4.0).
    "shedding_with_penalty": (
        {
            "accelerators": ["a"], "models": M,
            "workloads": [{"id": "w", "requests_per_s": 1.5, "buckets": [(1000, 100, 1.0)], "must_serve": False,
                           "unserved_cost_per_request": 0.001}],
            "pools": [od("a-od", "a", 2.0)],
            "profiles": [("m", "a", 1, 1000, 100, 1)],
        },
        3.8,
    ),
    # spot is cheaper but capped at 2 chips; the rest on-demand: 2 x 1 + 2 x 3 = 8.
    "spot_cap_then_on_demand": (
        {
            "accelerators": ["a"], "models": M,
            "workloads": [{"id": "w", "requests_per_s": 4, "buckets": [(1000, 100, 1.0)]}],
            "pools": [{"id": "a-spot", "accelerator": "a", "kind": "spot", "max_chips": 2, "price_per_chip_hour": 1.0},
                      od("a-od", "a", 3.0)],
            "profiles": [("m", "a", 1, 1000, 100, 1)],
        },
        8.0,
    ),
    # replicas are shared by workloads: two workloads of 0.5 req/s each fit one replica (R=1): 2.0.
    "replicas_shared_across_workloads": (
        {
            "accelerators": ["a"], "models": M,
            "workloads": [{"id": "w1", "requests_per_s": 0.5, "buckets": [(1000, 100, 1.0)]},
                          {"id": "w2", "requests_per_s": 0.5, "buckets": [(1000, 100, 1.0)]}],
            "pools": [od("a-od", "a", 2.0)],
            "profiles": [("m", "a", 1, 1000, 100, 1)],
        },
        2.0,
    ),
}


@pytest.mark.parametrize("backend,engine", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_hand_computed_optimum(tmp_path, case, backend, engine):
    spec, expected = CASES[case]
    path = write_scenario(tmp_path, spec)
    result = solve_scenario(path, backend=backend, engine=engine)
    assert result.violations == []
    assert result.plan["status"] == "optimal"
    assert result.plan["objective"]["value"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_brute_force_agrees_with_hand_value(tmp_path, case):
    spec, expected = CASES[case]
    path = write_scenario(tmp_path, spec)
    assert brute_force(path, max_replicas=8 if len(spec["pools"]) < 2 else 6) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("case,status", [
    ("mixing_beats_every_single_type", "optimal"),        # LP bound = optimum: proven by the relaxation
    ("quality_floor_forces_frontier_share", "optimal"),
    ("reserved_block_rounding_prefers_on_demand", "feasible"),  # LP bound 3.0 < 7.5: CP-SAT's grid proves nothing
    ("reserved_block_plus_on_demand_top_up", "feasible"),
])
def test_cp_sat_plans_are_proven_only_by_the_lp_bound(tmp_path, case, status):
    spec, expected = CASES[case]
    result = solve_scenario(write_scenario(tmp_path, spec), backend="ortools", engine="cp-sat")
    assert result.violations == []
    assert result.plan["status"] == status
    assert result.plan["objective"]["value"] == pytest.approx(expected, rel=1e-6)


def test_restricted_plan_within_gap_of_lp_bound_is_proven_without_the_full_mip(tmp_path):
    spec, expected = CASES["mixing_beats_every_single_type"]
    result = solve_scenario(write_scenario(tmp_path, spec))
    assert result.plan["status"] == "optimal"
    assert "proven by the LP bound" in result.plan["solver"]["message"]
    assert result.plan["objective"]["bound"] == pytest.approx(expected)


def test_zero_demand_bucket_needs_no_deployment(tmp_path):
    spec, _ = CASES["bucket_only_one_deployment_serves"]
    spec = {**spec, "workloads": [*spec["workloads"],
                                  {"id": "idle", "requests_per_s": 0, "buckets": [(500000, 100, 1.0)]}]}
    result = solve_scenario(write_scenario(tmp_path, spec))
    assert result.plan["status"] == "optimal" and result.violations == []
    assert result.plan["objective"]["value"] == pytest.approx(8.0)
    # shares still sum to 1 for the idle bucket: all of its (zero) traffic is reported unserved
    assert result.plan["unserved"][-1] == {"workload": "idle", "bucket": 0, "period": "p1", "slice": "all",
                                           "share": 1.0, "requests_per_s": 0.0}
    assert [u["share"] for u in result.plan["unserved"][:-1]] == [0.0, 0.0]


def test_mixing_case_baselines(tmp_path):
    spec, expected = CASES["mixing_beats_every_single_type"]
    result = solve_scenario(write_scenario(tmp_path, {**spec, "baselines": True}))
    baselines = {b["name"]: b for b in result.plan["baselines"]}
    assert baselines["only a"]["cost_per_hour"] == pytest.approx(12.0)
    assert baselines["only b"]["cost_per_hour"] == pytest.approx(9.0)
    best = baselines["best single accelerator"]
    assert best["accelerator"] == "b"
    assert best["savings_vs_baseline"] == pytest.approx((9.0 - 5.0) / 9.0)


def test_single_deployment_bucket_baseline_is_infeasible(tmp_path):
    spec, _ = CASES["bucket_only_one_deployment_serves"]
    result = solve_scenario(write_scenario(tmp_path, {**spec, "baselines": True}))
    baselines = {b["name"]: b for b in result.plan["baselines"]}
    assert baselines["only a"]["feasible"] is False
    assert baselines["only b"]["cost_per_hour"] == pytest.approx(4 * 3.0)  # short 4/2 + long 2/1 replicas of b
    long_rows = [r for r in result.plan["routing"] if r["bucket"] == 1]
    assert [(r["accelerator"], r["share"]) for r in long_rows] == [("b", 1.0)]


def test_prepaid_pool_is_filled_and_costs_nothing(tmp_path):
    spec, _ = CASES["prepaid_used_first"]
    result = solve_scenario(write_scenario(tmp_path, spec))
    pools = {p["pool"]: p for p in result.plan["pools"]}
    assert pools["a-pre"]["chips_used"] == 2
    assert pools["a-od"]["chips_used"] == 3
    by_pool = {c["pool"]: c["per_hour"] for c in result.plan["cost"]["by_pool"]}
    assert by_pool["a-pre"] == 0.0
    assert result.plan["cost"]["fixed_cost_period"] == 1000


def test_reserved_commitment_is_whole_blocks(tmp_path):
    spec, _ = CASES["reserved_block_plus_on_demand_top_up"]
    result = solve_scenario(write_scenario(tmp_path, spec))
    pools = {p["pool"]: p for p in result.plan["pools"]}
    assert pools["a-res"]["chips_committed"] == 8 and pools["a-res"]["chips_used"] == 8
    assert pools["a-od"]["chips_used"] == 2


def test_quality_floor_share_is_exactly_half(tmp_path):
    spec, _ = CASES["quality_floor_forces_frontier_share"]
    result = solve_scenario(write_scenario(tmp_path, spec))
    shares = {r["model"]: r["share"] for r in result.plan["routing"]}
    assert shares["frontier"] == pytest.approx(0.5, abs=1e-6)


def test_shedding_reports_unserved_rows(tmp_path):
    spec, _ = CASES["shedding_with_penalty"]
    result = solve_scenario(write_scenario(tmp_path, spec))
    assert result.plan["unserved"] == [
        {"workload": "w", "bucket": 0, "period": "p1", "slice": "all", "share": pytest.approx(1 / 3),
         "requests_per_s": pytest.approx(0.5)}]
    assert result.plan["cost"]["per_hour"] == pytest.approx(2.0)
    assert result.plan["cost"]["unserved_penalty_per_hour"] == pytest.approx(1.8)


def test_free_shedding_does_not_beat_free_capacity(tmp_path):
    # shedding costs 0 and the prepaid chips cost 0: equal cost, and the tie rule serves the traffic
    spec = {
        "accelerators": ["a"], "models": M,
        "workloads": [{"id": "w", "requests_per_s": 2, "buckets": [(1000, 100, 1.0)], "must_serve": False,
                       "unserved_cost_per_request": 0.0}],
        "pools": [{"id": "a-pre", "accelerator": "a", "kind": "prepaid", "max_chips": 4}],
        "profiles": [("m", "a", 1, 1000, 100, 1)],
    }
    result = solve_scenario(write_scenario(tmp_path, spec))
    assert result.plan["objective"]["value"] == 0.0
    assert result.plan["unserved"][0]["share"] == 0.0
    assert sum(r["share"] for r in result.plan["routing"]) == pytest.approx(1.0)


SHAPES = {
    # 3.5 req/s; 1-chip replicas serve 1, 2-chip replicas serve 2.5; $1 per chip-hour.
    # Any sizes: one 2-chip + one 1-chip = 3 chips = 3.0. One size only: four 1-chip or two 2-chip = 4.0.
    "accelerators": ["a"], "models": M,
    "workloads": [{"id": "w", "requests_per_s": 3.5, "buckets": [(1000, 100, 1.0)]}],
    "pools": [od("a-od", "a", 1.0, 16)],
    "profiles": [("m", "a", 1, 1000, 100, 1), ("m", "a", 2, 1000, 100, 2.5)],
}


@pytest.mark.parametrize("backend,engine", BACKENDS)
@pytest.mark.parametrize("limit,expected,sizes", [(None, 3.0, 2), (2, 3.0, 2), (1, 4.0, 1)])
def test_replica_sizes_per_model_and_accelerator(tmp_path, backend, engine, limit, expected, sizes):
    path = write_scenario(tmp_path, SHAPES)
    if limit is not None:
        path.write_text(path.read_text().replace("options:\n", f"options:\n  max_shapes_per_model_accelerator: {limit}\n"))
    result = solve_scenario(path, backend=backend, engine=engine)
    assert result.violations == []
    assert result.plan["objective"]["value"] == pytest.approx(expected)
    # the optimum at 3.0 needs both sizes; at 4.0 one size (four 1-chip or two 2-chip replicas)
    assert len({r["chips_per_replica"] for r in result.plan["replicas"]}) == sizes


def test_checker_counts_replica_sizes(tmp_path):
    from placement.checker import check_plan
    from placement.profiles import profile_table

    path = write_scenario(tmp_path, SHAPES)
    mixed = solve_scenario(path).plan  # two sizes
    assert brute_force(path, max_replicas=5) == pytest.approx(3.0)
    path.write_text(path.read_text().replace("options:\n", "options:\n  max_shapes_per_model_accelerator: 1\n"))
    loaded = load_scenario(path)
    assert any("2 replica sizes" in v for v in check_plan(loaded, mixed, profile_table(loaded)))

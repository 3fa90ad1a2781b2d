"""Properties on random valid scenarios (hypothesis).

Each random scenario: 1-2 accelerators, 1-2 models, 1-2 workloads of 1-2 buckets, 1-3 pools of random
kinds, operating points on a length grid (some zero). For each: a plan the checker accepts or a
diagnosis the elastic model confirms; both backends agree; more supply never raises cost; more
demand never lowers it; a higher quality floor never lowers it; pruning never changes the optimum;
brute-force enumeration finds the same optimum.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from placement.api import solve_scenario
from placement.errors import InputError
from placement.formulation import build_model
from placement.indexsets import build_index_sets
from placement.scenario import load_scenario
from placement.solve import prepare, settings_from
import solvers
from tests.helpers import brute_force, write_scenario

EXAMPLES = 40
LENGTHS = [(1000, 100), (8000, 500), (64000, 1000)]
PROPERTY_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.too_slow])


@st.composite
def scenarios(draw):
    accelerators = ["a", "b"][: draw(st.integers(1, 2))]
    models = [{"id": f"m{i}", "quality": {"q": draw(st.sampled_from([55, 65, 75]))}}
              for i in range(draw(st.integers(1, 2)))]
    workloads = []
    for w in range(draw(st.integers(1, 2))):
        n_buckets = draw(st.integers(1, 2))
        lengths = draw(st.lists(st.sampled_from(LENGTHS), min_size=n_buckets, max_size=n_buckets, unique=True))
        first = draw(st.sampled_from([0.25, 0.5, 0.75])) if n_buckets == 2 else 1.0
        shares = [first, 1 - first][:n_buckets]
        workload = {"id": f"w{w}", "requests_per_s": draw(st.sampled_from([0.0, 0.5, 2.0, 5.0, 9.0])),
                    "buckets": [(i, o, s) for (i, o), s in zip(lengths, shares)]}
        if draw(st.booleans()):  # a floor some model reaches (one no model reaches is bad input)
            best = max(m["quality"]["q"] for m in models)
            workload["quality"] = {"metric": "q",
                                   "min_mean": draw(st.sampled_from([f for f in (55, 60, 70) if f <= best]))}
        if draw(st.booleans()):
            workload["must_serve"] = False
            workload["unserved_cost_per_request"] = draw(st.sampled_from([0.0001, 0.001, 0.01]))
        workloads.append(workload)
    pools = []
    for p in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["prepaid", "reserved", "on_demand", "spot"]))
        pool = {"id": f"p{p}", "accelerator": draw(st.sampled_from(accelerators)), "kind": kind,
                "max_chips": draw(st.sampled_from([2, 4, 8, 16]))}
        if kind != "prepaid":
            pool["price_per_chip_hour"] = draw(st.sampled_from([1.0, 2.5, 4.0]))
        if kind == "reserved":
            pool["block_chips"] = draw(st.sampled_from([1, 2, 4]))
        pools.append(pool)
    profiles = []
    for model in models:
        for accelerator in accelerators:
            for chips in draw(st.sampled_from([[1], [2], [1, 2]])):
                for i, o in LENGTHS:
                    rate = draw(st.sampled_from([0, 0.5, 1.0, 2.0, 4.0]))
                    profiles.append((model["id"], accelerator, chips, i, o, rate))
    return {"accelerators": accelerators, "models": models, "workloads": workloads, "pools": pools,
            "profiles": profiles, "solver": {"mip_gap": 0.0}, "max_shapes": draw(st.sampled_from([None, None, 1]))}


def _solve(spec, **overrides):
    with tempfile.TemporaryDirectory() as folder:
        return solve_scenario(write_scenario(Path(folder), spec), baselines=False, explain=False, **overrides)


def _cost(spec, **overrides):
    result = _solve(spec, **overrides)
    assert result.violations == []
    return result.plan["objective"]["value"] if result.plan["status"] == "optimal" else None


@PROPERTY_SETTINGS
@given(scenarios())
def test_plan_is_checked_or_infeasibility_is_confirmed(spec):
    result = _solve(spec)
    assert result.violations == []
    status = result.plan["status"]
    assert status in ("optimal", "infeasible")
    if status == "infeasible":
        relaxations = [d for d in result.plan["diagnosis"] if d["kind"] != "solver"]
        assert relaxations, result.plan["diagnosis"]


# CBC 2.10.3 (bundled with PuLP) returned 0.72 as optimal here, the optimum being 0.63.
CBC_STOPPED_AT_HEURISTIC = {
    "accelerators": ["a", "b"],
    "models": [{"id": "m0", "quality": {"q": 55}}, {"id": "m1", "quality": {"q": 55}}],
    "workloads": [{"id": "w0", "requests_per_s": 0.5, "buckets": [(1000, 100, 1.0)]},
                  {"id": "w1", "requests_per_s": 9.0, "buckets": [(1000, 100, 0.25), (64000, 1000, 0.75)],
                   "must_serve": False, "unserved_cost_per_request": 0.0001}],
    "pools": [{"id": "p0", "accelerator": "b", "kind": "prepaid", "max_chips": 2},
              {"id": "p1", "accelerator": "a", "kind": "prepaid", "max_chips": 4}],
    "profiles": [("m0", "a", 1, 1000, 100, 0), ("m0", "a", 1, 8000, 500, 0), ("m0", "a", 1, 64000, 1000, 2.0),
                 ("m0", "b", 1, 1000, 100, 0), ("m0", "b", 1, 8000, 500, 0), ("m0", "b", 1, 64000, 1000, 0),
                 ("m1", "a", 1, 1000, 100, 0.5), ("m1", "a", 1, 8000, 500, 0), ("m1", "a", 1, 64000, 1000, 0),
                 ("m1", "b", 1, 1000, 100, 0.5), ("m1", "b", 1, 8000, 500, 0), ("m1", "b", 1, 64000, 1000, 0.5)],
    "solver": {"mip_gap": 0.0},
}


@PROPERTY_SETTINGS
@given(scenarios())
@example(spec=CBC_STOPPED_AT_HEURISTIC)
def test_backends_agree(spec):
    highs = _cost(spec)
    cbc = _cost(spec, backend="pulp", engine="cbc")
    scip = _cost(spec, engine="scip")
    if highs is None:
        assert cbc is None and scip is None
    else:
        assert cbc == pytest.approx(highs, rel=1e-6, abs=1e-6)
        assert scip == pytest.approx(highs, rel=1e-6, abs=1e-6)


@PROPERTY_SETTINGS
@given(scenarios(), st.integers(0, 2))
def test_more_supply_never_raises_cost(spec, pool_index):
    before = _cost(spec)
    more = copy.deepcopy(spec)
    pool = more["pools"][pool_index % len(more["pools"])]
    pool["max_chips"] *= 2
    after = _cost(more)
    if before is not None:
        assert after is not None and after <= before + 1e-6


@PROPERTY_SETTINGS
@given(scenarios())
def test_more_demand_never_lowers_cost(spec):
    before = _cost(spec)
    more = copy.deepcopy(spec)
    for workload in more["workloads"]:
        workload["requests_per_s"] *= 1.5
    after = _cost(more)
    if after is not None:
        assert before is not None and after >= before - 1e-6


@PROPERTY_SETTINGS
@given(scenarios())
def test_higher_quality_floor_never_lowers_cost(spec):
    before = _cost(spec)
    higher = copy.deepcopy(spec)
    for workload in higher["workloads"]:
        floor = workload.get("quality", {"metric": "q", "min_mean": 50})
        workload["quality"] = {**floor, "min_mean": floor["min_mean"] + 10}
    best = max(m["quality"]["q"] for m in spec["models"])
    if any(w["quality"]["min_mean"] > best for w in higher["workloads"]):
        with pytest.raises(InputError, match="above every allowed model's q score"):
            _solve(higher)
        return
    after = _cost(higher)
    if after is not None:
        assert before is not None and after >= before - 1e-6


@PROPERTY_SETTINGS
@given(scenarios())
def test_pruning_never_changes_the_optimum(spec):
    with tempfile.TemporaryDirectory() as folder:
        loaded = load_scenario(write_scenario(Path(folder), spec))
    _, cells, candidates = prepare(loaded)
    settings_ = settings_from(loaded.scenario)
    results = []
    for prune in (True, False):
        sets = build_index_sets(loaded.scenario, cells, candidates, prune=prune)
        result = solvers.solve(build_model(sets), settings_)
        results.append((result.status, result.objective))
    assert results[0][0] == results[1][0]
    if results[0][1] is not None:
        assert results[0][1] == pytest.approx(results[1][1], rel=1e-6, abs=1e-6)


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_brute_force_agrees(spec):
    small = copy.deepcopy(spec)
    small["pools"] = small["pools"][:2]
    small["max_shapes"] = None  # the enumeration knows no size limit
    with tempfile.TemporaryDirectory() as folder:
        path = write_scenario(Path(folder), small)
        expected = brute_force(path, max_replicas=4 if len(small["pools"]) > 1 else 8)
        result = solve_scenario(path, baselines=False, explain=False)
    cost = result.plan["objective"]["value"] if result.plan["status"] == "optimal" else None
    cap = 4 if len(small["pools"]) > 1 else 8
    if expected is None:
        # the enumeration is capped: a plan it missed must need more replicas than it tried
        assert cost is None or not _within_cap(result.plan, cap), result.plan["replicas"]
    else:
        assert cost is not None and cost <= expected + 1e-6
        if _within_cap(result.plan, cap):
            assert cost == pytest.approx(expected, rel=1e-6, abs=1e-6)


def _within_cap(plan, cap):
    return all(r["replicas"] <= cap for r in plan["replicas"])

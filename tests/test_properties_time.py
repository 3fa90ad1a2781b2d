"""Properties over periods and slices (hypothesis): random two-period, two-slice scenarios with growth,
shape, deliveries, contracts with term and lead, spot availability, a running fleet and churn limits.

For each: the independent checker accepts the plan (or the elastic model confirms the infeasibility);
more supply never raises cost; a single-period, single-slice scenario written out explicitly gives the
same plan as the implicit one; every engine returns the same rows.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placement.api import solve_scenario
from tests.helpers import write_scenario

EXAMPLES = 25
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
LENGTHS = [(1000, 100), (8000, 500)]
PERIODS = [{"id": "t1", "hours": 100}, {"id": "t2", "hours": 50}]
SLICES = [{"id": "peak", "weight": 0.25}, {"id": "base", "weight": 0.75}]


@st.composite
def horizons(draw):
    accelerators = ["a", "b"][: draw(st.integers(1, 2))]
    models = [{"id": "m0"}]
    workloads = []
    for w in range(draw(st.integers(1, 2))):
        workload = {"id": f"w{w}", "requests_per_s": draw(st.sampled_from([0.5, 2.0, 4.0])),
                    "buckets": [(*draw(st.sampled_from(LENGTHS)), 1.0)],
                    "growth": {"t2": draw(st.sampled_from([0.5, 1.0, 1.5]))},
                    "shape": {"peak": draw(st.sampled_from([1.0, 2.0])), "base": draw(st.sampled_from([0.5, 1.0]))}}
        if draw(st.booleans()):
            workload["must_serve"] = False
            workload["unserved_cost_per_request"] = draw(st.sampled_from([0.0001, 0.01]))
        workloads.append(workload)
    pools = []
    for p in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["prepaid", "reserved", "on_demand", "spot"]))
        chips = draw(st.sampled_from([2, 4, 8]))
        pool = {"id": f"p{p}", "accelerator": draw(st.sampled_from(accelerators)), "kind": kind,
                "max_chips": {"t1": chips, "t2": draw(st.sampled_from([chips, 2 * chips]))}}
        if kind != "prepaid":
            pool["price_per_chip_hour"] = draw(st.sampled_from([1.0, 2.5, 4.0]))
        if kind == "reserved":
            pool["block_chips"] = draw(st.sampled_from([1, 2]))
            pool["term_periods"] = draw(st.sampled_from([1, 2, 3]))
            pool["lead_periods"] = draw(st.sampled_from([0, 0, 1]))
        if kind == "spot":
            pool["availability"] = {"peak": draw(st.sampled_from([0.25, 0.5, 1.0]))}
        pools.append(pool)
    profiles = [("m0", a, c, i, o, draw(st.sampled_from([0.5, 1.0, 2.0])))
                for a in accelerators for c in (1, 2) for i, o in LENGTHS]
    extra = {"periods": PERIODS, "slices": SLICES}
    options = {}
    if draw(st.booleans()):
        pool = pools[0]
        extra["fleet"] = [{"model": "m0", "accelerator": pool["accelerator"], "chips_per_replica": 1,
                           "pool": pool["id"], "replicas": draw(st.sampled_from([0, 1, 2]))}]
        options["max_churn_chips"] = draw(st.sampled_from([2, 4, 100]))
        options["churn_cost_per_chip"] = draw(st.sampled_from([0.0, 5.0]))
    return {"accelerators": accelerators, "models": models, "workloads": workloads, "pools": pools,
            "profiles": profiles, "solver": {"mip_gap": 0.0}, "extra": extra, "options": options}


def _solve(spec, **overrides):
    with tempfile.TemporaryDirectory() as folder:
        return solve_scenario(write_scenario(Path(folder), spec), baselines=False, explain=False, **overrides)


@SETTINGS
@given(horizons())
def test_checker_accepts_every_plan_or_infeasibility_is_confirmed(spec):
    result = _solve(spec)
    assert result.violations == []
    assert result.plan["status"] in ("optimal", "infeasible")
    if result.plan["status"] == "infeasible":
        assert [d for d in result.plan["diagnosis"] if d["kind"] != "solver"], result.plan["diagnosis"]


@SETTINGS
@given(horizons(), st.integers(0, 2))
def test_more_supply_never_raises_cost(spec, index):
    before = _solve(spec).plan
    more = copy.deepcopy(spec)
    pool = more["pools"][index % len(more["pools"])]
    pool["max_chips"] = {t: 2 * c for t, c in pool["max_chips"].items()}
    after = _solve(more).plan
    if before["status"] == "optimal":
        assert after["status"] == "optimal"
        assert after["objective"]["value"] <= before["objective"]["value"] + 1e-6


@SETTINGS
@given(horizons())
def test_engines_return_the_same_rows(spec):
    highs = _solve(spec).plan
    scip = _solve(spec, engine="scip").plan
    assert highs["status"] == scip["status"]
    if highs["status"] == "optimal":
        assert scip["objective"]["value"] == pytest.approx(highs["objective"]["value"], rel=1e-6, abs=1e-6)
        for key in ("replicas", "fleet", "commitments", "routing"):
            assert scip[key] == highs[key], key


def test_explicit_single_period_and_slice_is_the_implicit_plan():
    spec = {"accelerators": ["a"], "models": [{"id": "m0"}],
            "workloads": [{"id": "w0", "requests_per_s": 3.0, "buckets": [(1000, 100, 1.0)]}],
            "pools": [{"id": "r", "accelerator": "a", "kind": "reserved", "block_chips": 2, "max_chips": 8,
                       "price_per_chip_hour": 1.0},
                      {"id": "o", "accelerator": "a", "kind": "on_demand", "max_chips": 8, "price_per_chip_hour": 1.6}],
            "profiles": [("m0", "a", 1, 1000, 100, 1.0)]}
    implicit = _solve(spec).plan
    explicit = _solve({**spec, "extra": {"periods": [{"id": "p1", "hours": 100}],
                                         "slices": [{"id": "all", "weight": 1.0}]}}).plan
    assert implicit["objective"] == explicit["objective"]
    for key in ("replicas", "routing", "pools", "unserved", "fleet", "commitments"):
        assert implicit[key] == explicit[key], key

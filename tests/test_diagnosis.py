"""Infeasibility diagnosis: which bucket cannot be served, why, with numbers, and how much to relax."""

from __future__ import annotations

import pytest

from placement.api import solve_scenario
from placement.errors import InputError
from tests.helpers import write_scenario

BASE = {
    "accelerators": ["a", "b"],
    "models": [{"id": "frontier", "quality": {"q": 80}, "max_context_tokens": 200000},
               {"id": "distilled", "quality": {"q": 60}, "max_context_tokens": 32000}],
    "workloads": [{"id": "w", "requests_per_s": 4, "buckets": [(1000, 100, 0.5), (8000, 100, 0.5)],
                   "slo": {"min_output_tokens_per_s": 50}}],
    "pools": [{"id": "a-od", "accelerator": "a", "kind": "on_demand", "max_chips": 64, "price_per_chip_hour": 2.0},
              {"id": "b-od", "accelerator": "b", "kind": "on_demand", "max_chips": 64, "price_per_chip_hour": 3.0}],
    "profiles": [
        ("frontier", "a", 1, 1000, 100, 1, 60, 0.5), ("frontier", "a", 1, 8000, 100, 0.5, 55, 1.0),
        ("frontier", "b", 2, 1000, 100, 2, 120, 0.3), ("frontier", "b", 2, 8000, 100, 1, 100, 0.6),
        ("distilled", "a", 1, 1000, 100, 4, 200, 0.1), ("distilled", "a", 1, 8000, 100, 2, 180, 0.2),
    ],
}


def _diagnose(tmp_path, **changes):
    spec = {**BASE, **changes}
    result = solve_scenario(write_scenario(tmp_path, spec), baselines=False)
    assert result.plan["status"] == "infeasible", result.plan["status"]
    assert result.exit_code == 2
    return result.plan["diagnosis"]


def _workload(**fields):
    return [{**BASE["workloads"][0], **fields}]


def test_base_is_feasible(tmp_path):
    assert solve_scenario(write_scenario(tmp_path, BASE)).plan["status"] == "optimal"


def _only(findings, kind):
    """Every finding is of `kind`: the one constraint that binds, and nothing else blamed."""
    assert {f["kind"] for f in findings} == {kind}, [(f["kind"], f["message"]) for f in findings]
    return findings


def test_quality_floor_binds_when_the_model_that_meets_it_has_no_operating_point(tmp_path):
    # oracle (q 95) meets the floor but has no profile rows; the deployable models fall short
    models = [*BASE["models"], {"id": "oracle", "quality": {"q": 95}}]
    findings = _only(_diagnose(tmp_path, models=models, workloads=_workload(quality={"metric": "q", "min": 85})),
                     "quality_floor")
    assert [f["bucket"] for f in findings] == [0, 1]
    for finding in findings:
        assert "q 80 < min 85" in finding["why"]["frontier on a x1"]
        assert "q 60 < min 85" in finding["why"]["distilled on a x1"]
        assert "3 deployment(s) not allowed or below the quality floor" in finding["message"]
        assert "oracle may serve it but has no operating point" in finding["message"]
        assert "speed" not in finding["message"] and "TTFT" not in finding["message"]


def test_a_floor_no_model_reaches_is_bad_input(tmp_path):
    with pytest.raises(InputError) as caught:
        solve_scenario(write_scenario(tmp_path, {**BASE, "workloads": _workload(quality={"metric": "q", "min": 90})}))
    assert "workloads[0].quality.min: 90 is above every allowed model's q score (best: frontier at 80)" in str(
        caught.value)


def test_context_binds_when_no_operating_point_covers_the_bucket(tmp_path):
    findings = _only(_diagnose(tmp_path, workloads=_workload(buckets=[(1000, 100, 0.5), (100000, 100, 0.5)])),
                     "context")
    assert [f["bucket"] for f in findings] == [1]
    why = findings[0]["why"]
    assert "no operating point covers 100,000 input tokens (longest served: 8,000)" in why["frontier on a x1"]
    assert "context 100,100 tokens > distilled max_context_tokens 32,000" in why["distilled on a x1"]
    assert findings[0]["message"].startswith("w bucket 1 (100,000 in / 100 out) cannot be served by any deployment: "
                                             "3 deployment(s) cannot hold its context")


def test_context_binds_on_the_model_limit_even_where_a_profile_row_covers(tmp_path):
    # distilled has an operating point at 100k tokens, but the model accepts 32k: the index sets drop the arc
    profiles = [*BASE["profiles"], ("distilled", "a", 1, 100000, 100, 1, 100, 1.0)]
    findings = _only(_diagnose(tmp_path, profiles=profiles,
                               workloads=_workload(buckets=[(1000, 100, 0.5), (100000, 100, 0.5)])), "context")
    assert "context 100,100 tokens > distilled max_context_tokens 32,000" in findings[0]["why"]["distilled on a x1"]


def test_per_user_speed_binds(tmp_path):
    findings = _only(_diagnose(tmp_path, workloads=_workload(slo={"min_output_tokens_per_s": 500})), "slo")
    why = findings[0]["why"]
    assert "best per-user speed 200 tok/s < asked 500" in why["distilled on a x1"]
    assert "best per-user speed 120 tok/s < asked 500" in why["frontier on b x2"]
    assert findings[0]["slo_binding"] == ["min_output_tokens_per_s"]
    assert findings[0]["fastest_available_tokens_per_s"] == 200
    assert findings[0]["message"].endswith(
        "cannot be served by any deployment: the fastest per-user speed any deployment reaches is 200 tok/s "
        "(distilled on a x1), asked 500")


def test_ttft_binds_and_the_headline_says_ttft_not_speed(tmp_path):
    # every deployment is fast enough per user (>= 55 tok/s, asked 50): only the 50 ms TTFT rules them out
    findings = _only(_diagnose(tmp_path, workloads=_workload(
        slo={"min_output_tokens_per_s": 50, "max_ttft_s": 0.05})), "slo")
    assert [f["slo_binding"] for f in findings] == [["max_ttft_s"], ["max_ttft_s"]]
    assert findings[0]["message"].endswith(
        "the shortest TTFT any deployment reaches is 0.1 s (distilled on a x1), asked 0.05 s")
    assert findings[1]["message"].endswith(
        "the shortest TTFT any deployment reaches is 0.2 s (distilled on a x1), asked 0.05 s")
    for finding in findings:
        assert "speed" not in finding["message"] and "fastest_available_tokens_per_s" not in finding


def test_end_to_end_binds(tmp_path):
    # e2e = ttft + 100 / speed: distilled 0.1 + 0.5 = 0.6 s is the shortest of bucket 0, asked 0.5 s
    findings = _only(_diagnose(tmp_path, workloads=_workload(slo={"max_e2e_s": 0.5})), "slo")
    assert [f["slo_binding"] for f in findings] == [["max_e2e_s"], ["max_e2e_s"]]
    assert findings[0]["message"].endswith(
        "the shortest end-to-end time any deployment reaches is 0.6 s (distilled on a x1), asked 0.5 s")
    assert "best end-to-end 0.60 s > asked 0.5 s" in findings[0]["why"]["distilled on a x1"]


def test_replica_that_fits_no_pool_binds_as_supply(tmp_path):
    # frontier's operating points only; a's pool has no chip and b's one chip cannot hold a 2-chip replica
    pools = [dict(BASE["pools"][0], max_chips=0), dict(BASE["pools"][1], max_chips=1)]
    profiles = [row for row in BASE["profiles"] if row[0] == "frontier"]
    findings = _only(_diagnose(tmp_path, pools=pools, profiles=profiles), "supply")
    stuck = [f for f in findings if "bucket" in f]
    assert [f["bucket"] for f in stuck] == [0, 1]
    assert "2 deployment(s) does not fit in any pool" in stuck[0]["message"]
    assert "no pool of b holds a 2-chip replica (largest pool: 1 chips)" in stuck[0]["why"]["frontier on b x2"]


@pytest.mark.parametrize("max_shapes", [None, 1])
def test_supply_caps_too_small_say_how_many_chips(tmp_path, max_shapes):
    # distilled on a: 2 / 4 + 2 / 2 = 1.5 replicas -> 2 chips; a has 1, b none
    pools = [dict(BASE["pools"][0], max_chips=1), dict(BASE["pools"][1], max_chips=0)]
    findings = _only(_diagnose(tmp_path, pools=pools, max_shapes=max_shapes), "supply")
    assert [(f["pool"], f["chips_needed"], f["chips_available"], f["relax_by_chips"]) for f in findings] == [
        ("a-od", 2, 1, 1)]
    assert findings[0]["message"] == ("pool a-od (a): the cheapest plan needs 2 chips, max_chips is 1; raise it by 1 "
                                      "or add capacity elsewhere")
    relaxed = [dict(pools[0], max_chips=2), pools[1]]
    fixed = solve_scenario(write_scenario(tmp_path / "fixed", {**BASE, "pools": relaxed, "max_shapes": max_shapes}))
    assert fixed.plan["status"] == "optimal"


def test_unreachable_mean_quality_says_by_how_much(tmp_path):
    # at 110 tok/s only frontier on b serves bucket 0 and nothing but distilled serves bucket 1:
    # the best mean is 0.5 x 80 + 0.5 x 60 = 70 against a floor of 75 (which frontier alone would reach)
    findings = _only(_diagnose(tmp_path, workloads=_workload(
        slo={"min_output_tokens_per_s": 110}, quality={"metric": "q", "min_mean": 75})), "quality_mean")
    assert len(findings) == 1
    assert findings[0]["reachable_mean"] == pytest.approx(70.0, abs=1e-6)
    assert findings[0]["relax_by"] == pytest.approx(5.0, abs=1e-6)
    assert findings[0]["message"] == ("w: the best reachable mean quality is 70, min_mean is 75; lower min_mean by 5 "
                                      "or allow a better model where it fits")


def test_shape_limit_binds_as_unserved_traffic(tmp_path):
    # one replica size per (model, accelerator): 1-chip replicas serve only the short bucket, 2-chip only the long
    spec = {"accelerators": ["a"], "models": [{"id": "m"}], "max_shapes": 1,
            "workloads": [{"id": "w", "requests_per_s": 2, "buckets": [(1000, 100, 0.5), (8000, 100, 0.5)]}],
            "pools": [BASE["pools"][0]],
            "profiles": [("m", "a", 1, 1000, 100, 1), ("m", "a", 1, 8000, 100, 0),
                         ("m", "a", 2, 1000, 100, 0), ("m", "a", 2, 8000, 100, 1)]}
    findings = _only(_diagnose(tmp_path, **spec), "unserved")
    assert len(findings) == 1 and findings[0]["share"] == pytest.approx(1.0)
    assert "100.0% of must-serve traffic cannot be placed within max_shapes_per_model_accelerator 1" in (
        findings[0]["message"])


def test_no_operating_point_anywhere(tmp_path):
    findings = _only(_diagnose(tmp_path, profiles=[]), "no_operating_point")
    assert [f["bucket"] for f in findings] == [0, 1]
    assert "no model has an operating point (profile row) on any accelerator with a pool" in findings[0]["message"]
    assert findings[0]["why"] == {
        "a": "no model has an operating point (profile rows) on this accelerator",
        "b": "no model has an operating point (profile rows) on this accelerator"}


def test_several_reasons_are_each_named(tmp_path):
    # the 100k bucket: distilled is below the floor, frontier has no operating point that long
    findings = _diagnose(tmp_path, workloads=_workload(buckets=[(1000, 100, 0.5), (100000, 100, 0.5)],
                                                      quality={"metric": "q", "min": 70}))
    assert [(f["kind"], f["kinds"]) for f in findings] == [("several", ["context", "quality_floor"])]
    message = findings[0]["message"]
    assert "2 deployment(s) cannot hold its context (no operating point covers 100,000 input tokens" in message
    assert "1 deployment(s) not allowed or below the quality floor (model distilled: q 60 < min 70)" in message


def test_diagnosis_is_in_summary(tmp_path):
    result = solve_scenario(write_scenario(tmp_path, {**BASE, "workloads": _workload(
        slo={"min_output_tokens_per_s": 500})}), baselines=False)
    assert "## Diagnosis" in result.summary and "asked 500" in result.summary

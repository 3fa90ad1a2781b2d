"""Infeasibility diagnosis: which bucket cannot be served, why, with numbers, and how much to relax."""

from __future__ import annotations

import pytest

from placement.api import solve_scenario
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


def test_no_model_meets_the_quality_floor(tmp_path):
    findings = _diagnose(tmp_path, workloads=_workload(quality={"metric": "q", "min": 90}))
    assert {f["kind"] for f in findings} == {"quality_floor"}
    for finding in findings:
        assert "q 80 < min 90" in finding["why"]["frontier on a x1"]
        assert "q 60 < min 90" in finding["why"]["distilled on a x1"]


def test_no_deployment_holds_the_context(tmp_path):
    findings = _diagnose(tmp_path, workloads=_workload(buckets=[(1000, 100, 0.5), (100000, 100, 0.5)]))
    stuck = [f for f in findings if f.get("bucket") == 1]
    assert stuck and stuck[0]["kind"] == "context"
    why = stuck[0]["why"]
    assert "no operating point covers 100,000 input tokens (longest served: 8,000)" in why["frontier on a x1"]
    assert "context 100,100 tokens > distilled max_context_tokens 32,000" in why["distilled on a x1"]


def test_no_operating_point_meets_the_slo(tmp_path):
    findings = _diagnose(tmp_path, workloads=_workload(slo={"min_output_tokens_per_s": 500}))
    assert {f["kind"] for f in findings} == {"slo"}
    why = findings[0]["why"]
    assert "best per-user speed 200 tok/s < asked 500" in why["distilled on a x1"]
    assert "best per-user speed 120 tok/s < asked 500" in why["frontier on b x2"]
    assert findings[0]["fastest_available_tokens_per_s"] == 200
    assert "fastest per-user speed any deployment reaches is 200 tok/s (distilled on a x1)" in findings[0]["message"]


def test_supply_caps_too_small_say_how_many_chips(tmp_path):
    pools = [dict(BASE["pools"][0], max_chips=1), dict(BASE["pools"][1], max_chips=0)]
    findings = _diagnose(tmp_path, pools=pools)
    supply = [f for f in findings if f["kind"] == "supply"]
    assert len(supply) == 1
    finding = supply[0]
    assert finding["chips_available"] < finding["chips_needed"]
    relaxed = [dict(p) for p in pools]
    for pool in relaxed:
        if pool["id"] == finding["pool"]:
            pool["max_chips"] += int(finding["relax_by_chips"])
    fixed = solve_scenario(write_scenario(tmp_path / "fixed", {**BASE, "pools": relaxed}))
    assert fixed.plan["status"] == "optimal"


def test_unreachable_mean_quality_says_by_how_much(tmp_path):
    findings = _diagnose(tmp_path, workloads=_workload(quality={"metric": "q", "min_mean": 85}))
    mean = [f for f in findings if f["kind"] == "quality_mean"]
    assert len(mean) == 1
    assert mean[0]["reachable_mean"] == pytest.approx(80.0, abs=1e-6)
    assert mean[0]["relax_by"] == pytest.approx(5.0, abs=1e-6)


def test_diagnosis_is_in_summary(tmp_path):
    result = solve_scenario(write_scenario(tmp_path, {**BASE, "workloads": _workload(
        slo={"min_output_tokens_per_s": 500})}), baselines=False)
    assert "## Diagnosis" in result.summary and "asked 500" in result.summary

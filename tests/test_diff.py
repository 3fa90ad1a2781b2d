"""`placement diff`: cost by pool, replicas added and removed, traffic moved, against hand counts."""

from __future__ import annotations

import json

import pytest

from placement.cli import main
from placement.diff import diff_plans
from tests.helpers import write_scenario

# 20 req/s, 10 per 1-chip replica on a or on b: two replicas on the cheaper accelerator.
SPEC = {"accelerators": ["a", "b"], "models": [{"id": "m"}],
        "workloads": [{"id": "w", "requests_per_s": 20, "buckets": [(1000, 100, 1.0)]}],
        "pools": [{"id": "od-a", "accelerator": "a", "kind": "on_demand", "max_chips": 10, "price_per_chip_hour": 1.0},
                  {"id": "od-b", "accelerator": "b", "kind": "on_demand", "max_chips": 10, "price_per_chip_hour": 2.0}],
        "profiles": [("m", "a", 1, 1000, 100, 10), ("m", "b", 1, 1000, 100, 10)]}


@pytest.fixture
def plans(tmp_path):
    base = write_scenario(tmp_path / "a", SPEC)
    dearer_a = {**SPEC, "pools": [{**SPEC["pools"][0], "price_per_chip_hour": 3.0}, SPEC["pools"][1]]}
    other = write_scenario(tmp_path / "b", dearer_a)
    assert main(["solve", str(base), "--out", str(tmp_path / "plan-a"), "--no-baselines"]) == 0
    assert main(["solve", str(other), "--out", str(tmp_path / "plan-b"), "--no-baselines"]) == 0
    return tmp_path / "plan-a", tmp_path / "plan-b"


def test_diff_counts(plans):
    a, b = (json.loads((p / "plan.json").read_text()) for p in plans)
    d = diff_plans(a, b)
    assert d["cost_per_hour"] == {"a": 2.0, "b": 4.0, "change": 2.0}
    assert [(p["pool"], p["per_hour_change"], p["chips_change"]) for p in d["pools"]] == [("od-a", -2.0, -2),
                                                                                          ("od-b", 4.0, 2)]
    assert [(r["pool"], r["change"]) for r in d["replicas_added"]] == [("od-b", 2)]
    assert [(r["pool"], r["change"]) for r in d["replicas_removed"]] == [("od-a", -2)]
    assert d["traffic_moved_requests_per_s"] == pytest.approx(20.0)
    assert sorted((m["accelerator"], m["change"]) for m in d["traffic_moved"]) == [("a", -20.0), ("b", 20.0)]
    same = diff_plans(a, a)
    assert same["replicas_added"] == same["replicas_removed"] == same["traffic_moved"] == []
    assert same["traffic_moved_requests_per_s"] == 0.0


def test_demand_growth_is_not_traffic_moved(tmp_path):
    more = {**SPEC, "workloads": [{**SPEC["workloads"][0], "requests_per_s": 40}]}
    for name, spec in (("a", SPEC), ("b", more)):
        main(["solve", str(write_scenario(tmp_path / name, spec)), "--out", str(tmp_path / f"p{name}"), "--no-baselines"])
    a, b = (json.loads((tmp_path / p / "plan.json").read_text()) for p in ("pa", "pb"))
    d = diff_plans(a, b)
    assert d["traffic_moved_requests_per_s"] == 0.0
    assert [(m["accelerator"], m["change"]) for m in d["traffic_moved"]] == [("a", 20.0)]
    assert [(r["pool"], r["change"]) for r in d["replicas_added"]] == [("od-a", 2)]


def test_cli_markdown_json_and_bad_input(plans, tmp_path, capsys):
    a, b = plans
    capsys.readouterr()
    assert main(["diff", str(a), str(b)]) == 0
    text = capsys.readouterr().out
    assert "**Cost per hour:** 2.00 -> 4.00 (+2.00)" in text
    assert "## Replicas added" in text and "| m | b | 1 | od-b | 0 | 2 | +2 |" in text
    assert main(["diff", str(a / "plan.json"), str(b), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["traffic_moved_requests_per_s"] == 20.0
    assert main(["diff", str(a), str(tmp_path / "missing")]) == 3
    (tmp_path / "junk.json").write_text("[1, 2")
    assert main(["diff", str(a), str(tmp_path / "junk.json")]) == 3
    assert "not a readable plan.json" in capsys.readouterr().err


def test_rows_with_periods_are_matched_per_period():
    def plan(replicas_by_period):
        return {"status": "optimal", "scenario": {"name": "p"}, "cost": {"per_hour": 1.0},
                "pools": [{"pool": "od", "period": k, "chips_used": n, "per_hour": n} for k, n in
                          enumerate(replicas_by_period)],
                "replicas": [{"model": "m", "accelerator": "a", "chips_per_replica": 1, "pool": "od", "period": k,
                              "replicas": n} for k, n in enumerate(replicas_by_period)],
                "routing": [], "unserved": []}

    d = diff_plans(plan([2, 3]), plan([2, 5]))
    assert [(r["period"], r["change"]) for r in d["replicas_added"]] == [(1, 2)]
    assert d["replicas_removed"] == []
    assert [(p["period"], p["chips_change"]) for p in d["pools"]] == [(0, 0), (1, 2)]

"""Periods, slices, contracts over time, the running fleet and churn: hand-computed optima.

Every case: one model `m` on one accelerator `g`, 1-chip replicas serving R = 1 req/s, so a rate of r
req/s needs r chips. Periods of 100 hours. Each expected value is worked out in the test's comment;
every plan also passes the independent checker (solve_scenario runs it).
"""

from __future__ import annotations

import copy

import pytest

from placement.api import solve_scenario
from tests.helpers import write_scenario

P2 = [{"id": "q1", "hours": 100}, {"id": "q2", "hours": 100}]


def _spec(pools, rate=10, periods=None, slices=None, **workload):
    spec = {
        "accelerators": ["g"],
        "models": [{"id": "m"}],
        "workloads": [{"id": "w", "requests_per_s": rate, "buckets": [(1000, 100, 1.0)], **workload}],
        "pools": pools,
        "profiles": [("m", "g", 1, 1000, 100, 1.0)],
    }
    extra = {}
    if periods:
        extra["periods"] = periods
    if slices:
        extra["slices"] = slices
    return spec, extra


def _solve(tmp_path, spec, extra=None, **options):
    path = write_scenario(tmp_path, spec)
    import yaml

    doc = yaml.safe_load(path.read_text())
    doc.update(extra or {})
    doc["options"].update(options)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = solve_scenario(path, baselines=False)
    assert result.violations == [], result.violations
    return result.plan


RESERVED = {"id": "res", "accelerator": "g", "kind": "reserved", "block_chips": 1, "max_chips": 100,
            "price_per_chip_hour": 1.0}
ON_DEMAND = {"id": "od", "accelerator": "g", "kind": "on_demand", "max_chips": 100, "price_per_chip_hour": 3.0}


def test_peak_makes_on_demand_cheaper_than_a_bigger_contract(tmp_path):
    # peak (20 h of 100) needs 20 chips, base (80 h) 10. k reserved chips cost 100 k; on-demand chips 3/h.
    # k <= 10: 100k + 3*20*(20-k) + 3*80*(10-k) = 3600 - 200k; k >= 10: 100k + 60(20-k) = 1200 + 40k.
    # Optimum k = 10: 1000 reserved + 600 on demand at the peak = 1600 (16/h). Sizing to the mean (12/s)
    # would say 1200, sizing to the peak with reserved alone 2000.
    spec, extra = _spec([RESERVED, ON_DEMAND], slices=[{"id": "peak", "weight": 0.2}, {"id": "base", "weight": 0.8}],
                        shape={"peak": 2.0, "base": 1.0})
    plan = _solve(tmp_path, spec, extra)
    assert plan["status"] == "optimal"
    assert plan["cost"]["total"] == pytest.approx(1600)
    assert plan["objective"]["value"] == pytest.approx(16.0)
    od = {(r["period"], r["slice"]): r["chips"] for r in plan["replicas"] if r["pool"] == "od"}
    assert od == {("p1", "peak"): 10}
    assert [c["blocks"] for c in plan["commitments"]] == [10]
    # the fleet of the period is its largest slice
    assert sum(r["replicas"] for r in plan["fleet"]) == 20


def test_lead_time_forces_on_demand_in_the_first_quarter(tmp_path):
    # lead 1: a block bought in q1 serves q2 only. q1 on demand 10 x 3 x 100 = 3000; q2 reserved 1000.
    spec, extra = _spec([{**RESERVED, "lead_periods": 1}, ON_DEMAND], periods=P2)
    plan = _solve(tmp_path, spec, extra)
    assert plan["cost"]["total"] == pytest.approx(4000)
    assert plan["commitments"] == [{"pool": "res", "bought_in": "q1", "blocks": 10, "chips": 10,
                                    "first_period": "q2", "last_period": "q2", "cost": pytest.approx(1000)}]
    by_period = {p["period"]: p["total"] for p in plan["cost"]["by_period"]}
    assert by_period == {"q1": pytest.approx(3000), "q2": pytest.approx(1000)}


def test_term_that_outlives_the_horizon_is_paid_in_full(tmp_path):
    # term 4 from q1: paid for 4 periods (q3, q4 beyond the horizon at q2's 100 h) = 10 x 1 x 400 = 4000,
    # against on demand at 1.8 for both quarters: 10 x 1.8 x 200 = 3600. Counting only the horizon would
    # have bought the contract (2000).
    spec, extra = _spec([{**RESERVED, "term_periods": 4}, {**ON_DEMAND, "price_per_chip_hour": 1.8}], periods=P2)
    plan = _solve(tmp_path, spec, extra)
    assert plan["cost"]["total"] == pytest.approx(3600)
    assert plan["commitments"] == []
    # cheaper on demand (2.5): the contract costs 4000 vs 5000; 2000 of it falls beyond the horizon
    spec["pools"][1]["price_per_chip_hour"] = 2.5
    plan = _solve(tmp_path / "b", spec, extra)
    assert plan["cost"]["total"] == pytest.approx(4000)
    assert plan["cost"]["beyond_horizon"] == pytest.approx(2000)
    assert plan["commitments"][0]["last_period"] == "q2+2"
    # the pool's bill holds its whole term; the periods' totals plus what falls beyond make the total
    assert [(r["pool"], r["total"]) for r in plan["cost"]["by_pool"]] == [("res", 4000.0), ("od", 0.0)]
    assert sum(r["total"] for r in plan["cost"]["by_period"]) + 2000 == pytest.approx(4000)
    from placement.checker import check_plan
    from placement.profiles import profile_table
    from placement.scenario import load_scenario

    loaded = load_scenario(tmp_path / "b" / "scenario.yaml")
    tampered = copy.deepcopy(plan)
    tampered["cost"]["by_pool"][0]["total"] = 2000.0   # the horizon's part only
    assert any("cost.by_pool res: total 2000.0 != 4000.0" in v
               for v in check_plan(loaded, tampered, profile_table(loaded)))


def test_signed_contracts_are_used_first_and_sunk(tmp_path):
    # 10 chips already signed through q1 (sunk): q1 costs nothing; q2 buys 10 chips for 1000.
    spec, extra = _spec([{**RESERVED, "committed": [{"blocks": 10, "through": "q1"}]}, ON_DEMAND], periods=P2)
    plan = _solve(tmp_path, spec, extra)
    assert plan["cost"]["total"] == pytest.approx(1000)
    assert plan["cost"]["fixed"] == pytest.approx(1000)      # 10 chips x 1.0 x 100 h, sunk
    assert [(c["bought_in"], c["blocks"]) for c in plan["commitments"]] == [("q2", 10)]
    assert not [r for r in plan["replicas"] if r["pool"] == "od"]


def test_deliveries_move_traffic_onto_prepaid_chips_later(tmp_path):
    # no wafers in q1 (on demand 3000), 10 delivered for q2 (free): 3000.
    spec, extra = _spec([{"id": "wafer", "accelerator": "g", "kind": "prepaid", "max_chips": {"q1": 0, "q2": 10}},
                         ON_DEMAND], periods=P2)
    plan = _solve(tmp_path, spec, extra)
    assert plan["cost"]["total"] == pytest.approx(3000)
    where = {(r["period"], r["pool"]): r["replicas"] for r in plan["replicas"]}
    assert where == {("q1", "od"): 10, ("q2", "wafer"): 10}


def test_spot_availability_binds_at_the_peak(tmp_path):
    # spot (1.0/h) has 50% of its 20 chips at the peak: peak = 10 spot + 10 on demand over 20 h = 200 + 600;
    # base = 10 spot over 80 h = 800. Total 1600.
    spot = {"id": "spot", "accelerator": "g", "kind": "spot", "max_chips": 20, "price_per_chip_hour": 1.0,
            "availability": {"peak": 0.5}}
    spec, extra = _spec([spot, ON_DEMAND], slices=[{"id": "peak", "weight": 0.2}, {"id": "base", "weight": 0.8}],
                        shape={"peak": 2.0})
    plan = _solve(tmp_path, spec, extra)
    assert plan["cost"]["total"] == pytest.approx(1600)
    used = {(r["pool"], r["slice"]): r["chips"] for r in plan["replicas"]}
    assert used == {("spot", "peak"): 10, ("od", "peak"): 10, ("spot", "base"): 10}


def test_churn_limit_changes_the_answer(tmp_path):
    # 10 replicas run on `old` (3.0/h); `new` costs 1.0/h. Free to move: all on new, 10 x 1 x 200 = 2000.
    # At most 10 chips moved per period (a move = 1 out + 1 in): 5 move in q1 (1500 + 500), 5 in q2 (1000).
    old = {**ON_DEMAND, "id": "old"}
    new = {**ON_DEMAND, "id": "new", "price_per_chip_hour": 1.0}
    spec, extra = _spec([old, new], periods=P2)
    extra["fleet"] = [{"model": "m", "accelerator": "g", "chips_per_replica": 1, "pool": "old", "replicas": 10}]
    free = _solve(tmp_path / "free", spec, extra)
    assert free["cost"]["total"] == pytest.approx(2000)
    limited = _solve(tmp_path / "limited", spec, extra, max_churn_chips=10)
    assert limited["cost"]["total"] == pytest.approx(3000)
    assert [c["chips_moved"] for c in limited["cost"]["churn"]] == [10, 10]
    priced = _solve(tmp_path / "priced", spec, extra, churn_cost_per_chip=60.0)
    # moving one replica costs 2 x 60 = 120 and saves (3 - 1) x 100 per remaining quarter: in q1 it saves 400
    assert priced["cost"]["total"] == pytest.approx(2000 + 20 * 60)


def _demand(rates):
    return [{"workload": "w", "period": f"q{i + 1}", "slice": "all", "requests_per_s": r} for i, r in enumerate(rates)]


def test_churn_limit_may_keep_rented_replicas_running(tmp_path):
    # 5 on-demand replicas run; q1 needs 3, q2 needs 4; at most 1 chip moved per period. Dropping to 3 in
    # q1 moves 2: the only plans keep 4 running in q1 (moves 1), then 4 in q2: 8 replica-quarters x 300 = 2400.
    spec, extra = _spec([ON_DEMAND], periods=P2)
    extra["fleet"] = [{"model": "m", "accelerator": "g", "chips_per_replica": 1, "pool": "od", "replicas": 5}]
    extra["demand"] = _demand([3, 4])
    plan = _solve(tmp_path, spec, extra, max_churn_chips=1)
    assert plan["status"] == "optimal"
    assert plan["cost"]["total"] == pytest.approx(2400)
    assert [r["replicas"] for r in plan["fleet"]] == [4, 4]
    assert [c["chips_moved"] for c in plan["cost"]["churn"]] == [1, 0]
    # tampered: q1 runs (and pays for) the 3 replicas its load needs while its fleet still holds 4
    from placement.checker import check_plan
    from placement.profiles import profile_table
    from placement.scenario import load_scenario

    loaded = load_scenario(tmp_path / "scenario.yaml")
    table = profile_table(loaded)
    assert check_plan(loaded, plan, table) == []
    tampered = copy.deepcopy(plan)
    tampered["replicas"][0].update(replicas=3, chips=3)
    tampered["cost"]["total"] -= 300
    assert any("largest slice" in v for v in check_plan(loaded, tampered, table))


def test_churn_limit_keeps_a_rented_fleet_running_in_one_slice(tmp_path):
    # two half-weight slices; 5 on-demand replicas run; q1 needs 3 (peak) and 2 (base), q2 4 and 2; at most
    # 1 chip moved per period. The fleet goes 5 -> 4 -> 4, running in one slice of q1 beyond its need, the
    # other slices at their need: (4 + 2 + 4 + 2) replica-slices x 3.0 x 50 h = 1,800.
    spec, extra = _spec([ON_DEMAND], periods=P2, slices=[{"id": "peak", "weight": 0.5}, {"id": "base", "weight": 0.5}])
    extra["fleet"] = [{"model": "m", "accelerator": "g", "chips_per_replica": 1, "pool": "od", "replicas": 5}]
    extra["demand"] = [{"workload": "w", "period": t, "slice": s, "requests_per_s": r}
                       for t, s, r in (("q1", "peak", 3), ("q1", "base", 2), ("q2", "peak", 4), ("q2", "base", 2))]
    plan = _solve(tmp_path, spec, extra, max_churn_chips=1)
    assert plan["cost"]["total"] == pytest.approx(1800)
    assert [r["replicas"] for r in plan["fleet"]] == [4, 4]
    assert sorted(r["replicas"] for r in plan["replicas"] if r["period"] == "q1") == [2, 4]


def test_churn_cost_may_keep_an_idle_rented_replica(tmp_path):
    # 4 on-demand replicas run; q1, q2, q3 need 4, 3, 4. Releasing one in q2 and renting it back in q3 moves
    # 2 chips (400 at 200 a chip) to save one replica-quarter (300): keeping 4 throughout costs
    # 12 x 300 = 3600, against 11 x 300 + 400 = 3700.
    spec, extra = _spec([ON_DEMAND], periods=P2 + [{"id": "q3", "hours": 100}])
    extra["fleet"] = [{"model": "m", "accelerator": "g", "chips_per_replica": 1, "pool": "od", "replicas": 4}]
    extra["demand"] = _demand([4, 3, 4])
    plan = _solve(tmp_path, spec, extra, churn_cost_per_chip=200.0)
    assert plan["cost"]["total"] == pytest.approx(3600)
    assert [r["replicas"] for r in plan["replicas"]] == [4, 4, 4]


def test_growth_and_demand_table(tmp_path):
    # growth 2.0 in q2 doubles the on-demand chips: 10 x 3 x 100 + 20 x 3 x 100 = 9000
    spec, extra = _spec([ON_DEMAND], periods=P2, growth={"q2": 2.0})
    assert _solve(tmp_path / "g", spec, extra)["cost"]["total"] == pytest.approx(9000)
    # an explicit demand row replaces rate x growth x shape where it exists
    extra = {**extra, "demand": [{"workload": "w", "period": "q2", "slice": "all", "requests_per_s": 5}]}
    assert _solve(tmp_path / "d", spec, extra)["cost"]["total"] == pytest.approx(4500)


def test_single_period_single_slice_is_todays_plan(tmp_path):
    spec, extra = _spec([RESERVED, ON_DEMAND])
    plan = _solve(tmp_path, spec)
    explicit = _solve(tmp_path / "explicit", spec, {"periods": [{"id": "p1", "hours": 100}],
                                                    "slices": [{"id": "all", "weight": 1.0}]})
    assert plan["objective"]["value"] == pytest.approx(10.0) == explicit["objective"]["value"]
    for key in ("replicas", "routing", "pools"):
        assert plan[key] == explicit[key]


def test_checker_catches_a_tampered_fleet_and_contract(tmp_path):
    from placement.checker import check_plan
    from placement.profiles import profile_table
    from placement.scenario import load_scenario

    spec, extra = _spec([{**RESERVED, "lead_periods": 1}, ON_DEMAND], periods=P2)
    plan = _solve(tmp_path, spec, extra)
    loaded = load_scenario(tmp_path / "scenario.yaml")
    table = profile_table(loaded)
    assert check_plan(loaded, plan, table) == []
    tampered = copy.deepcopy(plan)
    tampered["commitments"][0]["first_period"] = "q1"
    assert any("first_period" in v for v in check_plan(loaded, tampered, table))
    tampered = copy.deepcopy(plan)
    tampered["commitments"][0]["blocks"] = 5
    assert any("under active contracts" in v for v in check_plan(loaded, tampered, table))
    tampered = copy.deepcopy(plan)
    tampered["fleet"] = [dict(r, replicas=r["replicas"] - 1) for r in tampered["fleet"]]
    assert any("fleet of" in v for v in check_plan(loaded, tampered, table))
    tampered = copy.deepcopy(plan)
    tampered["cost"]["total"] += 1
    assert any("cost.total" in v for v in check_plan(loaded, tampered, table))


def test_slices_derived_from_a_load_curve_keep_each_peak_alone(tmp_path):
    # 8 hours: w peaks at hour 2 (rate 30), the rest is 10 or 2. Three slices: the peak hour alone (weight
    # 1/8, rate 30), then Ward clustering of the other seven: {10, 10, 10} and {2, 2, 2, 2}.
    # On demand at 3.0 per chip-hour over 100 hours: 30 x 12.5 + 10 x 37.5 + 2 x 50 = 850 chip-hours.
    rates = [10, 10, 30, 10, 2, 2, 2, 2]
    spec, extra = _spec([ON_DEMAND])
    extra["load_curve"] = [{"workload": "w", "hour": h, "requests_per_s": r} for h, r in enumerate(rates)]
    plan = _solve(tmp_path, spec, extra, slices={"count": 3})
    slices = {s["id"]: (s["weight"], s["hours"]) for s in plan["slices"]}
    assert slices == {"peak-w": (0.125, [2]), "c1": (0.375, [0, 1, 3]), "c2": (0.5, [4, 5, 6, 7])}
    assert plan["cost"]["total"] == pytest.approx(3.0 * 850)
    # requests over the period are kept: the slices' mean rate is the curve's
    assert sum(w * r for w, r in ((0.125, 30), (0.375, 10), (0.5, 2))) == pytest.approx(sum(rates) / 8)


def test_too_few_slices_for_the_peaks_is_bad_input(tmp_path):
    from placement.errors import InputError

    spec, extra = _spec([ON_DEMAND])
    extra["load_curve"] = [{"workload": "w", "hour": h, "requests_per_s": r} for h, r in enumerate([1, 5, 1])]
    with pytest.raises(InputError, match="options.slices.count"):
        _solve(tmp_path, spec, extra, slices={"count": 1})


def test_a_workload_keeps_its_own_headroom(tmp_path):
    # 10 req/s at R = 1: headroom 0.5 for this workload alone needs 20 replicas (60/h on demand at 3.0),
    # whatever the global headroom (0).
    spec, extra = _spec([ON_DEMAND], headroom=0.5)
    plan = _solve(tmp_path, spec, extra)
    assert plan["objective"]["value"] == pytest.approx(60.0)
    assert sum(r["replicas"] for r in plan["replicas"]) == 20


def test_spot_share_limit_and_its_check(tmp_path):
    # at most 30% of the running chips on spot (1.0/h), the rest on demand (3.0/h): 3 + 7 x 3 = 24 per hour
    from placement.checker import check_plan
    from placement.profiles import profile_table
    from placement.scenario import load_scenario

    spot = {"id": "spot", "accelerator": "g", "kind": "spot", "max_chips": 100, "price_per_chip_hour": 1.0}
    spec, extra = _spec([spot, ON_DEMAND])
    plan = _solve(tmp_path, spec, extra, max_spot_share=0.3)
    assert plan["objective"]["value"] == pytest.approx(24.0)
    loaded = load_scenario(tmp_path / "scenario.yaml")
    tampered = copy.deepcopy(plan)
    for row in tampered["replicas"]:
        if row["pool"] == "od":
            row["replicas"] = row["chips"] = 6
    tampered["replicas"] = [r if r["pool"] != "spot" else dict(r, replicas=4, chips=4) for r in tampered["replicas"]]
    assert any("max_spot_share" in v for v in check_plan(loaded, tampered, profile_table(loaded)))


def test_diagnosis_names_a_lead_time_that_binds(tmp_path):
    # 10 chips needed in both quarters; on demand capped at 4; a contract bought in q1 is live from q2
    # (lead 1) and none is signed: q1 cannot be served. The finding names the lead time and q1.
    spec, extra = _spec([{**RESERVED, "lead_periods": 1}, {**ON_DEMAND, "max_chips": 4}], periods=P2)
    plan = _solve(tmp_path, spec, extra)
    assert plan["status"] == "infeasible"
    lead = [f for f in plan["diagnosis"] if f.get("kind") == "lead_time"]
    assert lead and lead[0]["period"] == "q1" and lead[0]["lead_periods"] == 1
    assert "lead" in lead[0]["message"] and "q2" in lead[0]["message"]
    # without the lead time the same caps are enough: the finding is the lead time's, not the caps'
    spec, extra = _spec([RESERVED, {**ON_DEMAND, "max_chips": 4}], periods=P2)
    assert _solve(tmp_path / "no-lead", spec, extra)["status"] == "optimal"


def test_hours_beside_periods_is_noted_not_used(tmp_path):
    # `hours` (100, written by the helper) with periods is legal but unread: the plan says so, once
    spec, extra = _spec([ON_DEMAND], periods=P2)
    plan = _solve(tmp_path, spec, extra)
    assert "hours: 100 is not used: with periods, each period has its own hours" in plan["notes"]
    assert not any(n.startswith("hours:") for n in _solve(tmp_path / "one", spec)["notes"])


def test_headline_per_hour_agrees_with_the_horizon_total(tmp_path, capsys):
    # the churn-priced case above: 3,600 over 300 hours is 12.00 an hour, churn included (the pools alone
    # are 12.00 too); raise the churn price so keeping the idle replica is the cheaper plan no longer:
    # 11 x 300 + 2 x 100 = 3,500 over 300 hours = 11.67/h, while the pools alone run 11.00/h
    import yaml

    from placement.cli import main

    spec, extra = _spec([ON_DEMAND], periods=P2 + [{"id": "q3", "hours": 100}])
    extra["fleet"] = [{"model": "m", "accelerator": "g", "chips_per_replica": 1, "pool": "od", "replicas": 4}]
    extra["demand"] = _demand([4, 3, 4])
    plan = _solve(tmp_path, spec, extra, churn_cost_per_chip=100.0)
    assert plan["cost"]["total"] == pytest.approx(3500)
    assert plan["objective"]["value"] == pytest.approx(3500 / 300) != pytest.approx(plan["cost"]["per_hour"])
    capsys.readouterr()
    assert main(["solve", str(tmp_path / "scenario.yaml"), "--out", str(tmp_path / "plan")]) == 0
    assert "optimal: 11.67 USD/h (3,500 over 3 periods)" in capsys.readouterr().err
    assert yaml.safe_load((tmp_path / "plan" / "plan.json").read_text())["cost"]["total"] == pytest.approx(3500)


def test_churn_diagnosis_names_fleet_rows_that_serve_nothing(tmp_path):
    # the running fleet is 3 replicas of m on 2 g chips: no operating point exists for that size, so they
    # serve nothing; q1 needs 2 replicas of 1 chip, so at least 2 chips move, and the limit is 1
    spec, extra = _spec([ON_DEMAND], rate=2, periods=P2)
    extra["fleet"] = [{"model": "m", "accelerator": "g", "chips_per_replica": 2, "pool": "od", "replicas": 3}]
    plan = _solve(tmp_path, spec, extra, max_churn_chips=1)
    assert plan["status"] == "infeasible"
    [churn] = [f for f in plan["diagnosis"] if f["kind"] == "churn" and f["period"] == "q1"]
    assert "The running fleet's m/g x2 in od (3 replicas) serve no workload here" in churn["message"]

"""What capacity is worth, against hand computation.

One model on one accelerator, replicas of 2 chips serving 10 req/s each; 30 req/s need 3 replicas.
"""

from __future__ import annotations

import json

import pytest

from placement.scenario import load_scenario
from placement.values import capacity_values
from tests.helpers import write_scenario


def _spec(pools):
    return {"accelerators": ["a"], "models": [{"id": "m"}],
            "workloads": [{"id": "w", "requests_per_s": 30, "buckets": [(1000, 100, 1.0)]}],
            "pools": pools, "profiles": [("m", "a", 2, 1000, 100, 10)]}


def _od(pool_id, price, cap=100):
    return {"id": pool_id, "accelerator": "a", "kind": "on_demand", "max_chips": cap, "price_per_chip_hour": price}


def _rows(tmp_path, pools):
    rows, notes = capacity_values(load_scenario(write_scenario(tmp_path, _spec(pools))))
    return {r["pool"]: r for r in rows}, notes


def test_one_more_block_saves_one_on_demand_replica(tmp_path):
    # base: 1 replica in the 2-chip reserved block (2 x 1.0) + 2 on demand (4 chips x 3.0) = 14.
    # +1 block: 2 replicas reserved (4.0) + 1 on demand (6.0) = 10: one on-demand replica (6.0) saved,
    # one block (2.0) paid. -1 block: 3 on demand = 18.
    rows, notes = _rows(tmp_path, [{"id": "res", "accelerator": "a", "kind": "reserved", "block_chips": 2,
                                    "max_chips": 2, "price_per_chip_hour": 1.0}, _od("od", 3.0)])
    res = rows["res"]
    assert res["step_chips"] == 2 and res["period"] is None
    assert res["plus_per_hour"] == pytest.approx(6.0 - 2.0)
    assert res["minus_per_hour"] == pytest.approx(18.0 - 14.0)
    # the LP relaxation: a chip more under contract (1.0/h) replaces a chip on demand (3.0/h): worth 2.0
    assert res["lp_dual_per_chip_hour"] == pytest.approx(2.0) and any("lp_dual" in n for n in notes)
    assert rows["od"]["lp_dual_per_chip_hour"] == pytest.approx(0.0)
    # the on-demand pool has room to spare: a replica more or less changes nothing
    assert rows["od"]["step_chips"] == 2
    assert rows["od"]["plus_per_hour"] == 0.0 and rows["od"]["minus_per_hour"] == 0.0


def test_prepaid_replica_saves_exactly_one_on_demand_replica(tmp_path):
    # base: 1 free replica + 2 on demand (12). One replica's chips more: 1 on demand (6): saves 6.0.
    # The on-demand pool is capped at 4 chips: without the prepaid replica nothing fits (minus: null),
    # and one replica fewer on demand is infeasible too.
    rows, _ = _rows(tmp_path, [{"id": "pre", "accelerator": "a", "kind": "prepaid", "max_chips": 2},
                               _od("od", 3.0, cap=4)])
    assert rows["pre"]["step_chips"] == 2
    assert rows["pre"]["plus_per_hour"] == pytest.approx(6.0)
    assert rows["pre"]["minus_per_hour"] is None
    assert rows["od"]["minus_per_hour"] is None
    assert "break_even_price" not in rows["pre"]  # no price to break even on


def test_break_even_prices(tmp_path):
    # reserved 1.0 (one 2-chip block), on demand 3.0, a dearer on-demand pool at 5.0 unused.
    # res stops being used at 3.0 (its block costs what an on-demand replica does);
    # od stops at 5.0 (the dearer pool takes over); od2 starts below 3.0.
    rows, _ = _rows(tmp_path, [{"id": "res", "accelerator": "a", "kind": "reserved", "block_chips": 2,
                                "max_chips": 2, "price_per_chip_hour": 1.0}, _od("od", 3.0), _od("od2", 5.0)])
    assert rows["res"]["break_even_price"] == pytest.approx(3.0)
    assert rows["od"]["break_even_price"] == pytest.approx(5.0)
    assert rows["od2"]["break_even_price"] == pytest.approx(3.0)


def test_break_even_through_two_breakpoints(tmp_path):
    # x (price p, room for all 3 replicas), od2 (5.0, one replica at most), od3 (7.0, any number).
    # A replica costs 2p on x, 10 on od2, 14 on od3. p < 5: x takes 3; 5 < p < 7: x takes 2 and od2
    # one; p > 7: x takes none (10 + 28 = 38). So x leaves the plan at 7.0; the search passes the
    # breakpoint at 5.0 on the way (from p = 1: 38/6 = 6.33, where x still holds 2 replicas, then 7.0).
    pools = [_od("x", 1.0), _od("od2", 5.0, cap=2), _od("od3", 7.0)]
    rows, _ = _rows(tmp_path, pools)
    assert rows["x"]["break_even_price"] == pytest.approx(7.0)
    from placement.api import solve_scenario
    from placement.whatif import edit

    base = load_scenario(write_scenario(tmp_path / "check", _spec(pools)))
    for price, chips in ((4.9, 6), (6.33, 4), (7.1, 0)):
        plan = solve_scenario(edit(base, {"pools[x].price_per_chip_hour": price}), baselines=False).plan
        assert next(p for p in plan["pools"] if p["pool"] == "x")["chips_used"] == chips


def test_cli_values_adds_capacity_values(tmp_path):
    from placement.cli import main

    path = write_scenario(tmp_path, _spec([{"id": "res", "accelerator": "a", "kind": "reserved", "block_chips": 2,
                                            "max_chips": 2, "price_per_chip_hour": 1.0}, _od("od", 3.0)]))
    assert main(["solve", str(path), "--out", str(tmp_path / "plan"), "--values"]) == 0
    plan = json.loads((tmp_path / "plan" / "plan.json").read_text())
    fields = {"pool", "period", "step_chips", "plus_per_hour", "minus_per_hour", "lp_dual_per_chip_hour"}
    assert [r["pool"] for r in plan["capacity_values"]] == ["res", "od"]
    assert all(fields <= set(r) for r in plan["capacity_values"])
    assert all("break_even_price" in r for r in plan["capacity_values"])


def test_break_even_over_periods_counts_every_periods_chip_hours(tmp_path):
    # Two periods of 100 h; 10 req/s in q1 (1 replica), 30 in q2 (3). Pools: x (price p), od2 (5.0, one
    # replica at most), od3 (7.0). Per hour of the horizon: p < 5: x takes all, 2p x (1 + 3) x 100 / 200 = 4p;
    # 5 < p < 7: od2 takes one replica in each period, x two in q2: (10 + 4p + 10) x 100 / 200 = 10 + 2p;
    # p > 7: (10 + 10 + 28) / 2 = 24. x leaves the plan where 10 + 2p = 24: p = 7.0. The search from p = 1
    # (slope 4) lands on 6, where the plan bills x only in q2 (slope 2), then on 7: a slope read from one
    # period's chips would miss both steps.
    spec = _spec([_od("x", 1.0), _od("od2", 5.0, cap=2), _od("od3", 7.0)])
    spec["workloads"][0].update(requests_per_s=10, growth={"q1": 1.0, "q2": 3.0})
    spec["extra"] = {"periods": [{"id": "q1", "hours": 100}, {"id": "q2", "hours": 100}]}
    rows, _ = capacity_values(load_scenario(write_scenario(tmp_path, spec)))
    x = {r["period"]: r for r in rows if r["pool"] == "x"}
    prices = [r["break_even_price"] for r in x.values() if r.get("break_even_price") is not None]
    assert prices and prices == pytest.approx([7.0] * len(prices))

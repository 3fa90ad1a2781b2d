"""Frontiers: cost never falls as the floor rises; Pareto points and step prices by hand."""

from __future__ import annotations

import math

import pytest

from placement.errors import InputError
from placement.frontier import frontier_png, quality_frontier, speed_frontier
from placement.scenario import load_scenario
from tests.helpers import write_scenario

# 10 req/s. small (quality 50): one 1-chip replica serves all (10 req/s). big (quality 80): 5 req/s per
# 2-chip replica. Share s on big: mean quality 50 + 30 s. Costs (1.0/chip-h): floor 50 -> 1 (small);
# 60 and 65 -> 1 small + 1 big = 3 (s up to 0.5); 70 and 80 -> big alone, 2 replicas = 4 (s = 1 is cheaper
# than 1 small + 2 big = 5). The least-load tie rule routes the least big traffic the floor allows.
QUALITY = {"accelerators": ["a"], "models": [{"id": "small", "quality": {"q": 50}}, {"id": "big", "quality": {"q": 80}}],
           "workloads": [{"id": "w", "requests_per_s": 10, "buckets": [(1000, 100, 1.0)],
                          "quality": {"metric": "q", "min_mean": 50}}],
           "pools": [{"id": "od", "accelerator": "a", "kind": "on_demand", "max_chips": 100, "price_per_chip_hour": 1.0}],
           "profiles": [("small", "a", 1, 1000, 100, 10), ("big", "a", 2, 1000, 100, 5)]}

# one replica of 1, 2 or 4 chips, at 50, 150 or 300 tok/s per user: the SLO picks the size.
SPEED = {"accelerators": ["a"], "models": [{"id": "m"}],
         "workloads": [{"id": "w", "requests_per_s": 10, "buckets": [(1000, 100, 1.0)]}],
         "pools": [{"id": "od", "accelerator": "a", "kind": "on_demand", "max_chips": 100, "price_per_chip_hour": 1.0}],
         "profiles": [("m", "a", 1, 1000, 100, 10, 50), ("m", "a", 2, 1000, 100, 10, 150),
                      ("m", "a", 4, 1000, 100, 10, 300)]}


def _nondecreasing(costs):
    solved = [c for c in costs if c is not None and not math.isnan(c)]
    return all(b >= a - 1e-9 for a, b in zip(solved, solved[1:]))


def test_quality_frontier(tmp_path):
    loaded = load_scenario(write_scenario(tmp_path, QUALITY))
    frame = quality_frontier(loaded, [80, 50, 60, 65, 70])
    assert list(frame["floor"]) == [50, 60, 65, 70, 80]
    assert list(frame["cost_per_hour"]) == pytest.approx([1.0, 3.0, 3.0, 4.0, 4.0])
    assert list(frame["achieved"]) == pytest.approx([50, 60, 65, 80, 80])
    assert _nondecreasing(frame["cost_per_hour"])
    assert list(frame.loc[frame["pareto"], "floor"]) == [50, 65, 80]
    prices = frame.set_index("floor")["price_per_point"]
    assert prices[65] == pytest.approx(2 / 15) and prices[80] == pytest.approx(1 / 15)
    assert frontier_png(frame, "mean quality", "q")[:4] == b"\x89PNG"


def test_speed_frontier_with_an_infeasible_end(tmp_path):
    loaded = load_scenario(write_scenario(tmp_path, SPEED))
    frame = speed_frontier(loaded, [25, 50, 100, 150, 200, 300, 400], workloads=["w"])
    assert list(frame["cost_per_hour"][:6]) == pytest.approx([1, 1, 2, 2, 4, 4])
    assert frame["status"].iloc[-1] == "infeasible" and math.isnan(frame["cost_per_hour"].iloc[-1])
    assert _nondecreasing(frame["cost_per_hour"])
    assert list(frame.loc[frame["pareto"], "floor"]) == [50, 150, 300]
    prices = frame.set_index("floor")["price_per_100_tok_s"]
    assert prices[150] == pytest.approx(1.0) and prices[300] == pytest.approx(200 / 150)


def test_frontier_refuses_unknown_workloads(tmp_path):
    loaded = load_scenario(write_scenario(tmp_path, SPEED))
    with pytest.raises(InputError, match="Batch"):
        speed_frontier(loaded, [10], workloads=["Batch"])
    with pytest.raises(InputError, match="quality metric"):
        quality_frontier(loaded, [10])


def test_spot_frontier_prices_each_point_off_spot(tmp_path):
    # 10 req/s on 1-chip replicas (R = 1): spot at 1.0, on demand at 3.0 per chip-hour. Allowing a share
    # f of the chips on spot costs 10 f x 1.0 + 10 (1 - f) x 3.0 = 30 - 20 f per hour: each point off spot
    # (1% of the chips) costs 0.2 per hour, and cost never falls as the allowed share shrinks.
    from placement.frontier import spot_frontier
    from placement.scenario import load_scenario
    from tests.helpers import write_scenario

    spec = {"accelerators": ["a"], "models": [{"id": "m"}],
            "workloads": [{"id": "w", "requests_per_s": 10, "buckets": [(1000, 100, 1.0)]}],
            "pools": [{"id": "spot", "accelerator": "a", "kind": "spot", "max_chips": 100, "price_per_chip_hour": 1.0},
                      {"id": "od", "accelerator": "a", "kind": "on_demand", "max_chips": 100,
                       "price_per_chip_hour": 3.0}],
            "profiles": [("m", "a", 1, 1000, 100, 1.0)]}
    frame = spot_frontier(load_scenario(write_scenario(tmp_path, spec)), [0.0, 0.5, 1.0])
    assert frame["cost_per_hour"].tolist() == pytest.approx([30.0, 20.0, 10.0])
    assert frame["achieved"].tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert frame["pareto"].all()
    assert frame["price_per_point_off_spot"].dropna().tolist() == pytest.approx([0.2, 0.2])

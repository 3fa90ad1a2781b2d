"""The tie rule for routing (README, Determinism): with the solver's replicas and cost kept, serve the most
traffic, then use the least total replica load. Given incumbents that cost the same as the rule's
answer but break it, `least_load_routing` must return the rule's answer.
"""

from __future__ import annotations

import numpy as np
import pytest

from placement.api import solve_scenario
from placement.formulation import build_model
from placement.indexsets import build_index_sets
from placement.scenario import load_scenario
from placement.solve import least_load_routing, prepare, settings_from
from tests.helpers import write_scenario

# Free capacity: a prepaid pool of 4 chips. One model, two replica sizes: 1 chip serves 1 req/s,
# 2 chips serve 4 req/s. Short requests fit both; long ones only the 2-chip replicas.
TIE = {
    "accelerators": ["a"], "models": [{"id": "m"}],
    "workloads": [{"id": "short", "requests_per_s": 1, "buckets": [(1000, 100, 1.0)]},
                  {"id": "long", "requests_per_s": 1, "buckets": [(8000, 100, 1.0)]}],
    "pools": [{"id": "pre", "accelerator": "a", "kind": "prepaid", "max_chips": 4}],
    "profiles": [("m", "a", 1, 1000, 100, 1), ("m", "a", 1, 8000, 100, 0),
                 ("m", "a", 2, 1000, 100, 4), ("m", "a", 2, 8000, 100, 4)],
}


def _model(tmp_path, spec):
    loaded = load_scenario(write_scenario(tmp_path, spec))
    _, cells, candidates = prepare(loaded)
    sets = build_index_sets(loaded.scenario, cells, candidates)
    model = build_model(sets)
    return loaded, sets, model, model.arrays()


def _incumbent(model, sets, shares: dict[tuple[str, int], float], replicas: dict[int, int], shed=()):
    """A solution vector: shares by (workload, chips per replica), replicas by chips per replica."""
    x = np.zeros(model.num_variables)
    arcs = sets.arcs.assign(chips=sets.deployments["chips_per_replica"].to_numpy()[sets.arcs["deployment"]])
    for position, (workload, chips) in enumerate(zip(arcs["workload"], arcs["chips"])):
        x[model.variables["share"].columns[position]] = shares.get((workload, chips), 0.0)
    chips_of_placement = sets.deployments["chips_per_replica"].to_numpy()[sets.placements["deployment"]]
    for position, chips in enumerate(chips_of_placement):
        x[model.variables["replicas"].columns[position]] = replicas.get(chips, 0)
    for cell in shed:
        x[model.variables["unserved"].columns[cell]] = 1.0
    return x


def _shares(model, sets, x) -> dict[tuple[str, int], float]:
    chips = sets.deployments["chips_per_replica"].to_numpy()[sets.arcs["deployment"]]
    values = model.values("share", x).to_numpy()
    return {(w, int(c)): round(float(v), 6) for w, c, v in zip(sets.arcs["workload"], chips, values) if v > 1e-6}


def test_equal_cost_routings_take_the_least_replica_load(tmp_path):
    loaded, sets, model, arrays = _model(tmp_path, TIE)
    # both sizes have a free replica; the short bucket sits on the 1-chip one (load 1) although the
    # 2-chip replica, already there for the long bucket, has room for it at load 1/4
    x = _incumbent(model, sets, {("short", 1): 1.0, ("long", 2): 1.0}, {1: 1, 2: 1})
    assert arrays.cost @ x == 0.0
    tidied = least_load_routing(model, sets, arrays, x, settings_from(loaded.scenario))
    assert _shares(model, sets, tidied) == {("short", 2): 1.0, ("long", 2): 1.0}
    np.testing.assert_array_equal(tidied[arrays.integer], x[arrays.integer])  # replicas are the solver's


def test_free_capacity_serves_before_free_shedding(tmp_path):
    spec = {**TIE, "workloads": [{**TIE["workloads"][0], "must_serve": False, "unserved_cost_per_request": 0.0},
                                 TIE["workloads"][1]]}
    loaded, sets, model, arrays = _model(tmp_path, spec)
    # the short bucket is shed for free while the 2-chip replica has room for it
    x = _incumbent(model, sets, {("long", 2): 1.0}, {2: 1}, shed=[0])
    tidied = least_load_routing(model, sets, arrays, x, settings_from(loaded.scenario))
    assert _shares(model, sets, tidied) == {("short", 2): 1.0, ("long", 2): 1.0}
    assert model.values("unserved", tidied).tolist() == pytest.approx([0.0, 0.0], abs=1e-6)


def test_the_rule_never_raises_cost_or_moves_replicas(tmp_path):
    # on demand at 1.0 per chip: the incumbent's two replicas cost 3.0; serving both buckets on the
    # 2-chip replica is the least load, and the 1-chip replica stays (the rule fixes the integers)
    spec = {**TIE, "pools": [{"id": "od", "accelerator": "a", "kind": "on_demand", "max_chips": 4,
                              "price_per_chip_hour": 1.0}]}
    loaded, sets, model, arrays = _model(tmp_path, spec)
    x = _incumbent(model, sets, {("short", 1): 1.0, ("long", 2): 1.0}, {1: 1, 2: 1})
    tidied = least_load_routing(model, sets, arrays, x, settings_from(loaded.scenario))
    # the model prices the whole horizon (100 hours here): 3.0 per hour
    assert arrays.cost @ tidied == pytest.approx(arrays.cost @ x) == pytest.approx(3.0 * 100)
    assert _shares(model, sets, tidied) == {("short", 2): 1.0, ("long", 2): 1.0}


def test_a_solved_plan_follows_the_rule(tmp_path):
    # end to end: whatever the solver's routing, the plan uses the 2-chip replica for both buckets
    # (load 1/2), and the 1-chip replica, then idle, is trimmed
    result = solve_scenario(write_scenario(tmp_path, TIE), baselines=False)
    assert result.plan["status"] == "optimal" and result.violations == []
    assert [(r["workload"], r["chips_per_replica"], r["share"]) for r in result.plan["routing"]] == [
        ("short", 2, 1.0), ("long", 2, 1.0)]
    assert [(r["chips_per_replica"], r["replicas"]) for r in result.plan["replicas"]] == [(2, 1)]

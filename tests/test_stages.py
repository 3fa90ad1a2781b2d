"""Every stage of a solve on a mid-size instance runs and is timed, and the shortcuts the stages take give the
answers solving from scratch gives: the priced LP the whole LP's optimum, the tie-break LPs (which leave out
arcs whose deployment runs no replica) the same optima as over every arc, and each single-accelerator
baseline the cost of the scenario cut down to that accelerator's pools.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import solvers
from placement.api import solve_scenario
from placement.edits import edit_loaded
from placement.formulation import arc_load, build_model
from placement.indexsets import build_index_sets
from placement.scenario import load_scenario
from placement.solve import PRICING_MIN_COLUMNS, prepare, pricing_start, settings_from
from solvers.pricing import solve_lp_by_pricing
from tests.test_cli import run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_scale import write_instance  # noqa: E402


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    """400 workloads, about 53k variables: big enough for the priced LP, small enough to solve in seconds."""
    return write_instance(tmp_path_factory.mktemp("stages"), 400)


@pytest.fixture(scope="module")
def model(instance):
    loaded = load_scenario(instance)
    _, cells, candidates = prepare(loaded)
    sets = build_index_sets(loaded.scenario, cells, candidates)
    built = build_model(sets)
    return loaded, sets, built, built.arrays()


def test_every_stage_runs_and_is_timed(instance, tmp_path):
    out = tmp_path / "plan"
    done = run("solve", str(instance), "--out", str(out), "--time-limit", "60", "--gap", "0.01")
    assert done.returncode in (0, 1), done.stderr
    plan = json.loads((out / "plan.json").read_text())
    assert plan["solver"]["model"]["variables"] >= PRICING_MIN_COLUMNS   # the priced path ran
    stages = plan["solver"]["stages_s"]
    for stage in ("parse", "lookup", "build", "relaxation", "rounding", "tie_break", "extract", "check", "outputs"):
        assert stage in stages and stages[stage] >= 0, stage
    assert stages["parse"] > 0.01 and stages["outputs"] > 0.01            # measured, not placeholders
    assert any(n.startswith("rounded plan:") for n in plan["solver"]["notes"])


def test_the_priced_lp_is_the_whole_lp(model):
    loaded, sets, built, arrays = model
    lp = replace(settings_from(loaded.scenario), relax_integrality=True, time_limit_s=120)
    whole = solvers.solve(arrays.relaxed(), lp)
    priced = solve_lp_by_pricing(arrays.relaxed(), pricing_start(built, sets, arrays), lp)
    assert priced is not None and priced.active.sum() < 0.6 * arrays.num_variables
    assert priced.result.objective == pytest.approx(whole.objective, rel=1e-9)
    assert priced.result.bound <= whole.objective * (1 + 1e-9)           # a proven bound, never above
    x = priced.result.x                                                     # and a feasible LP point
    activity = arrays.a @ x
    assert np.all(activity >= arrays.row_lower - 1e-6) and np.all(activity <= arrays.row_upper + 1e-6)


def test_a_round_adding_few_columns_runs_primal_simplex_and_a_round_adding_many_dual(model, monkeypatch):
    """Each round after the first runs primal simplex when it adds at most PRIMAL_COLUMNS_PER_ROW columns per
    row, dual otherwise. This model (1,296 rows) adds at least 1,000 columns a round until its last (593):
    at 0.2 columns a row every round is dual, at three times that the last is primal; the optimum is the
    same."""
    import highspy

    import solvers.pricing as pricing

    loaded, sets, built, arrays = model
    lp = replace(settings_from(loaded.scenario), relax_integrality=True, time_limit_s=120)
    rounds = []
    run = highspy.Highs.run

    def spy(highs):
        rounds.append((highs.getNumCol(), highs.getOptionValue("simplex_strategy")[1]))
        return run(highs)

    monkeypatch.setattr(highspy.Highs, "run", spy)
    optima = []
    strategies = []
    for share in (3.0, 1.0):
        rounds.clear()
        monkeypatch.setattr(pricing, "PRIMAL_COLUMNS_PER_ROW", 0.2 * share)
        priced = solve_lp_by_pricing(arrays.relaxed(), pricing_start(built, sets, arrays), lp)
        optima.append(priced.result.objective)
        added = np.diff([columns for columns, _ in rounds])
        assert rounds[0][1] == 1                                   # the first round: dual
        for count, (_, strategy) in zip(added, rounds[1:]):
            assert strategy == (4 if count <= 0.2 * share * arrays.num_constraints else 1)
        strategies.append([strategy for _, strategy in rounds])
    assert strategies[0][-1] == 4 and 4 not in strategies[1]
    assert optima[0] == pytest.approx(optima[1], rel=1e-9)


def test_the_priced_lp_taking_in_the_slots_of_used_arcs_is_the_whole_lp(tmp_path):
    """A 60-workload instance over 2 periods x 2 slices, priced with each arc's (period, slice) columns as
    siblings: each round takes in the other slots of the arcs its LP point uses. The same optimum as the
    whole LP and as pricing without it, a feasible point, and at the end some arc held in every slot that
    plain pricing held in only some."""
    from solvers.pricing import _siblings_of_used

    loaded = load_scenario(write_instance(tmp_path, 60, periods=2, slices=2))
    _, cells, candidates = prepare(loaded)
    sets = build_index_sets(loaded.scenario, cells, candidates)
    built = build_model(sets)
    arrays = built.arrays()
    share = built.variables["share"]
    per_arc = share.coords.size // len(sets.arcs)
    assert per_arc == 4
    siblings = np.full(arrays.num_variables, -1, dtype=np.int64)
    siblings[share.columns] = np.repeat(np.arange(len(sets.arcs)), per_arc)
    lp = replace(settings_from(loaded.scenario), relax_integrality=True, time_limit_s=120)
    whole = solvers.solve(arrays.relaxed(), lp)
    start = pricing_start(built, sets, arrays)
    plain = solve_lp_by_pricing(arrays.relaxed(), start, lp)
    with_siblings = solve_lp_by_pricing(arrays.relaxed(), start, lp, siblings)
    for priced in (plain, with_siblings):
        assert priced.result.objective == pytest.approx(whole.objective, rel=1e-9)
        activity = arrays.a @ priced.result.x
        assert np.all(activity >= arrays.row_lower - 1e-6) and np.all(activity <= arrays.row_upper + 1e-6)
    held = lambda priced: priced.active[share.columns].reshape(-1, per_arc)     # noqa: E731
    assert (held(with_siblings).all(axis=1) & ~held(plain).all(axis=1) & held(plain).any(axis=1)).any()
    # the labels: -1 is nobody's sibling, and columns already in are not taken again
    labels = np.array([0, 0, 1, -1, -1, 1, 0])
    active = np.array([True, False, False, True, False, False, True])
    assert _siblings_of_used(labels, np.array([0]), active).tolist() == [1]
    assert _siblings_of_used(labels, np.array([3]), active).tolist() == []
    assert _siblings_of_used(labels, np.array([2, 3]), active).tolist() == [2, 5]


@pytest.mark.parametrize("priced", [True, False], ids=["priced from the plan", "whole"])
def test_tie_break_lps_agree_with_the_lps_over_every_arc(model, priced, monkeypatch):
    """least_load_routing leaves out arcs of deployments without replicas, and on large models prices its
    LPs in from the plan's own routing; over every arc (those fixed at 0 by the replicas anyway), whole,
    the two LPs reach the same optima."""
    import placement.solve
    from placement.solve import least_load_routing, solve_with_incumbent

    monkeypatch.setattr(placement.solve, "PRICING_MIN_COLUMNS", 0 if priced else 10**12)
    loaded, sets, built, arrays = model
    settings = replace(settings_from(loaded.scenario), mip_gap=0.01, time_limit_s=60)
    result, _ = solve_with_incumbent(arrays, settings)
    tidy = least_load_routing(built, sets, arrays, result.x, settings)
    integer = arrays.integer
    fixed = arrays.fix(integer, np.round(result.x[integer]))
    free = ~integer
    cost_cap = float(arrays.cost[free] @ result.x[free]) * (1 + 1e-9) + 1e-7
    capped = fixed.with_row(arrays.cost[free], -np.inf, cost_cap)
    duration = sets.horizon.duration[None]
    load = np.zeros(arrays.num_variables)
    load[built.variables["share"].columns] = (arc_load(sets) * duration).ravel()
    lp = replace(settings, relax_integrality=True)
    scratch = solvers.solve(capped.with_objective(load[free]), lp)
    assert float(load @ tidy) == pytest.approx(scratch.objective, rel=1e-7)
    assert float(arrays.cost @ tidy) <= float(arrays.cost @ result.x) * (1 + 1e-9)


def test_baselines_cost_what_the_cut_down_scenario_costs(tmp_path):
    """The single-accelerator baseline against the scenario with only that accelerator's pools."""
    base = load_scenario(write_instance(tmp_path / "small", 30))
    result = solve_scenario(base, baselines=True, explain=False, mip_gap=1e-6)
    baselines = {b["accelerator"]: b for b in result.plan["baselines"] if b["name"].startswith("only ")}
    assert len(baselines) == 6
    for accelerator in ("acc0", "acc3"):
        others = {f"pools[{p.id}].max_chips": 0 for p in base.scenario.pools if p.accelerator != accelerator}
        alone = solve_scenario(edit_loaded(base, others, label="test"), baselines=False, explain=False,
                               mip_gap=1e-6).plan
        baseline = baselines[accelerator]
        if alone["status"] in ("optimal", "feasible"):
            assert baseline["cost_per_hour"] == pytest.approx(alone["objective"]["value"], rel=2e-6)
        else:
            assert not baseline["feasible"]


@pytest.mark.parametrize("priced", [False, True])
def test_fix_and_optimize_improves_the_rounded_plan_of_a_model_too_big_for_the_mip(tmp_path, monkeypatch, priced):
    """A multi-period model over MIP_MAX_ROWS (lowered here so a small instance is over it): the plan is
    rounded, then each (period, slice) and each period is re-solved as a MIP with the rest fixed. The
    result is a feasible integer plan of the whole model, never dearer than the rounded one, cheaper here,
    and never below the LP bound; also when the LP is priced and the windows leave out the columns it
    never took in (they stay fixed at the plan)."""
    import placement.solve
    from placement.solve import pricing_start, solve_with_incumbent, time_windows

    loaded = load_scenario(write_instance(tmp_path, 40, periods=2, slices=2))
    _, cells, candidates = prepare(loaded)
    sets = build_index_sets(loaded.scenario, cells, candidates)
    built = build_model(sets)
    arrays = built.arrays()
    windows = time_windows(built)
    assert len(windows) == 2 * 2 + 2
    assert all(not (a & b).any() for i, a in enumerate(windows[:4]) for b in windows[i + 1:4])  # (t, s) disjoint
    monkeypatch.setattr(placement.solve, "MIP_MAX_ROWS", arrays.num_constraints - 1)
    # the plans compared are the rounded one and fix-and-optimize's: no branch-and-price after them
    # (tests/test_branch_and_price.py tests it)
    monkeypatch.setattr(placement.solve, "BRANCH_AND_PRICE_MIN_COLUMNS", 10**12)
    settings = replace(settings_from(loaded.scenario), mip_gap=1e-6, time_limit_s=120)
    share = built.variables["share"]
    groups = np.repeat(sets.arcs["deployment"].to_numpy(), share.coords.size // len(sets.arcs))
    lp_start = pricing_start(built, sets, arrays) if priced else None
    rounded, bound = solve_with_incumbent(arrays, settings, share.columns, groups, lp_start=lp_start)
    notes: list[str] = []
    left_out = []
    real = placement.solve._fix_and_optimize
    monkeypatch.setattr(placement.solve, "_fix_and_optimize",
                        lambda arrays, incumbent, dropped, *rest: left_out.append(dropped) or real(arrays, incumbent,
                                                                                                 dropped, *rest))
    improved, _ = solve_with_incumbent(arrays, settings, share.columns, groups, notes=notes, windows=windows,
                                       lp_start=lp_start)
    assert any(n.startswith("fix-and-optimize: 6 time windows solved") for n in notes), notes
    # priced: the windows also leave out arcs of used deployments (those the priced LP never took in)
    used = np.zeros(arrays.num_variables, dtype=bool)
    used[share.columns] = np.isin(groups, np.unique(groups[rounded.x[share.columns] > 1e-9]))
    assert (left_out[0] & used).any() == priced
    assert bound <= improved.objective < rounded.objective
    x = improved.x
    activity = arrays.a @ x
    assert np.all(activity >= arrays.row_lower - 1e-6) and np.all(activity <= arrays.row_upper + 1e-6)
    assert np.all(x >= arrays.lower - 1e-9) and np.all(x <= arrays.upper + 1e-9)
    assert np.allclose(x[arrays.integer], np.round(x[arrays.integer]), atol=1e-6)
    assert float(arrays.cost @ x + arrays.objective_offset) == pytest.approx(improved.objective, rel=1e-9)


def test_explanations_weighed_a_chunk_at_a_time_say_what_one_pass_says(monkeypatch):
    """Explanations weigh (bucket, deployment) pairs a chunk at a time so memory stays bounded (2.9M pairs
    at once took 2.5 GB); the sentences are those of one pass over every pair, in the same order."""
    import placement.report
    from placement.api import solve_scenario
    from placement.report import explanations

    loaded = load_scenario(Path(__file__).resolve().parents[1] / "inputs" / "speed-lanes" / "scenario.yaml")
    result = solve_scenario(loaded, baselines=False, explain=False)
    table, cells = result.outcome.table, result.outcome.cells
    assert len(cells) > 3
    whole = explanations(loaded.scenario, table, cells, result.plan)
    monkeypatch.setattr(placement.report, "EXPLAIN_PAIRS_PER_CHUNK", 1)       # one bucket a chunk
    assert explanations(loaded.scenario, table, cells, result.plan) == whole
    assert len(whole) == len(cells) and any("Not on" in s for s in whole)


def test_the_priced_lp_starts_from_arcs_cheapest_at_paid_prices(model):
    """Each cell's start includes its arc of least load x replica price, the price being the cheapest
    non-prepaid pool's listed price per chip-hour (worked out here from the scenario's pools): prepaid chips
    are free but few, and ranked at their zero price every arc of the benchmark looked free."""
    loaded, sets, built, arrays = model
    prices = {}
    for pool in loaded.scenario.pools:
        if pool.kind != "prepaid":
            prices[pool.accelerator] = min(prices.get(pool.accelerator, np.inf), pool.price_per_chip_hour)
    deployments = sets.deployments
    price = np.array([prices[a] * c for a, c in zip(deployments["accelerator"], deployments["chips_per_replica"])])
    load = arc_load(sets).mean(axis=(1, 2))
    arcs = sets.arcs
    score = load * (price[arcs["deployment"].to_numpy()] + 1e-6)
    best = arcs.assign(score=score).sort_values(["cell", "score"], kind="stable").groupby("cell").head(1).index
    start = pricing_start(built, sets, arrays)
    share = built.variables["share"]
    assert start[share.columns[best.to_numpy()]].all()
    assert start[share.columns].mean() < 0.2

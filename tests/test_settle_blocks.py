"""Settling reserved blocks before fix-and-optimize (placement/solve.py `_settle_blocks`): a search that
branches on the blocks held per (pool, period) alone, whose least node bounds every plan and whose least
leaf starts the windows. Hand-computed optima on one accelerator; the rows it branches on checked against
the contract rows they sum.

The case: one model on `g`, 1-chip replicas serving 1 req/s, 10 req/s for two periods of 100 h. Reserved
blocks of 4 chips at 1/chip-hour for a term of two periods (800 a block); on demand at `od`/chip-hour. The
LP buys 2.5 blocks (2,000). Whole blocks: 3 blocks cost 2,400; 2 blocks leave 2 chips on demand for 200 h,
1,600 + 400 x od. At od = 3: 2,800, so 3 blocks, 2,400. At od = 1.5: 2,200, so 2 blocks.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import placement.solve
import solvers
from placement.capacity_types.reserved import held_blocks
from placement.formulation import build_model
from placement.indexsets import build_index_sets
from placement.scenario import load_scenario
from placement.solve import _proof_columns, _settle_blocks, prepare, settings_from
from solvers.base import SolverSettings
from solvers.branch_and_price import prove
from solvers.model import ArrayModel
from tests.test_periods import ON_DEMAND, P2, RESERVED, _solve, _spec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_scale import write_instance  # noqa: E402

CONTRACT = {**RESERVED, "block_chips": 4, "term_periods": 2}


def _case(od_price: float):
    return _spec([CONTRACT, {**ON_DEMAND, "price_per_chip_hour": od_price}], periods=P2)


@pytest.mark.parametrize("od_price, total, blocks", [(3.0, 2400.0, 3), (1.5, 2200.0, 2)])
def test_settled_blocks_prove_the_whole_block_optimum(tmp_path, monkeypatch, od_price, total, blocks):
    """Over MIP_MAX_ROWS with two periods, the blocks are settled: the plan is proven by their bound (the
    LP's, 2,000, is 9-17% below), up when on demand is dear, down when it is cheap."""
    monkeypatch.setattr(placement.solve, "MIP_MAX_ROWS", 0)
    spec, extra = _case(od_price)
    plan = _solve(tmp_path, spec, extra)
    notes = plan["solver"]["notes"]
    assert any(n.startswith("blocks settled") for n in notes), notes
    assert plan["status"] == "optimal"
    assert plan["cost"]["total"] == pytest.approx(total)
    assert plan["objective"]["lp_relaxation"] == pytest.approx(2000 / 200)
    assert plan["objective"]["bound"] == pytest.approx(total / 200, rel=1e-6)
    assert sum(c["blocks"] for c in plan["commitments"]) == blocks
    # the search's seconds are solve seconds (plan.json's solve_s left them out)
    stages = plan["solver"]["stages_s"]
    assert "settle_blocks" in stages
    around = {"parse", "lookup", "build", "canonical", "tie_break", "extract", "explanations", "check", "outputs"}
    assert plan["solver"]["solve_s"] == pytest.approx(
        sum(seconds for stage, seconds in stages.items() if stage not in around), abs=1e-6)


@pytest.mark.parametrize("od_price, total, blocks", [(3.0, 2400.0, 3), (1.5, 2200.0, 2)])
def test_models_within_the_rows_take_the_blocks_path_from_its_columns(tmp_path, monkeypatch, od_price, total,
                                                                     blocks):
    """Within MIP_MAX_ROWS, a model with reserved blocks over several periods settles its blocks once it has
    BLOCKS_PATH_MIN_COLUMNS columns (here 0), with the same whole-block optimum; below them it does not."""
    spec, extra = _case(od_price)
    for threshold, settles in ((0, True), (10**9, False)):
        monkeypatch.setattr(placement.solve, "BLOCKS_PATH_MIN_COLUMNS", threshold)
        plan = _solve(tmp_path / str(threshold), spec, extra)
        notes = plan["solver"]["notes"]
        assert any(n.startswith("blocks settled") for n in notes) == settles, notes
        assert any("the blocks settled first" in n for n in notes) == settles, notes
        assert plan["status"] == "optimal"
        assert plan["cost"]["total"] == pytest.approx(total)
        assert sum(c["blocks"] for c in plan["commitments"]) == blocks
    # the search is HiGHS's (branch_and_price): another backend keeps its path, to the same optimum
    monkeypatch.setattr(placement.solve, "BLOCKS_PATH_MIN_COLUMNS", 0)
    plan = _solve(tmp_path / "ortools", spec, extra, solver={"backend": "ortools", "engine": "highs"})
    assert not any("blocks" in n and "settled" in n for n in plan["solver"]["notes"]), plan["solver"]["notes"]
    assert plan["status"] == "optimal" and plan["cost"]["total"] == pytest.approx(total)


def _model(tmp_path, od_price: float):
    from tests.helpers import write_scenario
    import yaml

    spec, extra = _case(od_price)
    path = write_scenario(tmp_path, spec)
    doc = yaml.safe_load(path.read_text())
    doc.update(extra)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    loaded = load_scenario(path)
    _, cells, candidates = prepare(loaded)
    sets = build_index_sets(loaded.scenario, cells, candidates)
    model = build_model(sets)
    return loaded, sets, model, model.arrays()


@pytest.mark.parametrize("threads", [1, 2])
def test_the_least_leaf_starts_the_plan_when_no_plan_prunes_it(tmp_path, threads):
    """From a plan far dearer than any leaf (nothing pruned), the search returns its least leaf, rounded:
    3 blocks, 2,400, its bound the same, and the block columns to keep fixed; with two node LPs at once
    as with one."""
    loaded, sets, model, arrays = _model(tmp_path, 3.0)
    settings = replace(settings_from(loaded.scenario), threads=threads)
    relaxed = solvers.solve(arrays.relaxed(), replace(settings, relax_integrality=True))
    assert relaxed.objective == pytest.approx(2000)
    share = model.variables["share"]
    initial = _proof_columns(arrays, relaxed, relaxed.x, share.columns, None, None)
    bad = (relaxed.x, 1e9)
    notes: list[str] = []
    start, bound, kept, _ = _settle_blocks(arrays, relaxed, bad, held_blocks(model, sets), initial, settings, 30,
                                           notes)
    assert bound == pytest.approx(2400)
    assert start is not None and start[1] == pytest.approx(2400)
    x = start[0]
    activity = arrays.a @ x
    assert np.all(activity >= arrays.row_lower - 1e-6) and np.all(activity <= arrays.row_upper + 1e-6)
    assert np.allclose(x[arrays.integer], np.round(x[arrays.integer]))
    assert model.array("blocks", x).sum() == pytest.approx(3)
    assert kept[model.variables["blocks"].columns].all() and kept.sum() == model.variables["blocks"].coords.size
    assert "least leaf proven" in notes[-1]


def test_nothing_to_settle_when_the_blocks_held_are_whole(tmp_path):
    """An LP point whose blocks held are whole numbers leaves nothing to settle: no search."""
    loaded, sets, model, arrays = _model(tmp_path, 3.0)
    settings = settings_from(loaded.scenario)
    relaxed = solvers.solve(arrays.relaxed(), replace(settings, relax_integrality=True))
    sums, capacity = held_blocks(model, sets)
    whole = replace(relaxed, x=relaxed.x.copy())
    blocks = model.variables["blocks"].columns
    whole.x[blocks] = np.round(whole.x[blocks])
    assert _settle_blocks(arrays, whole, (whole.x, 1e9), (sums, capacity), np.ones(arrays.num_variables, bool),
                          settings, 30, []) is None


def test_held_blocks_are_the_contract_rows_in_blocks(tmp_path):
    """Each held row is its (pool, period) contract-cap row over block chips; each has that pool's slice-cap
    rows of the same period as its capacity rows. A tampered coefficient breaks the first check."""
    loaded = load_scenario(write_instance(tmp_path, 40, periods=3, slices=2))
    _, cells, candidates = prepare(loaded)
    sets = build_index_sets(loaded.scenario, cells, candidates)
    model = build_model(sets)
    arrays = model.arrays()
    sums, capacity = held_blocks(model, sets)
    contract = model.constraints["Pool-reserved-contract-cap"]
    rows = arrays.a[contract.start:contract.start + contract.coords.size]
    reserved = sets.pools["kind"].to_numpy() == "reserved"
    chips = np.repeat(sets.pools["block_chips"].to_numpy(dtype=float)[reserved], len(sets.horizon.period_ids))
    x = np.random.default_rng(0).uniform(0, 3, arrays.num_variables)
    assert np.allclose(rows @ x, chips * (sums @ x))
    tampered = sums.copy()
    tampered.data[0] *= 2
    assert not np.allclose(rows @ x, chips * (tampered @ x))
    caps = model.constraints["Pool-reserved-slice-cap"]
    grid = np.arange(caps.coords.size).reshape(caps.coords.shape)      # (pool, period, slice)
    expected = np.zeros((sums.shape[0], arrays.num_constraints))
    for k, (p, t) in enumerate(np.ndindex(*caps.coords.shape[:2])):
        expected[k, caps.start + grid[p, t]] = 1
    assert np.array_equal(capacity.toarray(), expected)


def test_a_solve_that_settles_its_blocks_gives_a_checked_plan_within_its_bound(tmp_path, monkeypatch):
    """The whole pipeline on a 40-workload, 2 x 2 benchmark-shaped instance whose LP holds a fractional block
    count the LP prices, made to count as too big for a MIP over its windows: the blocks are settled, the
    windows start from the least leaf, the plan passes the independent checker, and the bound reported
    lies between the LP's and the plan."""
    from placement.api import solve_scenario

    monkeypatch.setattr(placement.solve, "MIP_MAX_ROWS", 0)
    path = write_instance(tmp_path, 40, periods=2, slices=2)
    result = solve_scenario(path, baselines=False)
    assert result.violations == [], result.violations
    plan = result.plan
    notes = plan["solver"]["notes"]
    assert any(n.startswith("blocks settled") for n in notes), notes
    assert any(n.startswith("plan rounded from the settled blocks") for n in notes), notes
    objective = plan["objective"]
    assert objective["lp_relaxation"] < objective["bound"] <= objective["value"]
    assert plan["status"] in ("optimal", "feasible")


def test_a_branching_row_over_a_continuous_column_is_refused(tmp_path):
    """Only sums of integer columns are whole in every plan: a row holding a share column is refused."""
    loaded, sets, model, arrays = _model(tmp_path, 3.0)
    settings = settings_from(loaded.scenario)
    relaxed = solvers.solve(arrays.relaxed(), replace(settings, relax_integrality=True))
    sums, _ = held_blocks(model, sets)
    share = model.variables["share"].columns[0]
    tampered = sp.csr_matrix(sums.toarray() + np.eye(1, arrays.num_variables, share))
    everything = np.ones(arrays.num_variables, dtype=bool)
    with pytest.raises(ValueError, match="integer columns only"):
        prove(arrays, (relaxed.x, 1e9), everything, 1e-4, 10, branch_rows=tampered, rows_only=True)
    assert prove(arrays, (relaxed.x, 1e9), everything, 1e-4, 10, branch_rows=sums, rows_only=True).bound \
        == pytest.approx(2400)


def _pools_model():
    """Six reserved pools, each a block count y (4 chips, `block` per block) and on-demand chips z (`od` per
    chip) meeting its demand d: 4 y + z >= d. Per pool the whole-block optimum is the cheaper of floor(d/4)
    blocks with the rest on demand and ceil(d/4) blocks; they add up (68.7; the LP, 63)."""
    pools = [(10, 4, 1.5), (6, 4, 3.0), (9, 4, 1.2), (13, 4, 2.0), (7, 4, 1.1), (18, 4, 1.6)]
    k = len(pools)
    a = sp.hstack([sp.eye(k) * 4.0, sp.eye(k)]).tocsr()
    cost = np.r_[[block for _, block, _ in pools], [od for *_, od in pools]]
    model = ArrayModel(a, np.zeros(2 * k), np.r_[np.full(k, 10.0), np.full(k, np.inf)], cost,
                       np.r_[np.ones(k, bool), np.zeros(k, bool)], np.array([d for d, *_ in pools], float),
                       np.full(k, np.inf))
    least = sum(min(block * (d // 4) + od * (d % 4), block * -(-d // 4)) for d, block, od in pools)
    rows = sp.hstack([sp.eye(k), sp.csr_matrix((k, k))]).tocsr()
    dear = np.r_[np.full(k, 10.0), np.zeros(k)]       # a plan far above every leaf: nothing pruned
    return model, rows, (dear, float(cost @ dear)), least


def _search(leaf_gap: float):
    model, rows, plan, _ = _pools_model()
    return prove(model, plan, np.ones(model.num_variables, bool), 1e-4, 30, branch_rows=rows, rows_only=True,
                 leaf_gap=leaf_gap)


def test_the_blocks_search_stops_at_a_leaf_within_its_gap_and_resumes_to_the_least():
    """By enumeration the least leaf costs 68.7. With no leaf gap the search proves it; with 1% it stops
    sooner, at that leaf, with its least open node (its bound) within 1% below; taken up again toward a
    target it stops once its bound reaches it, and toward no target at all it proves the least leaf in
    the same nodes as the search that never stopped."""
    least = _pools_model()[3]
    assert least == pytest.approx(68.7)
    whole = _search(0.0)
    assert whole.finished and whole.bound == pytest.approx(least) and whole.search is None
    early = _search(0.01)
    assert early.settled and not early.finished and early.nodes < whole.nodes
    assert early.leaf_bound == pytest.approx(least)
    assert early.leaf_bound * (1 - 0.01) <= early.bound < least - 1e-6
    target = (early.bound + least) / 2
    raised = early.search.resume(target, 30)
    assert raised.bound >= target - 1e-9
    proven = early.search.resume(np.inf, 30)
    assert proven.finished and proven.bound == pytest.approx(least) and proven.nodes == whole.nodes


def test_a_plan_the_stopped_search_does_not_prove_raises_its_bound():
    """A plan at the least leaf (68.7) is 0.4% above the stopped search's bound: with time, the search is
    taken up again until the bound proves the plan within the gap; with under a second, or for a plan more
    than the gap above the least leaf (which no bound from the blocks can prove), nothing runs."""
    early = _search(0.01)
    settings = replace(SolverSettings(), mip_gap=1e-4)
    plan = (None, 68.7)
    notes: list[str] = []
    assert placement.solve._raise_blocks_bound(early.search, plan, early.bound, settings, 0.5, notes) == early.bound
    assert "no time left" in notes[-1]
    far = (None, 68.7 * 1.01)       # 1% above the least leaf: no bound from the blocks can prove it
    assert placement.solve._raise_blocks_bound(early.search, far, early.bound, settings, 30, notes) == early.bound
    assert "above the least leaf" in notes[-1]
    bound = placement.solve._raise_blocks_bound(early.search, plan, early.bound, settings, 30, notes)
    assert (68.7 - bound) / 68.7 <= 1e-4

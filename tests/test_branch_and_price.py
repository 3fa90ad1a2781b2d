"""Branch-and-price (solvers/branch_and_price.py) proves what HiGHS's MIP proves: the optimum of a hand-sized
model worked out below, and of benchmark instances against HiGHS at gap 0 (one period; two periods of two
slices, where the prepaid fleet can carry everything and the optimum is 0), from rounded plans far above
the optimum and from start columns that leave out what the optimum needs (so nodes must price columns in).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import solvers
from placement.formulation import build_model
from placement.indexsets import build_index_sets
from placement.scenario import load_scenario
from placement.solve import _routing_fixed, prepare, pricing_start, settings_from
from solvers.branch_and_price import prove
from solvers.model import ArrayModel
from solvers.pricing import solve_lp_by_pricing
from tests.helpers import solved_benchmark_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_scale import write_instance  # noqa: E402


def two_cells_two_deployments() -> ArrayModel:
    """Cells A (1.5 replica-loads) and B (0.8); d1 serves 1 load per replica at 10, d2 serves 2 at 18.
    Columns: xA1, xB1, xA2, xB2 (shares), n1, n2 (replicas). Load 2.3 in all: the LP buys 1.15 of d2
    (20.7); whole replicas: n1 = 3 (30), n2 = 2 (36), n1 = 1 + n2 = 1 (28: capacity 3 >= 2.3, e.g. B on d1,
    A on d2), and n1 = 2 or n2 = 1 alone hold only 2. Optimum 28."""
    a = sp.csr_matrix(np.array([
        [1, 0, 1, 0, 0, 0],            # A covered
        [0, 1, 0, 1, 0, 0],            # B covered
        [1.5, 0.8, 0, 0, -1, 0],       # d1 capacity
        [0, 0, 0.75, 0.4, 0, -1],      # d2 capacity (per replica: 2 loads)
    ], dtype=float))
    return ArrayModel(a, np.zeros(6), np.array([1, 1, 1, 1, np.inf, np.inf]), np.array([0, 0, 0, 0, 10, 18.0]),
                      np.array([False] * 4 + [True] * 2), np.array([1, 1, -np.inf, -np.inf]),
                      np.array([1, 1, 0, 0.0]))


@pytest.mark.parametrize("initial", [[True, True, False, False], [False, False, True, True]],
                         ids=["d2 priced in at the root", "d1 needed only after branching"])
def test_hand_model_optimum_from_a_worse_plan_and_too_few_columns(initial):
    """Without d2's arcs, the root prices them in. Without d1's, the root LP (all on d2, 20.7) never prices
    them in; the branch n2 <= 1 needs them, and is only solved right if its LP, short of columns, is not
    taken for infeasible (the artificial columns) but priced."""
    model = two_cells_two_deployments()
    worse = np.array([1, 1, 0, 0, 3, 0.0])                # everything on d1: 30
    initial = np.array(initial + [True, True])
    proof = prove(model, (worse, 30.0), initial, gap=0.0, time_limit=30)
    assert proof is not None and proof.finished
    assert proof.objective == pytest.approx(28.0)
    assert proof.bound == pytest.approx(28.0)
    assert np.round(proof.x[4:]).tolist() == [1.0, 1.0]
    activity = model.a @ proof.x
    assert np.all(activity >= model.row_lower - 1e-9) and np.all(activity <= model.row_upper + 1e-9)


def test_a_node_short_of_columns_is_priced_not_taken_for_infeasible():
    """The node n2 <= 1 over d2's arcs alone cannot serve the 2.3 loads; with d1's arcs priced in its LP is
    n2 = 1 (18) plus 0.3 loads on d1 (3): 21. Without the artificial columns it would be 'infeasible'."""
    import time

    from solvers.branch_and_price import _Search

    model = two_cells_two_deployments()
    search = _Search(model, (np.array([1, 1, 0, 0, 3, 0.0]), 30.0), np.array([False, False, True, True, True, True]),
                     0.0, time.perf_counter() + 30, 1, None)
    bound, x, _ = search.workers[0].node_lp(np.array([0.0, 0.0]), np.array([np.inf, 1.0]), np.inf)
    assert bound == pytest.approx(21.0)
    assert x[4] == pytest.approx(0.3) and x[5] == pytest.approx(1.0)


def test_hand_model_proof_of_the_optimum_keeps_it():
    model = two_cells_two_deployments()
    best = np.array([0, 1, 1, 0, 1, 1.0])
    proof = prove(model, (best, 28.0), np.ones(6, dtype=bool), gap=0.0, time_limit=30)
    assert proof.finished and proof.objective == pytest.approx(28.0) and proof.bound == pytest.approx(28.0)


def test_hand_model_bound_is_never_the_incumbent_when_stopped():
    """Stopped after the root, the bound is the root's LP bound (20.7), not the plan's 30."""
    model = two_cells_two_deployments()
    proof = prove(model, (np.array([1, 1, 0, 0, 3, 0.0]), 30.0), np.ones(6, dtype=bool), gap=0.0, time_limit=30,
                  node_limit=1)
    assert proof is not None and not proof.finished and "node limit" in proof.message
    assert proof.bound == pytest.approx(20.7) and proof.objective == 30.0


@pytest.fixture(scope="module", params=[(60, 1, 1), (12, 2, 2)], ids=["60 workloads", "12 workloads x 2 x 2"])
def instance(request, tmp_path_factory):
    workloads, periods, slices = request.param
    sets, built, arrays, settings, exact = solved_benchmark_model(tmp_path_factory.mktemp("bnp"), workloads, periods,
                                                                  slices, seed=3)
    return arrays, settings, pricing_start(built, sets, arrays), exact.objective, exact.x


@pytest.mark.parametrize("few, workers", [(False, 1), (True, 1), (False, 2)],
                         ids=["the priced LP's columns", "the plan's columns only", "two node LPs at once"])
def test_proves_the_exact_optimum_from_the_rounded_plan(instance, few, workers):
    """From the columns the priced LP took in, or only the rounded plan's own (every other arc priced in
    as nodes need it, as the pipeline's short start list relies on); and with two node LPs at a time, each
    on a HiGHS of its own that prices in its own columns."""
    arrays, settings, start, optimum, _ = instance
    priced = solve_lp_by_pricing(arrays.relaxed(), start, replace(settings, relax_integrality=True, time_limit_s=60))
    assert priced is not None
    rounded = _routing_fixed(arrays, priced.result.x, settings, 60)
    assert rounded[1] > optimum * (1 + 1e-6) + 1e-6           # the search has to find better plans
    initial = priced.active.copy()
    if few:
        initial = arrays.integer | (rounded[0] > 0) | (arrays.lower != 0)
        assert initial.sum() < 0.5 * priced.active.sum()
    proof = prove(arrays, initial=initial, incumbent=rounded, gap=0.0, time_limit=120, workers=workers)
    assert proof is not None and proof.finished
    assert ("at once" in proof.message) == (workers > 1 and proof.nodes > 1)
    assert proof.objective == pytest.approx(optimum, rel=1e-7)
    assert proof.bound <= optimum * (1 + 1e-9)
    x = proof.x
    activity = arrays.a @ x
    assert np.all(activity >= arrays.row_lower - 1e-6) and np.all(activity <= arrays.row_upper + 1e-6)
    assert np.all(x >= arrays.lower - 1e-9) and np.all(x <= arrays.upper + 1e-9)
    assert np.allclose(x[arrays.integer], np.round(x[arrays.integer]))
    assert float(arrays.cost @ x + arrays.objective_offset) == pytest.approx(proof.objective, rel=1e-9)


def test_each_worker_holds_the_columns_it_priced_in(instance):
    """Two node LPs at once: each HiGHS instance (the root's and its twin) prices in columns of its own, so
    each keeps its own map between HiGHS's columns and the model's, and its costs are the model's. A map
    shared between them would let one worker take the other's columns for its own (and its bound with them)."""
    import time

    from solvers.branch_and_price import _Search

    arrays, settings, start, optimum, _ = instance
    priced = solve_lp_by_pricing(arrays.relaxed(), start, replace(settings, relax_integrality=True, time_limit_s=60))
    rounded = _routing_fixed(arrays, priced.result.x, settings, 60)
    initial = arrays.integer | (rounded[0] > 0) | (arrays.lower != 0)
    search = _Search(arrays, rounded, initial, 0.0, time.perf_counter() + 120, workers=2)
    proof = search.run()
    assert proof.finished and proof.objective == pytest.approx(optimum, rel=1e-7)
    assert len(search.workers) == 2
    for worker in search.workers:
        lp = worker.highs.getLp()
        real = worker.column_of >= 0
        held = worker.column_of[real]
        assert lp.num_col_ == len(worker.column_of)
        assert np.array_equal(np.sort(held), np.flatnonzero(worker.active))
        assert np.array_equal(worker.position[held], np.flatnonzero(real))
        assert np.allclose(np.asarray(lp.col_cost_)[real], arrays.cost[held])
        assert worker.active.sum() > (initial | arrays.integer).sum()       # each priced columns in


def test_the_root_starts_from_the_lp_basis_and_proves_the_same(instance):
    """Given the priced LP's basis, the root needs no simplex iteration: the LP's basic columns join the
    start list (here the rounded plan's columns alone) and the basis is the root's, artificials at zero and
    the branching rows basic. The search then proves the same optimum as from cold. Without the basis
    (tamper: start_from skipped) the root iterates."""
    import time

    from solvers.branch_and_price import _Search

    arrays, settings, start, optimum, _ = instance
    priced = solve_lp_by_pricing(arrays.relaxed(), start, replace(settings, relax_integrality=True, time_limit_s=60))
    basis = priced.result.basis
    assert basis is not None and (basis[0] == 1).sum() + (basis[1] == 1).sum() == arrays.num_constraints
    rounded = _routing_fixed(arrays, priced.result.x, settings, 60)
    initial = arrays.integer | (rounded[0] > 0) | (arrays.lower != 0)
    for given, iterations in ((basis, lambda n: n == 0), (None, lambda n: n > 0)):
        search = _Search(arrays, rounded, initial, 0.0, time.perf_counter() + 60, basis=given)
        root = search.workers[0].node_lp(arrays.lower[arrays.integer], arrays.upper[arrays.integer], np.inf)
        assert iterations(search.workers[0].highs.getInfo().simplex_iteration_count)
        assert root[0] == pytest.approx(priced.result.objective, rel=1e-9)
    proof = prove(arrays, rounded, initial, gap=0.0, time_limit=120, basis=basis)
    assert proof.finished and proof.objective == pytest.approx(optimum, rel=1e-7)
    assert proof.bound <= optimum * (1 + 1e-9)


def test_a_loose_gap_bound_stays_below_the_optimum(instance):
    arrays, settings, start, optimum, _ = instance
    priced = solve_lp_by_pricing(arrays.relaxed(), start, replace(settings, relax_integrality=True, time_limit_s=60))
    rounded = _routing_fixed(arrays, priced.result.x, settings, 60)
    proof = prove(arrays, rounded, priced.active, gap=0.01, time_limit=120)
    assert proof.finished
    assert proof.bound <= optimum * (1 + 1e-9)
    assert (proof.objective - proof.bound) <= 0.01 * proof.objective + 1e-9


def test_reduced_cost_tightening_keeps_the_optimum(instance):
    """After the root, every column's upper bound is cut to (plan - root bound) / reduced cost. With the
    optimum itself as the plan (HiGHS, gap 0), the cut is as deep as it gets, and the optimal plan must still
    fit under it."""
    import time

    from solvers.branch_and_price import _Search

    arrays, settings, start, optimum, x_opt = instance
    priced = solve_lp_by_pricing(arrays.relaxed(), start, replace(settings, relax_integrality=True, time_limit_s=60))
    search = _Search(arrays, (x_opt, optimum), priced.active, 0.0, time.perf_counter() + 60, 1)
    bound, _, reduced = search.workers[0].node_lp(arrays.lower[arrays.integer], arrays.upper[arrays.integer], np.inf)
    search.tighten(bound, reduced)
    if optimum > bound + 1e-6:
        assert (search.upper < 0.5 * arrays.upper).sum() > 100          # it does cut
    assert np.all(x_opt <= search.upper + 1e-7)


def test_a_better_plan_from_the_heuristic_is_kept(instance):
    """The caller's heuristic (the pipeline passes rounding of the node's routing) is asked at the root; a
    better plan it returns becomes the incumbent, and the search ends with it, proven."""
    arrays, settings, start, optimum, x_opt = instance
    priced = solve_lp_by_pricing(arrays.relaxed(), start, replace(settings, relax_integrality=True, time_limit_s=60))
    rounded = _routing_fixed(arrays, priced.result.x, settings, 60)
    asked = []

    def heuristic(x):
        asked.append(len(x))
        return x_opt, optimum

    proof = prove(arrays, rounded, priced.active, gap=0.0, time_limit=120, heuristic=heuristic)
    assert asked and asked[0] == arrays.num_variables
    assert proof.finished and proof.objective == pytest.approx(optimum, rel=1e-9)
    assert np.array_equal(proof.x, x_opt)


def test_the_solve_proves_its_plan_by_branch_and_price(tmp_path):
    """`placement solve` on a 100-workload instance (13,872 columns, over BRANCH_AND_PRICE_MIN_COLUMNS): the
    stage runs, is timed, and proves the plan HiGHS's MIP proves at gap 0 (1,051,200 over the period)."""
    from placement.api import solve_scenario
    from placement.solve import BRANCH_AND_PRICE_MIN_COLUMNS

    instance = write_instance(tmp_path / "bnp100", 100)
    result = solve_scenario(instance, baselines=False, explain=False, mip_gap=1e-4)
    plan = result.plan
    assert plan["solver"]["model"]["variables"] >= BRANCH_AND_PRICE_MIN_COLUMNS
    assert plan["status"] == "optimal" and result.violations == []
    assert "branch_and_price" in plan["solver"]["stages_s"]
    assert any(note.startswith("branch-and-price:") for note in plan["solver"]["notes"])
    loaded = load_scenario(instance)
    _, cells, candidates = prepare(loaded)
    arrays = build_model(build_index_sets(loaded.scenario, cells, candidates)).arrays()
    exact = solvers.solve(arrays, replace(settings_from(loaded.scenario), mip_gap=0.0, time_limit_s=120))
    hours = loaded.scenario.hours
    assert plan["objective"]["value"] * hours == pytest.approx(exact.objective, rel=1e-4)
    assert plan["objective"]["bound"] * hours <= exact.objective * (1 + 1e-9)

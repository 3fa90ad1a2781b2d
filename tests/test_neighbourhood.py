"""The neighbourhood MIP (a random set of whole workloads free, the rest fixed at the plan) and the short
column list branch-and-price starts from: on a model over MIP_MAX_ROWS (lowered here so a 100-workload
instance is over it, as 7,500 workloads are for real), the solve still reaches and proves HiGHS's gap-0
optimum, the neighbourhood frees whole workloads only and never returns a worse plan.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

import placement.solve
import solvers
from placement.solve import (
    PROOF_ARCS_PER_SLOT,
    _neighbourhood,
    _proof_columns,
    column_workloads,
    solve_sets,
)
from tests.helpers import solved_benchmark_model


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    sets, built, arrays, settings, exact = solved_benchmark_model(tmp_path_factory.mktemp("neighbourhood"), 100, seed=5)
    return sets, built, arrays, settings, exact.objective


def test_column_workloads_label_every_column_a_workload_owns(instance):
    sets, built, arrays, _, _ = instance
    label = column_workloads(built, sets)
    workloads = list(dict.fromkeys(sets.cells["workload"]))
    share = built.variables["share"]
    expected = np.array([workloads.index(w) for w in sets.cells["workload"].to_numpy()[sets.arcs["cell"].to_numpy()]])
    assert np.array_equal(label[share.columns], np.repeat(expected, share.coords.size // len(sets.arcs)))
    assert (label[built.variables["replicas"].columns] == -1).all()       # shared by every workload
    assert (label[built.variables["quality_slack"].columns] >= 0).all()


def test_a_neighbourhood_is_whole_workloads_worth_about_the_rows_asked(instance, monkeypatch):
    sets, built, arrays, _, _ = instance
    label = column_workloads(built, sets)
    monkeypatch.setattr(placement.solve, "NEIGHBOURHOOD_ROWS", 40)
    free = _neighbourhood(label, arrays.num_variables, arrays.num_constraints, whole=False)
    assert np.array_equal(free, _neighbourhood(label, arrays.num_variables, arrays.num_constraints, whole=False))
    assert free[label < 0].all()
    count = label.max() + 1
    chosen = [w for w in range(count) if free[label == w].all()]
    assert all(not free[label == w].any() for w in range(count) if w not in chosen)     # whole workloads
    assert len(chosen) == int(count * 40 / arrays.num_constraints)
    assert _neighbourhood(label, arrays.num_variables, arrays.num_constraints, whole=True).all()


def test_proof_columns_are_the_plans_arcs_and_the_cheapest_few_per_slot(instance):
    sets, built, arrays, settings, _ = instance
    relaxed = solvers.solve(arrays.relaxed(), replace(settings, relax_integrality=True))
    share = built.variables["share"]
    slots = sets.arcs["cell"].to_numpy()
    plan = np.zeros(arrays.num_variables)
    initial = _proof_columns(arrays, relaxed, plan, share.columns, slots, None)
    outside = np.ones(arrays.num_variables, dtype=bool)
    outside[share.columns] = False
    assert initial[outside].all() and initial[share.columns[relaxed.x[share.columns] > 0]].all()
    kept = initial[share.columns]
    per_slot = np.bincount(slots[kept & (relaxed.x[share.columns] <= 0)], minlength=slots.max() + 1)
    assert per_slot.max() <= PROOF_ARCS_PER_SLOT
    assert kept.sum() < 0.5 * len(kept)


def test_a_model_over_the_mip_row_limit_is_proven_through_a_neighbourhood_and_branch_and_price(instance,
                                                                                            monkeypatch):
    sets, built, arrays, settings, optimum = instance
    monkeypatch.setattr(placement.solve, "MIP_MAX_ROWS", arrays.num_constraints - 1)
    monkeypatch.setattr(placement.solve, "NEIGHBOURHOOD_ROWS", 100)
    freed = []
    real = placement.solve._neighbourhood_mip
    monkeypatch.setattr(placement.solve, "_neighbourhood_mip",
                        lambda arrays, incumbent, free, *rest: freed.append(free) or real(arrays, incumbent, free, *rest))
    outcome = solve_sets(sets, replace(settings, mip_gap=1e-4, time_limit_s=120), canonical=False)
    notes = outcome.notes
    assert len(freed) == 1 and 0 < freed[0].sum() < 0.5 * arrays.num_variables, notes
    gaps = {name: float(gap) for name, gap in re.findall(r"^(rounded plan|neighbourhood MIP plan): ([0-9.]+)%",
                                                         "\n".join(notes), re.M)}
    assert gaps["neighbourhood MIP plan"] <= gaps["rounded plan"], notes          # never worse
    assert any(n.startswith("branch-and-price:") for n in notes), notes
    result = outcome.result
    assert result.status == solvers.Status.OPTIMAL
    assert result.bound <= optimum * (1 + 1e-9)
    assert result.objective <= optimum * (1 + 1e-4)
    x = result.x
    activity = arrays.a @ x
    assert np.all(activity >= arrays.row_lower - 1e-6) and np.all(activity <= arrays.row_upper + 1e-6)
    assert np.allclose(x[arrays.integer], np.round(x[arrays.integer]), atol=1e-6)


def test_without_a_rounded_plan_the_neighbourhood_is_every_workload(instance, monkeypatch):
    """Rounding can fail (CBC's LP point, fixed, leaves the integer rows infeasible within tolerance): the
    neighbourhood MIP then frees every workload, as the MIP restricted to the LP's arcs, with no start."""
    sets, built, arrays, settings, optimum = instance
    monkeypatch.setattr(placement.solve, "_routing_fixed", lambda *args: None)
    freed = []
    real = placement.solve._neighbourhood_mip
    monkeypatch.setattr(placement.solve, "_neighbourhood_mip",
                        lambda arrays, incumbent, free, *rest: freed.append((incumbent, free))
                        or real(arrays, incumbent, free, *rest))
    outcome = solve_sets(sets, replace(settings, mip_gap=1e-4, time_limit_s=120), canonical=False)
    assert len(freed) == 1 and freed[0][0] is None
    label = column_workloads(built, sets)
    assert all(freed[0][1][label == w].any() for w in range(label.max() + 1))   # every workload free
    assert any(re.match(r"neighbourhood MIP plan: [0-9.]+%", n) for n in outcome.notes), outcome.notes
    assert outcome.result.status == solvers.Status.OPTIMAL
    assert outcome.result.objective <= optimum * (1 + 1e-4)

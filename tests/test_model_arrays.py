"""solvers/model.py: the labelled linear model and its arrays, on models small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import solvers
from solvers import SolverSettings, Status
from solvers.model import LinearModel


def two_by_three() -> LinearModel:
    """x (2 variables, integer, cost 1 and 2) and y (1 variable, continuous, cost 5);
    rows: "cap" x0 + 2 y <= 4 (labelled "r"), "mix" 3 <= x0 + x1 + y <= 3."""
    model = LinearModel()
    model.add_variables("x", pd.Index(["p", "q"], name="item"), lower=0.0, upper=[4.0, 2.0], cost=[1.0, 2.0],
                        integer=True)
    model.add_variables("y", pd.RangeIndex(1, name="slot"), upper=np.inf, cost=5.0)
    model.add_constraints("cap", pd.Index(["r"], name="row"), rows=[0, 0], cols=[0, 2], coefs=[1.0, 2.0], upper=4.0)
    model.add_constraints("mix", pd.RangeIndex(1), rows=[0, 0, 0], cols=[0, 1, 2], coefs=[1.0, 1.0, 1.0],
                          lower=3.0, upper=3.0)
    return model


def test_blocks_and_assembled_arrays():
    model = two_by_three()
    assert model.num_variables == 3 and model.num_constraints == 2
    assert list(model.variables["x"].columns) == [0, 1] and list(model.variables["y"].columns) == [2]
    arrays = model.arrays()
    assert arrays.num_variables == 3 and arrays.num_constraints == 2
    np.testing.assert_array_equal(arrays.lower, [0, 0, 0])
    np.testing.assert_array_equal(arrays.upper, [4, 2, np.inf])
    np.testing.assert_array_equal(arrays.cost, [1, 2, 5])
    np.testing.assert_array_equal(arrays.integer, [True, True, False])
    np.testing.assert_array_equal(arrays.row_lower, [-np.inf, 3])
    np.testing.assert_array_equal(arrays.row_upper, [4, 3])
    np.testing.assert_array_equal(arrays.matrix().toarray(), [[1, 0, 2], [1, 1, 1]])
    assert model.stats() == {"variables": 3, "integer_variables": 2, "constraints": 2, "nonzeros": 5}


def test_duplicate_triplets_are_summed_and_zeros_dropped():
    model = LinearModel()
    model.add_variables("x", pd.RangeIndex(2))
    model.add_constraints("r", pd.RangeIndex(2), rows=[0, 0, 0, 1, 1], cols=[0, 0, 1, 1, 1],
                          coefs=[1.5, 2.5, 3.0, 2.0, -2.0], upper=1.0)
    matrix = model.matrix()
    np.testing.assert_array_equal(matrix.toarray(), [[4.0, 3.0], [0.0, 0.0]])
    assert matrix.nnz == 2  # the entries that cancel are gone, not stored as zeros


def test_names_are_unique_and_rows_in_range():
    model = two_by_three()
    with pytest.raises(ValueError, match="variable block 'x' already exists"):
        model.add_variables("x", pd.RangeIndex(1))
    with pytest.raises(ValueError, match="constraint block 'cap' already exists"):
        model.add_constraints("cap", pd.RangeIndex(1), [0], [0], [1.0])
    with pytest.raises(ValueError, match="row position out of range"):
        model.add_constraints("bad", pd.RangeIndex(1), [1], [0], [1.0])
    with pytest.raises(ValueError, match="row position out of range"):
        model.add_constraints("bad", pd.RangeIndex(1), [-1], [0], [1.0])
    empty = LinearModel()
    assert empty.arrays().num_variables == 0 and empty.matrix().shape == (0, 0)


def test_values_and_activity_are_labelled_by_their_blocks():
    model = two_by_three()
    x = np.array([1.0, 1.5, 0.5])
    values = model.values("x", x)
    assert values.to_dict() == {"p": 1.0, "q": 1.5} and values.index.name == "item" and values.name == "x"
    assert model.values("y", x).to_dict() == {0: 0.5}
    assert model.activity("cap", x).to_dict() == {"r": 2.0}  # 1 + 2 x 0.5
    assert model.activity("mix", x).to_dict() == {0: 3.0}


def test_fix_removes_columns_and_shifts_rows_and_objective():
    arrays = two_by_three().arrays()
    fixed = arrays.fix(np.array([True, False, False]), np.array([2.0]))  # x0 = 2
    assert fixed.num_variables == 2
    np.testing.assert_array_equal(fixed.matrix().toarray(), [[0, 2], [1, 1]])
    np.testing.assert_array_equal(fixed.row_lower, [-np.inf, 1])   # 3 - 2
    np.testing.assert_array_equal(fixed.row_upper, [2, 1])         # 4 - 2, 3 - 2
    np.testing.assert_array_equal(fixed.cost, [2, 5])
    np.testing.assert_array_equal(fixed.upper, [2, np.inf])
    np.testing.assert_array_equal(fixed.integer, [True, False])
    assert fixed.objective_offset == 2.0  # cost 1 x 2
    again = fixed.fix(np.array([False, True]), np.array([0.5]))     # then y = 0.5
    assert again.objective_offset == 2.0 + 2.5
    np.testing.assert_array_equal(again.row_upper, [1, 0.5])


def test_with_row_and_with_objective_leave_the_original_alone():
    arrays = two_by_three().arrays()
    more = arrays.with_row(np.array([0.0, 1.0, 1.0]), -np.inf, 1.0)
    assert more.num_constraints == 3 and arrays.num_constraints == 2
    np.testing.assert_array_equal(more.matrix().toarray()[2], [0, 1, 1])
    assert (more.row_lower[2], more.row_upper[2]) == (-np.inf, 1.0)
    other = arrays.with_objective(np.array([0.0, 0.0, 1.0]), offset=7.0)
    np.testing.assert_array_equal(other.cost, [0, 0, 1])
    assert other.objective_offset == 7.0 and arrays.objective_offset == 0.0
    np.testing.assert_array_equal(arrays.cost, [1, 2, 5])
    relaxed = arrays.relaxed()
    assert not relaxed.integer.any() and arrays.integer.any()


@pytest.mark.parametrize("backend,engine", [("ortools", "highs"), ("ortools", "scip"), ("pulp", "cbc")])
def test_the_arrays_solve_to_the_hand_optimum(backend, engine):
    # min x0 + 2 x1 + 5 y, x0 + x1 + y = 3, x0 + 2y <= 4, x0 <= 4, x1 <= 2 integer: x0 = 3, cost 3
    model = two_by_three()
    settings = SolverSettings(backend=backend, engine=engine, time_limit_s=10)
    result = solvers.solve(model, settings)
    assert result.status == Status.OPTIMAL and result.objective == pytest.approx(3.0), (result.status, result.message)
    assert model.values("x", result.x).round(9).to_dict() == {"p": 3.0, "q": 0.0}
    # with x0 fixed at 1 the rest is x1 = 2 (integer, cost 4) and y = 0: 1 + 4 = 5, reported with the offset
    fixed = model.arrays().fix(np.array([True, False, False]), np.array([1.0]))
    result = solvers.solve(fixed, settings)
    assert result.status == Status.OPTIMAL and result.objective == pytest.approx(5.0), (result.status, result.message)
    # one more row x1 <= 1 leaves y = 1: 1 + 2 + 5 = 8
    capped = fixed.with_row(np.array([1.0, 0.0]), -np.inf, 1.0)
    assert solvers.solve(capped, settings).objective == pytest.approx(8.0)

"""Fix-and-optimize's windows at once (placement/solve.py `_conflicts`, `_next_window`): windows that share
no row run as a pool of threads, one HiGHS thread each, and their answers hold together. And the
redirection that keeps native solver output quiet (solvers/quiet.py), shared by the threads.

Why batching by rows is exact: a window's MIP holds only the rows its free columns touch, so when two
windows touch no common row, neither MIP sees the other's columns; each answer is the one it would be
after the other, and both together satisfy every row. So with ample time, windows at once give the plan
one at a time gives.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import solvers
from placement.edits import edit_loaded
from placement.formulation import build_model
from placement.indexsets import build_index_sets
from placement.scenario import load_scenario
import placement.solve
from placement.solve import (Budget, _conflicts, _fix_and_optimize, _next_window, _routing_fixed, _Savings,
                             _whole_periods, prepare, settings_from, time_windows)
from solvers.quiet import quiet_native_output

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_scale import write_instance  # noqa: E402


@pytest.fixture(scope="module")
def two_by_two(tmp_path_factory):
    """An 8-workload benchmark instance over 2 periods x 2 slices, without its prepaid chips (which alone
    would serve it at no cost): its model, arrays and time windows."""
    loaded = load_scenario(write_instance(tmp_path_factory.mktemp("windows"), 8, periods=2, slices=2))
    loaded = edit_loaded(loaded, {f"pools[{p.id}].max_chips": 0 for p in loaded.scenario.pools if p.kind == "prepaid"})
    _, cells, candidates = prepare(loaded)
    model = build_model(build_index_sets(loaded.scenario, cells, candidates))
    return loaded, model, model.arrays(), time_windows(model)


def _rounded_with_blocks_kept(two_by_two, gap: float):
    """Settings at `gap`, the LP, its rounded plan, and the block columns (kept out of the windows)."""
    loaded, model, arrays, _ = two_by_two
    settings = replace(settings_from(loaded.scenario), mip_gap=gap, time_limit_s=60)
    relaxed = solvers.solve(arrays.relaxed(), replace(settings, relax_integrality=True))
    start = _routing_fixed(arrays, relaxed.x, settings, 60)
    dropped = np.zeros(arrays.num_variables, dtype=bool)
    dropped[model.variables["blocks"].columns] = True
    return settings, relaxed, start, dropped


def _touched(arrays, free):
    return set(arrays.a.tocsc()[:, np.flatnonzero(free)].indices.tolist())


def test_windows_at_once_share_no_row_and_keep_their_order(two_by_two):
    """Blocks kept: (period, slice) windows run together across periods, never within one (the
    mean-quality rows span a period's slices), and the two period windows together. Blocks free: a period
    window's blocks reach the later period's reserved caps, so the period windows conflict. A window never
    starts before one ahead of it in line that it shares a row with; one thread runs one window at a time."""
    _, model, arrays, windows = two_by_two
    blocks = np.zeros(arrays.num_variables, dtype=bool)
    blocks[model.variables["blocks"].columns] = True
    kept = [w & ~blocks for w in windows]
    conflicts = _conflicts(arrays, kept)         # windows: (t1,s1) (t1,s2) (t2,s1) (t2,s2) t1 t2
    for i in range(len(kept)):
        for j in range(len(kept)):
            assert conflicts[i, j] == bool(_touched(arrays, kept[i]) & _touched(arrays, kept[j])), (i, j)
    assert not conflicts[0, 2] and not conflicts[4, 5] and conflicts[0, 1] and conflicts[0, 4]
    assert _next_window(list(range(6)), [], conflicts) == 0
    assert _next_window([1, 2, 3, 4, 5], [0], conflicts) == 2          # (t1,s2) waits for (t1,s1)
    assert _next_window([1, 3, 4, 5], [0, 2], conflicts) is None
    assert _next_window([1, 4, 5], [2], conflicts) == 1
    assert _next_window([4, 5], [3], conflicts) == 4
    assert _next_window([5], [4], conflicts) == 5                      # the periods side by side
    assert _next_window([4, 5], [1], conflicts) == 5                  # t2 passes t1: no row in common
    assert _next_window([1, 4], [2], conflicts) == 1
    assert _next_window([3, 5], [0], conflicts) == 3
    assert _next_window([3, 5], [1], conflicts) == 3
    assert _next_window([2, 5], [0], conflicts) == 2
    assert _next_window([3, 4, 5], [2], conflicts) == 4                # t1 may run beside (t2,s1) ...
    assert _next_window([3, 5], [2], conflicts) is None               # ... (t2,s2) may not, nor t2 past it
    assert _conflicts(arrays, windows)[4, 5]
    assert _touched(arrays, windows[4]) & _touched(arrays, windows[5])
    one_thread = np.ones((6, 6), dtype=bool)          # every window conflicts: one at a time, in order
    assert _next_window([1, 2], [], one_thread) == 1 and _next_window([2], [1], one_thread) is None
    assert _next_window([2, 4], [], one_thread) == 2


def test_a_row_joining_two_windows_keeps_them_apart(two_by_two):
    """Tampered: one row over a column of each of the first period's and the second period's peak windows
    (which otherwise run together) separates them."""
    _, model, arrays, windows = two_by_two
    blocks = np.zeros(arrays.num_variables, dtype=bool)
    blocks[model.variables["blocks"].columns] = True
    kept = [w & ~blocks for w in windows]
    row = np.zeros(arrays.num_variables)
    row[np.flatnonzero(kept[0])[0]] = row[np.flatnonzero(kept[2])[0]] = 1.0
    joined = arrays.with_row(row, -np.inf, np.inf)
    assert _conflicts(joined, kept)[0, 2] and not _conflicts(arrays, kept)[0, 2]
    assert _next_window([1, 2, 3], [0], _conflicts(arrays, kept)) == 2
    assert _next_window([1, 2, 3], [0], _conflicts(joined, kept)) is None    # (t2,s2) may not pass (t2,s1)


def test_windows_at_once_give_the_plan_of_windows_one_at_a_time(two_by_two):
    """From the same rounded plan, at gap 1e-9 with ample time (each window proven optimal), two threads reach
    exactly the cost one thread reaches, cheaper than the start, and the plan satisfies every row and bound."""
    _, _, arrays, windows = two_by_two
    settings, relaxed, start, dropped = _rounded_with_blocks_kept(two_by_two, 1e-9)
    plans = {}
    for threads in (1, 2):
        notes: list[str] = []
        plans[threads] = _fix_and_optimize(arrays, start, dropped, windows, replace(settings, threads=threads),
                                           Budget(120), notes, relaxed.objective, 0.0, 1.0)
        assert any(n.startswith("fix-and-optimize: 6 time windows solved") for n in notes), notes
    assert any("(up to 2 at once)" in n for n in notes), notes
    assert plans[2][1] == pytest.approx(plans[1][1], rel=1e-9, abs=1e-6)
    assert plans[2][1] < start[1] - 1.0          # the windows improve the rounded plan here

    x = plans[2][0]
    activity = arrays.a @ x
    assert np.all(activity >= arrays.row_lower - 1e-6) and np.all(activity <= arrays.row_upper + 1e-6)
    assert np.all(x >= arrays.lower - 1e-9) and np.all(x <= arrays.upper + 1e-9)
    assert np.allclose(x[arrays.integer], np.round(x[arrays.integer]), atol=1e-6)
    assert float(arrays.cost @ x + arrays.objective_offset) == pytest.approx(plans[2][1], rel=1e-12)


def test_the_quiet_redirection_is_shared_by_threads(capfd):
    """Two threads enter and leave in the order that broke a redirection per thread (A in, B in, A out, B
    out: B would have saved the silenced descriptor and put it back). Output inside is silenced while
    either is inside, and descriptor 1 points where it did before once both have left."""
    before = os.fstat(1)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with quiet_native_output():
            a_in.set()
            b_in.wait(5)
            os.write(1, b"silenced-a\n")
        a_out.set()

    def second():
        a_in.wait(5)
        with quiet_native_output():
            b_in.set()
            a_out.wait(5)
            os.write(1, b"silenced-b\n")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    after = os.fstat(1)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    os.write(1, b"heard\n")
    out = capfd.readouterr().out
    assert "heard" in out and "silenced" not in out


def test_the_windows_stop_once_the_plan_is_within_the_gap_of_a_proven_bound(two_by_two):
    """With a bound already proven that the plan is within the gap of, the windows stop after the first
    batch (one window alone, two at once); without it, all six run."""
    _, _, arrays, windows = two_by_two
    settings, relaxed, start, dropped = _rounded_with_blocks_kept(two_by_two, 1e-4)
    for threads, done in ((1, 1), (2, 2)):
        notes: list[str] = []
        plan = _fix_and_optimize(arrays, start, dropped, windows, replace(settings, threads=threads), Budget(60),
                                 notes, relaxed.objective, 0.0, 1.0, proven=start[1])
        assert f"fix-and-optimize: within the gap of the proven bound after {done} of 6 windows; the rest skipped" \
            in notes, notes
        assert plan[1] <= start[1] + 1e-9
        notes = []
        _fix_and_optimize(arrays, start, dropped, windows, replace(settings, threads=threads), Budget(60), notes,
                          relaxed.objective, 0.0, 1.0)
        assert not any("within the gap of the proven bound" in n for n in notes)
        assert any(n.startswith("fix-and-optimize: 6 time windows solved") for n in notes), notes


def test_a_mip_stops_once_the_caller_has_what_it_needs():
    """solvers.solve's `stop`: HiGHS polls it with its best objective so far and ends the search once it
    says so. A 120-item knapsack over five rows (optimum -1,710 at gap 0), stopped at the first plan of
    -1,600 or better: `feasible`, at or below -1,600, above the optimum."""
    import scipy.sparse as sp

    from solvers.base import SolverSettings
    from solvers.model import ArrayModel

    rng = np.random.default_rng(1)
    n = 120
    weight, value = rng.integers(20, 60, n).astype(float), rng.integers(20, 60, n).astype(float)
    a = sp.csr_matrix(np.vstack([weight] + [rng.integers(20, 60, n) for _ in range(4)]))
    model = ArrayModel(a, np.zeros(n), np.ones(n), -value, np.ones(n, dtype=bool), np.full(5, -np.inf),
                       np.r_[weight.sum() / 2, np.full(4, 1200.0)])
    settings = SolverSettings(backend="highspy", mip_gap=0.0, time_limit_s=60)
    whole = solvers.solve(model, settings)
    assert whole.status == solvers.Status.OPTIMAL and whole.objective == pytest.approx(-1710)
    seen: list[float] = []
    stopped = solvers.solve(model, settings, stop=lambda best: seen.append(best) or best <= -1600)
    assert stopped.status == solvers.Status.FEASIBLE and "nterrupt" in stopped.message
    assert -1710 < stopped.objective <= -1600
    assert seen and seen[-1] == stopped.objective


def test_windows_running_stop_when_their_savings_together_reach_the_gap():
    """Plan 1,000, proven bound 990, gap 0.5%: the windows stop at a plan within 0.45% (a tenth in hand),
    994.47 or less. Two windows running each finding 3 together bring it to 994: both stop then, and a
    worse report later does not undo a saving. A window that finishes puts its saving in the plan; one
    started after it counts from there. Without a proven bound, nothing to stop at."""
    from solvers.base import SolverSettings

    settings = SolverSettings(backend="highspy", mip_gap=0.005)
    savings = _Savings(1000.0, 990.0, settings)
    first, second = savings.stop_for(0), savings.stop_for(1)
    assert not first(997.0)
    assert second(997.0)
    assert first(999.0)
    savings = _Savings(1000.0, 990.0, settings)
    first, second = savings.stop_for(0), savings.stop_for(1)
    assert not first(998.0) and not second(999.0)            # 997 together
    savings.settle(0, 998.0)                                  # the first done: the plan is 998
    third = savings.stop_for(2)                               # starts from 998
    assert not third(996.0)                                   # 998 - 2 - 1 = 995
    assert third(995.0)                                       # 998 - 3 - 1 = 994
    assert second(999.0)
    assert _Savings(1000.0, 990.0, settings).stop_for(0)(994.4)
    assert not _Savings(1000.0, 990.0, settings).stop_for(0)(994.5)
    assert _Savings(1000.0, None, settings).stop_for(0) is None


def test_the_settled_windows_are_the_whole_periods_when_they_fit(two_by_two, monkeypatch):
    """Once the blocks are settled, the windows are the periods alone, each the union of its slices' windows,
    while each touches at most MIP_MAX_ROWS rows (the rows its MIP keeps); else every window as before."""
    _, model, arrays, windows = two_by_two
    _, _, start, dropped = _rounded_with_blocks_kept(two_by_two, 1e-4)
    periods = time_windows(model, (("period",),))
    assert len(windows) == 6 and len(periods) == 2
    assert all(np.array_equal(whole, window) for whole, window in zip(periods, windows[4:]))
    assert np.array_equal(periods[0], windows[0] | windows[1] | model_period_columns(model, 0))
    assert _whole_periods(arrays, windows, periods, dropped) is periods
    rows = [arrays.fix(~(w & ~dropped), start[0][~(w & ~dropped)]).without_empty_rows().num_constraints
            for w in periods]
    monkeypatch.setattr(placement.solve, "MIP_MAX_ROWS", max(rows))
    assert _whole_periods(arrays, windows, periods, dropped) is periods
    monkeypatch.setattr(placement.solve, "MIP_MAX_ROWS", max(rows) - 1)
    assert _whole_periods(arrays, windows, periods, dropped) is windows
    assert _whole_periods(arrays, windows, None, dropped) is windows


def model_period_columns(model, period: int) -> np.ndarray:
    """Columns of the period-level blocks (no slice) in `period`."""
    mask = np.zeros(model.num_variables, dtype=bool)
    for block in model.variables.values():
        dims = list(block.coords.dense)
        if "period" in dims and "slice" not in dims and block.coords.size:
            position = np.indices(block.coords.shape).reshape(len(block.coords.shape), -1)
            mask[block.columns[position[1 + dims.index("period")] == period]] = True
    return mask

"""A solve from validated scenario to labelled solution: lookup, index sets, MIP, backend, baselines.

One wall-clock budget (`Budget`) covers the whole command: relaxation, heuristic, full MIP, the canonical
pass, tie-break LPs, baselines and diagnosis all take what is left of it, and whatever a stage had to
skip or cut short is recorded in `Outcome.notes` and the plan.

Bounds are only ever proven ones: the LP relaxation's optimum, or a MIP solver's dual bound. An incumbent
is never reported as a bound.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

import solvers
from placement.capacity_types import reserved
from placement.extract import SHARE_EPS, Solution, extract
from placement.formulation import arc_load, build_model
from placement.indexsets import IndexSets, build_index_sets
from placement.profiles import demand_cells, lookup, profile_table
from placement.scenario import LoadedScenario, Scenario
from solvers import SolverResult, SolverSettings, Status
from solvers.base import relative_gap, resolve_threads
from solvers.quiet import quiet_native_output

# The canonical pass (exact optimum, then the fewest replicas among plans of that cost) runs on models of at
# most this many variables: small instances, where two more exact MIPs cost little and make every engine
# return the same rows. Larger plans agree across engines in cost within the gap, not row by row.
CANONICAL_MAX_VARIABLES = 5000
# ... and when the half of the budget left it may take is at least this many times the seconds the solve
# took to reach the requested gap: closing a gap to zero takes longer than opening the search did. The
# four-quarter example (1,392 columns, gap 0.2%): reached in 28-31 s; the exact search stopped after 40 s of
# the 120 s limit, its bound still 0.35% down; HiGHS alone needs 58 s at gap 0. Skipping it there keeps the
# same plan, 72 s -> about 32 s. With the rented fleet's rows (Fleet-rented-beyond-need) it reaches 0.2% in
# 18 s, and an exact search of 47 s still did not finish: more than 2.6 times. Hence 3.
CANONICAL_PROOF_FACTOR = 3.0
# The stages that look for the plan and its proof: their seconds are plan.json's solver.solve_s and the
# time the canonical pass weighs (the rest: parse, lookup, build, canonical, tie-break, outputs, ...).
SOLVE_STAGES = ("relaxation", "rounding", "heuristic", "settle_blocks", "fix_and_optimize", "settle_blocks_more",
                "branch_and_price", "mip")

# Models with at least this many columns solve their LP relaxation by pricing share columns in
# (solvers/pricing.py); smaller ones solve the whole LP, which is as fast there.
PRICING_MIN_COLUMNS = 50_000
# Above this many rows, HiGHS's MIP root (after the root LP, before any node: no interrupt callback fires)
# ran 135-177 s past a 20 s limit (7,500 workloads: 19,500 rows, 68k columns, 28 integers). There the plan
# is the rounded one with the LP bound, and the notes say the MIP stages were skipped.
MIP_MAX_ROWS = 10_000
# The full MIP's root on the whole model ran 45 s past its limit at 388k columns (3,000 workloads) and held
# it at 135k: above this many columns the best heuristic plan stands, with the LP bound.
FULL_MIP_MAX_COLUMNS = 200_000
# Branch-and-price proves plans of models with at least this many columns. On small ones HiGHS's own MIP
# (presolve, cuts) is far faster: a 30-workload cut-down model (about 700 columns) at gap 1e-6, branch-and-
# price 12,290 nodes in 13 s without the proof, HiGHS under a second. At 100 workloads (13,872 columns) the
# proof takes branch-and-price 0.16 s, HiGHS's MIP 2.6 s.
BRANCH_AND_PRICE_MIN_COLUMNS = 10_000
# Models with reserved blocks over several time windows take the blocks' path (settle the blocks, then
# fix-and-optimize) from this many columns, within MIP_MAX_ROWS too. There the neighbourhood MIP over every
# workload and branch-and-price leave a gap that the blocks make: 100 workloads x 4 x 3 (158k columns,
# 3,904 rows), 120 s: the neighbourhood MIP 27 s to 0.85% above the LP, branch-and-price 559 nodes without
# raising the bound, `feasible` at 5.4e-3; the blocks' path: search 0.6 s (bound 0.31% above the LP: the
# integer blocks are most of the gap at that size), windows to 1.3e-4 of it. 300 workloads: 6.9e-3 ->
# 2.7e-4. The plans cost 0.5-0.7% less. Below it (the quarters example, 1,392 columns) HiGHS's MIP does it.
BLOCKS_PATH_MIN_COLUMNS = 50_000
# The priced LP starts, for every cell, from its few cheapest arcs and its highest-quality one.
PRICING_START_CHEAPEST = 3
# The neighbourhood MIP frees a random set of whole workloads worth about this many rows, the rest fixed at
# the plan (all workloads when the model has no more rows, or has time windows and fits MIP_MAX_ROWS: then
# it is the MIP restricted to the LP's arcs). Measured from the rounded plan, at gap 1e-5: 1,000 workloads
# 6.1e-3 -> 7.4e-4 above the LP bound in 3.5 s (over every workload: 13.5 s); 3,000 3.3e-3 -> 3.1e-4 in
# 7.5 s (over every workload: 1e-4, but only after 37-65 s); 7,500 (22,596 rows, where no MIP over every
# workload runs) 4.6e-4 -> 1.6e-4 in 9.6 s. Branch-and-price then finds and proves the rest.
NEIGHBOURHOOD_ROWS = 1000
# The neighbourhood MIP stops at this fraction of the requested gap: its gap is measured against the whole
# plan's cost, so at the requested gap it would stop as soon as it is that close to its own bound. So do
# fix-and-optimize's windows after the blocks are settled (the time is there). Not otherwise: at 1,000 x 4
# x 3, alone with no time limit, 16 windows at 1e-5 reach 3.9e-4 above the LP bound in 90 s (at 1e-4:
# 6.1e-4 in 42 s), but within the command's 120 s the slice windows then leave the period windows too
# little time: 8.5e-4 (twice). A second pass over the windows improved nothing.
PART_GAP = 0.1
# Branch-and-price starts from the arcs the LP and the plan use and, per (cell, period, slice), this many
# more of the cheapest by the LP's reduced costs; it prices in the rest as nodes need them.
PROOF_ARCS_PER_SLOT = 2
# Models too big for a MIP over several time windows settle their reserved blocks first when the budget
# left after the LP is at least SETTLE_LPS times the LP's seconds on one thread, SETTLE_LPS / TWO_THREADS
# on more: a search over the blocks held in the periods whose reserved capacity the LP prices, its least
# leaf the start of fix-and-optimize (blocks then kept) and its bound the plan's. In less time the search
# would stop short with a worse start than rounding's, or leave the windows too little time to bring the
# leaf's plan (0.12-0.18% above the LP at 1,000 x 4 x 3) below rounding's windows' (0.05%). There (LP
# 17-19 s), on one thread the search, stopped at LEAF_GAP and started from the LP's basis, takes 26-28 s
# and the windows 57-64 s (at 120 s they are cut short about half the time: 2.0e-4, still better than the
# 5.2e-4 of the 16 windows without the search); two threads (two node LPs at once, then the period windows
# two at a time) take 20 s and 23-25 s: two simplex runs at once on the two cores each run about a third
# slower (TWO_THREADS). Before the search stopped early it took 2 LPs and the rule asked for 4.
# Beyond two threads nothing was measured, so no more is assumed. The search gets SETTLE_SEARCH_SHARE of
# what is left (it stops sooner; the rest goes to the windows).
SETTLE_LPS = 3.5
TWO_THREADS = 1.45
# by min(threads, 2); a cap: at 1,000 x 4 x 3 (120 s, two threads) the search stops at LEAF_GAP after 20 s
# of the 60 s it may take, and the windows get the rest
SETTLE_SEARCH_SHARE = {1: 1 / 3, 2: 0.6}
# After the blocks are settled, fix-and-optimize keeps this share of the budget left for the tie-break LPs
# and the outputs (1,000 x 4 x 3: 8-13 s of about 250 s), none for branch-and-price.
SETTLED_WINDOWS_RESERVE = 0.1
# The blocks' search stops once its least open node is within LEAF_GAP x the requested gap below its least
# leaf: that leaf is near enough the least to start the windows from, and its bound, if the windows' plan
# needs more, is raised afterwards by taking the search up again. At 1,000 x 4 x 3 the leaf that is the
# least was found at node 21 of 45 (30 s of 51), its least open node then 4.0e-5 below it: the other 21 s
# only proved it (with the root from the LP's basis and today's LP: the whole proof 40 s, stopped 20 s).
# From it the windows reach 1e-5 to 6e-5 above the leaf, within the gap of that bound.
LEAF_GAP = 0.5


class Budget:
    """Wall-clock seconds for a whole command, shared by its stages."""

    def __init__(self, seconds: float, started: float | None = None):
        self.seconds = float(seconds)
        self.started = time.perf_counter() if started is None else started

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def remaining(self) -> float:
        return max(self.seconds - self.elapsed, 0.0)

    def slice(self, fraction: float = 1.0, floor: float = 0.05) -> float:
        """Seconds a stage may take: a fraction of what remains, at least `floor`, never past the end."""
        return max(min(self.remaining * fraction, self.remaining), floor)

    @property
    def exhausted(self) -> bool:
        return self.remaining <= 0.05


@dataclass
class Baseline:
    name: str
    accelerator: str
    feasible: bool
    status: str
    cost_per_hour: float | None
    reason: str = ""


@dataclass
class Outcome:
    """Everything a plan document is made from."""

    status: Status
    sets: IndexSets
    result: SolverResult | None
    solution: Solution | None
    lp_bound: float | None
    build_s: float
    baselines: list[Baseline] = field(default_factory=list)
    table: pd.DataFrame | None = None        # the profile table the solve used
    cells: pd.DataFrame | None = None        # demand cells
    candidates: pd.DataFrame | None = None   # every (cell, deployment) with R > 0 under the SLO
    model_stats: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    canonical: bool = False
    rolling: dict | None = None              # a rolling horizon's window and steps (placement.rolling)

    @property
    def hours(self) -> float:
        return self.sets.horizon.total_hours


def settings_from(scenario: Scenario, **overrides) -> SolverSettings:
    options = scenario.options.solver
    backend, engine = options.resolved
    values = dict(backend=backend, engine=engine, time_limit_s=options.time_limit_s, mip_gap=options.mip_gap,
                  threads=options.threads)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return SolverSettings(**{**values, "threads": resolve_threads(values["threads"])})


def prepare(loaded: LoadedScenario) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Profile table, demand cells and candidate arcs (every (cell, deployment) with R > 0 under the SLO)."""
    table = profile_table(loaded)
    cells = demand_cells(loaded.scenario)
    return table, cells, lookup(cells, table)


def optimize(loaded: LoadedScenario, settings: SolverSettings, baselines: bool | None = None,
             budget: Budget | None = None) -> Outcome:
    scenario = loaded.scenario
    budget = budget or Budget(settings.time_limit_s)
    started = time.perf_counter()
    table, cells, candidates = prepare(loaded)
    lookup_s = time.perf_counter() - started
    sets = build_index_sets(scenario, cells, candidates)
    outcome = solve_sets(sets, settings, budget, started)
    outcome.timings = {"lookup": lookup_s, **outcome.timings}
    outcome.table, outcome.cells, outcome.candidates = table, cells, candidates
    want_baselines = scenario.options.baselines if baselines is None else baselines
    if want_baselines and outcome.solution is not None:
        started = time.perf_counter()
        outcome.baselines = single_accelerator_baselines(scenario, cells, candidates, settings, budget,
                                                         outcome.notes)
        outcome.timings["baselines"] = time.perf_counter() - started
    elif not want_baselines:
        outcome.notes.append("single-accelerator baselines skipped (not asked for)")
    return outcome


def solve_sets(sets: IndexSets, settings: SolverSettings, budget: Budget | None = None,
               started: float | None = None, canonical: bool = True) -> Outcome:
    """Build and solve the MIP on given index sets; infeasible at once if a must-serve cell has no arc."""
    budget = budget or Budget(settings.time_limit_s)
    started = time.perf_counter() if started is None else started
    if unservable_cells(sets).any():
        return Outcome(Status.INFEASIBLE, sets, None, None, None, time.perf_counter() - started)
    clock = time.perf_counter()
    model = build_model(sets)
    arrays = model.arrays()
    timings = {"build": time.perf_counter() - clock}
    build_s = time.perf_counter() - started
    notes: list[str] = []
    result, lp_bound = solve_model(model, sets, arrays, settings, budget, timings, notes)
    solution = None
    is_canonical = False
    if result.has_solution:
        x = result.x
        if canonical:
            clock = time.perf_counter()
            solve_s = sum(seconds for stage, seconds in timings.items() if stage in SOLVE_STAGES)
            x, result, is_canonical = canonical_integers(model, sets, arrays, x, result, settings, budget, notes,
                                                         solve_s)
            timings["canonical"] = time.perf_counter() - clock
        clock = time.perf_counter()
        x = least_load_routing(model, sets, arrays, x, settings, budget, notes)
        timings["tie_break"] = time.perf_counter() - clock
        clock = time.perf_counter()
        blocks = model.array("blocks", x) if "blocks" in model.variables else None
        solution = extract(model, sets, x, blocks)
        timings["extract"] = time.perf_counter() - clock
    return Outcome(result.status, sets, result, solution, lp_bound, build_s, model_stats=model.stats(),
                   timings=timings, notes=notes, canonical=is_canonical)


def solve_model(model, sets: IndexSets, arrays, settings: SolverSettings, budget: Budget | None = None,
                timings: dict[str, float] | None = None, notes: list[str] | None = None
                ) -> tuple[SolverResult, float | None]:
    """A built placement model through solve_with_incumbent, with what its stages need from the index sets:
    each share column's deployment and, on large models, the columns the priced LP starts from."""
    share = model.variables["share"]
    per_arc = share.coords.size // max(len(sets.arcs), 1)
    groups = np.repeat(sets.arcs["deployment"].to_numpy(), per_arc)
    # the (cell, period, slice) each share column serves: its coverage row
    slots = np.repeat(sets.arcs["cell"].to_numpy(), per_arc) * per_arc + np.tile(np.arange(per_arc), len(sets.arcs))
    lp_start = pricing_start(model, sets, arrays) if arrays.num_variables >= PRICING_MIN_COLUMNS else None
    return solve_with_incumbent(arrays, settings, share.columns, groups, budget, timings, notes, lp_start=lp_start,
                                windows=time_windows(model), arc_slots=slots, workloads=column_workloads(model, sets),
                                held_blocks=reserved.held_blocks(model, sets),
                                period_windows=time_windows(model, (("period",),)),
                                arc_ids=np.repeat(np.arange(len(sets.arcs)), per_arc))


def column_workloads(model, sets: IndexSets) -> np.ndarray:
    """The workload of each column (its position among the cells' workloads), -1 for the columns many
    workloads share (replicas, blocks, fleet, churn): the neighbourhood MIP frees whole workloads."""
    codes = pd.Index(pd.unique(sets.cells["workload"]))
    cell_workload = codes.get_indexer(sets.cells["workload"])
    label = np.full(model.num_variables, -1, dtype=np.int64)
    for block in model.variables.values():
        base = block.coords.base
        if "workload" in base:
            of_base = codes.get_indexer(base["workload"])
        elif "cell" in base:
            of_base = cell_workload[base["cell"].to_numpy()]
        else:
            continue
        label[block.columns] = np.repeat(of_base, block.coords.size // max(len(base), 1))
    return label


def time_windows(model, levels: tuple[tuple[str, ...], ...] = (("period", "slice"), ("period",))) -> list[np.ndarray]:
    """Column masks of the model's time windows, for fix-and-optimize: by default each (period, slice), then
    each period (its slices together with its period-level integers: reserved blocks bought, fleet held);
    `levels` picks which. Columns without a period (none today) belong to no window. Empty for a single
    (period, slice)."""
    labels = {}
    for dims in dict.fromkeys((("period", "slice"), *levels)):     # each level once
        label = np.full(model.num_variables, -1, dtype=np.int64)
        for block in model.variables.values():
            if not set(dims) <= set(block.coords.dense):
                continue
            names = list(block.coords.dense)
            position = np.indices(block.coords.shape).reshape(len(block.coords.shape), -1)
            label[block.columns] = np.ravel_multi_index(
                tuple(position[1 + names.index(d)] for d in dims),
                tuple(len(block.coords.dense[d]) for d in dims))
        labels[dims] = label
    if labels[("period", "slice")].max(initial=-1) < 1:
        return []
    return [labels[dims] == k for dims in levels for k in range(int(labels[dims].max()) + 1)]


def solve_with_incumbent(arrays, settings: SolverSettings, arc_columns: np.ndarray | None = None,
                         arc_groups: np.ndarray | None = None, budget: Budget | None = None,
                         timings: dict[str, float] | None = None,
                         notes: list[str] | None = None, lp_start: np.ndarray | None = None,
                         windows: list[np.ndarray] | None = None, arc_slots: np.ndarray | None = None,
                         workloads: np.ndarray | None = None, held_blocks=None,
                         period_windows: list[np.ndarray] | None = None,
                         arc_ids: np.ndarray | None = None) -> tuple[SolverResult, float | None]:
    """LP relaxation, then heuristic plans, then the proof within what is left of the budget.

    1. The relaxation gives a proven bound and proves infeasibility early. On large models (`lp_start`,
       the columns to start from, given and HiGHS the backend) it is solved by pricing columns in
       (solvers/pricing.py): same optimum, a fraction of the columns; `arc_ids` (each arc column's arc,
       the same in every (period, slice)) lets each round take in the other slots of the arcs it uses.
    2. Rounding: the relaxation's routing kept, replicas and blocks solved (a small integer program).
    3. The neighbourhood MIP: a random set of whole workloads (`workloads` labels each column, -1 for the
       columns they share) worth about NEIGHBOURHOOD_ROWS rows, free over the arcs the relaxation priced in
       of the deployments it uses (`arc_groups` names each arc column's deployment), every other column fixed
       at the rounded plan, started from it, so it never returns worse. With time `windows` (several
       periods or slices) every workload is free (the MIP restricted to the LP's arcs) while the model fits
       MIP_MAX_ROWS; above it, or with reserved blocks on BLOCKS_PATH_MIN_COLUMNS columns or more,
       fix-and-optimize instead: the MIP of one window at a time (each (period, slice), then each period),
       everything outside it fixed at the best plan. Before it, when the budget
       allows (SETTLE_LPS), the reserved blocks are settled (`held_blocks`, from
       capacity_types/reserved.py): see _settle_blocks. Then the windows are the whole periods
       (`period_windows`) when each fits MIP_MAX_ROWS: see _whole_periods.
    4. When the best plan is within the requested gap of the LP bound it is proven optimal. Otherwise, with
       HiGHS, branch-and-price (solvers/branch_and_price.py) proves or improves it: a branch-and-bound whose
       nodes are priced LPs, from the arcs the plans use and the cheapest few per (cell, period, slice)
       (`arc_slots`) (7,500 workloads: 4.6e-4 -> within 1e-4 in 19 nodes, 10.6 s; HiGHS's MIP does not get
       past its root there). Other backends run the full MIP with the plan as its start, if the model is small
       enough and time is left for its root. The best plan is returned as `feasible` with the best proven
       bound when the gap cannot be closed.
    """
    budget = budget or Budget(settings.time_limit_s)
    timings = timings if timings is not None else {}
    notes = notes if notes is not None else []
    clock = time.perf_counter()
    siblings = None
    if arc_ids is not None and arc_columns is not None:
        siblings = np.full(arrays.num_variables, -1, dtype=np.int64)
        siblings[arc_columns] = arc_ids
    relaxed, active = _relaxation(arrays, settings, budget, lp_start, notes, siblings)
    timings["relaxation"] = time.perf_counter() - clock
    if relaxed.status == Status.INFEASIBLE:
        return relaxed, None
    # a priced LP stopped by the time limit still gives an LP point and a proven (weaker) bound
    lp_bound = relaxed.bound if relaxed.has_solution else None
    too_big = arrays.num_constraints > MIP_MAX_ROWS
    proof_follows = (settings.backend == "highspy" and arc_columns is not None and len(arc_columns) > 0
                     and arrays.num_variables >= BRANCH_AND_PRICE_MIN_COLUMNS)
    incumbent = None
    searched = None         # a proven bound above the LP's: the blocks' search, then branch-and-price
    blocks_search = None    # the blocks' search, when it stopped before proving its least leaf (LEAF_GAP)
    windows_reserve = 0.25  # of the budget left, kept by fix-and-optimize for the stages after it
    windows_gap = 1.0       # fix-and-optimize's windows stop at this share of the requested gap
    if lp_bound is not None and arrays.integer.any() and (~arrays.integer).any():
        clock = time.perf_counter()
        incumbent = _routing_fixed(arrays, relaxed.x, settings, budget.slice(1 / 4))
        timings["rounding"] = time.perf_counter() - clock
        _note_plan(notes, "rounded plan", incumbent, lp_bound)
        left_out = _left_out_arcs(relaxed.x, arc_columns, arc_groups, arrays.num_variables, active)
        # the blocks are settled by a search of HiGHS's (branch_and_price); other backends keep their path
        blocks_path = too_big or (held_blocks is not None and settings.backend == "highspy"
                                  and arrays.num_variables >= BLOCKS_PATH_MIN_COLUMNS)
        if blocks_path and windows and incumbent is not None and not _within_gap(incumbent, lp_bound, settings):
            notes.append(f"neighbourhood MIP skipped: {arrays.num_constraints:,} rows > {MIP_MAX_ROWS:,} over several "
                         "time windows; fix-and-optimize instead" if too_big else
                         f"neighbourhood MIP skipped: reserved blocks over several time windows, "
                         f"{arrays.num_variables:,} columns; the blocks settled first, then fix-and-optimize")
            if (held_blocks is not None and relaxed.duals is not None and arc_columns is not None
                    and settings.backend == "highspy"
                    and budget.remaining >= SETTLE_LPS / (TWO_THREADS if settings.threads > 1 else 1.0)
                    * timings["relaxation"]):
                clock = time.perf_counter()
                initial = _proof_columns(arrays, relaxed, incumbent[0], arc_columns, arc_slots, active)
                settled = _settle_blocks(arrays, relaxed, incumbent, held_blocks, initial, settings,
                                         budget.slice(SETTLE_SEARCH_SHARE[min(max(settings.threads, 1), 2)]),
                                         notes)
                timings["settle_blocks"] = time.perf_counter() - clock
                if settled is not None:
                    start, searched, kept, blocks_search = settled
                    if start is not None:
                        # the windows work from the leaf's deployments, its blocks kept, at a tenth of the gap
                        # (at the gap, each window stops within 8.2k of its bound at 1,000 x 4 x 3, and the
                        # plan there stayed 25.5k above the LP); they take the time branch-and-price would:
                        # its bound does not rise above the blocks' at this size (48 nodes in 123 s, no gain)
                        incumbent = start
                        left_out = _left_out_arcs(start[0], arc_columns, arc_groups, arrays.num_variables, active) | kept
                        _note_plan(notes, "plan rounded from the settled blocks", incumbent, lp_bound)
                        proof_follows, windows_reserve, windows_gap = False, SETTLED_WINDOWS_RESERVE, PART_GAP
                        windows = _whole_periods(arrays, windows, period_windows, left_out)
            clock = time.perf_counter()
            incumbent = _fix_and_optimize(arrays, incumbent, left_out, windows, settings, budget, notes, lp_bound,
                                          windows_reserve, windows_gap, searched)
            timings["fix_and_optimize"] = time.perf_counter() - clock
            _note_plan(notes, "fix-and-optimize plan", incumbent, lp_bound)
            if blocks_search is not None and not _within_gap(incumbent, _proven_bound(lp_bound, searched), settings):
                clock = time.perf_counter()
                searched = _raise_blocks_bound(blocks_search, incumbent, searched, settings,
                                               budget.remaining - _after_reserve(budget, timings), notes)
                timings["settle_blocks_more"] = time.perf_counter() - clock
        elif not _within_gap(incumbent, lp_bound, settings):
            # without a rounded plan to fix the rest at (rounding failed), every workload is free
            free = _neighbourhood(workloads, arrays.num_variables, arrays.num_constraints,
                                  whole=bool(windows) or incumbent is None)
            if arrays.num_constraints > MIP_MAX_ROWS and free.all():
                notes.append(f"neighbourhood MIP skipped: {arrays.num_constraints:,} rows > {MIP_MAX_ROWS:,} and no "
                             "rounded plan or workload labels to choose a neighbourhood by")
            else:
                clock = time.perf_counter()
                # a quarter of what is left when branch-and-price follows, half when the full MIP does
                share_left = 0.25 if proof_follows else 0.5 if arrays.num_variables <= FULL_MIP_MAX_COLUMNS else 0.8
                better = _neighbourhood_mip(arrays, incumbent, free & ~left_out, _from_plan(settings, incumbent, lp_bound),
                                            budget.slice(share_left))
                timings["heuristic"] = time.perf_counter() - clock
                _note_plan(notes, "neighbourhood MIP plan", better, lp_bound)
                if better is not None and (incumbent is None or better[1] < incumbent[1]):
                    incumbent = better
        if _within_gap(incumbent, _proven_bound(lp_bound, searched), settings):
            which = "the LP bound" if searched is None else "the settled blocks' bound"
            return _heuristic_result(Status.OPTIMAL, incumbent, _proven_bound(lp_bound, searched), relaxed, settings,
                                     f"proven by {which}: a heuristic plan is within the gap"), lp_bound
    reserve = _after_reserve(budget, timings)
    full_mip_follows = not too_big and arrays.num_variables <= FULL_MIP_MAX_COLUMNS
    if incumbent is not None and proof_follows:
        # where the full MIP can follow, half of the time: what branch-and-price does not close, it may
        clock = time.perf_counter()
        initial = _proof_columns(arrays, relaxed, incumbent[0], arc_columns, arc_slots, active)
        proved = _branch_and_price(arrays, relaxed, initial, incumbent, lp_bound, settings,
                                   max((budget.remaining - reserve) * (0.5 if full_mip_follows else 1.0), 0.05),
                                   notes, searched)
        timings["branch_and_price"] = time.perf_counter() - clock
        if proved is not None and (proved.status == Status.OPTIMAL or not full_mip_follows):
            return proved, lp_bound
        if proved is not None:
            incumbent, searched = (proved.x, proved.objective), proved.bound
    bound = _proven_bound(lp_bound, searched)
    root_estimate = 3.0 * timings["relaxation"] * _priced_fraction(arrays, active) + 1.0
    if incumbent is not None and too_big:
        notes.append(f"full MIP skipped: {arrays.num_constraints:,} rows > {MIP_MAX_ROWS:,}, where HiGHS's MIP root "
                     "does not stop at the time limit")
        return _heuristic_result(Status.FEASIBLE, incumbent, bound, relaxed, settings,
                                 "heuristic plan (model too large for the MIP stages)"), lp_bound
    if incumbent is not None and arrays.num_variables > FULL_MIP_MAX_COLUMNS:
        notes.append(f"full MIP skipped: {arrays.num_variables:,} columns > {FULL_MIP_MAX_COLUMNS:,}, where HiGHS's "
                     "root on the whole model does not stop at the time limit; the plan's bound is the LP relaxation's")
        return _heuristic_result(Status.FEASIBLE, incumbent, bound, relaxed, settings,
                                 "heuristic plan (model too large for the full MIP)"), lp_bound
    if incumbent is not None and budget.remaining - reserve < root_estimate:
        notes.append(f"full MIP skipped: {budget.remaining:.1f} s left, its root alone needs about "
                     f"{root_estimate:.0f} s on this model; the plan's bound is "
                     + ("the LP relaxation's" if searched is None else "a search's (blocks, branch-and-price)"))
        return _heuristic_result(Status.FEASIBLE, incumbent, bound, relaxed, settings,
                                 "time limit: heuristic plan"), lp_bound
    clock = time.perf_counter()
    start = incumbent[0] if incumbent is not None else None
    result = solvers.solve(arrays, replace(_from_plan(settings, incumbent, lp_bound),
                                           time_limit_s=max(budget.remaining - reserve, 0.05)),
                           start=start)
    timings["mip"] = time.perf_counter() - clock
    bound = _proven_bound(result.bound, lp_bound, searched)
    if result.has_solution and (incumbent is None or result.objective <= incumbent[1]):
        status = result.status
        if status == Status.FEASIBLE:
            notes.append("MIP stopped at the time limit: plan not proven optimal")
        return replace(result, bound=bound), lp_bound
    if incumbent is None:
        return replace(result, bound=bound), lp_bound
    notes.append("MIP found nothing better than the heuristic plan in time")
    message = f"{result.message}; plan from the heuristic (the MIP found nothing better in time)"
    status = Status.OPTIMAL if _within_gap(incumbent, bound, settings) else Status.FEASIBLE
    return SolverResult(status, incumbent[0], incumbent[1], bound, result.solve_s, result.backend,
                        result.engine, result.version, message.strip("; ")), lp_bound


def _after_reserve(budget: Budget, timings: dict[str, float]) -> float:
    """Seconds kept for the tie-break LPs and the outputs, which follow the solve: a share of what is left
    (HiGHS overshoots a MIP's limit by a few percent: that is allowed for too)."""
    return min(2.0 * timings["relaxation"] + 0.5 + 0.05 * budget.remaining, 0.25 * budget.remaining)


def _raise_blocks_bound(search, incumbent, searched: float | None, settings: SolverSettings, time_limit: float,
                        notes: list[str]) -> float | None:
    """The blocks' search (stopped at LEAF_GAP) taken up again until its bound proves `incumbent` within the
    requested gap, or its least leaf is proven, or `time_limit` passes: the bound, never lower than before."""
    if time_limit < 1.0:
        notes.append("blocks' bound not raised: no time left")
        return searched
    target = incumbent[1] - settings.mip_gap * abs(incumbent[1]) * (1 - 1e-6)
    if target > search.leaf_bound:      # the search's bound never passes its least leaf's
        notes.append("blocks' bound not raised: the plan is more than the gap above the least leaf found")
        return searched
    proof = search.resume(target, time_limit)
    notes.append(f"blocks' bound raised for the plan: {proof.nodes} nodes in all"
                 + ("" if proof.bound >= target or proof.finished else ", stopped by the time limit"))
    return _proven_bound(searched, proof.bound)


def _branch_and_price(arrays, relaxed: SolverResult, initial: np.ndarray, incumbent, lp_bound: float | None,
                      settings: SolverSettings, time_limit: float, notes: list[str],
                      known: float | None = None) -> SolverResult | None:
    """The best plan proven (or improved) by branch-and-price (solvers/branch_and_price.py) from the columns
    in `initial`. None when even its root LP could not be solved in time: the caller goes on to the full MIP."""
    from solvers.branch_and_price import prove

    deadline = time.perf_counter() + time_limit

    def rounded(x):         # the node's routing kept, replicas and blocks solved (as the rounding stage)
        return _routing_fixed(arrays, x, settings, max(min(5.0, deadline - time.perf_counter()), 0.05))

    proof = prove(arrays, incumbent, initial, settings.mip_gap, time_limit, heuristic=rounded)
    if proof is None:
        notes.append("branch-and-price could not solve its root LP in time")
        return None
    bound = _proven_bound(proof.bound, lp_bound, known)     # `known`: a bound proven before it (the blocks')
    status = Status.OPTIMAL if _within_gap((proof.x, proof.objective), bound, settings) else Status.FEASIBLE
    if proof.objective < incumbent[1]:
        _note_plan(notes, "branch-and-price plan", (proof.x, proof.objective), lp_bound)
    notes.append(proof.message)
    return SolverResult(status, proof.x, proof.objective, bound, 0.0, relaxed.backend, settings.engine,
                        relaxed.version, proof.message)


def _settle_blocks(arrays, relaxed: SolverResult, incumbent, held_blocks, initial: np.ndarray,
                   settings: SolverSettings, time_limit: float, notes: list[str]):
    """The reserved blocks settled before fix-and-optimize: (plan rounded from the least leaf found or None,
    proven bound, mask of the block columns, to keep fixed in the windows, the search when nodes are left
    open: its `resume` raises the bound later), or None when no block count the LP prices is fractional.
    The search stops once its least leaf is within LEAF_GAP of the requested gap of every open node.

    The LP is nearly flat in blocks (at 1,000 x 4 x 3 it moves fractions between pools at almost no cost),
    so branching on them among every integer never settles them (branch-and-price: bound +840 over the LP
    in 60 s), and rounding them with the routing kept picks counts whose LP costs far more than the least
    (there: +30k by a dive, +5.8k least). So a search branches on the blocks held alone (solvers/
    branch_and_price.py, `rows_only`), in the periods whose reserved capacity the LP prices (a slice-cap
    row's dual; the other periods' counts cost nothing either way, and branching on them too took 114 nodes
    in 200 s unfinished against 45 in 97 s). Every plan holds whole blocks, so the least open node or leaf
    bounds every plan. Its least leaf, rounded (replicas solved with its routing kept), starts the windows;
    from it the windows reached 8.4k above the LP there, 3.2e-5 above this bound, against 33k from
    rounding the LP."""
    from solvers.branch_and_price import prove

    sums, capacity = held_blocks
    values = sums @ relaxed.x
    priced = capacity @ np.abs(relaxed.duals) > 1e-9 * max(1.0, abs(relaxed.objective))
    fractional = np.abs(values - np.round(values)) > 1e-6
    if not (priced & fractional).any():
        return None
    deadline = time.perf_counter() + time_limit
    proof = prove(arrays, incumbent, initial, settings.mip_gap, time_limit,
                  branch_rows=sums[np.flatnonzero(priced)], rows_only=True, workers=settings.threads,
                  leaf_gap=LEAF_GAP * settings.mip_gap, basis=relaxed.basis)
    if proof is None:
        notes.append("blocks not settled: the search could not solve its root LP in time")
        return None
    kept = np.zeros(arrays.num_variables, dtype=bool)
    kept[sums.indices] = True
    start = None
    if proof.leaf is not None:
        start = _routing_fixed(arrays, proof.leaf, settings, max(min(30.0, deadline - time.perf_counter()), 1.0))
    state = ("least leaf proven" if proof.finished else
             f"stopped at a leaf within {LEAF_GAP:g} x the gap of every open node" if proof.settled
             else "stopped by the time limit")
    notes.append(f"blocks settled: {proof.nodes} nodes, {state}"
                 + f"; bound {relative_gap(proof.bound, relaxed.objective) or 0:.4%} above the LP's"
                 + ("" if start is not None else "; no plan from it, fix-and-optimize starts from the rounded one"))
    return start, proof.bound, kept, proof.search


def _proof_columns(arrays, relaxed: SolverResult, plan: np.ndarray, arc_columns: np.ndarray,
                   arc_slots: np.ndarray | None, active: np.ndarray | None) -> np.ndarray:
    """Branch-and-price's first columns: every column but the arcs; the arcs the relaxation or the plan use;
    and of the arcs the priced LP took in (all, unpriced), the PROOF_ARCS_PER_SLOT cheapest by the
    relaxation's reduced costs in each (cell, period, slice) (`arc_slots`). Without duals or slots, every
    arc the priced LP took in."""
    initial = np.ones(arrays.num_variables, dtype=bool)
    eligible = active[arc_columns] if active is not None else np.ones(len(arc_columns), dtype=bool)
    used = (relaxed.x[arc_columns] > 0) | (plan[arc_columns] > 0)
    if relaxed.duals is None or arc_slots is None:
        initial[arc_columns] = used | eligible
        return initial
    reduced = arrays.cost[arc_columns] - (arrays.a.T @ relaxed.duals)[arc_columns]
    cheapest = _lowest_per_group(np.where(eligible, reduced, np.inf), arc_slots, PROOF_ARCS_PER_SLOT)
    initial[arc_columns] = used | (cheapest & eligible)
    return initial


def _heuristic_result(status: Status, incumbent, bound: float | None, relaxed: SolverResult,
                      settings: SolverSettings, message: str) -> SolverResult:
    """A heuristic plan (x, objective) returned as the solve's result, with the LP's proven bound."""
    return SolverResult(status, incumbent[0], incumbent[1], bound, 0.0, relaxed.backend, settings.engine,
                        relaxed.version, message)


def _note_plan(notes: list[str], name: str, plan, lp_bound: float) -> None:
    """How far a heuristic plan is from the LP bound, so a user sees which stage found the plan."""
    gap = relative_gap(plan[1], lp_bound) if plan is not None else None
    notes.append(f"{name}: {'none in time' if gap is None else f'{gap:.3%} above the LP bound'}")


# A MIP started from a plan this close to the LP bound searches for the proof (HiGHS's heuristic effort 0);
# further away it keeps looking for better plans too (solvers/highs_backend.py measures both).
NEAR_BOUND = 0.01


def _from_plan(settings: SolverSettings, incumbent, bound: float | None) -> SolverSettings:
    gap = relative_gap(incumbent[1], bound) if incumbent is not None and bound is not None else None
    return replace(settings, mip_heuristics=gap is None or gap > NEAR_BOUND)


def _within_gap(incumbent, bound: float | None, settings: SolverSettings) -> bool:
    if incumbent is None or bound is None:
        return False
    gap = relative_gap(incumbent[1], bound)
    return gap is not None and gap <= settings.mip_gap


def _priced_fraction(arrays, active: np.ndarray | None) -> float:
    """How many times more columns the full model has than the priced LP solved (1 without pricing)."""
    return 1.0 if active is None else arrays.num_variables / max(int(active.sum()), 1)


def _relaxation(arrays, settings: SolverSettings, budget: Budget, lp_start: np.ndarray | None,
                notes: list[str], siblings: np.ndarray | None = None) -> tuple[SolverResult, np.ndarray | None]:
    """The LP relaxation, by pricing when a start set is given and HiGHS is the backend (`siblings`: each
    column's arc, the same in every (period, slice), solvers/pricing.py); the whole LP otherwise, or when
    the priced LP cannot finish (infeasible with the columns it has, or out of time)."""
    # where no MIP stage can follow (too many rows), only rounding and the tie-break LPs need time after it
    share = 0.8 if arrays.num_constraints > MIP_MAX_ROWS else 0.5
    lp = replace(settings, relax_integrality=True, time_limit_s=budget.slice(share))
    if lp_start is not None and settings.backend == "highspy":
        from solvers.pricing import solve_lp_by_pricing

        priced = solve_lp_by_pricing(arrays.relaxed(), lp_start, lp, siblings)
        if priced is not None:
            if priced.result.status != Status.OPTIMAL:
                notes.append("LP relaxation stopped by the time limit before pricing finished: the heuristics "
                             "start from its last LP point, and the bound is that point's (weaker) proven bound")
            return priced.result, priced.active
        notes.append("priced LP did not finish; the whole LP was solved instead")
        lp = replace(lp, time_limit_s=budget.slice(0.5))
    return solvers.solve(arrays.relaxed(), lp), None


def pricing_start(model, sets: IndexSets, arrays) -> np.ndarray:
    """Columns of the first priced LP: every column but the shares, and per cell the shares of its
    PRICING_START_CHEAPEST arcs of least load x cheapest replica price, plus its highest-quality arc (so
    mean-quality rows can be met from the start). Pricing adds whatever else the optimum needs.

    The replica price is that of the deployment's cheapest paid pool at its listed price per chip-hour
    (a reserved pool's contract price, not the zero a running replica pays once blocks are bought); prepaid
    only where a deployment has no other pool. Prepaid chips are free but few, and with every accelerator
    holding some, the free price ranked arcs by load alone: the first round's LP cost 845M against the
    optimum's 213M at 7,500 workloads. Ranked by the listed price, the LP: 7,500 workloads 10.5 -> 6.7 s,
    20,000 52.6 -> 30.6 s, 1,000 x 4 x 3 43 -> 37 s, 3,000 2.1 -> 1.8 s."""
    share = model.variables["share"]
    arcs, placements = sets.arcs, sets.placements
    listed = sets.pools["price_per_chip_hour"].to_numpy(dtype=float)
    listed = np.where(sets.pools["kind"].to_numpy() == "prepaid", np.inf, listed)
    price = listed[placements["pool_position"].to_numpy()] * sets.placement_chips
    cheapest = np.full(len(sets.deployments), np.inf)
    np.minimum.at(cheapest, placements["deployment"].to_numpy(), price)
    cheapest[~np.isfinite(cheapest)] = 0.0
    load = arc_load(sets).mean(axis=(1, 2))
    cell = arcs["cell"].to_numpy()
    keep = (_lowest_per_group(load * (cheapest[arcs["deployment"].to_numpy()] + 1e-6), cell, PRICING_START_CHEAPEST)
            | _lowest_per_group(-arcs["quality"].to_numpy(dtype=float, na_value=0.0) + 1e-9 * load, cell, 1))
    start = np.ones(arrays.num_variables, dtype=bool)
    start[share.columns] = np.repeat(keep, share.coords.size // max(len(arcs), 1))
    return start


def _lowest_per_group(score: np.ndarray, group: np.ndarray, k: int) -> np.ndarray:
    """Mask of the k lowest scores within each group (ties by position)."""
    order = np.lexsort((np.arange(len(score)), score, group))
    ordered = group[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1] if len(ordered) else np.zeros(0, dtype=int)
    rank = np.arange(len(ordered)) - np.repeat(starts, np.diff(np.r_[starts, len(ordered)]))
    keep = np.zeros(len(score), dtype=bool)
    keep[order[rank < k]] = True
    return keep


def _proven_bound(*bounds: float | None) -> float | None:
    known = [b for b in bounds if b is not None and np.isfinite(b)]
    return max(known) if known else None


def _unused_arcs(x_lp, arc_columns, arc_groups, num_variables: int) -> np.ndarray:
    """Mask of the arc columns whose deployment the relaxation does not use at all."""
    dropped = np.zeros(num_variables, dtype=bool)
    if arc_columns is None or not len(arc_columns):
        return dropped
    used = np.zeros(int(arc_groups.max()) + 1, dtype=bool)
    used[arc_groups[x_lp[arc_columns] > SHARE_EPS]] = True
    dropped[arc_columns[~used[arc_groups]]] = True
    return dropped


def _whole_periods(arrays, windows: list[np.ndarray], period_windows: list[np.ndarray] | None,
                   dropped: np.ndarray) -> list[np.ndarray]:
    """The windows once the blocks are settled: the whole periods alone, when each (less `dropped`) touches
    at most MIP_MAX_ROWS rows; else `windows` (each (period, slice), then each period). A period's slices
    share rows the slice windows cannot trade across (a workload's mean quality over the period), and the
    period windows find from the start what the slice windows find and more: at 1,000 x 4 x 3, from the
    settled blocks' plan with 80 s, the four period windows two at a time reached 1.5e-5 above the blocks'
    bound in 50-60 s, the sixteen 1.1e-4 in 75 s (the slice windows had left the periods 9 s each)."""
    if not period_windows:
        return windows
    touched = _touched_rows(arrays, [window & ~dropped for window in period_windows])
    return windows if (touched.sum(axis=0) > MIP_MAX_ROWS).any() else period_windows


def _left_out_arcs(x_lp, arc_columns, arc_groups, num_variables: int, active: np.ndarray | None) -> np.ndarray:
    """Mask of the arc columns the heuristic MIPs leave out: those of deployments the relaxation does not
    use, and, after a priced LP, those it never took in (`active`). Fix-and-optimize's windows without the
    columns the priced LP never took in are faster and find more (1,000 x 4 x 3: 16 windows in 35 s
    instead of 46 s, plan 0.11% -> 0.061% above the LP bound)."""
    dropped = _unused_arcs(x_lp, arc_columns, arc_groups, num_variables)
    if active is not None and arc_columns is not None and len(arc_columns):
        dropped[arc_columns[~active[arc_columns]]] = True
    return dropped


def _fix_and_optimize(arrays, incumbent, dropped: np.ndarray, windows: list[np.ndarray], settings: SolverSettings,
                      budget: Budget, notes: list[str], bound: float | None, reserve_share: float = 0.25,
                      gap_share: float = 1.0, proven: float | None = None):
    """Improve a plan one time window at a time: the MIP over the window's columns (less `dropped`), every
    other column fixed at the plan, started from the plan; a window's better answer is kept at once. Each
    window gets an even share of the threads' time left among the windows left, less a reserve
    (`reserve_share` of it) for the stages that follow; each stops at `gap_share` x the requested gap. The
    windows stop as soon as the plan is within the requested gap of `proven`, a bound already proven (the
    settled blocks'): nothing left to show; the MIPs running (HiGHS) stop as soon as what they have found
    together brings it there (_Savings).

    With `settings.threads` above 1 the windows run as a pool: a window starts as soon as a thread is free
    and it shares no row with a window running or before it in line (_next_window), on a HiGHS of one
    thread (solvers/base.py HIGHS_THREADS; it releases the GIL). A window's MIP holds only the rows its
    free columns touch, and the windows that share a row keep their order, so each window solves the same
    MIP whatever the timing, and the answers hold together."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    x, best = incumbent[0].copy(), incumbent[1]
    reserve = reserve_share * budget.remaining
    frees = [window & ~dropped for window in windows]
    threads = max(int(settings.threads), 1)
    # one thread: every window conflicts with every other, so they run one at a time, in order
    conflicts = _conflicts(arrays, frees) if threads > 1 else np.ones((len(frees), len(frees)), dtype=bool)
    savings = _Savings(best, proven, settings)
    pending, running = list(range(len(windows))), {}      # running: future -> (window, its free columns)
    improved = tried = done = most = 0
    out_of_time = within = False
    with quiet_native_output(), ThreadPoolExecutor(max_workers=threads) as pool:
        while pending or running:
            while pending and len(running) < threads and not (out_of_time or within):
                index = _next_window(pending, [window for window, _ in running.values()], conflicts)
                if index is None:
                    break
                left = budget.remaining - reserve
                if left < 1.0:
                    out_of_time = True
                    break
                pending.remove(index)
                free = frees[index]
                sub = arrays.fix(~free, x[~free]).without_empty_rows()
                if sub.num_constraints > MIP_MAX_ROWS or not sub.integer.any():
                    done += 1
                    continue
                tried += 1
                window_settings = replace(_from_plan(settings, (x, best), bound),
                                          time_limit_s=left * threads / max(len(pending) + 1, threads),
                                          mip_gap=settings.mip_gap * gap_share)
                future = pool.submit(solvers.solve, sub, window_settings, start=x[free],
                                     stop=savings.stop_for(index))
                running[future] = (index, free)
                most = max(most, len(running))
            if not running:         # none left to start, or stopped (with none running, the first in line starts)
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=lambda f: running[f][0]):
                index, free = running.pop(future)
                result = future.result()
                done += 1
                # each window's own columns and rows: its change is measured against the plan it started from
                if result.has_solution and (arrays.cost[free] @ result.x < arrays.cost[free] @ x[free]
                                            - 1e-9 * max(1.0, abs(best))):
                    x[free] = result.x
                    improved += 1
                best = float(arrays.cost @ x + arrays.objective_offset)
                savings.settle(index, best)
            if not within and pending and proven is not None and _within_gap((x, best), proven, settings):
                within = True
    if within:
        notes.append(f"fix-and-optimize: within the gap of the proven bound after {done} of {len(windows)} "
                     "windows; the rest skipped")
    elif out_of_time:
        notes.append(f"fix-and-optimize stopped by the time limit after {tried} of {len(windows)} windows")
    notes.append(f"fix-and-optimize: {tried} time windows solved"
                 + (f" (up to {most} at once)" if threads > 1 else "") + f", {improved} improved the plan")
    return x, best


def _touched_rows(arrays, frees: list[np.ndarray]) -> np.ndarray:
    """touched[r, k]: window k's free columns touch row r (the rows its MIP keeps once the rest is fixed)."""
    magnitude = abs(arrays.a)
    return np.column_stack([magnitude @ free.astype(float) > 0 for free in frees])


def _conflicts(arrays, frees: list[np.ndarray]) -> np.ndarray:
    """conflicts[i, j]: windows i and j (their free columns) touch a common row, so they may not run at once."""
    touched = _touched_rows(arrays, frees).astype(float)
    return (touched.T @ touched) > 0


def _next_window(pending: list[int], running: list[int], conflicts: np.ndarray) -> int | None:
    """The first window in line (`pending`, in order) that shares no row with one running or one before it in
    line, or None."""
    for position, index in enumerate(pending):
        if not conflicts[index, running].any() and not conflicts[index, pending[:position]].any():
            return index
    return None


class _Savings:
    """What the windows running have saved on the plan so far, for their MIPs to stop (solvers.solve's
    `stop`, of a window's best objective: the plan's cost when it started, with that window's change alone)
    once the plan and those savings together are within the gap of `proven`. Windows running at once share
    no row, so their savings add up; a finished window's saving is in the plan (`settle`)."""

    def __init__(self, plan: float, proven: float | None, settings: SolverSettings):
        self.plan, self.proven = plan, proven
        self.started: dict[int, float] = {}
        self.saved: dict[int, float] = {}
        # a tenth of the gap in hand: the plan's cost is summed again from its columns afterwards
        self.enough = 0.9 * settings.mip_gap
        self.lock = threading.Lock()

    def stop_for(self, window: int):
        if self.proven is None:
            return None
        with self.lock:
            self.started[window], self.saved[window] = self.plan, 0.0

        def stop(objective: float) -> bool:
            with self.lock:
                self.saved[window] = max(self.saved[window], self.started[window] - objective)
                return (relative_gap(self.plan - sum(self.saved.values()), self.proven) or 0.0) <= self.enough
        return stop

    def settle(self, window: int, plan: float) -> None:
        """A window finished: the plan's cost now holds its change."""
        with self.lock:
            self.plan = plan
            self.saved.pop(window, None)
            self.started.pop(window, None)


def _neighbourhood(workloads: np.ndarray | None, num_variables: int, rows: int, whole: bool) -> np.ndarray:
    """Mask of the columns the neighbourhood MIP frees: those no workload owns, and every column of a
    random (seeded: the same each run) set of whole workloads worth about NEIGHBOURHOOD_ROWS of the model's
    `rows`; every column when `whole` or without workload labels."""
    if workloads is None or whole or not (workloads >= 0).any():
        return np.ones(num_variables, dtype=bool)
    count = int(workloads.max()) + 1
    take = max(int(count * NEIGHBOURHOOD_ROWS / max(rows, 1)), 1)
    chosen = np.zeros(count + 1, dtype=bool)        # the last entry: columns no workload owns
    chosen[np.random.default_rng(0).permutation(count)[:take]] = True
    chosen[count] = True
    return chosen[np.where(workloads >= 0, workloads, count)]


def _neighbourhood_mip(arrays, incumbent, free: np.ndarray, settings: SolverSettings, time_limit: float):
    """The MIP over the `free` columns, every other one fixed at the plan `incumbent` and started from it:
    a plan never worse, or None when the MIP returned none. Without a plan, the others are fixed at 0."""
    x = incumbent[0] if incumbent is not None else np.zeros(arrays.num_variables)
    result = solvers.solve(arrays.fix(~free, x[~free]).without_empty_rows(),
                           replace(settings, time_limit_s=time_limit, mip_gap=settings.mip_gap * PART_GAP),
                           start=x[free] if incumbent is not None else None)
    if not result.has_solution:
        return None
    better = x.copy()
    better[free] = result.x
    return better, float(arrays.cost @ better + arrays.objective_offset)


def _routing_fixed(arrays, x_lp, settings, time_limit):
    """The relaxation's routing kept, replicas and blocks solved: always feasible unless caps bind."""
    integer = arrays.integer
    result = solvers.solve(arrays.fix(~integer, x_lp[~integer]), replace(settings, time_limit_s=time_limit))
    if not result.has_solution:
        return None
    x = x_lp.copy()
    x[integer] = result.x
    return x, float(arrays.cost @ x + arrays.objective_offset)


def canonical_integers(model, sets: IndexSets, arrays, x: np.ndarray, result: SolverResult,
                       settings: SolverSettings, budget: Budget, notes: list[str], solve_s: float = 0.0):
    """The documented rule after cost, so every engine returns the same plan: the exact optimum (gap 0),
    then among plans of that cost the one with the fewest replicas, ties broken by deployment and pool
    order (each replica weighs 1 + rank / placements, in (model, accelerator, chips, pool) order).

    Runs on small models only (CANONICAL_MAX_VARIABLES) and within the budget; otherwise the solver's plan
    stands and the note says so. The exact search is not started when the time it may take is under
    CANONICAL_PROOF_FACTOR x `solve_s`, the seconds the solve took to reach the requested gap.
    """
    if arrays.num_variables > CANONICAL_MAX_VARIABLES:
        notes.append(f"canonical pass skipped: {arrays.num_variables:,} variables > {CANONICAL_MAX_VARIABLES:,} "
                     "(plans from different engines agree in cost within the gap, not row by row)")
        return x, result, False
    exact = replace(settings, mip_gap=0.0)
    optimum = result
    if relative_gap(result.objective, result.bound) not in (None, 0.0) or result.status != Status.OPTIMAL:
        if budget.slice(0.5) < CANONICAL_PROOF_FACTOR * solve_s:
            # no seconds in the note: a plan is the same byte for byte apart from timings
            notes.append("canonical pass skipped: the time left would not prove the exact optimum (under "
                         f"{CANONICAL_PROOF_FACTOR:g}x what the solve took to reach the requested gap)")
            return x, result, False
        optimum = solvers.solve(arrays, replace(exact, time_limit_s=budget.slice(0.5)), start=x)
        if optimum.status != Status.OPTIMAL or optimum.objective > result.objective + 1e-9 * abs(result.objective):
            notes.append("canonical pass skipped: the exact optimum was not proven within the time limit")
            return x, result, False
    cap = _cap(optimum.objective) + 1e-7 * max(1.0, abs(optimum.objective))
    replicas = model.variables["replicas"]
    weight = np.zeros(arrays.num_variables)
    shape = replicas.coords.shape
    rank = np.arange(shape[0], dtype=float)[:, None, None] * np.ones(shape)
    weight[replicas.columns] = 1.0 + rank.ravel() / (shape[0] + 1)
    fewest = arrays.with_row(arrays.cost, -np.inf, cap - arrays.objective_offset).with_objective(weight)
    chosen = solvers.solve(fewest, replace(exact, time_limit_s=budget.slice(0.5)), start=optimum.x)
    if chosen.status != Status.OPTIMAL:
        notes.append("canonical pass skipped: the fewest-replica plan was not proven within the time limit")
        return optimum.x, optimum, False
    value = float(arrays.cost @ chosen.x + arrays.objective_offset)
    # a solve at gap 0 that ends optimal proves its objective: it is the bound (engines that report no dual
    # bound included)
    bound = _proven_bound(optimum.bound, result.bound, optimum.objective if optimum is not result else None)
    return chosen.x, replace(optimum, x=chosen.x, objective=value, bound=min(bound, value) if bound is not None
                             else None, status=Status.OPTIMAL), True


def least_load_routing(model, sets: IndexSets, arrays, x: np.ndarray, settings: SolverSettings,
                       budget: Budget | None = None, notes: list[str] | None = None) -> np.ndarray:
    """The tie rule for routing: with the solver's integers and cost kept, serve as much traffic as
    possible, then use the least total replica load (the most spare capacity).

    Many routings cost the same (prepaid capacity is free at the margin; a replica has room to spare;
    free shedding costs what free capacity costs), and a solver picks among them by whim. Two LPs with the
    integers fixed and the cost capped at its value pick by this rule instead. Arcs whose deployment has no
    replica in that (period, slice) can carry nothing, so they are left out of both LPs.
    """
    budget = budget or Budget(settings.time_limit_s)
    integer = arrays.integer
    fixed_columns = integer.copy()
    share = model.variables["share"]
    replicas = np.round(model.array("replicas", x))
    running = np.zeros((len(sets.deployments),) + replicas.shape[1:])
    np.add.at(running, sets.placements["deployment"].to_numpy(), replicas)
    idle = running[sets.arcs["deployment"].to_numpy()] <= 0            # (arcs, T, S)
    fixed_columns[share.columns[idle.ravel()]] = True
    values = np.where(integer, np.round(x), 0.0)
    fixed = arrays.fix(fixed_columns, values[fixed_columns])
    free = ~fixed_columns
    tidy = fixed.with_row(fixed.cost, -np.inf, _cap(float(fixed.cost @ x[free])))
    duration = sets.horizon.duration[None]
    unserved = np.zeros(arrays.num_variables)
    unserved[model.variables["unserved"].columns] = (sets.rates * duration).ravel()
    # the rule's LPs are solved by HiGHS whatever engine found the integers, so every engine's plan gets
    # the same routing to the last digit
    lp = replace(settings, backend="highspy", engine="highs", relax_integrality=True)
    # the plan's own routing is feasible for both LPs: on large models they are priced from it
    column = np.flatnonzero(free)
    start = (x[free] > 0) | (column < share.start) | (column >= share.start + share.coords.size)
    if ((unserved[free] > 0) & (fixed.upper > 0)).any():  # some traffic may be shed: serve the most
        most = _lp(tidy.with_objective(unserved[free]), replace(lp, time_limit_s=budget.slice(0.5)), start)
        if most.status != Status.OPTIMAL:
            (notes or []).append("routing tie rule skipped: its LP did not finish within the time limit")
            return x
        tidy = tidy.with_row(unserved[free], -np.inf, _cap(most.objective))
    load = np.zeros(arrays.num_variables)
    load[share.columns] = (arc_load(sets) * duration).ravel()
    result = _lp(tidy.with_objective(load[free]), replace(lp, time_limit_s=budget.slice()), start)
    if result.status != Status.OPTIMAL:
        (notes or []).append("routing tie rule skipped: its LP did not finish within the time limit")
        return x
    tidied = np.where(fixed_columns, values, 0.0)
    tidied[free] = result.x
    return tidied


def _lp(arrays, settings: SolverSettings, start: np.ndarray) -> SolverResult:
    """An LP solved by pricing from the `start` columns on models of PRICING_MIN_COLUMNS or more (same
    optimum; `feasible` if the time limit stops it first), whole otherwise, or whole in what is left of
    the limit when pricing could not solve even its first round."""
    if arrays.num_variables >= PRICING_MIN_COLUMNS:
        from solvers.pricing import solve_lp_by_pricing

        clock = time.perf_counter()
        priced = solve_lp_by_pricing(arrays, start, settings)
        if priced is not None:
            return priced.result
        settings = replace(settings, time_limit_s=max(settings.time_limit_s - (time.perf_counter() - clock), 0.05))
    return solvers.solve(arrays, settings)


def _cap(value: float) -> float:
    """A bound that keeps `value` feasible through solver tolerances."""
    return value + 1e-9 * max(1.0, abs(value))


def unservable_cells(sets: IndexSets) -> np.ndarray:
    """Must-serve cells with positive demand somewhere in the horizon and no arc: no plan can exist."""
    cells = sets.cells
    has_arc = np.zeros(len(cells), dtype=bool)
    has_arc[sets.arcs["cell"].to_numpy()] = True
    demand = (sets.rates > 0).any(axis=(1, 2))
    return cells["must_serve"].to_numpy() & demand & ~has_arc


def single_accelerator_baselines(scenario, cells, candidates, settings: SolverSettings,
                                 budget: Budget | None = None, notes: list[str] | None = None) -> list[Baseline]:
    """The best plan using one accelerator type only, for every type that has a pool.

    Baselines solve to the same gap within what is left of the budget; one that cannot run in time is
    reported as skipped, not silently dropped.
    """
    budget = budget or Budget(settings.time_limit_s)
    accelerators = sorted({pool.accelerator for pool in scenario.pools})
    baselines = []
    for i, accelerator in enumerate(accelerators):
        name = f"only {accelerator}"
        if budget.exhausted:
            baselines.append(Baseline(name, accelerator, False, "skipped", None, "skipped: time limit reached"))
            (notes if notes is not None else []).append(f"baseline {name} skipped: time limit reached")
            continue
        sets = build_index_sets(scenario, cells, candidates, accelerators={accelerator})
        share = Budget(budget.remaining / (len(accelerators) - i))
        outcome = solve_sets(sets, replace(settings, time_limit_s=share.seconds), share, canonical=False)
        if outcome.solution is None:
            baselines.append(Baseline(name, accelerator, False, outcome.status.value, None,
                                      baseline_reason(scenario, sets, outcome, settings, share)))
        else:
            baselines.append(Baseline(name, accelerator, True, outcome.status.value, outcome.solution.objective))
    return baselines


def baseline_reason(scenario, sets: IndexSets, outcome: Outcome, settings: SolverSettings, budget: Budget) -> str:
    """What binds when one accelerator type cannot carry the plan: buckets it cannot serve at all, or the
    chips its pools lack (from the elastic model)."""
    stuck = unservable_cells(sets)
    if stuck.any():
        cells = sets.cells[stuck]
        listed = ", ".join(f"{w} bucket {b} ({i:,} in / {o:,} out)" for w, b, i, o in
                           zip(cells["workload"], cells["bucket"], cells["input_tokens"], cells["output_tokens"]))
        return f"no deployment on this accelerator can serve {listed} (context, SLO or quality)"
    if outcome.status != Status.INFEASIBLE:
        return f"solver: {outcome.status.value}"
    from placement.diagnosis import elastic_findings_for_sets

    findings = elastic_findings_for_sets(sets, replace(settings, time_limit_s=budget.slice()))
    supply = [f["message"] for f in findings if f.get("kind") in ("supply", "churn", "quality_mean")]
    return "; ".join(supply) or "infeasible: " + "; ".join(f["message"] for f in findings[:3])

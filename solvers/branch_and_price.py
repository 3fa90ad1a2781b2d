"""Branch-and-price: proving (or improving) a plan by a branch-and-bound whose nodes are priced LPs.

The placement MIP has few integers (replicas per (deployment, pool), reserved blocks: 216 at 1,000 workloads)
and very many continuous share columns (135,414 there). HiGHS's MIP solves every node's LP over all of them:
the 1,000-workload proof took it 154-188 s (65 nodes). Here each node is the LP over the columns priced in so
far, warm-started in one HiGHS instance from the last node's basis, with columns added while any prices out
(rc = c - A^T y over every column in one sparse product). The search starts from a short column list (the
plans' arcs and a few of the cheapest per cell, placement/solve.py), since every simplex iteration prices
the columns held: the same proof in 10.4 s (341 nodes), at 7,500 workloads (22,596 rows) 19 nodes in 10.6 s
where over the priced LP's 222k columns they took 60 s.

What keeps it exact:
- A node's bound is the Lagrangian bound of its last round (restricted optimum plus what every column left
  out could still gain within its bounds), so it is proven for the node over all columns.
- Each row has an artificial column at a cost far above any plan (`ARTIFICIAL_COST` x the plan), so a node
  whose branching leaves the priced columns short is still solved and priced rather than wrongly declared
  infeasible; the artificial problem is a relaxation, its bound a valid one, and a node whose LP needs an
  artificial with every integer integral is infeasible.
- Reduced-cost tightening from the root: a plan cheaper than the incumbent z has rc_j x_j <= z - root bound
  for every column j (rc from the root duals), so x_j's upper bound shrinks to (z - bound) / rc_j.
- A node is pruned when its bound is within the requested gap of the incumbent; the bound reported is the
  least of the open nodes' bounds and of the pruned ones', never the incumbent.

Search: best bound first, the deepest first among equal bounds (so where the LP is flat, e.g. free prepaid
capacity, the search dives: 12 workloads x 2 x 2, optimum 0, found from a rounded plan of 35,018 in 199
nodes; without it, none in 8,854). Branching on the fractional integer with the largest
min(f, 1 - f) x |cost| (blocks before replicas, by their price); pseudo-cost branching was measured and not
better (322 against 332 nodes at 1,000 workloads). Plans come from nodes whose LP is integral and from the
caller's heuristic, tried on a node's LP point every HEURISTIC_EVERY nodes (the pipeline rounds the node's
routing: at 3,000 workloads, from the rounded plan 3.3e-3 above the bound, it reached 2.4e-4 in 84 s); the
search still wants a good incumbent (the neighbourhood MIP's, 3.1e-4 there) to prove within 1e-4 in seconds.
Rounding dives were tried and dropped: rounding replicas up breaks commitment and churn rows over several
periods, and at 7,500 workloads one dive LP took 18 s.

Branching rows (`branch_rows`): sums of integer columns that are whole in every plan, added to the HiGHS
instance as free rows and branched on (by bounding the row) before any single integer. Reserved blocks
held in a period are such sums; branching on one purchase of several that cover the same periods at the
same price moves the fraction to another at no cost. With `rows_only` the search branches on the rows
alone and stops once every open node is above its least leaf (a node whose rows are whole): that leaf's
LP point starts a plan, and the least bound is proven for every plan (placement/solve.py, settling the
blocks: at 1,000 x 4 x 3, 45 nodes in 84-101 s, the bound 0.0071% above the LP, where branching among
every integer stayed at 0.001% after a minute). With `leaf_gap` it stops sooner, once every open node is within
that gap below the least leaf: at 1,000 x 4 x 3 the least leaf is found at node 21 of 45, and with half the
requested gap the search stops there (30 s instead of 51, bound 0.0031% above the LP; 25 s with the root
started from the LP's basis); `resume` takes the search up again when a plan needs a higher bound.

Nodes at once (`workers`): after the root, twins of its HiGHS instance (same columns, same basis) take the
best open nodes one each, in threads (HiGHS releases the GIL); each prices in columns of its own, and the
children join the heap in the order the nodes were taken, so the search is the same whatever order the
threads finish in. At 1,000 x 4 x 3 the blocks' 45 nodes took 67-78 s on two workers against 92-93 s on
one: two simplex runs at once on this machine's two cores each run about a third slower (113 s of HiGHS
time against 84 s), so two workers save a sixth to a quarter, not a half.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from solvers.highs_backend import _pass_model, new_highs
from solvers.model import ArrayModel
from solvers.pricing import _add_columns, _lagrangian_bound
from solvers.quiet import quiet_native_output

ARTIFICIAL_COST = 10.0      # x |incumbent| per unit of artificial column
INTEGRAL = 1e-6             # an integer within this of an integer value is integral
FEASIBLE = 1e-6             # row activity tolerance for a plan found at a node
COLUMNS_PER_ROUND = 2000    # columns priced in per LP round at a node
HEURISTIC_EVERY = 10        # nodes between calls of the caller's heuristic (and one at the root)


@dataclass
class ProofResult:
    x: np.ndarray               # the best plan (the incumbent given, or one found in the tree)
    objective: float
    bound: float                # proven lower bound on the whole MIP
    nodes: int
    finished: bool              # the tree was exhausted: bound within the gap of the objective
    message: str
    leaf: np.ndarray | None = None      # rows_only: the LP point of the least leaf (its rows integral)
    leaf_bound: float = np.inf          # and its bound
    settled: bool = False               # rows_only: stopped by its own rule (_Search.enough), not a limit
    search: "_Search | None" = None     # rows_only, least leaf not proven: `search.resume` takes it up again


def prove(model: ArrayModel, incumbent: tuple[np.ndarray, float], initial: np.ndarray, gap: float,
          time_limit: float, node_limit: int | None = None, heuristic=None,
          branch_rows: sp.csr_matrix | None = None, rows_only: bool = False, workers: int = 1,
          leaf_gap: float = 0.0, basis: tuple[np.ndarray, np.ndarray] | None = None) -> ProofResult | None:
    """Branch-and-price from `incumbent` (x, objective), columns in `initial` first (every other column must
    have lower bound 0). A small `initial` (the plans' columns and the few cheapest by the LP's reduced
    costs) makes every node cheaper: each simplex iteration prices the columns held, and at 7,500 workloads
    the same 19 nodes took 60 s over the priced LP's 222k columns, 10.6 s over 54k. `node_limit`: stop
    after this many node LPs (the root is one). `heuristic`: a function from a node's LP point to a plan
    (x, objective) or None, tried at the root and every HEURISTIC_EVERY nodes. None if even the root could
    not be solved in time. `branch_rows`: sums of integer columns, one per row (over the model's columns),
    integral in every plan, branched on before any single integer (reserved blocks held in a period).
    `rows_only`: branch on those rows alone; a node whose rows are all integral is a leaf, and the result
    carries the least leaf's LP point and bound (ProofResult.leaf), for a plan to be built from. `workers`:
    node LPs solved at once, each on a HiGHS instance of its own (the root's twins). `leaf_gap` (rows_only):
    stop once every open node is within this relative gap below the least leaf: that leaf is then near
    enough the least, the bound the least open node's, and `ProofResult.search.resume` raises it later if a
    plan needs it. `basis`: an optimal basis of the model's LP (SolverResult.basis), for the root to start
    from; its basic columns join `initial`."""
    started = time.perf_counter()
    with quiet_native_output():
        search = _Search(model, incumbent, initial, gap, started + time_limit, node_limit, heuristic,
                         branch_rows, rows_only, workers, leaf_gap, basis)
        return search.run()


class _Worker:
    """One HiGHS instance over the columns priced in so far, each node's LP warm-started from the basis of
    the last node it solved. The search runs one per thread (`workers`): HiGHS releases the GIL while it
    solves, and each instance prices in its own columns, so two nodes never share a basis or a column list."""

    def __init__(self, search: "_Search", columns: np.ndarray | None = None, twin: "_Worker | None" = None):
        self.search = search
        model = search.model
        self.highs = new_highs(solver="simplex", simplex_strategy=1)
        if twin is not None:            # the same LP and basis as `twin`: its columns, artificials, rows
            self.highs.passModel(twin.highs.getModel())
            self.highs.setBasis(twin.highs.getBasis())
            self.column_of, self.position = twin.column_of.copy(), twin.position.copy()
            self.active = twin.active.copy()
            return
        self.active = np.zeros(model.num_variables, dtype=bool)
        self.active[columns] = True
        restricted = ArrayModel(search.csc[:, columns].tocsr(), model.lower[columns], search.upper[columns],
                                model.cost[columns], np.zeros(len(columns), dtype=bool), model.row_lower,
                                model.row_upper, model.objective_offset)
        _pass_model(self.highs, restricted, restricted.integer)
        # artificials: +1 on rows with a finite lower side, -1 on rows with a finite upper side
        plus = np.flatnonzero(np.isfinite(model.row_lower))
        minus = np.flatnonzero(np.isfinite(model.row_upper))
        count = len(plus) + len(minus)
        cost = ARTIFICIAL_COST * max(abs(search.z_best), 1.0)
        self.highs.addCols(count, np.full(count, cost), np.zeros(count), np.full(count, np.inf), count,
                           np.arange(count, dtype=np.int32), np.r_[plus, minus].astype(np.int32),
                           np.r_[np.ones(len(plus)), -np.ones(len(minus))])
        self.column_of = np.r_[columns, np.full(count, -1)]     # HiGHS column -> model column (-1: artificial)
        self.position = np.full(model.num_variables, -1, dtype=np.int64)
        self.position[columns] = np.arange(len(columns))
        # the branching rows follow the model's in HiGHS, free until a node bounds them
        sums = search.sums
        if len(search.sum_rows):
            self.highs.addRows(len(search.sum_rows), np.full(len(search.sum_rows), -np.inf),
                               np.full(len(search.sum_rows), np.inf), int(sums.nnz), sums.indptr[:-1].astype(np.int32),
                               self.position[sums.indices].astype(np.int32), sums.data.astype(np.float64))

    def start_from(self, columns: np.ndarray, rows: np.ndarray) -> None:
        """The basis of the model's LP (status codes per model column and row) as this instance's: its
        artificials at zero, the branching rows (free) basic. The root then starts at the LP's optimum
        instead of solving it again (1,000 x 4 x 3: 6.4 s cold)."""
        status = highspy.HighsBasisStatus
        held = self.column_of >= 0
        column_codes = np.full(len(self.column_of), int(status.kLower), dtype=np.int8)
        column_codes[held] = columns[self.column_of[held]]
        basis = highspy.HighsBasis()
        basis.col_status = [status(c) for c in column_codes.tolist()]
        basis.row_status = [status(c) for c in rows.tolist()] + [status.kBasic] * len(self.search.sum_rows)
        basis.valid = True
        self.highs.setBasis(basis)

    def node_lp(self, lower: np.ndarray, upper: np.ndarray, cutoff: float):
        """(Lagrangian bound, x over the model's columns, reduced costs) of a node, pricing columns in until
        none prices out or the bound reaches `cutoff`; (inf, None, None) if infeasible even with
        artificials; None if the LP failed or ran out of time."""
        search, highs = self.search, self.highs
        model = search.model
        ints = self.position[search.ints].astype(np.int32)
        highs.changeColsBounds(len(ints), ints, lower[:len(ints)], upper[:len(ints)])
        if len(search.sum_rows):
            highs.changeRowsBounds(len(search.sum_rows), search.sum_rows, lower[len(ints):], upper[len(ints):])
        while True:
            left = search.deadline - time.perf_counter()
            if left <= 0:
                return None
            highs.setOptionValue("time_limit", highs.getRunTime() + left)
            highs.run()
            status = highs.getModelStatus()
            if status not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kInfeasible,
                              highspy.HighsModelStatus.kTimeLimit):
                highs.clearSolver()     # a numerical failure from the warm start: once more from scratch
                highs.run()
                status = highs.getModelStatus()
            if status == highspy.HighsModelStatus.kInfeasible:
                return np.inf, None, None
            if status != highspy.HighsModelStatus.kOptimal:
                return None
            solution = highs.getSolution()
            duals = np.asarray(solution.row_dual, dtype=float)
            reduced = model.cost - search.transpose @ duals[:model.num_constraints]
            if len(search.sum_rows):
                reduced -= search.sums_t @ duals[model.num_constraints:]
            objective = float(highs.getInfo().objective_function_value)
            out = ~self.active
            bound = _lagrangian_bound(objective, reduced, out, search.upper, search.tolerance)
            bound = -np.inf if bound is None else bound      # a column left out could gain without limit
            candidates = np.flatnonzero(out & (reduced < -search.tolerance) & (search.upper > 0))
            if bound >= cutoff or not len(candidates):
                values = np.asarray(solution.col_value, dtype=float)
                real = self.column_of >= 0
                x = np.zeros(model.num_variables)
                x[self.column_of[real]] = values[real]
                return bound, x, reduced
            if len(candidates) > COLUMNS_PER_ROUND:
                candidates = candidates[np.argpartition(reduced[candidates], COLUMNS_PER_ROUND)[:COLUMNS_PER_ROUND]]
            self.add(np.sort(candidates))

    def add(self, columns: np.ndarray) -> None:
        search = self.search
        _add_columns(self.highs, search.csc, columns, search.model.cost, search.model.lower, search.upper)
        self.position[columns] = len(self.column_of) + np.arange(len(columns))
        self.column_of = np.r_[self.column_of, columns]
        self.active[columns] = True

    def bound(self, columns: np.ndarray) -> None:
        """The search's (tightened) bounds on `columns`, for those this instance holds."""
        inside = columns[self.active[columns]]
        self.highs.changeColsBounds(len(inside), self.position[inside].astype(np.int32),
                                    self.search.model.lower[inside].astype(float), self.search.upper[inside])


class _Search:
    def __init__(self, model: ArrayModel, incumbent, initial: np.ndarray, gap: float, deadline: float,
                 node_limit: int | None = None, heuristic=None,
                 branch_rows: sp.csr_matrix | None = None, rows_only: bool = False, workers: int = 1,
                 leaf_gap: float = 0.0, basis: tuple[np.ndarray, np.ndarray] | None = None):
        if np.any(model.lower[~initial & ~model.integer] != 0):
            raise ValueError("columns left out of a priced LP must have lower bound 0")
        sums = sp.csr_matrix((0, model.num_variables)) if branch_rows is None else sp.csr_matrix(branch_rows)
        if sums.nnz and not model.integer[sums.indices].all():
            raise ValueError("branching rows may hold integer columns only")
        self.rows_only = rows_only
        self.leaf, self.leaf_bound = None, np.inf
        self.leaf_gap, self.target = float(leaf_gap), None
        self.model, self.gap, self.deadline, self.node_limit = model, float(gap), deadline, node_limit
        self.heuristic = heuristic
        self.csc = model.a.tocsc()
        self.transpose = model.a.T.tocsr()
        self.upper = model.upper.astype(float).copy()     # tightened by reduced cost after the root
        self.ints = np.flatnonzero(model.integer)
        self.x_best, self.z_best = np.asarray(incumbent[0], dtype=float).copy(), float(incumbent[1])
        scale = max(1.0, float(np.abs(model.cost).max(initial=0.0)))
        self.tolerance = 1e-9 * scale
        self.sums, self.sums_t = sums, sums.T.tocsr()
        self.sum_rows = np.arange(model.num_constraints, model.num_constraints + sums.shape[0], dtype=np.int32)
        # rows by the price of one unit: the dearest of their columns per unit of the row
        per_unit = sp.csr_matrix((np.abs(model.cost[sums.indices]) / np.abs(sums.data), sums.indices, sums.indptr),
                                 shape=sums.shape)
        self.sum_weight = per_unit.max(axis=1).toarray().ravel() if sums.shape[0] else np.zeros(0)
        initial = initial.copy()
        initial[self.ints] = True
        if basis is not None:
            initial |= basis[0] == int(highspy.HighsBasisStatus.kBasic)
        self.workers = [_Worker(self, np.flatnonzero(initial))]
        if basis is not None:
            self.workers[0].start_from(*basis)
        self.threads = max(int(workers), 1)     # the others are the root's twins, made after it
        self.nodes = 0

    @property
    def active(self) -> np.ndarray:
        """The columns any worker has priced in."""
        active = self.workers[0].active.copy()
        for worker in self.workers[1:]:
            active |= worker.active
        return active

    def cutoff(self) -> float:
        return self.z_best - self.gap * max(abs(self.z_best), 1e-9)

    def node_lps(self, nodes: list[tuple]) -> list:
        """node_lp of each (lower, upper, cutoff), the i-th on the i-th worker, at once when more than one."""
        self.nodes += len(nodes)
        if len(nodes) == 1:
            return [self.workers[0].node_lp(*nodes[0])]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            futures = [pool.submit(worker.node_lp, *node) for worker, node in zip(self.workers, nodes)]
            return [future.result() for future in futures]

    def run(self) -> ProofResult | None:
        model = self.model
        free = np.full(len(self.sum_rows), np.inf)
        lower0 = np.r_[model.lower[self.ints].astype(float), -free]
        upper0 = np.r_[model.upper[self.ints].astype(float), free]
        root = self.node_lps([(lower0, upper0, np.inf)])[0]
        if root is None:
            return None
        root_bound, x, reduced = root
        if x is None:                   # bounds that contradict each other: nothing to prove from
            return None
        self.try_heuristic(x)
        self.tighten(root_bound, reduced)
        self.heap = []                  # (bound, -depth, order, lower, upper): best bound, then deepest
        # the least LP bound of a node closed without children (pruned by its bound, integral, infeasible):
        # the reported bound is never above it, whatever closed the node
        self.pruned = np.inf
        if root_bound >= self.cutoff() or not self.branch(self.heap, root_bound, 0, lower0, upper0, x, 0):
            self.pruned = root_bound
        self.order = 2
        if self.heap:
            self.workers += [_Worker(self, twin=self.workers[0]) for _ in range(self.threads - 1)]
        return self.explore()

    def resume(self, target: float, time_limit: float) -> ProofResult:
        """rows_only: the search taken up again where it stopped, until every open node's bound reaches
        `target` (or the least leaf's, whichever is lower) or `time_limit` seconds pass. For a plan found
        after the search stopped that its bound does not yet prove within the gap."""
        self.deadline = time.perf_counter() + time_limit
        self.target = target
        with quiet_native_output():
            return self.explore()

    def enough(self) -> float:
        """rows_only: the search stops once every open node's bound reaches this: the least leaf's, less
        `leaf_gap` of it; after `resume`, its target when lower."""
        if self.target is not None:
            return min(self.leaf_bound, self.target)
        if not np.isfinite(self.leaf_bound):
            return self.leaf_bound
        return self.leaf_bound - self.leaf_gap * max(abs(self.leaf_bound), 1e-9)

    def explore(self) -> ProofResult:
        """Node LPs from the open nodes, best bound first, until none is left, the time or node limit is
        reached, or (rows_only) every open node is settled (`enough`)."""
        model, heap = self.model, self.heap
        stopped = ""
        while heap and not stopped:
            # the best open nodes, one per worker; their children join the heap in the order taken, so a
            # search gives the same answer whatever order the threads finish in
            batch = []
            while heap and len(batch) < len(self.workers):
                entry = heapq.heappop(heap)
                if self.rows_only and entry[0] >= self.enough():     # every open node is settled
                    heapq.heappush(heap, entry)
                    stopped = "settled"     # not shown: the result says so (ProofResult.settled)
                    break
                if entry[0] >= self.cutoff():
                    self.pruned = min(self.pruned, entry[0])
                    continue
                if time.perf_counter() >= self.deadline or (self.node_limit is not None
                                                             and self.nodes + len(batch) >= self.node_limit):
                    heapq.heappush(heap, entry)
                    stopped = "time limit" if time.perf_counter() >= self.deadline else "node limit"
                    break
                batch.append(entry)
            if not batch:
                break
            cutoff = self.cutoff()
            results = self.node_lps([(entry[3], entry[4], cutoff) for entry in batch])
            for number, (entry, solved) in enumerate(zip(batch, results), start=self.nodes - len(batch) + 1):
                bound, depth, lower, upper = entry[0], -entry[1], entry[3], entry[4]
                if solved is None:      # the LP failed or ran out of time: the node stays open
                    heapq.heappush(heap, entry)
                    stopped = "time limit" if time.perf_counter() >= self.deadline else "a node LP failed"
                    continue
                node_bound, x, _ = solved
                node_bound = max(node_bound, bound)
                if node_bound >= self.cutoff():
                    self.pruned = min(self.pruned, node_bound)
                    continue
                self.order += 2
                if number % HEURISTIC_EVERY == 0:
                    self.try_heuristic(x)
                if not self.branch(heap, node_bound, depth, lower, upper, x, self.order):
                    self.pruned = min(self.pruned, node_bound)
        open_bound = min((entry[0] for entry in heap), default=np.inf)
        # rows_only seeks no plan: its least leaf bounds, not the incumbent
        bound = min(open_bound, self.pruned, self.leaf_bound if self.rows_only else self.z_best)
        finished = not heap or (self.rows_only and open_bound >= self.leaf_bound)
        settled = finished or (self.rows_only and open_bound >= self.enough())
        message = (f"branch-and-price: {self.nodes} nodes"
                   + (f" (up to {len(self.workers)} at once)" if len(self.workers) > 1 else "")
                   + f", {int(self.active.sum()):,} of {model.num_variables:,} "
                   f"columns priced in" + ("" if settled else f"; stopped ({stopped}) with {len(heap)} nodes open"))
        return ProofResult(self.x_best, self.z_best, float(bound), self.nodes, finished, message, self.leaf,
                           self.leaf_bound, settled, self if self.rows_only and not finished else None)

    def branch(self, heap, bound: float, depth: int, lower, upper, x: np.ndarray, order: int) -> bool:
        """Push the node's two children, or take its plan when every integer is integral. False when the
        node needs no children (integral, or infeasible)."""
        k = None
        if len(self.sum_rows):
            sums = self.sums @ x
            fraction = sums - np.floor(sums)
            fractional = np.flatnonzero((fraction > INTEGRAL) & (fraction < 1 - INTEGRAL))
            if len(fractional):
                score = np.minimum(fraction[fractional], 1 - fraction[fractional]) * self.sum_weight[fractional]
                k = len(self.ints) + fractional[int(np.argmax(score))]
                values = np.r_[x[self.ints], sums]
            elif self.rows_only:
                if bound < self.leaf_bound:
                    self.leaf, self.leaf_bound = x.copy(), bound
                return False
        if k is None:
            values = x[self.ints]
            fraction = values - np.floor(values)
            fractional = np.flatnonzero((fraction > INTEGRAL) & (fraction < 1 - INTEGRAL))
            if not len(fractional):
                self.take(x)
                return False
            score = np.minimum(fraction[fractional], 1 - fraction[fractional]) * np.abs(self.model.cost[self.ints[fractional]])
            k = fractional[int(np.argmax(score))]
        down_upper = upper.copy()
        down_upper[k] = np.floor(values[k])
        up_lower = lower.copy()
        up_lower[k] = np.ceil(values[k])
        heapq.heappush(heap, (bound, -(depth + 1), order, lower, down_upper))
        heapq.heappush(heap, (bound, -(depth + 1), order + 1, up_lower, upper))
        return True

    def try_heuristic(self, x: np.ndarray) -> None:
        if self.heuristic is None or time.perf_counter() >= self.deadline:
            return
        plan = self.heuristic(x)
        if plan is not None and plan[1] < self.z_best:
            self.x_best, self.z_best = np.asarray(plan[0], dtype=float).copy(), float(plan[1])

    def take(self, x: np.ndarray) -> None:
        """A node's integral LP point: a plan if it meets every row without artificials."""
        model = self.model
        activity = model.a @ x
        if np.any(activity < model.row_lower - FEASIBLE) or np.any(activity > model.row_upper + FEASIBLE):
            return
        x = x.copy()
        x[self.ints] = np.round(x[self.ints])
        value = float(model.cost @ x + model.objective_offset)
        if value < self.z_best:
            self.x_best, self.z_best = x, value

    def tighten(self, root_bound: float, reduced: np.ndarray) -> None:
        """Reduced-cost tightening of continuous columns from the root duals (valid for plans below z)."""
        room = self.z_best - root_bound
        model = self.model
        tight = (reduced > self.tolerance) & ~model.integer & np.isfinite(self.upper) & (self.upper > 0)
        if room < 0 or not tight.any():
            return
        self.upper[tight] = np.minimum(self.upper[tight], room / reduced[tight])
        for worker in self.workers:
            worker.bound(np.flatnonzero(tight))

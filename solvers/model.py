"""A labelled linear model built from arrays: the one interface between formulation and backends.

Variables and constraints come in named blocks whose coordinates are carried with them (`Coords`: the rows
of a base table, e.g. arcs or (deployment, pool) placements, times dense dimensions such as period and
slice). A family of constraints finds its columns and rows by key (`block.at(base, period=t, slice=s)`),
never by counting positions across blocks, so adding a dimension is a local change in each family.
Backends see only the assembled arrays (CSR matrix, bounds, costs, integrality); primal values and duals
come back labelled by the same coordinates (`labelled`), as linopy and PyPSA do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp


class Coords:
    """The coordinates of a block: every row of `base` (key columns) times each dense dimension, in order.

    Position of (base row i, dense labels j, k, ...) = ravel_multi_index((i, j, k, ...), shape): base-major,
    so a block over one dimension only keeps the base table's order.
    """

    def __init__(self, base: pd.DataFrame | pd.Index, dense: dict[str, list | pd.Index] | None = None):
        if isinstance(base, pd.Index):
            base = base.to_frame(index=False, name=base.names if base.nlevels > 1 else (base.name or "index"))
        self.base = base.reset_index(drop=True)
        self.dense = {name: pd.Index(labels, name=name) for name, labels in (dense or {}).items()}
        self.shape = (len(self.base), *(len(v) for v in self.dense.values()))

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.size

    def at(self, base: np.ndarray | int, **dense: np.ndarray | int) -> np.ndarray:
        """Positions of the given base rows and dense positions (broadcast together), flattened."""
        if set(dense) != set(self.dense):
            raise KeyError(f"give positions for exactly the dense dimensions {list(self.dense)}, got {list(dense)}")
        parts = np.broadcast_arrays(np.asarray(base), *(np.asarray(dense[name]) for name in self.dense))
        if parts[0].size == 0:
            return np.zeros(0, dtype=np.int64)
        return np.ravel_multi_index(tuple(p.astype(np.int64) for p in parts), self.shape).ravel()

    def grid(self) -> tuple[np.ndarray, ...]:
        """Open-mesh position arrays (base, *dense) shaped for broadcasting against `shape`."""
        return tuple(np.arange(n).reshape([-1 if k == axis else 1 for k in range(len(self.shape))])
                     for axis, n in enumerate(self.shape))

    def frame(self) -> pd.DataFrame:
        """One row per position: the base key columns, then one column per dense dimension."""
        repeat = int(np.prod(self.shape[1:])) if len(self.shape) > 1 else 1
        out = self.base.loc[self.base.index.repeat(repeat)].reset_index(drop=True)
        inner = repeat
        for name, labels in self.dense.items():
            inner //= len(labels)
            out[name] = np.tile(np.repeat(labels.to_numpy(), inner), len(self.base) * repeat // (len(labels) * inner))
        return out

    @property
    def index(self) -> pd.Index:
        frame = self.frame()
        if frame.shape[1] == 1:
            return pd.Index(frame.iloc[:, 0], name=frame.columns[0])
        return pd.MultiIndex.from_frame(frame)


def _coords(index: pd.Index | Coords) -> Coords:
    return index if isinstance(index, Coords) else Coords(index)


@dataclass(frozen=True)
class VariableBlock:
    name: str
    coords: Coords
    start: int
    integer: bool

    @property
    def columns(self) -> np.ndarray:
        return np.arange(self.start, self.start + self.coords.size)

    @property
    def index(self) -> pd.Index:
        return self.coords.index

    def at(self, base, **dense) -> np.ndarray:
        """Global column positions by key."""
        return self.start + self.coords.at(base, **dense)


@dataclass(frozen=True)
class ConstraintBlock:
    name: str
    coords: Coords
    start: int

    @property
    def index(self) -> pd.Index:
        return self.coords.index

    def at(self, base, **dense) -> np.ndarray:
        """Local row positions (within the block) by key."""
        return self.coords.at(base, **dense)


@dataclass(frozen=True)
class ArrayModel:
    """The assembled arrays a backend solves: min cost @ x + offset, row_lower <= A x <= row_upper."""

    a: sp.csr_matrix
    lower: np.ndarray
    upper: np.ndarray
    cost: np.ndarray
    integer: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    objective_offset: float = 0.0

    @property
    def num_variables(self) -> int:
        return len(self.lower)

    @property
    def num_constraints(self) -> int:
        return len(self.row_lower)

    def matrix(self) -> sp.csr_matrix:
        return self.a

    def fix(self, mask: np.ndarray, values: np.ndarray) -> "ArrayModel":
        """The model with the columns in `mask` fixed at `values` and removed (row bounds shifted)."""
        fixed_part = self.a[:, mask] @ values
        keep = ~mask
        return ArrayModel(
            self.a[:, keep].tocsr(), self.lower[keep], self.upper[keep], self.cost[keep], self.integer[keep],
            self.row_lower - fixed_part, self.row_upper - fixed_part,
            self.objective_offset + float(self.cost[mask] @ values),
        )

    def with_objective(self, cost: np.ndarray, offset: float = 0.0) -> "ArrayModel":
        return ArrayModel(self.a, self.lower, self.upper, cost, self.integer, self.row_lower, self.row_upper, offset)

    def with_row(self, coefs: np.ndarray, lower: float, upper: float) -> "ArrayModel":
        """The model with one more constraint row lower <= coefs @ x <= upper."""
        row = sp.csr_matrix(coefs.reshape(1, -1))
        return ArrayModel(sp.vstack([self.a, row], format="csr"), self.lower, self.upper, self.cost, self.integer,
                          np.append(self.row_lower, lower), np.append(self.row_upper, upper),
                          self.objective_offset)

    def without_empty_rows(self) -> "ArrayModel":
        """The model without rows that touch no column and hold at 0 (`fix` leaves them); an empty row the
        fixed columns violate stays, so the solver reports the model infeasible."""
        keep = (np.diff(self.a.indptr) > 0) | (self.row_lower > 1e-6) | (self.row_upper < -1e-6)
        if keep.all():
            return self
        return ArrayModel(self.a[keep], self.lower, self.upper, self.cost, self.integer, self.row_lower[keep],
                          self.row_upper[keep], self.objective_offset)

    def relaxed(self) -> "ArrayModel":
        return ArrayModel(self.a, self.lower, self.upper, self.cost, np.zeros_like(self.integer), self.row_lower,
                          self.row_upper, self.objective_offset)


@dataclass
class LinearModel:
    """Minimize cost @ x subject to row_lower <= A x <= row_upper, lower <= x <= upper, some x integer."""

    variables: dict[str, VariableBlock] = field(default_factory=dict)
    constraints: dict[str, ConstraintBlock] = field(default_factory=dict)
    _lower: list[np.ndarray] = field(default_factory=list)
    _upper: list[np.ndarray] = field(default_factory=list)
    _cost: list[np.ndarray] = field(default_factory=list)
    _integer: list[np.ndarray] = field(default_factory=list)
    _rows: list[np.ndarray] = field(default_factory=list)
    _cols: list[np.ndarray] = field(default_factory=list)
    _coefs: list[np.ndarray] = field(default_factory=list)
    _row_lower: list[np.ndarray] = field(default_factory=list)
    _row_upper: list[np.ndarray] = field(default_factory=list)
    num_variables: int = 0
    num_constraints: int = 0
    objective_offset: float = 0.0

    def add_variables(
        self,
        name: str,
        index: pd.Index | Coords,
        lower: float | np.ndarray = 0.0,
        upper: float | np.ndarray = np.inf,
        cost: float | np.ndarray = 0.0,
        integer: bool = False,
    ) -> VariableBlock:
        """Add one variable per coordinate; arrays broadcast to the coordinates' shape (base, *dense)."""
        if name in self.variables:
            raise ValueError(f"variable block {name!r} already exists")
        coords = _coords(index)
        size = coords.size
        block = VariableBlock(name, coords, self.num_variables, integer)
        lower, upper, cost = (_flat(v, coords) for v in (lower, upper, cost))
        self._lower.append(np.broadcast_to(np.asarray(lower, dtype=float), size).copy())
        self._upper.append(np.broadcast_to(np.asarray(upper, dtype=float), size).copy())
        self._cost.append(np.broadcast_to(np.asarray(cost, dtype=float), size).copy())
        self._integer.append(np.full(size, integer))
        self.variables[name] = block
        self.num_variables += size
        return block

    def add_constraints(
        self,
        name: str,
        index: pd.Index | Coords,
        rows: np.ndarray,
        cols: np.ndarray,
        coefs: np.ndarray,
        lower: float | np.ndarray = -np.inf,
        upper: float | np.ndarray = np.inf,
    ) -> ConstraintBlock:
        """Add one row per coordinate; triplet (rows[k], cols[k], coefs[k]) puts coefs[k] at (local row, global
        column). Row bounds broadcast to the coordinates' shape."""
        if name in self.constraints:
            raise ValueError(f"constraint block {name!r} already exists")
        coords = _coords(index)
        size = coords.size
        block = ConstraintBlock(name, coords, self.num_constraints)
        lower, upper = _flat(lower, coords), _flat(upper, coords)
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= size):
            raise ValueError(f"constraint block {name!r}: row position out of range")
        self._rows.append(rows + self.num_constraints)
        self._cols.append(np.asarray(cols, dtype=np.int64))
        self._coefs.append(np.asarray(coefs, dtype=float))
        self._row_lower.append(np.broadcast_to(np.asarray(lower, dtype=float), size).copy())
        self._row_upper.append(np.broadcast_to(np.asarray(upper, dtype=float), size).copy())
        self.constraints[name] = block
        self.num_constraints += size
        return block

    # ---- assembled arrays, what backends consume ----

    def _cat(self, parts: list[np.ndarray], dtype=float) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    @property
    def lower(self) -> np.ndarray:
        return self._cat(self._lower)

    @property
    def upper(self) -> np.ndarray:
        return self._cat(self._upper)

    @property
    def cost(self) -> np.ndarray:
        return self._cat(self._cost)

    @property
    def integer(self) -> np.ndarray:
        return self._cat(self._integer, dtype=bool)

    @property
    def row_lower(self) -> np.ndarray:
        return self._cat(self._row_lower)

    @property
    def row_upper(self) -> np.ndarray:
        return self._cat(self._row_upper)

    def matrix(self) -> sp.csr_matrix:
        """The constraint matrix; duplicate (row, column) triplets are summed."""
        matrix = sp.coo_matrix(
            (self._cat(self._coefs), (self._cat(self._rows, np.int64), self._cat(self._cols, np.int64))),
            shape=(self.num_constraints, self.num_variables),
        ).tocsr()
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        return matrix

    def arrays(self) -> ArrayModel:
        """Assemble once; backends take the result."""
        return ArrayModel(self.matrix(), self.lower, self.upper, self.cost, self.integer, self.row_lower,
                          self.row_upper, self.objective_offset)

    def values(self, name: str, x: np.ndarray) -> pd.Series:
        """The solution of one variable block, labelled by the block's coordinates."""
        block = self.variables[name]
        return pd.Series(x[block.start : block.start + block.coords.size], index=block.index, name=name)

    def upper_of(self, name: str) -> np.ndarray:
        """The upper bounds of one variable block, flat in block order."""
        return self._upper[list(self.variables).index(name)]

    def array(self, name: str, x: np.ndarray) -> np.ndarray:
        """The solution of one variable block shaped like its coordinates (base, *dense): no labels, fast."""
        block = self.variables[name]
        return x[block.start : block.start + block.coords.size].reshape(block.coords.shape)

    def labelled(self, name: str, x: np.ndarray) -> pd.DataFrame:
        """One row per coordinate of a variable block, its key columns and `value`."""
        block = self.variables[name]
        return block.coords.frame().assign(value=x[block.start : block.start + block.coords.size])

    def activity(self, name: str, x: np.ndarray) -> pd.Series:
        """Row activities A x of one constraint block, labelled by its coordinates."""
        block = self.constraints[name]
        rows = self.matrix()[block.start : block.start + block.coords.size]
        return pd.Series(rows @ x, index=block.index, name=name)

    def row_values(self, name: str, values: np.ndarray) -> pd.DataFrame:
        """A per-row vector (duals, activities) of one constraint block with its key columns."""
        block = self.constraints[name]
        return block.coords.frame().assign(value=values[block.start : block.start + block.coords.size])

    def stats(self) -> dict[str, int]:
        integer = self.integer
        return {
            "variables": self.num_variables,
            "integer_variables": int(integer.sum()),
            "constraints": self.num_constraints,
            "nonzeros": int(sum(len(c) for c in self._coefs)),
        }


def _flat(value: float | np.ndarray, coords: Coords) -> np.ndarray:
    """A scalar or an array broadcastable to the coordinates' shape, flattened in block order."""
    value = np.asarray(value, dtype=float)
    if value.ndim == 1 and value.size == coords.size and len(coords.shape) > 1:
        return value.copy()
    return np.broadcast_to(value.reshape(value.shape + (1,) * (len(coords.shape) - value.ndim))
                           if 0 < value.ndim < len(coords.shape) else value, coords.shape).ravel().copy()

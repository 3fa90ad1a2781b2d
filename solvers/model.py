"""A labelled linear model built from arrays: the one interface between formulation and backends.

Variables come in named blocks indexed by a pandas Index; constraints come in named blocks of rows
given as sparse triplets. Backends see only the assembled arrays (CSR matrix, bounds, costs,
integrality); results come back labelled by the same indexes the model was built on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp


@dataclass(frozen=True)
class VariableBlock:
    name: str
    index: pd.Index
    start: int
    integer: bool

    @property
    def columns(self) -> np.ndarray:
        return np.arange(self.start, self.start + len(self.index))


@dataclass(frozen=True)
class ConstraintBlock:
    name: str
    index: pd.Index
    start: int


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
        index: pd.Index,
        lower: float | np.ndarray = 0.0,
        upper: float | np.ndarray = np.inf,
        cost: float | np.ndarray = 0.0,
        integer: bool = False,
    ) -> VariableBlock:
        """Add one variable per index entry; returns the block (its `columns` are global positions)."""
        if name in self.variables:
            raise ValueError(f"variable block {name!r} already exists")
        size = len(index)
        block = VariableBlock(name, index, self.num_variables, integer)
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
        index: pd.Index,
        rows: np.ndarray,
        cols: np.ndarray,
        coefs: np.ndarray,
        lower: float | np.ndarray = -np.inf,
        upper: float | np.ndarray = np.inf,
    ) -> ConstraintBlock:
        """Add len(index) rows; triplet (rows[k], cols[k], coefs[k]) puts coefs[k] at (local row, global column)."""
        if name in self.constraints:
            raise ValueError(f"constraint block {name!r} already exists")
        size = len(index)
        block = ConstraintBlock(name, index, self.num_constraints)
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
        """The solution of one variable block, labelled by the block's index."""
        block = self.variables[name]
        return pd.Series(x[block.start : block.start + len(block.index)], index=block.index, name=name)

    def activity(self, name: str, x: np.ndarray) -> pd.Series:
        """Row activities A x of one constraint block, labelled by its index."""
        block = self.constraints[name]
        rows = self.matrix()[block.start : block.start + len(block.index)]
        return pd.Series(rows @ x, index=block.index, name=name)

    def stats(self) -> dict[str, int]:
        integer = self.integer
        return {
            "variables": self.num_variables,
            "integer_variables": int(integer.sum()),
            "constraints": self.num_constraints,
            "nonzeros": int(sum(len(c) for c in self._coefs)),
        }

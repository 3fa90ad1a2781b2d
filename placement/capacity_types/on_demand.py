"""On-demand pools: pay per chip-hour actually used in each (period, slice), up to max_chips(p, t)."""

from __future__ import annotations

import numpy as np

from placement.capacity_types import _per_slice

KIND = "on_demand"


def price_per_chip_hour(pools) -> np.ndarray:
    return pools["price_per_chip_hour"].to_numpy(dtype=float)


def add_variables(model, sets, elastic=None) -> None:
    """No variables of its own: replicas in the pool carry the price."""


def add_constraints(model, sets, elastic=None) -> None:
    _per_slice.add_constraints(model, sets, KIND, elastic)


def period_cost(pool, used_by_slice: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """Currency per period: price x chips used in each slice x its hours. used_by_slice, duration: (T, S)."""
    return pool.price_per_chip_hour * (used_by_slice * duration).sum(axis=1)

"""Prepaid pools: chips owned (deliveries per period), sunk. Free at the margin, so used first."""

from __future__ import annotations

import numpy as np

from placement.capacity_types import _per_slice

KIND = "prepaid"


def price_per_chip_hour(pools) -> np.ndarray:
    """What a running replica's chip pays per hour: nothing (fixed_cost is sunk, reported apart)."""
    return np.zeros(len(pools))


def add_variables(model, sets, elastic=None) -> None:
    """No variables of its own: replicas in the pool are the demand side's."""


def add_constraints(model, sets, elastic=None) -> None:
    _per_slice.add_constraints(model, sets, KIND, elastic)


def period_cost(pool, used_by_slice: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """Currency per period: 0 (fixed_cost is sunk)."""
    return np.zeros(len(duration))

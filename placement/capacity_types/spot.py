"""Spot pools: priced like on-demand, but only availability(s) x max_chips(p, t) can be had in slice s."""

from __future__ import annotations

import numpy as np

from placement.capacity_types import _per_slice, on_demand

KIND = "spot"

price_per_chip_hour = on_demand.price_per_chip_hour
period_cost = on_demand.period_cost


def availability(pool, slice_ids: list[str]) -> np.ndarray:
    """Fraction of max_chips obtainable in each slice (default 1)."""
    return np.array([pool.availability.get(s, 1.0) for s in slice_ids], dtype=float)


def add_variables(model, sets, elastic=None) -> None:
    """No variables of its own."""


def add_constraints(model, sets, elastic=None) -> None:
    _per_slice.add_constraints(model, sets, KIND, elastic)

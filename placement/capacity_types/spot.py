"""Spot pools: priced like on-demand, but only availability(s) x max_chips(p, t) can be had in slice s."""

from __future__ import annotations

import numpy as np
import pandas as pd

from solvers.model import Coords

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
    add_share_limit(model, sets)


def add_share_limit(model, sets) -> None:
    """options.max_spot_share: sum over spot placements of chips x n <= share x sum over all placements of
    chips x n, in every (period, slice)."""
    share = sets.max_spot_share
    if share is None:
        return
    replicas = model.variables["replicas"]
    chips = sets.placement_chips.astype(float)
    spot = (sets.pools["kind"].to_numpy() == KIND)[sets.placements["pool_position"].to_numpy()]
    coefs = (np.where(spot, 1.0, 0.0) - share) * chips                    # per placement
    T, S = len(sets.horizon.period_ids), len(sets.horizon.slice_ids)
    coords = Coords(pd.Index(sets.horizon.period_ids, name="period").to_frame(index=False),
                    {"slice": sets.horizon.slice_ids})
    t, s = np.arange(T).reshape(1, T, 1), np.arange(S).reshape(1, 1, S)
    placement = np.arange(len(chips)).reshape(-1, 1, 1)
    rows = coords.at(t + 0 * placement, slice=s)          # the (period, slice) row of every term
    model.add_constraints("Pool-spot-share", coords, rows, replicas.at(placement, period=t, slice=s),
                          np.broadcast_to(coefs[:, None, None], (len(chips), T, S)).ravel(), upper=0.0)

"""What prepaid, on-demand and spot pools share: a chip cap in every (period, slice), nothing to commit.

cap(p, t, s) = max_chips(p, t) x availability(p, s); availability is 1 except for spot pools.
"""

from __future__ import annotations

from placement.capacity_types.common import add_cap_rows, pools_of_kind


def add_constraints(model, sets, kind: str, elastic=None) -> None:
    """Chips of running replicas <= cap in every (period, slice); the fleet's chips <= the period's best cap."""
    positions = pools_of_kind(sets, kind)
    caps = sets.caps[positions][:, :, None] * sets.availability[positions][:, None, :]
    add_cap_rows(model, sets, kind, positions, caps, caps.max(axis=2, initial=0.0), elastic)

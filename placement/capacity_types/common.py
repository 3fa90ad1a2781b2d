"""Rows every capped kind adds in the same shape: chips of replicas in a pool against a cap."""

from __future__ import annotations

from typing import Callable

import numpy as np

from solvers.model import Coords


def pools_of_kind(sets, kind: str) -> np.ndarray:
    return np.flatnonzero(sets.pools["kind"].to_numpy() == kind)


def pool_coords(sets, positions: np.ndarray, dense: tuple[str, ...]) -> Coords:
    labels = {"period": sets.horizon.period_ids, "slice": sets.horizon.slice_ids}
    return Coords(sets.pools.iloc[positions][["pool"]], {d: labels[d] for d in dense})


def placement_terms(sets, positions: np.ndarray):
    """Placements in the given pools: (placement rows, local pool position, chips per replica)."""
    local = np.full(len(sets.pools), -1)
    local[positions] = np.arange(len(positions))
    pool_of = local[sets.placements["pool_position"].to_numpy()]
    rows = np.flatnonzero(pool_of >= 0)
    return rows, pool_of[rows], sets.placement_chips[rows].astype(float)


Terms = Callable[[Coords, tuple[str, ...]], tuple[np.ndarray, np.ndarray, np.ndarray]]


def add_cap_rows(model, sets, kind: str, positions: np.ndarray, slice_upper: np.ndarray,
                 period_upper: np.ndarray, elastic=None, commitment: Terms | None = None) -> None:
    """sum_d chips(d) n[d,p,t,s] (+ commitment terms) <= slice_upper[p,t,s] for every (pool, period, slice),
    and when the fleet is tracked sum_d chips(d) N[d,p,t] (+ commitment terms) <= period_upper[p,t].

    `commitment(coords, dense)` adds the kind's own terms (reserved: - block_chips x active blocks). Without
    one, the elastic model may exceed the cap at a penalty (supply slack), to say by how much it binds.
    """
    if not len(positions):
        return
    T, S = len(sets.horizon.period_ids), len(sets.horizon.slice_ids)
    placement, pool, chips = placement_terms(sets, positions)
    families = [("slice", ("period", "slice"), model.variables["replicas"], slice_upper)]
    if "fleet" in model.variables:
        families.append(("period", ("period",), model.variables["fleet"], period_upper))
    for scope, dense, variable, upper in families:
        coords = pool_coords(sets, positions, dense)
        grid = {"period": np.arange(T).reshape(1, T, *([1] if len(dense) == 2 else [])),
                "slice": np.arange(S).reshape(1, 1, S)}
        keys = {d: grid[d] for d in dense}
        shape = (len(placement), *coords.shape[1:])
        rows = [coords.at(pool.reshape(-1, *([1] * len(dense))), **keys)]
        cols = [variable.at(placement.reshape(-1, *([1] * len(dense))), **keys)]
        coefs = [np.broadcast_to(chips.reshape(-1, *([1] * len(dense))), shape).ravel()]
        if commitment is not None:
            extra = commitment(coords, dense)
            rows.append(extra[0]), cols.append(extra[1]), coefs.append(extra[2])
        elif elastic is not None:
            duration = sets.horizon.duration if scope == "slice" else sets.horizon.hours
            slack = model.add_variables(f"{kind}-{scope}-supply_slack", coords,
                                        cost=elastic.chip_penalty * duration[None])
            rows.append(np.arange(coords.size)), cols.append(slack.columns), coefs.append(-np.ones(coords.size))
        model.add_constraints(f"Pool-{kind}-{scope}-cap", coords, np.concatenate(rows), np.concatenate(cols),
                              np.concatenate(coefs), upper=upper)

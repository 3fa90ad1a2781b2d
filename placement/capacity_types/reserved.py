"""Reserved pools: take-or-pay contracts bought in whole blocks, each usable and paid for a term.

k[p, tau] integer >= 0: blocks bought in period tau. They are active (usable and paid) in periods
tau + lead .. tau + lead + term - 1; contracts already signed (`committed`) are active from their `starts`
(default: the first period) through theirs, and sunk. Active blocks A[p, t] cap the chips of running
replicas in every slice and are capped by max_chips(p, t). A term running past the horizon is paid for each period beyond it at the last
period's hours, so a late purchase is never cheaper than an early one just because the horizon ends.
"""

from __future__ import annotations

import numpy as np

from placement.capacity_types.common import add_cap_rows, pool_coords, pools_of_kind

KIND = "reserved"


def price_per_chip_hour(pools) -> np.ndarray:
    """A running replica pays nothing more: the blocks are paid whether used or not."""
    return np.zeros(len(pools))


def window(sets, positions: np.ndarray) -> np.ndarray:
    """active[r, tau, t]: a block of reserved pool r bought in tau is active in t."""
    T = len(sets.horizon.period_ids)
    lead = sets.pools["lead_periods"].to_numpy()[positions][:, None, None]
    term = sets.pools["term_periods"].to_numpy()[positions][:, None, None]
    tau, t = np.arange(T)[None, :, None], np.arange(T)[None, None, :]
    return (tau + lead <= t) & (t < tau + lead + term)


def paid_hours(sets, positions: np.ndarray) -> np.ndarray:
    """Hours paid for one chip of a block bought in each period (its whole term; beyond the horizon at the
    last period's hours); 0 where the block could never be used inside the horizon. Shape (R, T)."""
    hours = sets.horizon.hours
    T = len(hours)
    lead = sets.pools["lead_periods"].to_numpy()[positions]
    term = sets.pools["term_periods"].to_numpy()[positions]
    out = np.zeros((len(positions), T))
    for r in range(len(positions)):  # pools x periods: a handful, not per variable
        for tau in range(T - lead[r]):
            first = tau + lead[r]
            out[r, tau] = sum(hours[min(first + j, T - 1)] for j in range(term[r]))
    return out


def add_variables(model, sets, elastic=None) -> None:
    positions = pools_of_kind(sets, KIND)
    coords = pool_coords(sets, positions, ("period",))
    pools = sets.pools.iloc[positions]
    block = pools["block_chips"].to_numpy(dtype=float)
    price = pools["price_per_chip_hour"].to_numpy(dtype=float)
    hours = paid_hours(sets, positions)
    usable = hours > 0
    caps = sets.caps[positions].max(axis=1, initial=0)
    if elastic is not None:
        from placement.formulation import elastic_cap

        caps = np.full(len(positions), elastic_cap(sets, elastic))
    upper = np.where(usable, np.floor(caps / block)[:, None], 0.0)
    model.add_variables("blocks", coords, upper=upper, cost=price[:, None] * block[:, None] * hours, integer=True)


def add_constraints(model, sets, elastic=None) -> None:
    positions = pools_of_kind(sets, KIND)
    if not len(positions):
        return
    block = sets.pools["block_chips"].to_numpy(dtype=float)[positions]
    blocks = model.variables["blocks"]
    active = window(sets, positions)
    r, tau, t = np.nonzero(active)
    S = len(sets.horizon.slice_ids)
    signed = sets.committed[positions] * block[:, None]   # chips of signed contracts, (R, T)

    def commitment(coords, dense):
        if dense == ("period", "slice"):
            rows = coords.at(r[:, None], period=t[:, None], slice=np.arange(S)[None, :])
            cols = np.repeat(blocks.at(r, period=tau), S)
            coefs = -np.repeat(block[r], S)
        else:
            rows, cols, coefs = coords.at(r, period=t), blocks.at(r, period=tau), -block[r]
        return rows, cols, coefs

    add_cap_rows(model, sets, KIND, positions, np.repeat(signed[:, :, None], S, axis=2), signed, elastic,
                 commitment)
    # the contract cap: block_chips x A[p, t] <= max_chips(p, t)
    coords = pool_coords(sets, positions, ("period",))
    rows, cols, coefs = [coords.at(r, period=t)], [blocks.at(r, period=tau)], [block[r]]
    if elastic is not None:
        slack = model.add_variables("reserved-contract-supply_slack", coords,
                                    cost=elastic.chip_penalty * sets.horizon.hours[None])
        rows.append(np.arange(coords.size)), cols.append(slack.columns), coefs.append(-np.ones(coords.size))
    model.add_constraints("Pool-reserved-contract-cap", coords, np.concatenate(rows), np.concatenate(cols),
                          np.concatenate(coefs), upper=sets.caps[positions] - signed)


def period_cost(pool, bought: np.ndarray, hours: np.ndarray) -> tuple[np.ndarray, float]:
    """Currency paid in each horizon period for the blocks bought (shape (T,)), and what falls after it."""
    T = len(hours)
    paid = np.zeros(T)
    beyond = 0.0
    for tau in range(T):
        for j in range(pool.term_periods):
            when = tau + pool.lead_periods + j
            amount = bought[tau] * pool.block_chips * pool.price_per_chip_hour * hours[min(when, T - 1)]
            if when < T:
                paid[when] += amount
            else:
                beyond += amount
    return paid, beyond


def held_blocks(model, sets):
    """The blocks active in each (reserved pool, period), as rows over the model's columns (one unit per
    block), and for each such row the pool's slice-cap rows of that period (a 0/1 matrix over the model's
    rows). Every plan holds a whole number of blocks in every period, so a search may branch on these
    sums: purchases in t1 and t2 that both cover t2-t4 cost the same, and branching on either one only
    moves the fraction to the other. None without reserved pools. The slice-cap rows tell which periods'
    blocks are worth a branch: those whose capacity the LP prices (their duals)."""
    import scipy.sparse as sp

    positions = pools_of_kind(sets, KIND)
    if not len(positions) or "blocks" not in model.variables:
        return None
    blocks = model.variables["blocks"]
    r, tau, t = np.nonzero(window(sets, positions))
    T, S = len(sets.horizon.period_ids), len(sets.horizon.slice_ids)
    held = pool_coords(sets, positions, ("period",))
    sums = sp.csr_matrix((np.ones(len(r)), (held.at(r, period=t), blocks.at(r, period=tau))),
                         shape=(held.size, model.num_variables))
    caps = model.constraints["Pool-reserved-slice-cap"]
    pool, period, slot = np.meshgrid(np.arange(len(positions)), np.arange(T), np.arange(S), indexing="ij")
    rows = caps.start + caps.at(pool.ravel(), period=period.ravel(), slice=slot.ravel())
    capacity = sp.csr_matrix((np.ones(len(rows)), (held.at(pool.ravel(), period=period.ravel()), rows)),
                             shape=(held.size, model.num_constraints))
    return sums.tocsr(), capacity.tocsr()

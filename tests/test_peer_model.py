"""The peer benchmark compares like with like: benchmarks/bench_peer.py's per-variable PuLP model is placement's MIP.

Small instances of bench_scale.write_instance with the prepaid pools shrunk (so reserved blocks and on-demand
replicas carry the cost): the LP relaxations agree to 1e-6 relative, the MIP optima at gap 0 agree, and a peer
model built from tampered tables (one family wrong) is caught by the same comparison.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_peer import build_peer, solve_peer  # noqa: E402
from bench_scale import write_instance  # noqa: E402

import solvers  # noqa: E402
from placement.formulation import build_model  # noqa: E402
from placement.indexsets import build_index_sets  # noqa: E402
from placement.scenario import load_scenario  # noqa: E402
from placement.solve import prepare  # noqa: E402
from solvers import SolverSettings, Status  # noqa: E402


def index_sets(folder: Path, workloads: int, prepaid_chips: int):
    path = write_instance(folder, workloads)
    small_prepaid = {f"pools[acc{a}-prepaid].max_chips": prepaid_chips for a in range(6)}
    loaded = load_scenario(path, small_prepaid)
    _, cells, candidates = prepare(loaded)
    return build_index_sets(loaded.scenario, cells, candidates)


@pytest.fixture(scope="module")
def lp_sets(tmp_path_factory):
    return index_sets(tmp_path_factory.mktemp("peer-lp"), 25, prepaid_chips=4)


@pytest.fixture(scope="module")
def placement_lp(lp_sets):
    result = solvers.solve(build_model(lp_sets).arrays().relaxed(), SolverSettings(relax_integrality=True))
    assert result.status == Status.OPTIMAL
    return result.objective


def peer_lp(sets) -> float:
    outcome = solve_peer(build_peer(sets, relax=True), time_limit=60, gap=0.0)
    assert outcome["solution"] == "Optimal Solution Found", outcome
    return outcome["objective"]


def test_lp_relaxations_agree(lp_sets, placement_lp):
    assert placement_lp > 1000  # reserved and on-demand chips are paid for: the comparison has teeth
    assert peer_lp(lp_sets) == pytest.approx(placement_lp, rel=1e-6)


@pytest.fixture(scope="module")
def mip_sets(tmp_path_factory):
    return index_sets(tmp_path_factory.mktemp("peer-mip"), 8, prepaid_chips=2)


@pytest.fixture(scope="module")
def placement_mip(mip_sets):
    result = solvers.solve(build_model(mip_sets), SolverSettings(mip_gap=0.0, time_limit_s=60))
    assert result.status == Status.OPTIMAL
    return result.objective


def test_mip_optima_agree_at_gap_zero(mip_sets, placement_mip):
    sets, ours = mip_sets, placement_mip
    peer = solve_peer(build_peer(sets), time_limit=60, gap=0.0)
    assert peer["cbc_result"] == "Optimal solution found", peer
    assert ours > 1000
    assert peer["objective"] == pytest.approx(ours, rel=1e-9)
    assert peer["objective_per_hour"] == pytest.approx(ours / sets.horizon.total_hours, rel=1e-9)


def _no_headroom(sets):
    return replace(sets, cells=sets.cells.assign(headroom=0.0))


def _no_quality_floors(sets):
    return replace(sets, workloads=sets.workloads.assign(min_mean=np.nan))


def _may_shed(sets):
    return replace(sets, cells=sets.cells.assign(must_serve=False))


def _reserved_at_half_price(sets):
    pools = sets.pools.copy()
    reserved = pools["kind"] == "reserved"
    pools.loc[reserved, "price_per_chip_hour"] = pools.loc[reserved, "price_per_chip_hour"] / 2
    return replace(sets, pools=pools)


def _blocks_of_one_chip(sets):
    pools = sets.pools.copy()
    pools.loc[pools["kind"] == "reserved", "block_chips"] = 1
    return replace(sets, pools=pools)


@pytest.mark.parametrize("tamper", [_no_headroom, _no_quality_floors, _may_shed, _reserved_at_half_price])
def test_a_peer_model_with_one_family_wrong_is_caught(lp_sets, placement_lp, tamper):
    """Each tamper changes one family of the peer's model only; its LP must then disagree with placement's."""
    assert abs(peer_lp(tamper(lp_sets)) - placement_lp) > 1e-3 * placement_lp


def test_wrong_block_size_is_caught_at_gap_zero(mip_sets, placement_mip):
    """Block size leaves the LP alone (a fractional block costs per chip), not the MIP."""
    peer = solve_peer(build_peer(_blocks_of_one_chip(mip_sets)), time_limit=60, gap=0.0)
    assert abs(peer["objective"] - placement_mip) > 1e-3 * placement_mip

"""The profile lookup rule of scenario.md: nearest covering lengths, SLO filter, best requests/s."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from placement.profiles import demand_cells, lookup, meets_slo
from placement.scenario import load_scenario
from tests.helpers import write_scenario

ROWS = [
    # model, accel, chips, in, out, req/s, tok/s/user, ttft
    ("m", "a", 1, 1000, 100, 10, 100, 0.2),
    ("m", "a", 1, 1000, 100, 30, 40, 0.5),    # batch sweep at the same point: faster per user vs more req/s
    ("m", "a", 1, 1000, 500, 6, 100, 0.2),
    ("m", "a", 1, 8000, 100, 4, 90, 1.5),
    ("m", "a", 1, 8000, 500, 2, 90, 1.5),
    ("m", "a", 1, 32000, 500, 0, "", ""),     # 0 = cannot serve, never an error
]


def _cells_and_table(tmp_path, buckets, slo=None):
    spec = {
        "accelerators": ["a"], "models": [{"id": "m"}],
        "workloads": [{"id": "w", "requests_per_s": 1, "buckets": buckets, **({"slo": slo} if slo else {})}],
        "pools": [{"id": "p", "accelerator": "a", "kind": "on_demand", "max_chips": 8, "price_per_chip_hour": 1}],
        "profiles": ROWS,
    }
    loaded = load_scenario(write_scenario(tmp_path, spec))
    return demand_cells(loaded.scenario), loaded.profiles.assign(source="measured")


def _best(tmp_path, in_tokens, out_tokens, slo=None):
    cells, table = _cells_and_table(tmp_path, [(in_tokens, out_tokens, 1.0)], slo)
    found = lookup(cells, table)
    return None if found.empty else found.iloc[0]


def test_exact_match_takes_best_requests_per_s(tmp_path):
    row = _best(tmp_path, 1000, 100)
    assert row["replica_requests_per_s"] == 30
    assert (row["row_input_tokens"], row["row_output_tokens"]) == (1000, 100)


def test_nearest_covering_lengths_no_interpolation(tmp_path):
    row = _best(tmp_path, 1001, 100)          # next input up is 8000
    assert (row["row_input_tokens"], row["row_output_tokens"]) == (8000, 100)
    assert row["replica_requests_per_s"] == 4
    row = _best(tmp_path, 900, 101)           # input 1000 covers, output 500 is the nearest covering
    assert (row["row_input_tokens"], row["row_output_tokens"]) == (1000, 500)
    assert row["replica_requests_per_s"] == 6


def test_no_extrapolation_beyond_the_table(tmp_path):
    assert _best(tmp_path, 40000, 100) is None      # longer than any row
    assert _best(tmp_path, 1000, 600) is None       # longer output than any row


def test_zero_row_means_cannot_serve(tmp_path):
    assert _best(tmp_path, 20000, 500) is None      # nearest covering point is the 0 row


def test_slo_filter_picks_best_row_that_meets_it(tmp_path):
    row = _best(tmp_path, 1000, 100, slo={"min_output_tokens_per_s": 50})
    assert row["replica_requests_per_s"] == 10
    assert row["output_tokens_per_s_per_user"] == 100
    assert _best(tmp_path, 1000, 100, slo={"min_output_tokens_per_s": 150}) is None
    assert _best(tmp_path, 8000, 100, slo={"max_ttft_s": 1.0}) is None
    row = _best(tmp_path, 1000, 100, slo={"max_ttft_s": 0.3})
    assert row["replica_requests_per_s"] == 10


def test_e2e_uses_bucket_output_tokens(tmp_path):
    # bucket of 80 output tokens at the (1000, 100) point: fast row 0.2 + 80/100 = 1.0 s, batch row 0.5 + 2 = 2.5 s
    row = _best(tmp_path, 1000, 80, slo={"max_e2e_s": 1.0})
    assert row["replica_requests_per_s"] == 10
    row = _best(tmp_path, 1000, 80, slo={"max_e2e_s": 2.5})
    assert row["replica_requests_per_s"] == 30


def test_missing_slo_column_meets_any_slo():
    rows = pd.DataFrame({
        "output_tokens_per_s_per_user": [math.nan], "ttft_s": [math.nan], "output_tokens": [100],
        "min_output_tokens_per_s": [1e6], "max_ttft_s": [1e-6], "max_e2e_s": [1e-6],
    })
    assert bool(meets_slo(rows).iloc[0])


def test_output_tokens_per_s_is_divided_by_output_tokens(tmp_path):
    path = tmp_path / "s"
    spec = {
        "accelerators": ["a"], "models": [{"id": "m"}],
        "workloads": [{"id": "w", "requests_per_s": 1, "buckets": [(1000, 200, 1.0)]}],
        "pools": [{"id": "p", "accelerator": "a", "kind": "on_demand", "max_chips": 8, "price_per_chip_hour": 1}],
        "profiles": [],
    }
    scenario_path = write_scenario(path, spec)
    (path / "profiles.csv").write_text(
        "model,accelerator,chips_per_replica,input_tokens,output_tokens,output_tokens_per_s\nm,a,1,1000,200,5000\n"
    )
    loaded = load_scenario(scenario_path)
    assert loaded.profiles["requests_per_s"].iloc[0] == pytest.approx(25.0)


def test_each_deployment_looked_up_separately(tmp_path):
    cells, table = _cells_and_table(tmp_path, [(1000, 100, 1.0)])
    other = table.assign(chips_per_replica=2, requests_per_s=table["requests_per_s"] * 3)
    found = lookup(cells, pd.concat([table, other], ignore_index=True))
    assert found.set_index("chips_per_replica")["replica_requests_per_s"].to_dict() == {1: 30, 2: 90}


@pytest.mark.parametrize("example", ["speed-lanes/scenario.yaml", "speed-lanes/quarters.yaml",
                                     "fleet-sizing/scenario.yaml"])
def test_lookup_by_distinct_key_equals_the_lookup_per_cell(example):
    """The lookup runs once per distinct (lengths, SLO) and hands each cell its key's arcs: the same frame,
    row for row and type for type, as looking up every cell."""
    from pathlib import Path

    from placement.profiles import _lookup, _lookup_cells, profile_table

    loaded = load_scenario(Path(__file__).resolve().parents[1] / "inputs" / example)
    table, cells = profile_table(loaded), demand_cells(loaded.scenario)
    pd.testing.assert_frame_equal(_lookup(cells, table), _lookup_cells(cells, table))


def test_lookup_by_key_with_mixed_slos(tmp_path):
    import sys
    from pathlib import Path

    from placement.profiles import _lookup, _lookup_cells, profile_table
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_scale import write_instance

    loaded = load_scenario(write_instance(tmp_path, 40))   # 40 workloads, 3 SLOs, 4 lengths: 80 cells
    table, cells = profile_table(loaded), demand_cells(loaded.scenario)
    assert cells[["input_tokens", "output_tokens", "min_output_tokens_per_s"]].drop_duplicates().shape[0] > 5
    pd.testing.assert_frame_equal(_lookup(cells, table), _lookup_cells(cells, table))

"""Scenarios that reference the catalog, and the estimator feeding the solve."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from placement.api import solve_scenario
from placement.errors import InputError
from placement.profiles import profile_table
from placement.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]
FLEET = REPO / "inputs" / "fleet-sizing" / "scenario.yaml"

DOC = {
    "name": "catalog-refs",
    "accelerators": ["h200", {"catalog": "b200", "id": "b200-derated", "memory_bandwidth_tbps": 7.0}],
    "models": ["llama-3.1-8b"],
    "workloads": [{"id": "chat", "requests_per_s": 20,
                   "buckets": [{"input_tokens": 2000, "output_tokens": 500, "share": 1.0}],
                   "slo": {"min_output_tokens_per_s": 50}}],
    "pools": [{"id": "h200-od", "accelerator": "h200", "kind": "on_demand", "max_chips": 64, "price_per_chip_hour": 6.31},
              {"id": "b200-od", "accelerator": "b200-derated", "kind": "on_demand", "max_chips": 64,
               "price_per_chip_hour": 8.6}],
}


def _write(tmp_path, doc) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_catalog_ids_and_overrides(tmp_path):
    loaded = load_scenario(_write(tmp_path, DOC))
    h200 = loaded.scenario.accelerator("h200")
    assert h200.memory_gb == 141 and h200.memory_bandwidth_tbps == 4.8
    derated = loaded.scenario.accelerator("b200-derated")
    assert derated.memory_bandwidth_tbps == 7.0 and derated.memory_gb == 180
    assert loaded.scenario.model("llama-3.1-8b").architecture["num_hidden_layers"] == 32


def test_unknown_catalog_id_is_named(tmp_path):
    doc = {**DOC, "accelerators": ["h2000"]}
    with pytest.raises(InputError) as caught:
        load_scenario(_write(tmp_path, doc))
    assert "accelerators[0]: no catalog entry 'h2000'" in str(caught.value)


def test_estimated_rows_serve_a_scenario_without_profiles(tmp_path):
    loaded = load_scenario(_write(tmp_path, DOC))
    table = profile_table(loaded)
    assert set(table["source"]) == {"estimated"}
    result = solve_scenario(loaded)
    assert result.plan["status"] == "optimal" and result.violations == []
    assert all(r["output_tokens_per_s_per_user"] >= 50 for r in result.plan["routing"])


def test_measured_rows_override_estimated_for_their_deployment(tmp_path):
    (tmp_path / "profiles.csv").write_text(
        "model,accelerator,chips_per_replica,input_tokens,output_tokens,requests_per_s,output_tokens_per_s_per_user\n"
        "llama-3.1-8b,h200,1,2000,500,1000,60\n")
    loaded = load_scenario(_write(tmp_path, {**DOC, "profiles": "profiles.csv"}))
    table = profile_table(loaded)
    h200 = table[table["accelerator"] == "h200"]
    assert list(h200[h200["chips_per_replica"] == 1]["source"]) == ["measured"]  # the measured deployment
    assert set(h200[h200["chips_per_replica"] > 1]["source"]) == {"estimated"}   # chip counts nobody measured
    assert set(table[table["accelerator"] == "b200-derated"]["source"]) == {"estimated"}
    result = solve_scenario(loaded)
    assert {r["accelerator"] for r in result.plan["routing"]} == {"h200"}  # 1000 req/s per chip wins
    assert result.plan["objective"]["value"] == pytest.approx(6.31)


def test_missing_specs_skip_the_pair_with_a_note(tmp_path):
    doc = {**DOC, "accelerators": [*DOC["accelerators"], {"id": "mystery"}],
           "pools": [*DOC["pools"], {"id": "m-od", "accelerator": "mystery", "kind": "on_demand", "max_chips": 8,
                                     "price_per_chip_hour": 1.0}]}
    result = solve_scenario(_write(tmp_path, doc))
    assert result.plan["status"] == "optimal"
    assert any("llama-3.1-8b on mystery: not estimated" in note for note in result.plan["notes"])


def test_fleet_sizing_example_from_the_catalog_only():
    result = solve_scenario(FLEET)
    assert result.plan["status"] == "optimal" and result.violations == []
    assert {r["source"] for r in result.plan["routing"]} == {"estimated"}
    best = next(b for b in result.plan["baselines"] if b["name"] == "best single accelerator")
    assert best["savings_vs_baseline"] > 0

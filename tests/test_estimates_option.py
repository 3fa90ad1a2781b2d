"""options.estimates: central or conservative estimated rows, and the plan says which it used; models
with speculative decoding in a scenario."""

from __future__ import annotations

import numpy as np
import yaml

from placement.api import solve_scenario
from placement.catalog import load_catalog
from placement.cli import main
from placement.profiles import profile_table
from placement.scenario import load_scenario

DOC = {
    "name": "estimates",
    "accelerators": ["h200"],
    "models": ["llama-3.1-8b"],
    "workloads": [{"id": "chat", "requests_per_s": 40,
                   "buckets": [{"input_tokens": 2000, "output_tokens": 500, "share": 1.0}],
                   "slo": {"min_output_tokens_per_s": 40, "max_ttft_s": 2}}],
    "pools": [{"id": "od", "accelerator": "h200", "kind": "on_demand", "max_chips": 64, "price_per_chip_hour": 6.31}],
}


def _write(tmp_path, doc):
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_conservative_takes_the_low_throughput_and_high_ttft(tmp_path):
    central = profile_table(load_scenario(_write(tmp_path, DOC)))
    conservative = profile_table(load_scenario(_write(tmp_path, {**DOC, "options": {"estimates": "conservative"}})))
    assert np.allclose(conservative.requests_per_s, central.requests_per_s_low)
    assert np.allclose(conservative.output_tokens_per_s_per_user, central.output_tokens_per_s_per_user_low)
    assert np.allclose(conservative.ttft_s, central.ttft_s_high)
    assert np.allclose(conservative.output_tokens_per_s, conservative.requests_per_s * conservative.output_tokens)
    assert conservative.attrs["estimates"] == "conservative"


def test_measured_rows_are_not_derated(tmp_path):
    (tmp_path / "p.csv").write_text("model,accelerator,chips_per_replica,input_tokens,output_tokens,requests_per_s\n"
                                    "llama-3.1-8b,h200,1,2000,500,3\n")
    table = profile_table(load_scenario(_write(tmp_path, {**DOC, "profiles": "p.csv",
                                                          "options": {"estimates": "conservative"}})))
    measured = table[table.source == "measured"]
    assert measured.requests_per_s.tolist() == [3.0]


def test_plan_says_which_estimates_it_used_and_conservative_costs_more(tmp_path):
    central = solve_scenario(_write(tmp_path, DOC)).plan
    assert central["solver"]["estimates"] == "central"
    conservative = solve_scenario(_write(tmp_path, {**DOC, "options": {"estimates": "conservative"}})).plan
    assert conservative["solver"]["estimates"] == "conservative"
    assert conservative["status"] == "optimal"
    assert conservative["cost"]["per_hour"] > central["cost"]["per_hour"]


def test_unknown_estimates_choice_is_bad_input(tmp_path):
    assert main(["validate", str(_write(tmp_path, {**DOC, "options": {"estimates": "optimistic"}}))]) == 3


def test_speculative_model_in_a_scenario_and_catalog(tmp_path):
    _, models = load_catalog()
    assert models["deepseek-r1-mtp3"].speculative.draft_tokens == 3
    doc = {**DOC, "models": [{"catalog": "llama-3.1-8b", "id": "llama-8b-eagle",
                              "speculative": {"method": "draft", "draft_tokens": 2, "acceptance": 0.6,
                                              "draft_params_b": 0.3}}],
           "workloads": [{**DOC["workloads"][0], "slo": {"min_output_tokens_per_s": 150}}]}
    fast = profile_table(load_scenario(_write(tmp_path, doc)))
    plain = profile_table(load_scenario(_write(tmp_path, DOC)))
    assert fast.output_tokens_per_s_per_user.max() > 1.3 * plain.output_tokens_per_s_per_user.max()
    bad = {**doc, "models": [{"catalog": "llama-3.1-8b", "speculative": {"method": "draft", "draft_tokens": 2,
                                                                        "acceptance": 0.6}}]}
    assert main(["validate", str(_write(tmp_path, bad))]) == 3
    bad["models"][0]["speculative"] = {"method": "medusa", "draft_tokens": 2, "acceptance": 0.6}
    assert main(["validate", str(_write(tmp_path, bad))]) == 3

"""The edit language: paths by id, [*], positions, defaults, values, and bad input listed all at once."""

from __future__ import annotations

import pytest
import yaml

from placement.edits import apply_edits, editable_document, resolve_edits, split_path
from placement.errors import InputError
from placement.scenario import load_scenario
from placement.study import load_study
from placement.whatif import add_chips, edit, scale, scale_demand, scale_prices
from tests.helpers import write_scenario

SPEC = {
    "accelerators": ["a", "b"],
    "models": [{"id": "small", "quality": {"score": 50}}, {"id": "big", "quality": {"score": 80}}],
    "workloads": [
        {"id": "chat", "requests_per_s": 10, "buckets": [(1000, 100, 0.5), (2000, 100, 0.5)]},
        {"id": "batch", "requests_per_s": 4, "buckets": [(1000, 100, 1.0)]},
    ],
    "pools": [{"id": "a-res", "accelerator": "a", "kind": "reserved", "block_chips": 2, "max_chips": 8,
               "price_per_chip_hour": 1.0},
              {"id": "b-od", "accelerator": "b", "kind": "on_demand", "max_chips": 16, "price_per_chip_hour": 3.0}],
    "profiles": [("small", "a", 1, 2000, 100, 5), ("big", "a", 2, 2000, 100, 5), ("small", "b", 1, 2000, 100, 5)],
}


@pytest.fixture
def scenario_file(tmp_path):
    return write_scenario(tmp_path, SPEC)


@pytest.fixture
def document(scenario_file):
    return yaml.safe_load(scenario_file.read_text())


def test_split_path_keeps_dots_inside_ids():
    assert split_path("models[gpt-4.1].quality.swe-bench-pro") == [("models", "gpt-4.1"), ("quality", None),
                                                                   ("swe-bench-pro", None)]
    with pytest.raises(ValueError):
        split_path("pools[a-res.max_chips")


def test_paths_address_items_by_id_every_item_and_position(document):
    one, every, position, metric = resolve_edits(document, [
        "pools[b-od].price_per_chip_hour", "workloads[*].requests_per_s", "workloads[chat].buckets[1].share",
        "models[big].quality.score"], "study.yaml")
    assert [leaf.keys for leaf in one.leaves] == [("pools", 1, "price_per_chip_hour")]
    assert [leaf.keys for leaf in every.leaves] == [("workloads", 0, "requests_per_s"), ("workloads", 1, "requests_per_s")]
    assert position.leaves[0].keys == ("workloads", 0, "buckets", 1, "share")
    assert metric.leaves[0].kind == "float"


def test_set_and_scale_leave_the_base_untouched(document):
    price, rates, cap = resolve_edits(document, ["pools[b-od].price_per_chip_hour", "workloads[*].requests_per_s",
                                                 "pools[a-res].max_chips"], "x")
    edited = apply_edits(document, [(price, "set", 2.5), (rates, "scale", 1.5), (cap, "scale", 1.3)])
    assert edited["pools"][1]["price_per_chip_hour"] == 2.5
    assert [w["requests_per_s"] for w in edited["workloads"]] == [15.0, 6.0]  # each scaled from its own base
    assert edited["pools"][0]["max_chips"] == 10  # 8 x 1.3 = 10.4: whole chips, rounded
    assert document["workloads"][0]["requests_per_s"] == 10 and document["pools"][0]["max_chips"] == 8


def test_absent_fields_take_their_default_and_are_created(document):
    document.pop("options")
    headroom, speed, gap = resolve_edits(document, ["options.headroom", "workloads[batch].slo.min_output_tokens_per_s",
                                                    "options.solver.mip_gap"], "x")
    edited = apply_edits(document, [(headroom, "set", 0.2), (speed, "set", 40), (gap, "scale", 10)])
    assert edited["options"]["headroom"] == 0.2
    assert edited["workloads"][1]["slo"] == {"min_output_tokens_per_s": 40.0}
    assert edited["options"]["solver"]["mip_gap"] == pytest.approx(1e-3)  # the default 1e-4, scaled


def test_every_unknown_path_and_id_is_listed_at_once(document):
    with pytest.raises(InputError) as caught:
        resolve_edits(document, ["pools[H200].max_chips", "workloads[Batch].requests_per_s", "options.headrom",
                                 "models[big].quality.mmlu", "pools", "workloads[chat].buckets[7].share",
                                 "pools[a-res].max_chips.x", "ok[", ""], "study.yaml")
    problems = caught.value.problems
    assert len(problems) == 9
    text = "\n".join(str(p) for p in problems)
    for expected in ("no item with id 'H200' in pools", "no item with id 'Batch'", "unknown field 'headrom'",
                     "no key 'mmlu'", "is a list or an object", "give a position 0..1", "is a single value",
                     "cannot read", "a path is text"):
        assert expected in text
    assert all(p.file == "study.yaml" for p in problems)


def test_values_must_fit_their_field(document):
    (cap,) = resolve_edits(document, ["pools[a-res].max_chips"], "x")
    with pytest.raises(ValueError, match="whole number"):
        apply_edits(document, [(cap, "set", 2.5)])
    (kind,) = resolve_edits(document, ["pools[a-res].kind"], "x")
    with pytest.raises(ValueError, match="must be text"):
        apply_edits(document, [(kind, "set", 3)])


def test_table_backed_pools_are_editable(tmp_path):
    path = write_scenario(tmp_path, SPEC)
    document = yaml.safe_load(path.read_text())
    header = "id,accelerator,kind,block_chips,max_chips,price_per_chip_hour"
    rows = [header] + [",".join(str(p.get(k, "")) for k in header.split(",")) for p in document["pools"]]
    (tmp_path / "pools.csv").write_text("\n".join(rows) + "\n")
    document["pools"] = "pools.csv"
    path.write_text(yaml.safe_dump(document))
    editable, base = editable_document(path)
    assert isinstance(editable["pools"], list) and editable["pools"][1]["id"] == "b-od"
    (target,) = resolve_edits(editable, ["pools[b-od].price_per_chip_hour"], "x")
    from placement.edits import validate_document

    loaded = validate_document(apply_edits(editable, [(target, "set", 2.0)]), base, "x")
    assert loaded.scenario.pools[1].price_per_chip_hour == 2.0
    assert loaded.sha256 != base.sha256


def test_edited_scenarios_are_validated_like_files(scenario_file):
    base = load_scenario(scenario_file)
    with pytest.raises(InputError, match="greater than or equal to 0"):
        edit(base, {"pools[b-od].price_per_chip_hour": -1.0})
    with pytest.raises(InputError, match="shares sum to"):
        edit(base, {"workloads[chat].buckets[0].share": 0.7})


def test_whatif_refuses_unknown_ids(scenario_file):
    base = load_scenario(scenario_file)
    for attempt in (lambda: scale_prices(base, 0.8, accelerators=["H200"]),
                    lambda: scale_demand(base, 2.0, workloads=["Batch"]),
                    lambda: add_chips(base, "nope", 4),
                    lambda: edit(base, {"pools[nope].max_chips": 4})):
        with pytest.raises(InputError):
            attempt()


def test_whatif_edits_one_item_not_the_list(scenario_file):
    base = load_scenario(scenario_file)
    more = add_chips(base, "a-res", 2)
    assert [p.max_chips for p in more.scenario.pools] == [10, 16]
    busier = scale(base, {"workloads[batch].requests_per_s": 2})
    assert [w.requests_per_s for w in busier.scenario.workloads] == [10, 8]
    assert [p.price_per_chip_hour for p in scale_prices(base, 0.5, ["b"]).scenario.pools] == [1.0, 1.5]


def _study(tmp_path, body: dict) -> str:
    scenario = write_scenario(tmp_path / "sc", SPEC)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"scenario": str(scenario.relative_to(tmp_path)), **body}))
    return str(path)


def test_study_combinations(tmp_path):
    vary = [{"path": "pools[b-od].price_per_chip_hour", "values": [1, 2, 3]},
            {"path": "options.headroom", "range": {"from": 0.0, "to": 0.2, "steps": 3}}]
    grid = load_study(_study(tmp_path, {"vary": vary}))
    assert len(grid.cases) == 9 and grid.cases[0].name == "case-001"
    assert [c.columns["options.headroom"] for c in grid.cases[:3]] == [0.0, 0.1, 0.2]
    assert len(load_study(_study(tmp_path, {"vary": vary, "combine": "zip"})).cases) == 3
    sampled = load_study(_study(tmp_path, {"vary": vary, "combine": {"random": {"samples": 5, "seed": 7}}}))
    again = load_study(_study(tmp_path, {"vary": vary, "combine": {"random": {"samples": 5, "seed": 7}}}))
    assert [c.columns for c in sampled.cases] == [c.columns for c in again.cases]
    assert all(0.0 <= c.columns["options.headroom"] <= 0.2 for c in sampled.cases)
    assert all(c.columns["pools[b-od].price_per_chip_hour"] in (1, 2, 3) for c in sampled.cases)
    scaled = load_study(_study(tmp_path, {"vary": [{"path": "pools[b-od].price_per_chip_hour", "scale": [0.5, 2]}]}))
    assert [c.columns["pools[b-od].price_per_chip_hour"] for c in scaled.cases] == [1.5, 6.0]  # the value used
    ranged = load_study(_study(tmp_path, {"vary": [{"path": "workloads[*].requests_per_s",
                                                    "scale": {"from": 1.0, "to": 2.0, "steps": 3}}]}))
    assert [c.columns["workloads[*].requests_per_s"] for c in ranged.cases] == [1.0, 1.5, 2.0]  # factors: 2 places


def test_bad_study_lists_every_problem(tmp_path):
    path = _study(tmp_path, {"vary": [
        {"path": "pools[H200].max_chips", "values": [1]},
        {"path": "workloads[chat].requests_per_s"},
        {"path": "options.headroom", "range": {"from": 0, "to": 1}},
        {"path": "pools[a-res].max_chips", "values": [2.5]},
    ], "combine": "zip", "colour": "blue"})
    with pytest.raises(InputError) as caught:
        load_study(path)
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "no item with id 'H200'" in text
    assert "give exactly one of" in text
    assert "a range is" in text
    assert "colour" in text
    assert len(caught.value.problems) >= 4


def test_bad_study_exits_3_before_anything_runs(tmp_path, capsys):
    from placement.cli import main

    path = _study(tmp_path, {"vary": [{"path": "pools[H200].max_chips", "values": [1]},
                                      {"path": "workloads[Batch].requests_per_s", "scale": [2]}]})
    assert main(["study", path, "--out", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert "'H200'" in err and "'Batch'" in err
    assert not (tmp_path / "out").exists()


def test_load_scenario_overrides_use_the_edit_language(scenario_file):
    loaded = load_scenario(scenario_file, overrides={"pools[a-res].max_chips": 12})
    assert [p.max_chips for p in loaded.scenario.pools] == [12, 16]  # the other pool is still there
    with pytest.raises(InputError, match="no item with id 'H200'"):
        load_scenario(scenario_file, overrides={"pools[H200].max_chips": 12})
    with pytest.raises(InputError, match="is a list or an object"):
        load_scenario(scenario_file, overrides={"pools": []})


def test_the_contract_example_study_loads(tmp_path):
    """The study in cli-and-outputs.md, against the speed-lanes example: 5 x 2 x 3 x 4 cases."""
    from pathlib import Path

    folder = tmp_path / "studies"
    folder.mkdir()
    target = tmp_path / "speed-lanes"
    source = Path(__file__).resolve().parent.parent / "inputs" / "speed-lanes"
    target.mkdir()
    for name in ("scenario.yaml", "profiles.csv"):
        (target / name).write_text((source / name).read_text())
    (folder / "study.yaml").write_text("""
scenario: ../speed-lanes/scenario.yaml
vary:
  - {path: "pools[h200-on-demand].price_per_chip_hour", scale: [0.6, 0.8, 1.0, 1.2, 1.4]}
  - {path: "workloads[*].requests_per_s", scale: [1.0, 1.3]}
  - {path: "workloads[batch].slo.min_output_tokens_per_s", values: [20, 50, 100]}
  - {path: "options.headroom", range: {from: 0.0, to: 0.3, steps: 4}}
combine: grid
""")
    study = load_study(folder / "study.yaml")
    assert len(study.cases) == 120
    assert study.cases[-1].columns == {"pools[h200-on-demand].price_per_chip_hour": pytest.approx(8.834),
                                       "workloads[*].requests_per_s": 1.3,
                                       "workloads[batch].slo.min_output_tokens_per_s": 100,
                                       "options.headroom": pytest.approx(0.3)}

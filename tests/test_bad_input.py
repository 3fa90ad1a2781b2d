"""Bad input: exit 3, one clear message per problem naming file, field path and value; nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from placement.cli import main
from placement.errors import InputError
from placement.scenario import load_scenario
from tests.helpers import write_scenario

SPEC = {
    "accelerators": ["a"], "models": [{"id": "m", "quality": {"q": 70}}],
    "workloads": [{"id": "w", "requests_per_s": 4, "buckets": [(1000, 100, 0.5), (2000, 100, 0.5)],
                   "slo": {"max_ttft_s": 2}}],
    "pools": [{"id": "p", "accelerator": "a", "kind": "on_demand", "max_chips": 10, "price_per_chip_hour": 2.0}],
    "profiles": [("m", "a", 1, 2000, 100, 2, 50, 0.5)],
}

# (description, text replacement in the YAML, expected fragments of the message)
YAML_MUTATIONS = [
    ("negative rate", ("requests_per_s: 4", "requests_per_s: -4"), ["workloads[0].requests_per_s", "-4"]),
    ("NaN rate", ("requests_per_s: 4", "requests_per_s: .nan"), ["workloads[0].requests_per_s", "finite"]),
    ("infinite rate", ("requests_per_s: 4", "requests_per_s: .inf"), ["workloads[0].requests_per_s", "finite"]),
    ("negative price", ("price_per_chip_hour: 2.0", "price_per_chip_hour: -2.0"), ["pools[0].price_per_chip_hour"]),
    ("text for a number", ("max_chips: 10", "max_chips: ten"), ["pools[0].max_chips", "'ten'"]),
    ("quoted number", ("max_chips: 10", "max_chips: '10'"), ["pools[0].max_chips", "'10'"]),
    ("typo in a field", ("max_chips: 10", "max_chip: 10"), ["pools[0].max_chip", "unknown field"]),
    ("typo at top level", ("hours: 100", "hour: 100"), ["hour", "unknown field"]),
    ("unknown pool kind", ("kind: on_demand", "kind: ondemand"), ["pools[0].kind", "ondemand"]),
    ("unknown accelerator", ("accelerator: a\n", "accelerator: zz\n"), ["pools[0].accelerator", "'zz'"]),
    ("shares not summing to 1", ("share: 0.5\n", "share: 0.6\n"), ["workloads[0]", "sum to 1.1"]),
    ("zero share", ("share: 0.5\n", "share: 0\n"), ["share"]),
    ("shedding without a price", ("requests_per_s: 4", "requests_per_s: 4\n  must_serve: false"),
     ["unserved_cost_per_request"]),
    ("on-demand without a price", ("price_per_chip_hour: 2.0", "fixed_cost: 0"), ["pools[0]", "price_per_chip_hour"]),
    ("headroom of 1", ("headroom: 0.0", "headroom: 1.0"), ["options.headroom"]),
    ("fractional chips say both forms, not pydantic's union members", ("max_chips: 10", "max_chips: 10.5"),
     ["pools[0].max_chips: max_chips must be a whole number of chips, or one per period id", "(got 10.5)"]),
    ("fractional churn limit", ("headroom: 0.0", "headroom: 0.0\n  max_churn_chips: 2.5"),
     ["options.max_churn_chips: max_churn_chips must be a whole number of chips", "(got 2.5)"]),
    ("a lead time on an on-demand pool", ("kind: on_demand", "kind: on_demand\n  lead_periods: 1"),
     ["pools[0]", "lead_periods applies to reserved pools only"]),
    ("a term of a billion periods", ("kind: on_demand", "kind: reserved\n  term_periods: 1000000000"),
     ["pools[0].term_periods", "less than or equal to 1000"]),
    ("a lead of a billion periods", ("kind: on_demand", "kind: reserved\n  lead_periods: 1000000000"),
     ["pools[0].lead_periods", "less than or equal to 1000"]),
    ("an absurd churn price", ("headroom: 0.0", "headroom: 0.0\n  churn_cost_per_chip: 1.0e+300"),
     ["options.churn_cost_per_chip", "less than or equal to 1000000"]),
    ("signed contracts above the cap", ("kind: on_demand", "kind: reserved\n  block_chips: 4\n  committed: "
                                                          "[{blocks: 3, through: p1}]"),
     ["pools[0].committed", "hold 12 chips in p1, above max_chips 10", "at least 12"]),
    ("the same fleet row twice",
     ("profiles: profiles.csv", "profiles: profiles.csv\nfleet: [{model: m, accelerator: a, chips_per_replica: 1, "
                                "pool: p, replicas: 2}, {model: m, accelerator: a, chips_per_replica: 1, pool: p, "
                                "replicas: 1}]"),
     ["fleet[1].model", "duplicate row for m/a x1 in p", "summed"]),
    ("negative churn limit", ("headroom: 0.0", "headroom: 0.0\n  max_churn_chips: -5"),
     ["options.max_churn_chips", ">= 0", "-5"]),
    ("negative churn limit in a period", ("headroom: 0.0", "headroom: 0.0\n  max_churn_chips: {p1: -1}"),
     ["options.max_churn_chips", "max_churn_chips.p1", "-1"]),
    ("unknown engine", ("solver: {}", "solver: {engine: gurobi}"), ["options.solver.engine", "gurobi"]),
    ("engine not in backend", ("solver: {}", "solver: {backend: pulp, engine: scip}"), ["options.solver", "scip"]),
    ("missing table", ("profiles: profiles.csv", "profiles: nope.csv"), ["nope.csv", "not found"]),
    ("unknown quality metric", ("requests_per_s: 4", "requests_per_s: 4\n  quality: {metric: qq, min: 1}"),
     ["workloads[0].quality.metric", "qq"]),
    ("empty buckets", ("buckets:", "buckets: []\n  old_buckets:"), ["workloads[0].buckets"]),
]


def _scenario(tmp_path: Path) -> Path:
    return write_scenario(tmp_path, SPEC)


def _message(path: Path) -> str:
    with pytest.raises(InputError) as caught:
        load_scenario(path)
    return str(caught.value)


@pytest.mark.parametrize("description,replacement,expected", YAML_MUTATIONS, ids=[m[0] for m in YAML_MUTATIONS])
def test_yaml_mutation_is_named(tmp_path, description, replacement, expected):
    path = _scenario(tmp_path)
    text = path.read_text()
    old, new = replacement
    assert old in text, f"test setup: {old!r} not in the scenario"
    path.write_text(text.replace(old, new, 1))
    message = _message(path)
    assert str(path) in message or expected[0].endswith(".csv") or "nope.csv" in message
    for fragment in expected:
        assert fragment in message, message


def test_duplicate_ids(tmp_path):
    spec = {**SPEC, "pools": SPEC["pools"] * 2}
    message = _message(write_scenario(tmp_path, spec))
    assert "pools[1].id: duplicate id 'p'" in message


def test_all_problems_reported_at_once(tmp_path):
    path = _scenario(tmp_path)
    text = path.read_text().replace("requests_per_s: 4", "requests_per_s: -4").replace("max_chips: 10", "max_chip: 10")
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_scenario(path)
    fields = [p.field for p in caught.value.problems]
    assert "workloads[0].requests_per_s" in fields and "pools[0].max_chip" in fields


def test_schema_and_reference_problems_in_one_pass(tmp_path):
    path = _scenario(tmp_path)
    text = path.read_text().replace("max_chips: 10", "max_chip: 10").replace("accelerator: a\n", "accelerator: zz\n")
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_scenario(path)
    fields = [p.field for p in caught.value.problems]
    assert "pools[0].max_chip" in fields and "pools[0].accelerator" in fields


CSV_MUTATIONS = [
    ("2000,100,2,50,0.5", "2000,100,-2,50,0.5", "row 1 (line 2), column requests_per_s"),
    ("2000,100,2,50,0.5", "2000,100,fast,50,0.5", "row 1 (line 2), column requests_per_s"),
    ("2000,100,2,50,0.5", "2000,100,nan,50,0.5", "row 1 (line 2), column requests_per_s"),
    ("2000,100,2,50,0.5", "2000,100,inf,50,0.5", "row 1 (line 2), column requests_per_s"),
    ("m,a,1,2000", "m,a,1.5,2000", "row 1 (line 2), column chips_per_replica"),
    ("m,a,1,2000", "zz,a,1,2000", "row 1 (line 2), column model"),
    ("ttft_s", "ttft", "column ttft"),
    ("m,a,1,2000,100,2,50,0.5", "m,a,1,2000,100,,50,0.5", "row 1 (line 2), column requests_per_s"),
    ("m,a,1,2000", "m,a,,2000", "row 1 (line 2), column chips_per_replica"),
]


@pytest.mark.parametrize("old,new,expected", CSV_MUTATIONS)
def test_csv_errors_name_row_and_column(tmp_path, old, new, expected):
    path = _scenario(tmp_path)
    table = tmp_path / "profiles.csv"
    text = table.read_text()
    assert old in text
    table.write_text(text.replace(old, new, 1))
    message = _message(path)
    assert "profiles.csv" in message and expected in message, message


def test_malformed_documents(tmp_path):
    cases = {
        "broken.yaml": "name: x\n  bad: [\n",
        "list.yaml": "- 1\n- 2\n",
        "empty.yaml": "",
        "broken.json": '{"name": "x",',
        "nan.json": '{"name": NaN}',
        "binary.yaml": None,
    }
    for name, text in cases.items():
        path = tmp_path / name
        if text is None:
            path.write_bytes(b"\xff\xfe\x00garbage")
        else:
            path.write_text(text)
        message = _message(path)
        assert name in message


def test_csv_tables_for_accelerators_and_pools(tmp_path):
    path = _scenario(tmp_path)
    (tmp_path / "pools.csv").write_text(
        "id,accelerator,kind,max_chips,price_per_chip_hour\np,a,on_demand,10,2.0\nq,a,on_demand,-3,1.0\n"
    )
    text = path.read_text()
    start = text.index("pools:")
    end = text.index("options:")
    path.write_text(text[:start] + "pools: pools.csv\n" + text[end:])
    message = _message(path)
    assert "pools.csv: row 2 (line 3), column max_chips" in message


def test_solve_with_bad_input_writes_nothing(tmp_path, capsys):
    path = _scenario(tmp_path)
    path.write_text(path.read_text().replace("requests_per_s: 4", "requests_per_s: -4"))
    out = tmp_path / "plan"
    assert main(["solve", str(path), "--out", str(out), "--json"]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    assert not out.exists()
    assert not any(p.name.startswith(".plan") for p in tmp_path.iterdir())


def test_json_scenarios_load_like_yaml(tmp_path):
    yaml_path = write_scenario(tmp_path / "y", SPEC)
    json_path = write_scenario(tmp_path / "j", SPEC, name="scenario.json")
    assert load_scenario(yaml_path).sha256 == load_scenario(json_path).sha256
    json.loads(json_path.read_text())


def test_inline_profile_rows_report_every_problem(tmp_path):
    path = _scenario(tmp_path)
    text = path.read_text().replace("profiles: profiles.csv", """profiles:
- {model: m, accelerator: a, chips_per_replica: 1, input_tokens: 10, output_tokens: 10, requests_per_s: 2}
- {model: m, accelerator: a, chips_per_replica: 1, input_tokens: 10, output_tokens: 20, requests_per_s: -2}
- {model: zz, accelerator: a, chips_per_replica: 1, input_tokens: 10, output_tokens: 30, requests_per_s: 2, ttft: 3}""")
    path.write_text(text)
    message = _message(path)
    assert "profiles.ttft: unknown column" in message
    assert "profiles[1].requests_per_s: -2 must be >=0" in message
    assert "profiles[2].model: unknown model 'zz'" in message


# ---- what a user means but the file says otherwise ----

@pytest.mark.parametrize("bad_id,shown", [
    ("a\x1b[31m", "U+001B"),          # an ANSI escape: colours the terminal, garbles summary.md
    ("a\u200b", "U+200B"),            # zero-width space: two ids that look the same
    ("a\nb", "U+000A"),               # a newline breaks every table row and log line
    ("a\u202eb", "U+202E"),           # right-to-left override: the id reads backwards
    ("a\u00a0b", "U+00A0"),           # no-break space: looks like a space, is not one
])
def test_ids_with_invisible_or_control_characters_are_refused(tmp_path, bad_id, shown):
    spec = {**SPEC, "workloads": [{**SPEC["workloads"][0], "id": bad_id}]}
    path = write_scenario(tmp_path, spec)
    message = _message(path)
    assert f"workloads[0].id: contains invisible or control characters ({shown})" in message, message
    assert main(["validate", str(path)]) == 3


@pytest.mark.parametrize("field,value,where", [
    ("pools", [{**SPEC["pools"][0], "id": "p\u200b"}], "pools[0].id"),
    ("models", [{"id": "m", "quality": {"q\x07": 70}}], "models[0].quality"),
    ("name", "test\r\nname", "name"),
    ("name", " padded", "name"),
])
def test_names_shown_to_people_are_visible(tmp_path, field, value, where):
    message = _message(write_scenario(tmp_path, {**SPEC, field: value}))
    assert f"{where}: " in message and ("invisible" in message or "space" in message), message


def test_pipes_in_ids_are_escaped_in_summary_tables(tmp_path):
    from placement.api import solve_scenario

    spec = {**SPEC, "workloads": [{**SPEC["workloads"][0], "id": "chat|eu"}],
            "pools": [{**SPEC["pools"][0], "id": "od|1"}]}
    result = solve_scenario(write_scenario(tmp_path, spec))
    assert result.plan["status"] == "optimal"
    routing = [line for line in result.summary.splitlines() if line.startswith("| chat")]
    assert routing and all(line.count(" | ") == 9 for line in routing), routing  # 10 columns, as in the header
    assert "| chat\\|eu | 0 |" in result.summary
    assert "| od\\|1 | on_demand |" in result.summary


def test_duplicate_buckets_are_refused(tmp_path):
    spec = {**SPEC, "workloads": [{**SPEC["workloads"][0], "buckets": [(1000, 100, 0.25), (2000, 100, 0.5),
                                                                      (1000, 100, 0.25)]}]}
    path = write_scenario(tmp_path, spec)
    message = _message(path)
    assert ("workloads[0].buckets[2]: same lengths (1000 in, 100 out) as buckets[0]; merge them into one bucket and "
            "add their shares") in message
    assert main(["validate", str(path)]) == 3


@pytest.mark.parametrize("floor", ["min", "min_mean"])
def test_a_quality_floor_above_every_allowed_model_is_refused(tmp_path, floor):
    models = [{"id": "m", "quality": {"q": 70}}, {"id": "big", "quality": {"q": 90}}]
    workload = {**SPEC["workloads"][0], "quality": {"metric": "q", floor: 80}, "allowed_models": ["m"]}
    path = write_scenario(tmp_path, {**SPEC, "models": models, "workloads": [workload]})
    message = _message(path)
    assert (f"workloads[0].quality.{floor}: 80 is above every allowed model's q score (best: m at 70); lower {floor} "
            "to at most 70 or allow a model that reaches it") in message
    assert main(["validate", str(path)]) == 3
    reachable = {**workload, "allowed_models": ["m", "big"]}  # big reaches it: legal
    load_scenario(write_scenario(tmp_path / "ok", {**SPEC, "models": models, "workloads": [reachable]}))


@pytest.mark.parametrize("rows", [
    "m;a;1;2000;100;2;50;0.5\n",      # all semicolons: one column
    "m;a;1;2000;100;2,5;50;0,5\n",    # decimal commas: the rows have more fields than the header
])
def test_semicolon_csv_names_the_delimiter(tmp_path, rows):
    path = _scenario(tmp_path)
    (tmp_path / "profiles.csv").write_text(
        "model;accelerator;chips_per_replica;input_tokens;output_tokens;requests_per_s;"
        "output_tokens_per_s_per_user;ttft_s\n" + rows)
    message = _message(path)
    assert "profiles.csv" in message and "';'" in message and "use commas" in message, message


def test_no_speed_asked_is_said_in_validate_and_summary(tmp_path, capsys):
    from placement.api import solve_scenario

    # two operating points: 2 req/s at 50 tok/s per user, 4 req/s at 4.2 (the larger batch): with no speed
    # asked, the lookup takes the larger batch
    spec = {**SPEC, "workloads": [{**SPEC["workloads"][0], "slo": {}}],
            "profiles": [("m", "a", 1, 2000, 100, 2, 50, 0.5), ("m", "a", 1, 2000, 100, 4, 4.2, 0.9)]}
    path = write_scenario(tmp_path, spec)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "note: workload w asks no per-user speed; planned at 4.2 tok/s per user" in out, out
    result = solve_scenario(path)
    note = ("workload w asks no per-user speed; planned at 4.2 tok/s per user (slowest routed row; traffic-weighted "
            "mean 4.2 tok/s); set slo.min_output_tokens_per_s to ask for more")
    assert note in result.plan["notes"]
    assert f"- {note}" in result.summary
    asked = {**SPEC, "workloads": [{**SPEC["workloads"][0], "slo": {"min_output_tokens_per_s": 40}}],
             "profiles": spec["profiles"]}
    quiet = solve_scenario(write_scenario(tmp_path / "asked", asked))
    assert not any("asks no per-user speed" in n for n in quiet.plan["notes"])
    assert "asks no per-user speed" not in quiet.summary


# a load curve of 4 hours (w peaks at hour 1), written as hourly.csv, with options.slices: {count: 2}
CURVE = "workload,hour,requests_per_s\nw,0,2\nw,1,6\nw,2,3\nw,3,1\n"
CURVE_MUTATIONS = [
    ("shape keyed by a slice the curve does not make", {"workloads[0].shape": {"peak": 2.0}},
     ["scenario.yaml", "workloads[0].shape.peak", "unknown slice 'peak'", "'peak-w', 'c1'"]),
    ("availability keyed likewise", {"pools[0].availability": {"night": 0.5}, "pools[0].kind": "spot"},
     ["pools[0].availability.night", "unknown slice 'night'"]),
    ("a demand row in a slice the curve does not make",
     {"demand": [{"workload": "w", "period": "p1", "slice": "peak", "requests_per_s": 3}]},
     ["demand[0].slice", "unknown slice 'peak'"]),
    ("more slices than hours", {"options.slices": {"count": 5}}, ["options.slices.count", "count <= 4"]),
    ("more peaks than slices", {"options.slices": {"count": 1}}, ["scenario.yaml", "options.slices.count", ">= 2"]),
    ("a curve with a header and no rows", {"curve": "workload,hour,requests_per_s\n"},
     ["hourly.csv", "load_curve", "no rows"]),
    ("an absurd rate", {"curve": CURVE.replace("w,1,6", "w,1,1e30")},
     ["hourly.csv", "row 2 (line 3), column requests_per_s", "less than or equal"]),
    ("an hour one workload lacks", {"curve": CURVE + "v,0,1\n", "workloads+": {"id": "v", "requests_per_s": 1,
                                                                                 "buckets": [{"input_tokens": 2000,
                                                                                              "output_tokens": 100,
                                                                                              "share": 1.0}]}},
     ["hourly.csv", "do not list the same hours"]),
]


def _curve_scenario(tmp_path: Path, edits: dict) -> Path:
    import yaml

    path = _scenario(tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["load_curve"] = "hourly.csv"
    doc["options"]["slices"] = {"count": 2}
    (tmp_path / "hourly.csv").write_text(edits.get("curve", CURVE))
    for key, value in edits.items():
        if key == "workloads+":
            doc["workloads"].append(value)
        elif "." in key:
            head, field = key.split(".")
            target = doc["options"] if head == "options" else doc[head[:-3]][int(head[-2])]
            target[field] = value
        elif key != "curve":
            doc[key] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_the_load_curve_scenario_itself_is_fine(tmp_path):
    slices = load_scenario(_curve_scenario(tmp_path, {})).scenario.options.slices
    assert slices.count == 2


@pytest.mark.parametrize("description,edits,expected", CURVE_MUTATIONS, ids=[m[0] for m in CURVE_MUTATIONS])
def test_load_curve_mutation_is_named_before_solving(tmp_path, description, edits, expected):
    """The derivation runs at load time, so `validate` and `solve` both refuse these with file and field."""
    path = _curve_scenario(tmp_path, edits)
    message = _message(path)
    for fragment in expected:
        assert fragment in message, message
    assert main(["validate", str(path)]) == 3


@pytest.mark.parametrize("header,said", [
    ("workload,period,requests_per_s", "lacks column(s) ['slice']"),
    ("workload,period,slice,requests_per_s,note", "has unknown column(s) ['note']"),
])
def test_a_row_table_with_a_wrong_header_is_one_problem(tmp_path, header, said):
    import yaml

    path = _scenario(tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["demand"] = "demand.csv"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    cells = {"workload": "w", "period": "p1", "slice": "all", "requests_per_s": "3", "note": "x"}
    rows = [",".join(cells[c] for c in header.split(","))] * 5
    (tmp_path / "demand.csv").write_text("\n".join([header] + rows) + "\n")
    with pytest.raises(InputError) as caught:
        load_scenario(path)
    assert [(p.file, p.field) for p in caught.value.problems] == [("demand.csv", "header")]
    assert said in str(caught.value)

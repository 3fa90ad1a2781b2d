"""What the tool may read and what it may replace: nothing lost, nothing read that should not be.

Every case here was a real failure: `--out` pointing at the scenario's own folder deleted it, table
paths read /etc/passwd and echoed it, /dev/zero hung validate, a second `pools:` silently won.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from placement.cli import main
from placement.errors import InputError
from placement.files import MAX_DOCUMENT_BYTES, MAX_TABLE_BYTES, PLAN_MARKER
from placement.scenario import load_scenario
from tests.helpers import write_scenario

REPO = Path(__file__).resolve().parents[1]

SPEC = {
    "accelerators": ["a"], "models": [{"id": "m", "quality": {"q": 70}}],
    "workloads": [{"id": "w", "requests_per_s": 4, "buckets": [(2000, 100, 1.0)]}],
    "pools": [{"id": "p", "accelerator": "a", "kind": "on_demand", "max_chips": 10, "price_per_chip_hour": 2.0}],
    "profiles": [("m", "a", 1, 2000, 100, 2)],
}


def _problems(path: Path) -> str:
    with pytest.raises(InputError) as caught:
        load_scenario(path)
    return str(caught.value)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _strays(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".old", ".tmp")))


# --------------------------------------------------------------------------------------------------
# --out: only a plan folder the tool wrote may be replaced


def test_out_at_the_scenario_folder_is_refused_and_nothing_is_touched(tmp_path, capsys):
    scenario = write_scenario(tmp_path / "sc", SPEC)
    (tmp_path / "sc" / "notes.txt").write_text("mine")
    before = _tree(tmp_path / "sc")
    assert main(["solve", str(scenario), "--out", str(tmp_path / "sc")]) == 3
    err = capsys.readouterr().err
    assert str(tmp_path / "sc") in err and "not a plan folder" in err and "--out" in err
    assert _tree(tmp_path / "sc") == before
    assert _strays(tmp_path) == []


def test_out_at_a_regular_file_is_refused(tmp_path, capsys):
    scenario = write_scenario(tmp_path / "in", SPEC)
    target = tmp_path / "report.txt"
    target.write_text("keep me")
    assert main(["solve", str(scenario), "--out", str(target)]) == 3
    assert str(target) in capsys.readouterr().err
    assert target.read_text() == "keep me"
    assert _strays(tmp_path) == []


def test_out_at_a_folder_with_plan_json_but_no_marker_is_refused(tmp_path):
    scenario = write_scenario(tmp_path / "in", SPEC)
    out = tmp_path / "plan"
    out.mkdir()
    (out / "plan.json").write_text("{}")
    assert main(["solve", str(scenario), "--out", str(out)]) == 3
    assert (out / "plan.json").read_text() == "{}"


def test_out_at_a_symlink_is_refused(tmp_path):
    scenario = write_scenario(tmp_path / "in", SPEC)
    real = tmp_path / "real"
    assert main(["solve", str(scenario), "--out", str(real)]) == 0
    link = tmp_path / "link"
    link.symlink_to(real)
    assert main(["solve", str(scenario), "--out", str(link)]) == 3
    assert link.is_symlink() and (real / PLAN_MARKER).exists()


def test_an_empty_folder_and_a_plan_folder_are_replaced(tmp_path):
    scenario = write_scenario(tmp_path / "in", SPEC)
    out = tmp_path / "plan"
    out.mkdir()
    assert main(["solve", str(scenario), "--out", str(out)]) == 0
    assert (out / PLAN_MARKER).exists() and (out / "plan.json").exists()
    assert main(["solve", str(scenario), "--out", str(out)]) == 0
    assert _strays(tmp_path) == []


def test_a_file_the_user_added_to_a_plan_folder_is_never_deleted(tmp_path, capsys):
    scenario = write_scenario(tmp_path / "in", SPEC)
    out = tmp_path / "plan"
    assert main(["solve", str(scenario), "--out", str(out)]) == 0
    (out / "my_analysis.md").write_text("mine")
    (out / "charts").mkdir()
    before = _tree(out)
    assert main(["solve", str(scenario), "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "my_analysis.md" in err and "charts" in err and "did not write" in err and "--out" in err
    assert _tree(out) == before and (out / "charts").is_dir()
    assert _strays(tmp_path) == []
    (out / "my_analysis.md").unlink()
    (out / "charts").rmdir()
    assert main(["solve", str(scenario), "--out", str(out)]) == 0   # what it wrote itself, it replaces


def test_plan_folder_follows_the_umask(tmp_path):
    scenario = write_scenario(tmp_path / "in", SPEC)
    out = tmp_path / "plan"
    previous = os.umask(0o022)
    try:
        assert main(["solve", str(scenario), "--out", str(out)]) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "plan.json").stat().st_mode) == 0o644


def test_failed_write_leaves_no_stray_and_the_old_plan(tmp_path, monkeypatch):
    scenario = write_scenario(tmp_path / "in", SPEC)
    out = tmp_path / "plan"
    assert main(["solve", str(scenario), "--out", str(out)]) == 0
    before = _tree(out)
    import placement.files as files_module

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files_module.os, "rename", broken)
    assert main(["solve", str(scenario), "--out", str(out)]) == 3
    monkeypatch.undo()
    assert _tree(out) == before
    assert _strays(tmp_path) == []


@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_unwritable_out_is_bad_input_naming_the_path(tmp_path, capsys, where):
    scenario = write_scenario(tmp_path / "in", SPEC)
    if where == "under-a-file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "plan"
    else:
        out = Path("/proc/placement-cannot-write-here/plan")
    assert main(["solve", str(scenario), "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert str(out) in err and "internal error" not in err


def test_profile_out_never_replaces_a_folder_or_a_foreign_file(tmp_path, capsys):
    scenario = write_scenario(tmp_path / "in", SPEC)
    folder = tmp_path / "folder"
    folder.mkdir()
    assert main(["profile", str(scenario), "--out", str(folder)]) == 3
    assert folder.is_dir()
    foreign = tmp_path / "notes.csv"
    foreign.write_text("a,b\n1,2\n")
    assert main(["profile", str(scenario), "--out", str(foreign)]) == 3
    assert foreign.read_text() == "a,b\n1,2\n"
    # the scenario's own measured table is never overwritten, even though it looks like a profile table
    table = tmp_path / "in" / "profiles.csv"
    text = table.read_text()
    assert main(["profile", str(scenario), "--out", str(table)]) == 3
    assert table.read_text() == text
    # a table the tool wrote is replaced, and the write leaves no stray
    ours = tmp_path / "out" / "profile.csv"
    assert main(["profile", str(scenario), "--out", str(ours)]) == 0
    assert main(["profile", str(scenario), "--out", str(ours)]) == 0
    assert ours.read_text().startswith("model,accelerator,")
    assert _strays(tmp_path / "out") == []
    capsys.readouterr()


# --------------------------------------------------------------------------------------------------
# tables: inside the scenario's folder, regular, bounded; content of a non-table never echoed


@pytest.mark.parametrize("reference,fragment", [
    ("/etc/passwd", "absolute"),
    ("../../../../../../etc/passwd", "outside"),
    ("../outside.csv", "outside"),
])
def test_table_paths_must_stay_inside_the_scenario_folder(tmp_path, reference, fragment):
    scenario = write_scenario(tmp_path / "sc", SPEC)
    (tmp_path / "outside.csv").write_text("model,accelerator\nsecret-model,secret-chip\n")
    scenario.write_text(scenario.read_text().replace("profiles: profiles.csv", f"profiles: {reference}"))
    message = _problems(scenario)
    assert fragment in message and "profiles" in message
    assert "root:" not in message and "secret" not in message


def test_symlink_out_of_the_folder_is_refused(tmp_path):
    scenario = write_scenario(tmp_path / "sc", SPEC)
    (tmp_path / "secret.csv").write_text("model,accelerator\nsecret-model,secret-chip\n")
    (tmp_path / "sc" / "link.csv").symlink_to(tmp_path / "secret.csv")
    scenario.write_text(scenario.read_text().replace("profiles: profiles.csv", "profiles: link.csv"))
    message = _problems(scenario)
    assert "outside" in message and "secret" not in message


def test_symlink_inside_the_folder_is_fine(tmp_path):
    scenario = write_scenario(tmp_path / "sc", SPEC)
    (tmp_path / "sc" / "link.csv").symlink_to(tmp_path / "sc" / "profiles.csv")
    scenario.write_text(scenario.read_text().replace("profiles: profiles.csv", "profiles: link.csv"))
    assert len(load_scenario(scenario).profiles) == 1


def test_devices_fifos_and_folders_are_refused_without_hanging(tmp_path):
    scenario = write_scenario(tmp_path / "sc", SPEC)
    os.mkfifo(tmp_path / "sc" / "fifo.csv")
    (tmp_path / "sc" / "zero.csv").symlink_to("/dev/zero")
    (tmp_path / "sc" / "dir.csv").mkdir()
    text = scenario.read_text()
    for name, fragment in (("fifo.csv", "not a regular file"), ("zero.csv", "outside"), ("dir.csv", "not a regular file")):
        scenario.write_text(text.replace("profiles: profiles.csv", f"profiles: {name}"))
        message = _problems(scenario)
        assert name in message and fragment in message, message


def test_dev_zero_does_not_hang_validate(tmp_path):
    scenario = write_scenario(tmp_path / "sc", SPEC)
    scenario.write_text(scenario.read_text().replace("profiles: profiles.csv", "profiles: /dev/zero"))
    done = subprocess.run([sys.executable, "-m", "placement", "validate", str(scenario)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 3 and "/dev/zero" in done.stderr


def test_oversize_table_is_refused_before_it_is_read(tmp_path):
    scenario = write_scenario(tmp_path / "sc", SPEC)
    table = tmp_path / "sc" / "profiles.csv"
    with table.open("r+b") as handle:
        handle.truncate(MAX_TABLE_BYTES + 1)  # sparse: costs no disk
    message = _problems(scenario)
    assert "larger than" in message and "MiB" in message


def test_a_file_that_is_not_a_table_is_not_echoed(tmp_path):
    scenario = write_scenario(tmp_path / "sc", SPEC)
    (tmp_path / "sc" / "profiles.csv").write_text(
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    message = _problems(scenario)
    assert "profiles.csv" in message and "root:x" not in message and "daemon" not in message
    text = scenario.read_text().replace("profiles: profiles.csv\n", "")
    scenario.write_text(text.replace("pools:\n", "pools: profiles.csv\nold_pools:\n"))
    message = _problems(scenario)
    assert "root:x" not in message and "daemon" not in message and "/bin/bash" not in message


def test_scenario_file_itself_fifo_and_oversize(tmp_path):
    fifo = tmp_path / "scenario.yaml"
    os.mkfifo(fifo)
    assert "not a regular file" in _problems(fifo)
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(MAX_DOCUMENT_BYTES + 1)
    assert "larger than" in _problems(big)


# --------------------------------------------------------------------------------------------------
# duplicate keys


def test_duplicate_top_level_key_in_yaml_names_both_lines(tmp_path):
    scenario = write_scenario(tmp_path, SPEC)
    lines = scenario.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("pools:")) + 1
    lines += ["pools:", "- {id: q, accelerator: a, kind: on_demand, max_chips: 1, price_per_chip_hour: 1}"]
    scenario.write_text("\n".join(lines) + "\n")
    message = _problems(scenario)
    assert "duplicate key 'pools'" in message
    assert f"line {len(lines) - 1}" in message and f"first at line {first}" in message


def test_duplicate_key_inside_a_workload_in_yaml(tmp_path):
    scenario = write_scenario(tmp_path, SPEC)
    text = scenario.read_text().replace("  requests_per_s: 4\n", "  requests_per_s: 4\n  requests_per_s: 8\n")
    scenario.write_text(text)
    message = _problems(scenario)
    line = text.splitlines().index("  requests_per_s: 8") + 1
    assert "duplicate key 'requests_per_s'" in message and f"line {line}" in message
    assert f"first at line {line - 1}" in message


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    scenario = write_scenario(tmp_path, SPEC)
    text = scenario.read_text().replace("pools:\n- ", "pools:\n- &base\n  ", 1)
    scenario.write_text(text)
    assert load_scenario(scenario).scenario.pools[0].id == "p"


def test_duplicate_keys_in_json_name_both_lines(tmp_path):
    scenario = write_scenario(tmp_path, SPEC, name="scenario.json")
    doc = json.loads(scenario.read_text())
    text = json.dumps(doc, indent=1)
    text = text.replace('"requests_per_s": 4,', '"requests_per_s": 4,\n   "requests_per_s": 8,', 1)
    text = text[:-2] + ',\n "pools": []\n}'
    scenario.write_text(text)
    message = _problems(scenario)
    lines = text.splitlines()
    second = next(i for i, line in enumerate(lines) if '"requests_per_s": 8' in line) + 1
    assert f"duplicate key 'requests_per_s'" in message and f"line {second}" in message
    assert f"first at line {second - 1}" in message
    pools = [i + 1 for i, line in enumerate(lines) if line.strip().startswith('"pools"')]
    assert f"duplicate key 'pools'" in message and f"line {pools[1]}" in message
    assert f"first at line {pools[0]}" in message


def test_same_key_in_different_json_objects_is_fine(tmp_path):
    scenario = write_scenario(tmp_path, {**SPEC, "models": [{"id": "m", "quality": {"q": 70}}, {"id": "n"}]},
                              name="scenario.json")
    assert len(load_scenario(scenario).scenario.models) == 2


# --------------------------------------------------------------------------------------------------
# limits and exit codes


@pytest.mark.parametrize("argv", [
    ["solve", "x.yaml", "--time-limit", "abc"],
    ["solve"],
    ["solve", "x.yaml", "--frobnicate"],
    ["nosuchcommand"],
    [],
])
def test_usage_errors_exit_3(argv, capsys):
    assert main(argv) == 3
    assert "usage" in capsys.readouterr().err


def test_usage_error_from_the_shell_exits_3(tmp_path):
    done = subprocess.run([sys.executable, "-m", "placement", "solve", "x.yaml", "--time-limit", "abc"],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 3 and "--time-limit" in done.stderr


def test_version(capsys):
    import placement

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"placement {placement.__version__}"


@pytest.mark.parametrize("flag", [["--time-limit", "inf"], ["--time-limit", "nan"], ["--gap", "nan"]])
def test_non_finite_flags_are_bad_input(tmp_path, flag):
    scenario = write_scenario(tmp_path, SPEC)
    assert main(["solve", str(scenario), "--out", str(tmp_path / "plan"), *flag]) == 3


@pytest.mark.parametrize("old,new,field", [
    ("requests_per_s: 4", "requests_per_s: 1.0e+300", "workloads[0].requests_per_s"),
    ("price_per_chip_hour: 2.0", "price_per_chip_hour: 1.0e+300", "pools[0].price_per_chip_hour"),
    ("max_chips: 10", "max_chips: 100000000000000", "pools[0].max_chips"),
    ("input_tokens: 2000", "input_tokens: 10000000000000", "workloads[0].buckets[0].input_tokens"),
    ("hours: 100", "hours: 1.0e+300", "hours"),
])
def test_absurd_magnitudes_are_refused_with_the_field(tmp_path, old, new, field):
    scenario = write_scenario(tmp_path, SPEC)
    text = scenario.read_text()
    assert old in text
    scenario.write_text(text.replace(old, new, 1))
    message = _problems(scenario)
    assert field in message and "less than or equal" in message, message


def test_absurd_magnitudes_in_a_profile_table(tmp_path):
    scenario = write_scenario(tmp_path, SPEC)
    table = tmp_path / "profiles.csv"
    table.write_text(table.read_text().replace("m,a,1,2000,100,2", "m,a,1,2000,100,1e300"))
    message = _problems(scenario)
    assert "requests_per_s" in message and "<=" in message, message


@pytest.mark.parametrize("suffix,text", [
    (".yaml", "name: " + "[" * 5000 + "]" * 5000 + "\n"),
    (".json", '{"name": ' + "[" * 100000 + "]" * 100000 + "}"),
    (".yaml", "name: x\nx: " + "[" * 200 + "]" * 200 + "\n"),
    (".yaml", "a: &a [*a]\n"),
], ids=["yaml-5000-deep", "json-100000-deep", "yaml-200-deep", "yaml-holds-itself"])
def test_deeply_nested_documents_are_bad_input(tmp_path, capsys, suffix, text):
    path = tmp_path / f"deep{suffix}"
    path.write_text(text)
    assert main(["validate", str(path)]) == 3
    assert "nested" in capsys.readouterr().err


def test_billion_laughs_is_refused_quickly(tmp_path, capsys):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert main(["validate", str(path)]) == 3
    assert "too large" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [[], ["--backend", "pulp", "--engine", "highs"], ["--engine", "scip"]])
def test_no_solver_chatter_on_stderr(tmp_path, flags):
    """HiGHS through PuLP printed its banner; only placement's own lines may reach stderr."""
    out = tmp_path / "plan"
    done = subprocess.run([sys.executable, "-m", "placement", "solve", str(REPO / "inputs/fleet-sizing/scenario.yaml"),
                           "--out", str(out), "--no-baselines", *flags], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert [line for line in done.stderr.splitlines() if not line.startswith("placement: ")] == [], done.stderr


# --------------------------------------------------------------------------------------------------
# --json for validate and profile


def test_validate_json(tmp_path, capsys):
    scenario = write_scenario(tmp_path, SPEC)
    assert main(["validate", str(scenario), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "ok" and report["problems"] == []
    assert report["counts"] == {"workloads": 1, "buckets": 1, "models": 1, "accelerators": 1, "pools": 1,
                                "profile_rows": report["counts"]["profile_rows"], "measured_rows": 1,
                                "candidates": report["counts"]["candidates"]}
    assert report["counts"]["profile_rows"] >= 1 and isinstance(report["notes"], list)


def test_validate_json_on_bad_input_prints_problems_and_exits_3(tmp_path, capsys):
    scenario = write_scenario(tmp_path, SPEC)
    scenario.write_text(scenario.read_text().replace("requests_per_s: 4", "requests_per_s: -4"))
    assert main(["validate", str(scenario), "--json"]) == 3
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "bad_input"
    assert {"file": str(scenario), "field": "workloads[0].requests_per_s"}.items() <= report["problems"][0].items()
    assert "-4" in report["problems"][0]["message"]


def test_profile_json(tmp_path, capsys):
    scenario = write_scenario(tmp_path, SPEC)
    assert main(["profile", str(scenario), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    measured = [r for r in rows if r["source"] == "measured"]
    assert measured == [{**measured[0], "model": "m", "accelerator": "a", "chips_per_replica": 1,
                         "input_tokens": 2000, "output_tokens": 100, "requests_per_s": 2.0}]
    assert main(["profile", str(scenario), "--json", "--per-bucket"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["workload"] == "w" and rows[0]["requests_per_s"] == 2.0
    scenario.write_text(scenario.read_text().replace("max_chips: 10", "max_chips: -1"))
    assert main(["profile", str(scenario), "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["problems"][0]["field"] == "pools[0].max_chips"


def test_check_refuses_a_fifo_plan_without_hanging(tmp_path, capsys):
    scenario = write_scenario(tmp_path / "in", SPEC)
    fifo = tmp_path / "plan.json"
    os.mkfifo(fifo)
    assert main(["check", str(scenario), str(fifo)]) == 3
    assert "not a regular file" in capsys.readouterr().err

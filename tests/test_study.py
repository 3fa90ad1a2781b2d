"""Studies end to end: the table, resume after interruption, failed cases, worker processes, Ray."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml

from placement.profiles import TABLE_CACHE_STATS
from placement.study import load_study, run_study
from tests.helpers import write_scenario

# 30 req/s of one 2-chip deployment (10 req/s per replica): 3 replicas. A reserved block of 2 chips
# at 1.0 holds one; the rest go on demand at 3.0 (two replicas: 12.0). Base cost 14.0.
SPEC = {"accelerators": ["a"], "models": [{"id": "m"}],
        "workloads": [{"id": "w", "requests_per_s": 30, "buckets": [(1000, 100, 1.0)]}],
        "pools": [{"id": "res", "accelerator": "a", "kind": "reserved", "block_chips": 2, "max_chips": 2,
                   "price_per_chip_hour": 1.0},
                  {"id": "od", "accelerator": "a", "kind": "on_demand", "max_chips": 100, "price_per_chip_hour": 3.0}],
        "profiles": [("m", "a", 2, 1000, 100, 10)]}


def _study_file(tmp_path, vary, **extra):
    write_scenario(tmp_path / "scenario", SPEC)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"scenario": "scenario/scenario.yaml", "vary": vary, **extra}))
    return path


PRICE_AND_DEMAND = [{"path": "pools[od].price_per_chip_hour", "values": [0.5, 3.0]},
                    {"path": "workloads[w].requests_per_s", "scale": [1.0, 2.0]}]


def test_table_plans_and_report(tmp_path):
    result = run_study(_study_file(tmp_path, PRICE_AND_DEMAND), tmp_path / "out", jobs=1, log=lambda _: None)
    table = result.table
    assert list(table["case"]) == ["case-001", "case-002", "case-003", "case-004"]
    assert list(table.columns[:7]) == ["case", "pools[od].price_per_chip_hour", "workloads[w].requests_per_s",
                                       "status", "exit_code", "objective_per_hour", "gap"]
    # od at 0.5: everything on demand (3 x 2 chips x 0.5 = 3; 6 replicas: 6); at 3.0: 14 and 2 + 5 x 6 = 32
    assert list(table["objective_per_hour"]) == pytest.approx([3.0, 6.0, 14.0, 32.0])
    assert list(table["workloads[w].requests_per_s"]) == [30.0, 60.0, 30.0, 60.0]  # the value used
    assert list(table["chips_used[res]"]) == [0, 0, 2, 2]
    assert list(table["exit_code"]) == [0, 0, 0, 0]
    out = result.out_dir
    parquet = pd.read_parquet(out / "cases.parquet")
    assert list(parquet.columns) == list(pd.read_csv(out / "cases.csv").columns) == list(table.columns)
    for case in table["case"]:
        assert json.loads((out / "cases" / case / "plan.json").read_text())["status"] == "optimal"
        assert (out / "cases" / case / "case.json").exists()
    charts = sorted((out / "charts").glob("*.png"))
    assert len(charts) == 2 and all(c.read_bytes()[:4] == b"\x89PNG" for c in charts)
    text = (out / "study.md").read_text()
    assert "What moved the answer" in text and "res: in the plan when pools[od].price_per_chip_hour is 3" in text
    assert "data:image/png;base64," in (out / "report.html").read_text()


def test_resume_reruns_only_missing_cases(tmp_path):
    path = _study_file(tmp_path, PRICE_AND_DEMAND)
    first = run_study(path, tmp_path / "out", jobs=1, log=lambda _: None)
    assert first.ran == ["case-001", "case-002", "case-003", "case-004"]
    shutil.rmtree(tmp_path / "out" / "cases" / "case-002")
    (tmp_path / "out" / "cases" / "case-004" / "case.json").unlink()  # interrupted before its record
    second = run_study(path, tmp_path / "out", jobs=1, log=lambda _: None)
    assert second.ran == ["case-002", "case-004"]
    pd.testing.assert_frame_equal(first.table.drop(columns=["seconds", "cpu_seconds"]),
                                  second.table.drop(columns=["seconds", "cpu_seconds"]))
    # a changed study (other values) reruns the cases whose edits changed
    path.write_text(path.read_text().replace("0.5", "0.25"))
    third = run_study(path, tmp_path / "out", jobs=1, log=lambda _: None)
    assert third.ran == ["case-001", "case-002"]


def test_a_smaller_study_forgets_its_old_cases_but_not_a_users_note(tmp_path):
    path = _study_file(tmp_path, PRICE_AND_DEMAND)
    run_study(path, tmp_path / "out", jobs=1, log=lambda _: None)
    cases = tmp_path / "out" / "cases"
    (cases / "case-004" / "notes.md").write_text("mine")
    path.write_text(path.read_text().replace("- 2.0\n", ""))   # one demand scale: cases 001-002
    said = []
    run_study(path, tmp_path / "out", jobs=1, log=said.append)
    assert sorted(p.name for p in cases.iterdir()) == ["case-001", "case-002", "case-004"]
    assert (cases / "case-004" / "notes.md").read_text() == "mine"
    assert any("kept" in line and "case-004" in line and "notes.md" in line for line in said)


def test_a_failed_case_is_recorded_and_the_study_goes_on(tmp_path):
    vary = [{"path": "pools[od].price_per_chip_hour", "values": [-1.0, 3.0]}]
    result = run_study(_study_file(tmp_path, vary), tmp_path / "out", jobs=1, log=lambda _: None)
    table = result.table
    assert list(table["status"]) == ["bad_input", "optimal"]
    assert list(table["exit_code"]) == [3, 0]
    assert "greater than or equal to 0" in table["reason"][0]
    assert int(result.exit_code) == 0
    assert "Cases without a plan" in (tmp_path / "out" / "study.md").read_text()


def test_infeasible_cases_keep_their_diagnosis(tmp_path):
    vary = [{"path": "pools[od].max_chips", "values": [0, 100]}]  # 2 chips cannot serve 30 req/s
    table = run_study(_study_file(tmp_path, vary), tmp_path / "out", jobs=1, log=lambda _: None).table
    assert list(table["status"]) == ["infeasible", "optimal"] and list(table["exit_code"]) == [2, 0]
    assert json.loads((tmp_path / "out" / "cases" / "case-001" / "plan.json").read_text())["diagnosis"]


def test_profile_table_is_built_once_for_cases_that_do_not_change_it(tmp_path):
    vary = [{"path": "pools[od].price_per_chip_hour", "range": {"from": 1.0, "to": 4.0, "steps": 4}}]
    study = load_study(_study_file(tmp_path, vary))
    before = dict(TABLE_CACHE_STATS)
    run_study(study, tmp_path / "out", jobs=1, log=lambda _: None)
    for kind in ("", "lookup_"):
        assert TABLE_CACHE_STATS[f"{kind}misses"] - before[f"{kind}misses"] <= 1
        assert TABLE_CACHE_STATS[f"{kind}hits"] - before[f"{kind}hits"] >= 3


def test_the_caches_see_every_input_they_depend_on():
    from pathlib import Path

    from placement.profiles import demand_cells, lookup, profile_table
    from placement.scenario import load_scenario
    from placement.whatif import edit, scale

    base = load_scenario(Path(__file__).resolve().parent.parent / "inputs" / "speed-lanes" / "scenario.yaml")
    table = profile_table(base)
    faster = profile_table(scale(base, {"accelerators[h200].memory_bandwidth_tbps": 2.0}))
    def h200_rate(frame):
        return frame.loc[frame["accelerator"] == "h200", "requests_per_s"].sum()

    assert h200_rate(faster) > h200_rate(table) > 0
    arcs = lookup(demand_cells(base.scenario), table)
    strict = edit(base, {"workloads[agent-long-context].slo.min_output_tokens_per_s": 500})
    assert len(lookup(demand_cells(strict.scenario), table)) < len(arcs)
    assert len(lookup(demand_cells(base.scenario), table)) == len(arcs)


def test_refuses_to_write_into_a_folder_it_did_not_make(tmp_path):
    from placement.errors import InputError

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a study folder"):
        run_study(_study_file(tmp_path, PRICE_AND_DEMAND), tmp_path / "mine", jobs=1, log=lambda _: None)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_worker_processes_give_the_same_table(tmp_path):
    path = _study_file(tmp_path, PRICE_AND_DEMAND)
    serial = run_study(path, tmp_path / "serial", jobs=1, log=lambda _: None).table
    parallel = run_study(path, tmp_path / "parallel", jobs=2, log=lambda _: None).table
    pd.testing.assert_frame_equal(serial.drop(columns=["seconds", "cpu_seconds"]),
                                  parallel.drop(columns=["seconds", "cpu_seconds"]))


def test_cli_study_progress_on_stderr(tmp_path, capsys):
    from placement.cli import main

    path = _study_file(tmp_path, PRICE_AND_DEMAND[:1])
    assert main(["study", str(path), "--out", str(tmp_path / "out"), "--jobs", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "[2/2] case-002: optimal" in captured.err


def test_ray_on_a_local_cluster(tmp_path):
    ray = pytest.importorskip("ray")
    path = _study_file(tmp_path, PRICE_AND_DEMAND)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = run_study(path, tmp_path / "ray", ray=True, log=lambda _: None)
        from placement.cli import main

        assert main(["study", str(path), "--out", str(tmp_path / "cli"), "--ray"]) == 0  # the connected cluster
    finally:
        ray.shutdown()
    assert pd.read_csv(tmp_path / "cli" / "cases.csv")["status"].tolist() == ["optimal"] * 4
    assert list(result.table["status"]) == ["optimal"] * 4
    assert list(result.table["objective_per_hour"]) == pytest.approx([3.0, 6.0, 14.0, 32.0])
    assert (tmp_path / "ray" / "cases" / "case-004" / "plan.json").exists()


def test_interrupted_study_resumes(tmp_path):
    """A real Ctrl-C in the middle of `placement study`, then the same command again."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    vary = [{"path": "pools[od].price_per_chip_hour", "range": {"from": 1.0, "to": 4.0, "steps": 12}}]
    path = _study_file(tmp_path, vary)
    out = tmp_path / "out"
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "placement", "study", str(path), "--out", str(out), "--jobs", "1"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "cases" / "case-002" / "case.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 4, err[-2000:]
    assert "run the same command again to resume" in err
    done = sorted(p.parent.name for p in (out / "cases").glob("*/case.json"))
    assert 2 <= len(done) < 12
    # the case the interrupt hit leaves no record (pandas turns a KeyboardInterrupt inside to_json into a
    # ValueError, which used to be recorded as that case's bad input, and the rerun skipped it)
    import json
    assert {json.loads((out / "cases" / name / "case.json").read_text())["status"] for name in done} == {"optimal"}
    resumed = run_study(path, out, jobs=1, log=lambda _: None)
    assert sorted(resumed.ran) == sorted(c.name for c in load_study(path).cases if c.name not in done)
    assert len(resumed.table) == 12 and (resumed.table["status"] == "optimal").all()


def test_text_values_are_charted_and_summarized(tmp_path):
    vary = [{"path": "options.solver.engine", "values": ["highs", "scip"]}]
    result = run_study(_study_file(tmp_path, vary), tmp_path / "out", jobs=1, log=lambda _: None)
    assert list(result.table["objective_per_hour"]) == pytest.approx([14.0, 14.0])
    assert "14.00 at highs" in (tmp_path / "out" / "study.md").read_text()
    assert len(list((tmp_path / "out" / "charts").glob("*.png"))) == 1

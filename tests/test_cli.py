"""The command line contract: commands, exit codes, the plan folder, --json, atomic writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from placement.cli import main
from tests.helpers import write_scenario

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "inputs" / "speed-lanes" / "scenario.yaml"

SMALL = {
    "accelerators": ["a", "b"], "models": [{"id": "m", "quality": {"q": 70}}],
    "workloads": [{"id": "w", "requests_per_s": 10, "buckets": [(1000, 100, 0.5), (100000, 100, 0.5)]}],
    "pools": [{"id": "a-od", "accelerator": "a", "kind": "on_demand", "max_chips": 100, "price_per_chip_hour": 2.0},
              {"id": "b-od", "accelerator": "b", "kind": "on_demand", "max_chips": 100, "price_per_chip_hour": 3.0}],
    "profiles": [("m", "a", 1, 1000, 100, 5), ("m", "a", 1, 100000, 100, 1),
                 ("m", "b", 1, 1000, 100, 2.5), ("m", "b", 1, 100000, 100, 5)],
    "baselines": True,
}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "placement", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def test_solve_writes_plan_folder_and_json_matches(tmp_path):
    scenario = write_scenario(tmp_path / "in", SMALL)
    out = tmp_path / "plan"
    done = run("solve", str(scenario), "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    written = json.loads((out / "plan.json").read_text())
    assert json.loads(done.stdout) == written
    assert done.stdout == (out / "plan.json").read_text()
    assert written["status"] == "optimal"
    assert written["objective"]["value"] == pytest.approx(5.0)
    for name in ("replicas.csv", "routing.csv", "pools.csv", "summary.md"):
        assert (out / name).stat().st_size > 0
    for key in ("status", "scenario", "objective", "cost", "replicas", "routing", "unserved", "pools", "baselines",
                "solver", "diagnosis"):
        assert key in written
    assert set(written["routing"][0]) >= {"workload", "bucket", "input_tokens", "output_tokens", "model",
                                          "accelerator", "chips_per_replica", "share", "requests_per_s",
                                          "replica_requests_per_s"}
    assert set(written["solver"]) >= {"backend", "engine", "version", "build_s", "solve_s"}
    # every bucket's routing shares plus its unserved share sum to 1
    for u in written["unserved"]:
        served = sum(r["share"] for r in written["routing"] if (r["workload"], r["bucket"]) == (u["workload"], u["bucket"]))
        assert served + u["share"] == pytest.approx(1.0)
    assert len(written["unserved"]) == 2


def test_default_out_dir_is_outputs_scenario_name(tmp_path):
    scenario = write_scenario(tmp_path / "in", {**SMALL, "name": "my scenario/q3"})
    done = run("solve", str(scenario), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "outputs" / "my-scenario-q3" / "plan.json").exists()


def test_infeasible_exit_2_with_diagnosis(tmp_path):
    # a alone would need 1 + 5 replicas but has 3 chips; b has none. The least relaxation is one b chip.
    spec = {**SMALL, "pools": [dict(SMALL["pools"][0], max_chips=3), dict(SMALL["pools"][1], max_chips=0)]}
    out = tmp_path / "plan"
    done = run("solve", str(write_scenario(tmp_path / "in", spec)), "--out", str(out))
    assert done.returncode == 2, done.stderr
    plan = json.loads((out / "plan.json").read_text())
    assert plan["status"] == "infeasible"
    supply = [d for d in plan["diagnosis"] if d["kind"] == "supply"]
    assert [(d["pool"], d["chips_needed"], d["chips_available"], d["relax_by_chips"]) for d in supply] == [
        ("b-od", 1, 0, 1)]
    assert "diagnosis:" in done.stderr and "b-od" in done.stderr
    relaxed = {**SMALL, "pools": [dict(SMALL["pools"][0], max_chips=3), dict(SMALL["pools"][1], max_chips=1)]}
    assert run("solve", str(write_scenario(tmp_path / "fixed", relaxed)), "--out", str(out)).returncode == 0


def test_bad_input_exit_3_writes_nothing(tmp_path):
    scenario = write_scenario(tmp_path / "in", SMALL)
    text = scenario.read_text().replace("requests_per_s: 10", "requests_per_sec: 10")
    scenario.write_text(text)
    out = tmp_path / "plan"
    done = run("solve", str(scenario), "--out", str(out))
    assert done.returncode == 3
    assert "requests_per_sec" in done.stderr and "unknown field" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()
    assert done.stdout == ""


def test_second_run_replaces_the_first_whole(tmp_path):
    scenario = write_scenario(tmp_path / "in", SMALL)
    out = tmp_path / "plan"
    assert main(["solve", str(scenario), "--out", str(out)]) == 0
    first = (out / "plan.json").read_text()
    # a file an earlier solve wrote (so its marker lists it) that this one does not write: it goes. A file
    # someone else put there stops the solve instead (test_io_safety)
    (out / "stale.txt").write_text("left over")
    marker = out / ".placement-plan"
    marker.write_text(marker.read_text() + "stale.txt\n")
    assert main(["solve", str(scenario), "--out", str(out)]) == 0
    assert not (out / "stale.txt").exists()
    second = json.loads((out / "plan.json").read_text())
    assert second["objective"] == json.loads(first)["objective"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".plan")] == []


def test_failed_run_leaves_previous_plan_intact(tmp_path):
    scenario = write_scenario(tmp_path / "in", SMALL)
    out = tmp_path / "plan"
    assert main(["solve", str(scenario), "--out", str(out)]) == 0
    before = (out / "plan.json").read_text()
    scenario.write_text(scenario.read_text().replace("max_chips: 100", "max_chips: -1", 1))
    assert main(["solve", str(scenario), "--out", str(out)]) == 3
    assert (out / "plan.json").read_text() == before


def test_validate_profile_schema_check(tmp_path, capsys):
    scenario = write_scenario(tmp_path / "in", SMALL)
    assert main(["validate", str(scenario)]) == 0
    assert "ok:" in capsys.readouterr().out
    assert main(["profile", str(scenario)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].startswith("model,accelerator,chips_per_replica,input_tokens,output_tokens")
    assert "measured" in table
    assert main(["profile", str(scenario), "--per-bucket"]) == 0
    per_bucket = capsys.readouterr().out.splitlines()
    assert per_bucket[0].startswith("workload,bucket,model,accelerator,chips_per_replica")
    assert len(per_bucket) == 1 + 4  # both buckets on both accelerators
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "workloads" in schema["properties"]
    out = tmp_path / "plan"
    assert main(["solve", str(scenario), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["check", str(scenario), str(out)]) == 0
    assert "ok:" in capsys.readouterr().out


def test_check_catches_a_tampered_plan(tmp_path, capsys):
    scenario = write_scenario(tmp_path / "in", SMALL)
    out = tmp_path / "plan"
    assert main(["solve", str(scenario), "--out", str(out)]) == 0
    plan = json.loads((out / "plan.json").read_text())
    plan["replicas"][0]["replicas"] -= 1
    plan["replicas"][0]["chips"] -= plan["replicas"][0]["chips_per_replica"]
    (out / "plan.json").write_text(json.dumps(plan))
    capsys.readouterr()
    assert main(["check", str(scenario), str(out)]) == 2
    assert "exceeds" in capsys.readouterr().out


def test_time_limit_and_engine_flags(tmp_path):
    scenario = write_scenario(tmp_path / "in", SMALL)
    for flags in (["--engine", "scip"], ["--engine", "cbc"], ["--backend", "pulp"], ["--time-limit", "5", "--gap", "0"],
                  ["--threads", "2"]):
        out = tmp_path / ("plan" + "".join(flags))
        assert main(["solve", str(scenario), "--out", str(out), *flags]) == 0
        plan = json.loads((out / "plan.json").read_text())
        assert plan["objective"]["value"] == pytest.approx(5.0)
    assert main(["solve", str(scenario), "--backend", "pulp", "--engine", "scip"]) == 3
    assert main(["solve", str(scenario), "--time-limit", "0"]) == 3
    assert main(["solve", str(scenario), "--threads", "0"]) == 3
    assert main(["solve", str(scenario), "--threads", "two"]) == 3


def test_threads_default_to_the_cpus_available_at_most_four(tmp_path, monkeypatch):
    """`threads: auto`, the default, resolves to the CPUs this process may use, capped, and the plan says how
    many it used; a number, from the scenario or --threads, stands as given."""
    import solvers.base
    scenario = write_scenario(tmp_path / "in", SMALL)
    for cpus, expected in ((1, 1), (2, 2), (64, 4)):
        monkeypatch.setattr(solvers.base, "available_cpus", lambda cpus=cpus: cpus)
        out = tmp_path / f"plan{cpus}"
        assert main(["solve", str(scenario), "--out", str(out)]) == 0
        assert json.loads((out / "plan.json").read_text())["solver"]["threads"] == expected
        assert main(["solve", str(scenario), "--out", str(out), "--threads", "3"]) == 0
        assert json.loads((out / "plan.json").read_text())["solver"]["threads"] == 3
        assert main(["solve", str(scenario), "--out", str(out), "--threads", "auto"]) == 0
        assert json.loads((out / "plan.json").read_text())["solver"]["threads"] == expected


def test_available_cpus_reads_a_containers_quota(tmp_path):
    """A cgroup v2 quota of 1.5 CPUs (150000 per 100000) leaves one; 'max' or no file leaves the mask."""
    from solvers.base import available_cpus
    mask = len(os.sched_getaffinity(0))
    quota = tmp_path / "cpu.max"
    quota.write_text("150000 100000\n")
    assert available_cpus(quota) == 1
    quota.write_text("800000 100000\n")
    assert available_cpus(quota) == min(mask, 8)
    quota.write_text("max 100000\n")
    assert available_cpus(quota) == mask
    assert available_cpus(tmp_path / "absent") == mask


@pytest.mark.parametrize("value", ["0", "many", "2.5", "true", "1025"])
def test_bad_threads_option_is_bad_input(tmp_path, capsys, value):
    import yaml
    scenario = write_scenario(tmp_path / "in", SMALL)
    doc = yaml.safe_load(scenario.read_text())
    doc.setdefault("options", {}).setdefault("solver", {})["threads"] = yaml.safe_load(value)
    scenario.write_text(yaml.safe_dump(doc, sort_keys=False))
    capsys.readouterr()
    assert main(["solve", str(scenario), "--out", str(tmp_path / "plan")]) == 3
    assert "options.solver.threads: must be 'auto' or a whole number from 1 to 1024" in capsys.readouterr().err
    assert not (tmp_path / "plan").exists()


def test_json_stdout_is_only_the_plan_when_the_lp_is_priced(tmp_path):
    """The first HiGHS a process makes prints a banner from native code before any option can stop it. On
    models of PRICING_MIN_COLUMNS or more that first HiGHS was the priced LP's, made outside the quiet
    redirection: `--json` then began with two lines of banner. Here the example is priced (the threshold
    set to 0) in a process of its own, so no earlier HiGHS has printed the banner already."""
    driver = ("import sys; import placement.solve, solvers.pricing as pricing\n"
              "placement.solve.PRICING_MIN_COLUMNS = 0\n"
              "priced = pricing.solve_lp_by_pricing\n"
              "def spy(*args, **kwargs):\n"
              "    sys.stderr.write('test: LP priced\\n')\n"
              "    return priced(*args, **kwargs)\n"
              "pricing.solve_lp_by_pricing = spy\n"
              "from placement.cli import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", driver, "solve", str(EXAMPLE), "--out", str(tmp_path / "plan"),
                           "--json", "--no-baselines", "--time-limit", "20"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert done.returncode in (0, 1), done.stderr
    assert "test: LP priced" in done.stderr, "the LP was not priced"
    plan = json.loads(done.stdout)
    assert plan == json.loads((tmp_path / "plan" / "plan.json").read_text())


def test_missing_scenario_file_is_bad_input(tmp_path, capsys):
    assert main(["solve", str(tmp_path / "nope.yaml")]) == 3
    assert "file not found" in capsys.readouterr().err


def test_example_solves_and_tells_the_speed_lane_story(tmp_path):
    out = tmp_path / "plan"
    done = run("solve", str(EXAMPLE), "--out", str(out))
    assert done.returncode == 0, done.stderr
    plan = json.loads((out / "plan.json").read_text())
    routing = plan["routing"]
    interactive = {r["accelerator"] for r in routing if r["workload"] == "coding-interactive"}
    assert interactive == {"cerebras-wse3"}
    beyond_128k = {r["accelerator"] for r in routing if r["input_tokens"] > 131072}
    assert beyond_128k and "cerebras-wse3" not in beyond_128k
    wafers = next(p for p in plan["pools"] if p["pool"] == "cerebras-prepaid")
    assert wafers["chips_used"] > 0
    summary = (out / "summary.md").read_text()
    assert "Why this split" in summary and "600" in summary


def test_a_fleet_sized_summary_aggregates_its_rows(tmp_path):
    """Beyond 200 routing rows summary.md sums them per model and accelerator (the CSVs keep every row)."""
    import json

    from placement.report import MAX_ROUTING_ROWS, summary_markdown

    out = tmp_path / "plan"
    assert run("solve", str(EXAMPLE), "--out", str(out), "--no-baselines").returncode == 0
    plan = json.loads((out / "plan.json").read_text())
    small = summary_markdown(plan)
    assert "## Routing\n" in small and "| coding-interactive | 0 | 24,000/1,500 |" in small
    plan["routing"] = plan["routing"] * (MAX_ROUTING_ROWS // len(plan["routing"]) + 1)
    plan["explanations"] = plan["explanations"] * (MAX_ROUTING_ROWS // len(plan["explanations"]) + 1)
    big = summary_markdown(plan)
    assert f"## Routing ({len(plan['routing']):,} rows in routing.csv; here per model and accelerator)" in big
    assert "| codex-spark | cerebras-wse3 | 3 |" in big      # three workloads reach spark on the wafers
    assert "| coding-interactive | 0 | 24,000/1,500 |" not in big
    assert "more buckets: plan.json `explanations`" in big

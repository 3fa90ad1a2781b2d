"""Studies: many solves of one scenario under edits, run in parallel, in one tidy table.

A study file names a base scenario and the paths to vary (placement.edits), each with values, scale
factors or a range, combined as a grid, zipped, or sampled at random with a seed:

    scenario: ../speed-lanes/scenario.yaml
    vary:
      - {path: "pools[h200-on-demand].price_per_chip_hour", scale: [0.6, 0.8, 1.0]}
      - {path: "options.headroom", range: {from: 0.0, to: 0.3, steps: 4}}
    combine: grid            # grid | zip | {random: {samples: 50, seed: 1}}

Every path and value is checked before anything runs (bad study: exit 3, every problem listed).
Cases run in local worker processes (`jobs`) or on a Ray cluster (`ray`); each writes its plan folder
and a result record `cases/<case>/case.json` (the record last, so a case with a record is done). A
rerun resumes: cases whose record matches are kept. A failed case is recorded with its reason and
never stops the study. At the end: cases.csv and cases.parquet, charts, study.md and report.html.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import yaml

from placement.edits import (Target, apply_edits, base_value, coerce, editable_document, resolve_path,
                             validate_document)
from placement.errors import ExitCode, InputError, Problem
from placement.scenario import LoadedScenario, ScenarioYamlLoader

STUDY_KEYS = {"name", "description", "scenario", "vary", "combine", "baselines", "explain", "time_limit_s"}
VARY_KINDS = ("values", "scale", "range")
RECORD = "case.json"
STUDY_MARKER = "study.json"


@dataclass
class Vary:
    path: str
    how: str                          # "set" or "scale"
    values: list[Any]
    span: tuple[float, float] | None  # a range's ends: random samples draw from it


@dataclass
class Case:
    name: str
    assignments: list[tuple[Target, str, Any]]
    columns: dict[str, Any]           # per varied path: the value used (scale edits on one place: the value)
    key: str = ""                     # hash of base + edits: a record with this key is this case, done


@dataclass
class Study:
    file: Path
    name: str
    scenario: Path
    varies: list[Vary]
    combine: str
    samples: int
    seed: int
    targets: list[Target]
    document: dict[str, Any]          # the base scenario, tables and catalog references resolved
    base: LoadedScenario
    baselines: bool = False
    explain: bool = False
    time_limit_s: float | None = None
    cases: list[Case] = field(default_factory=list)


@dataclass
class StudyResult:
    out_dir: Path
    table: pd.DataFrame
    exit_code: ExitCode
    ran: list[str]                    # cases solved in this run (the others were resumed)


# --------------------------------------------------------------------------------------------------
# Reading a study


def load_study(path: str | Path) -> Study:
    """Parse and check a study file; every problem (unknown keys, paths, ids, values) at once."""
    path = Path(path)
    label = str(path)
    try:  # the scenario's YAML reader: the same numbers, the same refusals
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=ScenarioYamlLoader)  # noqa: S506 - SafeLoader
    except FileNotFoundError:
        raise InputError.single(label, "", "study file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError.single(label, "", f"not a readable YAML study ({exc})") from None
    if not isinstance(raw, dict):
        raise InputError.single(label, "", "a study is a mapping with scenario:, vary: and combine:")
    problems = [Problem(label, key, f"unknown key; known: {sorted(STUDY_KEYS)}") for key in raw if key not in STUDY_KEYS]
    if not isinstance(raw.get("scenario"), str):
        problems.append(Problem(label, "scenario", "give the base scenario's file, relative to the study file"))
    vary = raw.get("vary")
    if not isinstance(vary, list) or not vary or not all(isinstance(v, dict) for v in vary):
        problems.append(Problem(label, "vary", "give a list of {path, values | scale | range}"))
        vary = []
    combine, samples, seed = _combine(raw.get("combine", "grid"), label, problems)
    for key in ("baselines", "explain"):
        if not isinstance(raw.get(key, False), bool):
            problems.append(Problem(label, key, "true or false"))
    limit = raw.get("time_limit_s")
    if limit is not None and not (isinstance(limit, (int, float)) and limit > 0):
        problems.append(Problem(label, "time_limit_s", f"seconds > 0, got {limit!r}"))
    if not isinstance(raw.get("scenario"), str):
        raise InputError(problems)
    scenario_path = Path(os.path.normpath(path.parent / raw["scenario"]))
    try:
        document, base = editable_document(scenario_path)
    except InputError as exc:  # the base scenario's own problems, with the study's
        raise InputError(problems + exc.problems) from None
    varies = [_vary(v, i, label, problems) for i, v in enumerate(vary)]
    targets = []
    for i, (entry, v) in enumerate(zip(vary, varies)):
        if not isinstance(entry.get("path"), str) or not entry["path"].strip():
            problems.append(Problem(label, f"vary[{i}].path", "give the path to vary, e.g. 'pools[my-pool].max_chips'"))
            continue
        try:
            target = resolve_path(document, entry["path"])
        except ValueError as exc:
            problems.append(Problem(label, f"vary[{i}].path", f"{entry['path']}: {exc}"))
            continue
        targets.append(target)
        for value in v.values:  # each value must fit its field before anything runs
            try:
                apply_edits(document, [(target, v.how, value)])
            except ValueError as exc:
                problems.append(Problem(label, f"vary[{i}]", str(exc)))
                break
    if combine == "zip" and len({len(v.values) for v in varies}) > 1:
        problems.append(Problem(label, "combine", "zip needs the same number of values in every vary entry, got "
                                f"{[len(v.values) for v in varies]}"))
    if problems:
        raise InputError(problems)
    study = Study(path, str(raw.get("name") or path.stem), scenario_path, varies, combine, samples, seed, targets,
                  document, base, bool(raw.get("baselines", False)), bool(raw.get("explain", False)), limit)
    study.cases = make_cases(study)
    return study


def _combine(value: Any, label: str, problems: list[Problem]) -> tuple[str, int, int]:
    if value in ("grid", "zip"):
        return value, 0, 0
    if isinstance(value, dict) and set(value) == {"random"} and isinstance(value["random"], dict):
        random = value["random"]
        samples, seed = random.get("samples"), random.get("seed", 0)
        extra = set(random) - {"samples", "seed"}
        if isinstance(samples, int) and samples >= 1 and isinstance(seed, int) and not extra:
            return "random", samples, seed
    problems.append(Problem(label, "combine", "grid, zip, or {random: {samples: N >= 1, seed: integer}}"))
    return "grid", 0, 0


def _vary(entry: dict[str, Any], i: int, label: str, problems: list[Problem]) -> Vary:
    where = f"vary[{i}]"
    given = [k for k in VARY_KINDS if k in entry]
    unknown = sorted(set(entry) - {"path", *VARY_KINDS})
    if unknown:
        problems.append(Problem(label, where, f"unknown key(s) {unknown}; give path and one of {list(VARY_KINDS)}"))
    if len(given) != 1:
        problems.append(Problem(label, where, f"give exactly one of {list(VARY_KINDS)}, got {given or 'none'}"))
        return Vary(str(entry.get("path")), "set", [], None)
    kind = given[0]
    spec = entry[kind]
    how = "scale" if kind == "scale" else "set"
    span = None
    if isinstance(spec, dict) or kind == "range":
        values, span = _range(spec, f"{where}.{kind}", label, problems)
    elif isinstance(spec, list) and spec:
        values = spec
    else:
        problems.append(Problem(label, f"{where}.{kind}", "give a non-empty list of values, or {from, to, steps}"))
        values = []
    if how == "scale" and not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                  for v in values):
        problems.append(Problem(label, f"{where}.scale", f"scale factors are finite numbers, got {values}"))
    return Vary(str(entry.get("path")), how, list(values), span)


def _range(spec: Any, where: str, label: str, problems: list[Problem]) -> tuple[list[float], tuple[float, float] | None]:
    ok = isinstance(spec, dict) and set(spec) == {"from", "to", "steps"}
    if ok:
        start, stop, steps = spec["from"], spec["to"], spec["steps"]
        ok = (all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (start, stop))
              and isinstance(steps, int) and steps >= 1)
    if not ok:
        problems.append(Problem(label, where, f"a range is {{from: number, to: number, steps: integer >= 1}}, got {spec!r}"))
        return [], None
    values = [float(v) for v in np.linspace(start, stop, steps)] if steps > 1 else [float(start)]
    return [round(v, 12) for v in values], (float(start), float(stop))


def make_cases(study: Study) -> list[Case]:
    """The cases in a stable order, named case-001...; each with a key that changes with base or edits."""
    varies = study.varies
    if study.combine == "grid":
        rows = list(itertools.product(*[v.values for v in varies]))
    elif study.combine == "zip":
        rows = list(zip(*[v.values for v in varies]))
    else:
        rng = np.random.default_rng(study.seed)
        rows = []
        for _ in range(study.samples):
            rows.append(tuple(round(float(rng.uniform(*v.span)), 12) if v.span is not None
                              else v.values[int(rng.integers(len(v.values)))] for v in varies))
    width = max(3, len(str(len(rows))))
    cases = []
    for i, row in enumerate(rows, start=1):
        assignments = [(target, v.how, value) for target, v, value in zip(study.targets, varies, row)]
        columns = {}
        for target, v, value in zip(study.targets, varies, row):
            columns[target.path] = value
            if v.how == "scale" and len(target.leaves) == 1:  # one place: show the value used
                leaf = target.leaves[0]
                columns[target.path] = coerce(base_value(study.document, leaf) * value, leaf, target.path, scaled=True)
        edits = [[t.path, how, value] for t, how, value in assignments]
        key = hashlib.sha256(json.dumps({"base": study.base.sha256, "edits": edits, "baselines": study.baselines,
                                         "explain": study.explain, "time_limit_s": study.time_limit_s},
                                        sort_keys=True, default=str).encode()).hexdigest()
        cases.append(Case(f"case-{i:0{width}d}", assignments, columns, key))
    return cases


# --------------------------------------------------------------------------------------------------
# Running one case (in a worker process, a Ray task, or in process)


def case_task(study: Study, case: Case, out_dir: Path | None) -> dict[str, Any]:
    """Everything a worker needs, as plain data (picklable for processes and Ray)."""
    return {"base": study.base, "document": study.document, "assignments": case.assignments,
            "case": case.name, "key": case.key, "columns": case.columns, "baselines": study.baselines,
            "explain": study.explain, "time_limit_s": study.time_limit_s,
            "out_dir": None if out_dir is None else str(out_dir)}


# Set by SIGINT in this process. Some libraries turn a KeyboardInterrupt raised inside their C code into
# another exception (pandas' to_json: "ValueError: Error calling _values_for_json"), which a case would
# record as its own failure; a case that saw the interrupt records nothing instead, so a rerun solves it.
_interrupted = False


def _on_interrupt(signum, frame) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def _watch_interrupts() -> Callable[[], None]:
    """Note SIGINT in this process (main thread only); returns what restores the previous handler."""
    global _interrupted
    _interrupted = False
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGINT, _on_interrupt)
    return lambda: signal.signal(signal.SIGINT, previous)


def run_case(task: dict[str, Any]) -> dict[str, Any]:
    """Edit, validate, solve (single-threaded) and, with out_dir, write the plan folder and the record.

    Never raises: bad input, solver trouble or a bug become the record's status and reason. Without
    out_dir (Ray) the plan and summary come back with the record for the driver to write.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    record: dict[str, Any] = {"case": task["case"], "key": task["key"], "edits": task["columns"]}
    plan = summary = None
    try:
        from placement.api import solve_scenario
        document = apply_edits(task["document"], task["assignments"])
        loaded = validate_document(document, task["base"], f"{task['base'].path} ({task['case']})")
        result = solve_scenario(loaded, baselines=task["baselines"], explain=task["explain"], threads=1,
                                time_limit_s=task["time_limit_s"])
        plan, summary = result.plan, result.summary
        record.update(_headline(plan))
        record["exit_code"] = int(result.exit_code)
        if result.violations:
            record.update(status="check_failed", reason="; ".join(result.violations))
            plan = None
    except InputError as exc:
        record.update(status="bad_input", exit_code=int(ExitCode.BAD_INPUT),
                      reason="; ".join(str(p) for p in exc.problems))
    except ValueError as exc:  # an edit that cannot be made (e.g. nothing to scale)
        record.update(status="bad_input", exit_code=int(ExitCode.BAD_INPUT), reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - a failed case is recorded, never stops the study
        record.update(status="error", exit_code=int(ExitCode.SOLVER_FAILURE),
                      reason=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=5))
    if _interrupted:  # whatever the case caught, it was the interrupt: record nothing
        raise KeyboardInterrupt
    record["seconds"] = round(time.perf_counter() - started, 3)
    record["cpu_seconds"] = round(time.process_time() - cpu_started, 3)  # < seconds: the CPU was shared
    if task["out_dir"] is None:
        return {"record": record, "plan": plan, "summary": summary}
    write_case(Path(task["out_dir"]), record, plan, summary)
    return {"record": record}


def _headline(plan: dict[str, Any]) -> dict[str, Any]:
    """The numbers a study table shows, read by name (fields may be added to the plan, never relied on)."""
    objective = plan.get("objective") or {}
    cost = plan.get("cost") or {}
    routing = plan.get("routing") or []
    unserved = plan.get("unserved") or []
    served = sum(r.get("requests_per_s") or 0 for r in routing)
    quality = [(r.get("requests_per_s") or 0, r.get("quality")) for r in routing if r.get("quality") is not None]
    weight = sum(w for w, _ in quality)
    return {
        "status": plan.get("status"),
        "objective_per_hour": objective.get("value"),
        "gap": objective.get("gap"),
        "cost_per_hour": cost.get("per_hour"),
        "cost_total": cost.get("total", cost.get("period")),
        "chips_used": _peak_chips(plan.get("pools") or []),
        "replicas": sum(r.get("replicas") or 0 for r in plan.get("replicas") or []),
        "served_requests_per_s": served,
        "unserved_requests_per_s": sum(u.get("requests_per_s") or 0 for u in unserved),
        "mean_quality": sum(w * q for w, q in quality) / weight if weight else None,
        "reason": "; ".join(f.get("message", "") for f in plan.get("diagnosis") or []),
    }


def _peak_chips(pools: list[dict[str, Any]]) -> dict[str, int]:
    """Chips used per pool; where a plan has a row per (pool, period), the peak over its periods."""
    peak: dict[str, int] = {}
    for row in pools:
        pool = row.get("pool")
        peak[pool] = max(peak.get(pool, 0), int(row.get("chips_used") or 0))
    return peak


def write_case(out_dir: Path, record: dict[str, Any], plan: dict[str, Any] | None, summary: str | None) -> None:
    """The case's plan folder (when there is a plan document), then its record, atomically, last."""
    from placement.plan import write_plan_folder

    folder = out_dir / "cases" / record["case"]
    if plan is not None:
        (folder / RECORD).unlink(missing_ok=True)  # ours, rewritten below; the plan folder lists only the plan
        write_plan_folder(plan, summary or "", folder)
    else:
        folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".{RECORD}.tmp"
    staging.write_text(json.dumps(record, indent=1, default=str) + "\n")
    os.replace(staging, folder / RECORD)


def read_record(out_dir: Path, case: Case) -> dict[str, Any] | None:
    try:
        record = json.loads((out_dir / "cases" / case.name / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("key") == case.key else None


# --------------------------------------------------------------------------------------------------
# Running a study


def run_study(study: Study | str | Path, out_dir: str | Path | None = None, jobs: int | None = None,
              ray: bool | str | None = None, log: Callable[[str], None] | None = None) -> StudyResult:
    """Run every case not already done in out_dir; write the table, charts, study.md and report.html.

    jobs: local worker processes (default: the CPUs; 1 runs in this process). ray: True to use the
    Ray cluster this process is connected to (or address "auto"), or an address; Ray workers must see
    the scenario's folder, and the driver writes every file.
    """
    study = study if isinstance(study, Study) else load_study(study)
    log = log or _stderr
    out = Path(out_dir) if out_dir is not None else Path("outputs") / study.name
    _claim(out, study)
    done = {case.name: record for case in study.cases if (record := read_record(out, case)) is not None}
    todo = [case for case in study.cases if case.name not in done]
    _forget_stale(out, study, log)
    log(f"study {study.name}: {len(study.cases)} cases, {len(done)} already done, {len(todo)} to run")
    started = time.perf_counter()
    records = dict(done)
    finished = 0

    def collect(record: dict[str, Any]) -> None:
        nonlocal finished
        finished += 1
        records[record["case"]] = record
        cost = record.get("objective_per_hour")
        shown = f"{cost:,.2f}/h" if isinstance(cost, (int, float)) else record.get("reason", "")[:80]
        log(f"[{finished}/{len(todo)}] {record['case']}: {record.get('status')} {shown} ({record.get('seconds', 0):.1f} s)")

    restore = _watch_interrupts()
    try:
        if ray:
            _run_on_ray(study, todo, out, ray, collect)
        else:
            workers = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
            if workers == 1:
                for case in todo:
                    collect(run_case(case_task(study, case, out))["record"])
            else:
                _run_in_processes(study, todo, out, workers, collect)
    finally:
        restore()
    log(f"study {study.name}: {len(todo)} cases solved in {time.perf_counter() - started:.1f} s")
    table = cases_table(study, [records[c.name] for c in study.cases if c.name in records])
    write_study_outputs(study, table, out)
    return StudyResult(out, table, ExitCode.OPTIMAL, [c.name for c in todo])


def _stderr(message: str) -> None:
    print(f"placement: {message}", file=sys.stderr, flush=True)


def _claim(out: Path, study: Study) -> None:
    """A study writes only into an empty folder or one it wrote itself (marked by study.json)."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / STUDY_MARKER).exists())):
        raise InputError.single(str(out), "--out", "exists and is not a study folder; give a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    marker = {"name": study.name, "study": str(study.file), "scenario": str(study.scenario),
              "base_sha256": study.base.sha256, "cases": len(study.cases),
              "vary": [{"path": v.path, "how": v.how, "values": v.values} for v in study.varies],
              "combine": study.combine if study.combine != "random" else {"random": {"samples": study.samples,
                                                                                      "seed": study.seed}}}
    _write_atomic(out / STUDY_MARKER, json.dumps(marker, indent=1, default=str) + "\n")


def _forget_stale(out: Path, study: Study, log: Callable[[str], None] = lambda _: None) -> None:
    """Case folders of an earlier, larger version of the study would mislead: remove them, unless they
    hold something the study did not write (a user's note), which is never deleted: those are said."""
    from placement.files import foreign_files

    names = {case.name for case in study.cases}
    cases_dir = out / "cases"
    if cases_dir.is_dir():
        for folder in sorted(cases_dir.iterdir()):
            if folder.is_dir() and folder.name.startswith("case-") and folder.name not in names:
                foreign = foreign_files(folder, also_ours=(RECORD,))
                if foreign:
                    log(f"kept {folder}: no longer a case of this study, but it holds {', '.join(foreign[:3])}, "
                        "which the study did not write")
                    continue
                shutil.rmtree(folder, ignore_errors=True)


def _worker_init() -> None:
    """Solvers single-threaded: the parallelism is across cases. A worker notes SIGINT (sent to the whole
    process group by Ctrl-C) so an interrupted case leaves no record."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    _watch_interrupts()


def _run_in_processes(study: Study, todo: list[Case], out: Path, workers: int, collect) -> None:
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init)
    try:
        futures = {pool.submit(run_case, case_task(study, case, out)): case for case in todo}
        for future in concurrent.futures.as_completed(futures):
            case = futures[future]
            try:
                collect(future.result()["record"])
            except Exception as exc:  # noqa: BLE001 - a crashed worker fails its case, not the study
                record = _lost(case, f"worker: {type(exc).__name__}: {exc}")
                write_case(out, record, None, None)
                collect(record)
    except BaseException:  # interrupted: drop the queued cases (the recorded ones stay for a rerun)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _lost(case: Case, reason: str) -> dict[str, Any]:
    """The record of a case whose worker died or whose task was lost."""
    return {"case": case.name, "key": case.key, "edits": case.columns, "status": "error",
            "exit_code": int(ExitCode.SOLVER_FAILURE), "reason": reason}


def _run_on_ray(study: Study, todo: list[Case], out: Path, address: bool | str, collect) -> None:
    try:
        import ray
    except ImportError:
        raise InputError.single("command line", "--ray", "Ray is not installed: pip install ray") from None
    if not ray.is_initialized():
        try:
            ray.init(address="auto" if address is True else address, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - no cluster there is a usage problem
            raise InputError.single("command line", "--ray", f"cannot connect to a Ray cluster at "
                                    f"{'auto' if address is True else address!r}: {exc}") from None
    remote = ray.remote(num_cpus=1)(run_case)
    pending = {remote.remote(case_task(study, case, None)): case for case in todo}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        case = pending.pop(ready[0])
        try:
            payload = ray.get(ready[0])
        except Exception as exc:  # noqa: BLE001 - a lost task fails its case, not the study
            payload = {"record": _lost(case, f"ray: {type(exc).__name__}: {exc}"), "plan": None, "summary": None}
        write_case(out, payload["record"], payload.get("plan"), payload.get("summary"))
        collect(payload["record"])


# --------------------------------------------------------------------------------------------------
# Results


def cases_table(study: Study, records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per case: case, a column per varied path, status, exit_code, objective, gap, chips per
    pool, then the headline metrics and the reason."""
    seen = {p for r in records for p in (r.get("chips_used") or {})}
    order = [pool["id"] for pool in study.document["pools"]]  # the scenario's order, then any others
    pools = [p for p in order if p in seen] + sorted(seen - set(order))
    rows = []
    for record in records:
        row: dict[str, Any] = {"case": record["case"]}
        for target in study.targets:
            row[target.path] = (record.get("edits") or {}).get(target.path)
        row.update({key: record.get(key) for key in ("status", "exit_code", "objective_per_hour", "gap")})
        for pool in pools:
            row[f"chips_used[{pool}]"] = (record.get("chips_used") or {}).get(pool)
        row.update({key: record.get(key) for key in ("cost_per_hour", "cost_total", "replicas",
                                                     "served_requests_per_s", "unserved_requests_per_s",
                                                     "mean_quality", "seconds", "cpu_seconds", "reason")})
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in ("objective_per_hour", "gap", "cost_per_hour", "cost_total", "served_requests_per_s",
                   "unserved_requests_per_s", "mean_quality", "seconds", "cpu_seconds"):
        if column in table:
            table[column] = pd.to_numeric(table[column], errors="coerce").astype("float64")
    for column in [c for c in table.columns if c.startswith("chips_used[")] + ["exit_code", "replicas"]:
        if column in table:
            table[column] = pd.to_numeric(table[column], errors="coerce").astype("Int64")
    if "reason" in table:
        table["reason"] = table["reason"].fillna("").astype(str)
    return table


def write_study_outputs(study: Study, table: pd.DataFrame, out: Path) -> None:
    from placement.html_report import study_report_html

    _write_atomic(out / "cases.csv", table.to_csv(index=False, lineterminator="\n"))
    staging = out / ".cases.parquet.tmp"
    table.to_parquet(staging, index=False)
    os.replace(staging, out / "cases.parquet")
    charts = cost_charts(study, table, out / "charts")
    _write_atomic(out / "study.md", study_markdown(study, table, charts))
    _write_atomic(out / "report.html", study_report_html(study, table, charts))


def _write_atomic(path: Path, text: str) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(text)
    os.replace(staging, path)


def solved(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["status"].isin(["optimal", "feasible"])] if "status" in table else table.iloc[0:0]


def cost_charts(study: Study, table: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """One PNG per varied path: the optimal cost of every case against the value it used."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    charts = {}
    ok = solved(table)
    for i, target in enumerate(study.targets):
        path = target.path
        raw = ok[path] if path in ok else pd.Series(dtype=object)
        x = pd.to_numeric(raw, errors="coerce")
        figure, axes = plt.subplots(figsize=(6, 3.6), dpi=100)
        if len(raw) and x.isna().all():  # text values (an engine, a kind): one position per value
            labels = sorted(raw.astype(str).unique())
            x = raw.astype(str).map({label: i for i, label in enumerate(labels)}).astype(float)
            axes.set_xticks(range(len(labels)), labels, fontsize=8)
        if len(ok) and x.notna().any():
            axes.scatter(x, ok["objective_per_hour"], s=18, alpha=0.6, label="case")
            means = ok.assign(_x=x).groupby("_x")["objective_per_hour"].mean()
            axes.plot(means.index, means.to_numpy(), color="C1", label="mean over other edits")
            axes.legend(fontsize=8)
        failed = len(table) - len(ok)
        axes.set_title(path + (f"  ({failed} case(s) without a plan)" if failed else ""), fontsize=9)
        how = "scale factor" if study.varies[i].how == "scale" and len(target.leaves) > 1 else "value"
        axes.set_xlabel(f"{path} ({how})", fontsize=8)
        axes.set_ylabel("cost per hour", fontsize=8)
        axes.grid(alpha=0.3)
        figure.tight_layout()
        file = folder / f"cost-vs-{i + 1:02d}-{_slug(path)}.png"
        figure.savefig(file)
        plt.close(figure)
        charts[path] = file
    return charts


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text).strip("-")[:60]


def what_moved(study: Study, table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per varied path: the mean optimal cost at its lowest and highest value and the swing between
    the means over its values (the other edits averaged out), largest swing first."""
    ok = solved(table)
    rows = []
    for target in study.targets:
        path = target.path
        if path not in ok or not len(ok):
            continue
        means = ok.groupby(path)["objective_per_hour"].mean().sort_index()
        rows.append({"path": path, "values": len(means), "lowest_value": means.index[0],
                     "cost_at_lowest": float(means.iloc[0]), "highest_value": means.index[-1],
                     "cost_at_highest": float(means.iloc[-1]),
                     "swing": float(means.max() - means.min())})
    return sorted(rows, key=lambda r: -r["swing"])


def pool_switches(study: Study, table: pd.DataFrame) -> list[str]:
    """Sentences: where a pool enters or leaves the plan along a varied path."""
    ok = solved(table)
    sentences = []
    for column in [c for c in ok.columns if c.startswith("chips_used[")]:
        pool = column[len("chips_used["):-1]
        used = ok[column].fillna(0) > 0
        if used.all() or not used.any():
            state = "used in every case" if used.all() else "unused in every case"
            sentences.append(f"{pool}: {state}.")
            continue
        for target in study.targets:
            path = target.path
            by_value = used.groupby(ok[path]).mean().sort_index()
            if by_value.iloc[0] != by_value.iloc[-1] and by_value.isin([0.0, 1.0]).all():
                on = [v for v, u in by_value.items() if u == 1.0]
                off = [v for v, u in by_value.items() if u == 0.0]
                sentences.append(f"{pool}: in the plan when {path} is {_values(on)}; out of it at {_values(off)}.")
                break
        else:
            minority = ok[~used] if (~used).sum() <= used.sum() else ok[used]
            state = "out of the plan" if (~used).sum() <= used.sum() else "in the plan"
            where = "; ".join(f"{r['case']} (" + ", ".join(f"{t.path} = {_values([r[t.path]])}" for t in study.targets)
                              + ")" for _, r in minority.head(4).iterrows())
            more = f" and {len(minority) - 4} more" if len(minority) > 4 else ""
            sentences.append(f"{pool}: {state} only in {len(minority)} of {len(ok)} solved cases: {where}{more}.")
    return sentences


def _values(values: list[Any]) -> str:
    shown = [f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in values]
    return ", ".join(shown) if len(shown) <= 6 else f"{shown[0]} .. {shown[-1]} ({len(shown)} values)"


def study_markdown(study: Study, table: pd.DataFrame, charts: dict[str, Path]) -> str:
    counts = table["status"].value_counts().to_dict() if "status" in table else {}
    ok = solved(table)
    lines = [f"# Study {study.name}", "", f"Base scenario: `{study.scenario}`; {len(table)} cases "
             f"({study.combine}); " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + ".", ""]
    if len(ok):
        best = ok.loc[ok["objective_per_hour"].idxmin()]
        worst = ok.loc[ok["objective_per_hour"].idxmax()]
        lines += [f"Cost per hour ranges from {best['objective_per_hour']:,.2f} ({best['case']}) to "
                  f"{worst['objective_per_hour']:,.2f} ({worst['case']}).", ""]
    lines += ["## What moved the answer", "", "| path | values | cost at lowest | cost at highest | swing |",
              "|---|---|---|---|---|"]
    for row in what_moved(study, table):
        lines.append(f"| `{row['path']}` | {row['values']} | {row['cost_at_lowest']:,.2f} at {_values([row['lowest_value']])} | "
                     f"{row['cost_at_highest']:,.2f} at {_values([row['highest_value']])} | {row['swing']:,.2f} |")
    lines += ["", "Costs are means over the other edits at each value (USD/h or the scenario's currency).", "",
              "## Pools", ""] + [f"- {s}" for s in pool_switches(study, table)] + [""]
    failed = table[~table["status"].isin(["optimal", "feasible"])] if "status" in table else table.iloc[0:0]
    if len(failed):
        lines += ["## Cases without a plan", "", "| case | status | exit | reason |", "|---|---|---|---|"]
        lines += [f"| {r.case} | {r.status} | {r.exit_code} | {str(r.reason)[:200].replace('|', '/')} |"
                  for r in failed.itertuples()] + [""]
    lines += ["## Charts", ""] + [f"![{path}]({file.parent.name}/{file.name})" for path, file in charts.items()] + [""]
    lines += ["Every case's plan folder is in `cases/<case>/`; the table is `cases.csv` / `cases.parquet`.", ""]
    return "\n".join(lines)

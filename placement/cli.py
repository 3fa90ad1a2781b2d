"""Command line: `placement solve | validate | profile | calibrate | schema | check` (contract: cli-and-outputs.md).

Results go to stdout, logs to stderr, and every outcome has its exit code. No traceback reaches
the user: bad input is exit 3 with one line per problem; anything unexpected is exit 4 with the
error (set PLACEMENT_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
import traceback
from pathlib import Path

from placement.errors import ExitCode, InputError, Problem


# seconds of --time-limit kept for writing the plan folder (the chart and report.html take about a second)
OUTPUT_RESERVE_S = 1.5


def _log(message: str) -> None:
    print(f"placement: {message}", file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """Usage errors (unknown flag, bad flag value, missing argument) are bad input: exit 3, not
    argparse's 2, which means infeasible here. Subcommand parsers inherit the class."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(int(ExitCode.BAD_INPUT), f"{self.prog}: error: {message}\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    import placement

    try:
        return version("placement")
    except PackageNotFoundError:  # run from a checkout without installing
        return placement.__version__


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="placement", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"placement {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    solve = sub.add_parser("solve", help="solve a scenario and write the plan folder")
    solve.add_argument("scenario")
    solve.add_argument("--out", help="plan folder (default outputs/<scenario name>/)")
    solve.add_argument("--backend", choices=["highspy", "ortools", "pulp"])
    solve.add_argument("--engine", choices=["highs", "scip", "cbc", "cp-sat"])
    solve.add_argument("--time-limit", type=float, dest="time_limit", help="seconds")
    solve.add_argument("--gap", type=float, help="relative MIP gap, e.g. 0.0001")
    solve.add_argument("--threads", type=_threads_arg,
                       help="threads the solve may use: a number or 'auto', the CPUs available, at most 4 "
                            "(default: the scenario's options.solver.threads, auto)")
    solve.add_argument("--json", action="store_true", help="print plan.json to stdout")
    solve.add_argument("--no-baselines", action="store_true", help="skip the single-accelerator baselines")
    solve.add_argument("--values", action="store_true",
                       help="also compute what capacity is worth (capacity_values in plan.json; re-solves)")
    solve.add_argument("--rolling", type=int, metavar="W",
                       help="rolling horizon for horizons too big to solve whole: plan W periods ahead, commit "
                            "the first period (routing, replicas, fleet, blocks bought), re-plan from there; "
                            "--time-limit covers every step; the plan is feasible at best (no bound against "
                            "the full horizon) and may cost more than the full solve")

    validate = sub.add_parser("validate", help="check a scenario without solving")
    validate.add_argument("scenario")
    validate.add_argument("--json", action="store_true",
                          help="print counts, notes and problems as JSON to stdout (problems too on bad input)")

    profile = sub.add_parser("profile", help="print or write the profile table a solve would use, or import "
                                             "benchmark results as measured rows (--import)")
    profile.add_argument("scenario", nargs="?")
    profile.add_argument("--out", help="CSV file to write (default: print CSV to stdout)")
    profile.add_argument("--per-bucket", action="store_true",
                         help="instead: per workload bucket and deployment, the row the solve uses (after the SLO)")
    profile.add_argument("--json", action="store_true",
                         help="print the rows as a JSON list to stdout (problems as JSON on bad input)")
    profile.add_argument("--import", dest="imports", nargs="+", metavar="FILE",
                         help="instead: measured profile rows from benchmark files (our profile CSV, vllm bench serve "
                              "JSON, GenAI-Perf / AIPerf exports)")
    _deployment_arguments(profile)

    calibrate = sub.add_parser("calibrate", help="fit efficiency factors per accelerator to measured points")
    calibrate.add_argument("measurements", nargs="+", metavar="MEASUREMENTS",
                           help="profile CSV, vllm bench serve JSON, GenAI-Perf / AIPerf exports")
    calibrate.add_argument("--out", required=True, help="overrides YAML to write (a scenario's estimator_overrides)")
    calibrate.add_argument("--scenario", help="take model and accelerator specs from this scenario (default: catalog)")
    calibrate.add_argument("--fit", help="comma-separated factors to fit (default: memory_bandwidth,compute "
                                         "[,moe_bandwidth for mixtures of experts])")
    _deployment_arguments(calibrate)

    sub.add_parser("schema", help="print the JSON Schema of the scenario format")

    study = sub.add_parser("study", help="run every case of a study and write the study folder")
    study.add_argument("study")
    study.add_argument("--out", help="study folder (default outputs/<study name>/); a rerun resumes")
    study.add_argument("--jobs", type=int, help="worker processes (default: the CPUs)")
    study.add_argument("--ray", nargs="?", const=True, default=None, metavar="ADDRESS",
                       help="run the cases on an existing Ray cluster (default address: auto)")

    diff = sub.add_parser("diff", help="what changed between two plans")
    diff.add_argument("plan_a")
    diff.add_argument("plan_b")
    diff.add_argument("--json", action="store_true", help="print the difference as JSON")

    check = sub.add_parser("check", help="re-verify a plan against its scenario")
    check.add_argument("scenario")
    check.add_argument("plan", help="plan.json or the plan folder")
    return parser


def _deployment_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a benchmark ran: its files do not say (a vLLM file may carry them as --metadata)."""
    parser.add_argument("--model", help="model id the measurements are of (default: the file's model name)")
    parser.add_argument("--accelerator", help="accelerator id the server ran on")
    parser.add_argument("--chips", type=int, help="chips per replica of the server")
    parser.add_argument("--concurrency", type=int, help="requests in flight (default: the file's max concurrency)")


def _deployment(args):
    from placement.importers import Deployment

    for name in ("chips", "concurrency"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError.single("command line", f"--{name}", f"must be >= 1, got {value}")
    return Deployment(args.model, args.accelerator, args.chips, args.concurrency)


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # usage error (3), --help or --version (0)
        return exc.code if isinstance(exc.code, int) else int(ExitCode.BAD_INPUT)
    args.started = started
    try:
        return int(COMMANDS[args.command](args))
    except InputError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        if args.command in ("validate", "profile") and args.json:  # solve --json prints plan.json or nothing
            _print_json({"status": "bad_input", "problems": [vars(p) for p in exc.problems]})
        _log(f"bad input: {len(exc.problems)} problem(s); nothing was written")
        return int(ExitCode.BAD_INPUT)
    except KeyboardInterrupt:
        _log("interrupted; nothing was written")
        return int(ExitCode.SOLVER_FAILURE)
    except Exception as exc:  # noqa: BLE001 - the contract: no traceback reaches the user
        if os.environ.get("PLACEMENT_DEBUG"):
            traceback.print_exc()
        _log(f"internal error: {type(exc).__name__}: {exc} (set PLACEMENT_DEBUG=1 for the traceback)")
        return int(ExitCode.SOLVER_FAILURE)


def _settings(loaded, args):
    """Scenario options, overridden by the command line; an engine alone picks a backend that has it."""
    from placement.scenario import DEFAULT_ENGINE, ENGINES, MAX_THREADS
    from placement.solve import settings_from

    backend, engine = loaded.scenario.options.solver.resolved
    if args.backend:
        # the scenario's engine belongs to the scenario's backend; another backend starts from its default
        engine = args.engine or (engine if args.backend == backend else DEFAULT_ENGINE[args.backend])
        backend = args.backend
    elif args.engine:
        engine = args.engine
        if engine not in ENGINES[backend]:
            backend = next(name for name, engines in ENGINES.items() if engine in engines)
    if engine not in ENGINES[backend]:
        raise InputError.single("command line", "--engine",
                                f"engine {engine!r} is not available in backend {backend!r}; "
                                f"choose one of {sorted(ENGINES[backend])}")
    if args.time_limit is not None and not (math.isfinite(args.time_limit) and args.time_limit > 0):
        raise InputError.single("command line", "--time-limit", f"must be > 0 seconds, got {args.time_limit}")
    if args.gap is not None and not 0 <= args.gap < 1:
        raise InputError.single("command line", "--gap", f"must be in [0, 1), got {args.gap}")
    if args.threads not in (None, "auto") and not 1 <= args.threads <= MAX_THREADS:
        raise InputError.single("command line", "--threads", f"must be between 1 and {MAX_THREADS}, got {args.threads}")
    return settings_from(loaded.scenario, backend=backend, engine=engine, time_limit_s=args.time_limit,
                         mip_gap=args.gap, threads=args.threads)


def _threads_arg(text: str) -> int | str:
    """--threads: 'auto' or a whole number (its range is checked with the other options)."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number, got {text!r}") from None


def _folder_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")
    return cleaned or "plan"


def cmd_solve(args) -> ExitCode:
    from placement.api import solve_scenario
    from placement.files import check_replaceable_folder
    from placement.plan import plan_json, write_plan_folder
    from placement.scenario import load_scenario
    from placement.solve import Budget

    started = args.started  # --time-limit covers the whole command, from the moment it started
    loaded = load_scenario(args.scenario)
    settings = _settings(loaded, args)
    if args.rolling is not None:
        from placement.rolling import check_window

        check_window(args.rolling, ("command line", "--rolling"))
        if args.values:
            raise InputError.single("command line", "--values", "capacity values re-solve the full horizon; "
                                                                 "drop --rolling or --values")
    out_dir = Path(args.out) if args.out else Path("outputs") / _folder_name(loaded.scenario.name)
    check_replaceable_folder(out_dir, loaded.files)  # before the solve: a refused --out costs no time
    # the plan folder (CSVs, summary, chart, report) is written after the solve: keep time for it
    reserve = min(OUTPUT_RESERVE_S + 0.05 * settings.time_limit_s, 0.5 * settings.time_limit_s)
    result = solve_scenario(loaded, settings, baselines=False if args.no_baselines else None,
                            budget=Budget(settings.time_limit_s - reserve, started), rolling=args.rolling)
    if args.values and result.plan["status"] in ("optimal", "feasible") and not result.violations:
        from placement.values import capacity_values
        result.plan["capacity_values"], result.plan["capacity_values_notes"] = capacity_values(loaded, settings, result.plan)
    elif args.values:
        _log("--values: no capacity values without a plan")
    if result.violations:
        for violation in result.violations:
            print(f"check: {violation}", file=sys.stderr)
        _log("internal error: the plan failed the independent check (a bug; please report it); nothing was written")
        return ExitCode.SOLVER_FAILURE
    write_plan_folder(result.plan, result.summary, out_dir, loaded.files)
    if args.json:
        sys.stdout.write(plan_json(result.plan))
        sys.stdout.flush()
    _report_outcome(result.plan, out_dir)
    return result.exit_code


def _report_outcome(doc, out_dir: Path) -> None:
    """One line to stderr per outcome (plus the diagnosis); the exit code comes from api.exit_code_of."""
    status = doc["status"]
    if status in ("optimal", "feasible"):
        cost = doc["cost"]
        gap = doc["objective"]["gap"]
        periods = len(doc.get("periods") or [None])
        # one period: the running cost (shedding is reported apart); several: the objective, the horizon's
        # total (churn and contracts' terms past it included) per hour, so the two figures agree
        per_hour, span = ((cost["per_hour"], f"{cost['period']:,.0f} for the period") if periods == 1
                          else (doc["objective"]["value"], f"{cost['total']:,.0f} over {periods} periods"))
        _log(f"{status}: {per_hour:,.2f} {doc['scenario']['currency']}/h ({span}), "
             f"gap {gap if gap is not None else 'unknown'}; plan in {out_dir}/")
    elif status == "infeasible":
        _log(f"infeasible: no plan meets every hard constraint; diagnosis in {out_dir}/plan.json")
        for finding in doc["diagnosis"]:
            print(f"diagnosis: {finding['message']}", file=sys.stderr)
            for accelerator, reason in (finding.get("why") or {}).items():
                print(f"  {accelerator}: {reason}", file=sys.stderr)
    else:
        _log(f"no plan: the solver stopped without a solution ({doc['solver'].get('message')}); "
             + ("widen --rolling, raise --time-limit or solve the whole horizon" if doc["solver"].get("rolling")
                else "raise --time-limit or loosen --gap"))


def cmd_validate(args) -> ExitCode:
    from placement.scenario import load_scenario
    from placement.solve import prepare

    loaded = load_scenario(args.scenario)
    table, cells, candidates = prepare(loaded)
    scenario = loaded.scenario
    counts = {"workloads": len(scenario.workloads), "buckets": len(cells), "models": len(scenario.models),
              "accelerators": len(scenario.accelerators), "pools": len(scenario.pools),
              "profile_rows": len(table), "measured_rows": int((table["source"] == "measured").sum()),
              "candidates": len(candidates)}
    from placement.report import unasked_speed_notes, unused_field_notes

    notes = (list(table.attrs.get("not_estimated", [])) + unused_field_notes(scenario)
             + unasked_speed_notes(scenario, candidates, planned=False))
    if args.json:
        _print_json({"status": "ok", "scenario": args.scenario, "counts": counts, "notes": notes, "problems": []})
        return ExitCode.OPTIMAL
    print(f"ok: {args.scenario}: {counts['workloads']} workloads, {counts['buckets']} buckets, "
          f"{counts['models']} models, {counts['accelerators']} accelerators, {counts['pools']} pools, "
          f"{counts['profile_rows']} profile rows ({counts['measured_rows']} measured), "
          f"{counts['candidates']} candidate (bucket, deployment) pairs")
    for note in notes:
        print(f"note: {note}")
    return ExitCode.OPTIMAL


def _print_json(document) -> None:
    sys.stdout.write(json.dumps(document, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def cmd_profile(args) -> ExitCode:
    from placement.files import replace_file
    from placement.importers import import_many
    from placement.profiles import demand_cells, lookup, profile_table
    from placement.scenario import PROFILE_COLUMNS, load_scenario

    if (args.scenario is None) == (args.imports is None):
        raise InputError.single("command line", "SCENARIO / --import", "give a scenario, or --import FILE... (not both)")
    if args.imports is not None:
        table = import_many(args.imports, _deployment(args))
        table = table[[c for c in PROFILE_COLUMNS if not c.endswith(("_low", "_high"))]]
        _write_csv(table, args.out, "measured profile rows")
        return ExitCode.OPTIMAL
    loaded = load_scenario(args.scenario)
    table = profile_table(loaded)
    if args.per_bucket:
        cells = demand_cells(loaded.scenario)
        chosen = lookup(cells, table)
        lengths = cells[["input_tokens", "output_tokens"]].reset_index(drop=True)
        table = chosen.join(lengths, on="cell").rename(columns={"replica_requests_per_s": "requests_per_s"})
        table = table[["workload", "bucket", "model", "accelerator", "chips_per_replica", "input_tokens",
                       "output_tokens", "requests_per_s", "output_tokens_per_s_per_user", "ttft_s", "source",
                       "row_input_tokens", "row_output_tokens"]]
    if args.out:
        out = replace_file(Path(args.out), table.to_csv(index=False, lineterminator="\n"), loaded.files)
        _log(f"wrote {len(table)} profile rows to {out}")
    if args.json:
        _print_json(json.loads(table.to_json(orient="records", double_precision=15)))  # NaN -> null
    elif not args.out:
        sys.stdout.write(table.to_csv(index=False, lineterminator="\n"))
    return ExitCode.OPTIMAL


def _write_text(text: str, out: str | None) -> None:
    """Atomically, replacing only a file this tool wrote (placement.files), or to stdout without --out."""
    from placement.files import replace_file

    if out is None:
        sys.stdout.write(text)
        return
    replace_file(Path(out), text)


def _write_csv(table, out: str | None, what: str) -> None:
    _write_text(table.to_csv(index=False, lineterminator="\n"), out)
    if out:
        _log(f"wrote {len(table)} {what} to {out}")


def cmd_calibrate(args) -> ExitCode:
    """Import the measurements, fit factors per accelerator, print residuals, write the overrides YAML."""
    import yaml

    from placement.calibrate import calibrate, overrides_document, points_from_rows
    from placement.catalog import load_catalog
    from placement.efficiency import TUNABLE
    from placement.importers import import_many
    from placement.scenario import load_scenario

    rows = import_many(args.measurements, _deployment(args))
    if args.scenario:
        scenario = load_scenario(args.scenario).scenario
        accelerators = {a.id: a for a in scenario.accelerators}
        models = {m.id: m for m in scenario.models}
    else:
        accelerators, models = load_catalog()
    names = None
    if args.fit:
        names = tuple(n.strip() for n in args.fit.split(",") if n.strip())
        from placement.calibrate import FIT_BOUNDS

        bad = [n for n in names if n not in FIT_BOUNDS or n not in TUNABLE]
        if bad:
            raise InputError.single("command line", "--fit", f"cannot fit {bad}; choose from "
                                    f"{sorted(set(FIT_BOUNDS) & set(TUNABLE))}")
    points = points_from_rows(rows, models, accelerators, ", ".join(args.measurements))
    fits = calibrate(points, names)
    print(f"{'point':<60} {'measured':>12} {'before':>7} {'after':>7}")
    for accel_id, result in fits.items():
        print(f"{accel_id}: " + ", ".join(f"{k} {v:.4g}" for k, v in result.factors.items()))
        for point in (p for p in points if p.accelerator.id == accel_id):
            print(f"  {point.id:<58} {point.measured:>12.4g} {result.before[point.id]:>7.3f} "
                  f"{result.residuals[point.id]:>7.3f}")
    far = [pid for result in fits.values() for pid, r in result.residuals.items() if not 1 / 1.5 <= r <= 1.5]
    if far:
        _log(f"warning: {len(far)} point(s) still off by more than 1.5x after the fit (check --accelerator, --chips "
             f"and --concurrency for them): {', '.join(far)}")
    document = overrides_document(fits, [str(m) for m in args.measurements])
    header = ("# placement calibrate: efficiency factors fitted to measured points (ratios estimate / measured).\n"
              "# Use it in a scenario: `estimator_overrides: <this file>` (path relative to the scenario).\n")
    _write_text(header + yaml.safe_dump(document, sort_keys=False), args.out)
    _log(f"wrote fitted factors for {len(fits)} accelerator(s) to {args.out}")
    return ExitCode.OPTIMAL


def cmd_schema(args) -> ExitCode:
    from placement.scenario import json_schema

    print(json.dumps(json_schema(), indent=2))
    return ExitCode.OPTIMAL


def cmd_check(args) -> ExitCode:
    from placement.checker import check_plan
    from placement.files import MAX_TABLE_BYTES, read_text_bounded
    from placement.profiles import profile_table
    from placement.scenario import load_scenario

    loaded = load_scenario(args.scenario)
    path = Path(args.plan)
    if path.is_dir():
        path = path / "plan.json"
    text = read_text_bounded(path, str(path), MAX_TABLE_BYTES, "plan file")  # never a FIFO, never unbounded
    try:
        plan = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputError([Problem(str(path), "", f"not valid JSON ({exc})")]) from None
    if not isinstance(plan, dict) or "status" not in plan:
        raise InputError([Problem(str(path), "status", "not a plan document (no status field)")])
    if plan.get("scenario", {}).get("sha256") not in (None, loaded.sha256):
        _log("warning: the plan was made from a different version of this scenario (sha256 differs)")
    if plan["status"] not in ("optimal", "feasible"):
        print(f"nothing to check: plan status is {plan['status']}")
        return ExitCode.OPTIMAL
    violations = check_plan(loaded, plan, profile_table(loaded))
    if violations:
        for violation in violations:
            print(f"violation: {violation}")
        _log(f"{len(violations)} violation(s)")
        return ExitCode.INFEASIBLE
    print(f"ok: the plan keeps every promise ({len(plan.get('routing', []))} routing rows, "
          f"{len(plan.get('replicas', []))} replica rows, cost {plan['cost']['per_hour']:,.4f}/h recomputed)")
    return ExitCode.OPTIMAL


def cmd_study(args) -> ExitCode:
    from placement.study import load_study, run_study

    if args.jobs is not None and args.jobs < 1:
        raise InputError.single("command line", "--jobs", f"must be >= 1, got {args.jobs}")
    study = load_study(args.study)
    try:
        result = run_study(study, args.out, jobs=args.jobs, ray=args.ray)
    except KeyboardInterrupt:
        _log("interrupted; the cases already recorded are kept: run the same command again to resume")
        return ExitCode.SOLVER_FAILURE
    _log(f"study written to {result.out_dir}/ (cases.csv, cases.parquet, study.md, report.html)")
    return result.exit_code


def cmd_diff(args) -> ExitCode:
    from placement.diff import diff_markdown, diff_plans, read_plan

    difference = diff_plans(read_plan(args.plan_a), read_plan(args.plan_b))
    sys.stdout.write(json.dumps(difference, indent=2) + "\n" if args.json else diff_markdown(difference))
    return ExitCode.OPTIMAL


COMMANDS = {"solve": cmd_solve, "validate": cmd_validate, "profile": cmd_profile, "calibrate": cmd_calibrate,
            "schema": cmd_schema, "check": cmd_check, "study": cmd_study, "diff": cmd_diff}

if __name__ == "__main__":
    sys.exit(main())

"""Command line: `placement solve | validate | profile | schema | check` (contract: cli-and-outputs.md).

Results go to stdout, logs to stderr, and every outcome has its exit code. No traceback reaches
the user: bad input is exit 3 with one line per problem; anything unexpected is exit 4 with the
error (set PLACEMENT_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback
from pathlib import Path

from placement.errors import ExitCode, InputError, Problem


def _log(message: str) -> None:
    print(f"placement: {message}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="placement", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    solve = sub.add_parser("solve", help="solve a scenario and write the plan folder")
    solve.add_argument("scenario")
    solve.add_argument("--out", help="plan folder (default outputs/<scenario name>/)")
    solve.add_argument("--backend", choices=["ortools", "pulp"])
    solve.add_argument("--engine", choices=["highs", "scip", "cbc", "cp-sat"])
    solve.add_argument("--time-limit", type=float, dest="time_limit", help="seconds")
    solve.add_argument("--gap", type=float, help="relative MIP gap, e.g. 0.0001")
    solve.add_argument("--json", action="store_true", help="print plan.json to stdout")
    solve.add_argument("--no-baselines", action="store_true", help="skip the single-accelerator baselines")

    validate = sub.add_parser("validate", help="check a scenario without solving")
    validate.add_argument("scenario")

    profile = sub.add_parser("profile", help="print or write the profile table a solve would use")
    profile.add_argument("scenario")
    profile.add_argument("--out", help="CSV file to write (default: print CSV to stdout)")
    profile.add_argument("--per-bucket", action="store_true",
                         help="instead: per workload bucket and deployment, the row the solve uses (after the SLO)")

    sub.add_parser("schema", help="print the JSON Schema of the scenario format")

    check = sub.add_parser("check", help="re-verify a plan against its scenario")
    check.add_argument("scenario")
    check.add_argument("plan", help="plan.json or the plan folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(COMMANDS[args.command](args))
    except InputError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
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
    from placement.scenario import DEFAULT_ENGINE, ENGINES
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
    if args.time_limit is not None and not args.time_limit > 0:
        raise InputError.single("command line", "--time-limit", f"must be > 0 seconds, got {args.time_limit}")
    if args.gap is not None and not 0 <= args.gap < 1:
        raise InputError.single("command line", "--gap", f"must be in [0, 1), got {args.gap}")
    return settings_from(loaded.scenario, backend=backend, engine=engine, time_limit_s=args.time_limit,
                         mip_gap=args.gap)


def _folder_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")
    return cleaned or "plan"


def cmd_solve(args) -> ExitCode:
    from placement.api import solve_scenario
    from placement.plan import plan_json, write_plan_folder
    from placement.scenario import load_scenario

    loaded = load_scenario(args.scenario)
    settings = _settings(loaded, args)
    out_dir = Path(args.out) if args.out else Path("outputs") / _folder_name(loaded.scenario.name)
    result = solve_scenario(loaded, settings, baselines=False if args.no_baselines else None)
    if result.violations:
        for violation in result.violations:
            print(f"check: {violation}", file=sys.stderr)
        _log("internal error: the plan failed the independent check (a bug; please report it); nothing was written")
        return ExitCode.SOLVER_FAILURE
    write_plan_folder(result.plan, result.summary, out_dir)
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
        _log(f"{status}: {cost['per_hour']:,.2f} {doc['scenario']['currency']}/h "
             f"({cost['period']:,.0f} for the period), gap {gap if gap is not None else 'unknown'}; plan in {out_dir}/")
    elif status == "infeasible":
        _log(f"infeasible: no plan meets every hard constraint; diagnosis in {out_dir}/plan.json")
        for finding in doc["diagnosis"]:
            print(f"diagnosis: {finding['message']}", file=sys.stderr)
            for accelerator, reason in (finding.get("why") or {}).items():
                print(f"  {accelerator}: {reason}", file=sys.stderr)
    else:
        _log(f"no plan: the solver stopped without a solution ({doc['solver'].get('message')}); "
             "raise --time-limit or loosen --gap")


def cmd_validate(args) -> ExitCode:
    from placement.scenario import load_scenario
    from placement.solve import prepare

    loaded = load_scenario(args.scenario)
    table, cells, candidates = prepare(loaded)
    scenario = loaded.scenario
    print(f"ok: {args.scenario}: {len(scenario.workloads)} workloads, {len(cells)} buckets, "
          f"{len(scenario.models)} models, {len(scenario.accelerators)} accelerators, {len(scenario.pools)} pools, "
          f"{len(table)} profile rows ({int((table['source'] == 'measured').sum())} measured), "
          f"{len(candidates)} candidate (bucket, deployment) pairs")
    from placement.report import unasked_speed_notes

    for note in table.attrs.get("not_estimated", []) + unasked_speed_notes(scenario, candidates, planned=False):
        print(f"note: {note}")
    return ExitCode.OPTIMAL


def cmd_profile(args) -> ExitCode:
    from placement.profiles import demand_cells, lookup, profile_table
    from placement.scenario import load_scenario

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
    text = table.to_csv(index=False, lineterminator="\n")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = out.with_name(f".{out.name}.tmp")
        staging.write_text(text)
        os.replace(staging, out)
        _log(f"wrote {len(table)} profile rows to {out}")
    else:
        sys.stdout.write(text)
    return ExitCode.OPTIMAL


def cmd_schema(args) -> ExitCode:
    from placement.scenario import json_schema

    print(json.dumps(json_schema(), indent=2))
    return ExitCode.OPTIMAL


def cmd_check(args) -> ExitCode:
    from placement.checker import check_plan
    from placement.profiles import profile_table
    from placement.scenario import load_scenario

    loaded = load_scenario(args.scenario)
    path = Path(args.plan)
    if path.is_dir():
        path = path / "plan.json"
    try:
        plan = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError([Problem(str(path), "", "plan file not found")]) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
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


COMMANDS = {"solve": cmd_solve, "validate": cmd_validate, "profile": cmd_profile, "schema": cmd_schema,
            "check": cmd_check}

if __name__ == "__main__":
    sys.exit(main())

"""A 100-case price sweep of the speed-lanes example: serial, local worker processes, and Ray.

    python benchmarks/bench_study.py [--cases 100] [--modes serial,jobs2,ray]

Each mode writes a fresh study folder (every case's plan folder, the table, charts, study.md and
report.html), so the figures are end to end, as `placement study` runs. Results: RESULTS-studies.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--modes", default="serial,jobs2,ray")
    args = parser.parse_args()
    from placement.study import load_study, run_study

    work = Path(tempfile.mkdtemp(prefix="bench-study-"))
    study_file = work / "price-sweep.yaml"
    study_file.write_text(yaml.safe_dump({
        "scenario": str(ROOT / "inputs" / "speed-lanes" / "scenario.yaml"),
        "vary": [{"path": "pools[h200-reserved].price_per_chip_hour",
                  "range": {"from": 1.0, "to": 4.0, "steps": args.cases}}]}))
    study = load_study(study_file)
    print(f"{len(study.cases)} cases; {os.cpu_count()} CPUs")
    quiet = lambda message: None  # noqa: E731
    for mode in args.modes.split(","):
        started = time.perf_counter()
        if mode == "serial":
            result = run_study(study, work / mode, jobs=1, log=quiet)
        elif mode.startswith("jobs"):
            result = run_study(study, work / mode, jobs=int(mode[4:]), log=quiet)
        elif mode == "ray":
            import ray

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            ready = time.perf_counter()
            try:
                result = run_study(study, work / mode, ray=True, log=quiet)
            finally:
                ray.shutdown()
            print(f"  (ray.init took {ready - started:.1f} s of the total)")
        else:
            raise SystemExit(f"unknown mode {mode}")
        total = time.perf_counter() - started
        solve, cpu = result.table["seconds"].sum(), result.table["cpu_seconds"].sum()
        print(f"{mode:>7}: {total:6.1f} s wall, {total / len(study.cases) * 1000:5.0f} ms per case; "
              f"per-case times summed: {solve:.1f} s wall, {cpu:.1f} s CPU; "
              f"statuses {result.table['status'].value_counts().to_dict()}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

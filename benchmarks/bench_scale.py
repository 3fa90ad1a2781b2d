"""Whole-command time and memory as the instance grows (a benchmark, not a test).

Writes a synthetic scenario shaped like a provider's fleet (W workloads of 2 length buckets, 6 model
variants x 6 accelerators x 2 replica sizes, a prepaid, a reserved and an on-demand pool per accelerator,
a measured profile table), optionally over P periods and S slices (growth, diurnal shape, one-year
contracts), then runs `placement solve` on it as a user would, in a fresh process, and reads back the
seconds of every stage from plan.json and the peak memory of the process.

    python benchmarks/bench_scale.py --workloads 100 300 1000
    python benchmarks/bench_scale.py --workloads 1000 --periods 4 --slices 3
    python benchmarks/bench_scale.py --workloads 300 --backend pulp --engine cbc
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
MODELS, ACCELERATORS, SIZES, BUCKETS = 6, 6, (1, 2), 2
LENGTHS = [(1024, 256), (4096, 512), (16384, 1024), (65536, 2048)]


def write_instance(folder: Path, workloads: int, periods: int = 1, slices: int = 1, seed: int = 7,
                   fmt: str = "json") -> Path:
    """The instance's scenario file: JSON by default, as a pipeline emitting thousands of workloads would
    (PyYAML builds every node in Python: about 0.7 ms per workload against 0.06 ms for JSON); `fmt="yaml"`
    for the same document in YAML."""
    rng = np.random.default_rng(seed)
    models = [f"model{m}" for m in range(MODELS)]
    accelerators = [f"acc{a}" for a in range(ACCELERATORS)]
    doc: dict = {
        "name": f"bench-{workloads}w-{periods}p-{slices}s",
        "hours": 2190,
        "accelerators": [{"id": a} for a in accelerators],
        "models": [{"id": m, "quality": {"q": float(50 + 6 * i)}} for i, m in enumerate(models)],
        "workloads": [], "pools": [],
        "profiles": "profiles.csv",
        "options": {"headroom": 0.1, "baselines": False},
    }
    period_ids = [f"t{t + 1}" for t in range(periods)]
    slice_ids = ["peak", "day", "night", "weekend"][:slices]
    if periods > 1:
        doc["periods"] = [{"id": t, "hours": 2190} for t in period_ids]
    if slices > 1:
        weights = np.array([0.2, 0.45, 0.35, 0.1][:slices])
        weights = np.round(weights / weights.sum(), 6)
        weights[-1] = round(1 - weights[:-1].sum(), 6)
        doc["slices"] = [{"id": s, "weight": float(w)} for s, w in zip(slice_ids, weights)]
    for w in range(workloads):
        picks = rng.choice(len(LENGTHS), size=BUCKETS, replace=False)
        share = float(np.round(rng.uniform(0.2, 0.8), 6))
        workload = {
            "id": f"w{w}", "requests_per_s": float(np.round(rng.uniform(1, 40), 3)),
            "buckets": [{"input_tokens": LENGTHS[p][0], "output_tokens": LENGTHS[p][1], "share": s}
                        for p, s in zip(sorted(picks), (share, round(1 - share, 6)))],
            "slo": {"min_output_tokens_per_s": float(rng.choice([20, 50, 100]))},
            "quality": {"metric": "q", "min_mean": float(np.round(rng.uniform(55, 70), 2))},
        }
        if periods > 1:
            workload["growth"] = {t: float(np.round(1 + 0.1 * i * rng.uniform(0.5, 1.5), 3))
                                  for i, t in enumerate(period_ids)}
        if slices > 1:
            workload["shape"] = {s: float(np.round(f * rng.uniform(0.8, 1.2), 3))
                                 for s, f in zip(slice_ids, (1.6, 1.0, 0.5, 0.7))}
        doc["workloads"].append(workload)
    for a in accelerators:
        price = float(np.round(rng.uniform(1.5, 9), 2))
        reserved = {"id": f"{a}-reserved", "accelerator": a, "kind": "reserved", "max_chips": 65536,
                    "block_chips": 32, "price_per_chip_hour": round(price * 0.5, 2)}
        if periods > 1:
            reserved["term_periods"] = min(4, periods)
        doc["pools"] += [
            {"id": f"{a}-prepaid", "accelerator": a, "kind": "prepaid", "max_chips": int(rng.integers(0, 64))},
            reserved,
            {"id": f"{a}-on-demand", "accelerator": a, "kind": "on_demand", "max_chips": 65536,
             "price_per_chip_hour": price},
        ]
    rows = []
    for m_index, m in enumerate(models):
        for a in accelerators:
            scale = rng.uniform(0.5, 2.0)
            for chips in SIZES:
                for n_in, n_out in LENGTHS:
                    for batch in (1, 8, 64):
                        speed = scale * 400 / (1 + m_index) / (1 + batch / 32) * chips ** 0.3
                        ttft = n_in / (20000 * chips * scale)
                        rows.append((m, a, chips, n_in, n_out, batch / (ttft + n_out / speed), speed, ttft))
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["model", "accelerator", "chips_per_replica", "input_tokens", "output_tokens",
                                "requests_per_s", "output_tokens_per_s_per_user", "ttft_s"]).to_csv(
        folder / "profiles.csv", index=False, float_format="%.6g")
    path = folder / f"scenario.{fmt}"
    path.write_text(json.dumps(doc) if fmt == "json" else yaml.safe_dump(doc, sort_keys=False))
    return path


def run(workloads: int, periods: int, slices: int, backend: str, engine: str, time_limit: float,
        fmt: str = "json", threads: int | str = "auto") -> dict:
    with tempfile.TemporaryDirectory(prefix="placement-bench-") as tmp:
        scenario = write_instance(Path(tmp) / "in", workloads, periods, slices, fmt=fmt)
        command = [sys.executable, "-m", "placement", "solve", str(scenario), "--out", str(Path(tmp) / "plan"),
                   "--time-limit", str(time_limit), "--backend", backend, "--engine", engine, "--threads", str(threads)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        wall = time.perf_counter() - started
        peak_mb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
        plan_file = Path(tmp) / "plan" / "plan.json"
        if not plan_file.exists():
            return {"workloads": workloads, "periods": periods, "slices": slices, "backend": f"{backend}/{engine}",
                    "exit": done.returncode, "wall_s": round(wall, 1), "error": done.stderr.strip()[-200:]}
        plan = json.loads(plan_file.read_text())
    solver = plan["solver"]
    row = {"workloads": workloads, "periods": periods, "slices": slices, "backend": f"{backend}/{engine}",
           "threads": solver.get("threads", threads), "variables": solver["model"].get("variables"),
           "integers": solver["model"].get("integer_variables"),
           "rows": solver["model"].get("constraints"), "exit": done.returncode, "status": plan["status"],
           "objective": (plan["objective"] or {}).get("value"), "gap": (plan["objective"] or {}).get("gap"),
           "wall_s": round(wall, 1), "peak_mb": round(peak_mb)}
    row.update({f"{k}_s": round(v, 2) for k, v in solver.get("stages_s", {}).items()})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--periods", type=int, default=1)
    parser.add_argument("--slices", type=int, default=1)
    parser.add_argument("--backend", default="highspy")
    parser.add_argument("--engine", default="highs")
    parser.add_argument("--time-limit", type=float, default=300)
    parser.add_argument("--format", choices=["json", "yaml"], default="json", help="the scenario file's format")
    parser.add_argument("--threads", default="auto",
                        help="placement solve --threads: a number or auto (the CPUs available, at most 4)")
    args = parser.parse_args()
    rows = []
    for workloads in args.workloads:
        rows.append(run(workloads, args.periods, args.slices, args.backend, args.engine, args.time_limit,
                        args.format, args.threads))
        print(json.dumps(rows[-1]), flush=True)
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()

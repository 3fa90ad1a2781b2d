"""Measured operating points from the files teams already have: our profile CSV, `vllm bench serve`
result JSON (--save-result), GenAI-Perf and AIPerf exports (profile_export_genai_perf.json/.csv,
profile_export_aiperf.json/.csv). Each becomes profile rows (source=measured) that a scenario's
`profiles:` table takes as they are, and that `placement calibrate` fits efficiency factors to.

A benchmark run against one server measures one replica: the files do not say which accelerator or how
many chips the server used, so the caller gives them (or, for vLLM, `--metadata accelerator=h200
chips_per_replica=8` at benchmark time puts them in the file).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from placement.errors import InputError, Problem
from placement.files import MAX_TABLE_BYTES, read_text_bounded
from placement.scenario import PROFILE_COLUMNS, empty_profile_frame, read_profile_table


@dataclass(frozen=True)
class Deployment:
    """What a benchmark file does not carry: where it ran. None fields fall back to the file's metadata."""

    model: str | None = None
    accelerator: str | None = None
    chips_per_replica: int | None = None
    concurrency: int | None = None


def import_measurements(path: str | Path, deployment: Deployment = Deployment()) -> pd.DataFrame:
    """Profile rows (PROFILE_COLUMNS, source measured) from one file of any supported format."""
    path = Path(path)
    label = str(path)
    text = read_text_bounded(path, label, MAX_TABLE_BYTES, "measurement file")  # regular, bounded, UTF-8
    kind = detect_format(path, text)
    if kind == "profile-csv":
        frame, problems = read_profile_table(text, label)
        if problems:
            raise InputError(problems)
        frame = frame.copy()
        frame["source"] = "measured"
        frame["output_tokens_per_s"] = frame["output_tokens_per_s"].fillna(frame["requests_per_s"] * frame["output_tokens"])
        return frame
    if kind == "vllm-json":
        record = _vllm_row(json.loads(text), deployment, label)
    elif kind == "perf-json":
        record = _perf_json_row(json.loads(text), deployment, label)
    else:
        record = _perf_csv_row(text, deployment, label)
    record["note"] = f"imported from {path.name} ({kind})"
    return _frame([record])


def detect_format(path: Path, text: str) -> str:
    """profile-csv | perf-csv (GenAI-Perf / AIPerf) | vllm-json | perf-json (GenAI-Perf / AIPerf)."""
    label = str(path)
    if path.suffix.lower() == ".csv" or not text.lstrip().startswith("{"):
        header = next(csv.reader(io.StringIO(text)), [])
        header = [h.strip() for h in header]
        if {"model", "accelerator", "chips_per_replica"} <= set(header):
            return "profile-csv"
        if header and header[0] == "Metric":
            return "perf-csv"
        raise InputError.single(label, "header", "not a known measurement table: expected our profile CSV (model, "
                                "accelerator, chips_per_replica, ...) or a GenAI-Perf / AIPerf export (Metric, avg, ...)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError.single(label, f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise InputError.single(label, "", "expected a JSON object")
    if isinstance(data.get("request_throughput"), (int, float)) and "output_throughput" in data:
        return "vllm-json"
    if isinstance(data.get("request_throughput"), dict) and isinstance(data.get("time_to_first_token"), dict):
        return "perf-json"
    raise InputError.single(label, "", "not a known benchmark result: expected `vllm bench serve --save-result` JSON "
                            "(request_throughput, output_throughput, mean_ttft_ms, ...) or a GenAI-Perf / AIPerf "
                            "profile export (request_throughput: {avg}, time_to_first_token: {avg}, ...)")


def _need(value: Any, label: str, field: str, fix: str) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        raise InputError.single(label, field, f"missing; {fix}")
    return value


def _positive(value: Any, label: str, field: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise InputError.single(label, field, f"must be a positive number, got {value!r}")
    return float(value)


def _where(deployment: Deployment, meta: dict[str, Any], label: str) -> dict[str, Any]:
    model = deployment.model or meta.get("model")
    accelerator = deployment.accelerator or meta.get("accelerator")
    chips = deployment.chips_per_replica or meta.get("chips_per_replica")
    _need(model, label, "model", "give --model (the scenario's or catalog's model id)")
    _need(accelerator, label, "accelerator", "give --accelerator (the accelerator id the server ran on)")
    _need(chips, label, "chips_per_replica", "give --chips (chips of the one replica the benchmark hit)")
    try:
        chips = int(chips)
    except (TypeError, ValueError):
        raise InputError.single(label, "chips_per_replica", f"must be a whole number, got {chips!r}") from None
    if chips < 1:
        raise InputError.single(label, "chips_per_replica", f"must be >= 1, got {chips}")
    return {"model": str(model), "accelerator": str(accelerator), "chips_per_replica": chips}


def _vllm_row(data: dict[str, Any], deployment: Deployment, label: str) -> dict[str, Any]:
    """vllm bench serve / benchmarks/benchmark_serving.py --save-result: totals, throughputs and *_ms stats.
    `--metadata accelerator=... chips_per_replica=...` lands at the top level of the same file."""
    completed = _positive(data.get("completed"), label, "completed")
    concurrency = deployment.concurrency or data.get("max_concurrency") or _littles_law(
        data.get("request_throughput"), data.get("mean_e2el_ms"))
    meta = {"model": data.get("model_id"), "accelerator": data.get("accelerator"),
            "chips_per_replica": data.get("chips_per_replica")}
    tpot = _positive(data.get("mean_tpot_ms"), label, "mean_tpot_ms")
    return {
        **_where(deployment, meta, label),
        "input_tokens": max(1, round(_positive(data.get("total_input_tokens"), label, "total_input_tokens") / completed)),
        "output_tokens": max(1, round(_positive(data.get("total_output_tokens"), label, "total_output_tokens") / completed)),
        "requests_per_s": _positive(data.get("request_throughput"), label, "request_throughput"),
        "output_tokens_per_s": _positive(data.get("output_throughput"), label, "output_throughput"),
        "output_tokens_per_s_per_user": 1000.0 / tpot,
        "ttft_s": _positive(data.get("mean_ttft_ms"), label, "mean_ttft_ms") / 1000.0,
        "batch_size": float(concurrency) if concurrency else math.nan,
    }


def _littles_law(requests_per_s: Any, latency_ms: Any) -> float | None:
    """Requests in flight when a run states no concurrency (a request-rate run): throughput x mean latency.
    A rate-limited run is not max load, so its throughput must be compared at this concurrency."""
    if isinstance(requests_per_s, (int, float)) and isinstance(latency_ms, (int, float)) and requests_per_s > 0 \
            and latency_ms > 0:
        return max(1.0, round(requests_per_s * latency_ms / 1000.0))
    return None


def _avg(data: dict[str, Any], key: str, label: str, required: bool = True) -> float | None:
    entry = data.get(key)
    if not isinstance(entry, dict) or "avg" not in entry:
        if required:
            raise InputError.single(label, key, "missing (expected {unit, avg, ...}); is this a complete profile export?")
        return None
    return _positive(entry["avg"], label, f"{key}.avg")


def _perf_json_row(data: dict[str, Any], deployment: Deployment, label: str) -> dict[str, Any]:
    """GenAI-Perf profile_export_genai_perf.json / AIPerf profile_export_aiperf.json: metrics as
    {unit, avg, p50, ...}; input_config names the model (model / endpoint.model_names) and the
    concurrency (concurrency / loadgen.concurrency)."""
    config = data.get("input_config") if isinstance(data.get("input_config"), dict) else {}
    endpoint = config.get("endpoint") if isinstance(config.get("endpoint"), dict) else {}
    loadgen = config.get("loadgen") if isinstance(config.get("loadgen"), dict) else {}
    names = endpoint.get("model_names") or config.get("model") or []
    latency = data.get("request_latency") if isinstance(data.get("request_latency"), dict) else {}
    throughput = data.get("request_throughput") if isinstance(data.get("request_throughput"), dict) else {}
    concurrency = (deployment.concurrency or loadgen.get("concurrency") or config.get("concurrency")
                   or _littles_law(throughput.get("avg"), latency.get("avg")))
    meta = {"model": names[0] if isinstance(names, list) and names else None}
    per_user = _avg(data, "output_token_throughput_per_user", label, required=False)
    if per_user is None:
        per_user = 1000.0 / _avg(data, "inter_token_latency", label)
    return {
        **_where(deployment, meta, label),
        "input_tokens": max(1, round(_avg(data, "input_sequence_length", label))),
        "output_tokens": max(1, round(_avg(data, "output_sequence_length", label))),
        "requests_per_s": _avg(data, "request_throughput", label),
        "output_tokens_per_s": _avg(data, "output_token_throughput", label),
        "output_tokens_per_s_per_user": per_user,
        "ttft_s": _avg(data, "time_to_first_token", label) / 1000.0,
        "batch_size": float(concurrency) if concurrency else math.nan,
    }


PERF_CSV_METRICS = {
    "time to first token": "ttft_ms",
    "inter token latency": "itl_ms",
    "input sequence length": "input_tokens",
    "output sequence length": "output_tokens",
    "request throughput": "requests_per_s",
    "output token throughput per user": "per_user",
    "output token throughput": "output_tokens_per_s",
}
"""Row names of GenAI-Perf / AIPerf CSV exports (unit in parentheses stripped, case folded)."""


def _perf_csv_row(text: str, deployment: Deployment, label: str) -> dict[str, Any]:
    """GenAI-Perf / AIPerf CSV: sections separated by blank lines, `Metric,avg,...` then `Metric,Value`."""
    found: dict[str, float] = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 2 or row[0].strip() in ("", "Metric"):
            continue
        name = row[0].split("(")[0].strip().lower()
        key = PERF_CSV_METRICS.get(name)
        if key is None or key in found:
            continue
        try:
            found[key] = float(row[1].replace(",", ""))
        except ValueError:
            raise InputError.single(label, row[0], f"{row[1]!r} is not a number") from None
    for key, metric in (("ttft_ms", "Time To First Token (ms)"), ("input_tokens", "Input Sequence Length"),
                        ("output_tokens", "Output Sequence Length"), ("requests_per_s", "Request Throughput"),
                        ("output_tokens_per_s", "Output Token Throughput")):
        _need(found.get(key), label, metric, "the export lacks this row; re-export with the default metrics")
    per_user = found.get("per_user") or (1000.0 / _need(found.get("itl_ms"), label, "Inter Token Latency (ms)",
                                                         "the export lacks this row"))
    return {
        **_where(deployment, {}, label),
        "input_tokens": max(1, round(found["input_tokens"])),
        "output_tokens": max(1, round(found["output_tokens"])),
        "requests_per_s": found["requests_per_s"],
        "output_tokens_per_s": found["output_tokens_per_s"],
        "output_tokens_per_s_per_user": per_user,
        "ttft_s": found["ttft_ms"] / 1000.0,
        "batch_size": float(deployment.concurrency) if deployment.concurrency else math.nan,
    }


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = empty_profile_frame().reindex(range(len(records)))
    for column in PROFILE_COLUMNS:
        frame[column] = [r.get(column, math.nan) for r in records]
    frame["source"] = "measured"
    for column in ("chips_per_replica", "input_tokens", "output_tokens"):
        frame[column] = frame[column].astype("int64")
    return frame


def import_many(paths: list[str], deployment: Deployment = Deployment()) -> pd.DataFrame:
    """Rows of several files; every file's problems are reported together."""
    frames, problems = [], []
    for path in paths:
        try:
            frames.append(import_measurements(path, deployment))
        except InputError as exc:
            problems += exc.problems
    if problems:
        raise InputError(problems)
    if not frames:
        raise InputError([Problem("command line", "MEASUREMENTS", "give at least one measurement file")])
    return pd.concat(frames, ignore_index=True)

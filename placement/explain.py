"""Why a deployment can or cannot serve a demand cell, in numbers a person can act on.

Used by summary.md ("why the split") and by the infeasibility diagnosis ("why no plan"). One row
per (cell, deployment) with the first reason that rules it out: model not allowed or below the
quality floor, context beyond the model or beyond what the deployment holds, no operating point
meeting the SLO (best speed vs asked), or no pool to run on.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from placement.profiles import DEPLOYMENT_KEY, model_eligibility
from placement.scenario import Scenario

MAX_PAIRS = 200_000  # beyond this, explanations are skipped (they are for people, not for giant sweeps)


def candidate_reasons(scenario: Scenario, table: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, deployment in the table): `reason` is '' when the deployment can serve."""
    deployments = table[DEPLOYMENT_KEY].drop_duplicates().sort_values(DEPLOYMENT_KEY).reset_index(drop=True)
    columns = ["cell", "workload", "bucket", *DEPLOYMENT_KEY, "kind", "reason", "replica_requests_per_s",
               "best_speed"]
    if len(deployments) * len(cells) > MAX_PAIRS or deployments.empty:
        return pd.DataFrame(columns=columns)
    eligibility = model_eligibility(scenario).set_index(["workload", "model"])["reason"]
    pooled: dict[str, int] = {}  # largest pool per accelerator
    for pool in scenario.pools:
        pooled[pool.accelerator] = max(pooled.get(pool.accelerator, 0), pool.max_chips)
    context = {m.id: m.max_context_tokens for m in scenario.models}
    workloads = {w.id: w for w in scenario.workloads}
    groups = {key: frame for key, frame in table.groupby(DEPLOYMENT_KEY, sort=True)}
    records = []
    for cell in cells.itertuples():
        workload = workloads[cell.workload]
        for model, accelerator, chips in deployments.itertuples(index=False, name=None):
            rows = groups[(model, accelerator, chips)]
            facts = _reason(cell, workload, model, accelerator, chips, rows, eligibility, pooled, context)
            records.append((cell.Index, cell.workload, cell.bucket, model, accelerator, chips, *facts))
    return pd.DataFrame.from_records(records, columns=columns)


def _reason(cell, workload, model, accelerator, chips, rows, eligibility, pooled, context):
    """(kind, reason, best R, best per-user speed at the bucket's lengths): kind is '' when the
    deployment can serve, else quality_floor, context, slo or supply."""
    nan = float("nan")
    ineligible = eligibility.get((workload.id, model), "")
    if ineligible:
        return "quality_floor", f"model {model}: {ineligible}", 0.0, nan
    length = cell.input_tokens + cell.output_tokens
    limit = context.get(model)
    if limit is not None and length > limit:
        return "context", f"context {length:,} tokens > {model} max_context_tokens {limit:,}", 0.0, nan
    covering = rows[(rows["input_tokens"] >= cell.input_tokens) & (rows["output_tokens"] >= cell.output_tokens)]
    if covering.empty:
        serving = rows[rows["requests_per_s"] > 0]
        longest = int(serving["input_tokens"].max()) if len(serving) else 0
        return "context", (f"no operating point covers {cell.input_tokens:,} input tokens "
                           f"(longest served: {longest:,})"), 0.0, nan
    point = covering.sort_values(["input_tokens", "output_tokens"], kind="mergesort").iloc[0]
    at_point = covering[(covering["input_tokens"] == point["input_tokens"]) &
                        (covering["output_tokens"] == point["output_tokens"])]
    alive = at_point[at_point["requests_per_s"] > 0]
    if alive.empty:
        notes = [n for n in at_point.get("note", pd.Series(dtype=object)).dropna().unique() if n]
        why = f": {notes[0]}" if notes else ""
        return "context", f"cannot serve {cell.input_tokens:,} input tokens{why}", 0.0, nan
    speed = alive["output_tokens_per_s_per_user"]
    ttft = alive["ttft_s"]
    fastest = float(speed.max()) if speed.notna().any() else nan
    slo = workload.slo
    ok = np.ones(len(alive), dtype=bool)
    parts = []
    if slo.min_output_tokens_per_s is not None:
        fast = (speed.isna() | (speed >= slo.min_output_tokens_per_s)).to_numpy()
        if not fast.any():
            parts.append(f"best per-user speed {speed.max():,.0f} tok/s < asked {slo.min_output_tokens_per_s:,.0f}")
        ok &= fast
    if slo.max_ttft_s is not None:
        quick = (ttft.isna() | (ttft <= slo.max_ttft_s)).to_numpy()
        if not quick.any():
            parts.append(f"best TTFT {ttft.min():.2f} s > asked {slo.max_ttft_s:g} s")
        ok &= quick
    if slo.max_e2e_s is not None:
        e2e = (ttft.fillna(0.0) + (cell.output_tokens / speed).fillna(0.0)).to_numpy()
        fits = e2e <= slo.max_e2e_s
        if not fits.any():
            parts.append(f"best end-to-end {e2e.min():.2f} s > asked {slo.max_e2e_s:g} s")
        ok &= fits
    if not ok.any():
        return "slo", "; ".join(parts) or "no operating point meets every SLO at once", 0.0, fastest
    best = float(alive["requests_per_s"].to_numpy()[ok].max())
    if pooled.get(accelerator, 0) < chips:
        have = pooled.get(accelerator, 0)
        return "supply", f"no pool of {accelerator} holds a {chips}-chip replica (largest pool: {have} chips)", best, fastest
    return "", "", best, fastest


def accelerator_verdicts(reasons: pd.DataFrame) -> pd.DataFrame:
    """Per (cell, accelerator): can any deployment serve, else the reason of the closest one."""
    if reasons.empty:
        return pd.DataFrame(columns=["cell", "workload", "bucket", "accelerator", "can_serve", "reason"])
    frame = reasons.assign(can_serve=reasons["reason"] == "")
    frame = frame.sort_values(["cell", "accelerator", "can_serve", "model", "chips_per_replica"],
                              ascending=[True, True, False, True, True], kind="mergesort")
    first = frame.drop_duplicates(["cell", "accelerator"])
    return first[["cell", "workload", "bucket", "accelerator", "can_serve", "reason"]].reset_index(drop=True)


def cost_per_million_requests(price_per_chip_hour: float, chips: int, requests_per_s: float) -> float:
    """Marginal cost of a request served on a paid pool at full utilization, per million requests."""
    if requests_per_s <= 0:
        return math.inf
    return price_per_chip_hour * chips / (requests_per_s * 3600) * 1e6

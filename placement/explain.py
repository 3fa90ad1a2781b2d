"""Why a deployment can or cannot serve a demand cell, in numbers a person can act on.

Used by summary.md ("why the split") and by the infeasibility diagnosis ("why no plan"). One row
per (cell, deployment) with the first reason that rules it out: model not allowed or below the
quality floor, context beyond the model or beyond what the deployment holds, no operating point
meeting the SLO (best speed vs asked), or no pool to run on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from placement.profiles import DEPLOYMENT_KEY, meets_slo, model_eligibility, rows_at_nearest_point
from placement.scenario import Scenario


def candidate_reasons(scenario: Scenario, table: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, deployment in the table): `kind` and `reason` are '' when it can serve.

    Vectorized over all pairs (a fleet-sized scenario has hundreds of thousands); the first reason
    that applies wins, in this order: quality_floor (whitelist, per-request floor), context (the
    model's limit, no covering operating point, or only zero rows there), slo (which part, best value
    vs asked), supply (no pool holds one replica). `cell` is the index label of `cells`.
    """
    columns = ["cell", "workload", "bucket", *DEPLOYMENT_KEY, "kind", "reason", "replica_requests_per_s",
               *SLO_FACTS]
    deployments = table[DEPLOYMENT_KEY].drop_duplicates().sort_values(DEPLOYMENT_KEY, kind="mergesort")
    if deployments.empty or cells.empty:
        return pd.DataFrame(columns=columns)
    deployments = deployments.reset_index(drop=True).reset_index(names="deployment")
    pairs = cells.reset_index(drop=True).assign(cell=np.arange(len(cells))).merge(deployments, how="cross")
    pairs = pairs.merge(model_eligibility(scenario)[["workload", "model", "reason"]], on=["workload", "model"],
                        how="left").rename(columns={"reason": "ineligible"})
    at_point = _point_facts(rows_at_nearest_point(cells, table))
    pairs = pairs.merge(at_point, on=["cell", "deployment"], how="left")
    serving = table[table["requests_per_s"] > 0]
    longest = serving.groupby(DEPLOYMENT_KEY)["input_tokens"].max().rename("longest_served")
    pairs = pairs.merge(longest, left_on=DEPLOYMENT_KEY, right_index=True, how="left")
    largest_pool: dict[str, int] = {}
    for pool in scenario.pools:
        largest_pool[pool.accelerator] = max(largest_pool.get(pool.accelerator, 0), pool.peak_chips)
    limit = pairs["model"].map({m.id: m.max_context_tokens or np.inf for m in scenario.models}).astype(float)
    pairs["kinds"], pairs["reason"] = _first_reason(pairs, limit, largest_pool)
    pairs["cell"] = cells.index.to_numpy()[pairs["cell"].to_numpy()]
    pairs["replica_requests_per_s"] = pairs["best_ok"].fillna(0.0)
    for part in ("speed_ok", "ttft_ok", "e2e_ok"):  # pairs with no covering point meet nothing
        pairs[part] = pairs[part].eq(True)
    return pairs.rename(columns={"kinds": "kind"})[columns]


# What the rows at a pair's nearest covering point can reach, per SLO part (for the diagnosis headline).
SLO_FACTS = ["speed_ok", "ttft_ok", "e2e_ok", "best_speed", "best_ttft", "best_e2e"]


def _point_facts(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (cell, deployment) at the nearest covering point: what the rows there can and cannot do."""
    alive = rows["replica_requests_per_s"] > 0
    speed, ttft = rows["output_tokens_per_s_per_user"], rows["ttft_s"]
    e2e = ttft.fillna(0.0) + (rows["output_tokens"] / speed).fillna(0.0)
    ask_speed, ask_ttft, ask_e2e = rows["min_output_tokens_per_s"], rows["max_ttft_s"], rows["max_e2e_s"]
    facts = pd.DataFrame({
        "cell": rows["cell"], "deployment": rows["deployment"],
        "any_alive": alive,
        "speed_ok": alive & (speed.isna() | ask_speed.isna() | (speed >= ask_speed)),
        "ttft_ok": alive & (ttft.isna() | ask_ttft.isna() | (ttft <= ask_ttft)),
        "e2e_ok": alive & (ask_e2e.isna() | (e2e <= ask_e2e)),
        "best_speed": speed.where(alive),
        "best_ttft": ttft.where(alive),
        "best_e2e": e2e.where(alive),
        "best_ok": rows["replica_requests_per_s"].where(alive & meets_slo(rows)),
        "zero_note": rows.get("note", pd.Series(None, index=rows.index, dtype=object)).where(~alive),
    })
    return facts.groupby(["cell", "deployment"], sort=False).agg(
        any_alive=("any_alive", "any"), speed_ok=("speed_ok", "any"), ttft_ok=("ttft_ok", "any"),
        e2e_ok=("e2e_ok", "any"), best_speed=("best_speed", "max"), best_ttft=("best_ttft", "min"),
        best_e2e=("best_e2e", "min"), best_ok=("best_ok", "max"), zero_note=("zero_note", "first"),
        covered=("any_alive", "size"),
    ).reset_index()


def _first_reason(pairs: pd.DataFrame, limit: pd.Series, largest_pool: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """The first reason each pair cannot serve ('' where it can), by masks in the order of the rules; the
    sentence is formatted only for the pairs a rule catches (a per-pair Python loop took 3.8 s of 6.8 s
    at 3,000 workloads)."""
    n = len(pairs)
    kinds = np.full(n, "", dtype=object)
    reasons = np.full(n, "", dtype=object)
    open_ = np.ones(n, dtype=bool)

    def rule(kind: str, mask, sentence) -> None:
        caught = np.flatnonzero(open_ & np.asarray(mask, dtype=bool))
        open_[caught] = False
        kinds[caught] = kind
        reasons[caught] = [sentence(p) for p in pairs.iloc[caught].itertuples(index=False)] if len(caught) else []

    limit = np.asarray(limit, dtype=float)
    pairs = pairs.assign(max_context=limit)
    length = (pairs["input_tokens"] + pairs["output_tokens"]).to_numpy(dtype=float)
    ineligible = pairs["ineligible"].fillna("").astype(str).to_numpy()
    rule("quality_floor", ineligible != "", lambda p: f"model {p.model}: {p.ineligible}")
    rule("context", length > limit, lambda p: (f"context {p.input_tokens + p.output_tokens:,} tokens > {p.model} "
                                               f"max_context_tokens {p.max_context:,.0f}"))
    covered = pairs["covered"].to_numpy(dtype=float, na_value=np.nan)
    rule("context", ~(covered > 0), lambda p: (
        f"no operating point covers {p.input_tokens:,} input tokens (longest served: "
        f"{0 if p.longest_served != p.longest_served else int(p.longest_served):,})"))
    rule("context", ~pairs["any_alive"].fillna(False).to_numpy(dtype=bool), lambda p: (
        f"cannot serve {p.input_tokens:,} input tokens"
        + (f": {p.zero_note}" if isinstance(p.zero_note, str) and p.zero_note else "")))
    rule("slo", pairs["best_ok"].isna().to_numpy(), _slo_sentence)
    have = pairs["accelerator"].map(largest_pool).fillna(0).to_numpy(dtype=float)
    rule("supply", have < pairs["chips_per_replica"].to_numpy(dtype=float), lambda p: (
        f"no pool of {p.accelerator} holds a {p.chips_per_replica}-chip replica "
        f"(largest pool: {largest_pool.get(p.accelerator, 0)} chips)"))
    return kinds, reasons


def _slo_sentence(p) -> str:
    """Which SLO parts no row at the nearest covering point meets, with the best value against the ask."""
    parts = []
    if not p.speed_ok:
        parts.append(f"best per-user speed {p.best_speed:,.0f} tok/s < asked {p.min_output_tokens_per_s:,.0f}")
    if not p.ttft_ok:
        parts.append(f"best TTFT {p.best_ttft:.2f} s > asked {p.max_ttft_s:g} s")
    if not p.e2e_ok:
        parts.append(f"best end-to-end {p.best_e2e:.2f} s > asked {p.max_e2e_s:g} s")
    return "; ".join(parts) or "no operating point meets every SLO at once"


def accelerator_verdicts(reasons: pd.DataFrame) -> pd.DataFrame:
    """Per (cell, accelerator): can any deployment serve, else the reason of the closest one."""
    if reasons.empty:
        return pd.DataFrame(columns=["cell", "workload", "bucket", "accelerator", "can_serve", "reason"])
    frame = reasons.assign(can_serve=reasons["reason"] == "")
    frame = frame.sort_values(["cell", "accelerator", "can_serve", "model", "chips_per_replica"],
                              ascending=[True, True, False, True, True], kind="mergesort")
    first = frame.drop_duplicates(["cell", "accelerator"])
    return first[["cell", "workload", "bucket", "accelerator", "can_serve", "reason"]].reset_index(drop=True)

"""Operating points: the profile table a solve uses, and the lookup rule of scenario.md.

The table is the measured rows of the scenario plus, for (model, accelerator) pairs with no
measured row, rows from the built-in estimator. The lookup picks, per demand cell and deployment,
the nearest covering lengths, filters by the workload's SLO and keeps the best requests/s.
Everything is vectorized over (cell, deployment) pairs.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict

import numpy as np
import pandas as pd

from placement.errors import InputError
from placement.scenario import LoadedScenario, Scenario, Workload, empty_profile_frame

DEPLOYMENT_KEY = ["model", "accelerator", "chips_per_replica"]


def demand_cells(scenario: Scenario) -> pd.DataFrame:
    """One row per (workload, bucket): lengths, rate, SLO and quality columns. Sorted as in the scenario."""
    records = []
    for workload in scenario.workloads:
        slo = workload.slo
        for b, bucket in enumerate(workload.buckets):
            records.append(
                {
                    "workload": workload.id,
                    "bucket": b,
                    "input_tokens": bucket.input_tokens,
                    "output_tokens": bucket.output_tokens,
                    "share": bucket.share,
                    "requests_per_s": workload.requests_per_s * bucket.share,
                    "min_output_tokens_per_s": _or_nan(slo.min_output_tokens_per_s),
                    "max_ttft_s": _or_nan(slo.max_ttft_s),
                    "max_e2e_s": _or_nan(slo.max_e2e_s),
                }
            )
    return pd.DataFrame.from_records(records)


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else float(value)


def bucket_lengths(scenario: Scenario) -> pd.DataFrame:
    """Distinct (input_tokens, output_tokens) over all buckets: where estimated rows are needed."""
    cells = demand_cells(scenario)
    return cells[["input_tokens", "output_tokens"]].drop_duplicates().sort_values(["input_tokens", "output_tokens"])


TABLE_CACHE_SIZE = 16
_TABLE_CACHE: OrderedDict[str, pd.DataFrame] = OrderedDict()
TABLE_CACHE_STATS = {"hits": 0, "misses": 0, "lookup_hits": 0, "lookup_misses": 0}


def profile_table(loaded: LoadedScenario) -> pd.DataFrame:
    """Measured rows (source=measured) plus estimated rows, measured rows winning.

    Measured rows override estimated rows of the same (model, accelerator, chips_per_replica): a
    deployment with any measured row keeps only its measured rows; the estimator still speaks for
    the chip counts nobody measured.

    Cached per process, keyed by a hash of everything the table depends on (models, accelerators,
    the pooled accelerators, measured rows, bucket lengths): the cases of a study that vary prices,
    rates or caps pay for the estimator once.
    """
    key = profile_table_key(loaded)
    cached = _TABLE_CACHE.get(key)
    if cached is not None:
        TABLE_CACHE_STATS["hits"] += 1
        _TABLE_CACHE.move_to_end(key)
        return cached.copy()
    TABLE_CACHE_STATS["misses"] += 1
    table = _build_profile_table(loaded)
    _TABLE_CACHE[key] = table.copy()
    while len(_TABLE_CACHE) > TABLE_CACHE_SIZE:
        _TABLE_CACHE.popitem(last=False)
    return table


def profile_table_key(loaded: LoadedScenario) -> str:
    """sha256 of what the profile table depends on, and nothing else (not rates, prices or caps)."""
    scenario = loaded.scenario
    pooled = sorted({pool.accelerator for pool in scenario.pools if pool.peak_chips > 0})
    lengths = bucket_lengths(scenario).to_numpy().tolist()
    document = {"models": [m.model_dump(mode="json") for m in scenario.models],
                "accelerators": [a.model_dump(mode="json") for a in scenario.accelerators],
                "pooled": pooled, "lengths": lengths, "estimates": scenario.options.estimates}
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode())
    digest.update(loaded.profiles.to_json(orient="split", double_precision=15).encode())
    return digest.hexdigest()


def _build_profile_table(loaded: LoadedScenario) -> pd.DataFrame:
    measured = loaded.profiles.copy()
    measured["source"] = measured["source"].where(measured["source"].fillna("") != "", "measured")
    estimated, skipped = estimated_rows(loaded.scenario)
    if len(estimated) and len(measured):
        keys = measured[DEPLOYMENT_KEY].drop_duplicates()
        marked = estimated.merge(keys, on=DEPLOYMENT_KEY, how="left", indicator=True)
        estimated = estimated[(marked["_merge"] == "left_only").to_numpy()]
    table = pd.concat([measured, estimated], ignore_index=True) if len(estimated) else measured
    table = table.astype({"chips_per_replica": "int64", "input_tokens": "int64", "output_tokens": "int64"})
    table = apply_estimates_choice(table, loaded.scenario.options.estimates)
    table = table.sort_values(
        [*DEPLOYMENT_KEY, "input_tokens", "output_tokens", "requests_per_s"], kind="mergesort"
    ).reset_index(drop=True)
    table.attrs["not_estimated"] = skipped
    table.attrs["estimates"] = loaded.scenario.options.estimates
    return table


def apply_estimates_choice(table: pd.DataFrame, estimates: str) -> pd.DataFrame:
    """`options.estimates: conservative`: rows with bands (estimated rows) take their low throughput and
    per-user speed and their high TTFT; measured rows and `central` keep the central values."""
    if estimates != "conservative" or table.empty:
        return table
    table = table.copy()
    banded = table["requests_per_s_low"].notna()
    for column, band in (("requests_per_s", "requests_per_s_low"),
                         ("output_tokens_per_s_per_user", "output_tokens_per_s_per_user_low"),
                         ("ttft_s", "ttft_s_high")):
        table[column] = table[band].where(table[band].notna(), table[column])
    table.loc[banded, "output_tokens_per_s"] = table.loc[banded, "requests_per_s"] * table.loc[banded, "output_tokens"]
    return table


def estimated_rows(scenario: Scenario) -> tuple[pd.DataFrame, list[str]]:
    """Rows from the estimator for every (model, accelerator) pair that has a pool.

    A pair whose specs the estimator lacks is skipped, not an error: the scenario may simply not
    offer that pair, or measure it. The skipped pairs and what is missing are returned for validate
    and the plan.
    """
    try:
        from placement.estimator import estimate_profile
    except ImportError:  # the estimator is optional for scenarios that measure everything
        return empty_profile_frame(), []
    pooled = {pool.accelerator for pool in scenario.pools if pool.peak_chips > 0}
    lengths = bucket_lengths(scenario)
    frames, skipped = [], []
    for model in scenario.models:
        for accelerator in scenario.accelerators:
            if accelerator.id not in pooled:
                continue
            try:
                frames.append(estimate_profile(model, accelerator, lengths))
            except InputError as exc:
                missing = "; ".join(p.message if not p.field else f"{p.field}: {p.message}" for p in exc.problems)
                skipped.append(f"{model.id} on {accelerator.id}: not estimated ({missing})")
    frames = [f for f in frames if len(f)]
    return (pd.concat(frames, ignore_index=True) if frames else empty_profile_frame()), skipped


LOOKUP_INPUTS = ["workload", "bucket", "input_tokens", "output_tokens", "min_output_tokens_per_s", "max_ttft_s",
                 "max_e2e_s"]
_LOOKUP_CACHE: OrderedDict[bytes, pd.DataFrame] = OrderedDict()


def lookup(cells: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Best replica throughput R for every (cell, deployment) with a covering, SLO-meeting row.

    Returns one row per pair with R > 0: cell, workload, bucket, the deployment key, R
    (`replica_requests_per_s`), and the chosen row's lengths, per-user speed, TTFT and source.

    Cached per process by a hash of what it reads (the cells' lengths and SLOs, the table), so
    study cases that vary rates, prices or caps do not repeat it.
    """
    if not set(LOOKUP_INPUTS) <= set(cells.columns):
        return _lookup(cells, table)
    digest = hashlib.sha256(pd.util.hash_pandas_object(cells[LOOKUP_INPUTS], index=True).to_numpy().tobytes())
    digest.update(pd.util.hash_pandas_object(table, index=True).to_numpy().tobytes())
    digest.update(",".join(map(str, table.columns)).encode())
    key = digest.digest()
    cached = _LOOKUP_CACHE.get(key)
    if cached is None:
        TABLE_CACHE_STATS["lookup_misses"] += 1
        cached = _LOOKUP_CACHE[key] = _lookup(cells, table)
        while len(_LOOKUP_CACHE) > TABLE_CACHE_SIZE:
            _LOOKUP_CACHE.popitem(last=False)
    else:
        TABLE_CACHE_STATS["lookup_hits"] += 1
        _LOOKUP_CACHE.move_to_end(key)
    return cached.copy()


LOOKUP_KEY = ["input_tokens", "output_tokens", "min_output_tokens_per_s", "max_ttft_s", "max_e2e_s"]


def _lookup(cells: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """The lookup depends on a cell only through its lengths and SLO (LOOKUP_KEY): it runs once per distinct
    key (a dozen where there are thousands of cells), and each cell takes its key's arcs by position."""
    if not set(LOOKUP_KEY) <= set(cells.columns) or cells.empty:
        return _lookup_cells(cells, table)
    key_of_cell = cells.groupby(LOOKUP_KEY, sort=True, dropna=False).ngroup().to_numpy()
    first = np.unique(key_of_cell, return_index=True)[1]
    keys = cells.iloc[first][LOOKUP_KEY].reset_index(drop=True)
    keys["workload"], keys["bucket"] = "", 0
    per_key = _lookup_cells(keys, table)                               # sorted by (key, deployment key)
    key = per_key["cell"].to_numpy()
    starts = np.searchsorted(key, np.arange(len(keys)))
    counts = np.bincount(key, minlength=len(keys))
    n = counts[key_of_cell]                                            # arcs of each cell
    cell = np.repeat(np.arange(len(cells)), n)
    offset = np.arange(len(cell)) - np.repeat(np.cumsum(n) - n, n)
    rows = starts[key_of_cell][cell] + offset                          # each cell's arcs, in its key's order
    out = {name: per_key[name].to_numpy()[rows] for name in ARC_COLUMNS if name not in ("cell", "workload", "bucket")}
    out["cell"] = cell.astype("int64")
    out["workload"] = cells["workload"].to_numpy()[cell]
    out["bucket"] = cells["bucket"].to_numpy()[cell].astype("int64")
    for name in ("model", "accelerator", "source"):        # as the per-cell lookup types them
        out[name] = pd.Series(out[name], dtype=object)
    return pd.DataFrame({name: out[name] for name in ARC_COLUMNS})


def _lookup_cells(cells: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    candidates = rows_at_nearest_point(cells, table)
    candidates = candidates[meets_slo(candidates) & (candidates["replica_requests_per_s"] > 0)]
    if candidates.empty:
        return _empty_arcs()
    best = candidates.sort_values(
        ["cell", "deployment", "replica_requests_per_s"], ascending=[True, True, False], kind="mergesort"
    ).drop_duplicates(["cell", "deployment"])
    return best[list(ARC_COLUMNS)].sort_values(["cell", *DEPLOYMENT_KEY], kind="mergesort").reset_index(drop=True)


def rows_at_nearest_point(cells: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Every profile row at the nearest covering point of every (cell, deployment), before the SLO.

    The nearest covering point is the lexicographic minimum (input_tokens, output_tokens) over rows
    with input_tokens >= bucket input and output_tokens >= bucket output. `cell` is the position in
    `cells`; the cell's columns (lengths, rate, SLO) come along; `deployment` numbers the table's
    deployment keys in sorted order. A pair with no covering point has no rows.
    """
    if table.empty or cells.empty:
        return pd.DataFrame(columns=[*cells.columns, "cell", "deployment", *ARC_COLUMNS])
    table = table.reset_index(drop=True)
    deployment = table.groupby(DEPLOYMENT_KEY, sort=True).ngroup().rename("deployment")
    table = table.assign(deployment=deployment.to_numpy())
    points = table[["deployment", "input_tokens", "output_tokens"]].drop_duplicates()
    lengths = cells[["input_tokens", "output_tokens"]].drop_duplicates().reset_index(drop=True)
    lengths["length_id"] = np.arange(len(lengths))
    pairs = points.merge(lengths, how="cross", suffixes=("", "_bucket"))
    covering = pairs[
        (pairs["input_tokens"] >= pairs["input_tokens_bucket"]) & (pairs["output_tokens"] >= pairs["output_tokens_bucket"])
    ]
    nearest = (
        covering.sort_values(["length_id", "deployment", "input_tokens", "output_tokens"], kind="mergesort")
        .drop_duplicates(["length_id", "deployment"])
        [["length_id", "deployment", "input_tokens", "output_tokens"]]
        .rename(columns={"input_tokens": "row_input_tokens", "output_tokens": "row_output_tokens"})
    )
    cell_frame = cells.reset_index(drop=True).assign(cell=np.arange(len(cells))).merge(
        lengths, on=["input_tokens", "output_tokens"]
    )
    return cell_frame.merge(nearest, on="length_id").merge(
        table.drop(columns=["input_tokens", "output_tokens"]).rename(
            columns={"requests_per_s": "replica_requests_per_s", "output_tokens_per_s": "row_output_tokens_per_s"}
        ).assign(row_input_tokens=table["input_tokens"], row_output_tokens=table["output_tokens"]),
        on=["deployment", "row_input_tokens", "row_output_tokens"],
        suffixes=("", "_row"),
    )


ARC_COLUMNS = {"cell": "int64", "workload": object, "bucket": "int64", "model": object, "accelerator": object,
               "chips_per_replica": "int64", "replica_requests_per_s": "float64", "row_input_tokens": "int64",
               "row_output_tokens": "int64", "output_tokens_per_s_per_user": "float64", "ttft_s": "float64",
               "source": object}


def _empty_arcs() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in ARC_COLUMNS.items()})


def meets_slo(rows: pd.DataFrame) -> pd.Series:
    """A row meets the SLO unless a column it has says otherwise (missing column = fixed at measurement).

    e2e = ttft + bucket output_tokens / per-user speed, each missing part counting as zero.
    """
    speed = rows["output_tokens_per_s_per_user"]
    ttft = rows["ttft_s"]
    ok_speed = speed.isna() | rows["min_output_tokens_per_s"].isna() | (speed >= rows["min_output_tokens_per_s"])
    ok_ttft = ttft.isna() | rows["max_ttft_s"].isna() | (ttft <= rows["max_ttft_s"])
    decode_s = (rows["output_tokens"] / speed).fillna(0.0)
    e2e = ttft.fillna(0.0) + decode_s
    ok_e2e = rows["max_e2e_s"].isna() | (e2e <= rows["max_e2e_s"])
    return ok_speed & ok_ttft & ok_e2e


def model_eligibility(scenario: Scenario) -> pd.DataFrame:
    """Per (workload, model): why the model may not serve the workload ('' = it may: whitelist and
    per-request quality floor), and its score on the workload's quality metric (NaN without one)."""
    records = []
    for workload in scenario.workloads:
        metric = workload.quality.metric if workload.quality else None
        for model in scenario.models:
            records.append({"workload": workload.id, "model": model.id, "reason": _ineligible(workload, model),
                            "quality": model.quality.get(metric, np.nan) if metric else np.nan})
    return pd.DataFrame.from_records(records)


def _ineligible(workload: Workload, model) -> str:
    if workload.allowed_models is not None and model.id not in workload.allowed_models:
        return "not in allowed_models"
    floor = workload.quality
    if floor is not None:
        score = model.quality.get(floor.metric)
        if score is None:
            return f"no {floor.metric} score"
        if floor.min is not None and score < floor.min:
            return f"{floor.metric} {score:g} < min {floor.min:g}"
    return ""

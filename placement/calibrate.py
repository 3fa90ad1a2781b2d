"""Calibration: estimate measured operating points and fit efficiency factors to them.

A `Point` is one measurement: a model on a replica of some chips at some lengths, with the engine's
concurrency if known, and what was measured (output tok/s per chip, tok/s per user, TTFT). The public
validation points (placement/validation.py) and a user's own measurements (`placement calibrate`, read by
placement/importers.py) go through the same `estimate_point`, and `fit` adjusts named factors so the
estimates meet the measurements: least squares on log(estimate / measured), a weak pull towards the
starting factors keeping under-determined factors where they were.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

import numpy as np

from placement import estimator as est
from placement.efficiency import Efficiency, efficiency_for
from placement.scenario import Accelerator, Model

METRICS = ("output_tokens_per_s_per_chip", "output_tokens_per_s_per_user", "ttft_s")


@dataclass(frozen=True)
class Point:
    """One measured operating point. `chips` is the replica size; `chips_options` lets the estimate pick
    the best replica size of a system (MLPerf submissions do not state theirs). `concurrency`: sequences
    in flight per replica (None: as many as the engine runs, a max-load measurement). `decode_only`: the
    measurement excludes prefill (disaggregated decode nodes). `engine`: stated engine settings
    (max_batch, max_num_tokens) that replace the defaults for this point."""

    id: str
    model: Model
    accelerator: Accelerator
    metric: str
    measured: float
    input_tokens: int
    output_tokens: int
    chips: int
    layout: str = "best"
    concurrency: int | None = None
    decode_only: bool = False
    per_user_floor: float | None = None
    max_ttft_s: float | None = None
    engine: dict[str, Any] = field(default_factory=dict)
    chips_options: tuple[int, ...] | None = None
    note: str = ""
    excluded: str | None = None


@dataclass(frozen=True)
class Estimate:
    value: float
    chips: int
    layout: str
    batch: float
    per_user: float
    ttft_s: float


def estimate_point(point: Point, efficiency: Efficiency | None = None) -> Estimate:
    """The estimator's figure for a measured point, at the layout, replica size and batch the measurement
    allows that give the best value of its metric (throughput: most; speed: fastest; TTFT: least)."""
    factors, _ = efficiency_for(point.accelerator, _base_for(point, efficiency))
    factors = replace(factors, **point.engine)
    model, accel = point.model, point.accelerator
    i, o = float(point.input_tokens), float(point.output_tokens)
    best: Estimate | None = None
    for chips in point.chips_options or (point.chips,):
        if est.kv_budget_bytes(model, accel, chips, factors) <= 0:
            continue
        for layout in est.layouts_for(model, chips, accel):
            if point.layout != "best" and ("dep" if layout.dep else "tp") != point.layout:
                continue
            budget = est.kv_budget_for_layout(model, accel, layout, factors)
            if budget <= 0:
                continue
            context = i + o / 2
            fit = int(budget // float(est.kv_sequence_bytes(model, context)))
            if fit < 1:
                continue
            if point.concurrency is not None:
                batches = np.array([min(point.concurrency, fit)], dtype=float)
            else:
                limit = int(est.max_concurrency(model, layout, budget, context, factors))
                batches = np.array(est._batch_sweep(limit), dtype=float)
            candidate = _best_of(point, model, accel, layout, batches, factors)
            if candidate is not None and (best is None or _better(point.metric, candidate.value, best.value)):
                best = candidate
    if best is None:
        return Estimate(math.nan, point.chips, "", math.nan, math.nan, math.nan)
    return best


def preset_of(point: Point) -> str:
    block = point.accelerator.efficiency
    return (block.preset if block is not None and block.preset else None) or "generic"


def _base_for(point: Point, efficiency: Efficiency | dict[str, Efficiency] | None) -> Efficiency | None:
    """A dict gives base factors per preset name (the public fit adjusts each vendor's separately)."""
    if isinstance(efficiency, dict):
        return efficiency.get(preset_of(point))
    return efficiency


def _better(metric: str, a: float, b: float) -> bool:
    return a < b if metric == "ttft_s" else a > b


def _best_of(point: Point, model, accel, layout, batches: np.ndarray, factors: Efficiency) -> Estimate | None:
    n = len(batches)
    ops = est.operating_points(model, accel, layout, np.full(n, point.input_tokens), np.full(n, point.output_tokens),
                               batches, factors)
    if point.decode_only:
        per_user = 1.0 / ops["step_s"]
        throughput = batches * per_user
    else:
        per_user = ops["per_user"]
        throughput = ops["requests_per_s"] * point.output_tokens
    ttft = ops["ttft_s"]
    ok = np.ones(n, dtype=bool)
    if point.per_user_floor is not None:
        ok &= per_user >= point.per_user_floor
    if point.max_ttft_s is not None:
        ok &= ttft <= point.max_ttft_s
    if not ok.any():
        return None
    values = {"output_tokens_per_s_per_chip": throughput / layout.chips, "output_tokens_per_s_per_user": per_user,
              "ttft_s": ttft}[point.metric]
    masked = np.where(ok, values, np.inf if point.metric == "ttft_s" else -np.inf)
    j = int(np.argmin(masked) if point.metric == "ttft_s" else np.argmax(masked))
    return Estimate(float(values[j]), layout.chips, layout.label, float(batches[j]), float(per_user[j]), float(ttft[j]))


def log_residuals(points: Iterable[Point], efficiency: Efficiency | None = None) -> np.ndarray:
    """log(estimate / measured) per point (nan where the estimator cannot serve the point)."""
    values = [estimate_point(p, efficiency).value for p in points]
    return np.array([math.log(max(v, 1e-12) / p.measured) if math.isfinite(v) else math.nan
                     for p, v in zip(points, values)])


@dataclass(frozen=True)
class Fit:
    efficiency: Efficiency
    factors: dict[str, float]
    residuals: dict[str, float]
    """point id -> estimate / measured after the fit"""
    before: dict[str, float]


FIT_BOUNDS = {
    "memory_bandwidth": (0.2, 1.0), "compute": (0.1, 1.0), "attention_compute": (0.05, 1.0), "moe_bandwidth": (0.1, 1.0),
    "moe_half_tokens": (0.0, 512.0), "emulated_compute": (0.05, 1.0), "step_overhead_s": (0.0, 0.05), "layer_latency_s": (0.0, 2e-4),
    "moe_layer_latency_s": (0.0, 5e-4), "max_batch": (16, 8192), "scaleup_bandwidth": (0.1, 1.0),
}
"""Ranges a fitted factor must stay in (physical: a fraction of peak <= 1, latencies >= 0)."""

PRIOR_WEIGHT = 1e-3
"""Pull towards the starting factors (per squared log change), so factors the points do not determine stay put."""


def fit(points: list[Point], names: list[str], start: Efficiency, maxiter: int | None = None) -> Fit:
    """Least squares on log(estimate / measured) over `points`, adjusting the factors `names` from `start`
    (in log space, within FIT_BOUNDS). Every point is estimated with `start` as its base efficiency."""
    from scipy.optimize import minimize

    unknown = [n for n in names if n not in FIT_BOUNDS]
    if unknown:
        raise ValueError(f"cannot fit {unknown}; fittable: {sorted(FIT_BOUNDS)}")
    x0 = np.array([math.log(max(float(getattr(start, n)), 1e-9)) for n in names])
    lo = np.array([math.log(max(FIT_BOUNDS[n][0], 1e-9)) for n in names])
    hi = np.array([math.log(FIT_BOUNDS[n][1]) for n in names])

    def factors_at(x: np.ndarray) -> Efficiency:
        values = {n: float(math.exp(v)) for n, v in zip(names, np.clip(x, lo, hi))}
        if "max_batch" in values:
            values["max_batch"] = int(round(values["max_batch"]))
        return replace(start, **values)

    def loss(x: np.ndarray) -> float:
        r = log_residuals(points, factors_at(x))
        r = np.where(np.isfinite(r), r, 3.0)
        return float(np.sum(r ** 2) + PRIOR_WEIGHT * np.sum((x - x0) ** 2))

    before = log_residuals(points, start)
    result = minimize(loss, x0, method="Powell", bounds=list(zip(lo, hi)), options={"xtol": 1e-3, "ftol": 1e-6, **({"maxiter": maxiter} if maxiter else {})})
    fitted = factors_at(result.x)
    after = log_residuals(points, fitted)
    return Fit(fitted, {n: getattr(fitted, n) for n in names},
               {p.id: float(math.exp(r)) for p, r in zip(points, after)},
               {p.id: float(math.exp(r)) for p, r in zip(points, before)})


# --------------------------------------------------------------------------------------------------
# A user's measurements -> fitted factors per accelerator


DEFAULT_FIT = ("memory_bandwidth", "compute")
MOE_FIT = ("moe_bandwidth",)


def points_from_rows(rows, models: dict[str, Model], accelerators: dict[str, Accelerator], label: str) -> list[Point]:
    """Measured profile rows -> points: replica throughput per chip always; per-user speed and TTFT where
    the row gives them and its concurrency (batch_size) is known."""
    from placement.errors import InputError, Problem

    points, problems = [], []
    for k, row in enumerate(rows.itertuples(index=False)):
        model = resolve_id(str(row.model), models)
        accel = accelerators.get(str(row.accelerator))
        if model is None:
            problems.append(Problem(label, f"row {k + 1}, model", f"unknown model {row.model!r}; known: {sorted(models)} "
                                    "(give --model, or --scenario with the model)"))
        if accel is None:
            problems.append(Problem(label, f"row {k + 1}, accelerator", f"unknown accelerator {row.accelerator!r}; known: "
                                    f"{sorted(accelerators)} (give --accelerator, or --scenario with it)"))
        if model is None or accel is None:
            continue
        if accel.memory_kind == "sram":
            problems.append(Problem(label, f"row {k + 1}, accelerator", f"{accel.id} is an SRAM chip: the estimator gives "
                                    "it no speed to calibrate; use the measured rows as a profile table directly"))
            continue
        batch = int(row.batch_size) if isinstance(row.batch_size, float) and math.isfinite(row.batch_size) else None
        common = dict(model=model, accelerator=accel, input_tokens=int(row.input_tokens),
                      output_tokens=int(row.output_tokens), chips=int(row.chips_per_replica), concurrency=batch)
        name = f"{k + 1}:{model.id}@{accel.id}x{int(row.chips_per_replica)} {int(row.input_tokens)}/{int(row.output_tokens)}"
        tokens_per_s = row.output_tokens_per_s if math.isfinite(row.output_tokens_per_s) else row.requests_per_s * row.output_tokens
        if tokens_per_s > 0:
            points.append(Point(f"{name} throughput", metric="output_tokens_per_s_per_chip",
                                measured=float(tokens_per_s) / int(row.chips_per_replica), **common))
        if batch is not None and math.isfinite(row.output_tokens_per_s_per_user):
            points.append(Point(f"{name} per-user", metric="output_tokens_per_s_per_user",
                                measured=float(row.output_tokens_per_s_per_user), **common))
        if batch is not None and math.isfinite(row.ttft_s) and row.ttft_s > 0:
            points.append(Point(f"{name} ttft", metric="ttft_s", measured=float(row.ttft_s), **common))
    if problems:
        raise InputError(problems)
    return points


def resolve_id(name: str, known: dict[str, Any]) -> Any:
    """A model named as in a benchmark file: the id itself, or a Hugging Face id's last part (openai/gpt-oss-120b)."""
    if name in known:
        return known[name]
    tail = name.rsplit("/", 1)[-1].lower()
    for suffix in ("", "-instruct", "-chat", "-it", "-hf"):
        if suffix == "" or tail.endswith(suffix):
            candidate = tail[: len(tail) - len(suffix)] if suffix else tail
            if candidate in known:
                return known[candidate]
    return None


def calibrate(points: list[Point], names: tuple[str, ...] | None = None) -> dict[str, Fit]:
    """Fit per accelerator id: memory_bandwidth and compute (and moe_bandwidth when the points include a
    mixture of experts) from each accelerator's own efficiency."""
    fits: dict[str, Fit] = {}
    for accel_id in sorted({p.accelerator.id for p in points}):
        group = [p for p in points if p.accelerator.id == accel_id]
        chosen = list(names) if names else list(DEFAULT_FIT) + (
            list(MOE_FIT) if any(est._moe_shape(p.model) is not None for p in group) else [])
        start, _ = efficiency_for(group[0].accelerator)
        fits[accel_id] = fit(group, chosen, start)
    return fits


def overrides_document(fits: dict[str, Fit], sources: list[str]) -> dict[str, Any]:
    """What `placement calibrate --out` writes; a scenario includes it as `estimator_overrides: FILE`."""
    return {
        "accelerators": {a: {k: (int(v) if k == "max_batch" else round(float(v), 6)) for k, v in f.factors.items()}
                         for a, f in fits.items()},
        "calibration": {
            "measurements": sources,
            "points": {a: {pid: {"before": round(f.before[pid], 4), "after": round(r, 4)} for pid, r in f.residuals.items()}
                       for a, f in fits.items()},
        },
    }

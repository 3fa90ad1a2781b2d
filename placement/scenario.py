"""The scenario: the one input of a solve (contract: shared/spec/scenario.md).

Pydantic v2 models with unknown fields rejected, NaN/infinity and absurd magnitudes refused, a loader
for YAML/JSON (duplicate keys refused) with CSV tables referenced by relative path (read under the
rules of placement.files: inside the scenario's folder, regular files, bounded size), and the
cross-reference checks pydantic cannot do (unknown ids, duplicates, shares summing to 1). Every
problem is reported at once as an `InputError` naming file, field path and fix.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import json
import math
import re
import time
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from placement.errors import InputError, Problem
from placement.files import MAX_DOCUMENT_BYTES, MAX_TABLE_BYTES, read_text_bounded, table_path

SHARE_TOLERANCE = 1e-6

# Upper bounds on magnitudes (README, "Limits"). Far beyond any real fleet, yet small enough that the
# model's coefficients stay where solvers are exact: a value beyond them is a typo (1e300 req/s), named
# with its field as bad input instead of reaching the solver.
MAX_RATE = 1e9                 # requests/s: a workload's arrival rate, a replica's throughput
MAX_TOKENS = 1_000_000_000     # tokens: a bucket's lengths, a context, a profile row's lengths
MAX_TOKEN_RATE = 1e12          # tokens/s of a whole replica
MAX_SPEED = 1e7                # tokens/s per user
MAX_SECONDS = 1e6              # SLO times, TTFT, solver time limit (11.6 days)
MAX_PRICE = 1e6                # currency per chip-hour, per shed request
MAX_FIXED_COST = 1e15          # currency per period
MAX_CHIPS = 10_000_000         # chips in a pool, a block, a replica, a scale-up domain; a batch's requests
MAX_HOURS = 100_000            # planning period (11.4 years)
MAX_PERIODS = 1_000            # a contract's term or lead, in periods (83 years of months)
MAX_SPEC = 1e9                 # chip and model specs: GB, TB/s, TFLOP/s, GB/s, kW, billions of params, bytes
MAX_SCORE = 1e6                # quality scores and floors, in absolute value
MAX_THREADS = 1024             # options.solver.threads (and --threads), when a number


def chips_or_per_period(value: Any, name: str) -> Any:
    """A whole number of chips from 0 to MAX_CHIPS, or one per period id (max_chips, max_churn_chips). One
    message for either form: pydantic's union gives one per member, named by its type (`.int`, `.dict[...]`)."""
    for key, chips in (value.items() if isinstance(value, dict) else [(None, value)]):
        where = name if key is None else f"{name}.{key}"
        got = "" if key is None else f", got {chips!r}"   # a scalar's value is shown by the caller
        if key is not None and not isinstance(key, str):
            raise ValueError(f"{name}: period ids are text; quote {key!r} (as '{key}')")
        if isinstance(chips, bool) or not isinstance(chips, int):
            form = "" if key is not None else ", or one per period id ({2026q3: 64, 2026q4: 128})"
            raise ValueError(f"{where} must be a whole number of chips{form}{got}")
        if not 0 <= chips <= MAX_CHIPS:
            raise ValueError(f"{where} must be >= 0 and less than or equal to {MAX_CHIPS:,}{got}")
    return value


class Strict(BaseModel):
    """Base for every scenario object: typos and NaN/infinity are errors, never silently accepted."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True, strict=True)


PositiveFloat = Field(gt=0)

# Unicode categories that print nothing or move the cursor: control (ANSI escapes, newlines), format
# (zero-width space, bidi overrides), line/paragraph separators, private use, surrogates, unassigned.
INVISIBLE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"}


def invisible_characters(text: str) -> list[str]:
    """The characters of `text` a reader cannot see (as U+XXXX), besides ordinary spaces inside it."""
    found = [ch for ch in text if unicodedata.category(ch) in INVISIBLE_CATEGORIES
             or (unicodedata.category(ch) == "Zs" and ch != " ")]
    return [f"U+{ord(ch):04X}" for ch in dict.fromkeys(found)]


def _visible(text: str) -> str:
    """An id or name is shown in tables, messages and file names: every character must be visible."""
    hidden = invisible_characters(text)
    if hidden:
        raise ValueError(f"contains invisible or control characters ({', '.join(hidden)}); use printable text")
    if text != text.strip():
        raise ValueError("starts or ends with a space; remove it")
    return text


Name = Annotated[str, Field(min_length=1), AfterValidator(_visible)]


Fraction = Field(default=None, gt=0, le=1)


class AcceleratorEfficiency(Strict):
    """Estimator factors of one accelerator (placement/efficiency.py documents each): a preset per vendor
    and generation, and any factor set here overrides the preset's (`placement calibrate` writes them)."""

    preset: str | None = Field(default=None, description="vendor/generation defaults, e.g. nvidia-hopper, amd-cdna3")
    memory_bandwidth: float | None = Fraction
    compute: float | None = Fraction
    attention_compute: float | None = Fraction
    moe_bandwidth: float | None = Fraction
    moe_half_tokens: float | None = Field(default=None, ge=0)
    emulated_compute: float | None = Fraction
    scaleup_bandwidth: float | None = Fraction
    allreduce_latency_s: float | None = Field(default=None, ge=0)
    alltoall_latency_s: float | None = Field(default=None, ge=0)
    layer_latency_s: float | None = Field(default=None, ge=0)
    moe_layer_latency_s: float | None = Field(default=None, ge=0)
    step_overhead_s: float | None = Field(default=None, ge=0)
    max_batch: int | None = Field(default=None, ge=1)
    max_num_tokens: int | None = Field(default=None, ge=1)
    memory_utilization: float | None = Fraction
    scaleout_bandwidth_gbps: float | None = Field(default=None, gt=0)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        from placement.efficiency import PRESETS

        if value is not None and value not in PRESETS:
            raise ValueError(f"unknown efficiency preset {value!r}; known: {sorted(PRESETS)}")
        return value


class Speculative(Strict):
    """Speculative decoding the model is served with: MTP heads or a draft model propose draft_tokens per
    step, the model verifies them; each is accepted with probability `acceptance` given the previous."""

    method: Literal["mtp", "draft"]
    draft_tokens: int = Field(ge=1, le=16)
    acceptance: float = Field(gt=0, le=1, description="per-draft-token acceptance rate")
    draft_params_b: float | None = Field(default=None, gt=0, description="draft model active params (method draft)")

    @model_validator(mode="after")
    def _draft_needs_size(self) -> "Speculative":
        if self.method == "draft" and self.draft_params_b is None:
            raise ValueError("method draft needs draft_params_b (the draft model's active parameters, billions)")
        return self


class Accelerator(Strict):
    """A chip type. Specs are optional when every deployment on it has measured profile rows;
    the estimator needs them otherwise."""

    id: Name
    name: str | None = None
    memory_gb: float | None = Field(default=None, gt=0, le=MAX_SPEC, description="per chip, HBM or SRAM, GB")
    memory_bandwidth_tbps: float | None = Field(default=None, gt=0, le=MAX_SPEC, description="per chip, TB/s")
    dense_tflops: dict[str, float] = Field(
        default_factory=dict, description="dense TFLOP/s per chip by precision (bf16, fp8, fp4, int8)"
    )
    scaleup_domain: int = Field(default=8, ge=1, le=MAX_CHIPS, description="max chips one replica may span over the fast fabric")
    scaleup_bandwidth_gbps: float | None = Field(default=None, gt=0, le=MAX_SPEC, description="per chip, GB/s, scale-up fabric")
    memory_kind: Literal["hbm", "sram"] = Field(default="hbm", description="sram: speed from measured tables only")
    power_kw: float | None = Field(default=None, gt=0, le=MAX_SPEC, description="per chip, kW")
    efficiency: AcceleratorEfficiency | None = Field(
        default=None, description="estimator efficiency: a vendor/generation preset and factors that override it")
    source: str | None = Field(default=None, description="where the specs come from")
    uncertainty: str | None = Field(default=None, description="how far the specs can be trusted")

    @field_validator("dense_tflops")
    @classmethod
    def _positive_tflops(cls, value: dict[str, float]) -> dict[str, float]:
        for precision, tflops in value.items():
            if not (isinstance(tflops, (int, float)) and math.isfinite(tflops) and 0 < tflops <= MAX_SPEC):
                raise ValueError(f"dense_tflops.{precision} must be a positive number <= {MAX_SPEC:g}, got {tflops!r}")
        return value


class Model(Strict):
    """A model variant. `family` groups variants of one model (frontier, distilled, ...)."""

    id: Name
    family: str | None = None
    total_params_b: float | None = Field(default=None, gt=0, le=MAX_SPEC, description="billions of parameters, all experts")
    active_params_b: float | None = Field(default=None, gt=0, le=MAX_SPEC, description="billions of parameters active per token")
    weight_bits: float | None = Field(default=None, gt=0, le=32)
    kv_bytes_per_token: float | None = Field(default=None, ge=0, le=MAX_SPEC, description="KV cache bytes per token, whole model")
    max_context_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS, description="input + output tokens the model accepts")
    quality: dict[str, float] = Field(default_factory=dict, description="named metrics; higher is better")
    architecture: dict[str, Any] | None = Field(
        default=None, description="Hugging Face config.json fields (used by the estimator)"
    )
    speculative: Speculative | None = Field(default=None, description="speculative decoding (MTP or draft model)")
    source: str | None = None

    @field_validator("quality")
    @classmethod
    def _finite_quality(cls, value: dict[str, float]) -> dict[str, float]:
        for metric, score in value.items():
            try:
                _visible(metric)
            except ValueError as exc:
                raise ValueError(f"metric name {metric!r} {exc}") from None
            if not (isinstance(score, (int, float)) and math.isfinite(score) and abs(score) <= MAX_SCORE):
                raise ValueError(f"quality.{metric} must be a finite number within +-{MAX_SCORE:g}, got {score!r}")
        return value

    @model_validator(mode="after")
    def _active_le_total(self) -> "Model":
        if self.total_params_b and self.active_params_b and self.active_params_b > self.total_params_b * (1 + 1e-9):
            raise ValueError(
                f"active_params_b ({self.active_params_b}) exceeds total_params_b ({self.total_params_b})"
            )
        return self


class Bucket(Strict):
    """A request-length class of a workload: the share of its requests at these lengths."""

    input_tokens: int = Field(ge=1, le=MAX_TOKENS)
    output_tokens: int = Field(ge=1, le=MAX_TOKENS)
    share: float = Field(gt=0, le=1)


class SLO(Strict):
    """Latency objectives; each is optional (absent = unconstrained)."""

    min_output_tokens_per_s: float | None = Field(default=None, gt=0, le=MAX_SPEED, description="per-user decode speed, tok/s")
    max_ttft_s: float | None = Field(default=None, gt=0, le=MAX_SECONDS, description="time to first token, s")
    max_e2e_s: float | None = Field(default=None, gt=0, le=MAX_SECONDS, description="ttft + output_tokens / per-user speed, s")


class QualityFloor(Strict):
    metric: Name
    min: float | None = Field(default=None, ge=-MAX_SCORE, le=MAX_SCORE, description="every request: the model's score >= min")
    min_mean: float | None = Field(default=None, ge=-MAX_SCORE, le=MAX_SCORE, description="traffic-weighted mean score >= min_mean")

    @model_validator(mode="after")
    def _some_floor(self) -> "QualityFloor":
        if self.min is None and self.min_mean is None:
            raise ValueError("give min, min_mean or both (a quality block with neither constrains nothing)")
        return self


class Workload(Strict):
    """A demand slice: arrival rate, length mix, SLO and quality requirements."""

    id: Name
    requests_per_s: float = Field(ge=0, le=MAX_RATE, description="mean arrival rate over the period, req/s")
    buckets: list[Bucket] = Field(min_length=1)
    slo: SLO = Field(default_factory=SLO)
    quality: QualityFloor | None = None
    allowed_models: list[Name] | None = Field(default=None, min_length=1)
    must_serve: bool = True
    unserved_cost_per_request: float | None = Field(default=None, ge=0, le=MAX_PRICE,
                                                     description="currency per shed request")
    growth: dict[str, float] = Field(default_factory=dict,
                                     description="rate multiplier per period id; missing periods = 1")
    shape: dict[str, float] = Field(default_factory=dict, description="rate multiplier per slice id; missing = 1")
    headroom: float | None = Field(default=None, ge=0, lt=1,
                                   description="this workload's share of replica capacity kept free "
                                               "(default: options.headroom)")

    @field_validator("growth", "shape")
    @classmethod
    def _nonnegative_multipliers(cls, value: dict[str, float]) -> dict[str, float]:
        for key, factor in value.items():
            if not (isinstance(factor, (int, float)) and math.isfinite(factor) and 0 <= factor <= MAX_RATE):
                raise ValueError(f"multiplier for {key!r} must be a finite number >= 0, got {factor!r}")
        return value

    @model_validator(mode="after")
    def _shares_and_shedding(self) -> "Workload":
        total = sum(b.share for b in self.buckets)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise ValueError(f"bucket shares sum to {total:.6g}, not 1; rescale them so they sum to 1")
        if not self.must_serve and self.unserved_cost_per_request is None:
            raise ValueError(
                "must_serve is false but unserved_cost_per_request is missing; give the cost of shedding a "
                "request (0 means shedding is free)"
            )
        return self


PoolKind = Literal["prepaid", "reserved", "on_demand", "spot"]


class Commitment(Strict):
    """A reserved contract already signed: `blocks` usable from `starts` (default: the first period) through
    `through`; sunk. `starts` is a contract signed to go live later (a rolling step's purchases in lead time)."""

    blocks: int = Field(ge=1, le=MAX_CHIPS)
    through: str = Field(min_length=1, description="last period id the contract covers")
    starts: str | None = Field(default=None, min_length=1,
                               description="first period id the contract covers (default: the first period)")


class Pool(Strict):
    """Capacity one can run on: owned (prepaid), take-or-pay (reserved) or rented (on_demand, spot).

    The rules of each kind (variables, rows, cost) live in placement/capacity_types/<kind>.py.
    """

    id: Name
    accelerator: Name
    kind: PoolKind
    max_chips: int | dict[str, int] = Field(
        description="supply cap, chips: a number, or chips per period id (deliveries; every period listed)")
    block_chips: int = Field(default=1, ge=1, le=MAX_CHIPS, description="reserved purchase granularity, chips")
    price_per_chip_hour: float | None = Field(default=None, ge=0, le=MAX_PRICE, description="currency per chip-hour")
    fixed_cost: float = Field(default=0, ge=0, le=MAX_FIXED_COST,
                              description="sunk cost per period; reported, never decides")
    term_periods: int = Field(default=1, ge=1, le=MAX_PERIODS,
                              description="reserved: periods a block bought is paid and usable")
    lead_periods: int = Field(default=0, ge=0, le=MAX_PERIODS,
                              description="reserved: periods between purchase and first use")
    committed: list[Commitment] = Field(default_factory=list, description="reserved: contracts already signed")
    availability: dict[str, float] = Field(
        default_factory=dict, description="spot: fraction of max_chips obtainable per slice id (default 1)")

    @field_validator("max_chips", mode="before")
    @classmethod
    def _chips(cls, value: Any) -> Any:
        return chips_or_per_period(value, "max_chips")

    @field_validator("availability")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        for key, fraction in value.items():
            if not (isinstance(fraction, (int, float)) and 0 <= fraction <= 1):
                raise ValueError(f"availability.{key} must be a fraction in [0, 1], got {fraction!r}")
        return value

    @model_validator(mode="after")
    def _price_matches_kind(self) -> "Pool":
        if self.kind == "prepaid":
            if self.price_per_chip_hour not in (None, 0):
                raise ValueError(
                    "a prepaid pool has no marginal price; move its cost to fixed_cost and drop price_per_chip_hour"
                )
        elif self.price_per_chip_hour is None:
            raise ValueError(f"a {self.kind} pool needs price_per_chip_hour")
        if self.kind != "reserved":
            for name in ("block_chips", "term_periods", "lead_periods", "committed"):
                default = type(self).model_fields[name].get_default(call_default_factory=True)
                if name in self.model_fields_set and getattr(self, name) != default:
                    raise ValueError(f"{name} applies to reserved pools only")
        if self.kind != "spot" and self.availability:
            raise ValueError("availability applies to spot pools only")
        return self

    @property
    def price(self) -> float:
        return float(self.price_per_chip_hour or 0.0)

    def cap(self, period: str) -> int:
        """Chips this pool may hold in one period (deliveries for prepaid; the contract cap for reserved)."""
        return int(self.max_chips[period] if isinstance(self.max_chips, dict) else self.max_chips)

    @property
    def peak_chips(self) -> int:
        """The largest cap over the horizon."""
        return int(max(self.max_chips.values(), default=0) if isinstance(self.max_chips, dict) else self.max_chips)


class SolverOptions(Strict):
    backend: Literal["highspy", "ortools", "pulp"] | None = None
    engine: Literal["highs", "scip", "cbc", "cp-sat"] | None = None
    time_limit_s: float = Field(default=60, gt=0, le=MAX_SECONDS)
    mip_gap: float = Field(default=1e-4, ge=0, lt=1)
    threads: Annotated[int, Field(ge=1, le=MAX_THREADS)] | Literal["auto"] = Field(
        default="auto", description=f"'auto' (the CPUs available, at most 4) or 1-{MAX_THREADS}: "
                                    "node LPs of the blocks' "
                                    "search and fix-and-optimize windows solved at once (each HiGHS runs on one "
                                    "thread); SCIP and CP-SAT threads")

    @field_validator("threads", mode="before")
    @classmethod
    def _threads_auto_or_count(cls, value):
        # one message for both forms, not one per member of the union
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_THREADS):
            return value
        raise ValueError(f"must be 'auto' or a whole number from 1 to {MAX_THREADS}")

    @model_validator(mode="after")
    def _engine_fits_backend(self) -> "SolverOptions":
        backend, engine = resolve_backend_engine(self.backend, self.engine)
        if engine not in ENGINES[backend]:
            raise ValueError(
                f"engine {engine!r} is not available in backend {backend!r}; choose one of {sorted(ENGINES[backend])}"
            )
        return self

    @property
    def resolved(self) -> tuple[str, str]:
        return resolve_backend_engine(self.backend, self.engine)


ENGINES = {"highspy": {"highs"}, "ortools": {"highs", "scip", "cp-sat"}, "pulp": {"cbc", "highs"}}
DEFAULT_ENGINE = {"highspy": "highs", "ortools": "highs", "pulp": "cbc"}


def resolve_backend_engine(backend: str | None, engine: str | None) -> tuple[str, str]:
    """Backend defaults to highspy (HiGHS direct); an engine it lacks picks the backend that has it
    (scip, cp-sat: ortools; cbc: pulp)."""
    if backend is None:
        backend = {"cbc": "pulp", "scip": "ortools", "cp-sat": "ortools"}.get(engine, "highspy")
    return backend, engine or DEFAULT_ENGINE[backend]


class SliceOptions(Strict):
    count: int = Field(ge=1, le=1000, description="how many slices to derive from the load curve")


class Options(Strict):
    headroom: float = Field(default=0.0, ge=0, lt=1, description="fraction of replica capacity kept free")
    max_shapes_per_model_accelerator: int | None = Field(
        default=None, ge=1,
        description="at most this many replica sizes (chips_per_replica) per (model, accelerator) in a plan; "
                    "fewer shapes are simpler to operate, at a price the plan shows")
    solver: SolverOptions = Field(default_factory=SolverOptions)
    baselines: bool = Field(default=True, description="also solve the best single-accelerator plans")
    max_churn_chips: int | dict[str, int] | None = Field(
        default=None, description="per period: chips of replicas added + removed vs the period before "
                                  "(a number, or per period id)")
    churn_cost_per_chip: float = Field(default=0, ge=0, le=MAX_PRICE,
                                       description="currency per chip moved (added or removed)")
    max_spot_share: float | None = Field(
        default=None, ge=0, le=1, description="at most this share of the chips running in any (period, slice) "
                                               "may be spot capacity (the risk a plan may take on preemption)")
    slices: SliceOptions | None = Field(default=None, description="derive slices from load_curve")
    estimates: Literal["central", "conservative"] = Field(
        default="central",
        description="which estimated operating points the solve uses: central, or conservative (low throughput and "
                    "speed, high TTFT bands from the calibration residuals)")

    @field_validator("max_churn_chips", mode="before")
    @classmethod
    def _churn_chips(cls, value: Any) -> Any:
        return value if value is None else chips_or_per_period(value, "max_churn_chips")


class ProfileRow(Strict):
    """One operating point of one replica (used for inline rows; CSV tables are checked column-wise)."""

    model: str
    accelerator: str
    chips_per_replica: int = Field(ge=1, le=MAX_CHIPS)
    input_tokens: int = Field(ge=1, le=MAX_TOKENS)
    output_tokens: int = Field(ge=1, le=MAX_TOKENS)
    requests_per_s: float | None = Field(default=None, ge=0, le=MAX_RATE)
    output_tokens_per_s: float | None = Field(default=None, ge=0, le=MAX_TOKEN_RATE)
    output_tokens_per_s_per_user: float | None = Field(default=None, gt=0, le=MAX_SPEED)
    ttft_s: float | None = Field(default=None, ge=0, le=MAX_SECONDS)
    batch_size: int | None = Field(default=None, ge=1, le=MAX_CHIPS)
    source: str | None = None
    note: str | None = None


class Period(Strict):
    id: str = Field(min_length=1)
    hours: float = Field(gt=0, le=100_000, description="hours in this period")


class Slice(Strict):
    id: str = Field(min_length=1)
    weight: float = Field(gt=0, le=1, description="fraction of each period's hours in this slice")


class DemandRow(Strict):
    """Explicit demand: the workload's total rate in one (period, slice), split over buckets by share."""

    workload: str = Field(min_length=1)
    period: str = Field(min_length=1)
    slice: str = Field(min_length=1)
    requests_per_s: float = Field(ge=0, le=MAX_RATE)


class LoadCurveRow(Strict):
    """One hour of a workload's measured load, from which slices are derived."""

    workload: str = Field(min_length=1)
    hour: int = Field(ge=0, le=MAX_HOURS)
    requests_per_s: float = Field(ge=0, le=MAX_RATE)


class FleetRow(Strict):
    """Replicas running before the first period (the state churn is measured against)."""

    model: str = Field(min_length=1)
    accelerator: str = Field(min_length=1)
    chips_per_replica: int = Field(ge=1, le=MAX_CHIPS)
    pool: str = Field(min_length=1)
    replicas: int = Field(ge=0, le=MAX_CHIPS)


class EstimatorOverrides(Strict):
    """What `placement calibrate` writes: efficiency factors per accelerator id, and how they were fitted."""

    accelerators: dict[str, AcceleratorEfficiency] = Field(default_factory=dict)
    calibration: dict[str, Any] | None = Field(default=None, description="fit report (informative)")


class Scenario(Strict):
    name: Name
    currency: Name = "USD"
    hours: float = Field(default=2190, gt=0, le=MAX_HOURS, description="planning period, hours")
    accelerators: list[Accelerator] = Field(min_length=1)
    models: list[Model] = Field(min_length=1)
    workloads: list[Workload] = Field(min_length=1)
    pools: list[Pool] = Field(min_length=1)
    profiles: list[ProfileRow] | None = None
    options: Options = Field(default_factory=Options)
    estimator_overrides: EstimatorOverrides | None = Field(
        default=None, description="efficiency factors per accelerator id (a YAML path, e.g. the output of "
                                  "`placement calibrate`, or a mapping); merged into the accelerators' efficiency")
    description: str | None = None
    periods: list[Period] | None = Field(default=None, min_length=1,
                                         description="the horizon, in order; absent = one period of `hours`")
    slices: list[Slice] | None = Field(default=None, min_length=1,
                                       description="representative slices of every period; absent = one slice")
    demand: list[DemandRow] | None = Field(default=None, description="explicit rates (or a CSV path)")
    load_curve: list[LoadCurveRow] | None = Field(default=None,
                                                  description="hourly rates (or a CSV path); slices derived")
    fleet: list[FleetRow] | None = Field(default=None, description="replicas running before the first period")

    def accelerator(self, accel_id: str) -> Accelerator:
        return next(a for a in self.accelerators if a.id == accel_id)

    def model(self, model_id: str) -> Model:
        return next(m for m in self.models if m.id == model_id)


# --------------------------------------------------------------------------------------------------
# Loading


PROFILE_NUMERIC = {
    "chips_per_replica": "int>=1",
    "input_tokens": "int>=1",
    "output_tokens": "int>=1",
    "requests_per_s": ">=0",
    "output_tokens_per_s": ">=0",
    "output_tokens_per_s_per_user": ">0",
    "ttft_s": ">=0",
    "batch_size": "int>=1",
    "requests_per_s_low": ">=0",
    "requests_per_s_high": ">=0",
    "output_tokens_per_s_per_user_low": ">0",
    "output_tokens_per_s_per_user_high": ">0",
    "ttft_s_low": ">=0",
    "ttft_s_high": ">=0",
}
PROFILE_MAXIMUM = {"chips_per_replica": MAX_CHIPS, "input_tokens": MAX_TOKENS, "output_tokens": MAX_TOKENS,
                   "requests_per_s": MAX_RATE, "output_tokens_per_s": MAX_TOKEN_RATE,
                   "output_tokens_per_s_per_user": MAX_SPEED, "ttft_s": MAX_SECONDS, "batch_size": MAX_CHIPS}
PROFILE_MAXIMUM.update({f"{column}_{side}": PROFILE_MAXIMUM[column]   # the bands share their column's limit
                        for column in ("requests_per_s", "output_tokens_per_s_per_user", "ttft_s")
                        for side in ("low", "high")})
PROFILE_COLUMNS = ["model", "accelerator", *PROFILE_NUMERIC, "source", "note"]
"""Columns ending _low/_high are the estimator's uncertainty bands (optional in measured tables)."""
TABLE_FIELDS = ("accelerators", "models", "pools", "profiles", "demand", "load_curve", "fleet")


class LoadedScenario:
    """A validated scenario, where it came from, and its profile table as a DataFrame."""

    def __init__(self, scenario: Scenario, path: Path, profiles: pd.DataFrame, sha256: str,
                 tables: list[Path] | None = None):
        self.scenario = scenario
        self.path = path
        self.profiles = profiles
        self.sha256 = sha256
        self.tables = list(tables or [])  # the CSV files it read: outputs must never replace them
        self.load_s = 0.0                 # seconds load_scenario took (read, parse, validate): plan's stages_s

    @property
    def files(self) -> list[Path]:
        """Every file this scenario was read from (the scenario file and its tables)."""
        return [self.path, *self.tables]


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> LoadedScenario:
    """Parse, validate and cross-check a scenario file. Raises InputError listing every problem.

    overrides: {path: value} in the edit language (placement.edits), e.g.
    {"pools[h200-reserved].max_chips": 1088}: one item by id, never a whole list; an unknown path or
    id is bad input.
    """
    if overrides:
        from placement.edits import edit_loaded

        return edit_loaded(load_scenario(path), overrides, label=str(path))
    started = time.perf_counter()
    path = Path(path)
    label = str(path)
    data = _read_document(path)
    origins: dict[str, str] = {}
    problems: list[Problem] = []
    profiles_df: pd.DataFrame | None = None
    tables: list[Path] = []
    for key in TABLE_FIELDS:
        value = data.get(key)
        if isinstance(value, str):
            origins[key] = value
            try:
                table = table_path(path, value, key)
                text = read_text_bounded(table, value, MAX_TABLE_BYTES, "table")
            except InputError as exc:
                problems += exc.problems
                text = None
            else:
                tables.append(table)
            if key == "profiles":
                if text is not None:
                    profiles_df, table_problems = read_profile_table(text, value)
                    problems += table_problems
                data = {**data, "profiles": None}
            else:
                rows, table_problems = (read_csv_records(text, value, TABLE_KEY_COLUMNS.get(key, ("id",)),
                                                         ROW_TABLES.get(key))
                                        if text is not None else ([], []))
                if text is not None and not table_problems and not rows and key in ROW_TABLES:
                    table_problems = [Problem(value, key, f"has no rows; give rows, or drop `{key}:`")]
                problems += table_problems
                data = {**data, key: rows}
    data = resolve_catalog_references(data, label, problems)
    data = apply_estimator_overrides(data, path, label, problems)
    if isinstance(data.get("profiles"), list):
        inline = data["profiles"]
        profiles_df, table_problems = check_profile_frame(_frame_or_empty(inline), label, "profiles")
        problems += table_problems
        data = {**data, "profiles": None}
    problems += cross_check(data, profiles_df, label, origins)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = [_problem_from_pydantic(err, label, origins) for err in exc.errors()] + problems
        raise InputError(problems) from None
    if problems:
        raise InputError(problems)
    if scenario.load_curve:  # what only the derivation can tell (and the solve then reuses it)
        from placement.horizon import check_derived_slices

        problems = check_derived_slices(scenario, label, origins)
        if problems:
            raise InputError(problems)
    if profiles_df is None:
        profiles_df = empty_profile_frame()
    loaded = LoadedScenario(scenario, path, profiles_df, canonical_hash(scenario, profiles_df), tables)
    loaded.load_s = time.perf_counter() - started
    return loaded


def _read_document(path: Path) -> dict[str, Any]:
    label = str(path)
    text = read_text_bounded(path, label, MAX_DOCUMENT_BYTES, "scenario file")
    try:
        data = parse_json(text, label) if path.suffix.lower() == ".json" else parse_yaml(text, label)
    except RecursionError:
        raise InputError.single(label, "", f"nested too deeply to read; a scenario nests a few levels, "
                                           f"at most {MAX_NESTING}") from None
    check_shape(data, label)
    if not isinstance(data, dict):
        raise InputError.single(label, "", "the scenario must be a mapping (name:, accelerators:, models:, ...)")
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise InputError.single(label, "", f"top-level keys must be text, got {bad_keys!r}")
    return data


MAX_NESTING = 64           # levels of lists and mappings; a scenario needs about six
MAX_VALUES = 2_000_000     # values once YAML aliases are expanded (a "billion laughs" document has 10**9)


def check_shape(data: Any, label: str) -> None:
    """Refuse documents nested beyond MAX_NESTING (or holding themselves through an alias) or with more
    than MAX_VALUES values: everything after the parser walks the document recursively."""
    stack = [(data, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_NESTING:
            raise InputError.single(label, "", f"nested more than {MAX_NESTING} levels deep (or holds itself "
                                               "through a YAML alias); a scenario nests a few levels")
        if count > MAX_VALUES:
            raise InputError.single(label, "", f"too large: more than {MAX_VALUES:,} values once YAML aliases "
                                               "are expanded; put large tables in CSV files")
        if isinstance(node, dict):
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)


def parse_json(text: str, label: str) -> Any:
    """json.loads that refuses NaN/Infinity and duplicate keys (naming the lines of both)."""
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_pairs)
    except _DuplicateKey:
        raise InputError([Problem(label, f"line {line}", _duplicate_message(key, first))
                          for key, line, first in _json_duplicate_keys(text)]) from None
    except json.JSONDecodeError as exc:
        raise InputError.single(label, f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}") from None
    except ValueError as exc:
        raise InputError.single(label, "", f"invalid JSON: {exc}") from None


class _DuplicateKey(Exception):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        raise _DuplicateKey
    return mapping


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:]')


def _json_duplicate_keys(text: str) -> list[tuple[str, int, int]]:
    """(key, line, line of the first occurrence) for every repeated key of every object.

    Called only once json.loads has found a duplicate, so the text is valid JSON: strings and
    brackets are all the scan needs to tell keys and objects apart.
    """
    newlines = [m.start() for m in re.finditer("\n", text)]
    found: list[tuple[str, int, int]] = []
    objects: list[dict[str, int] | None] = []
    key: tuple[str, int] | None = None
    for token in _JSON_TOKEN.finditer(text):
        value = token.group()
        if value == "{":
            objects.append({})
        elif value == "[":
            objects.append(None)
        elif value in "}]":
            objects.pop()
        elif value == ":":
            name, at = key
            line = bisect.bisect_left(newlines, at) + 1
            seen = objects[-1]
            if name in seen:
                found.append((name, line, seen[name]))
            else:
                seen[name] = line
        else:
            key = (json.loads(value), token.start())
    return found


def _duplicate_message(key: Any, first_line: int) -> str:
    return (f"duplicate key {key!r} (first at line {first_line}); remove one: "
            "otherwise the second would silently replace the first")


def parse_yaml(text: str, label: str) -> Any:
    """YAML with the scenario loader; duplicate keys are refused, naming the lines of both."""
    loader = ScenarioYamlLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError.single(label, where, f"invalid YAML: {problem}") from None
    finally:
        loader.dispose()
    if loader.duplicate_keys:
        raise InputError([Problem(label, f"line {line} column {column}", _duplicate_message(key, first))
                          for key, line, column, first in loader.duplicate_keys])
    return data


# libyaml's C parser where PyYAML was built with it (the wheels are): parsing a fleet-sized scenario is
# several times faster; the constructor (duplicate keys, number forms) stays the same Python code
_YAML_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ScenarioYamlLoader(_YAML_BASE):
    """SafeLoader that also reads 1e3 and 2E-4 as numbers (YAML 1.1 wants a dot: 1.0e3), and records
    duplicate keys (the last would silently win) with the lines of both."""

    def __init__(self, stream: Any):
        super().__init__(stream)
        self.duplicate_keys: list[tuple[Any, int, int, int]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue  # merge keys (<<) override by design; complex keys are refused later
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in seen:
                    self.duplicate_keys.append((key, line, key_node.start_mark.column + 1, seen[key]))
                else:
                    seen[key] = line
        return super().construct_mapping(node, deep)


ScenarioYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def resolve_catalog_references(data: dict[str, Any], label: str, problems: list[Problem]) -> dict[str, Any]:
    """Accelerators and models may name a catalog entry instead of repeating its specs.

    `- h200` takes the catalog entry as it is; `- {catalog: h200, id: my-h200, memory_gb: 140}`
    takes it with overrides (id defaults to the catalog id).
    """
    resolved = dict(data)
    for key in ("accelerators", "models"):
        items = data.get(key)
        if not isinstance(items, list) or not any(_is_reference(item) for item in items):
            continue
        from placement.catalog import load_catalog

        accelerators, models = load_catalog()
        catalog = accelerators if key == "accelerators" else models
        entries = []
        for i, item in enumerate(items):
            if not _is_reference(item):
                entries.append(item)
                continue
            ref = item if isinstance(item, str) else item.get("catalog")
            if not isinstance(ref, str) or ref not in catalog:
                problems.append(Problem(label, f"{key}[{i}]" + ("" if isinstance(item, str) else ".catalog"),
                                        f"no catalog entry {ref!r}; the catalog has {sorted(catalog)}"))
                continue
            entry = catalog[ref].model_dump(mode="json", exclude_none=True)
            if isinstance(item, dict):
                entry.update({k: v for k, v in item.items() if k != "catalog"})
            entries.append(entry)
        resolved[key] = entries
    return resolved


def apply_estimator_overrides(data: dict[str, Any], path: Path, label: str, problems: list[Problem]) -> dict[str, Any]:
    """`estimator_overrides:` (a YAML file relative to the scenario, or a mapping) sets efficiency factors
    per accelerator id; they are merged into each accelerator's `efficiency` (the override wins), so the
    estimator reads one place. The validated mapping stays in the scenario (and its hash)."""
    value = data.get("estimator_overrides")
    if value is None:
        return data
    where = label
    if isinstance(value, str):
        where = value
        try:  # the same rules as any table: inside the scenario's folder, a regular file, bounded size
            text = read_text_bounded(table_path(path, value, "estimator_overrides"), value, MAX_TABLE_BYTES, "file")
            value = yaml.safe_load(text)
        except InputError as exc:
            problems.extend(exc.problems)
            return {**data, "estimator_overrides": None}
        except yaml.YAMLError as exc:
            problems.append(Problem(where, "", f"cannot be read as YAML ({str(exc)[:200]})"))
            return {**data, "estimator_overrides": None}
    try:
        overrides = EstimatorOverrides.model_validate(value)
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(Problem(where, "estimator_overrides." + _format_loc(list(err["loc"])), err["msg"]))
        return {**data, "estimator_overrides": None}
    accelerators = data.get("accelerators")
    entries = [dict(a) if isinstance(a, dict) else a for a in accelerators] if isinstance(accelerators, list) else []
    ids = {a.get("id"): i for i, a in enumerate(entries) if isinstance(a, dict)}
    for accel_id, factors in overrides.accelerators.items():
        if accel_id not in ids:
            problems.append(Problem(where, f"estimator_overrides.accelerators.{accel_id}",
                                    f"no accelerator {accel_id!r} in the scenario; known: {sorted(k for k in ids if k)}"))
            continue
        entry = entries[ids[accel_id]]
        current = entry.get("efficiency") if isinstance(entry.get("efficiency"), dict) else {}
        entry["efficiency"] = {**current, **factors.model_dump(exclude_none=True)}
    merged = {**data, "estimator_overrides": overrides.model_dump(mode="json", exclude_none=True)}
    if isinstance(accelerators, list):
        merged["accelerators"] = entries
    return merged


def _is_reference(item: Any) -> bool:
    return isinstance(item, str) or (isinstance(item, dict) and "catalog" in item)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a valid number; give a finite value")


def _read_csv(text: str, label: str, required: tuple[str, ...]) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Parse a CSV table's text. A file whose header names none of the `required` columns is not a
    table of this kind: say so without showing any of its content (it may be a file never meant to be
    read, like a password file)."""
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True, comment=None)
    except pd.errors.EmptyDataError:
        return None, [Problem(label, "", "the table is empty; give a header line and rows")]
    except (pd.errors.ParserError, ValueError) as exc:
        reason = str(exc).strip()[:200]
        hint = ""
        if "Expected 1 fields" in str(exc):  # a one-column header: another delimiter, decimal commas in rows
            hint = "; the header has one column: if the table is separated by ';' or tabs, use commas"
        return None, [Problem(label, "", f"not a readable CSV table ({reason}){hint}; give comma-separated "
                                         "columns with a header line")]
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame.columns) == 1 and _other_delimiter(frame.columns[0]):
        return None, [Problem(label, "header", f"one column: the table is separated by "
                                               f"{_other_delimiter(frame.columns[0])!r}; use commas")]
    if not any(column in frame.columns for column in required):
        return None, [Problem(label, "header", f"not a table of this kind: its first line names none of the "
                                               f"columns {list(required)} (its content is not shown); give a "
                                               "comma-separated table with a header line")]
    dupes = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if dupes:
        return None, [Problem(label, "header", f"duplicate columns {dupes}")]
    return frame, []


def _other_delimiter(header: str) -> str | None:
    """The delimiter a one-column header was written with instead of commas (';', tab, '|'), if any."""
    return next((d for d in (";", "\t", "|") if d in header), None)


TABLE_KEY_COLUMNS = {"demand": ("workload",), "load_curve": ("workload",), "fleet": ("model", "pool")}
ROW_TABLES: dict[str, type[BaseModel]] = {"demand": DemandRow, "load_curve": LoadCurveRow, "fleet": FleetRow}


def read_csv_records(text: str, label: str, required: tuple[str, ...] = ("id",),
                     row_model: type[BaseModel] | None = None) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Read the text of a CSV table of accelerators/models/pools into records pydantic validates.

    Columns `dense_tflops_<precision>` fold into `dense_tflops`, `quality_<metric>` into `quality`.
    Empty cells mean "not given". A table of plain rows (`row_model`: demand, load_curve, fleet) has its
    header checked first, so a missing or unknown column is one problem, not one per row.
    """
    frame, problems = _read_csv(text, label, required)
    if frame is None:
        return [], problems
    if row_model is not None:
        fields = row_model.model_fields
        missing = [name for name, field in fields.items() if field.is_required() and name not in frame.columns]
        unknown = [column for column in frame.columns if column not in fields]
        if missing or unknown:
            said = ([f"lacks column(s) {missing}"] if missing else []) + \
                ([f"has unknown column(s) {unknown}"] if unknown else [])
            return [], [Problem(label, "header", f"{' and '.join(said)}; its columns are {list(fields)}")]
    records = []
    for _, row in frame.iterrows():
        record: dict[str, Any] = {}
        for column, cell in row.items():
            cell = cell.strip()
            if cell == "":
                continue
            for prefix, target in (("dense_tflops_", "dense_tflops"), ("quality_", "quality"),
                                   ("efficiency_", "efficiency")):
                if column.startswith(prefix):
                    record.setdefault(target, {})[column[len(prefix):]] = _number_or_text(cell)
                    break
            else:
                record[column] = _number_or_text(cell)
        records.append(record)
    return records, problems


def _number_or_text(cell: str) -> Any:
    lowered = cell.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        number = float(cell)
    except ValueError:
        return cell
    return int(number) if number.is_integer() and "." not in cell and "e" not in lowered else number


def empty_profile_frame() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in PROFILE_COLUMNS})
    for column in ("model", "accelerator", "source", "note"):
        frame[column] = frame[column].astype(object)
    return frame


def _frame_or_empty(rows: list[Any]) -> pd.DataFrame:
    if not rows:
        return empty_profile_frame()
    if not all(isinstance(r, dict) for r in rows):
        return pd.DataFrame({"__not_a_mapping__": [not isinstance(r, dict) for r in rows]})
    return pd.DataFrame(rows)


def read_profile_table(text: str, label: str) -> tuple[pd.DataFrame | None, list[Problem]]:
    frame, problems = _read_csv(text, label, ("model", "accelerator"))
    if frame is None:
        return None, problems
    return check_profile_frame(frame, label, None)


def check_profile_frame(
    frame: pd.DataFrame, label: str, field_prefix: str | None
) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Column-wise checks of a profile table; each problem names the row and column.

    Vectorized so a table of many thousands of rows validates in milliseconds.
    """

    def where(row: int | None, column: str) -> str:
        if field_prefix is None:
            return f"row {row + 1} (line {row + 2}), column {column}" if row is not None else f"column {column}"
        return f"{field_prefix}[{row}].{column}" if row is not None else f"{field_prefix}.{column}"

    problems: list[Problem] = []
    if "__not_a_mapping__" in frame.columns:
        rows = [i for i, bad in enumerate(frame["__not_a_mapping__"]) if bad]
        return None, [Problem(label, f"{field_prefix}[{rows[0]}]", "each profile row must be a mapping")]
    unknown = [c for c in frame.columns if c not in PROFILE_COLUMNS]
    for column in unknown:
        problems.append(Problem(label, where(None, column), f"unknown column; known columns are {PROFILE_COLUMNS}"))
    frame = frame.drop(columns=unknown)  # the known columns are still checked, row by row
    structural: list[Problem] = []
    for column in ("model", "accelerator", "chips_per_replica", "input_tokens", "output_tokens"):
        if column not in frame.columns:
            structural.append(Problem(label, where(None, column), "required column is missing"))
    if "requests_per_s" not in frame.columns and "output_tokens_per_s" not in frame.columns:
        structural.append(
            Problem(label, where(None, "requests_per_s"), "give requests_per_s or output_tokens_per_s (replica total)")
        )
    if structural:
        return None, problems + structural
    out = empty_profile_frame().iloc[0:0].reindex(range(len(frame)))
    for column in ("model", "accelerator", "source", "note"):
        if column in frame.columns:
            text = frame[column].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
            out[column] = text.str.strip().astype(object)
            if column in ("model", "accelerator"):
                for row in _rows(text.str.strip() == ""):
                    problems.append(Problem(label, where(row, column), "empty; give the id"))
        else:
            out[column] = None
    for column, rule in PROFILE_NUMERIC.items():
        if column not in frame.columns:
            out[column] = math.nan
            continue
        raw = frame[column]
        blank = raw.map(lambda v: v is None or (isinstance(v, str) and v.strip() == "")
                        or (isinstance(v, float) and math.isnan(v))).astype(bool)   # an empty column maps to str
        values = pd.to_numeric(raw.where(~blank, None), errors="coerce")
        not_number = values.isna() & ~blank
        for row in _rows(not_number):
            problems.append(Problem(label, where(row, column), f"{_shown(raw.iloc[row])} is not a number"))
        if column in ("chips_per_replica", "input_tokens", "output_tokens"):
            for row in _rows(blank):
                problems.append(Problem(label, where(row, column), "empty; this column is required in every row"))
        finite = values.notna()
        for row in _rows(finite & ~values.map(lambda v: math.isfinite(v) if v == v else True)):
            problems.append(Problem(label, where(row, column), f"{_shown(raw.iloc[row])} is not finite"))
        ok = finite & values.map(lambda v: math.isfinite(v) if v == v else False)
        minimum, strict = (0.0, rule.endswith(">0")) if not rule.endswith(">=1") else (1.0, False)
        below = ok & ((values <= minimum) if strict else (values < minimum))
        for row in _rows(below):
            problems.append(Problem(label, where(row, column), f"{_shown(raw.iloc[row])} must be {rule.replace('int', '')}"))
        for row in _rows(ok & (values > PROFILE_MAXIMUM[column])):
            problems.append(Problem(label, where(row, column),
                                    f"{_shown(raw.iloc[row])} must be <= {PROFILE_MAXIMUM[column]:g} (the limit)"))
        if rule.startswith("int"):
            for row in _rows(ok & (values % 1 != 0)):
                problems.append(Problem(label, where(row, column), f"{_shown(raw.iloc[row])} must be a whole number"))
        out[column] = values.astype("float64")
    neither = out["requests_per_s"].isna() & out["output_tokens_per_s"].isna()
    neither &= ~frame.get("requests_per_s", pd.Series(dtype=object)).reindex(out.index).map(
        lambda v: isinstance(v, str) and v.strip() != "").to_numpy()  # a non-number was reported already
    for row in _rows(neither):
        problems.append(Problem(label, where(row, "requests_per_s"), "empty; give requests_per_s or output_tokens_per_s"))
    if problems:
        return out.reset_index(drop=True), problems  # the ids are still cross-checked in the same pass
    derived = out["output_tokens_per_s"] / out["output_tokens"]
    out["requests_per_s"] = out["requests_per_s"].fillna(derived)
    for column in ("chips_per_replica", "input_tokens", "output_tokens"):
        out[column] = out[column].astype("int64")
    return out.reset_index(drop=True), []


def _shown(value: Any) -> str:
    """A cell as the user wrote it: text quoted, numbers plain (no numpy reprs)."""
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    return repr(value) if isinstance(value, str) else str(value)


def _rows(mask: pd.Series) -> list[int]:
    return [int(i) for i in mask.to_numpy().nonzero()[0]]


def _problem_from_pydantic(err: dict[str, Any], label: str, origins: dict[str, str]) -> Problem:
    loc = list(err.get("loc", ()))
    message = err.get("msg", "invalid")
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        message = "unknown field (check the spelling against `placement schema`)"
    elif kind == "missing":
        message = "required field is missing"
    value = err.get("input")
    if kind not in ("missing", "model_attributes_type") and not isinstance(value, (dict, list)):
        shown = repr(value)
        message += f" (got {shown if len(shown) <= 80 else shown[:77] + '...'})"
    if loc and loc[0] in origins and len(loc) >= 2 and isinstance(loc[1], int):
        table = origins[loc[0]]
        row = loc[1]
        column = ".".join(str(p) for p in loc[2:]) or "(row)"
        return Problem(table, f"row {row + 1} (line {row + 2}), column {column}", message)
    return Problem(label, _format_loc(loc), message)


def _format_loc(loc: list[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def cross_check(data: dict[str, Any], profiles: pd.DataFrame | None, label: str,
                origins: dict[str, str]) -> list[Problem]:
    """References and uniqueness: what a schema alone cannot check.

    Works on the raw document (tolerating malformed entries), so these problems are reported in the
    same pass as schema errors: a user sees every problem at once.
    """
    problems: list[Problem] = []

    def where(field: str, i: int, sub: str) -> tuple[str, str]:
        if field in origins:
            return origins[field], f"row {i + 1} (line {i + 2}), column {sub}"
        return label, f"{field}[{i}].{sub}"

    ids: dict[str, set[str]] = {}
    for field in ("accelerators", "models", "workloads", "pools"):
        seen: dict[str, int] = {}
        for i, entry in _entries(data, field):
            item_id = entry.get("id")
            if not isinstance(item_id, str):
                continue
            if item_id in seen:
                problems.append(Problem(*where(field, i, "id"),
                                        f"duplicate id {item_id!r} (first at {field}[{seen[item_id]}])"))
            seen.setdefault(item_id, i)
        ids[field] = set(seen)
    accel_ids, model_ids = ids["accelerators"], ids["models"]
    for i, pool in _entries(data, "pools"):
        accelerator = pool.get("accelerator")
        if isinstance(accelerator, str) and accelerator not in accel_ids:
            problems.append(Problem(*where("pools", i, "accelerator"),
                                    f"unknown accelerator {accelerator!r}; known: {sorted(accel_ids)}"))
    scores = {m.get("id"): m.get("quality") for _, m in _entries(data, "models")}
    for i, workload in _entries(data, "workloads"):
        allowed = workload.get("allowed_models")
        allowed = allowed if isinstance(allowed, list) else None
        for j, model_id in enumerate(allowed or []):
            if isinstance(model_id, str) and model_id not in model_ids:
                problems.append(Problem(label, f"workloads[{i}].allowed_models[{j}]",
                                        f"unknown model {model_id!r}; known: {sorted(model_ids)}"))
        problems += _duplicate_buckets(workload, label, i)
        quality = workload.get("quality")
        metric = quality.get("metric") if isinstance(quality, dict) else None
        if isinstance(metric, str):
            candidates = allowed or sorted(model_ids)
            scored = {m: scores[m][metric] for m in candidates
                      if isinstance(scores.get(m), dict) and _is_number(scores[m].get(metric))}
            if not scored:
                problems.append(Problem(label, f"workloads[{i}].quality.metric",
                                        f"no candidate model has a score for metric {metric!r}; "
                                        "add it to the models' quality or fix the metric name"))
            else:
                problems += _unreachable_floors(quality, scored, label, i)
    problems += cross_check_time(data, label, origins, ids)
    if profiles is not None and len(profiles):
        profiles_label = origins.get("profiles", label)
        for column, known in (("model", model_ids), ("accelerator", accel_ids)):
            unknown = profiles[~profiles[column].isin(known)]
            for value, rows in unknown.groupby(column, sort=True).groups.items():
                first = int(rows[0])
                more = f" and {len(rows) - 1} more rows" if len(rows) > 1 else ""
                place = (f"row {first + 1} (line {first + 2}){more}, column {column}" if "profiles" in origins
                         else f"profiles[{first}].{column}")
                problems.append(Problem(profiles_label, place, f"unknown {column} {value!r}; known: {sorted(known)}"))
    return problems


def cross_check_time(data: dict[str, Any], label: str, origins: dict[str, str],
                     ids: dict[str, set[str]]) -> list[Problem]:
    """Periods, slices, contracts and the fleet: every id they name must exist (time-and-contracts.md)."""
    problems: list[Problem] = []

    def where(field: str, i: int, sub: str) -> tuple[str, str]:
        if field in origins:
            return origins[field], f"row {i + 1} (line {i + 2}), column {sub}"
        return label, f"{field}[{i}].{sub}"

    def listed_ids(field: str) -> list[str] | None:
        items = data.get(field)
        if not isinstance(items, list):
            return None
        seen: list[str] = []
        for i, item in _entries(data, field):
            item_id = item.get("id")
            if isinstance(item_id, str):
                if item_id in seen:
                    problems.append(Problem(label, f"{field}[{i}].id", f"duplicate {field[:-1]} id {item_id!r}"))
                seen.append(item_id)
        return seen

    periods = listed_ids("periods")
    slices = listed_ids("slices")
    period_ids = set(periods) if periods is not None else {DEFAULT_PERIOD}
    derived = data.get("load_curve") is not None
    slice_options = (data.get("options") or {}).get("slices") if isinstance(data.get("options"), dict) else None
    if derived and data.get("slices") is not None:
        problems.append(Problem(label, "slices", "slices are derived from load_curve; drop `slices:` or the curve"))
    if derived and not isinstance(slice_options, dict):
        problems.append(Problem(label, "options.slices", "load_curve needs options.slices: {count: K}"))
    if slice_options is not None and not derived:
        problems.append(Problem(label, "options.slices", "options.slices derives slices from load_curve; "
                                                          "give load_curve or list `slices:`"))
    for field in ("demand", "load_curve"):
        if data.get(field) == [] and field not in origins:   # a table's own emptiness is said where it is read
            problems.append(Problem(label, field, f"has no rows; give rows, or drop `{field}:`"))
    slice_ids = set(slices) if slices is not None else ({DEFAULT_SLICE} if not derived else None)
    weights = [item.get("weight") for _, item in _entries(data, "slices")]
    if slices is not None and all(isinstance(w, (int, float)) for w in weights) and weights:
        if abs(sum(weights) - 1.0) > SHARE_TOLERANCE:
            problems.append(Problem(label, "slices", f"slice weights sum to {sum(weights):.6g}, not 1"))

    def check_keys(mapping: Any, known: set[str] | None, file: str, field: str, what: str, every: bool = False):
        if not isinstance(mapping, dict) or known is None:
            return
        for key in mapping:
            if key not in known:
                problems.append(Problem(file, f"{field}.{key}", f"unknown {what} {key!r}; known: {sorted(known)}"))
        missing = sorted(known - set(mapping))
        if every and missing:
            problems.append(Problem(file, field, f"no value for {what}s {missing}; give every {what} "
                                                 "or a single number"))

    for i, workload in _entries(data, "workloads"):
        check_keys(workload.get("growth"), period_ids, label, f"workloads[{i}].growth", "period")
        check_keys(workload.get("shape"), slice_ids, label, f"workloads[{i}].shape", "slice")
    for i, pool in _entries(data, "pools"):
        file, field = where("pools", i, "max_chips")
        check_keys(pool.get("max_chips"), period_ids, file, field, "period", every=True)
        check_keys(pool.get("availability"), slice_ids, label, f"pools[{i}].availability", "slice")
        for j, contract in enumerate(pool.get("committed") or [] if isinstance(pool.get("committed"), list) else []):
            ends = {key: contract.get(key) for key in ("starts", "through")} if isinstance(contract, dict) else {}
            for key, period in ends.items():
                if isinstance(period, str) and period not in period_ids:
                    problems.append(Problem(label, f"pools[{i}].committed[{j}].{key}",
                                            f"unknown period {period!r}; known: {sorted(period_ids)}"))
            order = periods or [DEFAULT_PERIOD]
            if ends and all(isinstance(p, str) and p in order for p in ends.values()) and \
                    order.index(ends["starts"]) > order.index(ends["through"]):
                problems.append(Problem(label, f"pools[{i}].committed[{j}].starts",
                                        f"starts {ends['starts']!r} is after through {ends['through']!r}"))
        problems += _reserved_within_cap(pool, periods or [DEFAULT_PERIOD], label, i)
    options = data.get("options") if isinstance(data.get("options"), dict) else {}
    check_keys(options.get("max_churn_chips"), period_ids, label, "options.max_churn_chips", "period", every=True)
    pools = {p.get("id"): p for _, p in _entries(data, "pools") if isinstance(p.get("id"), str)}
    fleet_rows: dict[tuple, int] = {}
    for i, row in _entries(data, "fleet"):
        key = tuple(repr(row.get(c)) for c in ("model", "accelerator", "chips_per_replica", "pool"))
        if key in fleet_rows:
            problems.append(Problem(*where("fleet", i, "model"),
                                    f"duplicate row for {row.get('model')}/{row.get('accelerator')} "
                                    f"x{row.get('chips_per_replica')} in {row.get('pool')} (first at row "
                                    f"{fleet_rows[key] + 1}); give one row with the replicas summed"))
        fleet_rows.setdefault(key, i)
        for column, known in (("model", ids["models"]), ("accelerator", ids["accelerators"]),
                              ("pool", set(pools))):
            value = row.get(column)
            if isinstance(value, str) and value not in known:
                problems.append(Problem(*where("fleet", i, column), f"unknown {column} {value!r}; known: {sorted(known)}"))
        pool = pools.get(row.get("pool")) if isinstance(row.get("pool"), str) else None
        if isinstance(pool, dict) and isinstance(row.get("accelerator"), str) and \
                pool.get("accelerator") != row.get("accelerator") and row.get("accelerator") in ids["accelerators"]:
            problems.append(Problem(*where("fleet", i, "pool"),
                                    f"pool {row.get('pool')!r} holds {pool.get('accelerator')!r}, "
                                    f"not {row.get('accelerator')!r}"))
    for field, columns in (("demand", (("workload", ids["workloads"]), ("period", period_ids), ("slice", slice_ids))),
                           ("load_curve", (("workload", ids["workloads"]),))):
        seen_keys: dict[tuple, int] = {}
        for i, row in _entries(data, field):
            for column, known in columns:
                value = row.get(column)
                if known is not None and isinstance(value, str) and value not in known:
                    problems.append(Problem(*where(field, i, column), f"unknown {column} {value!r}; known: {sorted(known)}"))
            key = tuple(repr(row.get(c)) for c in ([c for c, _ in columns] + (["hour"] if field == "load_curve" else [])))
            if key in seen_keys:
                problems.append(Problem(*where(field, i, columns[0][0]),
                                        f"duplicate row for {key} (first at row {seen_keys[key] + 1})"))
            seen_keys.setdefault(key, i)
    return problems


DEFAULT_PERIOD = "p1"
DEFAULT_SLICE = "all"


def _reserved_within_cap(pool: dict[str, Any], periods: list[str], label: str, i: int) -> list[Problem]:
    """A reserved pool's signed contracts fit its cap in every period they cover: a cap below them
    contradicts a contract that cannot be undone. (A block above the cap is legal: the pool goes unused.)"""
    block, cap, contracts = pool.get("block_chips", 1), pool.get("max_chips"), pool.get("committed") or []
    if pool.get("kind") != "reserved" or not _is_number(block) or not isinstance(contracts, list):
        return []
    caps = {t: cap.get(t) if isinstance(cap, dict) else cap for t in periods}
    if not all(_is_number(c) for c in caps.values()):
        return []
    problems = []
    for t, period in enumerate(periods):
        held = 0
        for contract in contracts:
            if not isinstance(contract, dict) or not _is_number(contract.get("blocks")):
                return problems
            starts, through = contract.get("starts") or periods[0], contract.get("through")
            if starts not in periods or through not in periods:
                return problems
            if periods.index(starts) <= t <= periods.index(through):
                held += contract["blocks"] * block
        if held > caps[period]:
            problems.append(Problem(label, f"pools[{i}].committed", f"contracts already signed hold {held:,} chips "
                                                                    f"in {period}, above max_chips {caps[period]:,}; "
                                                                    f"raise max_chips to at least {held:,} there"))
            break
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _duplicate_buckets(workload: dict[str, Any], label: str, i: int) -> list[Problem]:
    """Two buckets of one workload with the same lengths are one bucket written twice (and double the rows)."""
    buckets = workload.get("buckets")
    seen: dict[tuple[Any, Any], int] = {}
    problems = []
    for j, bucket in enumerate(buckets if isinstance(buckets, list) else []):
        if not isinstance(bucket, dict):
            continue
        lengths = (bucket.get("input_tokens"), bucket.get("output_tokens"))
        if not all(_is_number(n) for n in lengths):
            continue
        if lengths in seen:
            problems.append(Problem(label, f"workloads[{i}].buckets[{j}]",
                                    f"same lengths ({lengths[0]} in, {lengths[1]} out) as buckets[{seen[lengths]}]; "
                                    "merge them into one bucket and add their shares"))
        seen.setdefault(lengths, j)
    return problems


def _unreachable_floors(quality: dict[str, Any], scored: dict[str, float], label: str, i: int) -> list[Problem]:
    """A floor above every allowed model's score can never be met: say so before any solve."""
    best_model = max(sorted(scored), key=lambda m: scored[m])
    best = scored[best_model]
    problems = []
    for floor in ("min", "min_mean"):
        value = quality.get(floor)
        if _is_number(value) and value > best:
            problems.append(Problem(label, f"workloads[{i}].quality.{floor}",
                                    f"{value:g} is above every allowed model's {quality['metric']} score (best: "
                                    f"{best_model} at {best:g}); lower {floor} to at most {best:g} or allow a model "
                                    "that reaches it"))
    return problems


def _entries(data: dict[str, Any], field: str) -> list[tuple[int, dict[str, Any]]]:
    items = data.get(field)
    if not isinstance(items, list):
        return []
    return [(i, item) for i, item in enumerate(items) if isinstance(item, dict)]


def canonical_hash(scenario: Scenario, profiles: pd.DataFrame) -> str:
    """sha256 of the canonical scenario: validated fields (tables resolved), sorted keys, profile rows."""
    document = scenario.model_dump(mode="json", exclude={"profiles"})
    document["profiles"] = json.loads(profiles.to_json(orient="records", double_precision=15))
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def json_schema() -> dict[str, Any]:
    """The scenario's JSON Schema, with what the loader accepts beyond the validated model: tables as
    CSV paths (accelerators, models, pools, profiles) and catalog references (accelerators, models)."""
    schema = Scenario.model_json_schema()
    properties = schema["properties"]
    path = {"type": "string", "description": "CSV file inside the scenario's folder, relative to the scenario file "
                                             "(at most 64 MiB; absolute paths and paths leading out are refused)"}
    reference = {"anyOf": [{"type": "string", "description": "catalog id (placement/catalog_data)"},
                           {"type": "object", "required": ["catalog"],
                            "properties": {"catalog": {"type": "string"}},
                            "description": "catalog id plus fields that override the catalog entry"}]}
    for key in TABLE_FIELDS:
        properties[key] = {"anyOf": [properties[key], path], "description": properties[key].get("description", "")}
    for key in ("accelerators", "models"):
        listed = properties[key]["anyOf"][0]
        listed["items"] = {"anyOf": [listed["items"], reference]}
    overrides = properties["estimator_overrides"]
    properties["estimator_overrides"] = {
        "anyOf": [overrides, {"type": "string", "description": "YAML file (e.g. from placement calibrate), "
                                                                "relative to the scenario file"}],
        "description": overrides.get("description", "")}
    return schema

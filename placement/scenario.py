"""The scenario: the one input of a solve (contract: shared/spec/scenario.md).

Pydantic v2 models with unknown fields rejected and NaN/infinity refused, a loader for YAML/JSON
with CSV tables referenced by relative path, and the cross-reference checks pydantic cannot do
(unknown ids, duplicates, shares summing to 1). Every problem is reported at once as an
`InputError` naming file, field path and fix.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from placement.errors import InputError, Problem

SHARE_TOLERANCE = 1e-6


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


class Accelerator(Strict):
    """A chip type. Specs are optional when every deployment on it has measured profile rows;
    the estimator needs them otherwise."""

    id: Name
    name: str | None = None
    memory_gb: float | None = Field(default=None, gt=0, description="per chip, HBM or SRAM, GB")
    memory_bandwidth_tbps: float | None = Field(default=None, gt=0, description="per chip, TB/s")
    dense_tflops: dict[str, float] = Field(
        default_factory=dict, description="dense TFLOP/s per chip by precision (bf16, fp8, fp4, int8)"
    )
    scaleup_domain: int = Field(default=8, ge=1, description="max chips one replica may span over the fast fabric")
    scaleup_bandwidth_gbps: float | None = Field(default=None, gt=0, description="per chip, GB/s, scale-up fabric")
    memory_kind: Literal["hbm", "sram"] = Field(default="hbm", description="sram: speed from measured tables only")
    power_kw: float | None = Field(default=None, gt=0, description="per chip, kW")
    source: str | None = Field(default=None, description="where the specs come from")
    uncertainty: str | None = Field(default=None, description="how far the specs can be trusted")

    @field_validator("dense_tflops")
    @classmethod
    def _positive_tflops(cls, value: dict[str, float]) -> dict[str, float]:
        for precision, tflops in value.items():
            if not (isinstance(tflops, (int, float)) and math.isfinite(tflops) and tflops > 0):
                raise ValueError(f"dense_tflops.{precision} must be a positive finite number, got {tflops!r}")
        return value


class Model(Strict):
    """A model variant. `family` groups variants of one model (frontier, distilled, ...)."""

    id: Name
    family: str | None = None
    total_params_b: float | None = Field(default=None, gt=0, description="billions of parameters, all experts")
    active_params_b: float | None = Field(default=None, gt=0, description="billions of parameters active per token")
    weight_bits: float | None = Field(default=None, gt=0, le=32)
    kv_bytes_per_token: float | None = Field(default=None, ge=0, description="KV cache bytes per token, whole model")
    max_context_tokens: int | None = Field(default=None, ge=1, description="input + output tokens the model accepts")
    quality: dict[str, float] = Field(default_factory=dict, description="named metrics; higher is better")
    architecture: dict[str, Any] | None = Field(
        default=None, description="Hugging Face config.json fields (used by the estimator)"
    )
    source: str | None = None

    @field_validator("quality")
    @classmethod
    def _finite_quality(cls, value: dict[str, float]) -> dict[str, float]:
        for metric, score in value.items():
            try:
                _visible(metric)
            except ValueError as exc:
                raise ValueError(f"metric name {metric!r} {exc}") from None
            if not (isinstance(score, (int, float)) and math.isfinite(score)):
                raise ValueError(f"quality.{metric} must be a finite number, got {score!r}")
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

    input_tokens: int = Field(ge=1)
    output_tokens: int = Field(ge=1)
    share: float = Field(gt=0, le=1)


class SLO(Strict):
    """Latency objectives; each is optional (absent = unconstrained)."""

    min_output_tokens_per_s: float | None = Field(default=None, gt=0, description="per-user decode speed, tok/s")
    max_ttft_s: float | None = Field(default=None, gt=0, description="time to first token, s")
    max_e2e_s: float | None = Field(default=None, gt=0, description="ttft + output_tokens / per-user speed, s")


class QualityFloor(Strict):
    metric: Name
    min: float | None = Field(default=None, description="every request: the model's score >= min")
    min_mean: float | None = Field(default=None, description="traffic-weighted mean score >= min_mean")

    @model_validator(mode="after")
    def _some_floor(self) -> "QualityFloor":
        if self.min is None and self.min_mean is None:
            raise ValueError("give min, min_mean or both (a quality block with neither constrains nothing)")
        return self


class Workload(Strict):
    """A demand slice: arrival rate, length mix, SLO and quality requirements."""

    id: Name
    requests_per_s: float = Field(ge=0, description="mean arrival rate over the period, req/s")
    buckets: list[Bucket] = Field(min_length=1)
    slo: SLO = Field(default_factory=SLO)
    quality: QualityFloor | None = None
    allowed_models: list[Name] | None = Field(default=None, min_length=1)
    must_serve: bool = True
    unserved_cost_per_request: float | None = Field(default=None, ge=0, description="currency per shed request")

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


class Pool(Strict):
    """Capacity one can run on: owned (prepaid), take-or-pay (reserved) or rented (on_demand, spot)."""

    id: Name
    accelerator: Name
    kind: PoolKind
    max_chips: int = Field(ge=0, description="supply cap, chips")
    block_chips: int = Field(default=1, ge=1, description="reserved purchase granularity, chips")
    price_per_chip_hour: float | None = Field(default=None, ge=0, description="currency per chip-hour")
    fixed_cost: float = Field(default=0, ge=0, description="sunk cost for the period; reported, never decides")

    @model_validator(mode="after")
    def _price_matches_kind(self) -> "Pool":
        if self.kind == "prepaid":
            if self.price_per_chip_hour not in (None, 0):
                raise ValueError(
                    "a prepaid pool has no marginal price; move its cost to fixed_cost and drop price_per_chip_hour"
                )
        elif self.price_per_chip_hour is None:
            raise ValueError(f"a {self.kind} pool needs price_per_chip_hour")
        if self.kind != "reserved" and "block_chips" in self.model_fields_set and self.block_chips != 1:
            raise ValueError("block_chips applies to reserved pools only")
        return self

    @property
    def price(self) -> float:
        return float(self.price_per_chip_hour or 0.0)


class SolverOptions(Strict):
    backend: Literal["ortools", "pulp"] | None = None
    engine: Literal["highs", "scip", "cbc", "cp-sat"] | None = None
    time_limit_s: float = Field(default=60, gt=0)
    mip_gap: float = Field(default=1e-4, ge=0, lt=1)
    threads: int = Field(default=1, ge=1, description="1 keeps solves deterministic")

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


ENGINES = {"ortools": {"highs", "scip", "cp-sat"}, "pulp": {"cbc", "highs"}}
DEFAULT_ENGINE = {"ortools": "highs", "pulp": "cbc"}


def resolve_backend_engine(backend: str | None, engine: str | None) -> tuple[str, str]:
    """Backend defaults to ortools, except that engine cbc alone implies pulp."""
    if backend is None:
        backend = "pulp" if engine == "cbc" else "ortools"
    return backend, engine or DEFAULT_ENGINE[backend]


class Options(Strict):
    headroom: float = Field(default=0.0, ge=0, lt=1, description="fraction of replica capacity kept free")
    max_shapes_per_model_accelerator: int | None = Field(
        default=None, ge=1,
        description="at most this many replica sizes (chips_per_replica) per (model, accelerator) in a plan; "
                    "fewer shapes are simpler to operate, at a price the plan shows")
    solver: SolverOptions = Field(default_factory=SolverOptions)
    baselines: bool = Field(default=True, description="also solve the best single-accelerator plans")


class ProfileRow(Strict):
    """One operating point of one replica (used for inline rows; CSV tables are checked column-wise)."""

    model: str
    accelerator: str
    chips_per_replica: int = Field(ge=1)
    input_tokens: int = Field(ge=1)
    output_tokens: int = Field(ge=1)
    requests_per_s: float | None = Field(default=None, ge=0)
    output_tokens_per_s: float | None = Field(default=None, ge=0)
    output_tokens_per_s_per_user: float | None = Field(default=None, gt=0)
    ttft_s: float | None = Field(default=None, ge=0)
    batch_size: int | None = Field(default=None, ge=1)
    source: str | None = None
    note: str | None = None


class Scenario(Strict):
    name: Name
    currency: Name = "USD"
    hours: float = Field(default=2190, gt=0, description="planning period, hours")
    accelerators: list[Accelerator] = Field(min_length=1)
    models: list[Model] = Field(min_length=1)
    workloads: list[Workload] = Field(min_length=1)
    pools: list[Pool] = Field(min_length=1)
    profiles: list[ProfileRow] | None = None
    options: Options = Field(default_factory=Options)
    description: str | None = None

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
}
PROFILE_COLUMNS = ["model", "accelerator", *PROFILE_NUMERIC, "source", "note"]
TABLE_FIELDS = ("accelerators", "models", "pools", "profiles")


class LoadedScenario:
    """A validated scenario, where it came from, and its profile table as a DataFrame."""

    def __init__(self, scenario: Scenario, path: Path, profiles: pd.DataFrame, sha256: str):
        self.scenario = scenario
        self.path = path
        self.profiles = profiles
        self.sha256 = sha256


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> LoadedScenario:
    """Parse, validate and cross-check a scenario file. Raises InputError listing every problem."""
    path = Path(path)
    label = str(path)
    data = _read_document(path)
    if overrides:
        data = _deep_merge(data, overrides)
    origins: dict[str, str] = {}
    problems: list[Problem] = []
    profiles_df: pd.DataFrame | None = None
    for key in TABLE_FIELDS:
        value = data.get(key)
        if isinstance(value, str):
            table_path = (path.parent / value).resolve()
            origins[key] = value
            if key == "profiles":
                profiles_df, table_problems = read_profile_table(table_path, value)
                problems += table_problems
                data = {**data, "profiles": None}
            else:
                rows, table_problems = read_csv_records(table_path, value)
                problems += table_problems
                data = {**data, key: rows}
    data = resolve_catalog_references(data, label, problems)
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
    if profiles_df is None:
        profiles_df = empty_profile_frame()
    return LoadedScenario(scenario, path, profiles_df, canonical_hash(scenario, profiles_df))


def _read_document(path: Path) -> dict[str, Any]:
    label = str(path)
    if not path.exists():
        raise InputError.single(label, "", "file not found; check the path")
    if path.is_dir():
        raise InputError.single(label, "", "is a folder; give the scenario's YAML or JSON file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError.single(label, "", f"cannot be read as UTF-8 text ({exc})") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text, parse_constant=_reject_constant)
        else:
            data = yaml.load(text, Loader=ScenarioYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except json.JSONDecodeError as exc:
        raise InputError.single(label, f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}") from None
    except ValueError as exc:
        raise InputError.single(label, "", f"invalid JSON: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError.single(label, where, f"invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise InputError.single(label, "", "the scenario must be a mapping (name:, accelerators:, models:, ...)")
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise InputError.single(label, "", f"top-level keys must be text, got {bad_keys!r}")
    return data


class ScenarioYamlLoader(yaml.SafeLoader):
    """SafeLoader that also reads 1e3 and 2E-4 as numbers (YAML 1.1 wants a dot: 1.0e3)."""


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


def _is_reference(item: Any) -> bool:
    return isinstance(item, str) or (isinstance(item, dict) and "catalog" in item)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a valid number; give a finite value")


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_csv(path: Path, label: str) -> tuple[pd.DataFrame | None, list[Problem]]:
    if not path.exists():
        return None, [Problem(label, "", "table file not found; the path is relative to the scenario file")]
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, comment=None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        hint = ""
        if "Expected 1 fields" in str(exc):  # a one-column header: another delimiter, decimal commas in rows
            hint = "; the header has one column: if the table is separated by ';' or tabs, use commas"
        return None, [Problem(label, "", f"not a readable CSV table ({str(exc).strip()}){hint}")]
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame.columns) == 1 and _other_delimiter(frame.columns[0]):
        return None, [Problem(label, "header", f"one column {frame.columns[0]!r}: the table is separated by "
                                               f"{_other_delimiter(frame.columns[0])!r}; use commas")]
    dupes = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if dupes:
        return None, [Problem(label, "header", f"duplicate columns {dupes}")]
    return frame, []


def _other_delimiter(header: str) -> str | None:
    """The delimiter a one-column header was written with instead of commas (';', tab, '|'), if any."""
    return next((d for d in (";", "\t", "|") if d in header), None)


def read_csv_records(path: Path, label: str) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Read a CSV table of accelerators/models/pools into records pydantic validates.

    Columns `dense_tflops_<precision>` fold into `dense_tflops`, `quality_<metric>` into `quality`.
    Empty cells mean "not given".
    """
    frame, problems = _read_csv(path, label)
    if frame is None:
        return [], problems
    records = []
    for _, row in frame.iterrows():
        record: dict[str, Any] = {}
        for column, cell in row.items():
            cell = cell.strip()
            if cell == "":
                continue
            for prefix, target in (("dense_tflops_", "dense_tflops"), ("quality_", "quality")):
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


def read_profile_table(path: Path, label: str) -> tuple[pd.DataFrame | None, list[Problem]]:
    frame, problems = _read_csv(path, label)
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
        blank = raw.map(lambda v: v is None or (isinstance(v, str) and v.strip() == "") or (isinstance(v, float) and math.isnan(v)))
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
        message += f" (got {value!r})"
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
    path = {"type": "string", "description": "CSV file, relative to the scenario file"}
    reference = {"anyOf": [{"type": "string", "description": "catalog id (inputs/catalog)"},
                           {"type": "object", "required": ["catalog"],
                            "properties": {"catalog": {"type": "string"}},
                            "description": "catalog id plus fields that override the catalog entry"}]}
    for key in TABLE_FIELDS:
        properties[key] = {"anyOf": [properties[key], path], "description": properties[key].get("description", "")}
    for key in ("accelerators", "models"):
        listed = properties[key]["anyOf"][0]
        listed["items"] = {"anyOf": [listed["items"], reference]}
    return schema

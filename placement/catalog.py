"""The reference catalog: public specs of common accelerators and models, ready to use in scenarios.

Specs come from shared/data (hardware.csv, models.csv) with their sources and uncertainty; see
placement/catalog_data/README.md. The data ships inside the package (read through importlib.resources),
so an installed `placement` resolves `- h200` from any directory. Prices are not part of a chip's spec (pools carry prices): the public price
notes are in that README for users who need a starting point.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from placement.errors import InputError, Problem
from placement.scenario import Accelerator, Model, parse_yaml, read_csv_records

DEFAULT_FOLDER = resources.files("placement") / "catalog_data"  # a Path, or a Traversable inside a zip
ACCELERATORS_FILE = "accelerators.csv"
MODELS_FILE = "models.yaml"


def load_catalog(folder: Path | str | None = None) -> tuple[dict[str, Accelerator], dict[str, Model]]:
    """Accelerators and models of the catalog, keyed by id. Raises InputError listing every problem."""
    folder: Any = Path(folder) if folder is not None else DEFAULT_FOLDER
    accelerators, problems = _load_accelerators(folder / ACCELERATORS_FILE)
    models, model_problems = _load_models(folder / MODELS_FILE)
    problems += model_problems
    if problems:
        raise InputError(problems)
    return accelerators, models


def _load_accelerators(path: Any) -> tuple[dict[str, Accelerator], list[Problem]]:
    """The CSV is read like a scenario's accelerators table (same columns, same checks)."""
    label = str(path)
    if not path.is_file():
        return {}, [Problem(label, "", "catalog file not found")]
    records, problems = read_csv_records(path.read_text(encoding="utf-8"), label)
    accelerators: dict[str, Accelerator] = {}
    for i, record in enumerate(records):
        where = f"row {i + 1} (line {i + 2})"
        try:
            accel = Accelerator.model_validate(record)
        except ValidationError as exc:
            problems += _problems(label, where, exc)
            continue
        if accel.id in accelerators:
            problems.append(Problem(label, f"{where}, column id", f"duplicate id {accel.id!r}"))
        accelerators[accel.id] = accel
    return accelerators, problems


def _load_models(path: Any) -> tuple[dict[str, Model], list[Problem]]:
    label = str(path)
    if not path.is_file():
        return {}, [Problem(label, "", "catalog file not found")]
    entries = parse_yaml(path.read_text(encoding="utf-8"), label) or []
    if not isinstance(entries, list):
        return {}, [Problem(label, "", "must be a list of models")]
    models: dict[str, Model] = {}
    problems: list[Problem] = []
    for i, entry in enumerate(entries):
        try:
            model = Model.model_validate(copy.deepcopy(entry))  # YAML anchors share dicts; do not alias
        except ValidationError as exc:
            problems += _problems(label, f"[{i}]", exc)
            continue
        if model.id in models:
            problems.append(Problem(label, f"[{i}].id", f"duplicate id {model.id!r}"))
        models[model.id] = model
    return models, problems


def _problems(label: str, where: str, exc: Exception) -> list[Problem]:
    if isinstance(exc, ValidationError):
        return [
            Problem(label, f"{where}, {'.'.join(str(p) for p in err['loc'])}", err["msg"]) for err in exc.errors()
        ]
    return [Problem(label, where, str(exc))]

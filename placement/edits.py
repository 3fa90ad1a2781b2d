"""The edit language of studies and what-ifs: a path into the scenario, and the values it takes.

A path names list items by id in brackets and fields by name, checked against the scenario schema:

    pools[h200-reserved].price_per_chip_hour     one pool's price
    workloads[*].requests_per_s                  every workload's rate ([*]: every item)
    models[codex-spark].quality.swe-bench-pro    one model's score on one metric
    workloads[batch].buckets[0].share            items without an id (buckets) by position
    options.headroom                             a field that may be absent (its default is the base)

Only single values (numbers, text, true/false) are edited: an edit never replaces a list or an object,
so it can never drop the items it does not name. Edits apply to the scenario document (tables and
catalog references resolved) before validation, so an edited scenario is checked like a file. Unknown fields, ids and positions
are bad input, every one of them listed at once before anything is solved (`resolve_edits`).
"""

from __future__ import annotations

import copy
import math
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined

from placement.errors import InputError, Problem
from placement.scenario import (LoadedScenario, Scenario, _problem_from_pydantic, canonical_hash, cross_check,
                                load_scenario)

_SEGMENT = re.compile(r"^([^\[\]]+)(?:\[([^\[\]]+)\])?$")
EVERY = "*"


@dataclass(frozen=True)
class Leaf:
    """One concrete place in the document: keys and list positions from the root, and the field's type."""

    keys: tuple[Any, ...]
    kind: str                   # "int", "float", "bool", "str"
    default: Any = None         # the schema default, the base value when the document leaves it out


@dataclass(frozen=True)
class Target:
    """A path as written and every place it addresses (several with [*])."""

    path: str
    leaves: tuple[Leaf, ...]


def split_path(path: str) -> list[tuple[str, str | None]]:
    """'pools[h200-reserved].price' -> [('pools', 'h200-reserved'), ('price', None)]; dots inside
    brackets belong to the id."""
    parts, depth, current = [], 0, ""
    for char in path:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "." and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    segments = []
    for part in parts:
        match = _SEGMENT.match(part.strip())
        if depth != 0 or match is None:
            raise ValueError(f"cannot read {part!r}: write field names joined by dots, list items as name[id]")
        segments.append((match.group(1).strip(), match.group(2).strip() if match.group(2) else None))
    return segments


def resolve_edits(document: dict[str, Any], paths: list[str], label: str, where: str = "vary") -> list[Target]:
    """Every path checked against the schema and the document; all problems raised at once."""
    problems, targets = [], []
    for i, path in enumerate(paths):
        field = f"{where}[{i}].path" if where else "path"
        if not isinstance(path, str) or not path.strip():
            problems.append(Problem(label, field, f"a path is text such as 'pools[my-pool].max_chips', got {path!r}"))
            continue
        try:
            targets.append(resolve_path(document, path))
        except ValueError as exc:
            problems.append(Problem(label, field, f"{path}: {exc}"))
    if problems:
        raise InputError(problems)
    return targets


def resolve_path(document: dict[str, Any], path: str) -> Target:
    """One path against the schema and the document (ValueError saying what is wrong)."""
    return Target(path, tuple(_resolve(document, split_path(path))))


def _resolve(document: dict[str, Any], segments: list[tuple[str, str | None]]) -> list[Leaf]:
    # frontier: (keys so far, where as the user reads it, document value there (None when absent),
    # schema type there, schema default)
    frontier: list[tuple[tuple[Any, ...], str, Any, Any, Any]] = [((), "", document, Scenario, None)]
    for name, selector in segments:
        stepped = []
        for keys, shown, value, schema, _ in frontier:
            field_type, default = _field(schema, name, value, shown)
            child = value.get(name) if isinstance(value, dict) else None
            here = f"{shown}.{name}" if shown else name
            if selector is None:
                stepped.append((keys + (name,), here, child, field_type, default))
                continue
            item_type = _list_item(field_type, name)
            if not isinstance(child, list):
                raise ValueError(f"{here} is not a list in this scenario")
            for position in _select(child, selector, item_type, here):
                item = child[position]
                label = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else position
                stepped.append((keys + (name, position), f"{here}[{label}]", item, item_type, None))
        frontier = stepped
    leaves = []
    for keys, shown, value, schema, default in frontier:
        kind = _scalar_kind(schema, value)
        if kind is None:
            raise ValueError(f"{shown} is a list or an object: edit one of its values "
                             "(address list items by id, e.g. pools[my-pool].max_chips)")
        leaves.append(Leaf(keys, kind, default))
    return leaves


def _field(schema: Any, name: str, value: Any, shown: str) -> tuple[Any, Any]:
    """The type (and default) of field `name` under `schema`; free-form mappings (quality, dense_tflops)
    accept the keys the document already has."""
    model = _model_of(schema)
    if model is not None:
        fields = model.model_fields
        if name not in fields:
            raise ValueError(f"unknown field {name!r} under {shown or 'the scenario'}; "
                             f"known: {sorted(fields)}")
        info = fields[name]
        default = None if info.default is PydanticUndefined else info.default
        return info.annotation, default
    if typing.get_origin(_unoptional(schema, value)) is dict:
        present = sorted(value) if isinstance(value, dict) else []
        if name not in present:
            raise ValueError(f"no key {name!r} in {shown}; present: {present}")
        return typing.get_args(_unoptional(schema, value))[1], None
    raise ValueError(f"{shown} has no field {name!r}: it is a single value")


def _select(items: list[Any], selector: str, item_type: Any, where: str) -> list[int]:
    if selector == EVERY:
        return list(range(len(items)))
    model = _model_of(item_type)
    if model is not None and "id" in model.model_fields:
        ids = [item.get("id") if isinstance(item, dict) else item for item in items]
        if selector not in ids:
            raise ValueError(f"no item with id {selector!r} in {where}; ids: {[i for i in ids if i is not None]}")
        return [ids.index(selector)]
    if selector.isdigit() and int(selector) < len(items):
        return [int(selector)]
    raise ValueError(f"{where} items have no id: give a position 0..{len(items) - 1} or *, got {selector!r}")


def _list_item(field_type: Any, name: str) -> Any:
    field_type = _unoptional(field_type)
    if typing.get_origin(field_type) is not list:
        raise ValueError(f"{name} is not a list; drop the [...]")
    return typing.get_args(field_type)[0]


def _unoptional(annotation: Any, value: Any = None) -> Any:
    """The member of an Optional/Union annotation that applies: the only one, or, for fields that take a
    number or a mapping (max_chips: 64 or per period), the one the document's value has."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
        mapping = [a for a in args if typing.get_origin(a) is dict]
        scalar = [a for a in args if typing.get_origin(a) is not dict]
        if mapping and len(scalar) == 1:
            return mapping[0] if isinstance(value, dict) else scalar[0]
    return annotation


def _model_of(annotation: Any) -> type[BaseModel] | None:
    annotation = _unoptional(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _scalar_kind(annotation: Any, value: Any = None) -> str | None:
    annotation = _unoptional(annotation, value)
    if typing.get_origin(annotation) is Literal:
        return "str"
    for kind, python in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if annotation is python:
            return kind
    return None


def _shown(keys: tuple[Any, ...]) -> str:
    text = ""
    for key in keys:
        text += f"[{key}]" if isinstance(key, int) else ("." if text else "") + str(key)
    return text


# --------------------------------------------------------------------------------------------------
# Values


def base_value(document: dict[str, Any], leaf: Leaf) -> Any:
    """The value at a leaf, or the schema default when the document leaves it out."""
    value: Any = document
    for key in leaf.keys:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and isinstance(key, int) and key < len(value):
            value = value[key]
        else:
            return leaf.default
    return leaf.default if value is None else value


def coerce(value: Any, leaf: Leaf, where: str, scaled: bool = False) -> Any:
    """A value of the leaf's type. Scaled or ranged values of whole-number fields are rounded (so a
    max_chips scaled by 1.5 is a whole number of chips); values given as written must fit the type."""
    if leaf.kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} is not a finite number")
        if leaf.kind == "int":
            if scaled:
                return int(round(value))
            if float(value) != int(value):
                raise ValueError(f"{where}: {value!r} must be a whole number")
            return int(value)
        return float(value)
    if leaf.kind == "bool" and not isinstance(value, bool):
        raise ValueError(f"{where}: {value!r} must be true or false")
    if leaf.kind == "str" and not isinstance(value, str):
        raise ValueError(f"{where}: {value!r} must be text")
    return value


def apply_edits(document: dict[str, Any], assignments: list[tuple[Target, str, Any]]) -> dict[str, Any]:
    """A copy of `document` with every assignment (target, 'set' | 'scale', value) made; the base is untouched.

    'scale' multiplies each addressed value by its own base (every workload's rate by 1.3, each its own).
    """
    edited = copy.deepcopy(document)
    for target, how, value in assignments:
        for leaf in target.leaves:
            if how == "scale":
                base = base_value(document, leaf)
                if not isinstance(base, (int, float)) or isinstance(base, bool):
                    raise ValueError(f"{_shown(leaf.keys)} has no number to scale (it is {base!r}); give values")
                new = coerce(base * value, leaf, target.path, scaled=True)
            else:
                new = coerce(value, leaf, target.path)
            _set(edited, leaf.keys, new)
    return edited


def _set(document: dict[str, Any], keys: tuple[Any, ...], value: Any) -> None:
    node: Any = document
    for key in keys[:-1]:
        if isinstance(node, dict) and not isinstance(node.get(key), (dict, list)):
            node[key] = {}  # an absent object (slo, options.solver): created for the edit
        node = node[key]
    node[keys[-1]] = value


# --------------------------------------------------------------------------------------------------
# Documents: a scenario file, or an already loaded scenario


def editable_document(path: str | Path) -> tuple[dict[str, Any], LoadedScenario]:
    """The scenario file validated once, and its document with every table and catalog reference
    resolved (so `pools[x].price_per_chip_hour` works when `pools:` is a CSV path), for edits.

    Tables are read by the loader, with its checks. An edited copy is validated with
    `validate_document`: the schema and cross-reference checks of a file, without re-reading the
    tables it did not change.
    """
    base = load_scenario(Path(path))
    return base.scenario.model_dump(mode="python", exclude={"profiles"}), base


def edit_loaded(loaded: LoadedScenario, edits: dict[str, Any], scale: bool = False,
                label: str = "what-if") -> LoadedScenario:
    """A loaded scenario with {path: value} edits (or multipliers, scale=True), re-validated and
    re-hashed; the profile rows are kept. Unknown paths or ids: InputError naming every one."""
    document = loaded.scenario.model_dump(mode="python", exclude={"profiles"})
    targets = resolve_edits(document, list(edits), label, where="")
    try:
        edited = apply_edits(document, [(t, "scale" if scale else "set", v) for t, v in zip(targets, edits.values())])
    except ValueError as exc:
        raise InputError.single(label, "", str(exc)) from None
    return validate_document(edited, loaded, label)


def validate_document(document: dict[str, Any], loaded: LoadedScenario, label: str) -> LoadedScenario:
    """Schema and cross-reference checks on an edited document, with `loaded`'s profile rows."""
    problems = cross_check(document, loaded.profiles, label, {})
    try:
        scenario = Scenario.model_validate({**document, "profiles": None})
    except ValidationError as exc:
        raise InputError([_problem_from_pydantic(e, label, {}) for e in exc.errors()] + problems) from None
    if problems:
        raise InputError(problems)
    return LoadedScenario(scenario, loaded.path, loaded.profiles, canonical_hash(scenario, loaded.profiles))

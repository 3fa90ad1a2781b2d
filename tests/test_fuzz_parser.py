"""Fuzzing the parser: random mutations of valid scenarios never produce anything but a plan or InputError."""

from __future__ import annotations

import copy
import json
import math
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placement.errors import InputError
from placement.scenario import load_scenario
from placement.solve import prepare

REPO = Path(__file__).resolve().parents[1]
BASE_DIR = REPO / "inputs" / "speed-lanes"
BASE = yaml.safe_load((BASE_DIR / "scenario.yaml").read_text())
PROFILES = (BASE_DIR / "profiles.csv").read_text()

JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                                               max_size=2),
    st.sampled_from(["nope.csv", "h200", "reserved", "-1", "1e400", "NaN", "catalog", "/dev/zero", "../../etc/passwd",
                     "/etc/passwd", ".", "1e300"]),
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


def _mutate(doc, path, operation, junk, new_key):
    doc = copy.deepcopy(doc)
    if not path:
        return junk if operation == "replace" else doc
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if operation == "delete":
        del parent[last]
    elif operation == "replace":
        parent[last] = junk
    elif operation == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[last]))
    elif operation == "add_key" and isinstance(parent[last], dict):
        parent[last][new_key] = junk
    return doc


ALL_PATHS = list(_paths(BASE))


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ALL_PATHS), st.sampled_from(["delete", "replace", "duplicate", "add_key"]), JUNK,
       st.text(min_size=1, max_size=8), st.sampled_from(["yaml", "json"]))
def test_mutations_never_crash(path, operation, junk, new_key, fmt):
    doc = _mutate(BASE, path, operation, junk, new_key)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "profiles.csv").write_text(PROFILES)
        target = folder / f"scenario.{fmt}"
        if fmt == "json":
            target.write_text(json.dumps(doc, default=str, allow_nan=True))
        else:
            target.write_text(yaml.safe_dump(doc))
        try:
            loaded = load_scenario(target)
        except InputError as exc:
            _assert_actionable(exc.problems, target)
            return
        try:
            prepare(loaded)
        except InputError as exc:
            assert exc.problems


def _assert_actionable(problems, target: Path) -> None:
    """Every problem names the scenario or one of its tables, and says something a person can read."""
    assert problems
    for problem in problems:
        assert problem.file == str(target) or problem.file.endswith(".csv"), problem
        assert problem.message.strip() and "Traceback" not in problem.message, problem
        assert " object at 0x" not in problem.message, problem  # a Python repr is no message


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(0, 10**6), st.sampled_from(["", "x", "-1", "nan", "1.5", "inf", "1e400", ",,,", '"', "\\n"]))
def test_csv_cell_mutations_never_crash(position, junk):
    lines = PROFILES.splitlines()
    row = 1 + position % (len(lines) - 1)
    cells = lines[row].split(",")
    cells[position % len(cells)] = junk
    lines[row] = ",".join(cells)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "profiles.csv").write_text("\n".join(lines) + "\n")
        target = folder / "scenario.yaml"
        target.write_text(yaml.safe_dump(BASE))
        try:
            loaded = load_scenario(target)
        except InputError as exc:
            _assert_actionable(exc.problems, target)
            assert all(p.file == "profiles.csv" for p in exc.problems), exc.problems  # only the table was touched
            return
        assert not loaded.profiles["requests_per_s"].map(lambda v: isinstance(v, float) and math.isnan(v)).any()

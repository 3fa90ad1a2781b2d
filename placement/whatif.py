"""What-if edits for procurement questions: one more wafer? prices down 20%? demand doubled?

Each function returns a new validated scenario (with its own hash); the original is untouched. A
what-if is then just another solve: `solve_scenario(add_chips(base, "cerebras-prepaid", 16))`.
They are the edit language of studies (placement.edits) with names: `edit(base, {path: value})` and
`scale(base, {path: factor})` take any path, e.g. `pools[h200-reserved].max_chips`. An unknown id
is bad input (InputError, exit 3), never a silent no-op.
"""

from __future__ import annotations

from typing import Any

from placement.edits import edit_loaded
from placement.errors import InputError
from placement.scenario import LoadedScenario


def edit(loaded: LoadedScenario, values: dict[str, Any]) -> LoadedScenario:
    """Set each path to its value: `edit(base, {"pools[h200-reserved].max_chips": 1088})`."""
    return edit_loaded(loaded, values)


def scale(loaded: LoadedScenario, factors: dict[str, float]) -> LoadedScenario:
    """Multiply each addressed value by its factor: `scale(base, {"workloads[*].requests_per_s": 1.3})`."""
    return edit_loaded(loaded, factors, scale=True)


def scale_demand(loaded: LoadedScenario, factor: float, workloads: list[str] | None = None) -> LoadedScenario:
    """Multiply requests_per_s of the named workloads (all when None) by factor."""
    ids = [EVERY] if workloads is None else list(workloads)
    return scale(loaded, {f"workloads[{w}].requests_per_s": factor for w in ids})


def scale_prices(loaded: LoadedScenario, factor: float, accelerators: list[str] | None = None) -> LoadedScenario:
    """Multiply price_per_chip_hour of the priced pools of the named accelerators (all when None) by factor."""
    scenario = loaded.scenario
    if accelerators is not None:
        known = {a.id for a in scenario.accelerators}
        unknown = [a for a in accelerators if a not in known]
        if unknown:
            raise InputError.single("what-if", "accelerators", f"unknown accelerator(s) {unknown}; known: {sorted(known)}")
    pools = [p.id for p in scenario.pools
             if p.price_per_chip_hour is not None and (accelerators is None or p.accelerator in accelerators)]
    if not pools:
        raise InputError.single("what-if", "accelerators", f"no priced pool of {accelerators}: nothing to scale")
    return scale(loaded, {f"pools[{p}].price_per_chip_hour": factor for p in pools})


def add_chips(loaded: LoadedScenario, pool: str, chips: int) -> LoadedScenario:
    """Raise (or, with chips < 0, lower) one pool's max_chips."""
    known = {p.id: p for p in loaded.scenario.pools}
    if pool not in known:
        raise InputError.single("what-if", "pool", f"no pool {pool!r}; pools: {sorted(known)}")
    return edit(loaded, {f"pools[{pool}].max_chips": known[pool].max_chips + chips})


EVERY = "*"

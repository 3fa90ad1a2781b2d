"""What-if edits for procurement questions: one more wafer? prices down 20%? demand doubled?

Each function returns a new validated scenario (with its own hash); the original is untouched. A
what-if is then just another solve: `solve_scenario(add_chips(base, "cerebras-prepaid", 16))`.
"""

from __future__ import annotations

from placement.scenario import LoadedScenario, Scenario, canonical_hash


def _with(loaded: LoadedScenario, scenario: Scenario) -> LoadedScenario:
    scenario = Scenario.model_validate(scenario.model_dump())  # re-validate the edited document
    return LoadedScenario(scenario, loaded.path, loaded.profiles, canonical_hash(scenario, loaded.profiles))


def scale_demand(loaded: LoadedScenario, factor: float, workloads: list[str] | None = None) -> LoadedScenario:
    """Multiply requests_per_s of the named workloads (all when None) by factor."""
    edited = [w.model_copy(update={"requests_per_s": w.requests_per_s * factor})
              if workloads is None or w.id in workloads else w for w in loaded.scenario.workloads]
    return _with(loaded, loaded.scenario.model_copy(update={"workloads": edited}))


def scale_prices(loaded: LoadedScenario, factor: float, accelerators: list[str] | None = None) -> LoadedScenario:
    """Multiply price_per_chip_hour of the pools of the named accelerators (all when None) by factor."""
    edited = [p.model_copy(update={"price_per_chip_hour": p.price_per_chip_hour * factor})
              if p.price_per_chip_hour is not None and (accelerators is None or p.accelerator in accelerators)
              else p for p in loaded.scenario.pools]
    return _with(loaded, loaded.scenario.model_copy(update={"pools": edited}))


def add_chips(loaded: LoadedScenario, pool: str, chips: int) -> LoadedScenario:
    """Raise (or, with chips < 0, lower) one pool's max_chips."""
    if pool not in {p.id for p in loaded.scenario.pools}:
        raise KeyError(f"no pool {pool!r}")
    edited = [p.model_copy(update={"max_chips": p.max_chips + chips}) if p.id == pool else p
              for p in loaded.scenario.pools]
    return _with(loaded, loaded.scenario.model_copy(update={"pools": edited}))

"""Time in a plan: periods of the horizon, representative slices of hours, and the rate of every demand
cell in every (period, slice) (shared spec time-and-contracts.md).

A scenario without `periods` is one period "p1" of `hours`; without `slices`, one slice "all" of weight 1;
so a single-period scenario is the T = S = 1 case of the same model, not a special path.

Slices come from the scenario (`slices:` with weights, per-workload `shape`), or are derived from an hourly
`load_curve` (`options.slices.count`). The derivation is our own, not tsam's: every workload's peak hour
gets a slice of its own (capacity is sized for it, so averaging it away would under-build), and the
remaining hours are grouped by Ward hierarchical clustering (scipy) of the per-workload load normalised
by each workload's peak, the method tsam calls `hierarchical`. It is deterministic (no random starts,
unlike k-means), needs nothing beyond scipy, and preserves energy: a slice's rate is the mean of its hours,
so requests per period are kept exactly.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from placement.errors import InputError, Problem
from placement.scenario import DEFAULT_PERIOD, DEFAULT_SLICE, Scenario


@dataclass(frozen=True)
class Horizon:
    """Periods in order (id, hours) and slices (id, weight: fraction of each period's hours)."""

    periods: pd.DataFrame
    slices: pd.DataFrame
    derived: bool = False                       # slices derived from a load curve
    curve_rates: pd.DataFrame | None = None     # per (workload, slice) rate from the curve, when derived

    @property
    def period_ids(self) -> list[str]:
        return self.periods["period"].tolist()

    @property
    def slice_ids(self) -> list[str]:
        return self.slices["slice"].tolist()

    @property
    def hours(self) -> np.ndarray:
        return self.periods["hours"].to_numpy(dtype=float)

    @property
    def weights(self) -> np.ndarray:
        return self.slices["weight"].to_numpy(dtype=float)

    @property
    def duration(self) -> np.ndarray:
        """Hours of every (period, slice): hours_t x weight_s, shape (T, S)."""
        return np.outer(self.hours, self.weights)

    @property
    def total_hours(self) -> float:
        return float(self.hours.sum())

    @property
    def single(self) -> bool:
        return len(self.periods) == 1 and len(self.slices) == 1


# derived horizons by scenario object (scenarios are frozen): the load check, the solve and every
# single-accelerator baseline then cluster the curve once
_DERIVED: dict[int, tuple[weakref.ref, "Horizon"]] = {}


def build_horizon(scenario: Scenario) -> Horizon:
    cached = _DERIVED.get(id(scenario))
    if cached is not None and cached[0]() is scenario:
        return cached[1]
    if scenario.periods is None:
        periods = pd.DataFrame({"period": [DEFAULT_PERIOD], "hours": [float(scenario.hours)]})
    else:
        periods = pd.DataFrame({"period": [p.id for p in scenario.periods],
                                "hours": [float(p.hours) for p in scenario.periods]})
    if scenario.load_curve:
        slices, rates = derive_slices(scenario)
        horizon = Horizon(periods, slices, True, rates)
        key = id(scenario)
        _DERIVED[key] = (weakref.ref(scenario, lambda _, key=key: _DERIVED.pop(key, None)), horizon)
        return horizon
    if scenario.slices is None:
        slices = pd.DataFrame({"slice": [DEFAULT_SLICE], "weight": [1.0]})
    else:
        slices = pd.DataFrame({"slice": [s.id for s in scenario.slices],
                               "weight": [float(s.weight) for s in scenario.slices]})
    return Horizon(periods, slices)


def derive_slices(scenario: Scenario) -> tuple[pd.DataFrame, pd.DataFrame]:
    """K slices from the hourly curve: each workload's peak hour alone, the rest by Ward clustering.

    Returns the slices (slice, weight, hours: the curve hours in it) and the per-(workload, slice) rates.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    count = scenario.options.slices.count
    curve = pd.DataFrame([r.model_dump() for r in scenario.load_curve])
    table = curve.pivot(index="hour", columns="workload", values="requests_per_s").sort_index()
    if table.isna().any().any():
        missing = table.columns[table.isna().any()].tolist()
        raise InputError.single("load_curve", "hour", f"workloads {missing} do not list the same hours as the others; "
                                                      "give every workload a rate for every hour")
    hours = table.index.to_numpy()
    load = table.to_numpy(dtype=float)
    peaks = sorted({int(np.argmax(load[:, j])) for j in range(load.shape[1]) if load[:, j].max() > 0})
    rest = np.setdiff1d(np.arange(len(hours)), peaks)
    if count < len(peaks) + (1 if len(rest) else 0):
        raise InputError.single("scenario", "options.slices.count",
                                f"{count} slices cannot keep {len(peaks)} distinct peak hours in slices of their "
                                f"own plus the other hours; use count >= {len(peaks) + (1 if len(rest) else 0)}")
    label = np.full(len(hours), -1)
    for k, hour in enumerate(peaks):
        label[hour] = k
    clusters = min(count - len(peaks), len(rest))
    if clusters == 1 or len(rest) == 1:
        label[rest] = len(peaks)
    elif clusters > 1:
        scale = np.where(load.max(axis=0) > 0, load.max(axis=0), 1.0)
        groups = fcluster(linkage(load[rest] / scale, method="ward"), t=clusters, criterion="maxclust")
        # number clusters by descending mean normalised load, so c1 is the busiest off-peak slice
        means = {g: (load[rest][groups == g] / scale).sum(axis=1).mean() for g in np.unique(groups)}
        order = sorted(means, key=lambda g: (-means[g], g))
        renumber = {g: len(peaks) + i for i, g in enumerate(order)}
        label[rest] = [renumber[g] for g in groups]
    names = []
    workloads = table.columns.tolist()
    for k, hour in enumerate(peaks):
        owners = [w for j, w in enumerate(workloads) if int(np.argmax(load[:, j])) == hour and load[:, j].max() > 0]
        names.append(f"peak-{'+'.join(owners)}")
    names += [f"c{i + 1}" for i in range(label.max() + 1 - len(peaks))]
    weights = np.bincount(label, minlength=len(names)) / len(hours)
    members = [[int(h) for h in hours[label == k]] for k in range(len(names))]
    slices = pd.DataFrame({"slice": names, "weight": weights, "hours": members})
    sums = np.zeros((len(names), len(workloads)))
    np.add.at(sums, label, load)
    rates = sums / np.bincount(label, minlength=len(names))[:, None]
    rate_frame = pd.DataFrame(rates, index=pd.Index(names, name="slice"), columns=workloads)
    return slices, rate_frame.stack().rename("requests_per_s").reset_index().rename(columns={"level_1": "workload"})


def check_derived_slices(scenario: Scenario, label: str, origins: dict[str, str]) -> list[Problem]:
    """Load-time checks that need the derived slices: the derivation itself, a count the curve's hours can
    fill, and every slice id the scenario names (shape, availability, demand rows) among the derived ones."""
    files = {"scenario": label, "load_curve": origins.get("load_curve", label)}
    try:
        horizon = build_horizon(scenario)
    except InputError as exc:
        return [replace(p, file=files.get(p.file, p.file)) for p in exc.problems]
    problems = []
    ids = horizon.slice_ids
    count, hours = scenario.options.slices.count, len({row.hour for row in scenario.load_curve})
    if count > hours:
        problems.append(Problem(label, "options.slices.count", f"{count} slices asked of a load_curve of {hours} "
                                                               f"hours; use count <= {hours}"))
    unknown = f"unknown slice {{!r}}; the slices derived from load_curve are {ids}"
    for i, workload in enumerate(scenario.workloads):
        problems += [Problem(label, f"workloads[{i}].shape.{key}", unknown.format(key))
                     for key in workload.shape if key not in ids]
    for i, pool in enumerate(scenario.pools):
        problems += [Problem(label, f"pools[{i}].availability.{key}", unknown.format(key))
                     for key in pool.availability if key not in ids]
    for i, row in enumerate(scenario.demand or []):
        if row.slice not in ids:
            where = (origins["demand"], f"row {i + 1} (line {i + 2}), column slice") if "demand" in origins \
                else (label, f"demand[{i}].slice")
            problems.append(Problem(*where, unknown.format(row.slice)))
    return problems


def workload_rates(scenario: Scenario, horizon: Horizon) -> np.ndarray:
    """Total rate of every workload in every (period, slice), shape (W, T, S), in scenario order.

    requests_per_s x growth[t] x shape[s]; a load curve replaces requests_per_s x shape for its workloads;
    an explicit `demand` row replaces the product for its (workload, period, slice).
    """
    periods, slices = horizon.period_ids, horizon.slice_ids
    rates = np.empty((len(scenario.workloads), len(periods), len(slices)))
    curve = None
    if horizon.curve_rates is not None:
        curve = horizon.curve_rates.pivot(index="workload", columns="slice", values="requests_per_s")
    for w, workload in enumerate(scenario.workloads):
        growth = np.array([workload.growth.get(t, 1.0) for t in periods])
        if curve is not None and workload.id in curve.index:
            by_slice = curve.loc[workload.id, slices].to_numpy(dtype=float)
        else:
            by_slice = workload.requests_per_s * np.array([workload.shape.get(s, 1.0) for s in slices])
        rates[w] = np.outer(growth, by_slice)
    if scenario.demand:
        w_pos = {w.id: i for i, w in enumerate(scenario.workloads)}
        t_pos = {t: i for i, t in enumerate(periods)}
        s_pos = {s: i for i, s in enumerate(slices)}
        for row in scenario.demand:
            rates[w_pos[row.workload], t_pos[row.period], s_pos[row.slice]] = row.requests_per_s
    return rates


def cell_rates(scenario: Scenario, cells: pd.DataFrame, horizon: Horizon) -> np.ndarray:
    """Rate of every demand cell (workload, bucket) in every (period, slice): shape (C, T, S)."""
    by_workload = workload_rates(scenario, horizon)
    position = {w.id: i for i, w in enumerate(scenario.workloads)}
    workload = cells["workload"].map(position).to_numpy()
    return by_workload[workload] * cells["share"].to_numpy()[:, None, None]

"""Frontiers: what each step of quality or speed costs (epsilon-constraint sweeps).

Cost against the mean-quality floor (`workloads[w].quality.min_mean`) and against the per-user speed
SLO (`workloads[w].slo.min_output_tokens_per_s`): the floor is set to each value in turn and the
scenario re-solved (the edit language of studies). Each point records what the plan achieves (the
traffic-weighted mean quality, or the slowest per-user speed it routes to), the Pareto points are
marked (no other point achieves as much for less), and between consecutive Pareto points the price
of the step: currency per quality point, or per 100 tok/s.

Cost against the share of running chips allowed on spot (`options.max_spot_share`): less spot is less
preemption risk; each point records the share of chips the plan keeps off spot (its largest spot share
over periods and slices, taken from 1), and each step is priced per percentage point off spot.
"""

from __future__ import annotations

from typing import Any, Callable

import pandas as pd

from placement.edits import edit_loaded
from placement.errors import InputError
from placement.scenario import LoadedScenario
from solvers import SolverSettings


def quality_frontier(loaded: LoadedScenario, floors: list[float], workloads: list[str] | None = None,
                     settings: SolverSettings | None = None) -> pd.DataFrame:
    """Cost against the mean-quality floor of the named workloads (default: every workload with a
    quality metric). Columns: floor, status, cost_per_hour, achieved, pareto, price_per_point."""
    chosen = _workloads(loaded, workloads, lambda w: w.quality is not None, "a quality metric")
    frame = epsilon_sweep(loaded, [f"workloads[{w}].quality.min_mean" for w in chosen], floors,
                          lambda plan: mean_quality(plan, chosen), settings)
    return frame.rename(columns={"step_price": "price_per_point"})


def speed_frontier(loaded: LoadedScenario, speeds: list[float], workloads: list[str],
                   settings: SolverSettings | None = None) -> pd.DataFrame:
    """Cost against the per-user speed SLO of the named workloads. Columns: floor, status,
    cost_per_hour, achieved (slowest per-user speed routed), pareto, price_per_100_tok_s."""
    chosen = _workloads(loaded, workloads, lambda w: True, "")
    frame = epsilon_sweep(loaded, [f"workloads[{w}].slo.min_output_tokens_per_s" for w in chosen], speeds,
                          lambda plan: slowest_speed(plan, chosen), settings)
    frame["step_price"] = frame["step_price"] * 100
    return frame.rename(columns={"step_price": "price_per_100_tok_s"})


def spot_frontier(loaded: LoadedScenario, shares: list[float],
                  settings: SolverSettings | None = None) -> pd.DataFrame:
    """Cost against options.max_spot_share. Columns: floor (the share allowed), status, cost_per_hour,
    achieved (share of chips off spot, worst (period, slice)), pareto, price_per_point_off_spot."""
    frame = epsilon_sweep(loaded, ["options.max_spot_share"], shares, off_spot, settings)
    frame["step_price"] = frame["step_price"] / 100
    return frame.rename(columns={"step_price": "price_per_point_off_spot"})


def off_spot(plan: dict[str, Any]) -> float | None:
    """1 - the largest share of running chips on spot in any (period, slice)."""
    kinds = {p["pool"]: p.get("kind") for p in plan.get("pools") or []}
    chips: dict[tuple[Any, Any], list[float]] = {}
    for row in plan.get("replicas") or []:
        total, spot = chips.setdefault((row.get("period"), row.get("slice")), [0.0, 0.0])
        chips[(row.get("period"), row.get("slice"))] = [total + row["chips"],
                                                        spot + (row["chips"] if kinds.get(row["pool"]) == "spot" else 0)]
    if not chips:
        return None
    return 1.0 - max(spot / total for total, spot in chips.values() if total > 0)


def _workloads(loaded: LoadedScenario, named: list[str] | None, eligible: Callable, need: str) -> list[str]:
    known = {w.id: w for w in loaded.scenario.workloads}
    if named is None:
        named = [w for w, workload in known.items() if eligible(workload)]
    bad = [w for w in named if w not in known or not eligible(known[w])]
    if bad or not named:
        raise InputError.single("frontier", "workloads", f"{bad or 'none'}: not workloads" +
                                (f" with {need}" if need else "") + f"; workloads: {sorted(known)}")
    return list(named)


def epsilon_sweep(loaded: LoadedScenario, paths: list[str], values: list[float],
                  achieved: Callable[[dict[str, Any]], float | None],
                  settings: SolverSettings | None = None) -> pd.DataFrame:
    """Set every path to each value, solve, and mark the Pareto points and the price of each step."""
    from placement.api import solve_scenario

    rows = []
    for value in sorted(values):
        edited = edit_loaded(loaded, {path: value for path in paths}, label="frontier")
        result = solve_scenario(edited, settings, baselines=False, explain=False)
        plan = result.plan
        ok = plan.get("status") in ("optimal", "feasible") and not result.violations
        rows.append({"floor": value, "status": plan.get("status"),
                     "cost_per_hour": (plan.get("objective") or {}).get("value") if ok else None,
                     "achieved": achieved(plan) if ok else None})
    frame = pd.DataFrame(rows)
    return mark_pareto(frame)


def mark_pareto(frame: pd.DataFrame) -> pd.DataFrame:
    """pareto: no other point achieves at least as much for at most the cost (one of them strictly;
    of equal points, the one asked with the tightest floor); step_price: cost change per unit achieved from the previous Pareto point."""
    frame = frame.copy()
    cost = pd.to_numeric(frame["cost_per_hour"], errors="coerce")
    got = pd.to_numeric(frame["achieved"], errors="coerce")
    pareto = []
    for i in frame.index:
        if pd.isna(cost[i]) or pd.isna(got[i]):
            pareto.append(False)
            continue
        tol = 1e-9 * max(1.0, abs(cost[i]))
        better = (got >= got[i] - 1e-12) & (cost <= cost[i] + tol)
        strictly = (got > got[i] + 1e-9) | (cost < cost[i] - tol)
        same_but_tighter = frame["floor"] > frame.loc[i, "floor"]  # one point per (achieved, cost): the tightest floor
        dominated = (better & (strictly | same_but_tighter)).drop(i).any()
        pareto.append(not dominated)
    frame["pareto"] = pareto
    frame["step_price"] = None
    points = frame[frame["pareto"]].sort_values("achieved")
    previous = None
    for i, row in points.iterrows():
        if previous is not None and row["achieved"] > previous["achieved"]:
            frame.loc[i, "step_price"] = (row["cost_per_hour"] - previous["cost_per_hour"]) / (
                row["achieved"] - previous["achieved"])
        previous = row
    frame["step_price"] = pd.to_numeric(frame["step_price"], errors="coerce")
    return frame


def _routed(plan: dict[str, Any], workloads: list[str]) -> list[dict[str, Any]]:
    return [r for r in plan.get("routing") or [] if r.get("workload") in workloads and (r.get("share") or 0) > 0]


def mean_quality(plan: dict[str, Any], workloads: list[str]) -> float | None:
    """Traffic-weighted mean quality of what the plan routes for these workloads."""
    rows = [r for r in _routed(plan, workloads) if r.get("quality") is not None]
    weight = sum(r.get("requests_per_s") or 0 for r in rows)
    return sum((r.get("requests_per_s") or 0) * r["quality"] for r in rows) / weight if weight else None


def slowest_speed(plan: dict[str, Any], workloads: list[str]) -> float | None:
    """The slowest per-user speed among the deployments the plan routes these workloads to."""
    speeds = [r["output_tokens_per_s_per_user"] for r in _routed(plan, workloads)
              if r.get("output_tokens_per_s_per_user") is not None]
    return min(speeds) if speeds else None


def frontier_png(frame: pd.DataFrame, xlabel: str, title: str) -> bytes:
    """Cost against what is achieved, Pareto points marked (PNG bytes, Agg backend)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.6), dpi=100)
    ok = frame.dropna(subset=["cost_per_hour", "achieved"])
    axes.plot(ok["achieved"], ok["cost_per_hour"], "o", color="0.6", label="solved point")
    front = ok[ok["pareto"]].sort_values("achieved")
    axes.plot(front["achieved"], front["cost_per_hour"], "o-", color="C3", label="Pareto")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("cost per hour")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()

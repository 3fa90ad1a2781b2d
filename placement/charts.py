"""The plan at a glance (plan.png): chips by pool in every (period, slice), against demand.

Stacked bars, one per (period, slice), coloured by pool; the line on the right axis is the total request
rate the bars must carry. Drawn with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any


def plan_chart(plan: dict[str, Any], path: Path) -> bool:
    """Write the chart; False (nothing written) when the plan has no replicas to draw."""
    if not plan.get("replicas"):
        return False
    # the object API with the Agg canvas, not pyplot: no global figure registry, no backend switch, and a
    # fixed layout instead of tight_layout (half the cost of a chart, which every case of a study pays)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    periods = [p["id"] for p in plan.get("periods") or []] or ["p1"]
    slices = [s["id"] for s in plan.get("slices") or []] or ["all"]
    columns = [(t, s) for t in periods for s in slices]
    pools = list(dict.fromkeys(r["pool"] for r in plan["replicas"]))
    chips: dict[tuple[str, str, str], float] = defaultdict(float)
    for row in plan["replicas"]:
        chips[(row["pool"], row.get("period", periods[0]), row.get("slice", slices[0]))] += row["chips"]
    demand: dict[tuple[str, str], float] = defaultdict(float)
    for row in plan.get("routing", []) + plan.get("unserved", []):
        demand[(row.get("period", periods[0]), row.get("slice", slices[0]))] += row["requests_per_s"]

    width = max(6.0, 0.7 * len(columns) + 3)
    figure = Figure(figsize=(width, 4.5), dpi=110)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.8 / width, right=1 - 0.8 / width, top=0.92, bottom=0.14)
    axis = figure.add_subplot()
    bottom = [0.0] * len(columns)
    for pool in pools:
        heights = [chips[(pool, t, s)] for t, s in columns]
        axis.bar(range(len(columns)), heights, bottom=bottom, label=pool)
        bottom = [b + h for b, h in zip(bottom, heights)]
    axis.set_xticks(range(len(columns)))
    axis.set_xticklabels([f"{t}\n{s}" if len(slices) > 1 else t for t, s in columns], fontsize=8)
    axis.set_ylabel("chips running")
    rate = axis.twinx()
    rate.plot(range(len(columns)), [demand[c] for c in columns], color="black", marker="o", label="demand")
    rate.set_ylabel("requests/s")
    rate.set_ylim(bottom=0)
    handles = axis.get_legend_handles_labels()[0] + rate.get_legend_handles_labels()[0]
    labels = axis.get_legend_handles_labels()[1] + rate.get_legend_handles_labels()[1]
    axis.legend(handles, labels, fontsize=7, loc="upper left", ncol=2)
    scenario = plan.get("scenario", {})
    cost = (plan.get("cost") or {}).get("total")
    axis.set_title(f"{scenario.get('name', 'plan')}: chips by pool"
                   + (f" (total {cost:,.0f} {scenario.get('currency', '')})" if cost is not None else ""), fontsize=9)
    figure.savefig(path)
    return True

"""report.html: a self-contained page for a plan folder or a study folder, to share with people.

Tables and charts inline (PNG as base64 data URIs, CSS in the page): no network, no scripts, opens
from a mail attachment. Every value shown is escaped; numbers are read from the plan by field name.
"""

from __future__ import annotations

import base64
import html
import struct
import zlib
from pathlib import Path
from typing import Any, Iterable

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em;display:block;overflow-x:auto}th,td{border:1px solid #ccc;padding:3px 8px}
th{background:#f3f3f3;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.headline{font-size:1.25em;margin:.4em 0}.status{font-weight:bold}.note{color:#555;font-size:.85em}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}img.bar{border:0;margin:0;vertical-align:middle}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


class Raw(str):
    """Markup made here (a bar), inserted as is."""


def _cell(value: Any) -> str:
    if isinstance(value, Raw):
        return f"<td>{value}</td>"
    if isinstance(value, bool) or value is None:
        return f"<td>{_e('' if value is None else ('yes' if value else 'no'))}</td>"
    if isinstance(value, int):
        return f'<td class="n">{value:,}</td>'
    if isinstance(value, float):
        if value != value:
            return "<td></td>"
        return f'<td class="n">{value:,.4g}</td>' if abs(value) < 100 else f'<td class="n">{value:,.2f}</td>'
    return f"<td>{_e(value)}</td>"


def table_html(headers: list[str], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_html(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="{png_data_uri(png)}">'


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")


def _money(value: Any, currency: str) -> str:
    return f"{value:,.2f} {currency}" if isinstance(value, (int, float)) else "n/a"


def solid_png(rgb: tuple[int, int, int] = (31, 119, 180)) -> bytes:
    """A 1x1 PNG of one colour: stretched to a width, it is a bar (no plotting library, microseconds)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" + bytes(rgb)))
            + chunk(b"IEND", b""))


BAR = png_data_uri(solid_png())


def bar_html(value: float, largest: float, width_px: int = 240) -> str:
    """A horizontal bar (the 1x1 PNG stretched) proportional to value / largest."""
    width = int(round(width_px * value / largest)) if largest > 0 and value > 0 else 0
    return f'<img class="bar" alt="" src="{BAR}" width="{max(width, 1) if value > 0 else 0}" height="12">'


def plan_report_html(plan: dict[str, Any]) -> str:
    """The plan as a page: headline cost and status, pools (with a cost chart), replicas, routing,
    shedding, baselines, capacity values and the diagnosis, as present in the plan."""
    scenario = plan.get("scenario") or {}
    currency = scenario.get("currency", "USD")
    status = plan.get("status", "unknown")
    objective = plan.get("objective") or {}
    cost = plan.get("cost") or {}
    parts = [f"<h1>Plan for {_e(scenario.get('name', ''))}</h1>",
             f'<p class="headline"><span class="status">{_e(status)}</span>']
    if cost:
        gap = objective.get("gap")
        parts[-1] += (f' &mdash; cost <b id="cost-per-hour">{_e(_money(cost.get("per_hour"), currency))}</b> per hour'
                      f', {_e(_money(cost.get("total", cost.get("period")), currency))} for the period'
                      + (f", gap {gap:.4%}" if isinstance(gap, (int, float)) else ""))
    parts[-1] += "</p>"
    pools = plan.get("pools") or []
    if pools:
        parts.append("<h2>Capacity</h2>")
        largest = max(float(p.get("per_hour") or 0) for p in pools)
        parts.append(table_html(["pool", "kind", "chips used", "committed", "max", "cost/h", ""],
                                [[p.get("pool"), p.get("kind"), p.get("chips_used"), p.get("chips_committed"),
                                  p.get("max_chips"), p.get("per_hour"),
                                  Raw(bar_html(float(p.get("per_hour") or 0), largest))] for p in pools]))
    sections = [
        ("Replicas", "replicas", ["model", "accelerator", "chips_per_replica", "pool", "replicas", "chips"]),
        ("Routing", "routing", ["workload", "bucket", "input_tokens", "output_tokens", "model", "accelerator",
                                "chips_per_replica", "share", "requests_per_s", "replica_requests_per_s"]),
        ("Capacity values (re-solved)", "capacity_values", ["pool", "period", "step_chips", "plus_per_hour",
                                                            "minus_per_hour", "break_even_price",
                                                            "lp_dual_per_chip_hour"]),
        ("Single-accelerator baselines", "baselines", ["name", "feasible", "cost_per_hour", "savings_vs_baseline",
                                                       "reason"]),
    ]
    for title, key, columns in sections:
        rows = plan.get(key) or []
        if rows:
            parts.append(f"<h2>{_e(title)}</h2>")
            parts.append(table_html(columns, [[row.get(c) for c in columns] for row in rows]))
    shed = [u for u in plan.get("unserved") or [] if (u.get("share") or 0) > 0]
    if shed:
        parts.append("<h2>Shed</h2>")
        parts.append(table_html(["workload", "bucket", "share", "requests_per_s"],
                                [[u.get("workload"), u.get("bucket"), u.get("share"), u.get("requests_per_s")]
                                 for u in shed]))
    if plan.get("diagnosis"):
        parts.append("<h2>Diagnosis</h2><ul>")
        parts += [f"<li>{_e(f.get('message'))}</li>" for f in plan["diagnosis"]]
        parts.append("</ul>")
    if plan.get("explanations"):
        parts.append("<h2>Why this split</h2><ul>" + "".join(f"<li>{_e(s)}</li>" for s in plan["explanations"]) + "</ul>")
    solver = plan.get("solver") or {}
    parts.append(f'<p class="note">Solved by {_e(solver.get("backend"))}/{_e(solver.get("engine"))}; '
                 f'scenario sha256 {_e(scenario.get("sha256"))}.</p>')
    return page(f"Plan for {scenario.get('name', '')}", "\n".join(parts))


def write_plan_report(doc: dict[str, Any], folder: Path) -> None:
    """The hook write_plan_folder calls: report.html beside plan.json."""
    (Path(folder) / "report.html").write_text(plan_report_html(doc), encoding="utf-8")


def study_report_html(study, table, charts: dict[str, Path]) -> str:
    """The study as a page: what moved the answer, pools entering and leaving, charts, every case."""
    from placement.study import pool_switches, solved, what_moved

    ok = solved(table)
    parts = [f"<h1>Study {_e(study.name)}</h1>",
             f"<p>Base scenario <code>{_e(study.scenario)}</code>; {len(table)} cases ({_e(study.combine)}), "
             f"{len(ok)} with a plan.</p>"]
    if len(ok):
        parts.append(f'<p class="headline">Cost per hour from <b id="cost-min">{ok["objective_per_hour"].min():,.2f}</b>'
                     f' to <b id="cost-max">{ok["objective_per_hour"].max():,.2f}</b>.</p>')
    moved = what_moved(study, table)
    if moved:
        parts.append("<h2>What moved the answer</h2>")
        parts.append(table_html(["path", "values", "lowest value", "cost at lowest", "highest value",
                                 "cost at highest", "swing"],
                                [[m["path"], m["values"], m["lowest_value"], m["cost_at_lowest"], m["highest_value"],
                                  m["cost_at_highest"], m["swing"]] for m in moved]))
    parts.append("<h2>Pools</h2><ul>" + "".join(f"<li>{_e(s)}</li>" for s in pool_switches(study, table)) + "</ul>")
    if charts:
        parts.append("<h2>Charts</h2>")
        parts += [image_html(Path(file).read_bytes(), f"cost against {path}") for path, file in charts.items()]
    parts.append("<h2>Cases</h2>")
    columns = [c for c in table.columns if c not in ("reason",)] + (["reason"] if "reason" in table else [])
    parts.append(table_html(columns, [[_plain(v) for v in row] for row in table[columns].itertuples(index=False)]))
    return page(f"Study {study.name}", "\n".join(parts))


def _plain(value: Any) -> Any:
    """numpy and pandas scalars as Python values (pd.NA as empty)."""
    try:
        if value is None or value != value:
            return None
    except (TypeError, ValueError):
        return None
    return value.item() if hasattr(value, "item") else value

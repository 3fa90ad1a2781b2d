"""Estimate vs measured for every point of shared/data/validation_points.csv and validation_points_2.csv.

    python benchmarks/validate_estimator.py            # print the table (markdown)
    python benchmarks/validate_estimator.py --write    # also rewrite it in benchmarks/VALIDATION.md and README.md
    python benchmarks/validate_estimator.py --fit PRESET FACTOR,FACTOR...   # refit a preset's factors (slow)

The points and their stated conditions / assumptions live in placement/validation.py; the factors in
placement/efficiency.py (sources and fit in benchmarks/ESTIMATOR.md). tests/test_validation.py holds every
point within VALIDATION_FACTOR.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from placement.calibrate import estimate_point, fit, preset_of  # noqa: E402
from placement.efficiency import PRESETS  # noqa: E402
from placement.validation import VALIDATION_FACTOR, kernel_points, validation_points  # noqa: E402

START, END = "<!-- validation-table:start -->", "<!-- validation-table:end -->"
UNITS = {"output_tokens_per_s_per_chip": "tok/s/chip", "output_tokens_per_s_per_user": "tok/s/user", "ttft_s": "s TTFT"}


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:,.0f}" if value >= 100 else (f"{value:.1f}" if value >= 1 else f"{value:.3f}")


def rows() -> list[tuple]:
    """(id, accelerator, metric unit, measured, estimate, ratio, setup, conditions) per point."""
    table = []
    for point in validation_points():
        estimate = estimate_point(point)
        ratio = estimate.value / point.measured
        setup = f"{estimate.layout}, batch {estimate.batch:g}" if math.isfinite(estimate.batch) else "-"
        table.append((point.id, point.accelerator.id, UNITS[point.metric], point.measured, estimate.value, ratio, setup,
                      point.note))
    for kernel in kernel_points():
        value = getattr(PRESETS[kernel.preset].efficiency, kernel.factor)
        table.append((kernel.id, "h100", f"{kernel.factor} (fraction of peak)", kernel.measured, value,
                      value / kernel.measured, "efficiency factor vs kernel measurement", kernel.note))
    return table


def markdown() -> str:
    table = rows()
    worst = max(table, key=lambda r: max(r[5], 1 / r[5]))
    lines = [
        f"Every point of `shared/data/validation_points.csv` and `validation_points_2.csv` "
        f"(`python benchmarks/validate_estimator.py`); ratio = estimate / measured, held within "
        f"{VALIDATION_FACTOR}x by `tests/test_validation.py`. Worst: **{worst[0]}** at {worst[5]:.2f}. "
        "Excluded points: none.",
        "",
        "| point | chip | metric | measured | estimate | ratio | estimator setup | conditions / assumptions |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for pid, accel, unit, measured, estimate, ratio, setup, note in table:
        lines.append(f"| {pid} | {accel} | {unit} | {_fmt(measured)} | {_fmt(estimate)} | {ratio:.2f} | {setup} | {note} |")
    return "\n".join(lines) + "\n"


def _replace_between(path: Path, text: str) -> None:
    content = path.read_text(encoding="utf-8")
    block = f"{START}\n{text}{END}"
    if START in content:
        content = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, content, flags=re.S)
    else:
        content = content.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(content, encoding="utf-8")


def refit(preset: str, names: list[str]) -> None:
    points = [p for p in validation_points() if preset_of(p) == preset]
    result = fit(points, names, PRESETS[preset].efficiency)
    print(f"{preset}: {len(points)} points; fitted " + ", ".join(f"{k}={v:.4g}" for k, v in result.factors.items()))
    for point in points:
        print(f"  {point.id:<50} {result.before[point.id]:6.2f} -> {result.residuals[point.id]:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the table in VALIDATION.md and README.md")
    parser.add_argument("--fit", nargs=2, metavar=("PRESET", "FACTORS"), help="refit a preset's factors")
    args = parser.parse_args()
    if args.fit:
        refit(args.fit[0], args.fit[1].split(","))
        return
    text = markdown()
    print(text)
    if args.write:
        _replace_between(ROOT / "benchmarks" / "VALIDATION.md", text)
        _replace_between(ROOT / "README.md", text)


if __name__ == "__main__":
    main()

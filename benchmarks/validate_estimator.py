"""Estimate vs measured for every validation point in shared/data/validation_points.csv.

    python benchmarks/validate_estimator.py

Uses the same estimates the test suite holds within its stated factor (tests/test_estimator.py);
run it after changing an efficiency factor to see every point move.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_estimator import MLPERF_FACTOR, MLPERF_INPUT_TOKENS, MLPERF_POINTS, mlperf_estimate  # noqa: E402


def main() -> None:
    print(f"MLPerf Inference v4.1 Llama-2-70B FP8, mean prompt {MLPERF_INPUT_TOKENS} tokens (assumed), "
          f"294 output tokens; tolerance x{MLPERF_FACTOR}")
    print(f"{'id':<4} {'chip':<5} {'scenario':<8} {'measured':>10} {'estimate':>10} {'ratio':>6}  setup")
    for point_id, accel_id, scenario, measured, floor in MLPERF_POINTS:
        best = mlperf_estimate(accel_id, floor)
        setup = (f"{8 // int(best.chips_per_replica)} x {int(best.chips_per_replica)} chips, batch "
                 f"{int(best.batch_size)}, {best.output_tokens_per_s_per_user:.1f} tok/s/user, "
                 f"TTFT {best.ttft_s:.2f} s")
        print(f"{point_id:<4} {accel_id:<5} {scenario:<8} {measured:>10,.0f} {best.per_8_gpus:>10,.0f} "
              f"{best.per_8_gpus / measured:>6.2f}  {setup}")


if __name__ == "__main__":
    main()

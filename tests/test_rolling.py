"""Rolling horizon (placement/rolling.py): hand-computed costs against the full solve, the stitched plan
through the independent checker, contracts signed to start later (`starts`), and the command line.

Every hand case: one model `m` on one accelerator `g`, 1-chip replicas serving R = 1 req/s (a rate of r
req/s needs r chips), periods of 100 hours.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from placement.api import solve_scenario
from placement.checker import check_plan
from placement.cli import main
from placement.edits import edit_loaded
from placement.errors import InputError
from placement.rolling import solve_rolling
from placement.scenario import load_scenario
from tests.helpers import write_scenario

QUARTERS = Path(__file__).resolve().parents[1] / "inputs" / "speed-lanes" / "quarters.yaml"


def _periods(n: int) -> list[dict]:
    return [{"id": f"q{i + 1}", "hours": 100} for i in range(n)]


def _scenario(tmp_path: Path, pools: list[dict], periods: int, rate: float = 10, growth: dict | None = None,
              **extra) -> Path:
    spec = {
        "accelerators": ["g"],
        "models": [{"id": "m"}],
        "workloads": [{"id": "w", "requests_per_s": rate, "buckets": [(1000, 100, 1.0)], "growth": growth or {}}],
        "pools": pools,
        "profiles": [("m", "g", 1, 1000, 100, 1.0)],
        "extra": {"periods": _periods(periods), **extra},
    }
    return write_scenario(tmp_path, spec)


def _reserved(**fields) -> dict:
    return {"id": "res", "accelerator": "g", "kind": "reserved", "block_chips": 1, "max_chips": 100,
            "price_per_chip_hour": 1.0, **fields}


def _on_demand(price: float) -> dict:
    return {"id": "od", "accelerator": "g", "kind": "on_demand", "max_chips": 100, "price_per_chip_hour": price}


def _checked(result) -> dict:
    assert result.violations == [], result.violations
    return result.plan


def _full_and_rolling(path: Path, *windows: int) -> tuple[dict, list[dict]]:
    full = _checked(solve_scenario(path, baselines=False))
    rolled = []
    for window in windows:
        result = solve_rolling(path, window)
        plan = _checked(result)
        assert plan["status"] == "feasible" and int(result.exit_code) == 1   # no bound: feasible at best
        assert plan["objective"]["bound"] is None
        rolling = plan["solver"]["rolling"]
        assert rolling["window"] == window and len(rolling["steps"]) == len(plan["periods"])
        assert all(step["seconds"] > 0 for step in rolling["steps"])
        assert "**Rolling horizon:**" in result.summary
        rolled.append(plan)
    return full, rolled


def test_a_contract_that_pays_off_only_beyond_the_window_is_not_bought(tmp_path):
    # 10 chips in both quarters. A block (term 2) costs 1.0 x 200 h = 200 per chip; on demand 1.5 x 100 h a
    # quarter. Full: buy 10 blocks in q1 = 2000. W=1: each step sees one quarter, where the block costs its
    # whole term (the quarter beyond the window at the window's 100 h) = 200 against 150 on demand: both
    # quarters on demand = 3000, 50% more. W=2 sees the whole term: 2000, as the full solve.
    path = _scenario(tmp_path, [_reserved(term_periods=2), _on_demand(1.5)], periods=2)
    full, (one, two) = _full_and_rolling(path, 1, 2)
    assert full["status"] == "optimal"
    assert full["cost"]["total"] == pytest.approx(2000)
    assert one["cost"]["total"] == pytest.approx(3000)
    assert one["commitments"] == []
    assert {r["pool"] for r in one["replicas"]} == {"od"}
    assert two["cost"]["total"] == pytest.approx(2000)
    assert [(c["bought_in"], c["blocks"], c["last_period"]) for c in two["commitments"]] == [("q1", 10, "q2")]


def test_independent_periods_cost_the_same_rolled_and_whole(tmp_path):
    # one-quarter contracts (1.0/h) and a running fleet of 10, churn 1 per chip: every quarter stands alone.
    # Rates 10, 15, 20: contracts 1000 + 1500 + 2000; the fleet grows by 5 in q2 and q3: churn 10. 4510 both
    # ways; step 2 and 3 start from the fleet the step before committed (churn counted against it).
    path = _scenario(tmp_path, [_reserved(), _on_demand(3.0)], periods=3, growth={"q2": 1.5, "q3": 2.0},
                     fleet=[{"model": "m", "accelerator": "g", "chips_per_replica": 1, "pool": "res",
                             "replicas": 10}])
    doc = yaml.safe_load(path.read_text())
    doc["options"]["churn_cost_per_chip"] = 1.0
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    full, (one,) = _full_and_rolling(path, 1)
    assert full["cost"]["total"] == pytest.approx(4510)
    assert one["cost"]["total"] == pytest.approx(full["cost"]["total"])
    assert [c["chips_moved"] for c in one["cost"]["churn"]] == [0, 5, 5]
    assert [(c["bought_in"], c["blocks"]) for c in one["commitments"]] == [("q1", 10), ("q2", 15), ("q3", 20)]


def test_purchases_in_their_lead_time_carry_to_later_steps_as_signed_contracts(tmp_path):
    # lead 2, term 2: a block bought in q1 serves q3-q4 for 1.0 x 200 h. 10 chips every quarter, on demand 3.0.
    # Full: q1, q2 on demand (6000) + 10 blocks bought in q1 (2000) = 8000. W=3: step q1 sees q3 and buys;
    # steps q2-q4 get the blocks as signed (starting q3 while q2 plans), use them and buy nothing more: 8000.
    # W=2: no step sees a purchase go live (it would in the period after its window): all on demand, 12000.
    path = _scenario(tmp_path, [_reserved(term_periods=2, lead_periods=2), _on_demand(3.0)], periods=4)
    full, (two, three) = _full_and_rolling(path, 2, 3)
    assert full["cost"]["total"] == pytest.approx(8000)
    assert three["cost"]["total"] == pytest.approx(8000)
    assert three["commitments"] == [{"pool": "res", "bought_in": "q1", "blocks": 10, "chips": 10,
                                     "first_period": "q3", "last_period": "q4", "cost": pytest.approx(2000)}]
    assert two["cost"]["total"] == pytest.approx(12000)
    assert two["commitments"] == []


def test_a_single_period_rolls_in_one_step(tmp_path):
    path = _scenario(tmp_path, [_reserved(), _on_demand(3.0)], periods=1)
    full, (one,) = _full_and_rolling(path, 1)
    assert one["cost"]["total"] == pytest.approx(full["cost"]["total"]) == pytest.approx(1000)


# ------------------------------------------------------------------------------------------------
# Contracts signed to start later (`committed[].starts`): what rolling steps hand each other


def test_a_signed_contract_is_usable_only_from_its_start(tmp_path):
    # 10 blocks signed for q2 only (new blocks at 5.0/h cost more than on demand): q1 on demand (3000), q2
    # free. Tampered: the plan of the same contract signed from q1 (q1 free) breaks the rule, and the checker
    # says so.
    signed = {"price_per_chip_hour": 5.0, "committed": [{"blocks": 10, "starts": "q2", "through": "q2"}]}
    path = _scenario(tmp_path, [_reserved(**signed), _on_demand(3.0)], periods=2)
    plan = _checked(solve_scenario(path, baselines=False))
    assert plan["cost"]["total"] == pytest.approx(3000)
    assert {(r["period"], r["pool"]) for r in plan["replicas"]} == {("q1", "od"), ("q2", "res")}
    early = tmp_path / "early"
    early_path = _scenario(early, [_reserved(price_per_chip_hour=5.0, committed=[{"blocks": 10, "through": "q2"}]),
                                   _on_demand(3.0)], periods=2)
    early_result = solve_scenario(early_path, baselines=False)
    early_plan = _checked(early_result)
    assert early_plan["cost"]["total"] == pytest.approx(0)
    problems = check_plan(load_scenario(path), early_plan, early_result.outcome.table)
    assert any("q1" in p and "under active contracts" in p for p in problems), problems


@pytest.mark.parametrize("contract, field, words", [
    ({"blocks": 1, "starts": "q3", "through": "q2"}, "committed[0].starts", "unknown period"),
    ({"blocks": 1, "starts": "q2", "through": "q1"}, "committed[0].starts", "after through"),
])
def test_a_contract_start_must_be_a_period_not_after_its_end(tmp_path, contract, field, words):
    path = _scenario(tmp_path, [_reserved(committed=[contract]), _on_demand(3.0)], periods=2)
    with pytest.raises(InputError) as caught:
        load_scenario(path)
    assert any(field in p.field and words in p.message for p in caught.value.problems), caught.value.problems


# ------------------------------------------------------------------------------------------------
# The four-quarter example


def test_quarters_rolled_three_ahead_pass_the_checker():
    # the example as it is: each step plans three quarters (at a 1% gap, to keep the test short); the
    # stitched plan is checked against the original scenario by solve_scenario (violations == [])
    result = solve_rolling(QUARTERS, 3, time_limit_s=60, mip_gap=0.01, explain=False)
    plan = _checked(result)
    assert plan["status"] == "feasible" and int(result.exit_code) == 1
    assert [s["window"] for s in plan["solver"]["rolling"]["steps"]] == [
        ["2026q3", "2026q4", "2027q1"], ["2026q4", "2027q1", "2027q2"], ["2027q1", "2027q2"], ["2027q2"]]
    assert all(c["chips_moved"] <= 256 for c in plan["cost"]["churn"])
    assert plan["commitments"]                # bought once the window sees the term pay off


def test_quarters_rolled_one_ahead_report_their_dead_end():
    # --rolling 1 never signs a contract (a purchase lives a quarter after its window); when the signed blocks
    # end after 2026q4, moving their replicas needs more than the 256 chips a quarter may move: no plan, said
    # so (exit 4), nothing claimed infeasible.
    stuck = solve_rolling(QUARTERS, 1, time_limit_s=60)
    assert stuck.plan["status"] == "no_solution" and int(stuck.exit_code) == 4
    steps = stuck.plan["solver"]["rolling"]["steps"]
    assert [s["status"] for s in steps] == ["optimal", "optimal", "infeasible"]
    assert "2027q1" in stuck.plan["solver"]["message"]


def test_quarters_with_room_to_move_roll_two_ahead_into_a_checked_plan():
    # the example with 1,024 chips of churn a quarter: --rolling 2 gets through, and its stitched plan passes
    # the checker against the (edited) scenario, with every field of a full plan.
    loaded = edit_loaded(load_scenario(QUARTERS), {"options.max_churn_chips": 1024})
    result = solve_rolling(loaded, 2, time_limit_s=60, explain=False)
    plan = _checked(result)
    assert plan["status"] == "feasible"
    for key in ("periods", "slices", "replicas", "routing", "unserved", "pools", "fleet", "commitments"):
        assert plan[key], key
    assert [p["period"] for p in plan["cost"]["by_period"]] == [p["id"] for p in plan["periods"]]
    assert plan["cost"]["total"] == pytest.approx(sum(p["total"] for p in plan["cost"]["by_period"])
                                                  + plan["cost"]["beyond_horizon"])
    # every purchase goes live inside the horizon, a quarter after it is bought (lead 1)
    order = [p["id"] for p in plan["periods"]]
    assert all(order.index(c["first_period"]) == order.index(c["bought_in"]) + 1 for c in plan["commitments"])


# ------------------------------------------------------------------------------------------------
# Command line


def test_cli_rolling(tmp_path, capsys):
    path = _scenario(tmp_path, [_reserved(term_periods=2), _on_demand(1.5)], periods=2)
    out = tmp_path / "plan"
    assert main(["solve", str(path), "--rolling", "1", "--out", str(out)]) == 1
    plan = yaml.safe_load((out / "plan.json").read_text())
    assert plan["solver"]["rolling"]["window"] == 1 and plan["cost"]["total"] == pytest.approx(3000)
    assert "Rolling horizon" in (out / "summary.md").read_text()
    for bad in (["--rolling", "0"], ["--rolling", "1", "--values"]):
        assert main(["solve", str(path), *bad, "--out", str(tmp_path / "bad")]) == 3
        assert not (tmp_path / "bad").exists()
    assert "--rolling" in capsys.readouterr().err


def test_a_step_counts_moving_replicas_off_a_pool_that_no_longer_holds_them(tmp_path):
    # 10 wafers in q1, none in q2 (retired); 10 replicas run on them; on demand 3.0, churn 1 per chip. q2 must
    # run on demand: moving 10 replicas is 10 out + 10 in = 20 chips.
    # Limit 20: stay on the wafers in q1, move in q2: 3000 + 20 = 3020, rolled one ahead or whole.
    # Limit 10: the full solve moves half in q1 (5 on demand: 1500, churn 10) and half in q2 (3000, churn 10)
    # = 4520, as does W=2; W=1 stays in q1 (it cannot see q2) and is stuck in q2: no plan, and no checker
    # violation (the q2 step sees the replicas it must move off, though the wafer pool holds none in its
    # window).
    pools = [{"id": "wafer", "accelerator": "g", "kind": "prepaid", "max_chips": {"q1": 10, "q2": 0}},
             _on_demand(3.0)]
    fleet = [{"model": "m", "accelerator": "g", "chips_per_replica": 1, "pool": "wafer", "replicas": 10}]
    path = _scenario(tmp_path, pools, periods=2, fleet=fleet)
    doc = yaml.safe_load(path.read_text())
    doc["options"].update(max_churn_chips=20, churn_cost_per_chip=1.0)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    full, (one,) = _full_and_rolling(path, 1)
    assert full["cost"]["total"] == pytest.approx(3020) and one["cost"]["total"] == pytest.approx(3020)
    assert [c["chips_moved"] for c in one["cost"]["churn"]] == [0, 20]
    doc["options"]["max_churn_chips"] = 10
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    full, (two,) = _full_and_rolling(path, 2)
    assert full["cost"]["total"] == pytest.approx(4520) and two["cost"]["total"] == pytest.approx(4520)
    stuck = solve_rolling(path, 1)
    assert stuck.violations == [] and stuck.plan["status"] == "no_solution" and int(stuck.exit_code) == 4
    assert [s["status"] for s in stuck.plan["solver"]["rolling"]["steps"]] == ["optimal", "infeasible"]


def test_time_limit_covers_every_step(tmp_path):
    """--time-limit is the whole rolling command's budget: each step takes its share of what remains (the
    example rolled three ahead takes about 20 s unhurried; here 8 s in all, within 10% + 1 s of it)."""
    import subprocess
    import sys
    import time

    from tests.test_cli import run

    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "placement", "--version"], capture_output=True, check=True)
    startup = time.perf_counter() - started
    out = tmp_path / "plan"
    started = time.perf_counter()
    done = run("solve", str(QUARTERS), "--rolling", "3", "--time-limit", "8", "--out", str(out))
    wall = time.perf_counter() - started
    assert done.returncode in (1, 4), done.stderr
    assert wall <= 1.1 * 8 + 1.0 + startup, f"--time-limit 8 ran {wall:.1f} s"
    steps = yaml.safe_load((out / "plan.json").read_text())["solver"]["rolling"]["steps"]
    assert sum(s["seconds"] for s in steps) <= 8


def test_a_step_out_of_time_keeps_the_plan_the_step_before_made_for_its_period(tmp_path, monkeypatch):
    # The lead-time case rolled three ahead, with the q2 step made to find nothing in its share of the time
    # (the real solve, its plan dropped as a time limit would): q2 keeps step q1's plan for it, and the rest
    # rolls on, 8000 as before. One ahead there is no such plan to keep: no plan.
    import placement.rolling as rolling
    from solvers import Status

    real = rolling.solve_sets

    def q2_out_of_time(sets, *args, **kwargs):
        outcome = real(sets, *args, **kwargs)
        if sets.horizon.period_ids[0] == "q2":
            outcome.solution, outcome.status = None, Status.NO_SOLUTION
        return outcome

    monkeypatch.setattr(rolling, "solve_sets", q2_out_of_time)
    path = _scenario(tmp_path, [_reserved(term_periods=2, lead_periods=2), _on_demand(3.0)], periods=4)
    plan = _checked(solve_rolling(path, 3))
    assert plan["cost"]["total"] == pytest.approx(8000)
    steps = plan["solver"]["rolling"]["steps"]
    assert [s.get("kept_plan_of") for s in steps] == [None, "q1", None, None]
    assert any("q2 keeps the plan step q1 made" in note for note in plan["solver"]["notes"])
    stuck = solve_rolling(path, 1)
    assert stuck.violations == [] and stuck.plan["status"] == "no_solution"

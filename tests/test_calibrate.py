"""Calibration: points generated from known efficiency factors are fitted back within 5%; the CLI writes
overrides a scenario includes; bad input is exit 3."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from placement.calibrate import Point, calibrate, estimate_point, overrides_document, points_from_rows
from placement.catalog import load_catalog
from placement.cli import main
from placement.efficiency import PRESETS
from placement.importers import import_measurements
from placement.scenario import load_scenario

ACCELERATORS, MODELS = load_catalog()
HOPPER = PRESETS["nvidia-hopper"].efficiency


def _synthetic(truth, accel_id: str, model_id: str, chips: int) -> list[Point]:
    """Points a chip with `truth` factors would measure: batch-1 speed (bandwidth), a long prompt's TTFT and a
    prefill-heavy max-load throughput (compute), a mid-batch throughput (both)."""
    accel, model = ACCELERATORS[accel_id], MODELS[model_id]
    specs = [("output_tokens_per_s_per_user", 1000, 200, 1), ("ttft_s", 16000, 100, 1),
             ("output_tokens_per_s_per_chip", 4000, 50, None), ("output_tokens_per_s_per_chip", 1000, 500, 64),
             ("output_tokens_per_s_per_user", 2000, 500, 256)]
    points = []
    for k, (metric, i, o, batch) in enumerate(specs):
        draft = Point(f"{model_id}-{k}", model, accel, metric, 1.0, i, o, chips, concurrency=batch)
        points.append(replace(draft, measured=estimate_point(draft, truth).value))
    return points


def test_round_trip_dense_fits_bandwidth_and_compute_within_5_percent():
    truth = replace(HOPPER, memory_bandwidth=0.55, compute=0.45)
    fits = calibrate(_synthetic(truth, "h100", "llama-3.1-8b", 1))
    fitted = fits["h100"].factors
    assert fitted["memory_bandwidth"] == pytest.approx(0.55, rel=0.05)
    assert fitted["compute"] == pytest.approx(0.45, rel=0.05)
    assert all(abs(r - 1) < 0.02 for r in fits["h100"].residuals.values())


def test_round_trip_moe_fits_expert_bandwidth_within_5_percent():
    truth = replace(HOPPER, memory_bandwidth=0.6, compute=0.5, moe_bandwidth=0.5)
    points = _synthetic(truth, "h200", "mixtral-8x7b", 2) + [
        replace(p, id=p.id + "-tp4", chips=4) for p in _synthetic(truth, "h200", "mixtral-8x7b", 4)]
    fitted = calibrate(points)["h200"].factors
    assert set(fitted) == {"memory_bandwidth", "compute", "moe_bandwidth"}
    for name, value in (("memory_bandwidth", 0.6), ("compute", 0.5), ("moe_bandwidth", 0.5)):
        assert fitted[name] == pytest.approx(value, rel=0.05), name


def test_profile_rows_become_points_and_unknown_ids_are_named():
    rows = import_measurements(Path(__file__).parent / "data" / "measurements" / "profile.csv")
    points = points_from_rows(rows, MODELS, ACCELERATORS, "profile.csv")
    metrics = sorted(p.metric for p in points)
    assert metrics.count("output_tokens_per_s_per_chip") == 2 and metrics.count("ttft_s") == 2
    assert all(p.concurrency in (1, 16) for p in points)
    bad = rows.assign(model="no-such-model")
    with pytest.raises(Exception) as caught:
        points_from_rows(bad, MODELS, ACCELERATORS, "profile.csv")
    assert "unknown model 'no-such-model'" in str(caught.value)


def _measured_csv(path: Path, truth) -> Path:
    """A profile CSV as a team would have it, generated from known factors on H100."""
    lines = ["model,accelerator,chips_per_replica,input_tokens,output_tokens,output_tokens_per_s,"
             "output_tokens_per_s_per_user,ttft_s,batch_size"]
    model, accel = MODELS["llama-3.1-8b"], ACCELERATORS["h100"]
    for i, o, batch in ((1000, 200, 1), (16000, 100, 1), (1000, 500, 64), (2000, 500, 256)):
        p = Point("x", model, accel, "output_tokens_per_s_per_chip", 1.0, i, o, 1, concurrency=batch)
        e = estimate_point(p, truth)
        lines.append(f"llama-3.1-8b,h100,1,{i},{o},{e.value},{e.per_user},{e.ttft_s},{batch}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_calibrate_writes_overrides_a_scenario_includes(tmp_path, capsys):
    truth = replace(HOPPER, memory_bandwidth=0.55, compute=0.45)
    measured = _measured_csv(tmp_path / "measured.csv", truth)
    out = tmp_path / "overrides.yaml"
    assert main(["calibrate", str(measured), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "h100: memory_bandwidth" in printed and "before" in printed
    document = yaml.safe_load(out.read_text())
    assert document["accelerators"]["h100"]["memory_bandwidth"] == pytest.approx(0.55, rel=0.05)
    assert document["accelerators"]["h100"]["compute"] == pytest.approx(0.45, rel=0.05)
    scenario = _h100_scenario(tmp_path / "scenario.yaml", "with-overrides", "overrides.yaml", (1000, 200))
    loaded = load_scenario(scenario)
    efficiency = loaded.scenario.accelerator("h100").efficiency
    assert efficiency.preset == "nvidia-hopper"  # the catalog's preset stays, the fitted factors override it
    assert efficiency.memory_bandwidth == pytest.approx(0.55, rel=0.05)


def _h100_scenario(path, name: str, overrides: str, lengths: tuple[int, int]):
    """A catalog scenario on one h100 on-demand pool that reads estimator overrides from `overrides`."""
    path.write_text(yaml.safe_dump({
        "name": name, "accelerators": ["h100"], "models": ["llama-3.1-8b"],
        "workloads": [{"id": "w", "requests_per_s": 1, "buckets": [{"input_tokens": lengths[0],
                                                                     "output_tokens": lengths[1], "share": 1}]}],
        "pools": [{"id": "p", "accelerator": "h100", "kind": "on_demand", "max_chips": 8, "price_per_chip_hour": 1}],
        "estimator_overrides": overrides}))
    return path


def test_overrides_for_an_unknown_accelerator_are_bad_input(tmp_path):
    (tmp_path / "o.yaml").write_text(yaml.safe_dump(overrides_document({}, [])
                                                    | {"accelerators": {"h999": {"compute": 0.5}}}))
    scenario = _h100_scenario(tmp_path / "s.yaml", "x", "o.yaml", (10, 10))
    assert main(["validate", str(scenario)]) == 3
    (tmp_path / "o.yaml").write_text(yaml.safe_dump({"accelerators": {"h100": {"compute": 1.5}}}))
    assert main(["validate", str(scenario)]) == 3  # a fraction above 1


def test_cli_calibrate_bad_input_exit_3(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert main(["calibrate", str(missing), "--out", str(tmp_path / "o.yaml")]) == 3
    measured = _measured_csv(tmp_path / "m.csv", HOPPER)
    assert main(["calibrate", str(measured), "--out", str(tmp_path / "o.yaml"), "--fit", "warp_factor"]) == 3
    assert "--fit" in capsys.readouterr().err
    assert not (tmp_path / "o.yaml").exists()


def test_sram_measurements_cannot_be_calibrated():
    rows = import_measurements(Path(__file__).parent / "data" / "measurements" / "profile.csv").assign(
        accelerator="cerebras-wse3")
    with pytest.raises(Exception) as caught:
        points_from_rows(rows, MODELS, ACCELERATORS, "profile.csv")
    assert "SRAM chip" in str(caught.value)


def test_calibration_moves_factors_an_accelerator_already_overrides():
    """A scenario's accelerator with its own memory_bandwidth is refitted from there, not pinned to it."""
    from placement.scenario import AcceleratorEfficiency

    truth = replace(HOPPER, memory_bandwidth=0.55, compute=0.45)
    points = _synthetic(truth, "h100", "llama-3.1-8b", 1)
    tuned = ACCELERATORS["h100"].model_copy(update={"efficiency": AcceleratorEfficiency(preset="nvidia-hopper",
                                                                                      memory_bandwidth=0.8)})
    fitted = calibrate([replace(p, accelerator=tuned) for p in points])["h100"].factors
    assert fitted["memory_bandwidth"] == pytest.approx(0.55, rel=0.05)

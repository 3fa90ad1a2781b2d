"""Benchmark results -> measured profile rows, on sample files written in each tool's documented format
(tests/data/measurements): vllm bench serve --save-result JSON, GenAI-Perf and AIPerf JSON / CSV exports,
and our own profile CSV."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from placement.cli import main
from placement.errors import InputError
from placement.importers import Deployment, detect_format, import_measurements
from placement.scenario import check_profile_frame

DATA = Path(__file__).parent / "data" / "measurements"
WHERE = Deployment(model="llama-3.1-8b", accelerator="h100", chips_per_replica=1)


def _one(name: str, deployment: Deployment = WHERE) -> pd.Series:
    rows = import_measurements(DATA / name, deployment)
    assert len(rows) == 1 and rows.source.iloc[0] == "measured"
    checked, problems = check_profile_frame(rows, name, None)
    assert problems == []
    return rows.iloc[0]


def test_vllm_bench_serve_json():
    row = _one("vllm_bench_serve.json", Deployment())  # model, accelerator and chips from --metadata in the file
    assert (row.model, row.accelerator, row.chips_per_replica) == ("meta-llama/Llama-3.1-8B-Instruct", "h100", 1)
    assert (row.input_tokens, row.output_tokens) == (327680 / 320, 81920 / 320)  # 1024 / 256 per request
    assert row.requests_per_s == 5.4785 and row.output_tokens_per_s == 1402.50
    assert row.output_tokens_per_s_per_user == pytest.approx(1000 / 11.19)  # mean TPOT
    assert row.ttft_s == pytest.approx(0.06184) and row.batch_size == 16  # max_concurrency


def test_genai_perf_json_and_csv_agree():
    json_row = _one("profile_export_genai_perf.json", Deployment(accelerator="h100", chips_per_replica=2))
    assert json_row.model == "meta-llama/Llama-3.1-70B-Instruct" and json_row.batch_size == 16
    assert (json_row.input_tokens, json_row.output_tokens) == (2000, 500)
    assert json_row.output_tokens_per_s_per_user == pytest.approx(1000 / 16.59)  # inter-token latency
    assert json_row.ttft_s == pytest.approx(0.40213) and json_row.output_tokens_per_s == 920.6
    csv_row = _one("profile_export_genai_perf.csv", Deployment("llama-3.1-70b", "h100", 2, concurrency=16))
    for column in ("input_tokens", "output_tokens", "ttft_s", "output_tokens_per_s_per_user", "output_tokens_per_s",
                   "batch_size"):
        assert csv_row[column] == pytest.approx(json_row[column], rel=1e-3), column


def test_aiperf_json_and_csv_agree():
    json_row = _one("profile_export_aiperf.json", Deployment(accelerator="h200", chips_per_replica=1))
    assert json_row.model == "openai/gpt-oss-20b" and json_row.batch_size == 100  # loadgen.concurrency
    assert (json_row.input_tokens, json_row.output_tokens) == (550, 97)
    assert json_row.output_tokens_per_s_per_user == pytest.approx(19.33)  # output_token_throughput_per_user
    assert json_row.requests_per_s == pytest.approx(13.16084556379392)
    csv_row = _one("profile_export_aiperf.csv", Deployment("gpt-oss-20b", "h200", 1, concurrency=100))
    for column in ("input_tokens", "output_tokens", "ttft_s", "output_tokens_per_s_per_user", "output_tokens_per_s"):
        assert csv_row[column] == pytest.approx(json_row[column], rel=1e-3), column


def test_our_profile_csv_passes_through():
    rows = import_measurements(DATA / "profile.csv")
    assert len(rows) == 2 and set(rows.source) == {"measured"}
    assert rows.output_tokens_per_s.tolist() == pytest.approx([5.4785 * 256, 0.5810 * 256])


def test_formats_are_detected_by_content():
    kinds = {name: detect_format(DATA / name, (DATA / name).read_text()) for name in
             ("vllm_bench_serve.json", "profile_export_genai_perf.json", "profile_export_aiperf.csv", "profile.csv")}
    assert kinds == {"vllm_bench_serve.json": "vllm-json", "profile_export_genai_perf.json": "perf-json",
                     "profile_export_aiperf.csv": "perf-csv", "profile.csv": "profile-csv"}


def test_missing_deployment_and_bad_values_are_input_errors(tmp_path):
    with pytest.raises(InputError) as caught:
        import_measurements(DATA / "profile_export_genai_perf.csv", Deployment(accelerator="h100", chips_per_replica=1))
    assert "model: missing; give --model" in str(caught.value)
    broken = json.loads((DATA / "vllm_bench_serve.json").read_text())
    broken["mean_tpot_ms"] = -3
    (tmp_path / "b.json").write_text(json.dumps(broken))
    with pytest.raises(InputError) as caught:
        import_measurements(tmp_path / "b.json")
    assert "mean_tpot_ms: must be a positive number" in str(caught.value)
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(InputError, match="not a known benchmark result"):
        import_measurements(tmp_path / "x.json")


def test_cli_profile_import_writes_measured_rows(tmp_path, capsys):
    out = tmp_path / "rows.csv"
    code = main(["profile", "--import", str(DATA / "vllm_bench_serve.json"), str(DATA / "profile_export_aiperf.json"),
                 "--accelerator", "h100", "--chips", "1", "--model", "llama-3.1-8b", "--out", str(out)])
    assert code == 0
    rows = pd.read_csv(out)
    assert len(rows) == 2 and set(rows.source) == {"measured"} and set(rows.model) == {"llama-3.1-8b"}
    assert not any(c.endswith(("_low", "_high")) for c in rows.columns)  # measured rows carry no bands
    assert math.isclose(rows.batch_size.iloc[1], 100)


def test_cli_profile_import_bad_input_exit_3(tmp_path, capsys):
    assert main(["profile", "--import", str(DATA / "profile_export_aiperf.csv"), "--out", str(tmp_path / "o.csv")]) == 3
    err = capsys.readouterr().err
    assert "model: missing" in err and not (tmp_path / "o.csv").exists()
    assert main(["profile"]) == 3  # neither a scenario nor --import
    assert main(["profile", "--import", str(DATA / "profile.csv"), "--chips", "0"]) == 3


def test_rate_limited_run_gets_its_concurrency_from_littles_law(tmp_path):
    data = json.loads((DATA / "vllm_bench_serve.json").read_text())
    data.update(max_concurrency=None, request_rate=4.0)
    (tmp_path / "rate.json").write_text(json.dumps(data))
    row = import_measurements(tmp_path / "rate.json").iloc[0]
    assert row.batch_size == round(5.4785 * 2915.33 / 1000)  # 16 requests in flight on average

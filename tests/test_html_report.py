"""report.html opens in a real headless Chromium, offline, and shows the plan's cost."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from placement.cli import main
from tests.helpers import write_scenario
from tests.test_study import PRICE_AND_DEMAND, SPEC

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("PLACEMENT_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def _browse(page, tmp_path, *args) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run([_chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=120)


def _offline(html: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html), "the page must not need the network"


def test_plan_report_renders_with_its_cost(tmp_path):
    scenario = write_scenario(tmp_path / "sc", SPEC)
    assert main(["solve", str(scenario), "--out", str(tmp_path / "plan"), "--no-baselines"]) == 0
    page = tmp_path / "plan" / "report.html"
    _offline(page.read_text())
    dom = _browse(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<title>Plan for test</title>" in dom.stdout
    assert re.search(r'id="cost-per-hour">14\.00 USD<', dom.stdout)  # 1 block (2.0) + 2 on-demand replicas (12.0)
    shot = tmp_path / "plan.png"
    result = _browse(page, tmp_path, f"--screenshot={shot}", "--window-size=1000,800")
    assert result.returncode == 0 and shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 5000


def test_study_report_renders(tmp_path):
    from placement.study import run_study

    write_scenario(tmp_path / "scenario", SPEC)
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({"scenario": "scenario/scenario.yaml", "vary": PRICE_AND_DEMAND}))
    run_study(study, tmp_path / "out", jobs=1, log=lambda _: None)
    page = tmp_path / "out" / "report.html"
    _offline(page.read_text())
    dom = _browse(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="cost-min">3.00<' in dom.stdout and 'id="cost-max">32.00<' in dom.stdout
    assert dom.stdout.count("data:image/png;base64,") == 2  # one chart per varied path
    assert "case-004" in dom.stdout


def test_every_value_is_escaped():
    from placement.html_report import plan_report_html

    plan = {"status": "optimal", "scenario": {"name": "<script>alert(1)</script>", "currency": "USD"},
            "objective": {"gap": 0.0}, "cost": {"per_hour": 1.0, "period": 2.0},
            "pools": [{"pool": "<b>x</b>", "kind": "on_demand", "chips_used": 1, "per_hour": 1.0}]}
    page = plan_report_html(plan)
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;x&lt;/b&gt;" in page

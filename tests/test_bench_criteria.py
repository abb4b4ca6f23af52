"""The criteria benchmark stays runnable: a tiny run in a subprocess, numbers in its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_criteria_runs_and_reports_people_per_second_and_memory(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "criteria" / "run.py"), "--people", "300", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["people"] == 300
    assert report["evaluation"]["people_per_s"] > 0
    assert report["evaluation"]["people_per_cpu_s"] > 0
    assert 0 < report["evaluation"]["peak_rss_mb"] < 2048
    assert report["simulate"]["people_per_s"] > 0
    assert report["simulate"]["movers"] >= 0

"""Progress bars: counts, rate and ETA on a terminal; not a byte of noise in JSON mode or a pipe."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from connector import progress

REPO = Path(__file__).resolve().parents[1]


def terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=120, color_system=None), buffer


def test_a_terminal_shows_counts_against_the_crms_total() -> None:
    console, buffer = terminal()
    with progress.feed(console, "Backfill shard 0/1", json_logs=False) as step:
        step(200, 1000)
        step(300, 1000)
    progress_task = buffer.getvalue()  # the last refresh is drawn on exit, before the bar is erased
    assert "Backfill shard 0/1" in progress_task
    assert "500/1000" in progress_task
    assert "ETA" in progress_task


def test_without_a_total_the_bar_still_counts() -> None:
    console, buffer = terminal()
    with progress.counted(console, "Simulating", None, json_logs=False) as advance:
        advance(42)
    shown = buffer.getvalue()
    assert "42/?" in shown


def test_json_logs_or_a_pipe_draw_nothing() -> None:
    console, buffer = terminal()
    with progress.feed(console, "Planning", json_logs=True) as step:
        step(10, 10)
    assert buffer.getvalue() == ""
    piped = io.StringIO()
    with progress.counted(Console(file=piped), "Simulating", 5, json_logs=False) as advance:
        advance(5)
    assert piped.getvalue() == ""


def test_plan_in_json_mode_writes_only_json_lines_on_stderr(connector_env: Path) -> None:
    """Even with a terminal forced on (rich honours FORCE_COLOR / TTY_COMPATIBLE), `--log-format
    json` keeps stderr to JSON lines: the bar would corrupt a container's log stream."""
    env = {**os.environ, "FORCE_COLOR": "1", "TTY_COMPATIBLE": "1", "CONNECTOR_HUBSPOT_SEARCH_LAG": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "connector", "--log-format", "json", "--log-level", "INFO", "plan", "--json"],
        env=env, cwd=connector_env.parent, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert lines
    events = [json.loads(line) for line in lines]  # every line is one JSON object, no bar
    assert any(e.get("event") == "page.done" for e in events)
    assert "Planning" not in result.stderr

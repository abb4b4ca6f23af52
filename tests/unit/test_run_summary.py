"""The end-of-run summary a terminal shows after `sync` and `backfill`."""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, datetime

from rich.console import Console

from connector.engine import RunReport
from connector.model import Owner, WriteIntent, WriteResult
from connector.report import print_summary


def test_summary_shows_funnel_transitions_handoffs_per_rep_failures_and_drift() -> None:
    intent = WriteIntent(
        "hubspot", "contacts", "901", "p1", {"lifecyclestage": "marketingqualifiedlead"}, {}, "r"
    )
    report = RunReport(
        run_id="20260101T000000Z-abc123",
        dry_run=False,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        counts=Counter(records_read=12, written=5, failed=1, people=12),
        transitions=Counter({("lead", "mql"): 4, ("mql", "sql"): 1}),
        assigned=Counter({"701": 3, "702": 2}),
        owners={
            "701": Owner("hubspot", "701", None, "Ana Alvarez", True),
            "702": Owner("hubspot", "702", None, "Ben Brooks", True),
        },
        failures=[WriteResult(intent, ok=False, error="Property values were not valid")],
        stage_counts={"lead": 7, "mql": 4, "sql": 1},
        drift_people=2,
        parked_total=3,
    )
    buffer = io.StringIO()
    print_summary(Console(file=buffer, width=150, color_system=None), report)
    text = buffer.getvalue()
    assert "12 records read" in text
    assert "│ mql " in text.replace("┃", "│")  # funnel: people per stage
    assert "Stage changes written" in text
    assert "│      4 │" in text  # lead -> mql, 4 people
    assert "Ana Alvarez" in text  # hand-offs per rep, by name
    assert "Ben Brooks" in text
    assert "failed hubspot 901: Property values were not valid" in text
    assert "3 write(s) parked in all" in text
    assert "2 people differ in stage or owner" in text

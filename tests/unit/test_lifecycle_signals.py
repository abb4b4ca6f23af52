"""Signals: every kind, every filter, and the window edges (the off-by-one bugs live there)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.lifecycle import SignalCalculator, compute_signals
from connector.mapping.schema import SignalSpec
from connector.model import Activity

from .lifecycle_fixtures import NOW, act, criteria


def one(spec: SignalSpec, timeline: list[Activity]) -> int:
    return compute_signals({"s": spec}, criteria().activity_types, timeline, NOW)["s"]


COUNT_7D = SignalSpec(kind="count", window_days=7)


@pytest.mark.parametrize(
    ("spec", "timeline", "expected"),
    [
        pytest.param(COUNT_7D, [], 0, id="count-empty"),
        pytest.param(
            COUNT_7D, [act("page_view", 1), act("chat", 2), act("call", 3)], 3, id="count-all-types"
        ),
        pytest.param(
            SignalSpec(kind="count", window_days=7, types=["chat", "call"]),
            [act("page_view", 1), act("chat", 2), act("call", 3)],
            2,
            id="types-or",
        ),
        pytest.param(
            SignalSpec(kind="count", window_days=7, channels=["email"]),
            [act("email_open", 1), act("email_click", 2), act("email_reply", 3), act("social", 1)],
            3,
            id="channels-from-activity-types",
        ),
        pytest.param(
            SignalSpec(kind="count", window_days=7, url_patterns=["/pricing", "/solutions/"]),
            [
                act("page_view", 1, url="https://x.io/pricing?plan=pro"),
                act("page_view", 1, url="https://x.io/solutions/crm"),
                act("page_view", 1, url="https://x.io/blog"),
                act("page_view", 1),
            ],
            2,
            id="url-patterns-any-and-missing-url-never-matches",
        ),
        pytest.param(
            SignalSpec(kind="count", window_days=7, name_patterns=["(?i)white ?paper", "(?i)e-?book"]),
            [
                act("form_submission", 1, name="Whitepaper: RevOps"),
                act("form_submission", 1, name="The EBOOK"),
                act("form_submission", 1, name="Newsletter"),
                act("form_submission", 1),
            ],
            2,
            id="name-patterns-any-and-missing-name-never-matches",
        ),
        pytest.param(
            SignalSpec(kind="count", window_days=7, types=["page_view"], url_patterns=["/pricing"]),
            [
                act("page_view", 1, url="/pricing"),
                act("chat", 1, url="/pricing"),
                act("page_view", 1, url="/"),
            ],
            1,
            id="filters-and",
        ),
        pytest.param(
            SignalSpec(kind="distinct_channels", window_days=7),
            [
                act("page_view", 1),
                act("page_view", 2),
                act("email_open", 1),
                act("email_click", 1),
                act("chat", 1),
            ],
            3,
            id="distinct-channels",
        ),
        pytest.param(
            SignalSpec(kind="distinct_channels", window_days=7, channels=["web", "sales"]),
            [act("page_view", 1), act("email_open", 1), act("meeting", 1)],
            2,
            id="distinct-channels-filtered",
        ),
        pytest.param(
            SignalSpec(kind="distinct_days", window_days=7),
            [
                act("page_view", at=NOW.replace(hour=0, minute=0)),
                act("page_view", at=NOW.replace(hour=11)),
                act("page_view", at=NOW - timedelta(days=1)),
                act("chat", at=NOW - timedelta(days=3)),
            ],
            3,
            id="distinct-days-utc-dates",
        ),
        pytest.param(
            COUNT_7D,
            [act("page_view", 1), act("unknown_type", 1)],
            1,
            id="undeclared-activity-type-ignored",
        ),
    ],
)
def test_signal_kinds_and_filters(spec: SignalSpec, timeline: list[Activity], expected: int) -> None:
    assert one(spec, timeline) == expected


@pytest.mark.parametrize(
    ("offset", "counted"),
    [
        pytest.param(timedelta(0), True, id="exactly-now-counts"),
        pytest.param(timedelta(seconds=-1), False, id="one-second-in-the-future-ignored"),
        pytest.param(timedelta(days=-3), False, id="days-in-the-future-ignored"),
        pytest.param(timedelta(days=7) - timedelta(microseconds=1), True, id="just-inside-old-edge"),
        pytest.param(timedelta(days=7), False, id="exactly-window-old-excluded"),
        pytest.param(timedelta(days=8), False, id="outside-window"),
    ],
)
def test_window_edges(offset: timedelta, counted: bool) -> None:
    assert one(COUNT_7D, [act("page_view", at=NOW - offset)]) == int(counted)


def test_distinct_days_use_utc_dates_not_local_time() -> None:
    from datetime import timezone

    berlin_evening = timezone(timedelta(hours=2))
    # 2026-03-09 23:30 UTC is 2026-03-10 01:30 in UTC+2: one UTC day each for these two.
    first = act("page_view", at=NOW.replace(day=9, hour=23, minute=30).astimezone(berlin_evening))
    second = act("page_view", at=NOW.replace(hour=1))
    assert one(SignalSpec(kind="distinct_days", window_days=7), [first, second]) == 2


def test_naive_datetimes_are_read_as_utc() -> None:
    naive = act("page_view", at=(NOW - timedelta(hours=1)).replace(tzinfo=None))
    assert one(COUNT_7D, [naive]) == 1


def test_same_source_record_counts_once() -> None:
    first = act("page_view", 1, source_id="same")
    assert one(COUNT_7D, [first, first, act("page_view", 2, source_id="same")]) == 1


def test_shipped_signals_all_computed_and_named_in_order() -> None:
    calculator = SignalCalculator(criteria().signals, criteria().activity_types)
    values = calculator.compute([], NOW)
    assert list(values) == list(criteria().signals) == list(calculator.names)
    # With no activity every signal is 0, except recency, which reads "at least the window".
    assert {name: value for name, value in values.items() if value} == {"days_since_last_activity": 90}


def test_shipped_pricing_signal_window() -> None:
    inside = act("page_view", 29.9, url="https://acme.example/pricing")
    outside = act("page_view", 30, url="https://acme.example/pricing")
    values = compute_signals(criteria().signals, criteria().activity_types, [inside, outside], NOW)
    assert values["pricing_views_30d"] == 1
    assert values["interactions_30d"] == 1

"""The built-in scheduler: intervals, cron, no overlap, graceful stop — with a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.errors import AuthError, ConfigError, TransientError
from connector.scheduler import Cron, Every, Scheduler, parse_interval

T0 = datetime(2026, 11, 22, 10, 0, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("2d", 172800), (" 5M ", 300)],
)
def test_parse_interval(text: str, seconds: int) -> None:
    assert parse_interval(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "15", "m", "15 minutes", "-5m", "1.5h", "0s", "15mm"])
def test_parse_interval_rejects_with_the_option_name(text: str) -> None:
    with pytest.raises(ConfigError, match="--every"):
        parse_interval(text)


@given(st.lists(st.tuples(st.integers(1, 99), st.sampled_from("smhd")), min_size=1, max_size=4))
def test_parse_interval_sums_its_parts(parts: list[tuple[int, str]]) -> None:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = "".join(f"{n}{u}" for n, u in parts)
    assert parse_interval(text).total_seconds() == sum(n * units[u] for n, u in parts)


def test_cron_next_slot_in_utc() -> None:
    cron = Cron("*/15 * * * *")
    assert cron.first(T0) == datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
    # a run that finished late is followed by the next slot after it finished, never two at once
    assert cron.next_after(T0, datetime(2026, 11, 22, 10, 31, tzinfo=UTC)) == datetime(
        2026, 11, 22, 10, 45, tzinfo=UTC
    )


def test_invalid_cron_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--cron"):
        Cron("every quarter hour")


def test_every_runs_late_rather_than_overlapping() -> None:
    every = Every(timedelta(minutes=15))
    assert every.first(T0) == T0
    assert every.next_after(T0, T0 + timedelta(minutes=5)) == T0 + timedelta(minutes=15)
    assert every.next_after(T0, T0 + timedelta(minutes=40)) == T0 + timedelta(minutes=40)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_scheduler_runs_on_schedule_and_stops_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    started: list[datetime] = []
    waits: list[float] = []

    def job(should_stop: Callable[[], bool]) -> None:
        started.append(clock.now)
        clock.now += timedelta(minutes=2)  # each run takes 2 minutes
        if len(started) == 3:
            scheduler.stop()
        assert should_stop() == (len(started) == 3)

    scheduler = Scheduler(Every(timedelta(minutes=15)), job, clock=clock)

    def fake_wait(delay: float) -> bool:
        waits.append(delay)
        clock.now += timedelta(seconds=delay)
        return scheduler.stopping

    monkeypatch.setattr(scheduler._stop, "wait", fake_wait)
    assert scheduler.run() == 0
    assert started == [T0, T0 + timedelta(minutes=15), T0 + timedelta(minutes=30)]
    assert waits == [780.0, 780.0]  # 15 minutes minus the 2-minute run, between runs
    assert scheduler.runs == 3


def test_transient_failures_wait_for_the_next_slot_but_config_errors_stop() -> None:
    clock = FakeClock()
    calls: list[int] = []

    def flaky(_: Callable[[], bool]) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise TransientError("HubSpot had a temporary error")
        raise AuthError("token revoked")

    scheduler = Scheduler(Every(timedelta(seconds=1)), flaky, clock=clock)
    scheduler._stop.wait = lambda delay: False  # type: ignore[method-assign]
    with pytest.raises(AuthError):
        scheduler.run()
    assert len(calls) == 2


def test_jitter_delays_each_run_within_bounds() -> None:
    import random

    clock = FakeClock()
    waits: list[float] = []
    scheduler = Scheduler(
        Every(timedelta(minutes=1)),
        lambda _: None,
        jitter=timedelta(seconds=30),
        clock=clock,
        rng=random.Random(1),
    )

    def fake_wait(delay: float) -> bool:
        waits.append(delay)
        clock.now += timedelta(seconds=delay)
        return len(waits) >= 5

    scheduler._stop.wait = fake_wait  # type: ignore[method-assign]
    scheduler.run()
    assert waits
    assert all(0 <= w <= 90 for w in waits)
    assert len(set(waits)) > 1

"""The shared pacer: rolling windows, search per second, daily budget, headers, penalties.

A fake clock stands in for time: the pacer's `sleep` advances it, so tests run instantly and the
granted slot times can be checked against the limits directly.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.crm.pacing import TIER_LIMITS, Pacer, PacingLimits
from connector.errors import DailyLimitExhausted


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def pacer(limits: PacingLimits, clock: Clock) -> Pacer:
    return Pacer(limits, monotonic=clock, sleep=clock.sleep)


def max_in_window(times: Sequence[float], span: float) -> int:
    """The most sends inside any half-open window (t - span, t] (to a microsecond: floats)."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - span + 1e-6:
            start += 1
        best = max(best, end - start + 1)
    return best


def slots(p: Pacer, kind: str) -> list[float]:
    return [t for k, t in p.stats.slots if k == kind]


def test_requests_are_paced_under_the_rolling_ten_second_window() -> None:
    clock = Clock()
    p = pacer(PacingLimits(ten_secondly=100, search_per_second=None, daily=None, window_margin=0.5), clock)
    for _ in range(250):
        p.acquire()
    granted = slots(p, "general")
    assert max_in_window(granted, 10.5) == 100
    # the first 100 go at once, then one window each: 250 requests take two windows and change
    assert granted[99] == 1000.0
    assert granted[100] == pytest.approx(1010.5)
    assert clock.now == pytest.approx(1021.0)


def test_search_has_its_own_per_second_limit_and_skips_the_burst_window() -> None:
    clock = Clock()
    p = pacer(PacingLimits(ten_secondly=3, search_per_second=5, daily=None, window_margin=0.0), clock)
    for _ in range(12):
        p.acquire("search")
    searches = slots(p, "search")
    assert max_in_window(searches, 1.0) == 5
    assert searches[5] == pytest.approx(1001.0)
    # three general requests still go at once: search did not use the 10-second budget
    start = clock.now
    for _ in range(3):
        p.acquire()
    assert slots(p, "general") == [start] * 3


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["general", "search"]), st.floats(min_value=0, max_value=3)),
        min_size=1,
        max_size=300,
    ),
    st.integers(min_value=1, max_value=20),
    st.integers(min_value=1, max_value=6),
)
def test_no_window_ever_holds_more_than_its_limit(
    calls: list[tuple[str, float]], burst: int, per_second: int
) -> None:
    clock = Clock()
    p = pacer(PacingLimits(ten_secondly=burst, search_per_second=per_second, daily=None), clock)
    for kind, pause in calls:
        clock.now += pause
        p.acquire(kind)  # type: ignore[arg-type]
    assert max_in_window(slots(p, "general"), 10.5) <= burst
    assert max_in_window(slots(p, "search"), 1.05) <= per_second
    assert all(t >= 1000.0 for _, t in p.stats.slots)


def test_threads_sharing_one_pacer_never_overbook() -> None:
    clock = Clock()
    frozen = Pacer(
        PacingLimits(ten_secondly=20, search_per_second=None, daily=None),
        monotonic=clock,
        sleep=lambda _s: None,  # time stands still: every booking is computed under the lock
    )
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait(timeout=5)
        for _ in range(25):
            frozen.acquire()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    granted = slots(frozen, "general")
    assert len(granted) == 200
    assert max_in_window(granted, 10.5) == 20
    assert max(granted) == pytest.approx(1000.0 + 9 * 10.5)


def test_the_daily_budget_stops_before_sending() -> None:
    clock = Clock()
    p = pacer(PacingLimits(ten_secondly=None, search_per_second=None, daily=3), clock)
    for _ in range(3):
        p.acquire()
    with pytest.raises(DailyLimitExhausted, match="next run resumes"):
        p.acquire()
    assert p.stats.granted["general"] == 3


def test_a_daily_reserve_is_left_for_other_integrations() -> None:
    p = pacer(PacingLimits(ten_secondly=None, search_per_second=None, daily=10, daily_reserve=8), Clock())
    p.acquire()
    p.acquire()
    with pytest.raises(DailyLimitExhausted, match="CONNECTOR_HUBSPOT_DAILY_RESERVE"):
        p.acquire()


def test_headers_lower_the_limit_and_replace_the_daily_estimate() -> None:
    clock = Clock()
    p = pacer(PacingLimits(ten_secondly=190, search_per_second=None, daily=1_000_000), clock)
    p.observe(
        {
            "X-HubSpot-RateLimit-Max": "5",
            "X-HubSpot-RateLimit-Remaining": "5",
            "X-HubSpot-RateLimit-Daily-Remaining": "2",
        }
    )
    p.acquire()
    p.acquire()
    with pytest.raises(DailyLimitExhausted):
        p.acquire()
    p.new_run()
    p.observe({"x-hubspot-ratelimit-daily-remaining": "100"})  # header names in any case
    for _ in range(8):
        p.acquire()
    assert max_in_window(slots(p, "general"), 10.5) == 5


def test_a_higher_max_header_does_not_raise_the_configured_limit() -> None:
    clock = Clock()
    p = pacer(PacingLimits(ten_secondly=4, search_per_second=None, daily=None), clock)
    p.observe({"X-HubSpot-RateLimit-Max": "250", "X-HubSpot-RateLimit-Remaining": "250"})
    for _ in range(8):
        p.acquire()
    assert max_in_window(slots(p, "general"), 10.5) == 4


def test_remaining_lower_than_our_count_books_what_others_used() -> None:
    clock = Clock()
    p = pacer(PacingLimits(ten_secondly=10, search_per_second=None, daily=None, window_margin=0), clock)
    p.acquire()
    # HubSpot counts 8 in its window; we sent 1: other integrations used 7 of the shared bucket.
    p.observe({"X-HubSpot-RateLimit-Max": "10", "X-HubSpot-RateLimit-Remaining": "2"})
    p.acquire()
    p.acquire()
    before = clock.now
    p.acquire()  # the 11th in the window (1 + 7 others + 2): must wait for the window to turn
    assert clock.now - before == pytest.approx(10.0)


def test_a_penalty_pauses_every_kind_of_request() -> None:
    clock = Clock()
    p = pacer(PacingLimits(ten_secondly=100, search_per_second=5, daily=None), clock)
    p.acquire()
    p.penalise(7.0)
    p.acquire("search")
    assert clock.slept == [pytest.approx(7.0)]
    assert p.stats.penalties == 1


def test_tier_defaults_follow_hubspots_published_limits() -> None:
    assert (TIER_LIMITS["starter"].ten_secondly, TIER_LIMITS["starter"].daily) == (100, 250_000)
    assert (TIER_LIMITS["professional"].ten_secondly, TIER_LIMITS["professional"].daily) == (190, 650_000)
    assert (TIER_LIMITS["enterprise"].ten_secondly, TIER_LIMITS["enterprise"].daily) == (190, 1_000_000)
    assert {limits.search_per_second for limits in TIER_LIMITS.values()} == {5}


def test_requests_still_in_flight_are_taken_off_hubspots_daily_remaining() -> None:
    p = pacer(PacingLimits(ten_secondly=None, search_per_second=None, daily=None), Clock())
    for _ in range(4):
        p.acquire()  # four requests sent, none answered yet
    p.observe({"X-HubSpot-RateLimit-Daily-Remaining": "5"})  # the first answer: 3 still in flight
    assert p.daily_left == 2
    p.acquire()
    p.acquire()
    with pytest.raises(DailyLimitExhausted):
        p.acquire()


def test_a_new_run_starts_from_the_configured_daily_limit_again() -> None:
    p = pacer(PacingLimits(ten_secondly=None, search_per_second=None, daily=10), Clock())
    p.exhaust()
    with pytest.raises(DailyLimitExhausted):
        p.acquire()
    p.new_run()
    p.acquire()
    assert p.daily_left == 9

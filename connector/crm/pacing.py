"""Pace HubSpot calls under the account's limits instead of bouncing off them.

One `Pacer` is shared by every thread of a run. Before each request a thread asks it for a slot;
the pacer books the earliest moment at which sending keeps every limit, and the thread sleeps
until then (outside the lock, so threads never queue behind a sleeper):

* the rolling 10-second window (HubSpot's `TEN_SECONDLY_ROLLING`: 100 requests on Free/Starter,
  190 on Professional/Enterprise, 250 with the API limit increase);
* the CRM search endpoints' own per-second limit (5 per account). Search is exempt from the
  10-second window: HubSpot's OpenAPI specs mark the search operations `ten-secondly` exempt
  (api-facts §1.2), so counting them there too would waste the burst budget;
* the daily budget (250,000 / 650,000 / 1,000,000 by tier). When it is spent the pacer raises
  `DailyLimitExhausted` before sending, so the run stops cleanly instead of collecting 429s.

HubSpot counts a request when it arrives; we count when we send. Arrival jitter can squeeze two
requests of ours closer together than we sent them, so the window we keep is `window_margin`
seconds longer than HubSpot's (0.5 s by default: at most 5 % of the limit is left unused).

The `X-HubSpot-RateLimit-*` response headers, when HubSpot sends them (private apps; not on search
responses), correct our view: a lower `Max` than configured becomes the limit, a `Remaining`
lower than our own count says other integrations share the bucket (their use is booked as
phantom requests), and `Daily-Remaining` replaces our daily estimate. A 429 despite all this
(`penalise`) pauses every thread for the wait HubSpot asked for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from connector.errors import DailyLimitExhausted

log = logging.getLogger("connector.pacing")

Kind = Literal["general", "search"]

WINDOW_SECONDS = 10.0
SEARCH_WINDOW_SECONDS = 1.0


@dataclass(frozen=True)
class PacingLimits:
    """The limits to pace under. None switches a limit off (e.g. an emulator without limits)."""

    ten_secondly: int | None = 100
    search_per_second: int | None = 5
    daily: int | None = 250_000
    window_margin: float = 0.5
    """Seconds added to the 10 s window to absorb arrival jitter (see the module docstring)."""
    daily_reserve: int = 0
    """Daily calls to leave unused for other integrations of the same portal."""


TIER_LIMITS: dict[str, PacingLimits] = {
    "free": PacingLimits(ten_secondly=100, search_per_second=5, daily=250_000),
    "starter": PacingLimits(ten_secondly=100, search_per_second=5, daily=250_000),
    "professional": PacingLimits(ten_secondly=190, search_per_second=5, daily=650_000),
    "enterprise": PacingLimits(ten_secondly=190, search_per_second=5, daily=1_000_000),
}
"""HubSpot's published limits for private apps per subscription tier (api-facts §5)."""


@dataclass
class PacerStats:
    """What pacing cost: requests granted, seconds threads slept waiting, penalties taken."""

    granted: dict[str, int] = field(default_factory=lambda: {"general": 0, "search": 0})
    waited: float = 0.0
    penalties: int = 0
    window_max: int | None = None
    """HubSpot's X-HubSpot-RateLimit-Max of the last answer that carried it."""
    window_remaining: int | None = None
    """HubSpot's X-HubSpot-RateLimit-Remaining of the same answer."""
    daily_max: int | None = None
    """HubSpot's X-HubSpot-RateLimit-Daily of the last answer that carried it."""
    slots: list[tuple[str, float]] = field(default_factory=list)
    """(kind, monotonic time) of every granted slot, for tests and the benchmark."""


class _Window:
    """A sliding log of booked send times (possibly in the near future) for one limit."""

    def __init__(self, limit: int, span: float) -> None:
        self.limit = limit
        self.span = span
        self.times: deque[float] = deque()

    def earliest(self, start: float) -> float:
        """The earliest moment >= start at which one more send keeps <= limit in any span."""
        while self.times and self.times[0] <= start - self.span:
            self.times.popleft()
        slot = start
        if len(self.times) >= self.limit:
            slot = max(slot, self.times[len(self.times) - self.limit] + self.span)
        if self.times:
            slot = max(slot, self.times[-1])  # keep the log sorted
        return slot

    def book(self, slot: float) -> None:
        self.times.append(slot)

    def used(self, now: float) -> int:
        """Sends in the window ending now (booked future ones excluded)."""
        return sum(1 for t in self.times if now - self.span < t <= now)


class Pacer:
    """Thread-safe pacing for one HubSpot account. `monotonic` and `sleep` are injectable."""

    def __init__(
        self,
        limits: PacingLimits,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = limits
        self._now = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._general = (
            _Window(limits.ten_secondly, WINDOW_SECONDS + limits.window_margin)
            if limits.ten_secondly
            else None
        )
        self._search = (
            _Window(limits.search_per_second, SEARCH_WINDOW_SECONDS + limits.window_margin / 10)
            if limits.search_per_second
            else None
        )
        self._daily_left: int | None = limits.daily
        self._in_flight = 0
        self._paused_until = 0.0
        self.stats = PacerStats()

    # ------------------------------------------------------------------ before a request

    def acquire(self, kind: Kind = "general") -> None:
        """Block until a request of `kind` may be sent; raise when the daily budget is spent."""
        with self._lock:
            if self._daily_left is not None and self._daily_left <= self.limits.daily_reserve:
                reserve = self.limits.daily_reserve
                kept = (
                    f" (keeping {reserve} calls in reserve: CONNECTOR_HUBSPOT_DAILY_RESERVE)"
                    if reserve
                    else ""
                )
                raise DailyLimitExhausted(
                    f"HubSpot's daily API budget is used up{kept}: the run stops here and the next run "
                    "resumes from the saved cursors",
                    detail=f"daily budget left: {self._daily_left}",
                )
            now = self._now()
            window = self._search if kind == "search" else self._general
            slot = max(now, self._paused_until)
            if window is not None:
                slot = window.earliest(slot)
                window.book(slot)
            if self._daily_left is not None:
                self._daily_left -= 1
            self._in_flight += 1
            self.stats.granted[kind] += 1
            self.stats.slots.append((kind, slot))
            wait = slot - now
            if wait > 0:
                self.stats.waited += wait
        if wait > 0:
            self._sleep(wait)

    # ------------------------------------------------------------------ after a response

    def observe(self, headers: Mapping[str, str] | None) -> None:
        """A request granted by `acquire` got its answer (or failed): call exactly once per request.

        Takes HubSpot's own view from `X-HubSpot-RateLimit-*` headers, when present. HubSpot's
        daily count cannot include our requests still in flight, so those are taken off the
        `Daily-Remaining` it reports (stopping a little early rather than collecting 429s). Within
        a run the daily estimate only goes down; `new_run` starts it afresh.
        """
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
        if not headers:
            return
        values = {k.lower(): v for k, v in headers.items()}
        top = _int(values.get("x-hubspot-ratelimit-max"))
        remaining = _int(values.get("x-hubspot-ratelimit-remaining"))
        daily_remaining = _int(values.get("x-hubspot-ratelimit-daily-remaining"))
        daily_max = _int(values.get("x-hubspot-ratelimit-daily"))
        with self._lock:
            if top is not None and remaining is not None:
                self.stats.window_max, self.stats.window_remaining = top, remaining
            if daily_max is not None:
                self.stats.daily_max = daily_max
            window = self._general
            if window is not None and top is not None and 0 < top < window.limit:
                log.info(
                    "HubSpot reports a 10-second limit of %d (configured %d): pacing to it", top, window.limit
                )
                window.limit = top
            if window is not None and top is not None and remaining is not None:
                now = self._now()
                others = (top - remaining) - window.used(now)
                for _ in range(max(0, others)):
                    window.book(max(now, window.times[-1]) if window.times else now)
            if daily_remaining is not None:
                # Answers can be handled out of order: an older, higher count never raises ours.
                reported = daily_remaining - self._in_flight
                self._daily_left = reported if self._daily_left is None else min(self._daily_left, reported)

    def penalise(self, seconds: float, kind: Kind = "general") -> None:
        """A 429 came anyway: every thread waits `seconds` before its next request of any kind."""
        with self._lock:
            self.stats.penalties += 1
            self._paused_until = max(self._paused_until, self._now() + max(0.0, seconds))

    def new_run(self) -> None:
        """A run starts (`connector run` keeps one pacer): the daily estimate starts from the limit
        again, and HubSpot's Daily-Remaining header corrects it on the first answer."""
        with self._lock:
            self._daily_left = self.limits.daily
            self._paused_until = 0.0

    def exhaust(self) -> None:
        """HubSpot answered a DAILY 429: no thread sends another request this run."""
        with self._lock:
            self._daily_left = min(self._daily_left or 0, self.limits.daily_reserve)

    def headroom(self) -> tuple[float | None, float | None]:
        """(share left of the 10 s window, share left of the day) as HubSpot last reported them;
        the day falls back to our own estimate against the configured daily limit."""
        with self._lock:
            stats = self.stats
            window = (
                max(0, stats.window_remaining) / stats.window_max
                if stats.window_max and stats.window_remaining is not None
                else None
            )
            daily_max = stats.daily_max or self.limits.daily
            daily = (
                max(0, self._daily_left) / daily_max if daily_max and self._daily_left is not None else None
            )
        return window, daily

    @property
    def daily_left(self) -> int | None:
        with self._lock:
            return self._daily_left


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None

"""`connector run --every 15m | --cron "*/15 * * * *"`: the built-in scheduler.

Runs never overlap (one loop, one run at a time; a run that overruns its slot starts the next one
late rather than twice), a stop request (SIGTERM, Ctrl-C) lets the page in flight finish and its
cursor commit before the process exits 0, and an optional jitter spreads many containers' runs.
"""

from __future__ import annotations

import logging
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from croniter import croniter

from connector.errors import AuthError, ConfigError, ConnectorError

log = logging.getLogger("connector.scheduler")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_INTERVAL = re.compile(r"(\d+)([smhd])")


def parse_interval(text: str) -> timedelta:
    """ "15m", "1h30m", "90s" -> timedelta; anything else is a config error naming the option."""
    compact = text.strip().lower().replace(" ", "")
    parts = _INTERVAL.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ConfigError(f"--every {text!r}: use a number and a unit, e.g. 30s, 15m, 1h or 1h30m")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds < 1:
        raise ConfigError(f"--every {text!r}: the interval must be at least 1 second")
    return timedelta(seconds=seconds)


class Schedule(Protocol):
    def first(self, now: datetime) -> datetime: ...

    def next_after(self, started: datetime, finished: datetime) -> datetime: ...


@dataclass(frozen=True)
class Every:
    """Start now, then every `interval` measured from the previous start."""

    interval: timedelta

    def first(self, now: datetime) -> datetime:
        return now

    def next_after(self, started: datetime, finished: datetime) -> datetime:
        return max(started + self.interval, finished)


@dataclass(frozen=True)
class Cron:
    """Standard 5-field cron, evaluated in UTC."""

    expression: str

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.expression):
            raise ConfigError(
                f'--cron {self.expression!r}: not a valid cron expression (e.g. "*/15 * * * *")'
            )

    def first(self, now: datetime) -> datetime:
        return self._next(now)

    def next_after(self, started: datetime, finished: datetime) -> datetime:
        return self._next(finished)

    def _next(self, moment: datetime) -> datetime:
        nxt: datetime = croniter(self.expression, moment).get_next(datetime)
        return nxt if nxt.tzinfo else nxt.replace(tzinfo=UTC)


Job = Callable[[Callable[[], bool]], None]
"""One run; receives `should_stop` to ask between pages."""


class Scheduler:
    """Calls `job` on `schedule` until `stop()`; returns the process exit code (0 on a clean stop)."""

    def __init__(
        self,
        schedule: Schedule,
        job: Job,
        *,
        jitter: timedelta = timedelta(0),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.schedule = schedule
        self.job = job
        self.jitter = jitter
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._stop = threading.Event()
        self.runs = 0

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> int:
        due = self.schedule.first(self.clock())
        while not self._stop.is_set():
            if self._wait_until(due + self._jitter()):
                break
            started = self.clock()
            try:
                self.job(lambda: self._stop.is_set())
            except (ConfigError, AuthError):
                raise  # the operator must act; retrying on a schedule would only repeat it
            except ConnectorError as exc:
                log.error("run failed, will try again at the next slot: %s", exc.message,
                          extra={"event": "schedule.run_failed", "error": type(exc).__name__})  # fmt: skip
            self.runs += 1
            due = self.schedule.next_after(started, self.clock())
            log.info(
                "next run at %s", due.isoformat(), extra={"event": "schedule.next", "at": due.isoformat()}
            )
        log.info("scheduler stopped", extra={"event": "schedule.stopped", "runs": self.runs})
        return 0

    def _jitter(self) -> timedelta:
        if self.jitter <= timedelta(0):
            return timedelta(0)
        return timedelta(seconds=self.rng.uniform(0, self.jitter.total_seconds()))

    def _wait_until(self, moment: datetime) -> bool:
        """Sleep until `moment`; True if a stop was requested meanwhile."""
        delay = (moment - self.clock()).total_seconds()
        return self._stop.wait(delay) if delay > 0 else self._stop.is_set()

"""A clock for the HubSpot pacer in tests: waits are recorded and skipped, never slept.

Tests inject the retry policy's `sleep` and assert the waits; the pacer has its own waits (the
pause a 429 imposes on every thread, the search endpoints' 5 per second) that would otherwise be
slept for real. `pace_virtually` makes every pacer the factory builds use a `PacerClock`: real time
plus the waits skipped so far, so the pacer books the same slots and reports the same waits.
"""

from __future__ import annotations

import threading
import time

import pytest

from connector.crm.pacing import Pacer, PacingLimits


class PacerClock:
    def __init__(self) -> None:
        self.waits: list[float] = []
        self._skipped = 0.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return time.monotonic() + self._skipped

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(seconds)
            self._skipped += seconds


def pace_virtually(monkeypatch: pytest.MonkeyPatch, clock: PacerClock | None = None) -> PacerClock:
    """Every pacer `connector.crm.factory` builds from now on runs on `clock` (a new one if None)."""
    import connector.crm.factory as factory

    clock = clock or PacerClock()

    def pacer(limits: PacingLimits) -> Pacer:
        return Pacer(limits, monotonic=clock.monotonic, sleep=clock.sleep)

    monkeypatch.setattr(factory, "Pacer", pacer)
    return clock

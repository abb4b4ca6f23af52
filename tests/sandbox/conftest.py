"""Fixtures for the HubSpot emulator tests: a seeded store, a fake clock, and a loopback server
whose every exchange is checked against HubSpot's OpenAPI specs when they are available."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hubspot import HubSpot
from werkzeug.test import Client

from connector.sandbox.hubspot_app import HubSpotEmulator
from connector.sandbox.hubspot_store import HubSpotStore
from connector.sandbox.server import ServerThread

from .seed import TOKEN, new_store
from .spec_check import SPEC_DIR, SpecChecker


class FakeClock:
    """Stands in for `datetime.now(UTC)`; tests move it explicitly."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 2, 10, 0, tzinfo=UTC))


@pytest.fixture
def store() -> HubSpotStore:
    return new_store()


@pytest.fixture
def sleeps() -> list[float]:
    """Every latency the emulator would have slept, instead of sleeping."""
    return []


@pytest.fixture
def emulator(store: HubSpotStore, clock: FakeClock, sleeps: list[float]) -> HubSpotEmulator:
    return HubSpotEmulator(store, clock=clock, sleep=sleeps.append)


@pytest.fixture
def spec_checker(emulator: HubSpotEmulator) -> SpecChecker | None:
    """Validates traffic against ../shared/specs/hubspot; None (no checking) when that folder is absent."""
    return SpecChecker(emulator) if SPEC_DIR.is_dir() else None


@pytest.fixture
def server(emulator: HubSpotEmulator, spec_checker: SpecChecker | None) -> Iterator[ServerThread]:
    with ServerThread(spec_checker or emulator) as running:
        yield running
    if spec_checker is not None:
        assert spec_checker.violations == [], "emulator traffic broke HubSpot's OpenAPI spec"


@pytest.fixture
def hubspot(server: ServerThread) -> HubSpot:
    """The real SDK, pointed at the emulator."""
    return HubSpot(access_token=TOKEN, host=server.url)


@pytest.fixture
def raw(emulator: HubSpotEmulator) -> Client:
    """In-process WSGI client for requests the SDK would never send (bad JSON, no token...)."""
    return Client(emulator)

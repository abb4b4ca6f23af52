"""Shared fixtures: a clean environment, the shipped mappings, and a demo HubSpot sandbox."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAPPINGS = REPO / "mappings"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's CONNECTOR_* variables or .env file."""
    for name in list(os.environ):
        if name.startswith("CONNECTOR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def mappings_dir() -> Path:
    return MAPPINGS


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def demo(now: datetime):  # type: ignore[no-untyped-def]
    """(store, expected outcomes) of a freshly generated demo portal."""
    from connector.sandbox.demo_data import build_demo_portal

    return build_demo_portal(now, seed=7, people=300)


@pytest.fixture
def hubspot_server(demo) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """The emulator on loopback; every exchange the connector makes is checked against HubSpot's
    OpenAPI specs when ../shared/specs/hubspot is present (and silently not, where it is absent;
    tests/sandbox reports that skip explicitly)."""
    from sandbox.spec_check import SPEC_DIR, SpecChecker

    from connector.sandbox.hubspot_app import HubSpotEmulator
    from connector.sandbox.server import serve_in_thread

    store, _ = demo
    emulator = HubSpotEmulator(store)
    checker = SpecChecker(emulator) if SPEC_DIR.is_dir() else None
    with serve_in_thread(checker or emulator) as server:
        server.emulator = emulator  # type: ignore[attr-defined]
        yield server
    if checker is not None:
        assert checker.violations == [], "the connector's HubSpot traffic broke HubSpot's OpenAPI spec"


@pytest.fixture
def connector_env(monkeypatch: pytest.MonkeyPatch, hubspot_server, demo, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Environment pointing the CLI at the sandbox; returns the state DB path."""
    store, _ = demo
    db = tmp_path / "state.db"
    monkeypatch.setenv("CONNECTOR_HUBSPOT_BASE_URL", hubspot_server.url)
    monkeypatch.setenv("CONNECTOR_HUBSPOT_TOKEN", store.access_token)
    monkeypatch.setenv("CONNECTOR_STATE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(MAPPINGS))
    return db

"""Shared fixtures: a clean environment, the shipped mappings, and a demo HubSpot sandbox."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest

pytest_plugins = ["sf_fixtures"]

REPO = Path(__file__).resolve().parents[1]
MAPPINGS = REPO / "mappings"
# The PostgreSQL server the state tests use (trust auth on loopback where tests run). Not a
# CONNECTOR_* variable on purpose: those are cleared for every test.
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]
DEMO_PEOPLE = 160
"""The `demo` portal's size: every persona once (the demo's minimum, 154) and a few filler people.
Each sync over it reads and decides everyone, so a bigger demo only makes the tests slower."""


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database for this test session (dropped at the end), or None with the
    reason recorded when no server answers; each test then gets its own schema inside it."""
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        _PG_UNAVAILABLE.append(f"no PostgreSQL at {PG_ADMIN_URL} ({type(exc).__name__}: {exc})")
        yield None
        return
    name = f"connector_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            base = PG_ADMIN_URL.rsplit("/", 1)[0]
            yield f"{base}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_PG_UNAVAILABLE: list[str] = []


def _pg_schema_url(database_url: str) -> Iterator[str]:
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        # Durability is no concern in tests: skip the fsync per commit.
        options = f"-csearch_path={schema} -csynchronous_commit=off"
        yield f"{database_url}?options={quote(options)}"
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A state database URL on each backend: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    database = request.getfixturevalue("pg_database")
    if database is None:
        pytest.skip(_PG_UNAVAILABLE[0] if _PG_UNAVAILABLE else "no PostgreSQL server reachable")
    yield from _pg_schema_url(database)


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

    return build_demo_portal(now, seed=7, people=DEMO_PEOPLE)


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

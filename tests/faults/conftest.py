"""Fixtures for the fault, bad-input, security and kill suites: one harness per CRM emulator, the
state database on each backend, and the reference outcome of an uninterrupted run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .harness import HARNESSES, CrmHarness, OwnedState, Runner

NOW = datetime.now(UTC)
_REFERENCE: dict[str, OwnedState] = {}
_REQUESTS: dict[str, dict[str, int]] = {}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest) -> Iterator[CrmHarness]:
    h = HARNESSES[request.param](NOW)
    yield h
    h.close()


@pytest.fixture
def runner(harness: CrmHarness, state_url: str, monkeypatch: pytest.MonkeyPatch) -> Runner:
    return Runner(harness, state_url, monkeypatch)


@pytest.fixture
def reference(harness: CrmHarness, tmp_path_factory: pytest.TempPathFactory) -> OwnedState:
    """What an uninterrupted, fault-free sync leaves in this CRM (computed once per CRM)."""
    if harness.crm not in _REFERENCE:
        clean = type(harness)(NOW)  # type: ignore[call-arg]
        folder: Path = tmp_path_factory.mktemp("reference")
        with pytest.MonkeyPatch.context() as mp:
            code = Runner(clean, f"sqlite:///{folder / 'state.db'}", mp).run("sync")
        clean.close()
        assert code == 0
        _REFERENCE[harness.crm] = clean.state()
        _REQUESTS[harness.crm] = {role: clean.requests(role) for role in ("any", "write")}
    return _REFERENCE[harness.crm]


@pytest.fixture
def clean_requests(harness: CrmHarness, reference: OwnedState) -> dict[str, int]:
    """How many requests of each role ("any", "write") the uninterrupted run behind `reference` made."""
    return _REQUESTS[harness.crm]

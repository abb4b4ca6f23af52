"""The joint demo: both CRM emulators filled with one set of people, a state store, and settings
that point the connector at them (HubSpot over HTTP, Salesforce over HTTPS with JWT login)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from virtual_time import pace_virtually

from connector.crm.factory import build_adapters
from connector.engine import Engine
from connector.mapping.loader import load_mappings
from connector.sandbox.hubspot_app import HubSpotEmulator
from connector.sandbox.salesforce_app import SalesforceEmulator
from connector.sandbox.salesforce_demo import (
    CONSUMER_KEY,
    INTEGRATION_USERNAME,
    JointDemo,
    build_joint_demo,
    register_connected_app,
)
from connector.sandbox.server import serve_in_thread
from connector.settings import Settings
from connector.state.store import StateStore

REPO = Path(__file__).resolve().parents[2]
JOINT_PEOPLE = 170  # the demo's minimum (every persona, the routing ones included) and a few more


@dataclass
class Joint:
    demo: JointDemo
    settings: Settings
    state: StateStore
    now: list[datetime]
    """When the demo was built; `freeze()` makes `now[0]` the engines' clock, for the test to move."""
    frozen: bool = False

    def freeze(self) -> Joint:
        self.frozen = True
        return self

    def engine(self, mappings_dir: Path = REPO / "mappings") -> Engine:
        mappings = load_mappings(mappings_dir)
        adapters = build_adapters(self.settings, mappings)
        if not self.frozen:
            return Engine(mappings, self.state, adapters)
        now = self.now
        clock: Callable[[], datetime] = lambda: now[0]  # noqa: E731 - read at every call
        return Engine(mappings, self.state, adapters, clock=clock)

    def hubspot_tasks(self) -> dict[str, dict[str, Any]]:
        return dict(self.demo.hubspot.engagements.get("tasks", {}))

    def salesforce_tasks(self) -> dict[str, dict[str, Any]]:
        rows = self.demo.salesforce.records.get("Task", {})
        return {k: v for k, v in rows.items() if v.get("TaskSubtype") == "Task" and v.get("Description")}


@pytest.fixture
def joint(sf_certs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Joint]:  # type: ignore[no-untyped-def]
    """Both emulators with the joint demo. The HubSpot pacer's waits are skipped (the emulators
    enforce no limits; tests/adapters/test_pacing.py covers pacing)."""
    certs, ca_file = sf_certs
    pace_virtually(monkeypatch)
    now = datetime.now(UTC)
    demo = build_joint_demo(now, seed=11, people=JOINT_PEOPLE)
    with (
        serve_in_thread(HubSpotEmulator(demo.hubspot)) as hs_server,
        serve_in_thread(SalesforceEmulator(demo.salesforce), ssl_context=certs.server_context()) as sf_server,
    ):
        settings = Settings(
            hubspot_base_url=hs_server.url,
            hubspot_token=SecretStr(demo.hubspot.access_token),
            state_url=f"sqlite:///{tmp_path / 'state.db'}",
            salesforce_auth="jwt",
            salesforce_username=INTEGRATION_USERNAME,
            salesforce_consumer_key=SecretStr(CONSUMER_KEY),
            salesforce_private_key=SecretStr(register_connected_app(demo.salesforce)),
            salesforce_login_url=sf_server.url,
            salesforce_ca_bundle=ca_file,
        )
        state = StateStore.open(settings.state_url)
        try:
            yield Joint(demo, settings, state, [now])
        finally:
            state.close()

"""Salesforce sandbox fixtures shared by adapter, sandbox and integration tests.

One test CA per session (generating keys is the slow part); one emulator per test with a fresh
store, served over TLS on 127.0.0.1, and clients that trust exactly that CA.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from connector.crm.factory import TimeoutSession
from connector.crm.retry import RetryPolicy
from connector.crm.salesforce import SalesforceAdapter
from connector.mapping.loader import load_mappings
from connector.sandbox.salesforce_app import SalesforceEmulator
from connector.sandbox.salesforce_store import SalesforceStore
from connector.sandbox.server import ServerThread, TestCertificates, serve_in_thread

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@dataclass
class SfSandbox:
    store: SalesforceStore
    emulator: SalesforceEmulator
    server: ServerThread
    ca_file: Path
    sleeps: list[float]

    def session(self) -> requests.Session:
        session = TimeoutSession(10)
        session.verify = str(self.ca_file)
        session.trust_env = False
        return session

    def client(self) -> Any:
        from simple_salesforce.api import Salesforce

        return Salesforce(
            instance_url=self.server.url, session_id=self.store.session_id, session=self.session()
        )

    def adapter(self, *, share: float = 1.0, max_attempts: int = 3, relogin: Any = None) -> SalesforceAdapter:
        mappings = load_mappings(REPO / "mappings")
        assert mappings.salesforce is not None
        retry = RetryPolicy(max_attempts=max_attempts, initial_wait=0.5, max_wait=4, sleep=self.sleeps.append)
        return SalesforceAdapter(
            self.client(), mappings.salesforce, retry, 10, relogin=relogin, api_share=share
        )


class Clock:
    """The emulator's clock: advance it to give writes a later SystemModstamp."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def sf_certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestCertificates, Path]:
    certs = TestCertificates()
    return certs, certs.write_ca(tmp_path_factory.mktemp("sf-ca") / "ca.pem")


@pytest.fixture
def sf_clock() -> Clock:
    return Clock()


@pytest.fixture
def sf_sandbox(sf_certs: tuple[TestCertificates, Path], sf_clock: Clock) -> Iterator[SfSandbox]:
    certs, ca_file = sf_certs
    store = SalesforceStore()
    emulator = SalesforceEmulator(store, clock=sf_clock, sleep=lambda _s: None)
    with serve_in_thread(emulator, ssl_context=certs.server_context()) as server:
        yield SfSandbox(store, emulator, server, ca_file, [])


def add_user(store: SalesforceStore, first: str, *, active: bool = True, at: datetime = T0) -> dict[str, Any]:
    return store.insert(
        "User",
        {
            "Username": f"{first.lower()}@northwind.example",
            "FirstName": first,
            "LastName": "Rep",
            "Email": f"{first.lower()}@northwind.example",
            "IsActive": active,
        },
        at=at,
    )


def add_lead(store: SalesforceStore, owner: str, *, at: datetime = T0, **values: Any) -> dict[str, Any]:
    row = {"LastName": "Lead", "Company": "Acme", "Status": "Open - Not Contacted", "OwnerId": owner}
    row.update(values)
    return store.insert("Lead", row, at=at)

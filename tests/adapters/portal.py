"""Helpers for adapter tests: mapping variants, seeded portals, adapters pointed at an emulator."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from hubspot import HubSpot
from urllib3.util.retry import Retry

from connector.crm.hubspot import HubSpotAdapter
from connector.crm.pacing import Pacer
from connector.crm.retry import RetryPolicy
from connector.mapping.schema import HubSpotMapping
from connector.sandbox.hubspot_app import HubSpotEmulator
from connector.sandbox.hubspot_store import HubSpotStore, hs_datetime
from connector.sandbox.server import ServerThread, serve_in_thread

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
UNTIL = T0 + timedelta(days=30)


def mapping_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((MAPPINGS / "hubspot.yaml").read_text())
    return copy.deepcopy(data)


def mapping(edit: Callable[[dict[str, Any]], None] | None = None) -> HubSpotMapping:
    """The shipped hubspot.yaml, optionally edited (`edit` changes the parsed dict in place)."""
    data = mapping_data()
    if edit is not None:
        edit(data)
    return HubSpotMapping(**data)


def add_contact(store: HubSpotStore, cid: int | str, modified: datetime, **props: str | None) -> str:
    key = str(cid)
    store.contacts[key] = {
        "hs_object_id": key,
        "email": f"person{key}@acme.example",
        "createdate": hs_datetime(T0 - timedelta(days=30)),
        "lastmodifieddate": hs_datetime(modified),
        "lifecyclestage": "subscriber",
        **props,
    }
    return key


def make_adapter(
    server: ServerThread,
    store: HubSpotStore,
    hubspot_mapping: HubSpotMapping | None = None,
    *,
    sleeps: list[float] | None = None,
    workers: int = 1,
    pacer: Pacer | None = None,
    clock: Callable[[], datetime] | None = None,
    max_attempts: int = 4,
) -> HubSpotAdapter:
    client = HubSpot(
        access_token=store.access_token,
        host=server.url,
        retry=Retry(total=0, raise_on_status=False),
        connection_pool_maxsize=workers + 2,
    )
    recorded = sleeps if sleeps is not None else []
    policy = RetryPolicy(max_attempts=max_attempts, initial_wait=0.5, max_wait=30, sleep=recorded.append)
    return HubSpotAdapter(
        client,
        hubspot_mapping or mapping(),
        policy,
        timeout=10,
        pacer=pacer,
        workers=workers,
        clock=clock or (lambda: T0 + timedelta(days=1)),
    )


def searches(store: HubSpotStore) -> list[Any]:
    return [r for r in store.requests if r.path.endswith("/search")]


@contextmanager
def spec_checked(emulator: HubSpotEmulator) -> Iterator[ServerThread]:
    """Serve `emulator`; every exchange is checked against HubSpot's OpenAPI specs when
    ../shared/specs/hubspot is present (tests/sandbox reports explicitly when it is not)."""
    from sandbox.spec_check import SPEC_DIR, SpecChecker

    checker = SpecChecker(emulator) if SPEC_DIR.is_dir() else None
    with serve_in_thread(checker or emulator) as server:
        yield server
    if checker is not None:
        assert checker.violations == [], "the adapter's HubSpot traffic broke HubSpot's OpenAPI spec"

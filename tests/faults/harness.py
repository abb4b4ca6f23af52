"""A CRM emulator plus the connector's CLI, wired for fault tests, one harness class per CRM.

The fault suite is written against `CrmHarness`, so every case runs against every emulator: the
Salesforce harness (issue 3) adds its class to `HARNESSES` and its fault knobs (REQUEST_LIMIT_EXCEEDED,
INVALID_SESSION_ID, UNABLE_TO_LOCK_ROW...) map onto the same verbs. Endpoints are named by role
("search", "read", "write", "owners"), not by URL, for the same reason.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pytest
from virtual_time import PacerClock, pace_virtually

from connector.cli import main
from connector.crm.retry import RetryPolicy
from connector.sandbox.demo_data import MIN_PEOPLE, build_demo_portal
from connector.sandbox.hubspot_app import HubSpotEmulator
from connector.sandbox.hubspot_store import HubSpotStore
from connector.sandbox.server import ServerThread, serve_in_thread

REPO = Path(__file__).resolve().parents[2]
PEOPLE = MIN_PEOPLE  # every persona once: the smallest portal that exercises every rule

OwnedState = dict[str, dict[str, str | None]]


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


class CrmHarness(Protocol):
    crm: str
    owned: tuple[str, ...]

    def env(self) -> dict[str, str]: ...
    def state(self) -> OwnedState: ...
    def writes(self) -> list[tuple[str, str, str]]: ...
    def rate_limit(self, role: str, *, times: int, policy: str, retry_after: float | None) -> None: ...
    def server_error(self, role: str, *, times: int, status: int = 503) -> None: ...
    def break_transport(self, role: str, kind: str, *, times: int = 1) -> None: ...
    def revoke_credentials(self, *, at_role: str | None = None) -> None: ...
    def restore_credentials(self) -> None: ...
    def exhaust_daily_limit(self, role: str) -> None: ...
    def delete_before_write(self, record_id: str, *, merged_into: str | None = None) -> None: ...
    def clear_faults(self) -> None: ...
    def remove_option(self, prop: str, value: str) -> None: ...
    def on_request(self, role: str, fn: Callable[[], None], *, nth: int, after: bool) -> None: ...
    def requests(self, role: str) -> int: ...
    def restore_options(self, prop: str) -> None: ...
    def record_ids(self) -> list[str]: ...
    def close(self) -> None: ...


@dataclass
class HubSpotHarness:
    now: datetime
    crm: str = "hubspot"
    owned: tuple[str, ...] = ("lifecyclestage", "hs_lead_status", "hubspot_owner_id")
    store: HubSpotStore = field(init=False)
    emulator: HubSpotEmulator = field(init=False)
    server: ServerThread = field(init=False)

    ROLES = {  # noqa: RUF012 - a constant table
        "search": ("/crm/v3/objects/contacts/search", "POST"),
        "read": ("/crm/v3/objects/contacts/batch/read", "POST"),
        "write": ("/crm/v3/objects/contacts/batch/update", "POST"),
        "owners": ("/crm/v3/owners", "GET"),
        "any": ("", None),
    }

    def __post_init__(self) -> None:
        self.store, _ = build_demo_portal(self.now, seed=7, people=PEOPLE)
        self.token = self.store.access_token
        self.emulator = HubSpotEmulator(self.store)
        self.server = serve_in_thread(self.emulator)

    def _where(self, role: str) -> dict[str, Any]:
        prefix, method = self.ROLES[role]
        return {"path_prefix": prefix, "method": method}

    def env(self) -> dict[str, str]:
        return {
            "CONNECTOR_HUBSPOT_BASE_URL": self.server.url,
            "CONNECTOR_HUBSPOT_TOKEN": self.token,
            "CONNECTOR_HUBSPOT_SEARCH_LAG": "0",
        }

    def record_ids(self) -> list[str]:
        return sorted(self.store.contacts, key=int)

    def state(self) -> OwnedState:
        with self.store.lock:
            return {
                cid: {p: (props.get(p) or None) for p in self.owned}
                for cid, props in self.store.contacts.items()
            }

    def writes(self) -> list[tuple[str, str, str]]:
        """(record id, property, value) of every record write the emulator applied or answered
        (follow-up task creates are not record writes: tests/integration/test_handoff.py has them)."""
        out = []
        for request in self.store.writes():
            if (request.status >= 300 and request.status != 207) or request.path.endswith("/batch/create"):
                continue
            for item in request.body.get("inputs", []):
                for prop, value in item.get("properties", {}).items():
                    out.append((str(item["id"]), prop, value))
        return out

    def rate_limit(self, role: str, *, times: int, policy: str, retry_after: float | None) -> None:
        self.emulator.rate_limit(times=times, policy=policy, retry_after=retry_after, **self._where(role))

    def server_error(self, role: str, *, times: int, status: int = 503) -> None:
        self.emulator.fail(status, times=times, **self._where(role))

    def server_error_echoing(self, role: str, text: str) -> None:
        """A 500 whose error body quotes `text` back (as some gateways echo request headers)."""
        body = {"status": "error", "message": text, "correlationId": "x", "category": "INTERNAL_ERROR"}
        self.emulator.fail(500, times=1, body=body, **self._where(role))

    def remove_option(self, prop: str, value: str) -> None:
        """An admin deletes a picklist option: writes of that value are now refused per record."""
        with self.store.lock:
            definition = self.store.properties["contacts"][prop]
            self._removed = [o for o in definition["options"] if o["value"] == value]
            definition["options"] = [o for o in definition["options"] if o["value"] != value]

    def restore_options(self, prop: str) -> None:
        with self.store.lock:
            self.store.properties["contacts"][prop]["options"] += self._removed

    def on_request(self, role: str, fn: Callable[[], None], *, nth: int, after: bool) -> None:
        """Call `fn` at the `nth` request of `role` (1-based), before it is handled or after."""
        seen = [0]

        def count(_body: Any) -> None:
            seen[0] += 1
            if seen[0] == nth:
                fn()

        hook = self.emulator.after if after else self.emulator.before
        hook(count, times=nth, **self._where(role))

    def requests(self, role: str) -> int:
        prefix, method = self.ROLES[role]
        return sum(1 for r in self.store.requests if r.path.startswith(prefix) and method in (None, r.method))

    def use_token(self, token: str) -> None:
        with self.store.lock:
            self.store.access_token = token
        self.token = token

    def break_transport(self, role: str, kind: str, *, times: int = 1) -> None:
        self.emulator.break_transport(kind, times=times, seconds=3.0, **self._where(role))  # type: ignore[arg-type]

    def revoke_credentials(self, *, at_role: str | None = None) -> None:
        def revoke(_body: Any = None) -> None:
            self.store.access_token = "revoked-" + self.token

        if at_role is None:
            revoke()
        else:
            self.emulator.before(revoke, **self._where(at_role))

    def restore_credentials(self) -> None:
        with self.store.lock:
            self.store.access_token = self.token

    def exhaust_daily_limit(self, role: str) -> None:
        self.emulator.rate_limit(times=1000, policy="DAILY", retry_after=None, **self._where(role))

    def delete_before_write(self, record_id: str, *, merged_into: str | None = None) -> None:
        def delete_when_written(body: Any) -> None:
            if any(str(item.get("id")) == record_id for item in (body or {}).get("inputs", [])):
                self.emulator.delete_contact(record_id, merged_into=merged_into)

        self.emulator.before(delete_when_written, times=1000, **self._where("write"))

    def clear_faults(self) -> None:
        self.emulator.faults.clear()

    def close(self) -> None:
        self.clear_faults()
        self.server.stop()


HARNESSES: dict[str, Callable[[datetime], CrmHarness]] = {"hubspot": HubSpotHarness}


def conflicting_writes(writes: list[tuple[str, str, str]]) -> dict[tuple[str, str], set[str]]:
    """(record, property) pairs written with more than one value: must always be empty."""
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rid, prop, value in writes:
        seen[(rid, prop)].add(value)
    return {k: v for k, v in seen.items() if len(v) > 1}


@dataclass
class Runner:
    """Runs the CLI against one harness and one state database, recording retry waits (`sleeps`)
    and the pacer's waits (`clock.waits`); neither is slept."""

    harness: CrmHarness
    state_url: str
    monkeypatch: pytest.MonkeyPatch
    sleeps: list[float] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    clock: PacerClock = field(default_factory=PacerClock)

    def __post_init__(self) -> None:
        import connector.crm.factory as factory
        from connector import cli

        def policy(settings: Any) -> RetryPolicy:
            return RetryPolicy(
                max_attempts=settings.max_attempts, max_wait=settings.backoff_max, sleep=self.sleeps.append
            )

        self.monkeypatch.setattr(factory, "retry_policy", policy)
        pace_virtually(self.monkeypatch, self.clock)
        self.monkeypatch.setattr(cli.out, "width", 200)  # tables unfolded, so assertions read them
        self.monkeypatch.setenv("CONNECTOR_STATE_URL", self.state_url)
        self.monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(REPO / "mappings"))
        for name, value in {**self.harness.env(), **self.extra_env}.items():
            self.monkeypatch.setenv(name, value)

    def run(self, *args: str) -> int:
        return run_cli(*(args or ("sync",)))

"""In-memory state of one emulated HubSpot portal.

The HTTP app (`hubspot_app.py`) serves and mutates it; `demo_data.py` fills it. Values are kept the
way HubSpot sends them: every property value is a string (or None), datetimes as ISO-8601 UTC with
milliseconds ("2026-11-02T10:00:00.000Z"), ids as strings of digits.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def hs_datetime(moment: datetime) -> str:
    """HubSpot's datetime property format: ISO-8601 UTC with milliseconds and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_hs_datetime(value: str) -> datetime:
    """Inverse of `hs_datetime`; also accepts epoch milliseconds as HubSpot does in filters."""
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class LoggedRequest:
    """One request as the emulator received it, for tests that count calls or check bodies."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int
    response: Any = None


@dataclass
class HubSpotStore:
    """Everything one portal holds. Guard mutations with `lock` (the server is threaded)."""

    # contact id -> properties (always includes hs_object_id, createdate, lastmodifieddate)
    contacts: dict[str, dict[str, str | None]] = field(default_factory=dict)
    # PublicOwner dicts, archived ones included (with "archived": True)
    owners: list[dict[str, Any]] = field(default_factory=list)
    # engagement object type ("emails", "meetings", "calls"...) -> id -> properties
    engagements: dict[str, dict[str, dict[str, str | None]]] = field(default_factory=dict)
    # (from object type, to object type) -> from id -> [to ids]; stored in both directions
    associations: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)
    # ExternalUnifiedEvent dicts: {id, eventType, objectType, objectId, occurredAt, properties}
    events: list[dict[str, Any]] = field(default_factory=list)
    # object type -> property name -> Property definition dict (name, label, type, fieldType, options...)
    properties: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # the token the emulator accepts as "Authorization: Bearer <token>"
    access_token: str = "sandbox-token"
    requests: list[LoggedRequest] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def next_id(self) -> str:
        """A fresh numeric id, unique across all objects of the portal."""
        with self.lock:
            ids = [int(i) for i in self.contacts] + [
                int(i) for objs in self.engagements.values() for i in objs
            ]
            return str(max(ids, default=100) + 1)

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        with self.lock:
            self.associations.setdefault((from_type, to_type), {}).setdefault(from_id, []).append(to_id)
            self.associations.setdefault((to_type, from_type), {}).setdefault(to_id, []).append(from_id)

    def writes(self) -> list[LoggedRequest]:
        """Requests that could change data (batch update, PATCH...), for idempotency assertions."""
        return [r for r in self.requests if r.method in ("PATCH", "PUT", "DELETE")
                or (r.method == "POST" and r.path.endswith(("/batch/update", "/batch/create",
                                                             "/batch/upsert", "/batch/archive")))]

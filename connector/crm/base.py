"""What the engine needs from a CRM adapter, whatever the CRM.

An adapter exposes *feeds*: each is a stream of pages of changed records (with the activities
that came with them) under one cursor scope. The engine processes a page completely — decide,
write, record — and only then persists the page's cursor, so a crash replays at most one page and
the idempotent diff makes the replay harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from connector.model import Crm, CrmRecord, Owner, SourceActivity, WriteIntent, WriteResult


@dataclass(frozen=True)
class Page:
    """Records to evaluate, the activities read with them, and the cursor once they are done."""

    records: list[CrmRecord]
    activities: list[SourceActivity]
    cursor: str | None
    scanned: int | None = None
    """Records the feed went past to build this page (more than `records` when a backfill shard
    keeps only its own); None means `len(records)`. Progress bars count these."""
    total: int | None = None
    """The CRM's count of records the feed's query matched when it started (HubSpot search's
    `total`), for a progress bar's ETA; None where the API gives none."""


@dataclass(frozen=True)
class ApiHealth:
    """How a run stands with a CRM's API limits, for metrics: what an operator alerts on before
    the CRM starts refusing calls. Adapters offer it as `api_health()`; ratios are None where the
    CRM has not told us (no answer yet, or no such limit)."""

    calls: int
    """Requests sent so far by this adapter (retries included)."""
    throttled: int
    """Answers that were 429 / REQUEST_LIMIT_EXCEEDED."""
    window_headroom: float | None = None
    """Share left of the short rolling window (HubSpot: X-HubSpot-RateLimit-Remaining / -Max)."""
    daily_headroom: float | None = None
    """Share left of the daily allocation (HubSpot: Daily-Remaining / Daily; Salesforce:
    Sforce-Limit-Info api-usage, (max - used) / max)."""


@dataclass(frozen=True)
class Feed:
    """One cursor scope (e.g. "hubspot:contacts") and how to read its pages after a cursor value.

    `records` feeds bring changed records to evaluate. `activities` feeds (web events, SF tasks)
    only add to timelines: the engine reads them first and marks their people for evaluation, so
    a backfill never writes a stage computed before all of a person's activity was in.
    """

    scope: str
    pull: Callable[[str | None], Iterator[Page]]
    kind: Literal["records", "activities"] = "records"
    start: str | None = None
    """The cursor to start from when none is stored (a backfill starts at its `--since`)."""


class CrmAdapter(Protocol):
    crm: Crm
    calls: int

    def owners(self) -> list[Owner]: ...

    def feeds(self, until: datetime) -> list[Feed]:
        """Change feeds bounded above by `until`, so a run ends and what changes later waits."""
        ...

    def read(self, record_ids: Sequence[str]) -> list[CrmRecord]:
        """Current records by id (unknown ids are absent), for people marked for evaluation, for
        settling writes a crashed run left unconfirmed, and for retrying parked writes."""
        ...

    def find(self, key: str) -> CrmRecord | None:
        """One record by email or CRM id, for `explain`."""
        ...

    def activities_for(self, records: Sequence[CrmRecord]) -> list[SourceActivity]:
        """Activities read alongside records (engagements, date properties), for `explain`."""
        ...

    def apply(self, intents: Sequence[WriteIntent]) -> list[WriteResult]: ...


def chunked(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])

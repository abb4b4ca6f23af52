"""Where a HubSpot feed stands, as the opaque cursor string the engine stores after each page.

A cursor must say exactly what is done, so that a rerun after a crash or a spent daily budget
neither misses a record nor reads one twice, and an idle run costs one call:

* contacts (search sorted by `lastmodifieddate`): everything modified before `ts` is done, plus,
  at `ts` itself, the ids in `ids` — the records sharing the boundary timestamp that were already
  delivered. While one instant holds more records than a page (a bulk import), that instant is
  read keyed by `hs_object_id` and `after_id` says how far: every id <= `after_id` at `ts` is done.
* events (one feed per event type, oldest first): the same `ts` + `ids`, ids being event ids.

Old cursors (a bare epoch-ms number for contacts, an ISO datetime for events) still read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connector.errors import ConfigError

MAX_CURSOR_IDS = 1_000
"""More ids than this at one boundary timestamp are not stored: a rerun then re-reads the records
at that instant once (harmless: the diff writes nothing twice) instead of keeping a huge cursor."""


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_epoch_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


@dataclass(frozen=True)
class Position:
    """`ts` epoch ms (None: from the beginning), `ids` done at `ts`, `after_id` for id-keyed reads."""

    ts: int | None = None
    ids: frozenset[str] = field(default_factory=frozenset)
    after_id: int | None = None

    def encode(self) -> str | None:
        if self.ts is None:
            return None
        ids = sorted(self.ids, key=_id_order) if len(self.ids) <= MAX_CURSOR_IDS else []
        if not ids and self.after_id is None:
            return str(self.ts)
        data: dict[str, Any] = {"ts": self.ts}
        if ids:
            data["ids"] = ids
        if self.after_id is not None:
            data["after_id"] = self.after_id
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str | None, scope: str = "") -> Position:
        """Read a stored cursor; an unreadable one is a config error naming the scope and the fix."""
        if raw is None or not raw.strip():
            return cls()
        text = raw.strip()
        try:
            if text.lstrip("-").isdigit():
                return cls(ts=int(text))
            if not text.startswith("{"):
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
                return cls(ts=epoch_ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC)))
            data = json.loads(text)
            after_id = data.get("after_id")
            return cls(
                ts=int(data["ts"]),
                ids=frozenset(str(i) for i in data.get("ids") or ()),
                after_id=int(after_id) if after_id is not None else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(
                f"the stored cursor {scope or ''} is unreadable ({text[:60]!r}); delete it from the state "
                "database's cursors table to re-read that feed from the beginning"
            ) from None

    def advanced(self, stamps: list[tuple[str, int]]) -> Position:
        """The position after delivering records given as (id, ts ms), oldest first."""
        if not stamps:
            return self
        last = stamps[-1][1]
        at_last = {rid for rid, ts in stamps if ts == last}
        if self.ts == last:
            at_last |= self.ids
        return Position(ts=last, ids=frozenset(at_last))

    def done(self, record_id: str, ts: int) -> bool:
        """Whether a record seen again (at `ts`) was already delivered under this position."""
        if self.ts is None:
            return False
        if ts != self.ts:
            return ts < self.ts
        if self.after_id is not None and record_id.isdigit() and int(record_id) <= self.after_id:
            return True
        return record_id in self.ids


def _id_order(value: str) -> tuple[int, str]:
    return (0, value.zfill(20)) if value.isdigit() else (1, value)

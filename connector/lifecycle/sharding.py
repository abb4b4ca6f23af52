"""Which backfill shard decides a CRM record: a stable hash of the person it most likely is.

A sharded backfill runs N processes over the same [since, until) range. Each reads every record
of the range (a search page is cheap: one call per 200 records) but hydrates, decides and writes
only the records whose shard key hashes to its own index. The key must put all records of one
person in the same shard *before* anything is resolved in the state database, because two shards
resolving the same person at once could create it twice. So it is derived from the record alone:

* the email match key (`identity.match_key`) — what joins records across CRMs in most cases;
* else, for a record that names its counterpart in another CRM (HubSpot's `salesforceleadid`), the
  smallest such link, so the record and its counterpart (keyed by its own id) land together;
* else the record's own `crm:object:id`.

People joined only by a link whose two sides both carry (different) emails can be split across
shards; the diff keeps the second decision harmless (it writes only what still differs).

Why hash rather than time slices: slices of `lastmodifieddate` read each record once (cheaper in
search calls), but a person's HubSpot contact and Salesforce lead fall in different slices, so two
shards would decide one person, and bulk imports put most records in one slice. Hashing costs one
extra search call per 200 records per shard and nothing else (hydration, the expensive part, runs
only for the shard's own records).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connector.lifecycle.identity import match_key

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0-based), as given by `--shard I/N`."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 <= I < N and N >= 1")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`"2/4"` -> Shard(2, 4); ValueError with the expected form otherwise."""
        head, sep, tail = text.strip().partition("/")
        expected = f"--shard {text!r}: expected I/N with 0 <= I < N, e.g. 0/4 to 3/4 for four processes"
        if not sep or not head.strip().isdigit() or not tail.strip().isdigit():
            raise ValueError(expected)
        index, count = int(head), int(tail)
        if count < 1 or index >= count:
            raise ValueError(expected)
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, key: str) -> bool:
        return self.count == 1 or shard_of(key, self.count) == self.index


def fnv1a(text: str) -> int:
    """64-bit FNV-1a of the UTF-8 text: stable across processes and Python versions (unlike
    `hash()`, which is salted per process)."""
    value = _FNV_OFFSET
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return value


def shard_of(key: str, count: int) -> int:
    return fnv1a(key) % count


def shard_key(
    crm: str,
    object_type: str,
    record_id: str,
    email: str | None,
    links: Sequence[tuple[str, str, str]] = (),
    *,
    fold_plus_tags: bool = False,
) -> str:
    """The key a record is sharded by (see the module docstring)."""
    key = match_key(email, fold_plus_tags=fold_plus_tags)
    if key:
        return "email:" + key
    if links:
        return "record:" + ":".join(min(links))
    return f"record:{crm}:{object_type}:{record_id}"

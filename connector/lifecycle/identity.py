"""Email normalisation: the key that resolves one person across HubSpot and Salesforce.

Both CRMs store whatever a form or an import typed in, so the same person shows up as
" Ana@Example.com" in one and "ana@example.com\u200b" in the other. Matching on a normalised email
is what keeps one timeline per person; rejecting malformed values (None) keeps unrelated records
from being merged on garbage such as "n/a" or "".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Characters that are invisible but not `str.isspace()`: they arrive via copy-paste from web pages
# and spreadsheets and would otherwise make two equal addresses differ.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
MAX_EMAIL_LENGTH = 254
"""The longest address SMTP can carry (RFC 5321 path limit); anything longer is not an address."""


def normalize_email(raw: str | None) -> str | None:
    """Return the comparable form of an address, or None when it cannot be an address.

    Strips surrounding whitespace (unicode included) and invisible characters, then casefolds. A
    value is rejected unless it has exactly one "@" with a non-empty local part and domain and no
    whitespace or control characters inside, and no more than 254 characters — a merge key must
    never be a guess.
    """
    if raw is None:
        return None
    text = raw.strip().strip(_INVISIBLE).strip().casefold()
    if not text or len(text) > MAX_EMAIL_LENGTH or text.count("@") != 1:
        return None
    # Every whitespace character but the space is unprintable to Python (categories Z* and C*), so
    # this is "no whitespace or control character", tested in C rather than per character.
    if " " in text or not text.isprintable():
        return None
    local, domain = text.split("@")
    if not local or not domain:
        return None
    return text


_ID_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id_18(raw: str | None) -> str | None:
    """The 18-character, case-insensitive form of a Salesforce record id, or None if it is not one.

    Salesforce's own APIs answer 18-character ids, but people and older integrations paste the
    15-character form (what the Salesforce UI shows in URLs) into HubSpot's link properties. The two
    differ only by a checksum suffix that encodes which of the 15 characters are upper case, so a
    link written either way must resolve to the same record; anything else (spaces, "n/a", wrong
    length) is no id and links nothing.
    """
    text = (raw or "").strip()
    if len(text) not in (15, 18) or not text.isascii() or not text.isalnum():
        return None
    base = text[:15]
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, char in enumerate(base[chunk * 5 : chunk * 5 + 5]) if "A" <= char <= "Z")
        suffix += _ID_SUFFIX_ALPHABET[bits]
    if len(text) == 18 and text[15:].upper() != suffix:
        return None
    return base + suffix


def email_domain(email: str | None) -> str:
    """The domain of a (possibly unnormalised) address, "" when there is none.

    Criteria compare it with lists (free mail, competitors), so it is casefolded like the address.
    """
    normalized = normalize_email(email)
    if normalized is None:
        return ""
    return normalized.split("@", 1)[1]


def match_key(raw: str | None, *, fold_plus_tags: bool = False) -> str | None:
    """The key two CRM records must share to be one person: the normalised email, optionally with
    a `+tag` folded away ("ana+webinar@x.com" -> "ana@x.com").

    Folding is off by default: at some companies `+` addresses are distinct people's aliases, and
    merging two people is much harder to undo than missing a merge.
    """
    email = normalize_email(raw)
    if email is None or not fold_plus_tags:
        return email
    local, domain = email.split("@")
    base = local.split("+", 1)[0]
    return f"{base}@{domain}" if base else email


RecordKey = tuple[str, str, str]
"""(crm, object_type, record_id): one CRM record."""


@dataclass(frozen=True)
class Candidate:
    """What resolution knows about a record: its key, its match key and its declared links."""

    record: RecordKey
    email_key: str | None
    links: tuple[RecordKey, ...] = ()


def group_records(candidates: Sequence[Candidate]) -> list[list[RecordKey]]:
    """Records that are one person: linked to each other, directly or through a shared email key.

    Union-find over links and equal email keys; groups in first-seen order, records in input order.
    The state store applies the same rule incrementally; this pure form states it and is what the
    property tests check (symmetric, transitive, never merges unlinked different emails).
    """
    parent: dict[RecordKey, RecordKey] = {}

    def find(item: RecordKey) -> RecordKey:
        parent.setdefault(item, item)
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(a: RecordKey, b: RecordKey) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra

    by_email: dict[str, RecordKey] = {}
    for candidate in candidates:
        find(candidate.record)
        for link in candidate.links:
            union(candidate.record, link)
        if candidate.email_key is not None:
            first = by_email.setdefault(candidate.email_key, candidate.record)
            union(first, candidate.record)
    groups: dict[RecordKey, list[RecordKey]] = {}
    for candidate in candidates:
        groups.setdefault(find(candidate.record), []).append(candidate.record)
    return list(groups.values())

"""Salesforce adapter over `simple-salesforce`.

What it owns: SOQL built only with `format_soql` (values bound and escaped; identifiers only from
the validated mapping), incremental pulls sorted by `SystemModstamp` with an `Id` tie-break (so
the cursor may advance page by page and a replay repeats at most one page), `nextRecordsUrl`
paging that refuses to loop, IN lists chunked to keep URLs far below the 16,384-byte cap, writes
through sObject Collections (200 records a call, `allOrNone=false`, per-record results), the daily
API share, and translating simple-salesforce's exceptions into `connector.errors` by `errorCode`,
never by class — redacted, since their `str()` carries URLs with queries in them.

API calls for one incremental pass (documented in the README, asserted in the tests):
`limits` 1 + owners 2 (User, Group queues) + campaigns 1 (only when campaign members are mapped)
+ per object pulled (Lead, Contact, Task, Event, CampaignMember) ceil(changed / 2,000) pages, at
least 1 + reads of records that activities point at, ceil(ids / 200) + writes ceil(changed / 200).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError
from simple_salesforce.format import format_soql

from connector.crm.base import ApiHealth, Feed, Page
from connector.crm.retry import RetryPolicy
from connector.errors import (
    ApiShareReached,
    AuthError,
    ConfigError,
    ConnectorError,
    DailyLimitExhausted,
    FatalError,
    TransientError,
)
from connector.lifecycle.handoff import TaskSpec
from connector.mapping.schema import SalesforceMapping, SfObjectMapping, SfTaskSource
from connector.model import (
    Crm,
    CrmRecord,
    FieldValue,
    Owner,
    SourceActivity,
    TaskResult,
    WriteIntent,
    WriteResult,
)
from connector.observability import redact

log = logging.getLogger("connector.salesforce")
T = TypeVar("T")

COLLECTION_LIMIT = 200  # sObject Collections: records per call
IN_CHUNK = 200  # ids per IN (...) list: ~21 bytes each quoted, ~4 KB of URL, far below 16,384
PAGE_SIZE = 2000  # query page size Salesforce uses by default (the maximum)
PREFIX_OBJECT = {"00Q": "Lead", "003": "Contact"}
ACTIVITY_OBJECTS = ("Task", "Event", "CampaignMember")
_TRANSIENT_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT", "REQUEST_RUNNING_TOO_LONG"}
)


# --------------------------------------------------------------------------- values


def parse_sf_time(value: Any) -> datetime | None:
    """A REST date-time (`2026-01-31T10:00:00.000+0000`) or date as aware UTC; None if unreadable."""
    if not value or not isinstance(value, str):
        return None
    text = value.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(12, 0), tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def coerce(value: Any, kind: str) -> FieldValue:
    """A JSON value from Salesforce read as the type the mapping declares; bad values become None."""
    if value is None or value == "":
        return None
    if kind == "number":
        if isinstance(value, bool):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return int(number) if number.is_integer() else number
    if kind == "bool":
        return value if isinstance(value, bool) else str(value).strip().lower() == "true"
    return value if isinstance(value, str) else str(value)


def as_text(value: Any) -> str | None:
    """An owned field's current value as the diff compares it (text, None when empty)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, order=True)
class SfCursor:
    """Position in a stream sorted by (SystemModstamp, Id): the last record a committed page held."""

    modstamp: datetime
    record_id: str

    def encode(self) -> str:
        return f"{self.modstamp.isoformat()}|{self.record_id}"

    @classmethod
    def decode(cls, text: str | None) -> SfCursor | None:
        if not text or "|" not in text:
            return None
        stamp, _, record_id = text.partition("|")
        return cls(datetime.fromisoformat(stamp).astimezone(UTC), record_id)


@dataclass(frozen=True)
class RecordPage:
    records: list[CrmRecord]
    cursor: SfCursor | None


@dataclass(frozen=True)
class ActivityPage:
    activities: list[SourceActivity]
    cursor: SfCursor | None


# --------------------------------------------------------------------------- error translation


def _error_code(exc: SalesforceError) -> tuple[str, str]:
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode") or ""), str(content[0].get("message") or "")
    return "", ""


def translate(exc: BaseException, action: str) -> ConnectorError:
    """Map a simple-salesforce or requests exception to the class that says what to do next.

    Decided on `errorCode` (api-facts §7.5): the same class can be retryable or final by code.
    """
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, SalesforceAuthenticationFailed):
        return AuthError(
            f"Salesforce login failed while {action} ({getattr(exc, 'code', '')}): check the "
            "CONNECTOR_SALESFORCE_* credentials and that the connected app is approved for the user",
            detail=redact(str(getattr(exc, "message", ""))),
        )
    if isinstance(exc, SalesforceError):
        status = int(getattr(exc, "status", 0) or 0)
        code, message = _error_code(exc)
        detail = f"HTTP {status} {code}: {redact(message)}"
        if code == "INVALID_SESSION_ID" or status == 401:
            return AuthError(
                f"Salesforce rejected the session while {action} (INVALID_SESSION_ID): the session "
                "expired or was revoked; check CONNECTOR_SALESFORCE_AUTH and its credentials",
                detail=detail,
            )
        if code == "REQUEST_LIMIT_EXCEEDED":
            return DailyLimitExhausted(
                f"Salesforce's daily API limit is used up ({action}); the run stops and resumes later",
                detail=detail,
            )
        if status == 403:
            return AuthError(
                f"Salesforce refused {action} (403 {code}): the integration user lacks a permission "
                "(API Enabled, read/edit on Lead and Contact)",
                detail=detail,
            )
        if code in _TRANSIENT_CODES or status >= 500:
            return TransientError(
                f"Salesforce had a temporary error ({code or status}) while {action}", detail=detail
            )
        if code in ("INVALID_FIELD", "INVALID_TYPE", "INVALID_FIELD_FOR_INSERT_UPDATE"):
            first_line = next((line for line in reversed(message.splitlines()) if line.strip()), message)
            return ConfigError(
                f"Salesforce does not know a field or object in salesforce.yaml ({action}): "
                f"{redact(first_line)}; run `connector validate --online`",
                detail=detail,
            )
        return FatalError(f"Salesforce answered {status} {code} while {action}", detail=detail)
    if isinstance(exc, requests.exceptions.SSLError):
        return ConfigError(
            f"TLS to Salesforce failed while {action}: check the instance URL and "
            "CONNECTOR_SALESFORCE_CA_BUNDLE",
            detail=redact(str(exc)),
        )
    if isinstance(exc, requests.exceptions.RequestException | TimeoutError | ConnectionError):
        return TransientError(
            f"Salesforce did not answer while {action} ({type(exc).__name__}); will retry",
            detail=redact(str(exc)),
        )
    return FatalError(f"unexpected error while {action}: {type(exc).__name__}", detail=redact(str(exc)))


# --------------------------------------------------------------------------- API share


class ApiBudget:
    """The share of the org's remaining daily API requests one run may use.

    `start` reads `DailyApiRequests` from `limits`: of R remaining, the run may use floor(share*R)
    and must leave the rest. Every answer's `Sforce-Limit-Info: api-usage=used/max` header updates
    what is really left (other integrations spend from the same allocation), so the run stops as
    soon as one more call would dig into the reserve — before Salesforce would say
    REQUEST_LIMIT_EXCEEDED, and without touching what other tools need.
    """

    def __init__(self, share: float) -> None:
        self.share = share
        self.reserve: int | None = None
        self.remaining: int | None = None
        self.allowed = 0
        self.used = 0
        self.total: int | None = None
        """The org's daily allocation, from the last `Sforce-Limit-Info` (or `limits`)."""

    def start(self, remaining: int, *, spent: int = 0) -> None:
        """`remaining` now, after `spent` calls this run already made (the `limits` call itself)."""
        at_start = remaining + spent
        self.allowed = math.floor(self.share * at_start)
        self.reserve = at_start - self.allowed
        self.remaining = remaining
        self.used = spent

    def before_call(self, action: str) -> None:
        if self.reserve is None or self.remaining is None:
            return
        if self.remaining - 1 < self.reserve:
            raise ApiShareReached(
                f"Salesforce API share reached before {action}: this run used {self.used} of the "
                f"{self.allowed} requests it may use (CONNECTOR_SALESFORCE_API_SHARE={self.share:g} of "
                f"{self.reserve + self.allowed} remaining today); progress is saved and the next run resumes"
            )

    def after_call(self, usage: Mapping[str, Any]) -> None:
        self.used += 1
        reported = usage.get("api-usage")
        if reported is not None and getattr(reported, "total", None):
            self.total = int(reported.total)
            self.remaining = int(reported.total) - int(reported.used)
        elif self.remaining is not None:
            self.remaining -= 1


# --------------------------------------------------------------------------- adapter


class SalesforceAdapter:
    """Reads leads, contacts, activities and owners; writes owned fields. Knows nothing of criteria."""

    crm: Crm = "salesforce"

    def __init__(
        self,
        client: Salesforce,
        mapping: SalesforceMapping,
        retry: RetryPolicy,
        timeout: float,
        *,
        relogin: Callable[[], Salesforce] | None = None,
        api_share: float = 1.0,
    ) -> None:
        self.client = client
        self.mapping = mapping
        self.retry = retry
        self.timeout = timeout
        self.calls = 0
        self.throttled = 0
        """REQUEST_LIMIT_EXCEEDED answers, for metrics."""
        self.budget = ApiBudget(api_share)
        self._relogin = relogin
        self._campaigns: dict[str, tuple[str, str]] | None = None

    # ------------------------------------------------------------------ plumbing

    def _call(self, action: str, fn: Callable[[Salesforce], T], *, retry: RetryPolicy | None = None) -> T:
        def attempt() -> T:
            self.budget.before_call(action)
            self.calls += 1
            try:
                result = fn(self.client)
            except SalesforceError as exc:
                self.budget.after_call({})
                error = translate(exc, action)
                code, _ = _error_code(exc)
                if code == "REQUEST_LIMIT_EXCEEDED":
                    self.throttled += 1
                if code == "INVALID_SESSION_ID" and self._relogin is not None:
                    log.info("Salesforce session expired; logging in again", extra={"event": "crm.relogin"})
                    self.client = self._relogin()
                    raise TransientError("Salesforce session expired; logged in again") from None
                raise error from None
            except Exception as exc:  # noqa: BLE001 - requests and SDK errors are translated here
                raise translate(exc, action) from None
            self.budget.after_call(getattr(self.client, "api_usage", {}) or {})
            return result

        return (retry or self.retry).call(attempt)

    def api_health(self) -> ApiHealth:
        budget = self.budget
        daily = (
            max(0, budget.remaining) / budget.total if budget.total and budget.remaining is not None else None
        )
        return ApiHealth(self.calls, self.throttled, daily_headroom=daily)

    def begin(self) -> None:
        """Start a run: read the org's remaining daily API requests (one call) to size the share."""
        self._campaigns = None  # campaigns are re-read once per run
        limits = self._call("reading API limits", lambda sf: sf.limits(timeout=self.timeout))
        daily = (limits or {}).get("DailyApiRequests") or {}
        remaining = daily.get("Remaining")
        if isinstance(daily.get("Max"), int) and daily["Max"] > 0:
            self.budget.total = daily["Max"]
        if isinstance(remaining, int):
            self.budget.start(remaining, spent=1)  # the limits call itself was counted

    def query_pages(self, soql: str, action: str) -> Iterator[list[dict[str, Any]]]:
        """Every page of a query, following `nextRecordsUrl`; refuses to loop on a repeated locator."""
        page = self._call(action, lambda sf: sf.query(soql, timeout=self.timeout))
        seen: set[str] = set()
        while True:
            yield [dict(r) for r in page.get("records") or []]
            nxt = page.get("nextRecordsUrl")
            if page.get("done", True) or not nxt:
                return
            if nxt in seen:
                raise FatalError(f"Salesforce returned the same nextRecordsUrl twice while {action}")
            seen.add(nxt)
            page = self._call(action, functools.partial(self._query_more, nxt))

    def _query_more(self, url: str, sf: Salesforce) -> dict[str, Any]:
        page: dict[str, Any] = sf.query_more(url, identifier_is_url=True, timeout=self.timeout)
        return page

    def _object(self, name: str) -> SfObjectMapping:
        return self.mapping.objects[name]  # type: ignore[index]

    def objects(self) -> list[str]:
        return [name for name in ("Lead", "Contact") if name in self.mapping.objects]

    # ------------------------------------------------------------------ records

    def owned_fields(self, object_name: str) -> list[str]:
        obj = self._object(object_name)
        names = [obj.stage.field]
        if obj.lead_status is not None:
            names.append(obj.lead_status.field)
        if obj.owner is not None:
            names.append(obj.owner.field)
        names += [n for n in (obj.mql_date, obj.mql_reason) if n]
        return list(dict.fromkeys(names))

    def read_fields(self, object_name: str) -> list[str]:
        """Every field the mapping needs on this object, nothing more (data minimisation)."""
        obj = self._object(object_name)
        names = [
            "Id",
            "Email",
            "SystemModstamp",
            *(s.field for s in obj.fields.values()),
            *self.owned_fields(object_name),
        ]
        if object_name == "Lead":
            names += ["IsConverted", "ConvertedContactId"]
        return list(dict.fromkeys(names))

    def _record(self, object_name: str, row: Mapping[str, Any]) -> CrmRecord:
        obj = self._object(object_name)
        return CrmRecord(
            crm="salesforce",
            object_type=object_name,
            record_id=str(row["Id"]),
            email=row.get("Email"),
            fields={name: coerce(row.get(spec.field), spec.type) for name, spec in obj.fields.items()},
            owned={name: as_text(row.get(name)) for name in self.owned_fields(object_name)},
            modified_at=parse_sf_time(row.get("SystemModstamp")),
            source_values={"ConvertedContactId": row.get("ConvertedContactId")}
            if object_name == "Lead"
            else {},
        )

    def _incremental(
        self,
        sobject: str,
        fields: Sequence[str],
        where: str,
        cursor: SfCursor | None,
        until: datetime | None = None,
    ) -> str:
        """SOQL for rows after `cursor` (and up to `until`) in (SystemModstamp, Id) order."""
        parts = [where] if where else []
        if until is not None:
            parts.append(format_soql("SystemModstamp <= {}", until))
        if cursor is not None:
            parts.append(
                format_soql(
                    "(SystemModstamp > {stamp} OR (SystemModstamp = {stamp} AND Id > {rid}))",
                    stamp=cursor.modstamp,
                    rid=cursor.record_id,
                )
            )
        clause = f" WHERE {' AND '.join(parts)}" if parts else ""
        return format_soql(
            "SELECT {:literal} FROM {:literal}{:literal} ORDER BY SystemModstamp, Id",
            ", ".join(fields),
            sobject,
            clause,
        )

    def pull(
        self, object_name: str, cursor: SfCursor | None, *, until: datetime | None = None
    ) -> Iterator[RecordPage]:
        """Lead (not converted) or Contact rows changed after `cursor`, oldest first, one page at a time."""
        where = "IsConverted = false" if object_name == "Lead" else ""
        soql = self._incremental(object_name, self.read_fields(object_name), where, cursor, until)
        position = cursor
        for rows in self.query_pages(soql, f"reading changed {object_name}s"):
            records = [self._record(object_name, row) for row in rows]
            if rows:
                last = rows[-1]
                stamp = parse_sf_time(last.get("SystemModstamp"))
                position = SfCursor(stamp, str(last["Id"])) if stamp else position
            yield RecordPage(records, position)

    def read_object(self, object_name: str, ids: Sequence[str]) -> list[CrmRecord]:
        """Records by id (converted leads included), IN lists of at most IN_CHUNK ids per query."""
        out: list[CrmRecord] = []
        for chunk in _chunks(sorted(set(ids)), IN_CHUNK):
            soql = format_soql(
                "SELECT {:literal} FROM {:literal} WHERE Id IN {ids}",
                ", ".join(self.read_fields(object_name)),
                object_name,
                ids=chunk,
            )
            for rows in self.query_pages(soql, f"reading {object_name}s by id"):
                out.extend(self._record(object_name, row) for row in rows)
        return out

    def find_by_email(self, email: str) -> list[CrmRecord]:
        """Leads (not converted) and contacts with this email (Salesforce compares it case-insensitively)."""
        out: list[CrmRecord] = []
        for name in self.objects():
            where = "IsConverted = false AND " if name == "Lead" else ""
            soql = format_soql(
                "SELECT {:literal} FROM {:literal} WHERE {:literal}Email = {email} ORDER BY Id",
                ", ".join(self.read_fields(name)),
                name,
                where,
                email=email.strip(),
            )
            for rows in self.query_pages(soql, f"finding {name}s by email"):
                out.extend(self._record(name, row) for row in rows)
        return out

    # ------------------------------------------------------------------ owners

    def owners(self) -> list[Owner]:
        """Users (active and inactive, with the flag) and queues (Group rows of Type 'Queue').

        The engine asks for owners first in every run, so this is where a run's API budget starts.
        """
        self.begin()
        out: list[Owner] = []
        for rows in self.query_pages(
            "SELECT Id, Name, Email, IsActive FROM User ORDER BY Id", "listing users"
        ):
            out.extend(
                Owner(
                    "salesforce",
                    str(r["Id"]),
                    r.get("Email"),
                    str(r.get("Name") or r["Id"]),
                    bool(r.get("IsActive")),
                )
                for r in rows
            )
        soql = format_soql("SELECT Id, Name, Email FROM Group WHERE Type = {} ORDER BY Id", "Queue")
        for rows in self.query_pages(soql, "listing queues"):
            out.extend(
                Owner(
                    "salesforce",
                    str(r["Id"]),
                    r.get("Email"),
                    str(r.get("Name") or r["Id"]),
                    True,
                    is_queue=True,
                )
                for r in rows
            )
        return out

    # ------------------------------------------------------------------ activities

    def activity_objects(self) -> list[str]:
        acts = self.mapping.activities
        present = {"Task": acts.tasks, "Event": acts.events, "CampaignMember": acts.campaign_members}
        return [name for name in ACTIVITY_OBJECTS if present[name]]

    def activities(
        self, sobject: str, cursor: SfCursor | None, *, until: datetime | None = None
    ) -> Iterator[ActivityPage]:
        """Tasks, Events or responded CampaignMembers changed after `cursor`, as activities, page by page."""
        fields, where, convert = self._activity_query(sobject)
        soql = self._incremental(sobject, fields, where, cursor, until)
        position = cursor
        for rows in self.query_pages(soql, f"reading changed {sobject}s"):
            found = [a for a in (convert(row) for row in rows) if a is not None]
            if rows:
                stamp = parse_sf_time(rows[-1].get("SystemModstamp"))
                position = SfCursor(stamp, str(rows[-1]["Id"])) if stamp else position
            yield ActivityPage(found, position)

    def _activity_query(
        self, sobject: str
    ) -> tuple[list[str], str, Callable[[Mapping[str, Any]], SourceActivity | None]]:
        """Fields, fixed filter and row converter for one activity object."""
        if sobject == "CampaignMember":
            fields = [
                "Id",
                "CampaignId",
                "LeadId",
                "ContactId",
                "HasResponded",
                "FirstRespondedDate",
                "CreatedDate",
                "SystemModstamp",
            ]
            where = "HasResponded = true"
            convert: Callable[[Mapping[str, Any]], SourceActivity | None] = self._campaign_activity
            self.campaigns()
        else:
            sources = self.mapping.activities.tasks if sobject == "Task" else self.mapping.activities.events
            when = "CompletedDateTime" if sobject == "Task" else "StartDateTime"
            fields = ["Id", "WhoId", "Subject", when, "CreatedDate", "SystemModstamp"]
            fields += sorted({key for source in sources for key in source.where})
            where = "WhoId != null"

            def convert(
                row: Mapping[str, Any], s: Sequence[SfTaskSource] = sources, w: str = when
            ) -> SourceActivity | None:
                return self._task_activity(sobject, row, s, w)

        return list(dict.fromkeys(fields)), where, convert

    def _task_activity(
        self, sobject: str, row: Mapping[str, Any], sources: Sequence[SfTaskSource], when: str
    ) -> SourceActivity | None:
        who = str(row.get("WhoId") or "")
        object_type = PREFIX_OBJECT.get(who[:3])
        if object_type is None:
            return None
        source = next(
            (s for s in sources if all(str(row.get(k) or "") == v for k, v in s.where.items())), None
        )
        occurred = parse_sf_time(row.get(when)) or parse_sf_time(row.get("CreatedDate"))
        if source is None or occurred is None:
            return None
        return SourceActivity(
            crm="salesforce",
            object_type=object_type,
            record_id=who,
            type=source.type,
            occurred_at=occurred,
            source=f"salesforce:{sobject}",
            source_id=str(row["Id"]),
            name=row.get("Subject"),
        )

    def campaigns(self) -> dict[str, tuple[str, str]]:
        """Campaign id -> (name, type), read once per adapter (one query page for most orgs)."""
        if self._campaigns is None:
            found: dict[str, tuple[str, str]] = {}
            for rows in self.query_pages(
                "SELECT Id, Name, Type FROM Campaign ORDER BY Id", "listing campaigns"
            ):
                for r in rows:
                    found[str(r["Id"])] = (str(r.get("Name") or ""), str(r.get("Type") or ""))
            self._campaigns = found
        return self._campaigns

    def _campaign_activity(self, row: Mapping[str, Any]) -> SourceActivity | None:
        who = str(row.get("ContactId") or row.get("LeadId") or "")
        object_type = PREFIX_OBJECT.get(who[:3])
        name, kind = self.campaigns().get(str(row.get("CampaignId")), ("", ""))
        source = next(
            (
                s
                for s in self.mapping.activities.campaign_members
                if not s.campaign_types or kind in s.campaign_types
            ),
            None,
        )
        occurred = parse_sf_time(row.get("FirstRespondedDate")) or parse_sf_time(row.get("CreatedDate"))
        if object_type is None or source is None or occurred is None:
            return None
        return SourceActivity(
            crm="salesforce",
            object_type=object_type,
            record_id=who,
            type=source.type,
            occurred_at=occurred,
            source="salesforce:CampaignMember",
            source_id=str(row["Id"]),
            name=name or None,
        )

    # ------------------------------------------------------------------ feeds (what the engine pulls)

    def feeds(self, until: datetime) -> list[Feed]:
        """Changed leads and contacts, then one feed per mapped activity object, each to `until`.

        Rows changed after `until` (including the connector's own writes in this run) wait for the
        next run.
        """
        out = [
            Feed(scope=f"salesforce:{name}", pull=functools.partial(self._record_feed, name, until=until))
            for name in self.objects()
        ]
        out += [
            Feed(
                scope=f"salesforce:{name}",
                pull=functools.partial(self._activity_feed, name, until=until),
                kind="activities",
            )
            for name in self.activity_objects()
        ]
        return out

    def backfill_feeds(
        self, since: datetime, until: datetime, keep: Callable[[CrmRecord], bool] | None = None
    ) -> list[Feed]:
        """The same feeds over [since, until], for `connector backfill`.

        Each starts at `since` (a cursor before the first row stamped then) instead of the stored
        cursor. `keep` picks a shard's records: every page is read (the shard's cursor moves over
        all of it), but only kept leads and contacts, and activities of kept ones, reach the engine.
        """
        start = SfCursor(since.astimezone(UTC), "").encode()
        out = [
            Feed(
                scope=f"salesforce:{name}",
                pull=functools.partial(self._record_feed, name, until=until, keep=keep),
                start=start,
            )
            for name in self.objects()
        ]
        out += [
            Feed(
                scope=f"salesforce:{name}",
                pull=functools.partial(self._activity_feed, name, until=until, keep=keep),
                kind="activities",
                start=start,
            )
            for name in self.activity_objects()
        ]
        return out

    def _record_feed(
        self,
        object_name: str,
        cursor: str | None,
        until: datetime,
        keep: Callable[[CrmRecord], bool] | None = None,
    ) -> Iterator[Page]:
        for page in self.pull(object_name, SfCursor.decode(cursor), until=until):
            if page.records:
                kept = [r for r in page.records if keep is None or keep(r)]
                yield Page(
                    kept, [], page.cursor.encode() if page.cursor else cursor, scanned=len(page.records)
                )

    def _activity_feed(
        self,
        sobject: str,
        cursor: str | None,
        until: datetime,
        keep: Callable[[CrmRecord], bool] | None = None,
    ) -> Iterator[Page]:
        for page in self.activities(sobject, SfCursor.decode(cursor), until=until):
            encoded = page.cursor.encode() if page.cursor else cursor
            if not page.activities:
                yield Page([], [], encoded)
                continue
            records, activities = self.records_for(page.activities)
            if keep is not None:
                records = [r for r in records if keep(r)]
                ids = {(r.object_type, r.record_id) for r in records}
                activities = [a for a in activities if (a.object_type, a.record_id) in ids]
            yield Page(records, activities, encoded)

    def records_for(
        self, activities: Sequence[SourceActivity]
    ) -> tuple[list[CrmRecord], list[SourceActivity]]:
        """The leads and contacts activities point at; a converted lead's activities move to its contact."""
        by_object: dict[str, set[str]] = {}
        for activity in activities:
            by_object.setdefault(activity.object_type, set()).add(activity.record_id)
        records = {
            r.record_id: r
            for name in self.objects()
            for r in self.read_object(name, sorted(by_object.get(name, ())))
        }
        moved: dict[str, str] = {}
        for record in list(records.values()):
            contact_id = record.source_values.get("ConvertedContactId")
            if record.object_type == "Lead" and contact_id:
                moved[record.record_id] = str(contact_id)
                del records[record.record_id]
        missing = sorted(set(moved.values()) - set(records))
        if missing and "Contact" in self.mapping.objects:
            records.update({r.record_id: r for r in self.read_object("Contact", missing)})
        out = []
        for activity in activities:
            target = moved.get(activity.record_id)
            if target is not None:
                activity = dataclasses.replace(activity, object_type="Contact", record_id=target)
            if activity.record_id in records:
                out.append(activity)
        return list(records.values()), out

    def read(self, record_ids: Sequence[str]) -> list[CrmRecord]:
        """Current leads and contacts by id (the object from the id's key prefix). A lead converted
        since is absent: its person lives on in the contact it became."""
        by_object: dict[str, list[str]] = {}
        for record_id in record_ids:
            object_type = PREFIX_OBJECT.get(record_id[:3])
            if object_type is not None and object_type in self.mapping.objects:
                by_object.setdefault(object_type, []).append(record_id)
        records = [r for name, ids in sorted(by_object.items()) for r in self.read_object(name, ids)]
        return [r for r in records if not r.source_values.get("ConvertedContactId")]

    def find(self, key: str) -> CrmRecord | None:
        key = key.strip()
        if "@" in key:
            found = self.find_by_email(key)
        elif key[:3] in PREFIX_OBJECT and PREFIX_OBJECT[key[:3]] in self.mapping.objects:
            found = self.read([key])
        else:
            return None
        return found[0] if found else None

    def activities_for(self, records: Sequence[CrmRecord]) -> list[SourceActivity]:
        """Every mapped activity of these records (for `explain`), by WhoId / LeadId / ContactId."""
        ids = sorted({r.record_id for r in records})
        out: list[SourceActivity] = []
        for sobject in self.activity_objects():
            fields, where, convert = self._activity_query(sobject)
            keys = ("LeadId", "ContactId") if sobject == "CampaignMember" else ("WhoId",)
            for chunk in _chunks(ids, IN_CHUNK):
                match = " OR ".join(format_soql("{:literal} IN {ids}", key, ids=chunk) for key in keys)
                soql = format_soql(
                    "SELECT {:literal} FROM {:literal} WHERE {:literal} AND ({:literal}) ORDER BY Id",
                    ", ".join(fields),
                    sobject,
                    where,
                    match,
                )
                for rows in self.query_pages(soql, f"reading {sobject}s of one person"):
                    out.extend(a for a in (convert(row) for row in rows) if a is not None)
        return out

    # ------------------------------------------------------------------ writes

    def apply(self, intents: Sequence[WriteIntent]) -> list[WriteResult]:
        """Send changes through sObject Collections, 200 records a call; one result per intent.

        UNABLE_TO_LOCK_ROW records are re-sent (with backoff) up to the retry policy's attempts; a
        lead converted since it was read is followed to its contact (written only if Contact
        `writes` allow it); every other refusal comes back with Salesforce's code and message.
        """
        for intent in intents:
            owned = (
                set(self._object(intent.object_type).writes)
                if intent.object_type in self.mapping.objects
                else set()
            )
            unowned = set(intent.changes) - owned
            if unowned:
                raise FatalError(
                    f"refusing to write {intent.object_type} fields the mapping does not own: "
                    f"{sorted(unowned)}"
                )
        results: dict[int, WriteResult] = {}
        pending = list(enumerate(intents))
        attempt = 1
        while pending:
            retry: list[tuple[int, WriteIntent]] = []
            converted: list[tuple[int, WriteIntent]] = []
            for chunk in _chunks(pending, COLLECTION_LIMIT):
                answers = self._send([intent for _, intent in chunk])
                for (index, intent), answer in zip(chunk, answers, strict=True):
                    ok, code, message = answer
                    if ok:
                        results[index] = WriteResult(intent=intent, ok=True)
                    elif code == "UNABLE_TO_LOCK_ROW" and attempt < self.retry.max_attempts:
                        retry.append((index, intent))
                    elif code == "CANNOT_UPDATE_CONVERTED_LEAD" and intent.object_type == "Lead":
                        converted.append((index, intent))
                    else:
                        transient = code in _TRANSIENT_CODES
                        results[index] = WriteResult(
                            intent, ok=False, error=f"{code}: {message}", retryable=transient
                        )
            pending = list(retry)
            for index, intent in converted:
                followed = self._follow_conversion(intent)
                if isinstance(followed, WriteResult):
                    results[index] = followed
                else:
                    pending.append((index, followed))
            if retry:
                self.retry.pause(attempt)
                attempt += 1
        return [results[i] for i in range(len(intents))]

    def _send(self, chunk: Sequence[WriteIntent]) -> list[tuple[bool, str, str]]:
        body = {
            "allOrNone": False,
            "records": [
                {
                    "attributes": {"type": i.object_type},
                    "id": i.record_id,
                    **{k: (v if v != "" else None) for k, v in i.changes.items()},
                }
                for i in chunk
            ],
        }
        # Without this header Salesforce runs the lead assignment rules, which may replace the owner
        # the connector just set (api-facts §7.4).
        headers = {"Sforce-Auto-Assign": "FALSE"}
        answer = self._call(
            f"updating {len(chunk)} records",
            lambda sf: sf.restful(
                "composite/sobjects", method="PATCH", json=body, headers=headers, timeout=self.timeout
            ),
        )
        if not isinstance(answer, list) or len(answer) != len(chunk):
            raise FatalError("Salesforce answered a collection update with an unexpected body")
        out = []
        for item in answer:
            if item.get("success"):
                out.append((True, "", ""))
                continue
            error = (item.get("errors") or [{}])[0]
            out.append(
                (False, str(error.get("statusCode") or "UNKNOWN"), redact(str(error.get("message") or "")))
            )
        return out

    # ------------------------------------------------------------------ follow-up tasks

    def create_tasks(self, tasks: Sequence[TaskSpec]) -> list[TaskResult]:
        """Create follow-up `Task`s through sObject Collections (POST, 200 a call), in order.

        `TaskSubtype` is "Task", so the connector's own task never reads back as a logged call
        (the activity mapping counts `TaskSubtype: Call`); the due date is `ActivityDate`, a date.
        `Sforce-Auto-Assign: FALSE` keeps assignment rules from re-owning anything.
        """
        results: list[TaskResult] = []
        for chunk in _chunks(list(tasks), COLLECTION_LIMIT):
            body = {"allOrNone": False, "records": [task_record(t) for t in chunk]}
            try:
                answer = self._call(
                    f"creating {len(chunk)} follow-up tasks",
                    lambda sf, b=body: sf.restful(  # type: ignore[misc]
                        "composite/sobjects",
                        method="POST",
                        json=b,
                        headers={"Sforce-Auto-Assign": "FALSE"},
                        timeout=self.timeout,
                    ),
                    retry=self.retry.for_creates(),
                )
            except FatalError as exc:
                results += [TaskResult(t.key, ok=False, error=exc.message, retryable=False) for t in chunk]
                continue
            if not isinstance(answer, list) or len(answer) != len(chunk):
                raise FatalError("Salesforce answered a collection create with an unexpected body")
            for task, item in zip(chunk, answer, strict=True):
                if item.get("success"):
                    results.append(TaskResult(task.key, ok=True, task_id=str(item.get("id"))))
                    continue
                error = (item.get("errors") or [{}])[0]
                code = str(error.get("statusCode") or "UNKNOWN")
                message = f"{code}: {redact(str(error.get('message') or ''))}"
                results.append(
                    TaskResult(task.key, ok=False, error=message, retryable=code in _TRANSIENT_CODES)
                )
        return results

    def find_task(self, task: TaskSpec) -> str | None:
        """The id of a Task created before for `task` (same record, owner, subject, due date)."""
        soql = format_soql(
            "SELECT Id FROM Task WHERE WhoId = {} AND OwnerId = {} AND Subject = {} ORDER BY Id LIMIT 1",
            task.record_id,
            task.owner_id,
            task.subject,
        )
        for rows in self.query_pages(soql, "looking for a follow-up task"):
            for row in rows:
                return str(row["Id"])
        return None

    def _follow_conversion(self, intent: WriteIntent) -> WriteIntent | WriteResult:
        """The same decision aimed at the contact the lead became, or why it cannot be written."""
        lead = self.read_object("Lead", [intent.record_id])
        contact_id = str(lead[0].source_values.get("ConvertedContactId") or "") if lead else ""
        contact = self.mapping.objects.get("Contact")
        if not contact_id:
            return WriteResult(
                intent, ok=False, error="CANNOT_UPDATE_CONVERTED_LEAD: converted lead without a contact"
            )
        if contact is None or not contact.writes:
            return WriteResult(
                intent,
                ok=False,
                error=f"lead was converted to contact {contact_id}; salesforce.yaml does not allow "
                "writing Contacts",
            )
        changes = self.translate_changes(intent.changes, "Lead", "Contact")
        current = {r.record_id: r for r in self.read_object("Contact", [contact_id])}
        record = current.get(contact_id)
        if record is None or not changes:
            return WriteResult(
                intent, ok=False, error=f"lead was converted to contact {contact_id}; nothing to write there"
            )
        return WriteIntent(
            crm="salesforce",
            object_type="Contact",
            record_id=contact_id,
            person_id=intent.person_id,
            changes=changes,
            before={k: record.owned.get(k) for k in changes},
            reason=f"{intent.reason}; lead {intent.record_id} was converted to this contact",
        )

    def translate_changes(self, changes: Mapping[str, str], source: str, target: str) -> dict[str, str]:
        """Lead changes re-expressed on a Contact: same role (stage, status, owner...), its own values."""
        src, dst = self._object(source), self._object(target)
        out: dict[str, str] = {}
        for name, value in changes.items():
            if name == src.stage.field:
                canonical = next((c for c, v in src.stage.values.items() if v == value), None)
                mapped = dst.stage.values.get(canonical) if canonical else None
                if mapped is not None:
                    out[dst.stage.field] = mapped
            elif (
                src.lead_status is not None and name == src.lead_status.field and dst.lead_status is not None
            ):
                canonical = next((c for c, v in src.lead_status.values.items() if v == value), None)
                mapped = dst.lead_status.values.get(canonical) if canonical else None
                if mapped is not None:
                    out[dst.lead_status.field] = mapped
            elif src.owner is not None and name == src.owner.field and dst.owner is not None:
                out[dst.owner.field] = value
            elif name == src.mql_date and dst.mql_date:
                out[dst.mql_date] = value
            elif name == src.mql_reason and dst.mql_reason:
                out[dst.mql_reason] = value
        return {k: v for k, v in out.items() if k in dst.writes}

    # ------------------------------------------------------------------ describe

    def describe(self, sobject: str) -> dict[str, Any]:
        """The object's describe (fields with types and picklist values), for `validate --online`."""
        result = self._call(
            f"describing {sobject}",
            lambda sf: sf.restful(f"sobjects/{sobject}/describe", timeout=self.timeout),
        )
        return result if isinstance(result, dict) else {}


SF_TASK_TYPE = {"call": "Call", "email": "Email", "todo": "Other"}


def task_record(task: TaskSpec) -> dict[str, Any]:
    """A follow-up task as a Salesforce `Task` record for sObject Collections create."""
    due = task.due_date or task.due_at.astimezone(UTC).date()
    return {
        "attributes": {"type": "Task"},
        "WhoId": task.record_id,
        "OwnerId": task.owner_id,
        "Subject": task.subject[:255],
        "Description": task.body,
        "ActivityDate": due.isoformat(),
        "Status": "Not Started",
        "Priority": task.priority.capitalize(),
        "Type": SF_TASK_TYPE.get(task.task_type, "Other"),
        "TaskSubtype": "Task",
    }


def _chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])

"""HubSpot adapter over `hubspot-api-client`.

What it owns: turning HubSpot's wire shapes into `CrmRecord`/`SourceActivity`/`Owner`, paging
(search windows that stay under the 10,000-result cap), batching (100 per batch call, 1,000 per
associations read), 207 multi-status results, and translating the SDK's ~60 per-package
`ApiException` classes and urllib3 errors into `connector.errors` — redacted — at this boundary.
The SDK's own urllib3 retry stays off: every call goes through the shared tenacity policy.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4.models import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.contacts.models import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
)
from hubspot.crm.objects.models import (
    BatchReadInputSimplePublicObjectId as ObjectsBatchReadInput,
)

from connector.crm.base import Feed, Page
from connector.crm.retry import RetryPolicy
from connector.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    DailyLimitExhausted,
    FatalError,
    RateLimited,
    TransientError,
)
from connector.mapping.schema import HubSpotMapping
from connector.model import Crm, CrmRecord, FieldValue, Owner, SourceActivity, WriteIntent, WriteResult
from connector.observability import redact

log = logging.getLogger("connector.hubspot")
T = TypeVar("T")

SEARCH_PAGE = 200  # documented maximum per search page
BATCH_LIMIT = 100  # batch read / update inputs
ASSOC_BATCH_LIMIT = 1_000  # associations v4 batch read inputs
EVENTS_PAGE = 100
OBJECT = "contacts"


def parse_hs_time(value: str | None) -> datetime | None:
    """HubSpot datetimes arrive as ISO-8601 ("...Z") or epoch milliseconds; None when unparseable."""
    if not value:
        return None
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def to_epoch_ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def coerce(value: str | None, kind: str) -> FieldValue:
    """A HubSpot property string read as the type the mapping declares; bad values become None."""
    if value is None or value == "":
        return None
    if kind == "number":
        try:
            number = float(value)
        except ValueError:
            return None
        return int(number) if number.is_integer() else number
    if kind == "bool":
        return value.strip().lower() == "true"
    return value


# --------------------------------------------------------------------------- error translation


def _body(exc: BaseException) -> dict[str, Any]:
    raw = getattr(exc, "body", None)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str):
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def translate(exc: BaseException, action: str) -> ConnectorError:
    """Map an SDK or transport exception to the class that says what to do next."""
    if isinstance(exc, ConnectorError):
        return exc
    status = getattr(exc, "status", None)
    if isinstance(status, int) and hasattr(exc, "body"):
        return _translate_status(status, _body(exc), exc, action)
    if isinstance(exc, urllib3.exceptions.HTTPError | TimeoutError | ConnectionError):
        return TransientError(
            f"HubSpot did not answer while {action} ({type(exc).__name__}); will retry",
            detail=redact(str(exc)),
        )
    return FatalError(f"unexpected error while {action}: {type(exc).__name__}", detail=redact(str(exc)))


def _translate_status(status: int, body: dict[str, Any], exc: BaseException, action: str) -> ConnectorError:
    category = str(body.get("category") or body.get("errorType") or "")
    message = redact(str(body.get("message") or getattr(exc, "reason", "") or ""))
    detail = f"HTTP {status} {category} correlationId={body.get('correlationId', '-')}: {message}"
    if status == 401:
        return AuthError(
            f"HubSpot rejected the access token while {action} (401): check CONNECTOR_HUBSPOT_TOKEN "
            "holds a current private-app token",
            detail=detail,
        )
    if status == 403:
        return AuthError(
            f"HubSpot refused {action} (403 {category}): the private app lacks a scope; grant "
            "crm.objects.contacts.read, crm.objects.contacts.write and crm.objects.owners.read",
            detail=detail,
        )
    if status == 429:
        policy = str(body.get("policyName") or "")
        if policy == "DAILY":
            return DailyLimitExhausted(
                f"HubSpot's daily API limit is used up ({action}); the run stops and resumes after the reset",
                detail=detail,
            )
        default_wait = 1.0 if policy == "SECONDLY" else 10.0
        return RateLimited(
            f"HubSpot rate limit ({policy or 'unknown policy'}) while {action}",
            retry_after=_retry_after(exc) or default_wait,
            policy=policy or None,
            detail=detail,
        )
    if status == 0:
        return ConfigError(
            f"TLS to HubSpot failed while {action}: check CONNECTOR_HUBSPOT_BASE_URL and the CA bundle",
            detail=detail,
        )
    if status >= 500 or status in (408, 423, 477):
        return TransientError(f"HubSpot had a temporary error ({status}) while {action}", detail=detail)
    return FatalError(f"HubSpot answered {status} {category} while {action}: {message}", detail=detail)


# --------------------------------------------------------------------------- adapter


@dataclass(frozen=True)
class ContactPage:
    """One page of changed contacts, in ascending `lastmodifieddate` order."""

    records: list[CrmRecord]
    max_modified: datetime | None


class HubSpotAdapter:
    """Reads contacts, activities and owners; writes owned properties. Knows nothing of criteria."""

    crm: Crm = "hubspot"

    def __init__(
        self,
        client: HubSpot,
        mapping: HubSpotMapping,
        retry: RetryPolicy,
        timeout: float,
        *,
        search_lag: timedelta = timedelta(0),
    ) -> None:
        self.mapping = mapping
        self.search_lag = search_lag
        self.retry = retry
        self.timeout = timeout
        self.calls = 0
        # The SDK builds a new ApiClient + connection pool on every attribute access: build once.
        self._search = client.crm.contacts.search_api
        self._batch = client.crm.contacts.batch_api
        self._owners = client.crm.owners.owners_api
        self._assoc = client.crm.associations.v4.batch_api
        self._events = client.events.events_api
        self._engagement_batch: dict[str, Any] = {}
        self._client = client

    # ------------------------------------------------------------------ plumbing

    def _call(self, action: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def attempt() -> T:
            self.calls += 1
            try:
                return fn(*args, _request_timeout=self.timeout, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every SDK package has its own ApiException
                raise translate(exc, action) from None

        return self.retry.call(attempt)

    @property
    def read_properties(self) -> list[str]:
        """Every contact property the mapping needs, nothing more (data minimisation)."""
        m = self.mapping
        props = {"email", "lastmodifieddate", "hs_object_id", m.stage.property}
        props.update(spec.property for spec in m.fields.values())
        if m.lead_status:
            props.add(m.lead_status.property)
        if m.owner:
            props.add(m.owner.property)
        props.update(src.property for src in m.activities.date_properties)
        if m.salesforce_links is not None:
            props.update(p for p in (m.salesforce_links.lead, m.salesforce_links.contact) if p)
        return sorted(props)

    @property
    def owned_properties(self) -> list[str]:
        return list(self.mapping.writes)

    def _record(self, obj: Any) -> CrmRecord:
        props: dict[str, str | None] = dict(obj.properties or {})
        fields = {
            name: coerce(props.get(spec.property), spec.type) for name, spec in self.mapping.fields.items()
        }
        return CrmRecord(
            crm="hubspot",
            object_type=OBJECT,
            record_id=str(obj.id),
            email=props.get("email"),
            fields=fields,
            owned={prop: props.get(prop) or None for prop in self.owned_properties},
            modified_at=parse_hs_time(props.get("lastmodifieddate")),
            source_values={
                src.property: props.get(src.property) for src in self.mapping.activities.date_properties
            },
            links=self._links(props),
        )

    def _links(self, props: dict[str, str | None]) -> tuple[tuple[Crm, str, str], ...]:
        """The Salesforce records HubSpot's Salesforce integration says this contact is."""
        links = self.mapping.salesforce_links
        if links is None:
            return ()
        out: list[tuple[Crm, str, str]] = []
        for object_type, prop in (("Lead", links.lead), ("Contact", links.contact)):
            value = (props.get(prop) or "").strip() if prop else ""
            if value:
                out.append(("salesforce", object_type, value))
        return tuple(out)

    # ------------------------------------------------------------------ owners

    def owners(self) -> list[Owner]:
        """Active and archived owners (the API returns one or the other per call)."""
        out: list[Owner] = []
        for archived in (False, True):
            after: str | None = None
            while True:
                page = self._call(
                    "listing owners", self._owners.get_page, limit=500, after=after, archived=archived
                )
                for o in page.results or []:
                    name = " ".join(p for p in (o.first_name, o.last_name) if p) or (o.email or str(o.id))
                    out.append(
                        Owner(
                            crm="hubspot",
                            id=str(o.id),
                            email=o.email,
                            name=name,
                            active=not (archived or bool(o.archived)),
                            is_queue=(o.type == "QUEUE"),
                        )
                    )
                after = page.paging.next.after if page.paging and page.paging.next else None
                if not after:
                    break
        return out

    # ------------------------------------------------------------------ contacts

    def pull_contacts(self, since: datetime | None, until: datetime | None = None) -> Iterator[ContactPage]:
        """Contacts modified at or after `since` (and before `until`), oldest first, each once.

        Keyset paging: every page is a fresh search from the last timestamp seen, never an
        `after` offset. The engine writes between pages, and a write moves a contact to the end of
        a result sorted by `lastmodifieddate`, so offsets would silently skip records; a fresh
        query from the last timestamp cannot, and it never meets the 10,000-result cap. Contacts
        sharing the boundary timestamp come again and are skipped; when a whole page shares one
        timestamp, that instant is read separately, keyed by `hs_object_id`. `until` bounds the
        run: what changes later (our own writes included) waits for the next run.
        """
        floor = since
        at_floor: set[str] = set()  # ids already yielded whose timestamp equals `floor`
        while True:
            records = self._search_page(floor, until)
            fresh = [r for r in records if r.record_id not in at_floor]
            if not fresh and len(records) == SEARCH_PAGE and floor is not None:
                yield from self._pull_instant(floor, at_floor, until)
                floor = floor + timedelta(milliseconds=1)
                at_floor = set()
                continue
            if fresh:
                newest = max((r.modified_at for r in fresh if r.modified_at), default=floor)
                if newest != floor:
                    at_floor = set()
                    floor = newest
                at_floor.update(r.record_id for r in fresh if r.modified_at == floor)
                yield ContactPage(records=fresh, max_modified=floor)
            if len(records) < SEARCH_PAGE:
                return

    def _search_page(self, floor: datetime | None, until: datetime | None) -> list[CrmRecord]:
        filters = []
        if floor is not None:
            filters.append(
                {"propertyName": "lastmodifieddate", "operator": "GTE", "value": to_epoch_ms(floor)}
            )
        if until is not None:
            filters.append(
                {"propertyName": "lastmodifieddate", "operator": "LT", "value": to_epoch_ms(until)}
            )
        request = PublicObjectSearchRequest(
            filter_groups=[{"filters": filters}] if filters else [],
            sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            properties=self.read_properties,
            limit=SEARCH_PAGE,
            after="0",
        )
        page = self._call("searching contacts", self._search.do_search, public_object_search_request=request)
        return [self._record(obj) for obj in page.results or []]

    def _pull_instant(
        self, instant: datetime, seen: set[str], until: datetime | None
    ) -> Iterator[ContactPage]:
        """All contacts modified at exactly `instant`, keyed by id so no cap applies."""
        last_id = "0"
        while True:
            request = PublicObjectSearchRequest(
                filter_groups=[
                    {
                        "filters": [
                            {
                                "propertyName": "lastmodifieddate",
                                "operator": "EQ",
                                "value": to_epoch_ms(instant),
                            },
                            {"propertyName": "hs_object_id", "operator": "GT", "value": last_id},
                        ]
                    }
                ],
                sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                properties=self.read_properties,
                limit=SEARCH_PAGE,
                after="0",
            )
            page = self._call(
                "searching contacts", self._search.do_search, public_object_search_request=request
            )
            records = [self._record(obj) for obj in page.results or []]
            fresh = [r for r in records if r.record_id not in seen]
            seen.update(r.record_id for r in fresh)
            if fresh:
                yield ContactPage(records=fresh, max_modified=instant)
            if len(records) < SEARCH_PAGE:
                return
            last_id = records[-1].record_id

    # ------------------------------------------------------------------ feeds (what the engine pulls)

    def feeds(self, until: datetime) -> list[Feed]:
        """Changed contacts, then one feed per mapped Events API event type (Enterprise).

        Both stop `search_lag` before `until`: HubSpot's search index trails writes by a few
        seconds, and a cursor moved past a change not yet indexed would lose it for good.
        """
        until = until - self.search_lag
        out = [
            Feed(scope="hubspot:contacts:lastmodifieddate", pull=partial(self._contact_pages, until=until))
        ]
        if self.mapping.activities.events.enabled:
            for event_type in self.mapping.activities.events.types:
                pull = partial(self._event_pages, event_type, until=until)
                out.append(Feed(scope=f"hubspot:events:{event_type}", pull=pull, kind="activities"))
        return out

    def _contact_pages(self, cursor: str | None, until: datetime) -> Iterator[Page]:
        since = parse_hs_time(cursor) if cursor else None
        for page in self.pull_contacts(since, until):
            if not page.records:
                continue
            yield Page(
                records=page.records,
                activities=self.activities_for(page.records),
                cursor=to_epoch_ms(page.max_modified) if page.max_modified else cursor,
            )

    def _event_pages(self, event_type: str, cursor: str | None, until: datetime) -> Iterator[Page]:
        since = datetime.fromisoformat(cursor) if cursor else None
        for batch, newest in self.events(event_type, since, until):
            if not batch:
                continue
            records = self.read_contacts(sorted({a.record_id for a in batch}))
            yield Page(records=records, activities=batch, cursor=newest.isoformat() if newest else cursor)

    def activities_for(self, records: Sequence[CrmRecord]) -> list[SourceActivity]:
        activities = self.engagement_activities([r.record_id for r in records])
        for record in records:
            activities += self.date_activities(record)
        return activities

    def read(self, record_ids: Sequence[str]) -> list[CrmRecord]:
        return self.read_contacts(record_ids)

    def find(self, key: str) -> CrmRecord | None:
        key = key.strip()
        if "@" in key:
            found = self.read_contacts([key.casefold()], by_email=True)
        elif key.isdigit():
            found = self.read_contacts([key])
        else:
            return None
        return found[0] if found else None

    def read_contacts(self, ids: Sequence[str], *, by_email: bool = False) -> list[CrmRecord]:
        """Batch read (100 per call). Ids HubSpot does not know are simply absent from the result."""
        out: list[CrmRecord] = []
        for chunk in _chunks(list(ids), BATCH_LIMIT):
            body = BatchReadInputSimplePublicObjectId(
                inputs=[{"id": i} for i in chunk],
                properties=self.read_properties,
                properties_with_history=[],
                id_property="email" if by_email else None,
            )
            page = self._call(
                "reading contacts", self._batch.read, batch_read_input_simple_public_object_id=body
            )
            out.extend(self._record(obj) for obj in page.results or [])
        return out

    # ------------------------------------------------------------------ activities

    def date_activities(self, record: CrmRecord) -> list[SourceActivity]:
        """One activity per mapped date property that holds a date (deduplicated by its value)."""
        out = []
        for src in self.mapping.activities.date_properties:
            moment = parse_hs_time(record.source_values.get(src.property))
            if moment is None:
                continue
            out.append(
                SourceActivity(
                    crm="hubspot",
                    object_type=OBJECT,
                    record_id=record.record_id,
                    type=src.type,
                    occurred_at=moment,
                    source=f"hubspot:property:{src.property}",
                    source_id=f"{record.record_id}:{to_epoch_ms(moment)}",
                )
            )
        return out

    def events(
        self, event_type: str, since: datetime | None, until: datetime | None = None
    ) -> Iterator[tuple[list[SourceActivity], datetime | None]]:
        """Events of one type across all contacts, oldest first, after `since` (Enterprise only)."""
        source = self.mapping.activities.events.types[event_type]
        after: str | None = None
        newest = since
        while True:
            kwargs: dict[str, Any] = {
                "object_type": "contact",
                "event_type": event_type,
                "limit": EVENTS_PAGE,
                "sort": ["ASCENDING"],
            }
            if since is not None:
                kwargs["occurred_after"] = since
            if until is not None:
                kwargs["occurred_before"] = until
            if after:
                kwargs["after"] = after
            page = self._call(f"reading {event_type} events", self._events.get_page, **kwargs)
            batch: list[SourceActivity] = []
            for ev in page.results or []:
                props = ev.properties or {}
                occurred = (
                    ev.occurred_at
                    if isinstance(ev.occurred_at, datetime)
                    else parse_hs_time(str(ev.occurred_at))
                )
                if occurred is None:
                    continue
                if occurred.tzinfo is None:
                    occurred = occurred.replace(tzinfo=UTC)
                newest = occurred if newest is None or occurred > newest else newest
                batch.append(
                    SourceActivity(
                        crm="hubspot",
                        object_type=OBJECT,
                        record_id=str(ev.object_id),
                        type=source.type,
                        occurred_at=occurred,
                        source="hubspot:events",
                        source_id=str(ev.id),
                        url=props.get(source.url_property) if source.url_property else None,
                        name=props.get(source.name_property) if source.name_property else None,
                    )
                )
            yield batch, newest
            after = page.paging.next.after if page.paging and page.paging.next else None
            if not after:
                return

    def engagement_activities(self, contact_ids: Sequence[str]) -> list[SourceActivity]:
        """Engagements associated with these contacts: associations v4 in bulk, then batch reads."""
        out: list[SourceActivity] = []
        for source in self.mapping.activities.engagements:
            links = self._associations(contact_ids, source.object)
            engagement_ids = sorted({eid for eids in links.values() for eid in eids})
            props = sorted({source.timestamp_property, *source.where})
            objects = self._read_engagements(source.object, engagement_ids, props)
            for contact_id, eids in links.items():
                for eid in eids:
                    values = objects.get(eid)
                    if values is None or any(values.get(k) != v for k, v in source.where.items()):
                        continue
                    moment = parse_hs_time(values.get(source.timestamp_property))
                    if moment is None:
                        continue
                    out.append(
                        SourceActivity(
                            crm="hubspot",
                            object_type=OBJECT,
                            record_id=contact_id,
                            type=source.type,
                            occurred_at=moment,
                            source=f"hubspot:{source.object}",
                            source_id=f"{eid}:{contact_id}",
                        )
                    )
        return out

    def _associations(self, contact_ids: Sequence[str], to_type: str) -> dict[str, list[str]]:
        links: dict[str, list[str]] = {}
        pending: list[tuple[str, str | None]] = [(cid, None) for cid in contact_ids]
        while pending:
            chunk, pending = pending[:ASSOC_BATCH_LIMIT], pending[ASSOC_BATCH_LIMIT:]
            body = BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[PublicFetchAssociationsBatchRequest(id=cid, after=after) for cid, after in chunk]
            )
            page = self._call(
                f"reading contact-{to_type} associations",
                self._assoc.get_page,
                from_object_type="contacts",
                to_object_type=to_type,
                batch_input_public_fetch_associations_batch_request=body,
            )
            for result in page.results or []:
                cid = str(result._from.id)
                links.setdefault(cid, []).extend(str(t.to_object_id) for t in result.to or [])
                if result.paging and result.paging.next and result.paging.next.after:
                    pending.append((cid, result.paging.next.after))
        return links

    def _read_engagements(
        self, object_type: str, ids: Sequence[str], props: list[str]
    ) -> dict[str, dict[str, str | None]]:
        api = self._engagement_batch.get(object_type)
        if api is None:
            api = getattr(self._client.crm.objects, object_type).batch_api
            self._engagement_batch[object_type] = api
        out: dict[str, dict[str, str | None]] = {}
        for chunk in _chunks(list(ids), BATCH_LIMIT):
            body = ObjectsBatchReadInput(
                inputs=[{"id": i} for i in chunk], properties=props, properties_with_history=[]
            )
            page = self._call(
                f"reading {object_type}", api.read, batch_read_input_simple_public_object_id=body
            )
            for obj in page.results or []:
                out[str(obj.id)] = dict(obj.properties or {})
        return out

    # ------------------------------------------------------------------ writes

    def apply(self, intents: Sequence[WriteIntent]) -> list[WriteResult]:
        """Send changes in batches of 100; one result per intent, failures with HubSpot's message."""
        results: list[WriteResult] = []
        for chunk in _chunks(list(intents), BATCH_LIMIT):
            results.extend(self._update_batch(chunk))
        return results

    def _update_batch(self, chunk: list[WriteIntent]) -> list[WriteResult]:
        for intent in chunk:
            unowned = set(intent.changes) - set(self.owned_properties)
            if unowned:
                raise FatalError(f"refusing to write properties the mapping does not own: {sorted(unowned)}")
        body = BatchInputSimplePublicObjectBatchInput(
            inputs=[SimplePublicObjectBatchInput(id=i.record_id, properties=dict(i.changes)) for i in chunk]
        )
        try:
            response = self._call(
                "updating contacts", self._batch.update, batch_input_simple_public_object_batch_input=body
            )
        except FatalError as exc:
            # A whole-batch 400 names no record: split to find the bad one, keep the rest.
            if len(chunk) == 1:
                return [WriteResult(intent=chunk[0], ok=False, error=exc.message)]
            mid = len(chunk) // 2
            return self._update_batch(chunk[:mid]) + self._update_batch(chunk[mid:])
        failed = _failed_ids(response)
        general = [msg for ids, msg in failed if not ids]
        by_id = {rid: msg for ids, msg in failed for rid in ids}
        results = []
        for intent in chunk:
            if intent.record_id in by_id:
                results.append(WriteResult(intent=intent, ok=False, error=by_id[intent.record_id]))
            elif general and not _written(response, intent.record_id):
                results.append(WriteResult(intent=intent, ok=False, error=general[0]))
            else:
                results.append(WriteResult(intent=intent, ok=True))
        return results


def _failed_ids(response: Any) -> list[tuple[list[str], str]]:
    """(record ids, message) per error in a 207 / errors[] body; ids empty when HubSpot named none."""
    out = []
    for err in getattr(response, "errors", None) or []:
        context = getattr(err, "context", None) or {}
        ids = [str(i) for i in (context.get("ids") or context.get("id") or [])]
        message = redact(str(getattr(err, "message", "") or "rejected"))
        category = getattr(err, "category", None)
        out.append((ids, f"{category}: {message}" if category else message))
    return out


def _written(response: Any, record_id: str) -> bool:
    return any(str(getattr(r, "id", "")) == record_id for r in getattr(response, "results", None) or [])


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

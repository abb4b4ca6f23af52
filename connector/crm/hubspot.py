"""HubSpot adapter over `hubspot-api-client`.

What it owns: turning HubSpot's wire shapes into `CrmRecord`/`SourceActivity`/`Owner`; reading in
the largest units the API allows (search pages of 200, associations v4 batch reads of 1,000
inputs, batch reads of 100 — 50 with property history — and the Events API per event type across
all contacts); writing batch updates of 100 with 207 multi-status handling; pacing every call
under the account's limits (`Pacer`), with enough calls in flight (`Pool`, `prefetch`) to use
them; and translating the SDK's exceptions into `connector.errors` (`hubspot_errors`).
The SDK's own urllib3 retry stays off: every call goes through the shared tenacity policy.

Reads are bulk, never per contact. A contacts page of up to 1,000 contacts (five searches) costs
one associations read per engagement object type (plus one for companies when company fields are
mapped), one batch read per 100 engagements, one history read per 50 contacts when property
history is mapped, and nothing more; companies and owners are read once per run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
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
from hubspot.crm.objects.tasks.models import (
    AssociationSpec,
    BatchInputSimplePublicObjectBatchInputForCreate,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectBatchInputForCreate,
)
from hubspot.crm.objects.tasks.models import (
    PublicObjectSearchRequest as TaskSearchRequest,
)

from connector.crm.base import ApiHealth, Feed, Page
from connector.crm.concurrency import Pool, prefetch
from connector.crm.hubspot_cursor import Position, epoch_ms, from_epoch_ms
from connector.crm.hubspot_errors import headers_of, status_of, translate
from connector.crm.pacing import Kind, Pacer, PacingLimits
from connector.crm.retry import RetryPolicy
from connector.errors import ConfigError, DailyLimitExhausted, FatalError, RateLimited
from connector.lifecycle.handoff import TaskSpec
from connector.lifecycle.identity import salesforce_id_18
from connector.mapping.schema import HistorySource, HubSpotMapping
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

__all__ = ["ContactPage", "HubSpotAdapter", "coerce", "parse_hs_time", "to_epoch_ms", "translate"]

log = logging.getLogger("connector.hubspot")
T = TypeVar("T")

SEARCH_PAGE = 200  # documented maximum per search page
BATCH_LIMIT = 100  # batch read / update inputs
HISTORY_BATCH_LIMIT = 50  # batch read inputs with propertiesWithHistory
ASSOC_BATCH_LIMIT = 1_000  # associations v4 batch read inputs
EVENTS_PAGE = 100  # the Events API documents no maximum page size; 100 is a safe one
NOT_FOUND = "OBJECT_NOT_FOUND"  # the 207 error category for ids that were deleted or merged away
OBJECT = "contacts"
PRIMARY_COMPANY_TYPE_ID = 1
EVENTS_FORBIDDEN = (
    "HubSpot refused the Events API (403): it needs an Enterprise portal and a token allowed to read "
    "events. In hubspot.yaml set activities.events.enabled: false and read dated activities from "
    "property history (activities.history) instead"
)
UNLIMITED = PacingLimits(ten_secondly=None, search_per_second=None, daily=None)


def parse_hs_time(value: str | None) -> datetime | None:
    """HubSpot datetimes arrive as ISO-8601 ("...Z") or epoch milliseconds; None when unparseable."""
    if not value:
        return None
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):  # garbage, or an epoch past year 9999
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def to_epoch_ms(moment: datetime) -> str:
    return str(epoch_ms(moment))


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


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_hs_time(str(value)) if value is not None else None


def _modified_ms(obj: Any) -> int | None:
    moment = parse_hs_time((obj.properties or {}).get("lastmodifieddate"))
    return epoch_ms(moment) if moment else None


@dataclass(frozen=True)
class ContactPage:
    """One search call's contacts, oldest first, and the cursor once they are done."""

    records: list[CrmRecord]
    max_modified: datetime | None
    cursor: str | None = None


_AssocCall = tuple[str, list[tuple[str, str | None]]]
"""One associations read: the target object type and (contact id, per-input `after`) inputs."""
_AssocResult = tuple[str, list[tuple[str, frozenset[int]]], str | None]
"""One contact's answer: its id, (target id, association type ids) pairs, and the next `after`."""


def _association_calls(pending: Sequence[tuple[str, str, str | None]]) -> list[_AssocCall]:
    """(to type, contact id, after) inputs grouped into calls of up to 1,000 inputs per type."""
    by_type: dict[str, list[tuple[str, str | None]]] = {}
    for to_type, cid, after in pending:
        by_type.setdefault(to_type, []).append((cid, after))
    return [(t, chunk) for t, inputs in by_type.items() for chunk in _chunks(inputs, ASSOC_BATCH_LIMIT)]


@dataclass(frozen=True)
class _Links:
    """Associations of one contact to one object type: target ids with their association type ids."""

    targets: list[tuple[str, frozenset[int]]]


class HubSpotAdapter:
    """Reads contacts, activities and owners; writes owned properties. Knows nothing of criteria.

    `pacer` is shared by every thread of the run; `workers` bounds requests in flight;
    `prefetch_pages` feed pages are read ahead while the engine works on the current one.
    Defaults (no pacing, one worker, no read-ahead) suit narrow tests; the factory passes the
    production ones from settings.
    """

    crm: Crm = "hubspot"

    def __init__(
        self,
        client: HubSpot,
        mapping: HubSpotMapping,
        retry: RetryPolicy,
        timeout: float,
        *,
        search_lag: timedelta = timedelta(0),
        pacer: Pacer | None = None,
        workers: int = 1,
        prefetch_pages: int = 0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.mapping = mapping
        self.search_lag = search_lag
        self.retry = retry
        self.timeout = timeout
        self.pacer = pacer or Pacer(UNLIMITED, sleep=lambda _seconds: None)
        self.pool = Pool(workers, name="hubspot")
        self.prefetch_pages = prefetch_pages
        self.clock = clock
        self.calls = 0
        self.throttled = 0
        """429 answers (rolling window, secondly or daily), for metrics."""
        self.requests: Counter[str] = Counter()
        """Requests sent per endpoint label (`search:contacts`, `events:<type>`, ...), retries included."""
        self._lock = threading.Lock()
        # The SDK builds a new ApiClient + connection pool on every attribute access: build once.
        self._client = client
        self._search = _guard_json(client.crm.contacts.search_api)
        self._batch = _guard_json(client.crm.contacts.batch_api)
        self._owners_api = _guard_json(client.crm.owners.owners_api)
        self._assoc = _guard_json(client.crm.associations.v4.batch_api)
        self._events = _guard_json(client.events.events_api)
        self._properties = _guard_json(client.crm.properties.core_api)
        self._object_batch: dict[str, Any] = {}
        self._search_total: int | None = None
        self.start_run()

    def start_run(self) -> None:
        """Forget what is cached per run: owners, companies, property definitions."""
        self.pacer.new_run()
        with self._lock:
            self._owner_cache: list[Owner] | None = None
            self._company_cache: dict[str, dict[str, str | None]] = {}
            self._definitions: dict[str, dict[str, Any] | None] = {}

    def close(self) -> None:
        self.pool.close()

    def api_health(self) -> ApiHealth:
        window, daily = self.pacer.headroom()
        return ApiHealth(self.calls, self.throttled, window_headroom=window, daily_headroom=daily)

    # ------------------------------------------------------------------ plumbing

    def _call(
        self,
        action: str,
        label: str,
        api: Any,
        method: str,
        *args: Any,
        kind: Kind = "general",
        missing_ok: bool = False,
        forbidden: str | None = None,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> Any:
        """One SDK call under the pacer and the retry policy; returns the deserialised body.

        The `*_with_http_info` variant is called so the pacer sees HubSpot's rate-limit headers.
        `missing_ok` turns a 404 into None (e.g. a property the portal does not have); `forbidden`
        replaces a 403 with a configuration error carrying that message (what the admin should change).
        """
        operation = getattr(api, f"{method}_with_http_info")

        def attempt() -> Any:
            self.pacer.acquire(kind)
            with self._lock:
                self.requests[label] += 1
                self.calls += 1
            try:
                data, _status, headers = operation(*args, _request_timeout=self.timeout, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every SDK package has its own ApiException
                self.pacer.observe(headers_of(exc))
                if missing_ok and status_of(exc) == 404:
                    return None
                error = translate(exc, action)
                if status_of(exc) == 429:
                    with self._lock:
                        self.throttled += 1
                if isinstance(error, DailyLimitExhausted):
                    self.pacer.exhaust()  # the other threads stop before sending, not after a 429
                if forbidden is not None and status_of(exc) == 403:
                    raise ConfigError(forbidden, detail=error.detail) from None
                if isinstance(error, RateLimited) and error.retry_after:
                    self.pacer.penalise(error.retry_after, kind)
                raise error from None
            self.pacer.observe(dict(headers or {}))
            return data

        return (retry or self.retry).call(attempt)

    def _objects_batch(self, object_type: str) -> Any:
        with self._lock:
            api = self._object_batch.get(object_type)
            if api is None:
                # Companies have their own package; engagements live under crm.objects.
                owner = self._client.crm if object_type == "companies" else self._client.crm.objects
                api = _guard_json(getattr(owner, object_type).batch_api)
                self._object_batch[object_type] = api
            return api

    @property
    def contact_fields(self) -> dict[str, Any]:
        return {n: s for n, s in self.mapping.fields.items() if s.object == "contact"}

    @property
    def company_fields(self) -> dict[str, Any]:
        return {n: s for n, s in self.mapping.fields.items() if s.object == "company"}

    @property
    def read_properties(self) -> list[str]:
        """Every contact property the mapping needs, nothing more (data minimisation)."""
        m = self.mapping
        props = {"email", "lastmodifieddate", "hs_object_id", m.stage.property}
        props.update(spec.property for spec in self.contact_fields.values())
        if m.lead_status:
            props.add(m.lead_status.property)
        if m.owner:
            props.add(m.owner.property)
        props.update(src.property for src in m.activities.date_properties)
        # Every property the connector may write (the stage reason too): `owned` must show what the
        # CRM holds, or a diff and an interrupted write's recovery would compare against nothing.
        props.update(m.writes)
        if m.salesforce_links is not None:
            props.update(p for p in (m.salesforce_links.lead, m.salesforce_links.contact) if p)
        return sorted(props)

    @property
    def owned_properties(self) -> list[str]:
        return list(self.mapping.writes)

    def _record(self, obj: Any, company: Mapping[str, str | None] | None = None) -> CrmRecord:
        props: dict[str, str | None] = dict(obj.properties or {})
        company = company or {}
        fields = {
            name: coerce((company if spec.object == "company" else props).get(spec.property), spec.type)
            for name, spec in self.mapping.fields.items()
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
            value = salesforce_id_18(props.get(prop)) if prop else None
            if value:
                out.append(("salesforce", object_type, value))
        return tuple(out)

    # ------------------------------------------------------------------ owners

    def owners(self) -> list[Owner]:
        """Active and archived owners (the API lists one or the other per call), once per run."""
        with self._lock:
            if self._owner_cache is not None:
                return list(self._owner_cache)
        active, archived = self.pool.map(self._owner_pages, [False, True])
        owners = active + archived
        with self._lock:
            self._owner_cache = owners
        return list(owners)

    def _owner_pages(self, archived: bool) -> list[Owner]:
        out: list[Owner] = []
        after: str | None = None
        while True:
            page = self._call(
                "listing owners",
                "owners",
                self._owners_api,
                "get_page",
                limit=500,
                after=after,
                archived=archived,
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
                return out

    # ------------------------------------------------------------------ account owners (routing)

    def company_owners(self, domains: Sequence[str]) -> dict[str, str]:
        """Company domain -> the owner id of the first owned company with that `domain`.

        For `account_owner` routing rules: a search over companies (`domain IN [...]`, 100 values
        a request, as HubSpot allows), sorted by id (oldest first) so the answer is stable when
        several companies share a domain. Domains without an owned company are absent.
        """
        out: dict[str, str] = {}
        wanted = sorted({d.strip().lower() for d in domains if d and d.strip()})
        for chunk in _chunks(wanted, BATCH_LIMIT):
            request = PublicObjectSearchRequest(
                filter_groups=[{"filters": [{"propertyName": "domain", "operator": "IN", "values": chunk}]}],
                sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                properties=["domain", "hubspot_owner_id"],
                limit=SEARCH_PAGE,
                after="0",
            )
            page = self._call(
                "searching companies by domain",
                "search:companies",
                self._company_search(),
                "do_search",
                public_object_search_request=request,
                kind="search",
            )
            for company in page.results or []:
                props = company.properties or {}
                domain = (props.get("domain") or "").strip().lower()
                owner = (props.get("hubspot_owner_id") or "").strip()
                if domain and owner:
                    out.setdefault(domain, owner)
        return out

    def _company_search(self) -> Any:
        with self._lock:
            api = self._object_batch.get("search:companies")
            if api is None:
                api = _guard_json(self._client.crm.companies.search_api)
                self._object_batch["search:companies"] = api
            return api

    # ------------------------------------------------------------------ feeds (what the engine pulls)

    def feeds(self, until: datetime) -> list[Feed]:
        """Changed contacts, then one feed per mapped Events API event type (Enterprise).

        Both stop `search_lag` before `until`: HubSpot's search index trails writes by a few
        seconds, and a cursor moved past a change not yet indexed would lose it for good.
        """
        until = until - self.search_lag
        out = [Feed(scope="hubspot:contacts:lastmodifieddate", pull=partial(self._contact_feed, until=until))]
        if self.mapping.activities.events.enabled:
            for event_type in self.mapping.activities.events.types:
                pull = partial(self._event_feed, event_type, until=until)
                out.append(Feed(scope=f"hubspot:events:{event_type}", pull=pull, kind="activities"))
        return out

    def backfill_feeds(
        self, since: datetime, until: datetime, keep: Callable[[CrmRecord], bool] | None = None
    ) -> list[Feed]:
        """The same feeds over [since, until) only, for `connector backfill`.

        `keep` picks a shard's records: every search page is read (cursors move over all of
        them), but only kept contacts are hydrated (associations, engagements, history: the
        expensive reads) and handed to the engine; event pages keep only kept contacts' events.
        """
        start = Position(ts=epoch_ms(since)).encode()
        out = [
            Feed(
                scope="hubspot:contacts:lastmodifieddate",
                pull=partial(self._contact_feed, until=until, keep=keep),
                start=start,
            )
        ]
        if self.mapping.activities.events.enabled:
            for event_type in self.mapping.activities.events.types:
                pull = partial(self._event_feed, event_type, until=until, keep=keep)
                out.append(
                    Feed(scope=f"hubspot:events:{event_type}", pull=pull, kind="activities", start=start)
                )
        return out

    def _contact_feed(
        self, cursor: str | None, until: datetime, keep: Callable[[CrmRecord], bool] | None = None
    ) -> Iterator[Page]:
        return prefetch(self._contact_pages(cursor, until, keep), self.prefetch_pages)

    def _contact_pages(
        self, cursor: str | None, until: datetime, keep: Callable[[CrmRecord], bool] | None = None
    ) -> Iterator[Page]:
        """Pages of up to 1,000 contacts (one associations read covers a page) with their activities."""
        start = Position.decode(cursor, "hubspot:contacts:lastmodifieddate")
        group: list[Any] = []
        scanned = 0
        total: int | None = None
        position = start
        emitted = start
        for objs, position in self._search_contacts(start, until):
            if total is None:
                total = self._search_total
            scanned += len(objs)
            group.extend(o for o in objs if keep is None or keep(self._record(o)))
            if len(group) > ASSOC_BATCH_LIMIT - SEARCH_PAGE or (
                keep is not None and scanned >= ASSOC_BATCH_LIMIT
            ):
                yield self._contact_page(group, position, scanned, total)
                group, emitted, scanned = [], position, 0
        if group or position != emitted:
            yield self._contact_page(group, position, scanned, total)

    def _contact_page(
        self, objs: list[Any], position: Position, scanned: int | None = None, total: int | None = None
    ) -> Page:
        records, activities = self._hydrate(objs) if objs else ([], [])
        return Page(
            records=records, activities=activities, cursor=position.encode(), scanned=scanned, total=total
        )

    def pull_contacts(
        self, cursor: str | datetime | None, until: datetime | None = None
    ) -> Iterator[ContactPage]:
        """Contacts changed at or after the cursor (and before `until`), one search call per page.

        Records only (no activities): for tests and tools. The engine reads `feeds()`.
        """
        start = Position(ts=epoch_ms(cursor)) if isinstance(cursor, datetime) else Position.decode(cursor)
        for objs, position in self._search_contacts(start, until):
            yield ContactPage(
                records=[self._record(o) for o in objs],
                max_modified=from_epoch_ms(position.ts) if position.ts is not None else None,
                cursor=position.encode(),
            )

    def _search_contacts(
        self, position: Position, until: datetime | None
    ) -> Iterator[tuple[list[Any], Position]]:
        """(contacts not delivered before, position after them) per search call, oldest first.

        Keyset paging: every call is a fresh search from the last timestamp delivered, never an
        `after` offset. The engine writes between pages and a write moves a contact to the end of
        a result sorted by `lastmodifieddate`, so offsets would silently skip records; a fresh
        query from the last timestamp cannot, and it never meets the 10,000-result cap. Contacts
        at the boundary timestamp come again and are recognised by id (the cursor keeps them).
        When a whole page shares one timestamp, more may share it than a page holds (a bulk
        import): that instant is read keyed by `hs_object_id` ascending. `until` bounds the run:
        what changes later, our own writes included, waits for the next run.
        """
        if position.after_id is not None and position.ts is not None:
            yield from self._search_instant(position, until)
            position = Position(ts=position.ts + 1)
            yield [], position
        while True:
            filters = []
            if position.ts is not None:
                filters.append(
                    {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(position.ts)}
                )
            if until is not None:
                filters.append(
                    {"propertyName": "lastmodifieddate", "operator": "LT", "value": to_epoch_ms(until)}
                )
            results, more = self._search_call(filters, "lastmodifieddate")
            dated = [(o, ts) for o in results if (ts := _modified_ms(o)) is not None]
            if not dated:
                return
            first, last = dated[0][1], dated[-1][1]
            if len(results) == SEARCH_PAGE and first == last:
                carried = position.ids if position.ts == first else frozenset()
                yield from self._search_instant(Position(ts=first, ids=carried, after_id=0), until)
                position = Position(ts=first + 1)
                yield [], position
                continue
            fresh = [o for o, ts in dated if not position.done(str(o.id), ts)]
            position = position.advanced([(str(o.id), ts) for o, ts in dated])
            yield fresh, position
            if not more:
                return

    def _search_instant(
        self, position: Position, until: datetime | None
    ) -> Iterator[tuple[list[Any], Position]]:
        """Every contact modified at exactly `position.ts`, by ascending id after `after_id`."""
        assert position.ts is not None
        last_id = position.after_id or 0
        skip = position.ids
        while True:
            filters = [
                {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(position.ts)},
                {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)},
            ]
            results, more = self._search_call(filters, "hs_object_id")
            if not results:
                return
            last_id = max(int(str(o.id)) for o in results)
            fresh = [o for o in results if str(o.id) not in skip]
            skip = frozenset(i for i in skip if not i.isdigit() or int(i) > last_id)
            yield fresh, Position(ts=position.ts, ids=skip, after_id=last_id)
            if not more:
                return

    def _search_call(self, filters: list[dict[str, str]], sort: str) -> tuple[list[Any], bool]:
        request = PublicObjectSearchRequest(
            filter_groups=[{"filters": filters}] if filters else [],
            sorts=[{"propertyName": sort, "direction": "ASCENDING"}],
            properties=self.read_properties,
            limit=SEARCH_PAGE,
            after="0",
        )
        page = self._call(
            "searching contacts",
            "search:contacts",
            self._search,
            "do_search",
            public_object_search_request=request,
            kind="search",
        )
        more = bool(page.paging and page.paging.next and page.paging.next.after)
        self._search_total = int(page.total) if isinstance(page.total, int) else None
        return list(page.results or []), more

    # ------------------------------------------------------------------ events

    def _event_feed(
        self,
        event_type: str,
        cursor: str | None,
        until: datetime,
        keep: Callable[[CrmRecord], bool] | None = None,
    ) -> Iterator[Page]:
        """Event pages with the contacts they concern (to resolve their people), read ahead: an
        activities page only extends timelines, so nothing written meanwhile can make it stale."""
        return prefetch(self._event_record_pages(event_type, cursor, until, keep), self.prefetch_pages)

    def _event_record_pages(
        self,
        event_type: str,
        cursor: str | None,
        until: datetime,
        keep: Callable[[CrmRecord], bool] | None = None,
    ) -> Iterator[Page]:
        for activities, next_cursor in self._event_pages(event_type, cursor, until):
            records = self.read_contacts(sorted({a.record_id for a in activities})) if activities else []
            scanned = len(records)
            if keep is not None:
                records = [r for r in records if keep(r)]
                mine = {r.record_id for r in records}
                activities = [a for a in activities if a.record_id in mine]
            yield Page(records=records, activities=activities, cursor=next_cursor, scanned=scanned)

    def _event_pages(
        self, event_type: str, cursor: str | None, until: datetime | None
    ) -> Iterator[tuple[list[SourceActivity], str | None]]:
        """(new events, cursor after them) per call: one event type across all contacts, oldest first.

        `occurredAfter` is asked 1 ms before the cursor, so whether HubSpot treats it as inclusive
        or exclusive (undocumented) nothing at the boundary is lost; what was delivered is
        recognised by timestamp and event id.
        """
        scope = f"hubspot:events:{event_type}"
        source = self.mapping.activities.events.types[event_type]
        position = Position.decode(cursor, scope)
        start = position.ts
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "object_type": "contact",
                "event_type": event_type,
                "limit": EVENTS_PAGE,
                "sort": ["ASCENDING"],
            }
            if start is not None:  # the same filters on every page: the `after` token pages this query
                kwargs["occurred_after"] = from_epoch_ms(start - 1)
            if until is not None:
                kwargs["occurred_before"] = until
            if after:
                kwargs["after"] = after
            page = self._events_call(event_type, kwargs)
            stamps: list[tuple[str, int]] = []
            batch: list[SourceActivity] = []
            for ev in page.results or []:
                occurred = _moment(ev.occurred_at)
                if occurred is None:
                    continue
                ts = epoch_ms(occurred)
                stamps.append((str(ev.id), ts))
                if position.done(str(ev.id), ts):
                    continue
                props = ev.properties or {}
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
            advanced = position.advanced(sorted(stamps, key=lambda s: s[1])) if stamps else position
            if batch or advanced != position:
                yield batch, advanced.encode()
            position = advanced
            after = page.paging.next.after if page.paging and page.paging.next else None
            if not after:
                return

    def _events_call(self, event_type: str, kwargs: dict[str, Any]) -> Any:
        return self._call(
            f"reading {event_type} events",
            f"events:{event_type}",
            self._events,
            "get_page",
            forbidden=EVENTS_FORBIDDEN,
            **kwargs,
        )

    # ------------------------------------------------------------------ records and activities

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
        """Batch reads of 100, concurrently. Ids HubSpot does not know are simply absent."""
        chunks = _chunks(list(ids), BATCH_LIMIT)
        objs = [
            o
            for found in self.pool.map(partial(self._contacts_read, by_email=by_email), chunks)
            for o in found
        ]
        if not self.company_fields:
            return [self._record(o) for o in objs]
        links = self._associations([str(o.id) for o in objs], ["companies"]).get("companies", {})
        companies = self._company_values(links, self._read_objects(self._company_reads(links)))
        return [self._record(o, companies.get(str(o.id))) for o in objs]

    def _contacts_read(self, chunk: list[str], *, by_email: bool = False) -> list[Any]:
        body = BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in chunk],
            properties=self.read_properties,
            properties_with_history=[],
            id_property="email" if by_email else None,
        )
        page = self._call(
            "reading contacts",
            "batch_read:contacts",
            self._batch,
            "read",
            batch_read_input_simple_public_object_id=body,
        )
        return list(page.results or [])

    def _hydrate(self, objs: list[Any]) -> tuple[list[CrmRecord], list[SourceActivity]]:
        """Records (with company fields) and every activity of these contacts, read in bulk.

        Two rounds of concurrent reads, never nested: first associations per object type (1,000
        contacts per call) together with property history (50 per call); then the engagements
        and companies those associations point at (100 per call).
        """
        ids = [str(o.id) for o in objs]
        to_types: list[str] = sorted({s.object for s in self.mapping.activities.engagements})
        if self.company_fields:
            to_types.append("companies")
        assoc_calls = _association_calls([(t, cid, None) for t in to_types for cid in ids])
        history_chunks = _chunks(ids, HISTORY_BATCH_LIMIT) if self.mapping.activities.history else []
        tasks: list[Callable[[], Any]] = [partial(self._association_call, c) for c in assoc_calls]
        tasks += [partial(self._history_read, chunk) for chunk in history_chunks]
        answers = self.pool.map(_run, tasks)
        links = self._associations_after(to_types, assoc_calls, answers[: len(assoc_calls)])
        history = self._history_from([o for found in answers[len(assoc_calls) :] for o in found])
        company_links = links.pop("companies", {})
        reads = self._engagement_reads(links)
        reads.update(self._company_reads(company_links))
        objects = self._read_objects(reads)
        companies = self._company_values(company_links, objects) if self.company_fields else {}
        records = [self._record(o, companies.get(str(o.id))) for o in objs]
        activities = self._engagements_from(links, objects) + history
        for record in records:
            activities += self.date_activities(record)
        return records, activities

    def activities_for(self, records: Sequence[CrmRecord]) -> list[SourceActivity]:
        """Engagements, property history and date properties of these records (for `explain`)."""
        ids = [r.record_id for r in records]
        activities = self.engagement_activities(ids) + self._history_activities(ids)
        for record in records:
            activities += self.date_activities(record)
        return activities

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

    # --- associations

    def _associations(self, contact_ids: list[str], to_types: list[str]) -> dict[str, dict[str, _Links]]:
        """Contact -> associated ids per object type: 1,000 inputs per call, all types at once."""
        calls = _association_calls([(t, cid, None) for t in to_types for cid in contact_ids])
        return self._associations_after(to_types, calls, self.pool.map(self._association_call, calls))

    def _associations_after(
        self, to_types: list[str], calls: list[_AssocCall], answers: list[list[_AssocResult]]
    ) -> dict[str, dict[str, _Links]]:
        """Collect a round's answers, then read further rounds for the contacts whose associations
        span several pages (per-input `after`)."""
        found: dict[str, dict[str, list[tuple[str, frozenset[int]]]]] = {t: {} for t in to_types}
        while calls:
            pending: list[tuple[str, str, str | None]] = []
            for (to_type, _chunk), results in zip(calls, answers, strict=True):
                for cid, targets, after in results:
                    found[to_type].setdefault(cid, []).extend(targets)
                    if after:
                        pending.append((to_type, cid, after))
            calls = _association_calls(pending)
            answers = self.pool.map(self._association_call, calls) if calls else []
        return {
            t: {cid: _Links(targets) for cid, targets in by_contact.items()}
            for t, by_contact in found.items()
        }

    def _association_call(self, call: _AssocCall) -> list[_AssocResult]:
        to_type, chunk = call
        body = BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id=cid, after=after) for cid, after in chunk]
        )
        page = self._call(
            f"reading contact-{to_type} associations",
            f"associations:{to_type}",
            self._assoc,
            "get_page",
            from_object_type="contacts",
            to_object_type=to_type,
            batch_input_public_fetch_associations_batch_request=body,
        )
        out = []
        for result in page.results or []:
            targets = [
                (
                    str(t.to_object_id),
                    frozenset(int(a.type_id) for a in (t.association_types or []) if a.type_id),
                )
                for t in result.to or []
            ]
            after = result.paging.next.after if result.paging and result.paging.next else None
            out.append((str(result._from.id), targets, after))
        return out

    # --- objects the associations point at

    def _read_objects(
        self, reads: Mapping[str, tuple[list[str], list[str]]]
    ) -> dict[str, dict[str, dict[str, str | None]]]:
        """Batch reads of 100, every chunk of every object type concurrently.

        `reads` maps object type -> (ids, properties); the answer maps type -> id -> properties.
        """
        calls = [
            (t, chunk, props) for t, (ids, props) in reads.items() for chunk in _chunks(ids, BATCH_LIMIT)
        ]
        out: dict[str, dict[str, dict[str, str | None]]] = {t: {} for t in reads}
        for (object_type, _chunk, _props), results in zip(
            calls, self.pool.map(self._object_read, calls), strict=True
        ):
            for obj in results:
                out[object_type][str(obj.id)] = dict(obj.properties or {})
        return out

    def _object_read(self, call: tuple[str, list[str], list[str]]) -> list[Any]:
        object_type, chunk, props = call
        body = ObjectsBatchReadInput(
            inputs=[{"id": i} for i in chunk], properties=props, properties_with_history=[]
        )
        page = self._call(
            f"reading {object_type}",
            f"batch_read:{object_type}",
            self._objects_batch(object_type),
            "read",
            batch_read_input_simple_public_object_id=body,
        )
        return list(page.results or [])

    # --- engagements

    def engagement_activities(self, contact_ids: Sequence[str]) -> list[SourceActivity]:
        """Engagements associated with these contacts: associations v4 in bulk, then batch reads."""
        to_types: list[str] = sorted({s.object for s in self.mapping.activities.engagements})
        links = self._associations(list(contact_ids), to_types)
        return self._engagements_from(links, self._read_objects(self._engagement_reads(links)))

    def _engagement_reads(
        self, links: Mapping[str, Mapping[str, _Links]]
    ) -> dict[str, tuple[list[str], list[str]]]:
        """Per engagement type: the ids to read (each once) and the properties the sources need."""
        props: dict[str, set[str]] = {}
        for source in self.mapping.activities.engagements:
            props.setdefault(source.object, set()).update({source.timestamp_property, *source.where})
        return {
            t: (
                sorted({eid for link in links.get(t, {}).values() for eid, _ in link.targets}),
                sorted(wanted),
            )
            for t, wanted in props.items()
        }

    def _engagements_from(
        self,
        links: Mapping[str, Mapping[str, _Links]],
        objects: Mapping[str, Mapping[str, Mapping[str, str | None]]],
    ) -> list[SourceActivity]:
        out: list[SourceActivity] = []
        for source in self.mapping.activities.engagements:
            found = objects.get(source.object, {})
            for contact_id, link in links.get(source.object, {}).items():
                for eid, _types in link.targets:
                    values = found.get(eid)
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

    # --- companies

    def _primary_companies(self, links: Mapping[str, _Links]) -> dict[str, str]:
        """Contact id -> its primary company id (association type 1), else its first company."""
        primary: dict[str, str] = {}
        for contact_id, link in links.items():
            chosen = next((cid for cid, types in link.targets if PRIMARY_COMPANY_TYPE_ID in types), None)
            if chosen is None and link.targets:
                chosen = link.targets[0][0]
            if chosen is not None:
                primary[contact_id] = chosen
        return primary

    def _company_reads(self, links: Mapping[str, _Links]) -> dict[str, tuple[list[str], list[str]]]:
        """The companies not read yet this run (companies are cached per run)."""
        if not self.company_fields:
            return {}
        with self._lock:
            missing = sorted(
                {c for c in self._primary_companies(links).values() if c not in self._company_cache}
            )
        if not missing:
            return {}
        return {"companies": (missing, sorted({spec.property for spec in self.company_fields.values()}))}

    def _company_values(
        self, links: Mapping[str, _Links], objects: Mapping[str, Mapping[str, Mapping[str, str | None]]]
    ) -> dict[str, dict[str, str | None]]:
        """Contact id -> its primary company's mapped properties, through the per-run cache."""
        primary = self._primary_companies(links)
        read = objects.get("companies", {})
        with self._lock:
            for company_id in set(primary.values()) - set(self._company_cache):
                self._company_cache[company_id] = dict(read.get(company_id, {}))
            return {contact: dict(self._company_cache[company]) for contact, company in primary.items()}

    # --- property history

    def _history_activities(self, contact_ids: Sequence[str]) -> list[SourceActivity]:
        """Mapped property histories as dated activities: batch reads of 50 (HubSpot's limit with
        `propertiesWithHistory`), concurrently."""
        if not self.mapping.activities.history or not contact_ids:
            return []
        chunks = _chunks(list(contact_ids), HISTORY_BATCH_LIMIT)
        return self._history_from([o for found in self.pool.map(self._history_read, chunks) for o in found])

    def _history_read(self, chunk: list[str]) -> list[Any]:
        names = sorted({s.property for s in self.mapping.activities.history})
        body = BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in chunk], properties=["hs_object_id"], properties_with_history=names
        )
        page = self._call(
            "reading contact property history",
            "batch_read:contacts:history",
            self._batch,
            "read",
            batch_read_input_simple_public_object_id=body,
        )
        return list(page.results or [])

    def _history_from(self, objs: Sequence[Any]) -> list[SourceActivity]:
        out: list[SourceActivity] = []
        for obj in objs:
            histories = obj.properties_with_history or {}
            for source in self.mapping.activities.history:
                out += _history_to_activities(str(obj.id), source, histories.get(source.property) or [])
        return out

    # ------------------------------------------------------------------ property definitions

    def property_definition(self, name: str, object_type: str = OBJECT) -> dict[str, Any] | None:
        """A property's definition from the properties API (None when the portal lacks it), cached per run."""
        key = f"{object_type}:{name}"
        with self._lock:
            if key in self._definitions:
                return self._definitions[key]
        found = self._call(
            f"reading the {object_type} property {name}",
            "properties",
            self._properties,
            "get_by_name",
            object_type=object_type,
            property_name=name,
            missing_ok=True,
        )
        definition = found.to_dict() if found is not None else None
        with self._lock:
            self._definitions[key] = definition
        return definition

    def list_properties(self, object_type: str) -> dict[str, dict[str, Any]]:
        """All property definitions of an object type (one call), by name."""
        page = self._call(
            f"listing {object_type} properties",
            "properties",
            self._properties,
            "get_all",
            object_type=object_type,
        )
        return {str(p.name): p.to_dict() for p in page.results or []}

    def event_types(self) -> set[str]:
        """Event type names the portal knows (HubSpot lists every type, used or not)."""
        answer = self._call(
            "listing event types", "events:types", self._events, "get_types", forbidden=EVENTS_FORBIDDEN
        )
        return {str(name) for name in (answer.event_types or [])}

    def _stage_rank(self) -> dict[str, int]:
        definition = self.property_definition(self.mapping.stage.property) or {}
        options = definition.get("options") or []
        return {
            str(o.get("value")): int(o["display_order"]) if o.get("display_order") is not None else i
            for i, o in enumerate(options)
        }

    # ------------------------------------------------------------------ writes

    def apply(self, intents: Sequence[WriteIntent]) -> list[WriteResult]:
        """Send changes in batches of 100, concurrently; one result per intent, in order.

        A `lifecyclestage` moving backwards is sent in the documented order — cleared in one
        request, set in a second, then read back — when the mapping allows it, and refused with a
        message naming the setting when it does not. The stage's reason and date properties
        (`stage_reason`, `stage_date`), which the diff puts in the same intent, go with the set.
        """
        owned = set(self.owned_properties)
        for intent in intents:
            unowned = set(intent.changes) - owned
            if unowned:
                raise FatalError(f"refusing to write properties the mapping does not own: {sorted(unowned)}")
        prepared = list(intents)
        backwards = self._backwards(prepared)
        results: dict[int, WriteResult] = {}
        forward = [i for i in range(len(prepared)) if i not in backwards]
        for index, result in zip(forward, self._update_all([prepared[i] for i in forward]), strict=True):
            results[index] = result
        moving = [i for i in backwards if self.mapping.stage.allow_backwards]
        for index in backwards:
            if index not in moving:
                results[index] = self._refuse_backwards(prepared[index])
        for index, result in zip(moving, self._move_backwards([prepared[i] for i in moving]), strict=True):
            results[index] = result
        return [results[i] for i in range(len(prepared))]

    def _backwards(self, intents: Sequence[WriteIntent]) -> list[int]:
        """Indexes of intents that move the stage backwards in the portal's stage order."""
        prop = self.mapping.stage.property
        candidates = [
            i for i, it in enumerate(intents) if it.changes.get(prop) and (it.before.get(prop) or "").strip()
        ]
        if not candidates:
            return []
        rank = self._stage_rank()
        out = []
        for index in candidates:
            old, new = (intents[index].before.get(prop) or "").strip(), intents[index].changes[prop]
            if old in rank and new in rank and rank[new] < rank[old]:
                out.append(index)
        return out

    def _refuse_backwards(self, intent: WriteIntent) -> WriteResult:
        prop = self.mapping.stage.property
        return WriteResult(
            intent=intent,
            ok=False,
            error=(
                f"{prop} would move backwards from {intent.before.get(prop)!r} to {intent.changes[prop]!r}; "
                "HubSpot only moves it forward. Set stage.allow_backwards: true in hubspot.yaml to let the "
                "connector clear it and set it again"
            ),
        )

    def _move_backwards(self, intents: list[WriteIntent]) -> list[WriteResult]:
        """Clear the stage (with the other changes) in one request, set it in a second, read it back."""
        if not intents:
            return []
        stage = self.mapping.stage
        companions = {ref.property for ref in (self.mapping.stage_reason, self.mapping.stage_date) if ref}
        clears = [
            dataclasses.replace(
                i, changes={**{k: v for k, v in i.changes.items() if k not in companions}, stage.property: ""}
            )
            for i in intents
        ]
        results: dict[str, WriteResult] = {}
        cleared = []
        for intent, result in zip(intents, self._update_all(clears), strict=True):
            if result.ok:
                cleared.append(intent)
            else:
                results[intent.record_id] = WriteResult(intent=intent, ok=False, error=result.error)
        sets = [
            dataclasses.replace(
                i, changes={k: v for k, v in i.changes.items() if k == stage.property or k in companions}
            )
            for i in cleared
        ]
        placed = []
        for intent, result in zip(cleared, self._update_all(sets), strict=True):
            if result.ok:
                placed.append(intent)
            else:
                results[intent.record_id] = WriteResult(
                    intent=intent,
                    ok=False,
                    error=f"{stage.property} was cleared but setting it failed ({result.error}); "
                    "the next run sets it again",
                )
        shown = {
            r.record_id: r.owned.get(stage.property)
            for r in self.read_contacts([i.record_id for i in placed])
        }
        for intent in placed:
            want = intent.changes[stage.property]
            if shown.get(intent.record_id) == want:
                results[intent.record_id] = WriteResult(intent=intent, ok=True)
            else:
                results[intent.record_id] = WriteResult(
                    intent=intent,
                    ok=False,
                    error=f"HubSpot shows {stage.property}={shown.get(intent.record_id)!r} after clearing it "
                    f"and setting {want!r}",
                )
        return [results[i.record_id] for i in intents]

    # ------------------------------------------------------------------ follow-up tasks

    def create_tasks(self, tasks: Sequence[TaskSpec]) -> list[TaskResult]:
        """Create follow-up tasks, 100 a call (`/crm/v3/objects/tasks/batch/create`), each
        associated with its contact; results are matched back by `objectWriteTraceId`."""
        results: list[TaskResult] = []
        api = self._tasks_batch()
        for chunk in _chunks(list(tasks), BATCH_LIMIT):
            body = BatchInputSimplePublicObjectBatchInputForCreate(
                inputs=[
                    SimplePublicObjectBatchInputForCreate(
                        properties=task_properties(task),
                        associations=[
                            PublicAssociationsForObject(
                                to=PublicObjectId(id=task.record_id),
                                types=[
                                    AssociationSpec(
                                        association_category="HUBSPOT_DEFINED",
                                        association_type_id=TASK_TO_CONTACT,
                                    )
                                ],
                            )
                        ],
                        object_write_trace_id=task.key,
                    )
                    for task in chunk
                ]
            )
            try:
                response = self._call(
                    "creating follow-up tasks",
                    "batch_create:tasks",
                    api,
                    "create",
                    retry=self.retry.for_creates(),
                    batch_input_simple_public_object_batch_input_for_create=body,
                )
            except FatalError as exc:
                results += [TaskResult(t.key, ok=False, error=exc.message, retryable=False) for t in chunk]
                continue
            created = {
                str(getattr(r, "object_write_trace_id", "") or ""): str(r.id)
                for r in getattr(response, "results", None) or []
            }
            refused: dict[str, str] = {}
            for err in getattr(response, "errors", None) or []:
                context = getattr(err, "context", None) or {}
                for key in context.get("objectWriteTraceId") or []:
                    refused[str(key)] = redact(str(getattr(err, "message", "") or "rejected"))
            for task in chunk:
                if task.key in created:
                    results.append(TaskResult(task.key, ok=True, task_id=created[task.key]))
                else:
                    error = refused.get(task.key, "HubSpot created no task for this input")
                    results.append(TaskResult(task.key, ok=False, error=error, retryable=False))
        return results

    def find_task(self, task: TaskSpec) -> str | None:
        """The id of a task created before for `task` (same owner, subject and due time), if any:
        how a run settles a create that a killed predecessor sent but never confirmed."""
        request = TaskSearchRequest(
            filter_groups=[
                {
                    "filters": [
                        {"propertyName": "hubspot_owner_id", "operator": "EQ", "value": task.owner_id},
                        {"propertyName": "hs_task_subject", "operator": "EQ", "value": task.subject},
                    ]
                }
            ],
            properties=["hs_timestamp", "hs_task_subject", "hubspot_owner_id"],
            sorts=[{"propertyName": "hs_createdate", "direction": "ASCENDING"}],
            limit=100,
            after="0",
        )
        page = self._call(
            "looking for a follow-up task",
            "search:tasks",
            self._tasks_search(),
            "do_search",
            public_object_search_request=request,
            kind="search",
        )
        for result in getattr(page, "results", None) or []:
            due = parse_hs_time((result.properties or {}).get("hs_timestamp"))
            if due is not None and due == task.due_at.astimezone(UTC):
                return str(result.id)
        return None

    def _tasks_batch(self) -> Any:
        return self._cached_api("tasks:create", lambda: self._client.crm.objects.tasks.batch_api)

    def _tasks_search(self) -> Any:
        return self._cached_api("tasks:search", lambda: self._client.crm.objects.tasks.search_api)

    def _cached_api(self, key: str, make: Callable[[], Any]) -> Any:
        """One JSON-guarded SDK API object per key for the adapter's life (shared by threads)."""
        with self._lock:
            api = self._object_batch.get(key)
            if api is None:
                api = _guard_json(make())
                self._object_batch[key] = api
            return api

    def _update_all(self, intents: list[WriteIntent]) -> list[WriteResult]:
        """Every batch runs to its end even when the daily budget runs out meanwhile: what landed
        is handed over with the stop (`DailyLimitExhausted.done`), so it can be recorded."""
        outcomes = self.pool.map(self._update_batch_or_stop, _chunks(intents, BATCH_LIMIT))
        results = [r for outcome in outcomes if isinstance(outcome, list) for r in outcome]
        stops = [outcome for outcome in outcomes if isinstance(outcome, DailyLimitExhausted)]
        if stops:
            raise DailyLimitExhausted(stops[0].message, detail=stops[0].detail, done=results)
        return results

    def _update_batch_or_stop(self, chunk: list[WriteIntent]) -> list[WriteResult] | DailyLimitExhausted:
        try:
            return self._update_batch(chunk)
        except DailyLimitExhausted as stop:
            return stop

    def _update_batch(self, chunk: list[WriteIntent]) -> list[WriteResult]:
        body = BatchInputSimplePublicObjectBatchInput(
            inputs=[SimplePublicObjectBatchInput(id=i.record_id, properties=dict(i.changes)) for i in chunk]
        )
        try:
            response = self._call(
                "updating contacts",
                "batch_update:contacts",
                self._batch,
                "update",
                batch_input_simple_public_object_batch_input=body,
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
                message = by_id[intent.record_id]
                gone = message.startswith(NOT_FOUND + ":")
                results.append(WriteResult(intent=intent, ok=False, error=message, gone=gone))
            elif general and not _written(response, intent.record_id):
                results.append(WriteResult(intent=intent, ok=False, error=general[0]))
            else:
                results.append(WriteResult(intent=intent, ok=True))
        return results


TASK_TO_CONTACT = 204
"""HubSpot-defined association type id task -> contact (api-facts §2)."""
TASK_PRIORITY = {"low": "LOW", "normal": "MEDIUM", "high": "HIGH"}
TASK_TYPE = {"call": "CALL", "email": "EMAIL", "todo": "TODO"}


def task_properties(task: TaskSpec) -> dict[str, str]:
    """A follow-up task as HubSpot task properties: hs_timestamp is the due date (epoch ms)."""
    return {
        "hs_task_subject": task.subject,
        "hs_task_body": task.body,
        "hs_timestamp": to_epoch_ms(task.due_at),
        "hubspot_owner_id": task.owner_id,
        "hs_task_status": "NOT_STARTED",
        "hs_task_priority": TASK_PRIORITY.get(task.priority, "MEDIUM"),
        "hs_task_type": TASK_TYPE.get(task.task_type, "TODO"),
    }


def _run(task: Callable[[], T]) -> T:
    return task()


def _history_to_activities(
    record_id: str, source: HistorySource, entries: Sequence[Any]
) -> list[SourceActivity]:
    """One activity per change of the value (or n per counter increase of n), at the change's time."""
    dated = sorted(
        ((m, str(e.value or "")) for e in entries if (m := _moment(e.timestamp)) is not None),
        key=lambda x: x[0],
    )
    out: list[SourceActivity] = []
    previous = 0.0
    for moment, value in dated:
        base = f"{record_id}:{source.property}:{epoch_ms(moment)}"
        if source.counter:
            try:
                count = float(value)
            except ValueError:
                continue
            increase, previous = int(max(0.0, count - previous)), count
            out += [
                _history_activity(record_id, source, moment, f"{base}:{n}", None) for n in range(increase)
            ]
        elif value:
            out.append(_history_activity(record_id, source, moment, base, value))
    return out


def _history_activity(
    record_id: str, source: HistorySource, moment: datetime, source_id: str, value: str | None
) -> SourceActivity:
    return SourceActivity(
        crm="hubspot",
        object_type=OBJECT,
        record_id=record_id,
        type=source.type,
        occurred_at=moment,
        source=f"hubspot:history:{source.property}",
        source_id=source_id,
        url=value if source.value_as == "url" else None,
        name=value if source.value_as == "name" else None,
    )


def _guard_json(api: T) -> T:
    """Make a 2xx answer whose body is not valid JSON fail as a transport error (retried).

    The SDK falls back to the raw text when `json.loads` fails and then builds an empty model
    from it: a truncated search page would read as "no more contacts" and a garbled owners page as
    "no owners", silently. Checked on the SDK's REST client, below deserialisation.
    """
    rest = api.api_client.rest_client  # type: ignore[attr-defined]
    original = rest.request

    def request(*args: Any, **kwargs: Any) -> Any:
        response = original(*args, **kwargs)
        data = getattr(response, "data", None)
        if kwargs.get("_preload_content", True) and data:
            try:
                json.loads(data)
            except ValueError:
                raise urllib3.exceptions.ProtocolError(
                    f"HubSpot answered {getattr(response, 'status', '?')} with a body that is not valid JSON "
                    f"({len(data)} bytes; truncated or garbled)"
                ) from None
        return response

    rest.request = request
    return api


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


def _chunks(items: list[T], size: int) -> list[list[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]

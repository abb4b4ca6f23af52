"""Activity sources and run-level behaviour over real HTTP: property history and counters as
dated activities, company fields read once per company per run, owners once per run, reads in
flight concurrently, and pacing that keeps under the emulator's real limits without a 429."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from connector.crm.pacing import Pacer, PacingLimits
from connector.errors import DailyLimitExhausted
from connector.sandbox.hubspot_app import HubSpotEmulator, RateLimits
from connector.sandbox.hubspot_store import HubSpotStore, default_contact_properties, hs_datetime
from connector.sandbox.server import ServerThread, serve_in_thread

from .portal import T0, UNTIL, add_contact, make_adapter, mapping, spec_checked


@pytest.fixture
def portal() -> Iterator[tuple[HubSpotStore, HubSpotEmulator, ServerThread]]:
    store = HubSpotStore()
    store.properties["contacts"] = default_contact_properties()
    emulator = HubSpotEmulator(store)
    with spec_checked(emulator) as server:
        yield store, emulator, server


def history_mapping():  # type: ignore[no-untyped-def]
    def edit(d):  # type: ignore[no-untyped-def]
        d["tier"] = "professional"
        d["activities"]["events"]["enabled"] = False
        d["activities"]["history"] = [
            {"property": "hs_analytics_num_page_views", "type": "page_view", "counter": True},
            {"property": "recent_conversion_event_name", "type": "form_submission", "value_as": "name"},
            {"property": "hs_analytics_last_url", "type": "page_view", "value_as": "url"},
        ]

    return mapping(edit)


def entry(value: str, moment) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"value": value, "timestamp": hs_datetime(moment), "sourceType": "ANALYTICS"}


def test_property_history_becomes_dated_activities(portal) -> None:
    store, _, server = portal
    add_contact(store, 1, T0)
    t1, t2, t3 = (T0 + timedelta(days=d) for d in (1, 2, 3))
    store.property_history["contacts"] = {
        "1": {
            # newest first, as HubSpot returns it
            "hs_analytics_num_page_views": [entry("4", t3), entry("1", t1)],
            "recent_conversion_event_name": [entry("Demo request", t2), entry("Ebook: RevOps", t1)],
            "hs_analytics_last_url": [entry("https://acme.example/pricing", t3)],
        }
    }
    activities = make_adapter(server, store, history_mapping()).activities_for(
        make_adapter(server, store, history_mapping()).read_contacts(["1"])
    )
    views = sorted((a.occurred_at, a.url or "") for a in activities if a.type == "page_view")
    assert views == [(t1, ""), (t3, ""), (t3, ""), (t3, ""), (t3, "https://acme.example/pricing")]
    forms = sorted((a.occurred_at, a.name) for a in activities if a.type == "form_submission")
    assert forms == [(t1, "Ebook: RevOps"), (t2, "Demo request")]
    assert len({a.source_id for a in activities}) == len(activities), "stable, distinct source ids"


def test_history_is_read_50_contacts_per_call(portal) -> None:
    store, _, server = portal
    for i in range(120):
        add_contact(store, 1000 + i, T0, hs_analytics_num_page_views="2")
    adapter = make_adapter(server, store, history_mapping())
    (feed,) = adapter.feeds(UNTIL)
    pages = list(feed.pull(None))
    reads = [r for r in store.requests if r.body and r.body.get("propertiesWithHistory")]
    assert [len(r.body["inputs"]) for r in reads] == [50, 50, 20]
    assert all(r.status == 200 for r in reads)
    views = [a for p in pages for a in p.activities if a.type == "page_view"]
    assert len(views) == 2 * 120  # the seeded counter value, dated at the contact's creation


def company_mapping():  # type: ignore[no-untyped-def]
    def edit(d):  # type: ignore[no-untyped-def]
        d["fields"]["employees"] = {"property": "numberofemployees", "type": "number", "object": "company"}
        d["fields"]["industry"] = {"property": "industry", "object": "company"}

    return mapping(edit)


def test_company_fields_come_from_the_primary_company_read_once_per_run(portal) -> None:
    store, _, server = portal
    store.engagements["companies"] = {
        "9001": {"hs_object_id": "9001", "numberofemployees": "250", "industry": "SOFTWARE"},
        "9002": {"hs_object_id": "9002", "numberofemployees": "12", "industry": "RETAIL"},
    }
    for cid, company in (("1", "9001"), ("2", "9001"), ("3", "9002")):
        add_contact(store, cid, T0)
        store.associate("contacts", cid, "companies", company)
    add_contact(store, "4", T0)  # no company
    adapter = make_adapter(server, store, company_mapping())
    records = {r.record_id: r for r in adapter.read_contacts(["1", "2", "3", "4"])}
    assert records["1"].fields["employees"] == 250
    assert records["2"].fields["industry"] == "SOFTWARE"
    assert records["3"].fields["employees"] == 12
    assert records["4"].fields["employees"] is None
    adapter.read_contacts(["1", "3"])  # same run: companies come from the cache
    company_reads = [r for r in store.requests if r.path == "/crm/v3/objects/companies/batch/read"]
    assert [sorted(i["id"] for i in r.body["inputs"]) for r in company_reads] == [["9001", "9002"]]
    adapter.start_run()
    adapter.read_contacts(["1"])
    assert len([r for r in store.requests if r.path == "/crm/v3/objects/companies/batch/read"]) == 2


def test_owners_are_read_once_per_run(portal) -> None:
    store, _, server = portal
    store.owners = [{"id": "1", "email": "a@x.example", "firstName": "A", "lastName": "B", "archived": False}]
    adapter = make_adapter(server, store)
    assert [o.id for o in adapter.owners()] == ["1"]
    assert [o.id for o in adapter.owners()] == ["1"]
    assert len([r for r in store.requests if r.path.startswith("/crm/v3/owners")]) == 2  # active + archived


def test_a_pages_reads_are_in_flight_together(portal) -> None:
    store, emulator, server = portal
    for i in range(10):
        add_contact(store, 1000 + i, T0)
    barrier = threading.Barrier(3)  # emails, meetings and calls associations at the same time
    emulator.faults._sleep = lambda _s: barrier.wait(timeout=5)
    emulator.faults.latency_by_prefix["/crm/v4/associations"] = 0.3
    adapter = make_adapter(server, store, workers=4)
    (contacts, *_events) = adapter.feeds(UNTIL)
    pages = list(contacts.pull(None))
    assert sum(len(p.records) for p in pages) == 10
    assert len([r for r in store.requests if "/associations/" in r.path]) == 3


class SharedClock:
    """One monotonic clock for the emulator's limiter and the pacer; the pacer's sleep moves it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def limited_portal(limits: RateLimits, clock: SharedClock) -> tuple[HubSpotStore, HubSpotEmulator]:
    store = HubSpotStore()
    store.properties["contacts"] = default_contact_properties()
    for i in range(1_200):
        add_contact(store, 1000 + i, T0 + timedelta(seconds=i))
    return store, HubSpotEmulator(store, monotonic=clock, limits=limits)


def test_pacing_keeps_a_whole_feed_under_the_emulators_real_limits() -> None:
    clock = SharedClock()
    store, emulator = limited_portal(RateLimits(ten_secondly=10, search_per_second=2), clock)
    pacer = Pacer(
        PacingLimits(ten_secondly=10, search_per_second=2, daily=None), monotonic=clock, sleep=clock.sleep
    )
    with serve_in_thread(emulator) as server:
        adapter = make_adapter(server, store, pacer=pacer)
        (contacts, *_events) = adapter.feeds(UNTIL)
        assert sum(len(p.records) for p in contacts.pull(None)) == 1_200
        adapter.owners()
    assert [r for r in store.requests if r.status == 429] == []
    assert pacer.stats.waited > 0  # it did have to wait: the limits were real


def test_a_lower_limit_in_hubspots_headers_is_honoured_from_the_first_answer() -> None:
    clock = SharedClock()
    store, emulator = limited_portal(RateLimits(ten_secondly=5), clock)
    pacer = Pacer(
        PacingLimits(ten_secondly=190, search_per_second=None, daily=None), monotonic=clock, sleep=clock.sleep
    )
    with serve_in_thread(emulator) as server:
        adapter = make_adapter(server, store, pacer=pacer)
        adapter.read_contacts([str(1000 + i) for i in range(1_200)])  # 12 batch reads
    assert [r for r in store.requests if r.status == 429] == []


def test_a_daily_429_in_a_read_ahead_page_stops_the_feed_with_daily_limit_exhausted(portal) -> None:
    store, emulator, server = portal
    for i in range(2_300):
        add_contact(store, 1000 + i, T0 + timedelta(seconds=i))
    adapter = make_adapter(server, store, workers=2)
    adapter.prefetch_pages = 1
    emulator.rate_limit(policy="DAILY", path_prefix="/crm/v4/associations", retry_after=None)
    (contacts, *_events) = adapter.feeds(UNTIL)
    with pytest.raises(DailyLimitExhausted):
        list(contacts.pull(None))
    assert [r.status for r in store.requests if r.status == 429] == [429]  # not retried

"""Pulls over real HTTP: every record exactly once whatever the timestamps, resumable cursors,
idle runs that cost one call per feed, and events with their own cursor.

The emulator here orders records that share a sort value arbitrarily (`tie_seed`): HubSpot never
promised id order among equal `lastmodifieddate` values, so the adapter must not rely on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.crm.hubspot import SEARCH_PAGE
from connector.sandbox.hubspot_app import HubSpotEmulator
from connector.sandbox.hubspot_search import MAX_RESULTS
from connector.sandbox.hubspot_store import HubSpotStore, hs_datetime
from connector.sandbox.server import ServerThread, serve_in_thread

from .portal import T0, UNTIL, add_contact, make_adapter, mapping, searches


@pytest.fixture
def portal() -> Iterator[tuple[HubSpotStore, HubSpotEmulator, ServerThread]]:
    store = HubSpotStore()
    emulator = HubSpotEmulator(store, tie_seed=11)
    with serve_in_thread(emulator) as server:
        yield store, emulator, server


CROWD = MAX_RESULTS + 2_000  # more contacts at one instant than a search can page through


@pytest.mark.slow
def test_more_contacts_at_one_lastmodifieddate_than_the_search_cap_are_each_read_exactly_once(portal) -> None:
    store, _, server = portal
    for i in range(CROWD):
        add_contact(store, 1000 + i, T0)
    adapter = make_adapter(server, store)
    ids = [r.record_id for page in adapter.pull_contacts(None, UNTIL) for r in page.records]
    assert len(ids) == CROWD
    assert set(ids) == set(store.contacts)
    # one crowded page, then that instant by id (one page per 200), then one search past it
    assert len(searches(store)) <= math.ceil(CROWD / SEARCH_PAGE) + 2
    assert all(r.status == 200 for r in store.requests), "never pages into the 10,000-result cap"
    assert all(r.body["after"] == "0" for r in searches(store)), "keyset paging, never offsets"


def _seed(store: HubSpotStore, groups: list[int]) -> None:
    store.contacts.clear()
    store.requests.clear()
    cid = 1000
    for second, size in enumerate(groups):
        for _ in range(size):
            add_contact(store, cid, T0 + timedelta(seconds=second))
            cid += 7  # gaps in the ids, as real portals have


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    groups=st.lists(st.integers(min_value=1, max_value=450), min_size=1, max_size=6),
    stop_after=st.integers(min_value=0, max_value=8),
)
def test_any_mix_of_shared_timestamps_is_read_once_even_across_a_stop_and_resume(
    portal, groups: list[int], stop_after: int
) -> None:
    """A run stopped after any page (crash, daily limit) resumes from that page's cursor."""
    store, _, server = portal
    _seed(store, groups)
    adapter = make_adapter(server, store)
    first: list[str] = []
    cursor: str | None = None
    for n, page in enumerate(adapter.pull_contacts(None, UNTIL)):
        if n == stop_after:
            break
        first += [r.record_id for r in page.records]
        cursor = page.cursor
    rest = [
        r.record_id for page in make_adapter(server, store).pull_contacts(cursor, UNTIL) for r in page.records
    ]
    ids = first + rest
    assert len(ids) == len(set(ids)), "a record was read twice"
    assert set(ids) == set(store.contacts), "a record was missed"


def test_an_idle_incremental_pull_costs_one_search_and_returns_nothing(portal) -> None:
    store, _, server = portal
    for i in range(450):  # a crowded last instant: the hardest cursor to resume cleanly
        add_contact(store, 1000 + i, T0 + timedelta(seconds=min(i, 5)))
    pages = list(make_adapter(server, store).pull_contacts(None, UNTIL))
    cursor = pages[-1].cursor
    store.requests.clear()
    again = list(make_adapter(server, store).pull_contacts(cursor, UNTIL))
    assert [r for p in again for r in p.records] == []
    assert len(searches(store)) == 1


def test_contacts_changed_after_until_wait_for_the_next_run(portal) -> None:
    store, _, server = portal
    add_contact(store, 1, T0)
    add_contact(store, 2, T0 + timedelta(hours=2))
    ids = [
        r.record_id
        for p in make_adapter(server, store).pull_contacts(None, T0 + timedelta(hours=1))
        for r in p.records
    ]
    assert ids == ["1"]


def test_feed_pages_hold_up_to_1000_contacts_so_one_associations_read_covers_a_page(portal) -> None:
    store, _, server = portal
    for i in range(2_300):
        add_contact(store, 1000 + i, T0 + timedelta(seconds=i))
    adapter = make_adapter(server, store)
    (feed,) = adapter.feeds(UNTIL)[:1]
    pages = list(feed.pull(None))
    sizes = [len(p.records) for p in pages]
    assert len(sizes) == 3
    assert sum(sizes) == 2_300
    assert max(sizes) <= 1000
    associations = [r for r in store.requests if "/associations/" in r.path]
    assert all(len(r.body["inputs"]) <= 1000 for r in associations)
    assert len(associations) == 3 * len({"emails", "meetings", "calls"})


# --------------------------------------------------------------------------- events


def _events(store: HubSpotStore, count: int, *, same_instant: int = 0) -> None:
    store.events = []
    for i in range(count):
        moment = T0 + timedelta(minutes=i if i < count - same_instant else count)
        store.events.append(
            {
                "id": f"ev{i:05d}",
                "eventType": "e_visited_page",
                "objectType": "contact",
                "objectId": str(1000 + i % 40),
                "occurredAt": hs_datetime(moment),
                "properties": {"hs_url": f"https://acme.example/p{i}"},
            }
        )


def _event_pages(adapter, cursor: str | None) -> Iterator[tuple[list, str | None]]:  # type: ignore[no-untyped-def]
    return adapter._event_pages("e_visited_page", cursor, UNTIL)


def test_events_are_read_once_across_pages_a_resume_and_ties_at_the_boundary(portal) -> None:
    store, _, server = portal
    _events(store, 530, same_instant=230)
    adapter = make_adapter(server, store)
    first, cursor = [], None
    for n, (batch, next_cursor) in enumerate(_event_pages(adapter, None)):
        if n == 3:  # stop in the middle of the 230 events sharing one instant
            break
        first += [a.source_id for a in batch]
        cursor = next_cursor
    rest = [a.source_id for batch, _ in _event_pages(make_adapter(server, store), cursor) for a in batch]
    ids = first + rest
    assert len(ids) == len(set(ids)) == 530
    assert {a.url for batch, _ in _event_pages(make_adapter(server, store), None) for a in batch} >= {
        "https://acme.example/p0"
    }


def test_an_idle_events_pull_costs_one_call_per_event_type(portal) -> None:
    """One call, as long as at most a page of events (100) shares the last millisecond read."""
    store, _, server = portal
    _events(store, 250, same_instant=60)
    adapter = make_adapter(server, store)
    cursor = [c for _, c in _event_pages(adapter, None)][-1]
    store.requests.clear()
    assert list(_event_pages(make_adapter(server, store), cursor)) == []
    assert [r.path for r in store.requests] == ["/events/v3/events"]


def test_a_portal_without_the_events_api_gets_a_message_naming_the_setting(portal) -> None:
    from connector.errors import ConfigError

    store, _, server = portal
    store.events_api = False
    with pytest.raises(ConfigError, match=r"activities\.events\.enabled: false"):
        list(_event_pages(make_adapter(server, store), None))


def test_feeds_follow_the_mapping_and_the_search_lag() -> None:
    store = HubSpotStore()
    with serve_in_thread(HubSpotEmulator(store)) as server:
        adapter = make_adapter(
            server, store, mapping(lambda d: d["activities"]["events"].update(enabled=False))
        )
        assert [f.scope for f in adapter.feeds(UNTIL)] == ["hubspot:contacts:lastmodifieddate"]
        enterprise = make_adapter(server, store)
        assert [f.scope for f in enterprise.feeds(UNTIL)][1:] == [
            "hubspot:events:e_visited_page",
            "hubspot:events:e_submitted_form",
            "hubspot:events:pe4000000_chat_started",
        ]

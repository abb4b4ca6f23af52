"""Emulator knobs for benchmarks and hard cases: arbitrary order among equal sort values, a
seeded 5xx rate, a portal without the Events API, all-or-nothing batches, date properties at
midnight, companies, and a light request log. Every SDK exchange here is spec-checked (conftest)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.companies import BatchReadInputSimplePublicObjectId as CompanyBatchRead
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    PublicObjectSearchRequest,
)
from hubspot.events import ApiException as EventsApiException
from werkzeug.test import Client

from connector.sandbox.hubspot_app import HubSpotEmulator, RateLimits
from connector.sandbox.hubspot_store import HubSpotStore, property_definition
from connector.sandbox.server import ServerThread

from .seed import TOKEN, add_contact, add_contacts, new_store

T = 5
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def search_ids(client: Client, after: int = 0, limit: int = 20) -> list[str]:
    body = {
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "limit": limit,
        "after": str(after),
    }
    answer = client.post("/crm/v3/objects/contacts/search", json=body, headers=AUTH)
    return [r["id"] for r in answer.json["results"]]


def test_a_tie_seed_orders_equal_values_arbitrarily_but_stably() -> None:
    store = new_store()
    add_contacts(store, range(1, 61), lastmodifieddate="2026-03-01T00:00:00.000Z")
    shuffled = Client(HubSpotEmulator(store, tie_seed=3))
    first = search_ids(shuffled, 0, 60)
    assert sorted(first, key=int) != first  # not id order
    assert search_ids(shuffled, 0, 60) == first  # the same on every call
    assert search_ids(shuffled, 0) + search_ids(shuffled, 20) + search_ids(shuffled, 40) == first
    assert search_ids(Client(HubSpotEmulator(store)), 0, 60) == sorted(first, key=int)  # default: by id


def statuses(emulator: HubSpotEmulator, n: int) -> list[int]:
    client = Client(emulator)
    return [client.get("/crm/v3/owners", headers=AUTH).status_code for _ in range(n)]


def test_a_seeded_5xx_rate_is_the_same_storm_on_every_run() -> None:
    runs = []
    for _ in range(2):
        emulator = HubSpotEmulator(new_store())
        emulator.random_failures(0.3, seed=5)
        runs.append(statuses(emulator, 200))
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 503}
    assert 40 <= runs[0].count(503) <= 80
    emulator.random_failures(0.0, seed=5)
    assert set(statuses(emulator, 20)) == {200}


def test_random_failures_answer_hubspots_error_shape(hubspot: HubSpot, emulator: HubSpotEmulator) -> None:
    emulator.random_failures(1.0, seed=1, path_prefix="/crm/v3/owners")
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the owners package's own ApiException
        hubspot.crm.owners.owners_api.get_page(_request_timeout=T)
    assert getattr(raised.value, "status", None) == 503
    assert json.loads(raised.value.body)["category"] == "INTERNAL_ERROR"  # type: ignore[attr-defined]


def test_a_portal_without_the_events_api_answers_403(hubspot: HubSpot, store: HubSpotStore) -> None:
    store.events_api = False
    for call in (
        lambda: hubspot.events.events_api.get_page(object_type="contact", _request_timeout=T),
        lambda: hubspot.events.events_api.get_types(_request_timeout=T),
    ):
        with pytest.raises(EventsApiException) as raised:
            call()
        assert raised.value.status == 403
        assert json.loads(raised.value.body)["category"] == "MISSING_SCOPES"


def update(hubspot: HubSpot, inputs: list[dict[str, Any]]) -> Any:
    return hubspot.crm.contacts.batch_api.update(
        batch_input_simple_public_object_batch_input=BatchInputSimplePublicObjectBatchInput(inputs=inputs),
        _request_timeout=T,
    )


def test_all_or_nothing_batches_fail_whole_and_apply_nothing(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contacts(store, range(1, 4), lifecyclestage="lead")
    store.batch_all_or_nothing = True
    with pytest.raises(ApiException) as raised:
        update(
            hubspot,
            [
                {"id": "1", "properties": {"hs_lead_status": "OPEN"}},
                {"id": "2", "properties": {"hs_lead_status": "NOPE"}},
            ],
        )
    assert raised.value.status == 400
    assert "NOPE" in json.loads(raised.value.body)["message"]
    assert store.contacts["1"].get("hs_lead_status") is None


def test_date_properties_take_midnight_utc_only(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contact(store, 1)
    store.properties["contacts"]["renewal"] = property_definition("renewal", "Renewal", "date", "date")
    answer = update(
        hubspot,
        [{"id": "1", "properties": {"renewal": "2026-03-01T15:30:00Z"}}],
    )
    assert answer.errors[0].errors[0].code == "INVALID_DATE"
    update(hubspot, [{"id": "1", "properties": {"renewal": "2026-03-01"}}])
    assert store.contacts["1"]["renewal"] == "2026-03-01"


def test_companies_and_engagements_have_property_catalogues(hubspot: HubSpot, store: HubSpotStore) -> None:
    store.engagements["companies"] = {"9": {"hs_object_id": "9", "name": "Acme", "numberofemployees": "120"}}
    found = hubspot.crm.companies.batch_api.read(
        batch_read_input_simple_public_object_id=CompanyBatchRead(
            inputs=[{"id": "9"}, {"id": "10"}], properties=["numberofemployees"], properties_with_history=[]
        ),
        _request_timeout=T,
    )
    assert found.results[0].properties["numberofemployees"] == "120"
    assert found.errors[0].context["ids"] == ["10"]
    for object_type, name, kind in (
        ("companies", "numberofemployees", "number"),
        ("emails", "hs_email_direction", "enumeration"),
        ("meetings", "hs_timestamp", "datetime"),
    ):
        definition = hubspot.crm.properties.core_api.get_by_name(object_type, name, _request_timeout=T)
        assert definition.type == kind


def test_rate_limit_headers_on_answers_but_not_on_search(store: HubSpotStore) -> None:
    emulator = HubSpotEmulator(store, limits=RateLimits(ten_secondly=50, daily=1000))
    with ServerThread(emulator) as running:
        client = HubSpot(access_token=TOKEN, host=running.url)
        _, _, headers = client.crm.owners.owners_api.get_page_with_http_info(_request_timeout=T)
        assert headers["X-HubSpot-RateLimit-Max"] == "50"
        assert headers["X-HubSpot-RateLimit-Remaining"] == "49"
        assert headers["X-HubSpot-RateLimit-Daily-Remaining"] == "999"
        _, _, searched = client.crm.contacts.search_api.do_search_with_http_info(
            public_object_search_request=PublicObjectSearchRequest(limit=1), _request_timeout=T
        )
        assert not [h for h in searched if h.lower().startswith("x-hubspot-ratelimit")]


def test_a_light_log_keeps_status_and_time_but_no_bodies(store: HubSpotStore) -> None:
    store.log_bodies = False
    ticks = iter(range(100, 200))
    emulator = HubSpotEmulator(store, monotonic=lambda: float(next(ticks)))
    Client(emulator).get("/crm/v3/owners", headers=AUTH)
    (entry,) = store.requests
    assert (entry.status, entry.body, entry.response) == (200, None, None)
    assert entry.at >= 100

"""Auth, error shapes, the request log, fault knobs and rate limits."""

from __future__ import annotations

import json
import uuid

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException, PublicObjectSearchRequest
from hubspot.crm.owners import ApiException as OwnersApiException
from werkzeug.test import Client

from connector.sandbox.hubspot_app import HubSpotEmulator, RateLimits
from connector.sandbox.hubspot_store import HubSpotStore
from connector.sandbox.server import ServerThread

from .seed import TOKEN, add_contact, new_store

T = 5
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def search(client: HubSpot) -> object:
    request = PublicObjectSearchRequest(filter_groups=[], sorts=[], properties=["email"], limit=10, after="0")
    return client.crm.contacts.search_api.do_search(public_object_search_request=request, _request_timeout=T)


def owners(client: HubSpot) -> object:
    return client.crm.owners.owners_api.get_page(_request_timeout=T)


# --- auth and errors --------------------------------------------------------------------------------


def test_a_wrong_token_is_a_401_in_hubspots_error_shape(server: ServerThread, store: HubSpotStore) -> None:
    stranger = HubSpot(access_token="not-the-token", host=server.url)
    with pytest.raises(ApiException) as raised:
        search(stranger)
    assert raised.value.status == 401
    body = json.loads(raised.value.body)
    assert body["status"] == "error"
    assert body["category"] == "INVALID_AUTHENTICATION"
    assert uuid.UUID(body["correlationId"])
    assert raised.value.headers["Content-Type"].startswith("application/json")
    assert store.requests[-1].status == 401


def test_no_authorization_header_is_a_401(raw: Client) -> None:
    response = raw.get("/crm/v3/owners")
    assert response.status_code == 401
    assert response.json["message"].startswith("Authentication credentials not found")


def test_unknown_routes_and_methods_answer_hubspot_json(raw: Client) -> None:
    missing = raw.get("/crm/v3/objects/contacts/1/nothing-here", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json["category"] == "OBJECT_NOT_FOUND"
    wrong_method = raw.delete("/crm/v3/owners", headers=AUTH)
    assert wrong_method.status_code == 405
    assert wrong_method.mimetype == "application/json"


def test_malformed_json_is_a_validation_error_and_is_logged(raw: Client, store: HubSpotStore) -> None:
    response = raw.post(
        "/crm/v3/objects/contacts/batch/update",
        data='{"inputs": [',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json["category"] == "VALIDATION_ERROR"
    assert response.json["message"].startswith("Invalid input JSON on line 1")
    assert store.requests[-1].body == '{"inputs": ['


def test_an_empty_search_body_uses_the_documented_defaults(raw: Client, store: HubSpotStore) -> None:
    for i in range(1, 13):
        add_contact(store, i)
    response = raw.post("/crm/v3/objects/contacts/search", json={}, headers=AUTH)
    assert response.status_code == 200
    assert response.json["total"] == 12
    assert len(response.json["results"]) == 10  # default limit
    assert response.json["paging"]["next"]["after"] == "10"


def test_unknown_object_types_are_rejected(raw: Client) -> None:
    response = raw.post("/crm/v3/objects/widgets/search", json={}, headers=AUTH)
    assert response.status_code == 400
    assert "widgets" in response.json["message"]


# --- request log ----------------------------------------------------------------------------------


def test_every_request_is_logged_with_its_outcome(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contact(store, 1)
    search(hubspot)
    hubspot.crm.owners.owners_api.get_page(limit=5, archived=False, _request_timeout=T)
    hubspot.crm.contacts.batch_api.update(
        batch_input_simple_public_object_batch_input={
            "inputs": [{"id": "1", "properties": {"hs_lead_status": "NEW"}}]
        },
        _request_timeout=T,
    )
    logged = [(r.method, r.path, r.status) for r in store.requests]
    assert logged == [
        ("POST", "/crm/v3/objects/contacts/search", 200),
        ("GET", "/crm/v3/owners", 200),  # the SDK's trailing slash is dropped
        ("POST", "/crm/v3/objects/contacts/batch/update", 200),
    ]
    assert store.requests[0].body["limit"] == 10
    assert store.requests[1].query == {"limit": ["5"], "archived": ["False"]}
    assert store.requests[0].response["total"] == 1
    assert [r.path for r in store.writes()] == ["/crm/v3/objects/contacts/batch/update"]


# --- fault knobs -------------------------------------------------------------------------------------


def test_forced_429s_carry_policy_and_retry_after_then_clear(
    hubspot: HubSpot, emulator: HubSpotEmulator, store: HubSpotStore
) -> None:
    emulator.rate_limit(times=2, path_prefix="/crm/v3/objects/contacts/search", retry_after=3)
    owners(hubspot)  # other paths are unaffected
    for _ in range(2):
        with pytest.raises(ApiException) as raised:
            search(hubspot)
        assert raised.value.status == 429
        assert raised.value.headers["Retry-After"] == "3"
        body = json.loads(raised.value.body)
        assert body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert body["message"] == "You have reached your ten_secondly_rolling limit."
        assert body["errorType"] == "RATE_LIMIT"
    search(hubspot)
    assert emulator.faults.pending() == []
    assert [r.status for r in store.requests] == [200, 429, 429, 200]


def test_the_sdk_itself_retries_a_get_that_got_429_with_retry_after(
    hubspot: HubSpot, emulator: HubSpotEmulator, store: HubSpotStore
) -> None:
    # urllib3's default Retry honours Retry-After on 429 for GETs (never for POST/PATCH): an adapter
    # that owns retries must turn the SDK's off. Retry-After 0 keeps this test from sleeping.
    emulator.rate_limit(times=1, retry_after=0, path_prefix="/crm/v3/owners")
    owners(hubspot)
    assert [r.status for r in store.requests] == [429, 200]


def test_forced_server_errors(hubspot: HubSpot, emulator: HubSpotEmulator) -> None:
    emulator.fail(502, times=1, method="GET")
    with pytest.raises(OwnersApiException) as raised:
        owners(hubspot)
    assert raised.value.status == 502
    assert json.loads(raised.value.body)["category"] == "INTERNAL_ERROR"
    owners(hubspot)


def test_forced_html_error_pages(hubspot: HubSpot, emulator: HubSpotEmulator, store: HubSpotStore) -> None:
    emulator.fail(502, body=b"<html><body>502 Bad Gateway</body></html>")
    with pytest.raises(OwnersApiException) as raised:
        owners(hubspot)
    assert raised.value.status == 502
    assert raised.value.headers["Content-Type"].startswith("text/html")
    assert "Bad Gateway" in raised.value.body
    assert store.requests[-1].status == 502


def test_latency_is_slept_through_the_injected_sleep(
    hubspot: HubSpot, emulator: HubSpotEmulator, sleeps: list[float]
) -> None:
    emulator.faults.latency = 0.25
    emulator.faults.latency_by_prefix = {"/crm/v3/owners": 1.0, "/crm": 0.5}
    owners(hubspot)
    search(hubspot)
    assert sleeps == [1.25, 0.75]  # the longest matching prefix wins


# --- real rate limits (opt-in, for benchmarks) ---------------------------------------------------


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ten_secondly_limit_rolls(store: HubSpotStore) -> None:
    ticker = Ticker()
    emulator = HubSpotEmulator(store, monotonic=ticker, limits=RateLimits(ten_secondly=3))
    with ServerThread(emulator) as running:
        client = HubSpot(access_token=TOKEN, host=running.url)
        api = client.crm.owners.owners_api
        remaining = [
            api.get_page_with_http_info(_request_timeout=T)[2]["X-HubSpot-RateLimit-Remaining"]
            for _ in range(3)
        ]
        assert remaining == ["2", "1", "0"]
        with pytest.raises(OwnersApiException) as raised:
            owners(client)
        assert raised.value.status == 429
        assert json.loads(raised.value.body)["policyName"] == "TEN_SECONDLY_ROLLING"
        ticker.now += 10
        owners(client)


def test_search_has_its_own_per_second_limit(store: HubSpotStore) -> None:
    ticker = Ticker()
    emulator = HubSpotEmulator(
        store, monotonic=ticker, limits=RateLimits(ten_secondly=2, search_per_second=2)
    )
    with ServerThread(emulator) as running:
        client = HubSpot(access_token=TOKEN, host=running.url)
        search(client)
        search(client)
        with pytest.raises(ApiException) as raised:
            search(client)
        assert json.loads(raised.value.body)["policyName"] == "SECONDLY"
        owners(client)  # search calls did not use up the 10-second bucket
        owners(client)
        ticker.now += 1
        search(client)


def test_daily_limit(store: HubSpotStore) -> None:
    emulator = HubSpotEmulator(store, limits=RateLimits(daily=1))
    with ServerThread(emulator) as running:
        client = HubSpot(access_token=TOKEN, host=running.url)
        owners(client)
        with pytest.raises(OwnersApiException) as raised:
            owners(client)
        assert json.loads(raised.value.body)["policyName"] == "DAILY"


def test_a_store_without_a_catalogue_gets_hubspots_defaults() -> None:
    store = new_store()
    store.properties.clear()
    HubSpotEmulator(store)
    assert store.properties["contacts"]["lifecyclestage"]["type"] == "enumeration"

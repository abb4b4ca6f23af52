"""The HubSpot adapter against the emulator over real HTTP, plus its error table and retry policy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import urllib3
from hubspot import HubSpot
from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.crm.owners.exceptions import ApiException as OwnersApiException
from urllib3.util.retry import Retry

from connector.crm.hubspot import HubSpotAdapter, translate
from connector.crm.retry import RetryPolicy
from connector.errors import (
    AuthError,
    ConfigError,
    DailyLimitExhausted,
    FatalError,
    RateLimited,
    TransientError,
)
from connector.mapping.schema import HubSpotMapping
from connector.model import WriteIntent
from connector.sandbox.hubspot_app import HubSpotEmulator
from connector.sandbox.hubspot_store import HubSpotStore, hs_datetime
from connector.sandbox.server import ForcedResponse, ServerThread, serve_in_thread

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def mapping() -> HubSpotMapping:
    import yaml

    return HubSpotMapping(**yaml.safe_load((MAPPINGS / "hubspot.yaml").read_text()))


def seed_store(n: int, *, same_instant: int = 0) -> HubSpotStore:
    """`n` contacts with distinct lastmodifieddate, the last `same_instant` of them sharing one."""
    store = HubSpotStore()
    for i in range(n):
        cid = str(1000 + i)
        moment = T0 + timedelta(seconds=i) if i < n - same_instant else T0 + timedelta(days=1)
        store.contacts[cid] = {
            "hs_object_id": cid,
            "email": f"person{i}@acme.example",
            "createdate": hs_datetime(T0 - timedelta(days=30)),
            "lastmodifieddate": hs_datetime(moment),
            "lifecyclestage": "subscriber",
            "jobtitle": "Engineer",
        }
    store.owners = [
        {
            "id": "1",
            "email": "a@x.example",
            "firstName": "Ann",
            "lastName": "A",
            "userId": 11,
            "userIdIncludingInactive": 11,
            "type": "PERSON",
            "teams": [],
            "archived": False,
            "createdAt": hs_datetime(T0),
            "updatedAt": hs_datetime(T0),
        },
        {
            "id": "2",
            "email": "b@x.example",
            "firstName": "Bo",
            "lastName": "B",
            "userId": 12,
            "userIdIncludingInactive": 12,
            "type": "PERSON",
            "teams": [],
            "archived": True,
            "createdAt": hs_datetime(T0),
            "updatedAt": hs_datetime(T0),
        },
    ]
    return store


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_adapter(server: ServerThread, store: HubSpotStore, sleeps: list[float]) -> HubSpotAdapter:
    client = HubSpot(
        access_token=store.access_token, host=server.url, retry=Retry(total=0, raise_on_status=False)
    )
    policy = RetryPolicy(max_attempts=4, initial_wait=0.5, max_wait=30, sleep=sleeps.append)
    return HubSpotAdapter(client, mapping(), policy, timeout=10)


@pytest.fixture
def small() -> Iterator[tuple[HubSpotStore, HubSpotEmulator, ServerThread]]:
    store = seed_store(250)
    app = HubSpotEmulator(store)
    with serve_in_thread(app) as server:
        yield store, app, server


# --------------------------------------------------------------------------- pulling


def test_full_pull_reads_every_contact_once_in_modified_order(small, sleeps) -> None:
    store, _, server = small
    adapter = make_adapter(server, store, sleeps)
    pages = list(adapter.pull_contacts(None))
    ids = [r.record_id for p in pages for r in p.records]
    assert sorted(ids) == sorted(store.contacts)
    assert len(ids) == len(set(ids))
    stamps = [r.modified_at for p in pages for r in p.records]
    assert stamps == sorted(stamps)
    assert pages[-1].max_modified == max(stamps)
    searches = [r for r in store.requests if r.path.endswith("/search")]
    assert len(searches) == 2  # 250 contacts at 200 a page
    assert set(searches[0].body["properties"]) == set(adapter.read_properties)


def test_incremental_pull_reads_only_what_changed_since_the_cursor(small, sleeps) -> None:
    store, _, server = small
    adapter = make_adapter(server, store, sleeps)
    cursor = T0 + timedelta(seconds=240)
    ids = [r.record_id for p in adapter.pull_contacts(cursor) for r in p.records]
    assert ids == [str(1000 + i) for i in range(240, 250)]  # >= cursor: the record at the cursor comes again


def test_salesforce_links_in_15_character_form_are_read_as_18(small, sleeps) -> None:
    store, _, server = small
    store.contacts["1000"]["salesforceleadid"] = "00QD000000IqhSL"
    store.contacts["1001"]["salesforcecontactid"] = "003D000000IqhSLIAZ"
    store.contacts["1002"]["salesforceleadid"] = "n/a"
    adapter = make_adapter(server, store, sleeps)
    links = {r.record_id: r.links for p in adapter.pull_contacts(None) for r in p.records}
    assert links["1000"] == (("salesforce", "Lead", "00QD000000IqhSLMAZ"),)
    assert links["1001"] == (("salesforce", "Contact", "003D000000IqhSLIAZ"),)
    assert links["1002"] == ()


@pytest.mark.slow
def test_pull_past_the_10k_search_cap_misses_nothing_and_repeats_nothing(sleeps) -> None:
    store = seed_store(10_450, same_instant=300)
    with serve_in_thread(HubSpotEmulator(store)) as server:
        adapter = make_adapter(server, store, sleeps)
        ids = [r.record_id for p in adapter.pull_contacts(None) for r in p.records]
    assert len(ids) == len(set(ids)) == 10_450
    assert not [r for r in store.requests if r.status == 400], "never pages into the 10k cap"


def test_owners_include_archived_ones_marked_inactive(small, sleeps) -> None:
    store, _, server = small
    owners = {o.id: o for o in make_adapter(server, store, sleeps).owners()}
    assert owners["1"].active is True
    assert owners["2"].active is False
    assert owners["1"].name == "Ann A"


def test_engagements_are_read_in_bulk_and_filtered(small, sleeps) -> None:
    store, _, server = small
    store.engagements["emails"] = {
        "5001": {
            "hs_object_id": "5001",
            "hs_timestamp": hs_datetime(T0),
            "hs_email_direction": "INCOMING_EMAIL",
        },
        "5002": {"hs_object_id": "5002", "hs_timestamp": hs_datetime(T0), "hs_email_direction": "EMAIL"},
    }
    store.engagements["meetings"] = {"6001": {"hs_object_id": "6001", "hs_timestamp": hs_datetime(T0)}}
    store.associate("contacts", "1000", "emails", "5001")
    store.associate("contacts", "1000", "emails", "5002")
    store.associate("contacts", "1001", "meetings", "6001")
    adapter = make_adapter(server, store, sleeps)
    found = adapter.engagement_activities([str(1000 + i) for i in range(250)])
    assert sorted((a.record_id, a.type) for a in found) == [("1000", "email_reply"), ("1001", "meeting")]
    assoc_calls = [r for r in store.requests if "/associations/" in r.path]
    assert len(assoc_calls) == 3  # one per engagement source, all 250 contacts in each
    assert all(len(r.body["inputs"]) == 250 for r in assoc_calls)


# --------------------------------------------------------------------------- writing


def intent(record_id: str, **changes: str) -> WriteIntent:
    return WriteIntent(
        crm="hubspot",
        object_type="contacts",
        record_id=record_id,
        person_id="p",
        changes=changes,
        before={k: None for k in changes},
        reason="test",
    )


def test_writes_go_in_batches_of_100_with_only_the_changed_properties(small, sleeps) -> None:
    store, _, server = small
    adapter = make_adapter(server, store, sleeps)
    intents = [intent(str(1000 + i), lifecyclestage="lead") for i in range(250)]
    results = adapter.apply(intents)
    assert all(r.ok for r in results)
    updates = store.writes()
    assert [len(r.body["inputs"]) for r in updates] == [100, 100, 50]
    assert all(set(i["properties"]) == {"lifecyclestage"} for r in updates for i in r.body["inputs"])
    assert {store.contacts[str(1000 + i)]["lifecyclestage"] for i in range(250)} == {"lead"}


def test_a_rejected_record_is_reported_with_hubspots_message_and_the_rest_are_written(small, sleeps) -> None:
    store, _, server = small
    adapter = make_adapter(server, store, sleeps)
    results = adapter.apply(
        [
            intent("1000", lifecyclestage="lead"),
            intent("1001", hs_lead_status="NOT_A_STATUS"),
            intent("1002", lifecyclestage="marketingqualifiedlead"),
        ]
    )
    by_id = {r.intent.record_id: r for r in results}
    assert by_id["1000"].ok
    assert by_id["1002"].ok
    assert not by_id["1001"].ok
    assert by_id["1001"].error
    assert "NOT_A_STATUS" in by_id["1001"].error or "valid" in by_id["1001"].error.lower()
    assert store.contacts["1002"]["lifecyclestage"] == "marketingqualifiedlead"
    assert store.contacts["1001"].get("hs_lead_status") in (None, "")


def test_the_adapter_refuses_to_write_a_property_the_mapping_does_not_own(small, sleeps) -> None:
    store, _, server = small
    adapter = make_adapter(server, store, sleeps)
    with pytest.raises(FatalError, match="does not own"):
        adapter.apply([intent("1000", jobtitle="CEO")])
    assert store.writes() == []


# --------------------------------------------------------------------------- faults


def test_a_429_is_retried_after_the_wait_hubspot_asked_for(small, sleeps) -> None:
    store, app, server = small
    app.faults.force(
        ForcedResponse(
            status=429,
            path_prefix="/crm/v3/owners",
            body={
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "policyName": "TEN_SECONDLY_ROLLING",
                "correlationId": "x",
            },
            headers={"Retry-After": "2"},
            times=2,
        )
    )
    owners = make_adapter(server, store, sleeps).owners()
    assert len(owners) == 2
    assert sleeps == [2.0, 2.0]
    assert app.faults.pending() == []


def test_a_daily_429_stops_without_retrying(small, sleeps) -> None:
    store, app, server = small
    app.faults.force(
        ForcedResponse(
            status=429,
            path_prefix="/crm/v3/owners",
            body={
                "status": "error",
                "message": "You have reached your daily limit.",
                "errorType": "RATE_LIMIT",
                "policyName": "DAILY",
                "correlationId": "x",
            },
        )
    )
    with pytest.raises(DailyLimitExhausted):
        make_adapter(server, store, sleeps).owners()
    assert sleeps == []


def test_a_wrong_token_is_an_auth_error_that_names_the_setting(small, sleeps) -> None:
    _store, _, server = small
    client = HubSpot(access_token="wrong-token", host=server.url, retry=Retry(total=0))
    adapter = HubSpotAdapter(client, mapping(), RetryPolicy(sleep=sleeps.append), timeout=10)
    with pytest.raises(AuthError, match="CONNECTOR_HUBSPOT_TOKEN"):
        adapter.owners()
    assert sleeps == []


def test_5xx_storms_are_retried_then_surface_as_transient(small, sleeps) -> None:
    store, app, server = small
    app.faults.force(
        ForcedResponse(status=502, path_prefix="/crm/v3/owners", body={"message": "bad gateway"}, times=10)
    )
    with pytest.raises(TransientError):
        make_adapter(server, store, sleeps).owners()
    assert len(sleeps) == 3  # 4 attempts, 3 pauses
    assert all(0 < s <= 30 for s in sleeps)


# --------------------------------------------------------------------------- error table


class FakeApiException(Exception):
    def __init__(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"({status})")
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.reason = "reason"


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "fragment"),
    [
        pytest.param(
            401, '{"message":"expired","category":"INVALID_AUTHENTICATION"}', {}, AuthError, "401", id="401"
        ),
        pytest.param(
            403, '{"message":"scope","category":"MISSING_SCOPES"}', {}, AuthError, "scope", id="403"
        ),
        pytest.param(
            429,
            '{"policyName":"TEN_SECONDLY_ROLLING"}',
            {"Retry-After": "3"},
            RateLimited,
            "TEN",
            id="429-ten",
        ),
        pytest.param(429, '{"policyName":"SECONDLY"}', {}, RateLimited, "SECONDLY", id="429-search"),
        pytest.param(429, '{"policyName":"DAILY"}', {}, DailyLimitExhausted, "daily", id="429-daily"),
        pytest.param(500, "<html>oops</html>", {}, TransientError, "temporary", id="500-html"),
        pytest.param(503, "", {}, TransientError, "503", id="503"),
        pytest.param(423, '{"message":"locked"}', {}, TransientError, "423", id="423-locked"),
        pytest.param(
            400,
            '{"message":"bad input","category":"VALIDATION_ERROR"}',
            {},
            FatalError,
            "VALIDATION",
            id="400",
        ),
        pytest.param(0, "", {}, ConfigError, "TLS", id="ssl"),
    ],
)
def test_error_table(status: int, body: str, headers: dict[str, str], expected: type, fragment: str) -> None:
    error = translate(FakeApiException(status, body, headers), "doing a thing")
    assert type(error) is expected
    assert fragment.lower() in error.message.lower()
    if isinstance(error, RateLimited):
        assert error.retry_after == (3.0 if headers else 1.0 if 'SECONDLY"' in body else 10.0)


def test_every_sdk_package_exception_is_recognised() -> None:
    for cls in (ContactsApiException, OwnersApiException):
        exc = cls(status=401, reason="Unauthorized")
        exc.body = '{"message":"nope"}'
        assert isinstance(translate(exc, "x"), AuthError)


def test_transport_errors_are_transient() -> None:
    assert isinstance(translate(urllib3.exceptions.ProtocolError("reset"), "x"), TransientError)
    assert isinstance(
        translate(urllib3.exceptions.ReadTimeoutError(None, "/", "timed out"), "x"), TransientError
    )


def test_tokens_in_error_bodies_are_redacted() -> None:
    body = (
        '{"message":"Authorization: Bearer pat-na1-12345678-aaaa-bbbb was rejected",'
        '"category":"VALIDATION_ERROR"}'
    )
    error = translate(FakeApiException(400, body), "x")
    assert "pat-na1-12345678" not in error.message
    assert "pat-na1-12345678" not in (error.detail or "")


def test_writes_between_pages_never_make_the_pull_skip_records(sleeps) -> None:
    """Writing a page's contacts moves them to the end of a lastmodifieddate-sorted result; offset
    paging would then skip as many records as were written. Keyset paging must not."""
    store = seed_store(650)
    with serve_in_thread(HubSpotEmulator(store)) as server:
        adapter = make_adapter(server, store, sleeps)
        until = datetime.now(UTC)
        seen: list[str] = []
        for page in adapter.pull_contacts(None, until):
            seen += [r.record_id for r in page.records]
            results = adapter.apply([intent(r.record_id, lifecyclestage="lead") for r in page.records])
            assert all(r.ok for r in results)
    assert sorted(seen) == sorted(store.contacts)
    assert len(seen) == len(set(seen))

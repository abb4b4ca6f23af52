"""Salesforce adapter over real HTTPS against the emulator: paging, escaping, writes, errors, quota."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sf_fixtures import T0, add_lead, add_user
from simple_salesforce.format import format_soql

from connector.crm.salesforce import SfCursor, translate
from connector.errors import (
    ApiShareReached,
    AuthError,
    ConfigError,
    DailyLimitExhausted,
    FatalError,
    TransientError,
)
from connector.model import WriteIntent
from connector.sandbox.salesforce_soql import Compare, Like, SoqlError, parse

# --------------------------------------------------------------------------- escaping

ANY_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",)),  # any code point a JSON string can carry
    max_size=60,
)


@given(value=ANY_TEXT)
@settings(max_examples=400)
def test_format_soql_values_reach_the_parser_as_the_same_literal(value: str) -> None:
    """Quotes, backslashes, newlines, unicode: format_soql's escaping is undone exactly by the parser."""
    query = parse(format_soql("SELECT Id FROM Lead WHERE Company = {}", value))
    assert isinstance(query.where, Compare)
    assert query.where.literal.value == value


@given(value=ANY_TEXT)
@settings(max_examples=200)
def test_like_escaping_matches_the_value_itself_and_nothing_wider(value: str) -> None:
    query = parse(format_soql("SELECT Id FROM Lead WHERE Company LIKE '{:like}'", value))
    assert isinstance(query.where, Like)
    assert query.where.pattern.match(value)
    assert not query.where.pattern.match(value + "x")


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Id FROM Lead WHERE Company = 'O'Brien'",  # unescaped quote
        "SELECT Id FROM Lead WHERE Company = 'a\\qb'",  # a backslash outside the documented escapes
        "SELECT Id FROM Lead WHERE Company = 'open",  # unterminated
        "SELECT Id, FROM Lead",
        "SELECT Owner.Name FROM Lead",  # relationship paths are not in the subset
        "SELECT COUNT() FROM Lead",
        "SELECT Id FROM Lead LIMIT -1",
    ],
)
def test_the_parser_refuses_what_salesforce_refuses(soql: str) -> None:
    with pytest.raises(SoqlError) as info:
        parse(soql)
    assert info.value.code == "MALFORMED_QUERY"
    assert "ERROR at Row:1:Column:" in info.value.message


@given(value=ANY_TEXT.filter(lambda v: v.strip() == v and v != ""))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_email_finds_its_record_over_http(sf_sandbox, value: str) -> None:  # type: ignore[no-untyped-def]
    store = sf_sandbox.store
    store.records.pop("Lead", None)
    owner = add_user(store, "Ana")
    lead = add_lead(store, owner["Id"], Email=value)
    add_lead(store, owner["Id"], Email=value + "'")
    found = sf_sandbox.adapter().find_by_email(value)
    assert [r.record_id for r in found if r.object_type == "Lead"] == [lead["Id"]]


def test_apostrophes_and_quotes_do_not_break_any_query(sf_sandbox) -> None:  # type: ignore[no-untyped-def]
    store = sf_sandbox.store
    owner = add_user(store, "Ana")
    tricky = add_lead(store, owner["Id"], Company="O'Brien's Bakery", Email="o\"hara's\\x@example.com")
    adapter = sf_sandbox.adapter()
    pulled = [r for page in adapter.pull("Lead", None) for r in page.records]
    assert [r.record_id for r in pulled] == [tricky["Id"]]
    assert [r.record_id for r in adapter.find_by_email("O\"HARA's\\x@example.com")] == [tricky["Id"]]
    assert [r.record_id for r in adapter.read([tricky["Id"]])] == [tricky["Id"]]
    assert all(r.status == 200 for r in store.requests)


# --------------------------------------------------------------------------- paging and cursor


def test_incremental_pull_pages_by_2000_in_modstamp_then_id_order(sf_sandbox) -> None:  # type: ignore[no-untyped-def]
    store = sf_sandbox.store
    owner = add_user(store, "Ana")
    for i in range(4500):  # many share one SystemModstamp: only the Id tie-break orders them
        add_lead(store, owner["Id"], at=T0 + timedelta(seconds=i // 1000), Email=f"p{i}@x.com")
    add_lead(store, owner["Id"], IsConverted=True, Email="converted@x.com")
    adapter = sf_sandbox.adapter()
    pages = list(adapter.pull("Lead", None))
    assert [len(p.records) for p in pages] == [2000, 2000, 500]
    keys = [(r.modified_at, r.record_id) for p in pages for r in p.records]
    assert keys == sorted(keys)
    assert len(set(keys)) == 4500
    assert "converted@x.com" not in {r.email for p in pages for r in p.records}
    cursors = [p.cursor for p in pages]
    assert all(c is not None for c in cursors)
    assert cursors == sorted(cursors)  # type: ignore[type-var]
    assert adapter.calls == math.ceil(4500 / 2000)

    # resuming from the first page's cursor returns exactly the records after it
    resumed = [r.record_id for p in adapter.pull("Lead", pages[0].cursor) for r in p.records]
    assert resumed == [rid for _ts, rid in keys[2000:]]
    assert SfCursor.decode(pages[0].cursor.encode()) == pages[0].cursor  # type: ignore[union-attr]


def test_paginator_refuses_a_repeated_next_records_url(sf_sandbox, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    adapter = sf_sandbox.adapter()
    looping = {"done": False, "nextRecordsUrl": "/services/data/v59.0/query/01gX-2000", "records": []}
    monkeypatch.setattr(adapter, "_call", lambda action, fn: looping)
    with pytest.raises(FatalError, match="same nextRecordsUrl"):
        list(adapter.query_pages("SELECT Id FROM Lead", "reading"))


def test_activities_are_read_incrementally_and_typed_by_the_mapping(sf_sandbox) -> None:  # type: ignore[no-untyped-def]
    store = sf_sandbox.store
    owner = add_user(store, "Ana")
    lead = add_lead(store, owner["Id"], Email="a@x.com")
    call = store.insert(
        "Task",
        {"WhoId": lead["Id"], "Subject": "Call", "TaskSubtype": "Call", "Status": "Completed",
         "CompletedDateTime": "2026-11-01T10:00:00.000+0000", "OwnerId": owner["Id"]},
        at=T0,
    )  # fmt: skip
    store.insert(
        "Task", {"WhoId": lead["Id"], "Subject": "To do", "TaskSubtype": "Task", "Status": "Open"}, at=T0
    )
    campaign = store.insert("Campaign", {"Name": "Webinar: Pipeline Reviews", "Type": "Webinar"}, at=T0)
    member = store.insert(
        "CampaignMember",
        {
            "CampaignId": campaign["Id"],
            "LeadId": lead["Id"],
            "HasResponded": True,
            "FirstRespondedDate": "2026-10-30",
        },
        at=T0,
    )
    adapter = sf_sandbox.adapter()
    tasks = [a for page in adapter.activities("Task", None) for a in page.activities]
    assert [(a.source_id, a.type, a.record_id) for a in tasks] == [(call["Id"], "call", lead["Id"])]
    members = [a for page in adapter.activities("CampaignMember", None) for a in page.activities]
    assert [(a.source_id, a.type, a.name) for a in members] == [
        (member["Id"], "form_submission", "Webinar: Pipeline Reviews")
    ]
    last = list(adapter.activities("Task", None))[-1].cursor
    assert [a for page in adapter.activities("Task", last) for a in page.activities] == []


# --------------------------------------------------------------------------- writes


def _intent(record: dict, **changes: str) -> WriteIntent:
    return WriteIntent("salesforce", "Lead" if record["Id"][:3] == "00Q" else "Contact", record["Id"], "p1",
                       dict(changes), dict.fromkeys(changes), "test")  # fmt: skip


def test_a_collection_with_one_failing_record_writes_the_rest(sf_sandbox) -> None:  # type: ignore[no-untyped-def]
    store = sf_sandbox.store
    owner = add_user(store, "Ana")
    leads = [add_lead(store, owner["Id"], Email=f"w{i}@x.com") for i in range(450)]
    bad = leads[7]["Id"]
    store.rejections[bad] = ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Company size is required for MQLs")
    results = sf_sandbox.adapter().apply([_intent(lead, Status="Marketing Qualified") for lead in leads])
    assert [r.intent.record_id for r in results] == [lead["Id"] for lead in leads]
    assert [r.intent.record_id for r in results if not r.ok] == [bad]
    failed = next(r for r in results if not r.ok)
    assert failed.error == "FIELD_CUSTOM_VALIDATION_EXCEPTION: Company size is required for MQLs"
    assert failed.retryable is False
    written = [lead for lead in leads if store.records["Lead"][lead["Id"]]["Status"] == "Marketing Qualified"]
    assert len(written) == 449
    calls = [r for r in store.requests if r.path.endswith("/composite/sobjects")]
    assert len(calls) == math.ceil(450 / 200)
    assert all(len(r.body["records"]) <= 200 and r.body["allOrNone"] is False for r in calls)
    assert all(r.headers.get("Sforce-Auto-Assign") == "FALSE" for r in calls)


def test_locked_rows_are_retried_with_backoff_and_duplicates_are_reported(sf_sandbox) -> None:  # type: ignore[no-untyped-def]
    store = sf_sandbox.store
    owner = add_user(store, "Ana")
    locked, dup, fine = (add_lead(store, owner["Id"], Email=f"l{i}@x.com") for i in range(3))
    store.lock_failures[locked["Id"]] = 2
    store.rejections[dup["Id"]] = ("DUPLICATES_DETECTED", "Use one of these records?")
    results = sf_sandbox.adapter(max_attempts=4).apply(
        [_intent(r, Status="Marketing Qualified") for r in (locked, dup, fine)]
    )
    assert [(r.ok, r.error) for r in results] == [
        (True, None),
        (False, "DUPLICATES_DETECTED: Use one of these records?"),
        (True, None),
    ]
    assert sf_sandbox.sleeps == [0.5, 1.0]
    assert len([r for r in store.requests if r.path.endswith("/composite/sobjects")]) == 3


def test_locks_that_outlast_the_attempts_come_back_retryable(sf_sandbox) -> None:  # type: ignore[no-untyped-def]
    store = sf_sandbox.store
    lead = add_lead(store, add_user(store, "Ana")["Id"])
    store.lock_failures[lead["Id"]] = 10
    [result] = sf_sandbox.adapter(max_attempts=2).apply([_intent(lead, Status="Marketing Qualified")])
    assert (result.ok, result.retryable) == (False, True)
    assert result.error is not None
    assert result.error.startswith("UNABLE_TO_LOCK_ROW")


def test_a_converted_lead_is_never_written_and_its_contact_is(sf_sandbox) -> None:  # type: ignore[no-untyped-def]
    store = sf_sandbox.store
    owner = add_user(store, "Ana")
    contact = store.insert(
        "Contact",
        {"LastName": "C", "Email": "c@x.com", "OwnerId": owner["Id"], "Lifecycle_Stage__c": "Lead"},
        at=T0,
    )
    lead = add_lead(store, owner["Id"], Email="c@x.com")
    store.records["Lead"][lead["Id"]].update(IsConverted=True, ConvertedContactId=contact["Id"])
    before = dict(store.records["Lead"][lead["Id"]])
    [result] = sf_sandbox.adapter().apply(
        [_intent(lead, Status="Marketing Qualified", Marketing_Status__c="New", OwnerId=owner["Id"])]
    )
    assert store.records["Lead"][lead["Id"]] == before
    assert result.ok
    assert (result.intent.object_type, result.intent.record_id) == ("Contact", contact["Id"])
    assert result.intent.changes == {
        "Lifecycle_Stage__c": "MQL",
        "Marketing_Status__c": "New",
    }  # owner: not ours
    assert store.records["Contact"][contact["Id"]]["Lifecycle_Stage__c"] == "MQL"


def test_unowned_fields_are_refused_before_any_call(sf_sandbox) -> None:  # type: ignore[no-untyped-def]
    lead = add_lead(sf_sandbox.store, add_user(sf_sandbox.store, "Ana")["Id"])
    with pytest.raises(FatalError, match="does not own"):
        sf_sandbox.adapter().apply([_intent(lead, Company="Evil Corp")])
    assert sf_sandbox.store.requests == []


# --------------------------------------------------------------------------- errors and quota


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (401, "INVALID_SESSION_ID", AuthError),
        (403, "REQUEST_LIMIT_EXCEEDED", DailyLimitExhausted),
        (403, "INSUFFICIENT_ACCESS", AuthError),
        (400, "UNABLE_TO_LOCK_ROW", TransientError),
        (400, "INVALID_FIELD", ConfigError),
        (400, "MALFORMED_QUERY", FatalError),
        (503, "SERVER_UNAVAILABLE", TransientError),
        (500, "UNKNOWN_EXCEPTION", TransientError),
    ],
)
def test_errors_are_translated_by_error_code(sf_sandbox, status, code, expected) -> None:  # type: ignore[no-untyped-def]
    from connector.observability import register_secret

    register_secret("secret-token-abc")  # as the factory registers the session id
    sf_sandbox.emulator.fail(status, code=code, message="secret-token-abc in message", times=10)
    adapter = sf_sandbox.adapter(max_attempts=2)
    with pytest.raises(expected) as info:
        list(adapter.query_pages("SELECT Id FROM Lead", "reading leads"))
    assert "secret-token-abc" not in info.value.message
    assert info.value.detail is not None
    assert code in info.value.detail


def test_transient_errors_are_retried_then_succeed(sf_sandbox) -> None:  # type: ignore[no-untyped-def]
    sf_sandbox.emulator.fail(503, times=2)
    adapter = sf_sandbox.adapter(max_attempts=3)
    assert list(adapter.query_pages("SELECT Id FROM Lead", "reading")) == [[]]
    assert adapter.calls == 3
    assert len(sf_sandbox.sleeps) == 2


def test_an_expired_session_logs_in_again(sf_sandbox) -> None:  # type: ignore[no-untyped-def]
    store = sf_sandbox.store
    logins: list[int] = []

    def relogin():  # type: ignore[no-untyped-def]
        logins.append(1)
        store.sessions.add("fresh-session")
        from simple_salesforce.api import Salesforce

        return Salesforce(
            instance_url=sf_sandbox.server.url, session_id="fresh-session", session=sf_sandbox.session()
        )

    adapter = sf_sandbox.adapter(relogin=relogin)
    store.expire_sessions()
    assert list(adapter.query_pages("SELECT Id FROM Lead", "reading")) == [[]]
    assert logins == [1]
    store.expire_sessions()
    without = sf_sandbox.adapter()
    with pytest.raises(AuthError, match="INVALID_SESSION_ID"):
        list(without.query_pages("SELECT Id FROM Lead", "reading"))


def test_the_run_stops_before_it_uses_more_than_its_share(sf_sandbox) -> None:  # type: ignore[no-untyped-def]
    store = sf_sandbox.store
    store.daily_api_limit, store.api_used = 1000, 980  # 20 remaining: a 0.5 share may use 10
    owner = add_user(store, "Ana")
    for i in range(10):
        add_lead(store, owner["Id"], Email=f"q{i}@x.com")
    adapter = sf_sandbox.adapter(share=0.5)
    adapter.begin()
    for _ in range(9):
        list(adapter.query_pages("SELECT Id FROM Lead", "reading"))
    with pytest.raises(ApiShareReached, match="used 10 of the 10"):
        list(adapter.query_pages("SELECT Id FROM Lead", "reading"))
    assert store.api_used == 990  # exactly the share, the other half left for everyone else
    assert not any(r.status == 403 for r in store.requests)


def test_other_integrations_spending_shrinks_what_is_left(sf_sandbox) -> None:  # type: ignore[no-untyped-def]
    store = sf_sandbox.store
    store.daily_api_limit, store.api_used = 1000, 900  # 100 remaining, share 0.5: reserve 50
    adapter = sf_sandbox.adapter(share=0.5)
    adapter.begin()
    list(adapter.query_pages("SELECT Id FROM Lead", "reading"))
    store.api_used += 45  # someone else spends; the header on the next answer says so
    list(adapter.query_pages("SELECT Id FROM Lead", "reading"))
    for _ in range(2):  # 100 - 2 - 45 = 53 left: two more calls fit above the reserve of 50
        list(adapter.query_pages("SELECT Id FROM Lead", "reading"))
    with pytest.raises(ApiShareReached):
        list(adapter.query_pages("SELECT Id FROM Lead", "reading"))
    assert 1000 - store.api_used == 50


def test_translate_keeps_connector_errors_and_redacts_transport_errors() -> None:
    import requests

    error = translate(requests.exceptions.ConnectionError("https://x/?q=secret"), "reading")
    assert isinstance(error, TransientError)
    assert "secret" not in error.message

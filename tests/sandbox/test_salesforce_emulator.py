"""The Salesforce emulator speaks Salesforce's wire format and enforces its documented limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sf_fixtures import add_lead, add_user

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "salesforce"
V = "/services/data/v59.0"


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively (lists by their first element)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def http(sf_sandbox):  # type: ignore[no-untyped-def]
    session = sf_sandbox.session()
    session.headers["Authorization"] = f"Bearer {sf_sandbox.store.session_id}"
    base = sf_sandbox.server.url

    def call(method: str, path: str, **kwargs: Any) -> Any:
        return session.request(method, base + path, **kwargs)

    return call


def test_query_pages_match_the_documented_shape(sf_sandbox, http) -> None:  # type: ignore[no-untyped-def]
    owner = add_user(sf_sandbox.store, "Ana")
    for i in range(450):
        add_lead(sf_sandbox.store, owner["Id"], Email=f"x{i}@x.com")
    first = http("GET", f"{V}/query", params={"q": "SELECT Id, Status FROM Lead"},
                 headers={"Sforce-Query-Options": "batchSize=200"})  # fmt: skip
    assert first.status_code == 200
    body = first.json()
    assert shape(body) == shape(fixture("query_page.json"))
    assert (body["totalSize"], len(body["records"])) == (450, 200)
    assert first.headers["Sforce-Limit-Info"] == "api-usage=1/15000"
    seen = len(body["records"])
    while not body["done"]:
        body = http("GET", body["nextRecordsUrl"]).json()
        seen += len(body["records"])
    assert seen == 450
    assert set(shape(fixture("limits.json"))["DailyApiRequests"]) <= set(
        shape(http("GET", f"{V}/limits").json())["DailyApiRequests"]
    )


def test_query_errors_and_limits(sf_sandbox, http) -> None:  # type: ignore[no-untyped-def]
    bad = http("GET", f"{V}/query", params={"q": "SELECT Id FROM Lead WHERE Name = 'x"})
    assert bad.status_code == 400
    assert bad.json()[0]["errorCode"] == "MALFORMED_QUERY"
    wrong_type = http(
        "GET", f"{V}/query", params={"q": "SELECT Id FROM Lead WHERE SystemModstamp > '2026-01-01'"}
    )
    assert wrong_type.json()[0]["errorCode"] == "INVALID_FIELD"
    assert "must be of type dateTime" in wrong_type.json()[0]["message"]
    no_object = http("GET", f"{V}/query", params={"q": "SELECT Id FROM Leads"})
    assert no_object.json()[0]["errorCode"] == "INVALID_TYPE"
    ids = ",".join(f"'00QDn0000000{n:06d}AAA'" for n in range(900))
    too_long = http("GET", f"{V}/query", params={"q": f"SELECT Id FROM Lead WHERE Id IN ({ids})"})
    assert too_long.status_code == 431  # URI + headers over 16,384 bytes: refused before the API
    sf_sandbox.store.expire_sessions()
    expired = http("GET", f"{V}/query", params={"q": "SELECT Id FROM Lead"})
    assert expired.status_code == 401
    assert shape(expired.json()) == shape(fixture("error.json"))


def test_deleted_records_only_through_query_all(sf_sandbox, http) -> None:  # type: ignore[no-untyped-def]
    owner = add_user(sf_sandbox.store, "Ana")
    lead = add_lead(sf_sandbox.store, owner["Id"], IsDeleted=True)
    q = {"q": "SELECT Id, IsDeleted FROM Lead"}
    assert http("GET", f"{V}/query", params=q).json()["totalSize"] == 0
    assert http("GET", f"{V}/queryAll", params=q).json()["records"][0]["Id"] == lead["Id"]


def test_daily_allocation_answers_request_limit_exceeded(sf_sandbox, http) -> None:  # type: ignore[no-untyped-def]
    sf_sandbox.store.daily_api_limit, sf_sandbox.store.api_used = 5, 4
    # the limits call itself counts: it reports what is left after it
    assert http("GET", f"{V}/limits").json()["DailyApiRequests"] == {"Max": 5, "Remaining": 0}
    refused = http("GET", f"{V}/limits")
    assert refused.status_code == 403
    assert refused.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]


def test_collections_limits_results_and_all_or_none(sf_sandbox, http) -> None:  # type: ignore[no-untyped-def]
    store = sf_sandbox.store
    owner = add_user(store, "Ana")
    inactive = add_user(store, "Olaf", active=False)
    leads = [add_lead(store, owner["Id"]) for _ in range(3)]
    too_many = {"allOrNone": False, "records": [{"attributes": {"type": "Lead"}, "id": leads[0]["Id"]}] * 201}
    refused = http("PATCH", f"{V}/composite/sobjects", json=too_many)
    assert (refused.status_code, refused.json()[0]["errorCode"]) == (400, "EXCEEDED_ID_LIMIT")

    records = [
        {"attributes": {"type": "Lead"}, "id": leads[0]["Id"], "Status": "Marketing Qualified"},
        {"attributes": {"type": "Lead"}, "id": leads[1]["Id"], "OwnerId": inactive["Id"]},
        {"attributes": {"type": "Lead"}, "id": leads[2]["Id"], "IsConverted": True},
    ]
    rolled = http("PATCH", f"{V}/composite/sobjects", json={"allOrNone": True, "records": records}).json()
    assert [r["errors"][0]["statusCode"] for r in rolled] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK", "INACTIVE_OWNER_OR_USER", "INVALID_FIELD_FOR_INSERT_UPDATE",
    ]  # fmt: skip
    assert store.records["Lead"][leads[0]["Id"]]["Status"] == "Open - Not Contacted"
    partial = http("PATCH", f"{V}/composite/sobjects", json={"allOrNone": False, "records": records}).json()
    assert shape(partial[:1]) == shape(fixture("collection_results.json")[:1])
    assert [r["success"] for r in partial] == [True, False, False]
    assert store.records["Lead"][leads[0]["Id"]]["Status"] == "Marketing Qualified"
    typo = {"attributes": {"type": "Lead"}, "id": leads[0]["Id"], "Statsu": "x"}
    unknown = http("PATCH", f"{V}/composite/sobjects", json={"records": [typo]})
    assert (unknown.status_code, unknown.json()[0]["errorCode"]) == (400, "INVALID_FIELD")


def test_converted_leads_refuse_writes_and_single_record_calls(sf_sandbox, http) -> None:  # type: ignore[no-untyped-def]
    store = sf_sandbox.store
    owner = add_user(store, "Ana")
    new = {"LastName": "New", "Company": "Acme", "Status": "Nurture", "OwnerId": owner["Id"]}
    created = http("POST", f"{V}/sobjects/Lead", json=new)
    assert created.status_code == 201
    lead_id = created.json()["id"]
    assert http("PATCH", f"{V}/sobjects/Lead/{lead_id}", json={"Status": "Sales Accepted"}).status_code == 204
    assert http("GET", f"{V}/sobjects/Lead/{lead_id}").json()["Status"] == "Sales Accepted"
    store.records["Lead"][lead_id]["IsConverted"] = True
    refused = http("PATCH", f"{V}/sobjects/Lead/{lead_id}", json={"Status": "Nurture"})
    assert refused.status_code == 400
    assert refused.json()[0] == {
        "message": "cannot reference converted lead",
        "errorCode": "CANNOT_UPDATE_CONVERTED_LEAD",
    }


def test_describe_lists_fields_and_picklist_values(http) -> None:  # type: ignore[no-untyped-def]
    body = http("GET", f"{V}/sobjects/Lead/describe").json()
    fields = {f["name"]: f for f in body["fields"]}
    assert body["keyPrefix"] == "00Q"
    assert fields["Status"]["type"] == "picklist"
    assert "Marketing Qualified" in [v["value"] for v in fields["Status"]["picklistValues"]]
    assert fields["IsConverted"]["updateable"] is False
    assert fields["OwnerId"]["referenceTo"] == ["Group", "User"]
    assert http("GET", f"{V}/sobjects/Nope/describe").status_code == 404

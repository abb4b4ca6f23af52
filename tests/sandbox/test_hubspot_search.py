"""CRM search through the real SDK: paging, filters, sort and the documented limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException, PublicObjectSearchRequest

from connector.sandbox.hubspot_store import HubSpotStore

from .seed import add_contact, add_contacts

T = 5  # seconds: the SDK has no default timeout


def search(
    client: HubSpot,
    filters: list[dict[str, Any]] | None = None,
    *,
    groups: list[list[dict[str, Any]]] | None = None,
    sorts: list[Any] | None = None,
    properties: list[str] | None = None,
    limit: int = 200,
    after: str = "0",
) -> Any:
    filter_groups = [{"filters": g} for g in groups] if groups is not None else [{"filters": filters or []}]
    request = PublicObjectSearchRequest(
        filter_groups=filter_groups if filters or groups else [],
        sorts=sorts if sorts is not None else [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        properties=properties or ["email"],
        limit=limit,
        after=after,
    )
    return client.crm.contacts.search_api.do_search(public_object_search_request=request, _request_timeout=T)


def ids(page: Any) -> list[str]:
    return [r.id for r in page.results]


def error_body(raised: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(raised.value.body)
    return body


def test_paging_returns_every_record_exactly_once(hubspot: HubSpot, store: HubSpotStore) -> None:
    expected = add_contacts(store, range(1, 46))
    seen: list[str] = []
    after = "0"
    pages = 0
    while True:
        page = search(hubspot, limit=7, after=after)
        pages += 1
        assert page.total == 45
        seen += ids(page)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert seen == expected  # ascending hs_object_id, no gaps, no repeats
    assert pages == 7  # 6 full pages of 7, then 3


def test_without_a_sort_results_are_oldest_first_then_by_id(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contact(store, 1, createdate="2026-03-01T00:00:00.000Z")
    add_contact(store, 2, createdate="2026-01-01T00:00:00.000Z")
    add_contact(store, 3, createdate="2026-02-01T00:00:00.000Z")
    add_contact(store, 4, createdate="2026-01-01T00:00:00.000Z")
    assert ids(search(hubspot, sorts=[])) == ["2", "4", "3", "1"]


def test_descending_sort_on_a_datetime_compares_instants(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contact(store, 1, lastmodifieddate="2026-01-02T00:00:00.000Z")
    add_contact(store, 2, lastmodifieddate="2026-01-10T00:00:00.000Z")
    add_contact(store, 3, lastmodifieddate="2026-01-05T00:00:00.000Z")
    page = search(hubspot, sorts=[{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}])
    assert ids(page) == ["2", "3", "1"]


def test_number_properties_sort_numerically(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contact(store, 1, hubspotscore="9")
    add_contact(store, 2, hubspotscore="10")
    add_contact(store, 3, hubspotscore="100")
    add_contact(store, 4)  # no score: last
    assert ids(search(hubspot, sorts=[{"propertyName": "hubspotscore", "direction": "ASCENDING"}])) == [
        "1",
        "2",
        "3",
        "4",
    ]


JAN_10_MS = "1767830400000"  # 2026-01-08T00:00:00Z in epoch milliseconds
JAN_20_MS = "1768694400000"  # 2026-01-18T00:00:00Z


@pytest.fixture
def people(store: HubSpotStore) -> None:
    add_contact(store, 1, email="Ana@Acme.com", lifecyclestage="lead", hubspotscore="9")
    add_contact(store, 2, email="ben@globex.io", lifecyclestage="marketingqualifiedlead", hubspotscore="10")
    add_contact(store, 3, email="cy@acme.com", lifecyclestage="subscriber", hubspotscore="55")
    add_contact(store, 4, email="dee@initech.com", lifecyclestage=None, jobtitle="VP Sales")
    store.contacts["1"]["lastmodifieddate"] = "2026-01-05T00:00:00.000Z"
    store.contacts["2"]["lastmodifieddate"] = "2026-01-12T00:00:00.000Z"
    store.contacts["3"]["lastmodifieddate"] = "2026-01-20T00:00:00.000Z"
    store.contacts["4"]["lastmodifieddate"] = "2026-01-30T00:00:00.000Z"


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param(
            [{"propertyName": "email", "operator": "EQ", "value": "ANA@acme.COM"}],
            ["1"],
            id="eq-string-ignores-case",
        ),
        pytest.param(
            [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "LEAD"}],
            [],
            id="eq-enum-is-case-sensitive",
        ),
        pytest.param(
            [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"}], ["1"], id="eq-enum"
        ),
        pytest.param(
            [{"propertyName": "lifecyclestage", "operator": "NEQ", "value": "lead"}],
            ["2", "3", "4"],
            id="neq-includes-unset",
        ),
        pytest.param(
            [{"propertyName": "lifecyclestage", "operator": "IN", "values": ["lead", "subscriber"]}],
            ["1", "3"],
            id="in-enum",
        ),
        pytest.param(
            [{"propertyName": "email", "operator": "IN", "values": ["cy@acme.com", "ana@acme.com"]}],
            ["1", "3"],
            id="in-string-lowercase",
        ),
        pytest.param(
            [{"propertyName": "email", "operator": "IN", "values": ["CY@ACME.COM"]}],
            [],
            id="in-string-uppercase-never-matches",
        ),
        pytest.param(
            [{"propertyName": "lifecyclestage", "operator": "NOT_IN", "values": ["lead"]}],
            ["2", "3", "4"],
            id="not-in",
        ),
        pytest.param(
            [{"propertyName": "hubspotscore", "operator": "GT", "value": "9"}],
            ["2", "3"],
            id="gt-numeric-not-lexical",
        ),
        pytest.param(
            [{"propertyName": "hubspotscore", "operator": "LTE", "value": "10"}], ["1", "2"], id="lte-numeric"
        ),
        pytest.param(
            [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": JAN_10_MS}],
            ["2", "3", "4"],
            id="gte-datetime-epoch-ms",
        ),
        pytest.param(
            [{"propertyName": "lastmodifieddate", "operator": "LT", "value": JAN_10_MS}],
            ["1"],
            id="lt-datetime",
        ),
        pytest.param(
            [
                {
                    "propertyName": "lastmodifieddate",
                    "operator": "BETWEEN",
                    "value": JAN_10_MS,
                    "highValue": JAN_20_MS,
                }
            ],
            ["2"],
            id="between-datetime-inclusive",
        ),
        pytest.param([{"propertyName": "jobtitle", "operator": "HAS_PROPERTY"}], ["4"], id="has-property"),
        pytest.param(
            [{"propertyName": "lifecyclestage", "operator": "NOT_HAS_PROPERTY"}], ["4"], id="not-has-property"
        ),
        pytest.param(
            [{"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "acme"}],
            ["1", "3"],
            id="contains-token",
        ),
        pytest.param(
            [{"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@acme.com"}],
            ["1", "3"],
            id="contains-token-wildcard",
        ),
        pytest.param(
            [{"propertyName": "email", "operator": "NOT_CONTAINS_TOKEN", "value": "acme"}],
            ["2", "4"],
            id="not-contains-token",
        ),
        pytest.param(
            [
                {"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "acme"},
                {"propertyName": "hubspotscore", "operator": "GT", "value": "20"},
            ],
            ["3"],
            id="filters-in-a-group-are-anded",
        ),
    ],
)
def test_filter_semantics(hubspot: HubSpot, filters: list[dict[str, Any]], expected: list[str]) -> None:
    assert ids(search(hubspot, filters)) == expected


@pytest.mark.usefixtures("people")
def test_filter_groups_are_ored(hubspot: HubSpot) -> None:
    page = search(
        hubspot,
        groups=[
            [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "subscriber"}],
            [{"propertyName": "email", "operator": "EQ", "value": "ben@globex.io"}],
        ],
    )
    assert ids(page) == ["2", "3"]


def eq(n: int) -> dict[str, Any]:
    return {"propertyName": "email", "operator": "NEQ", "value": f"nobody{n}@example.com"}


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        pytest.param([[eq(1)]] * 6, "filter groups", id="six-groups"),
        pytest.param([[eq(i) for i in range(7)]], "filters in a group", id="seven-filters-in-a-group"),
        pytest.param(
            [[eq(i) for i in range(5)]] * 4, "maximum across all groups is 18", id="nineteen-filters"
        ),
    ],
)
def test_filter_limits_are_validation_errors(
    hubspot: HubSpot, groups: list[list[dict[str, Any]]], message: str
) -> None:
    with pytest.raises(ApiException) as raised:
        search(hubspot, groups=groups)
    assert raised.value.status == 400
    body = error_body(raised)
    assert body["category"] == "VALIDATION_ERROR"
    assert message in body["message"]


def test_the_maximum_filters_are_accepted(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contact(store, 1)
    groups = [[eq(i) for i in range(6)]] * 3  # 3 groups x 6 filters = 18
    assert ids(search(hubspot, groups=groups)) == ["1"]


def test_limit_above_200_is_a_400(hubspot: HubSpot) -> None:
    with pytest.raises(ApiException) as raised:
        search(hubspot, limit=201)
    assert raised.value.status == 400
    assert error_body(raised)["category"] == "VALIDATION_ERROR"


def test_only_one_sort_is_allowed(hubspot: HubSpot) -> None:
    two = [{"propertyName": "email", "direction": "ASCENDING"}, {"propertyName": "hs_object_id"}]
    with pytest.raises(ApiException) as raised:
        search(hubspot, sorts=two)
    assert raised.value.status == 400


def test_paging_stops_with_a_400_at_10000_results(hubspot: HubSpot, store: HubSpotStore) -> None:
    for i in range(1, 10_051):
        store.contacts[str(i)] = {"hs_object_id": str(i), "createdate": "2026-01-01T00:00:00.000Z"}
    last_allowed = search(hubspot, limit=200, after="9800")
    assert last_allowed.total == 10_050
    assert len(last_allowed.results) == 200
    # HubSpot still hands out the next cursor; following it is the documented 400.
    assert last_allowed.paging.next.after == "10000"
    with pytest.raises(ApiException) as raised:
        search(hubspot, limit=200, after=last_allowed.paging.next.after)
    assert raised.value.status == 400
    assert error_body(raised)["category"] == "VALIDATION_ERROR"


def test_a_page_straddling_10000_is_cut_at_the_cap(hubspot: HubSpot, store: HubSpotStore) -> None:
    for i in range(1, 10_021):
        store.contacts[str(i)] = {"hs_object_id": str(i), "createdate": "2026-01-01T00:00:00.000Z"}
    page = search(hubspot, limit=200, after="9900")
    assert ids(page)[-1] == "10000"
    assert len(page.results) == 100


def test_default_properties_when_none_are_requested(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contact(store, 1, lifecyclestage="lead")
    request = PublicObjectSearchRequest(filter_groups=[], sorts=[], properties=[], limit=10, after="0")
    page = hubspot.crm.contacts.search_api.do_search(public_object_search_request=request, _request_timeout=T)
    assert set(page.results[0].properties) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }


def test_requested_properties_replace_the_defaults_and_unset_ones_are_null(
    hubspot: HubSpot, store: HubSpotStore
) -> None:
    add_contact(store, 1, lifecyclestage="lead")
    result = search(hubspot, properties=["lifecyclestage", "hs_lead_status", "no_such_property"]).results[0]
    assert result.properties == {
        "lifecyclestage": "lead",
        "hs_lead_status": None,
        "createdate": result.properties["createdate"],
        "hs_object_id": "1",
        "lastmodifieddate": result.properties["lastmodifieddate"],
    }
    assert result.archived is False
    assert result.created_at.isoformat().startswith("2026-01-01T00:01")


def test_free_text_query_matches_name_and_email_prefixes(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contact(store, 1, firstname="Grace", lastname="Hopper", email="grace@navy.mil")
    add_contact(store, 2, firstname="Alan", lastname="Turing", email="alan@bletchley.uk")
    request = PublicObjectSearchRequest(
        filter_groups=[], sorts=[], properties=[], limit=10, after="0", query="hop"
    )
    page = hubspot.crm.contacts.search_api.do_search(public_object_search_request=request, _request_timeout=T)
    assert ids(page) == ["1"]

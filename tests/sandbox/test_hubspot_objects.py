"""Batch read/update, single-record get/patch and list through the real SDK."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    BatchResponseSimplePublicObject,
    BatchResponseSimplePublicObjectWithErrors,
    SimplePublicObjectInput,
)

from connector.sandbox.hubspot_store import HubSpotStore

from .conftest import FakeClock
from .seed import add_contact, add_contacts

T = 5


def read(client: HubSpot, keys: list[str], **extra: Any) -> Any:
    request = BatchReadInputSimplePublicObjectId(
        inputs=[{"id": k} for k in keys],
        properties=extra.pop("properties", ["email", "lifecyclestage"]),
        properties_with_history=extra.pop("properties_with_history", []),
        **extra,
    )
    return client.crm.contacts.batch_api.read(
        batch_read_input_simple_public_object_id=request, _request_timeout=T
    )


def update(client: HubSpot, inputs: list[dict[str, Any]]) -> Any:
    body = BatchInputSimplePublicObjectBatchInput(inputs=inputs)
    return client.crm.contacts.batch_api.update(
        batch_input_simple_public_object_batch_input=body, _request_timeout=T
    )


def errors_by_category(response: Any) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for error in response.errors or []:
        grouped.setdefault(error.category, []).append(error)
    return grouped


# --- batch read -------------------------------------------------------------------------------------


def test_batch_read_of_found_ids_is_a_plain_200(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contacts(store, range(1, 4), lifecyclestage="lead")
    response = read(hubspot, ["1", "2", "3"])
    assert type(response) is BatchResponseSimplePublicObject
    assert sorted(r.id for r in response.results) == ["1", "2", "3"]
    assert response.results[0].properties["lifecyclestage"] == "lead"
    assert store.requests[-1].status == 200


def test_batch_read_with_missing_ids_is_207_with_the_found_results(
    hubspot: HubSpot, store: HubSpotStore
) -> None:
    add_contacts(store, range(1, 3))
    response = read(hubspot, ["1", "404", "2", "405"])
    assert type(response) is BatchResponseSimplePublicObjectWithErrors
    assert store.requests[-1].status == 207
    assert sorted(r.id for r in response.results) == ["1", "2"]
    assert response.num_errors == 1
    assert response.errors[0].category == "OBJECT_NOT_FOUND"
    assert response.errors[0].context == {"ids": ["404", "405"]}


def test_batch_read_by_email_matches_case_insensitively(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contact(store, 7, email="grace@navy.mil")
    response = read(hubspot, ["GRACE@navy.mil", "nobody@x.org"], id_property="email")
    assert [r.id for r in response.results] == ["7"]
    assert response.errors[0].context == {"ids": ["nobody@x.org"]}


def test_batch_read_over_100_inputs_is_a_400(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contacts(store, range(1, 102))
    assert len(read(hubspot, [str(i) for i in range(1, 101)]).results) == 100
    with pytest.raises(ApiException) as raised:
        read(hubspot, [str(i) for i in range(1, 102)])
    assert raised.value.status == 400
    assert json.loads(raised.value.body)["category"] == "VALIDATION_ERROR"


def test_batch_read_with_history_allows_only_50_inputs(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contacts(store, range(1, 52))
    with pytest.raises(ApiException) as raised:
        read(hubspot, [str(i) for i in range(1, 52)], properties_with_history=["lifecyclestage"])
    assert raised.value.status == 400
    assert "property histories is 50" in json.loads(raised.value.body)["message"]


def test_history_records_every_applied_write_newest_first(
    hubspot: HubSpot, store: HubSpotStore, clock: FakeClock
) -> None:
    add_contact(store, 1, lifecyclestage="subscriber")
    update(hubspot, [{"id": "1", "properties": {"lifecyclestage": "lead"}}])
    clock.advance(60)
    update(hubspot, [{"id": "1", "properties": {"lifecyclestage": "marketingqualifiedlead"}}])
    history = (
        read(hubspot, ["1"], properties_with_history=["lifecyclestage"]).results[0].properties_with_history
    )
    assert [h.value for h in history["lifecyclestage"]] == ["marketingqualifiedlead", "lead"]
    assert history["lifecyclestage"][0].timestamp.isoformat() == "2026-11-02T10:01:00+00:00"


# --- batch update -------------------------------------------------------------------------------------


def test_batch_update_applies_valid_inputs_and_reports_the_rest(
    hubspot: HubSpot, store: HubSpotStore
) -> None:
    add_contacts(store, range(1, 7), lifecyclestage="lead")
    response = update(
        hubspot,
        [
            {"id": "1", "properties": {"lifecyclestage": "marketingqualifiedlead", "hs_lead_status": "NEW"}},
            {"id": "999", "properties": {"lifecyclestage": "marketingqualifiedlead"}},
            {"id": "2", "properties": {"favourite_colour": "teal"}},
            {"id": "3", "properties": {"hs_analytics_num_page_views": "5"}},
            {"id": "4", "properties": {"lifecyclestage": "hot"}},
            {"id": "5", "properties": {"hubspot_owner_id": "503"}},  # an archived owner
            {"id": "6", "properties": {"hubspot_owner_id": "502"}},
        ],
    )
    assert store.requests[-1].status == 207
    assert sorted(r.id for r in response.results) == ["1", "6"]
    assert response.num_errors == 5
    grouped = errors_by_category(response)
    assert grouped["OBJECT_NOT_FOUND"][0].context == {"ids": ["999"]}
    codes = {e.context["ids"][0]: [d.code for d in e.errors] for e in grouped["VALIDATION_ERROR"]}
    assert codes == {
        "2": ["PROPERTY_DOESNT_EXIST"],
        "3": ["READ_ONLY_VALUE"],
        "4": ["INVALID_OPTION"],
        "5": ["INVALID_OWNER_ID"],
    }
    assert all(e.message.startswith("Property values were not valid: [") for e in grouped["VALIDATION_ERROR"])
    # the good records were written, the bad ones left alone
    assert store.contacts["1"]["lifecyclestage"] == "marketingqualifiedlead"
    assert store.contacts["1"]["hs_lead_status"] == "NEW"
    assert store.contacts["6"]["hubspot_owner_id"] == "502"
    assert store.contacts["4"]["lifecyclestage"] == "lead"
    assert store.contacts["5"].get("hubspot_owner_id") is None
    assert "favourite_colour" not in store.contacts["2"]


def test_owner_ids_must_be_owner_ids_not_user_ids(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contact(store, 1)
    response = update(hubspot, [{"id": "1", "properties": {"hubspot_owner_id": "9001"}}])  # ana's userId
    assert response.errors[0].errors[0].code == "INVALID_OWNER_ID"


def test_a_fully_valid_batch_update_is_a_plain_200(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contacts(store, range(1, 3))
    response = update(hubspot, [{"id": str(i), "properties": {"hs_lead_status": "OPEN"}} for i in (1, 2)])
    assert type(response) is BatchResponseSimplePublicObject
    assert [store.contacts[i]["hs_lead_status"] for i in ("1", "2")] == ["OPEN", "OPEN"]


def test_lifecyclestage_never_moves_backwards_unless_cleared_first(
    hubspot: HubSpot, store: HubSpotStore
) -> None:
    add_contact(store, 1, lifecyclestage="salesqualifiedlead")
    backwards = update(hubspot, [{"id": "1", "properties": {"lifecyclestage": "lead"}}])
    assert type(backwards) is BatchResponseSimplePublicObject  # accepted...
    assert backwards.results[0].properties["lifecyclestage"] == "salesqualifiedlead"  # ...but not applied
    assert store.contacts["1"]["lifecyclestage"] == "salesqualifiedlead"
    update(hubspot, [{"id": "1", "properties": {"lifecyclestage": ""}}])
    assert store.contacts["1"]["lifecyclestage"] is None
    update(hubspot, [{"id": "1", "properties": {"lifecyclestage": "lead"}}])
    assert store.contacts["1"]["lifecyclestage"] == "lead"


def test_writes_bump_lastmodifieddate_only_when_a_value_changes(
    hubspot: HubSpot, store: HubSpotStore, clock: FakeClock
) -> None:
    add_contact(store, 1, lastmodifieddate="2026-01-01T00:00:00.000Z", hs_lead_status="NEW")
    same = update(hubspot, [{"id": "1", "properties": {"hs_lead_status": "NEW"}}])
    assert store.contacts["1"]["lastmodifieddate"] == "2026-01-01T00:00:00.000Z"
    assert same.results[0].updated_at.isoformat() == "2026-01-01T00:00:00+00:00"
    changed = update(hubspot, [{"id": "1", "properties": {"hs_lead_status": "OPEN"}}])
    assert store.contacts["1"]["lastmodifieddate"] == "2026-11-02T10:00:00.000Z"
    assert changed.results[0].properties["lastmodifieddate"] == "2026-11-02T10:00:00.000Z"
    assert changed.results[0].updated_at.isoformat() == "2026-11-02T10:00:00+00:00"


def test_stage_and_owner_changes_stamp_their_dates(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contact(store, 1, lifecyclestage="lead")
    update(
        hubspot,
        [{"id": "1", "properties": {"lifecyclestage": "marketingqualifiedlead", "hubspot_owner_id": "501"}}],
    )
    contact = store.contacts["1"]
    assert contact["hs_lifecyclestage_marketingqualifiedlead_date"] == "2026-11-02T10:00:00.000Z"
    assert contact["hubspot_owner_assigneddate"] == "2026-11-02T10:00:00.000Z"


def test_batch_update_limits(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contacts(store, range(1, 102))
    with pytest.raises(ApiException) as too_many:
        update(hubspot, [{"id": str(i), "properties": {"hs_lead_status": "OPEN"}} for i in range(1, 102)])
    assert too_many.value.status == 400
    with pytest.raises(ApiException) as duplicated:
        update(hubspot, [{"id": "1", "properties": {"hs_lead_status": "OPEN"}}] * 2)
    assert duplicated.value.status == 400
    assert "Duplicate IDs" in json.loads(duplicated.value.body)["message"]
    assert all(store.contacts[str(i)].get("hs_lead_status") is None for i in range(1, 102))


def test_datetime_writes_are_stored_as_hubspot_iso(hubspot: HubSpot, store: HubSpotStore) -> None:
    store.properties["contacts"]["demo_booked_at"] = dict(
        store.properties["contacts"]["createdate"],
        name="demo_booked_at",
        modificationMetadata={"archivable": True, "readOnlyDefinition": False, "readOnlyValue": False},
    )
    add_contact(store, 1)
    update(hubspot, [{"id": "1", "properties": {"demo_booked_at": "1767225600000"}}])
    assert store.contacts["1"]["demo_booked_at"] == "2026-01-01T00:00:00.000Z"
    bad = update(hubspot, [{"id": "1", "properties": {"demo_booked_at": "next tuesday"}}])
    assert bad.errors[0].errors[0].code == "INVALID_DATE"


# --- single records and listing ----------------------------------------------------------------------


def test_get_by_id_and_by_email(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contact(store, 3, email="dee@initech.com", lifecyclestage="lead")
    api = hubspot.crm.contacts.basic_api
    by_id = api.get_by_id("3", properties=["lifecyclestage"], _request_timeout=T)
    by_email = api.get_by_id(
        "DEE@initech.com", id_property="email", properties=["lifecyclestage"], _request_timeout=T
    )
    assert by_id.id == by_email.id == "3"
    assert by_email.properties["lifecyclestage"] == "lead"
    with pytest.raises(ApiException) as raised:
        api.get_by_id("4040", _request_timeout=T)
    assert raised.value.status == 404
    assert json.loads(raised.value.body)["category"] == "OBJECT_NOT_FOUND"


def test_patch_is_all_or_nothing(hubspot: HubSpot, store: HubSpotStore) -> None:
    add_contact(store, 1, lifecyclestage="lead")
    api = hubspot.crm.contacts.basic_api
    with pytest.raises(ApiException) as raised:
        api.update(
            "1",
            simple_public_object_input=SimplePublicObjectInput(
                properties={"hs_lead_status": "OPEN", "createdate": "1"}
            ),
            _request_timeout=T,
        )
    assert raised.value.status == 400
    assert store.contacts["1"].get("hs_lead_status") is None
    done = api.update(
        "1",
        simple_public_object_input=SimplePublicObjectInput(properties={"hs_lead_status": "OPEN"}),
        _request_timeout=T,
    )
    assert done.properties["hs_lead_status"] == "OPEN"


def test_list_pages_through_every_contact(hubspot: HubSpot, store: HubSpotStore) -> None:
    expected = add_contacts(store, range(1, 251))
    api = hubspot.crm.contacts.basic_api
    seen: list[str] = []
    after = None
    while True:
        page = api.get_page(limit=100, after=after, properties=["email"], _request_timeout=T)
        seen += [r.id for r in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert seen == expected
    with pytest.raises(ApiException) as raised:
        api.get_page(limit=101, _request_timeout=T)
    assert raised.value.status == 400

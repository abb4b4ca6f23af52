"""Owners, v4 associations, engagement objects, events and properties through the real SDK."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import ApiException as AssociationsApiException
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.objects.emails import BatchReadInputSimplePublicObjectId
from hubspot.crm.owners import ApiException as OwnersApiException
from hubspot.crm.properties import ApiException as PropertiesApiException
from hubspot.events import ApiException as EventsApiException
from werkzeug.test import Client

from connector.sandbox.hubspot_store import HubSpotStore

from .seed import TOKEN, add_contact, owner

T = 5

# --- owners ------------------------------------------------------------------------------------------


def test_owners_lists_active_and_archived_separately(hubspot: HubSpot) -> None:
    api = hubspot.crm.owners.owners_api
    active = api.get_page(archived=False, _request_timeout=T)
    archived = api.get_page(archived=True, _request_timeout=T)
    assert [o.id for o in active.results] == ["501", "502"]
    assert [o.id for o in archived.results] == ["503"]
    assert archived.results[0].archived is True
    assert active.results[0].user_id == 9001
    assert active.results[0].teams[0].name == "Sales"


def test_owners_default_to_active_and_filter_by_email(hubspot: HubSpot) -> None:
    api = hubspot.crm.owners.owners_api
    assert [o.id for o in api.get_page(_request_timeout=T).results] == ["501", "502"]
    assert [o.id for o in api.get_page(email="BEN@example.com", _request_timeout=T).results] == ["502"]


def test_owners_page_with_after(hubspot: HubSpot, store: HubSpotStore) -> None:
    store.owners += [owner(str(600 + i), f"o{i}@example.com", user_id=7000 + i) for i in range(8)]
    api = hubspot.crm.owners.owners_api
    seen: list[str] = []
    after = None
    while True:
        page = api.get_page(limit=3, after=after, _request_timeout=T)
        seen += [o.id for o in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert seen == ["501", "502", *[str(600 + i) for i in range(8)]]
    with pytest.raises(OwnersApiException) as raised:
        api.get_page(limit=501, _request_timeout=T)
    assert raised.value.status == 400


# --- associations v4 ----------------------------------------------------------------------------------


def fetch(client: HubSpot, to_type: str, inputs: list[dict[str, str]]) -> object:
    return client.crm.associations.v4.batch_api.get_page(
        "contacts",
        to_type,
        batch_input_public_fetch_associations_batch_request=BatchInputPublicFetchAssociationsBatchRequest(
            inputs=inputs
        ),
        _request_timeout=T,
    )


def test_association_targets_page_per_input(hubspot: HubSpot, store: HubSpotStore) -> None:
    for email_id in range(5000, 6201):
        store.associate("contacts", "1", "emails", str(email_id))
    store.associate("contacts", "2", "emails", "7000")
    seen: list[str] = []
    pending = [{"id": "1"}, {"id": "2"}]
    rounds = 0
    while pending:
        rounds += 1
        response = fetch(hubspot, "emails", pending)
        pending = []
        for result in response.results:
            seen += [f"{result._from.id}->{t.to_object_id}" for t in result.to]
            assert all(t.association_types[0].type_id == 197 for t in result.to)
            if result.paging is not None:
                pending.append({"id": result._from.id, "after": result.paging.next.after})
    assert rounds == 3  # 500 + 500 + 201 for contact 1
    assert len(seen) == len(set(seen)) == 1202
    assert "2->7000" in seen
    wire = store.requests[0].response["results"]
    assert isinstance(wire[0]["to"][0]["toObjectId"], int)
    assert all("paging" not in r for r in store.requests[-1].response["results"])


def test_inputs_without_associations_are_per_input_errors(hubspot: HubSpot, store: HubSpotStore) -> None:
    store.associate("contacts", "1", "meetings", "88")
    response = fetch(hubspot, "meetings", [{"id": "1"}, {"id": "2"}])
    assert store.requests[-1].status == 207
    assert [r._from.id for r in response.results] == ["1"]
    assert response.results[0].to[0].association_types[0].type_id == 199
    error = response.errors[0]
    assert error.category == "OBJECT_NOT_FOUND"
    assert error.sub_category == "crm.associations.NO_ASSOCIATIONS_FOUND"
    assert error.context["fromObjectId"] == ["2"]


def test_first_company_is_the_primary_one(hubspot: HubSpot, store: HubSpotStore) -> None:
    store.associate("contacts", "1", "companies", "30")
    store.associate("contacts", "1", "companies", "40")
    to = fetch(hubspot, "companies", [{"id": "1"}]).results[0].to
    assert [sorted(t.type_id for t in target.association_types) for target in to] == [[1, 279], [279]]


def test_association_batch_read_caps_inputs_at_1000(hubspot: HubSpot) -> None:
    with pytest.raises(AssociationsApiException) as raised:
        fetch(hubspot, "emails", [{"id": str(i)} for i in range(1001)])
    assert raised.value.status == 400


# --- engagement objects ------------------------------------------------------------------------------


def test_engagement_batch_read_follows_the_contact_rules(hubspot: HubSpot, store: HubSpotStore) -> None:
    store.engagements["emails"] = {
        "900": {
            "hs_createdate": "2026-02-01T09:00:00.000Z",
            "hs_email_subject": "Pricing",
            "hs_email_direction": "INCOMING_EMAIL",
        },
        "901": {"hs_createdate": "2026-02-02T09:00:00.000Z", "hs_email_subject": "Re: Pricing"},
    }
    api = hubspot.crm.objects.emails.batch_api
    request = BatchReadInputSimplePublicObjectId(
        inputs=[{"id": "900"}, {"id": "901"}, {"id": "902"}],
        properties=["hs_email_subject"],
        properties_with_history=[],
    )
    response = api.read(batch_read_input_simple_public_object_id=request, _request_timeout=T)
    assert sorted(r.id for r in response.results) == ["900", "901"]
    assert response.errors[0].context == {"ids": ["902"]}
    assert "Could not get some EMAIL objects" in response.errors[0].message
    first = next(r for r in response.results if r.id == "900")
    assert first.properties["hs_email_subject"] == "Pricing"
    assert "hs_email_direction" not in first.properties
    assert first.created_at == datetime(2026, 2, 1, 9, tzinfo=UTC)


# --- events ----------------------------------------------------------------------------------------


@pytest.fixture
def events(store: HubSpotStore) -> None:
    def event(i: int, contact: str, type_: str, at: str) -> dict[str, object]:
        return {
            "id": f"ev{i}",
            "eventType": type_,
            "objectType": "contact",
            "objectId": contact,
            "occurredAt": at,
            "properties": {"hs_url": f"https://example.com/page{i}"},
        }

    store.events = [
        event(1, "1", "e_visited_page", "2026-03-01T10:00:00.000Z"),
        event(2, "1", "e_submitted_form", "2026-03-02T10:00:00.000Z"),
        event(3, "1", "e_visited_page", "2026-03-03T10:00:00.000Z"),
        event(4, "2", "e_visited_page", "2026-03-04T10:00:00.000Z"),
        event(5, "1", "e_visited_page", "2026-03-05T10:00:00.000Z"),
    ]
    add_contact(store, 1, email="ana@acme.com")


@pytest.mark.usefixtures("events")
def test_events_filter_by_object_type_and_window(hubspot: HubSpot) -> None:
    page = hubspot.events.events_api.get_page(
        object_type="contact",
        object_id=1,
        event_type="e_visited_page",
        occurred_after=datetime(2026, 3, 1, 10, tzinfo=UTC),
        occurred_before=datetime(2026, 3, 5, 10, tzinfo=UTC),
        _request_timeout=T,
    )
    # occurredAfter inclusive, occurredBefore exclusive: ev1 and ev3, not ev5
    assert [e.id for e in page.results] == ["ev1", "ev3"]
    assert page.results[0].properties == {"hs_url": "https://example.com/page1"}


@pytest.mark.usefixtures("events")
def test_events_page_with_a_cursor_and_sort_descending(hubspot: HubSpot) -> None:
    api = hubspot.events.events_api
    seen: list[str] = []
    after = None
    while True:
        page = api.get_page(
            object_type="contact", limit=2, after=after, sort=["DESCENDING"], _request_timeout=T
        )
        seen += [e.id for e in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert seen == ["ev5", "ev4", "ev3", "ev2", "ev1"]


@pytest.mark.usefixtures("events")
def test_events_need_an_object_type_with_an_object_id(hubspot: HubSpot) -> None:
    with pytest.raises(EventsApiException) as raised:
        hubspot.events.events_api.get_page(object_id=1, _request_timeout=T)
    assert raised.value.status == 400


@pytest.mark.usefixtures("events")
def test_events_by_object_property(raw: Client) -> None:
    # The SDK sends `objectProperty.{propname}` literally, so this goes over raw HTTP as the docs show.
    response = raw.get(
        "/events/v3/events?objectType=contact&objectProperty.email=ANA@acme.com&eventType=e_visited_page",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 200
    assert [e["id"] for e in response.json["results"]] == ["ev1", "ev3", "ev5"]


# --- properties ------------------------------------------------------------------------------------


def test_properties_api_serves_the_portal_catalogue(hubspot: HubSpot) -> None:
    api = hubspot.crm.properties.core_api
    stage = api.get_by_name("contacts", "lifecyclestage", _request_timeout=T)
    assert [o.value for o in sorted(stage.options, key=lambda o: o.display_order)][:4] == [
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
    ]
    assert stage.type == "enumeration"
    assert api.get_by_name(
        "contacts", "hs_object_id", _request_timeout=T
    ).modification_metadata.read_only_value
    names = {p.name for p in api.get_all("contacts", _request_timeout=T).results}
    assert {"hs_lead_status", "hubspot_owner_id", "email"} <= names
    with pytest.raises(PropertiesApiException) as raised:
        api.get_by_name("contacts", "favourite_colour", _request_timeout=T)
    assert raised.value.status == 404
    assert json.loads(raised.value.body)["category"] == "OBJECT_NOT_FOUND"

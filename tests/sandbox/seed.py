"""Small, explicit seeds for emulator tests (independent of demo_data.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connector.sandbox.hubspot_store import HubSpotStore, default_contact_properties, hs_datetime

TOKEN = "test-token"
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def new_store() -> HubSpotStore:
    store = HubSpotStore(access_token=TOKEN)
    store.properties["contacts"] = default_contact_properties()
    store.owners = [
        owner("501", "ana@example.com", user_id=9001),
        owner("502", "ben@example.com", user_id=9002),
        owner("503", "cy@example.com", user_id=9003, archived=True),
    ]
    return store


def owner(owner_id: str, email: str, *, user_id: int, archived: bool = False) -> dict[str, object]:
    return {
        "id": owner_id,
        "email": email,
        "firstName": email.split("@")[0].title(),
        "lastName": "Owner",
        "userId": user_id,
        "userIdIncludingInactive": user_id,
        "type": "PERSON",
        "teams": [{"id": "1", "name": "Sales", "primary": True}],
        "archived": archived,
        "createdAt": "2025-01-01T00:00:00.000Z",
        "updatedAt": "2025-06-01T00:00:00.000Z",
    }


def add_contact(store: HubSpotStore, contact_id: int, **props: str | None) -> str:
    """A contact created `contact_id` minutes after BASE_TIME unless `createdate` is given."""
    created = hs_datetime(BASE_TIME + timedelta(minutes=contact_id))
    values: dict[str, str | None] = {
        "hs_object_id": str(contact_id),
        "createdate": created,
        "lastmodifieddate": created,
        "email": f"person{contact_id}@example.com",
        "firstname": f"Person{contact_id}",
        "lastname": "Example",
    }
    values.update(props)
    store.contacts[str(contact_id)] = values
    return str(contact_id)


def add_contacts(store: HubSpotStore, ids: range, **props: str | None) -> list[str]:
    return [add_contact(store, i, **props) for i in ids]

"""Follow-up tasks over real HTTP: HubSpot's batch create (spec-checked) and Salesforce's Task
sObject through sObject Collections, each with the right owner, due date, body and association."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from connector.lifecycle.handoff import TaskSpec
from connector.sandbox.hubspot_app import HubSpotEmulator
from connector.sandbox.hubspot_store import HubSpotStore, default_contact_properties
from connector.sandbox.server import ServerThread

from .portal import T0, add_contact, make_adapter, spec_checked

DUE = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)


def spec(record_id: str, owner: str, *, crm: str = "hubspot", object_type: str = "contacts") -> TaskSpec:
    return TaskSpec(
        person_id=f"p{record_id}",
        crm=crm,  # type: ignore[arg-type]
        object_type=object_type,
        record_id=record_id,
        owner_id=owner,
        subject=f"Follow up: person{record_id} reached MQL",
        body="Hand-off to Ana at MQL.\n\nWhy: mql by rule mql_pricing_interest: pricing_views_30d=3",
        due_at=DUE,
        priority="high",
        task_type="call",
    )


@pytest.fixture
def portal() -> Iterator[tuple[HubSpotStore, ServerThread]]:
    store = HubSpotStore()
    store.properties["contacts"] = default_contact_properties()
    store.owners = [
        {"id": "70000001", "email": "ana@x.example", "firstName": "Ana", "lastName": "A", "archived": False},
        {"id": "70000009", "email": "old@x.example", "firstName": "Old", "lastName": "O", "archived": True},
    ]
    for cid in (501, 502, 503):
        add_contact(store, cid, T0)
    with spec_checked(HubSpotEmulator(store)) as server:
        yield store, server


def test_hubspot_tasks_are_created_in_one_batch_with_owner_due_body_and_contact_association(portal) -> None:
    store, server = portal
    adapter = make_adapter(server, store)
    results = adapter.create_tasks([spec("501", "70000001"), spec("502", "70000001")])
    assert [r.ok for r in results] == [True, True]
    creates = [r for r in store.requests if r.path == "/crm/v3/objects/tasks/batch/create"]
    assert len(creates) == 1
    assert creates[0].status == 201
    task = store.engagements["tasks"][results[0].task_id or ""]
    assert task["hubspot_owner_id"] == "70000001"
    assert task["hs_task_subject"] == "Follow up: person501 reached MQL"
    assert "Why: mql by rule mql_pricing_interest" in (task["hs_task_body"] or "")
    assert task["hs_task_status"] == "NOT_STARTED"
    assert task["hs_task_priority"] == "HIGH"
    assert task["hs_timestamp"] == "2026-11-03T15:00:00.000Z"
    assert store.associations[("tasks", "contacts")][results[0].task_id or ""] == ["501"]
    assert results[0].task_id in store.associations[("contacts", "tasks")]["501"]
    sent = creates[0].body["inputs"][0]["associations"][0]["types"][0]
    assert sent == {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}


def test_a_refused_hubspot_task_is_reported_by_its_trace_id_and_the_rest_are_created(portal) -> None:
    store, server = portal
    results = make_adapter(server, store).create_tasks([spec("501", "70000009"), spec("503", "70000001")])
    assert [r.ok for r in results] == [False, True]
    assert "70000009" in (results[0].error or "")
    assert len(store.engagements["tasks"]) == 1


def test_find_task_finds_the_task_a_killed_run_created_and_nothing_else(portal) -> None:
    store, server = portal
    adapter = make_adapter(server, store)
    assert adapter.find_task(spec("501", "70000001")) is None
    created = adapter.create_tasks([spec("501", "70000001")])[0].task_id
    assert adapter.find_task(spec("501", "70000001")) == created
    assert adapter.find_task(spec("502", "70000001")) is None


# --------------------------------------------------------------------------- Salesforce


def test_salesforce_tasks_are_created_with_whoid_owner_due_date_and_description(sf_sandbox) -> None:
    from datetime import date

    from sf_fixtures import add_lead, add_user

    store = sf_sandbox.store
    ana = add_user(store, "Ana")["Id"]
    gone = add_user(store, "Gone", active=False)["Id"]
    lead = add_lead(store, ana, Email="lee@acme.example")["Id"]
    other = add_lead(store, ana, Email="kim@acme.example")["Id"]
    adapter = sf_sandbox.adapter()
    ok, refused = (
        spec(lead, ana, crm="salesforce", object_type="Lead"),
        spec(other, gone, crm="salesforce", object_type="Lead"),
    )
    ok = TaskSpec(**{**ok.__dict__, "due_date": date(2026, 11, 3)})
    results = adapter.create_tasks([ok, refused])
    assert [r.ok for r in results] == [True, False]
    assert (results[1].error or "").startswith("INACTIVE_OWNER_OR_USER")
    task = store.table("Task")[results[0].task_id or ""]
    assert (task["WhoId"], task["OwnerId"], task["ActivityDate"]) == (lead, ana, "2026-11-03")
    assert task["Subject"] == ok.subject
    assert "Why: mql by rule" in task["Description"]
    assert (task["Status"], task["Priority"], task["TaskSubtype"]) == ("Not Started", "High", "Task")
    posts = [r for r in store.requests if r.method == "POST" and r.path.endswith("/composite/sobjects")]
    assert len(posts) == 1
    assert adapter.find_task(ok) == results[0].task_id
    assert adapter.find_task(spec(other, ana, crm="salesforce", object_type="Lead")) is None

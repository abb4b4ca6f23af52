"""The hand-off over real HTTP(S) with both CRMs: follow-up tasks created once each (also across a
killed run), manual owners kept, and the SLA recycle."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.sandbox.hubspot_store import hs_datetime
from connector.sandbox.salesforce_demo import NURTURE_QUEUE
from connector.state.store import TASK_CREATED, TASK_SENDING

from .conftest import Joint

pytestmark = pytest.mark.integration

HANDOFF_STAGES = {"marketingqualifiedlead", "salesqualifiedlead"}


@pytest.fixture
def world(joint: Joint) -> Joint:
    """The joint demo on a clock the test moves (`world.now[0]`): SLAs lapse without waiting."""
    return joint.freeze()


def test_each_new_handoff_gets_one_task_for_its_owner_in_the_crm_that_owns_the_person(world: Joint) -> None:
    hs_before, sf_before = world.hubspot_tasks(), world.salesforce_tasks()
    report = world.engine().sync()
    assert report.failures == []
    hs_new = {k: v for k, v in world.hubspot_tasks().items() if k not in hs_before}
    sf_new = {k: v for k, v in world.salesforce_tasks().items() if k not in sf_before}
    assert hs_new, "the joint demo hands people to Sales in HubSpot"
    assert sf_new, "...and in Salesforce"
    assert report.counts["tasks_created"] == len(hs_new) + len(sf_new)
    portal, org = world.demo.hubspot, world.demo.salesforce
    for task_id, task in hs_new.items():
        (contact_id,) = portal.associations[("tasks", "contacts")][task_id]
        contact = portal.contacts[contact_id]
        assert task["hubspot_owner_id"] == contact["hubspot_owner_id"]  # the new owner
        assert contact["lifecyclestage"] in HANDOFF_STAGES
        assert "Why: " in (task["hs_task_body"] or "")
        assert contact["email"] in task["hs_task_subject"]
    for task in sf_new.values():
        who = org.find(task["WhoId"])
        assert who is not None
        assert task["OwnerId"] == who[1]["OwnerId"]
        assert task["Status"] == "Not Started"
        assert "Why: " in task["Description"]
    rows = world.state.handoff_tasks()
    assert len({r.person_id for r in rows}) == len(rows)  # one task per person (crm: auto)
    assert {r.state for r in rows} == {TASK_CREATED}

    again = world.engine().sync()
    assert again.counts["tasks_created"] == 0
    assert again.counts["handoffs"] == 0
    assert len(world.hubspot_tasks()) == len(hs_before) + len(hs_new)
    assert len(world.salesforce_tasks()) == len(sf_before) + len(sf_new)


class Killed(BaseException):
    """Stands in for SIGKILL between the CRM's answer and the journal's update."""


def test_a_run_killed_after_the_crm_created_the_tasks_never_creates_them_twice(world: Joint) -> None:
    engine = world.engine()
    adapter = engine.crms["hubspot"].adapter
    real = adapter.create_tasks  # type: ignore[attr-defined]

    def create_then_die(tasks):  # type: ignore[no-untyped-def]
        real(tasks)
        raise Killed

    adapter.create_tasks = create_then_die  # type: ignore[attr-defined]
    with pytest.raises(Killed):
        engine.sync()
    in_doubt = [r for r in world.state.handoff_tasks() if r.state == TASK_SENDING]
    assert in_doubt
    assert all(r.crm == "hubspot" for r in in_doubt)
    created = len(world.hubspot_tasks())

    rerun = world.engine().sync()
    assert rerun.counts["tasks_recovered"] == len(in_doubt)
    assert rerun.counts["tasks_resent"] == 0
    for row in world.state.handoff_tasks():
        assert row.state == TASK_CREATED
    by_contact: dict[str, int] = {}
    for task_id in world.hubspot_tasks():
        for contact_id in world.demo.hubspot.associations[("tasks", "contacts")].get(task_id, []):
            by_contact[contact_id] = by_contact.get(contact_id, 0) + 1
    assert len(world.hubspot_tasks()) >= created
    assert max(by_contact.values()) == 1


def test_a_task_that_never_reached_the_crm_is_sent_by_the_next_run(world: Joint) -> None:
    engine = world.engine()
    adapter = engine.crms["hubspot"].adapter

    def die_before_sending(tasks):  # type: ignore[no-untyped-def]
        raise Killed

    adapter.create_tasks = die_before_sending  # type: ignore[attr-defined]
    with pytest.raises(Killed):
        engine.sync()
    assert world.hubspot_tasks() == {}
    in_doubt = [r for r in world.state.handoff_tasks() if r.state == TASK_SENDING and r.crm == "hubspot"]
    rerun = world.engine().sync()
    assert rerun.counts["tasks_resent"] == len(in_doubt) > 0
    assert rerun.counts["tasks_created"] >= len(in_doubt)
    assert len(world.hubspot_tasks()) == len([r for r in world.state.handoff_tasks() if r.crm == "hubspot"])


def test_owners_a_person_set_after_the_connector_are_kept(world: Joint) -> None:
    world.engine().sync()
    portal, org = world.demo.hubspot, world.demo.salesforce
    # HubSpot: a rep hands the contact the connector assigned to a colleague, who then leaves
    # (archived): the contact stays theirs.
    wrote = world.state.last_written("hubspot", "contacts", sorted(portal.contacts))
    contact_id, contact = next(
        (k, c) for k, c in portal.contacts.items()
        if c.get("lifecyclestage") in HANDOFF_STAGES and "hubspot_owner_id" in wrote.get(k, {})
    )  # fmt: skip
    archived = next(str(o["id"]) for o in portal.owners if o.get("archived"))
    later = world.now[0] + timedelta(minutes=5)
    contact["hubspot_owner_id"] = archived
    contact["lastmodifieddate"] = hs_datetime(later)
    # Salesforce: a manager puts a handed-off lead back into a queue.
    lead_id, lead = next(
        (k, r) for k, r in org.records["Lead"].items()
        if str(r.get("OwnerId") or "").startswith("005") and r.get("MQL_Date__c")
    )  # fmt: skip
    lead["OwnerId"] = NURTURE_QUEUE
    lead["SystemModstamp"] = lead["LastModifiedDate"] = later.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    world.now[0] = later + timedelta(minutes=5)
    engine = world.engine()
    engine.sync()
    assert portal.contacts[contact_id]["hubspot_owner_id"] == archived
    assert org.records["Lead"][lead_id]["OwnerId"] == NURTURE_QUEUE
    explained = engine.explain(contact_id)
    assert explained is not None
    assert "set by a person after the connector's last write" in (explained.routing.reason)


def test_a_lapsed_sla_recycles_untouched_handoffs_and_a_touched_one_stays(world: Joint) -> None:
    world.engine().sync()
    portal = world.demo.hubspot
    handed = world.state.handoffs([p for p in _people(world)])
    hubspot_people = {
        cid: c for cid, c in portal.contacts.items()
        if c.get("lifecyclestage") in HANDOFF_STAGES and world.state.find_person(cid) in handed
        and c.get("hs_lead_status") in ("NEW", None)
    }  # fmt: skip
    assert len(hubspot_people) >= 2
    touched_id, quiet_id = sorted(hubspot_people)[:2]
    # A rep calls the first one the next day (logged in HubSpot, associated with the contact).
    call_at = world.now[0] + timedelta(days=1)
    portal.engagements.setdefault("calls", {})["99000001"] = {
        "hs_object_id": "99000001", "hs_timestamp": hs_datetime(call_at),
        "hs_createdate": hs_datetime(call_at), "hs_lastmodifieddate": hs_datetime(call_at),
        "hs_call_direction": "OUTBOUND",
        "hs_call_status": "COMPLETED", "hs_call_title": "Intro call", "hubspot_owner_id": "70000001",
    }  # fmt: skip
    portal.associate("contacts", touched_id, "calls", "99000001")
    world.now[0] += timedelta(days=7)  # far past 16 business hours
    world.engine().sync()
    assert portal.contacts[quiet_id]["hs_lead_status"] == "BAD_TIMING"  # nurture
    assert portal.contacts[touched_id]["hs_lead_status"] != "BAD_TIMING"
    quiet_pid = world.state.find_person(quiet_id)
    assert quiet_pid is not None
    assert world.state.handoffs([quiet_pid])[quiet_pid].recycled_by == "handoff_sla_lapsed"


def _people(world: Joint) -> list[str]:
    return [p for p in (world.state.find_person(cid) for cid in world.demo.hubspot.contacts) if p]

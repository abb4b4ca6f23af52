"""The demo's hand-off scenarios: follow-up tasks checked against the ground truth, and owners a
person set after the connector's write that the next sync keeps.

Kept apart from `demo.py` (and from the routing scenarios) so each part of the demo stays small.
The ground truth for tasks is derived from the demo data's written expectations, not from the
engine: a person gets exactly one follow-up task when the sync hands them to Sales — their
expected stage is a hand-off stage (MQL/SQL) and the sync changes that record's stage or owner —
and nobody else gets one. The task belongs to the record's owner after the sync.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connector.sandbox.hubspot_store import hs_datetime
from connector.sandbox.salesforce_demo import NURTURE_QUEUE, JointDemo
from connector.sandbox.salesforce_store import sf_datetime
from connector.state.store import StateStore

HS_HANDOFF = frozenset({"marketingqualifiedlead", "salesqualifiedlead"})
SF_HANDOFF = {
    "Lead": frozenset({"Marketing Qualified", "Sales Accepted"}),
    "Contact": frozenset({"MQL", "SQL"}),
}
SF_STAGE = {"Lead": "Status", "Contact": "Lifecycle_Stage__c"}


@dataclass
class Before:
    """Each record's stage and owner as seeded, and the tasks that existed, before the first sync."""

    hubspot: dict[str, tuple[Any, Any]]
    salesforce: dict[str, tuple[Any, Any]]
    hubspot_tasks: frozenset[str]
    salesforce_tasks: frozenset[str]


@dataclass
class TaskCheck:
    expected: int
    hubspot: list[dict[str, Any]] = field(default_factory=list)
    salesforce: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def snapshot(joint: JointDemo) -> Before:
    org = joint.salesforce.records
    return Before(
        {
            cid: (c.get("lifecyclestage"), c.get("hubspot_owner_id"))
            for cid, c in joint.hubspot.contacts.items()
        },
        {
            rid: (row.get(SF_STAGE[obj]), row.get("OwnerId"))
            for obj in ("Lead", "Contact")
            for rid, row in org.get(obj, {}).items()
        },
        frozenset(joint.hubspot.engagements.get("tasks", {})),
        frozenset(org.get("Task", {})),
    )


def check_tasks(joint: JointDemo, before: Before) -> TaskCheck:
    """Every person the sync handed to Sales has exactly one new task, for their owner; nobody else."""
    portal, org = joint.hubspot, joint.salesforce.records
    people: dict[str, set[tuple[str, str]]] = {}  # person key -> records (crm, id) of theirs
    handed: set[str] = set()
    for o in joint.hubspot_expected:
        people.setdefault(o.email, set()).add(("hubspot", o.contact_id))
        if o.lifecyclestage in HS_HANDOFF and _changed(
            before.hubspot[o.contact_id], portal.contacts[o.contact_id]
        ):
            handed.add(o.email)
    by_contact = {o.contact_id: o.email for o in joint.hubspot_expected}
    for e in joint.salesforce_expected:
        key = by_contact.get(e.owner_as_hubspot or "", e.email)
        people.setdefault(key, set()).add(("salesforce", e.record_id))
        row = org[e.object_type][e.record_id]
        now = (row.get(SF_STAGE[e.object_type]), row.get("OwnerId"))
        if e.stage in SF_HANDOFF[e.object_type] and not e.untouched and now != before.salesforce[e.record_id]:
            handed.add(key)
    owner_of: dict[tuple[str, str], str] = {}
    tasks: dict[str, list[tuple[str, str]]] = {}
    result = TaskCheck(expected=len(handed))
    for task_id, task in portal.engagements.get("tasks", {}).items():
        if task_id in before.hubspot_tasks:
            continue
        for contact_id in portal.associations.get(("tasks", "contacts"), {}).get(task_id, []):
            tasks.setdefault(by_contact.get(contact_id, contact_id), []).append(("hubspot", task_id))
            owner_of[("hubspot", task_id)] = portal.contacts[contact_id].get("hubspot_owner_id") or ""
            result.hubspot.append({**task, "contact": portal.contacts[contact_id].get("email")})
            if task.get("hubspot_owner_id") != owner_of[("hubspot", task_id)]:
                result.problems.append(f"HubSpot task {task_id} is not owned by its contact's owner")
    for task_id, task in org.get("Task", {}).items():
        if task_id in before.salesforce_tasks:
            continue
        key = next(
            (k for k, recs in people.items() if ("salesforce", task.get("WhoId")) in recs),
            str(task["WhoId"]),
        )
        tasks.setdefault(key, []).append(("salesforce", task_id))
        who = next(
            org[obj][task["WhoId"]] for obj in ("Lead", "Contact") if task["WhoId"] in org.get(obj, {})
        )
        result.salesforce.append({**task, "who": who.get("Email")})
        if task.get("OwnerId") != who.get("OwnerId"):
            result.problems.append(f"Salesforce task {task_id} is not owned by its record's owner")
    for key in sorted(handed):
        found = tasks.get(key, [])
        if len(found) != 1:
            result.problems.append(f"{key}: handed to Sales, expected one follow-up task, found {len(found)}")
    for key in sorted(set(tasks) - handed):
        result.problems.append(f"{key}: not handed to Sales by this sync, yet got {len(tasks[key])} task(s)")
    return result


def _changed(seeded: tuple[Any, Any], contact: dict[str, Any]) -> bool:
    return seeded != (contact.get("lifecyclestage"), contact.get("hubspot_owner_id"))


@dataclass(frozen=True)
class ManualOwner:
    """A record whose owner a person changed after the connector wrote one."""

    crm: str
    record_id: str
    email: str
    connector_owner: str
    human_owner: str


def change_owners_as_a_human(joint: JointDemo, state: StateStore, now: datetime) -> list[ManualOwner]:
    """After the first sync: a rep reassigns one contact the connector routed to a colleague, and a
    manager puts one lead the connector routed back into the nurture queue (as people do in the CRM).
    Two different people, each in one CRM only, so each scenario reads on its own."""
    changed: list[ManualOwner] = []
    later = now + timedelta(seconds=1)
    portal = joint.hubspot

    def only_in(crm: str, record_id: str) -> bool:
        pid = state.find_person(record_id)
        return pid is not None and {c for c, _o, _r in state.records_of(pid)} == {crm}

    last_written = state.last_written
    hs_written = last_written("hubspot", "contacts", sorted(portal.contacts))
    active = [str(o["id"]) for o in portal.owners if not o.get("archived")]
    for cid, contact in sorted(portal.contacts.items()):
        ours = hs_written.get(cid, {}).get("hubspot_owner_id")
        if (
            ours
            and contact.get("hubspot_owner_id") == ours
            and contact.get("lifecyclestage") in HS_HANDOFF
            and only_in("hubspot", cid)
        ):
            colleague = next(o for o in reversed(active) if o != ours)
            contact["hubspot_owner_id"] = colleague
            contact["lastmodifieddate"] = hs_datetime(later)
            changed.append(ManualOwner("hubspot", cid, str(contact.get("email")), ours, colleague))
            break
    leads = joint.salesforce.records.get("Lead", {})
    sf_written = last_written("salesforce", "Lead", sorted(leads))
    for lid, lead in sorted(leads.items()):
        ours = sf_written.get(lid, {}).get("OwnerId")
        if (
            ours
            and lead.get("OwnerId") == ours
            and lead.get("Status") in SF_HANDOFF["Lead"]
            and only_in("salesforce", lid)
        ):
            lead["OwnerId"] = NURTURE_QUEUE
            lead["LastModifiedDate"] = lead["SystemModstamp"] = sf_datetime(later)
            changed.append(ManualOwner("salesforce", lid, str(lead.get("Email")), ours, NURTURE_QUEUE))
            break
    return changed


def owners_kept(joint: JointDemo, changed: list[ManualOwner]) -> list[str]:
    """Problems: manual owners the second sync did not keep."""
    problems = []
    for m in changed:
        if m.crm == "hubspot":
            now = joint.hubspot.contacts[m.record_id].get("hubspot_owner_id")
        else:
            now = joint.salesforce.records["Lead"][m.record_id].get("OwnerId")
        if now != m.human_owner:
            problems.append(f"{m.email}: owner set by a person ({m.human_owner}) was overwritten with {now}")
    return problems

"""Drift: a person in both CRMs whose stage or owner differs between HubSpot and Salesforce.

The connector writes one decision to every record of a person, so after a run both CRMs normally
agree. They disagree when something keeps them apart: a rep changed the owner by hand in one CRM
(an active owner is kept), a Sales-owned stage set in one CRM only, an object the mapping may not
write (Salesforce Contacts), or a write the CRM refused. RevOps wants that list, not a silent
disagreement, so `status` shows it and `connector_drift_people` counts it.

Owners are compared as reps (`routing.yaml` lists each rep's id in each CRM): HubSpot owner 70000001
and Salesforce user 005...Rep01 are the same rep. An owner id no rep names cannot be matched across
CRMs and is shown as `<crm>:<id>` (it then always counts as a difference).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RecordView:
    """One CRM record of a person as it stands after the run: canonical stage and owner id."""

    crm: str
    object_type: str
    record_id: str
    stage: str | None
    owner_id: str | None


@dataclass(frozen=True)
class Drift:
    """What differs for one person: per CRM, its stage and owner (as rep keys where known)."""

    person_id: str
    fields: tuple[str, ...]
    """"stage", "owner" or both."""
    stages: tuple[tuple[str, str | None], ...]
    """(crm, canonical stage) per CRM, CRMs sorted."""
    owners: tuple[tuple[str, str | None], ...]
    """(crm, rep key or "<crm>:<owner id>") per CRM."""


def rep_index(reps: Mapping[str, Mapping[str, str | None]]) -> dict[tuple[str, str], str]:
    """(crm, owner id) -> rep key, from rep key -> {crm: owner id}."""
    out: dict[tuple[str, str], str] = {}
    for rep, ids in reps.items():
        for crm, owner_id in ids.items():
            if owner_id:
                out[(crm, owner_id)] = rep
    return out


def person_drift(
    person_id: str,
    records: Sequence[RecordView],
    *,
    stage_order: Sequence[str],
    reps: Mapping[tuple[str, str], str],
) -> Drift | None:
    """The drift of one person, or None when they are in one CRM only or both CRMs agree.

    Per CRM the stage is the highest any of its records shows (a Salesforce lead and its contact
    count as one side), and the owner is that of the record showing it (else any record's owner).
    A value is compared only when every side has one: a Salesforce lead always has an owner (often
    a queue) while its HubSpot contact stays unowned until the hand-off, which is not a conflict.
    """
    by_crm: dict[str, list[RecordView]] = {}
    for record in records:
        by_crm.setdefault(record.crm, []).append(record)
    if len(by_crm) < 2:
        return None
    rank = {stage: i for i, stage in enumerate(stage_order)}
    stages: list[tuple[str, str | None]] = []
    owners: list[tuple[str, str | None]] = []
    for crm in sorted(by_crm):
        # ties (a lead and its contact at one stage) broken by ids, so record order never matters
        side = sorted(
            by_crm[crm],
            key=lambda r: (rank.get(r.stage or "", -1), r.owner_id is not None, r.object_type, r.record_id),
        )
        top = side[-1]
        stages.append((crm, top.stage))
        owner_id = top.owner_id or next((r.owner_id for r in reversed(side) if r.owner_id), None)
        owners.append((crm, None if owner_id is None else reps.get((crm, owner_id), f"{crm}:{owner_id}")))
    fields = []
    if _differ([s for _crm, s in stages]):
        fields.append("stage")
    if _differ([o for _crm, o in owners]):
        fields.append("owner")
    if not fields:
        return None
    return Drift(person_id, tuple(fields), tuple(stages), tuple(owners))


def _differ(values: Sequence[str | None]) -> bool:
    return None not in values and len(set(values)) > 1

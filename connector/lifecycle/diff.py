"""Diff: what to write to one CRM record, given the decision and what the CRM shows now.

The connector only ever writes what changed, only properties the mapping allows, and never
against a person's history:

* stage moves forward only (HubSpot refuses backwards `lifecyclestage` moves anyway), a stage the
  connector does not know (a custom value) or one Sales owns is left alone, and the connector never
  writes a Sales-owned stage itself. The one exception: a decision the criteria moved back
  (`moved_back_by`, only with `allow_backward_moves: true` in criteria.yaml) is written when this
  CRM mapping's stage allows backward moves too (`stage.allow_backwards`); both switches, or no
  backward write. `backward_note` says which one held it back, for `explain`;
* lead status yields to people: if the CRM value differs from what the connector last wrote, a
  human changed it after us and their value wins;
* owner is written when routing chose someone other than the current owner (routing already
  decided whether an existing owner is kept);
* the reason and the time of a stage change go to their own properties when the mapping names
  them (`stage_reason`, `stage_date`), and only together with a stage change, so the CRM always
  says why the stage it shows was set;
* a record whose lead status is one of the mapping's `protected` values (e.g. "Closed -
  Converted") belongs to Sales: nothing is written to it at all.

Equal inputs give no intent, which is what makes a second identical run write nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import UTC

from connector.mapping.schema import ValueMap
from connector.model import Crm, Decision, WriteIntent


@dataclass(frozen=True)
class FieldMap:
    """The CRM properties one mapping file lets the connector own, with canonical -> CRM values."""

    stage: ValueMap
    lead_status: ValueMap | None
    owner_property: str | None
    writes: frozenset[str]
    reason_property: str | None = None
    date_property: str | None = None
    protected_statuses: frozenset[str] = field(default_factory=frozenset)
    """Lead status values (casefolded) that put a record out of the connector's reach."""
    allow_backwards: bool = False
    """The mapping lets the stage move back (HubSpot: cleared then set; Salesforce: one update)."""


MAX_REASON_CHARS = 1000
"""Reasons written to the CRM are cut here: a CRM text field is for people, the audit has it all."""


def plan_write(
    *,
    crm: Crm,
    object_type: str,
    record_id: str,
    person_id: str,
    decision: Decision,
    owner_id: str | None,
    current: Mapping[str, str | None],
    last_written: Mapping[str, str | None],
    fields: FieldMap,
    stage_order: Sequence[str],
    sales_owned: Set[str],
) -> WriteIntent | None:
    """The changes for one record, or None when the CRM already shows what the decision says.

    `current` holds the CRM's values of owned properties (None or "" = empty); `last_written` what
    the connector last wrote per property (absent = never wrote it).
    """
    changes: dict[str, str] = {}
    if _protected(current, fields):
        return None
    backward = decision.moved_back_by is not None and fields.allow_backwards
    stage_change = _stage_change(decision.stage, current, fields.stage, stage_order, sales_owned, backward)
    if stage_change is not None and fields.stage.property in fields.writes:
        changes[fields.stage.property] = stage_change
        if fields.reason_property is not None:
            changes[fields.reason_property] = _cut(decision.reason)
        if fields.date_property is not None:
            moment = decision.evaluated_at.astimezone(UTC)
            changes[fields.date_property] = (
                moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
            )
    status_change = _lead_status_change(decision.lead_status, current, last_written, fields.lead_status)
    if status_change is not None and fields.lead_status is not None:
        changes[fields.lead_status.property] = status_change
    owner_changed = _owner_changes(owner_id, current, fields.owner_property)
    if owner_changed and owner_id is not None and fields.owner_property is not None:
        changes[fields.owner_property] = owner_id

    allowed = {prop: value for prop, value in changes.items() if prop in fields.writes}
    if not allowed:
        return None
    reason = decision.reason
    if fields.owner_property in allowed and decision.owner_reason:
        reason = f"{reason}; owner: {decision.owner_reason}"
    return WriteIntent(
        crm=crm,
        object_type=object_type,
        record_id=record_id,
        person_id=person_id,
        changes=allowed,
        before={prop: current.get(prop) for prop in allowed},
        reason=reason,
    )


def _protected(current: Mapping[str, str | None], fields: FieldMap) -> bool:
    if fields.lead_status is None or not fields.protected_statuses:
        return False
    shown = current.get(fields.lead_status.property)
    return shown is not None and shown.strip().casefold() in fields.protected_statuses


def _cut(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 1] + "…"


def _is_empty(value: str | None) -> bool:
    return value is None or not value.strip()


def backward_note(
    *,
    decision: Decision,
    current: Mapping[str, str | None],
    fields: FieldMap,
    stage_order: Sequence[str],
    sales_owned: Set[str],
) -> str | None:
    """Why a stage the criteria moved back is not written to this record, or None when it is (or
    there was no backward move). Said by `explain`, so nobody has to guess which switch is off."""
    if decision.moved_back_by is None or fields.allow_backwards or _protected(current, fields):
        return None
    shown = (current.get(fields.stage.property) or "").strip()
    shown_stage = _canonical(shown, fields.stage, stage_order) if shown else None
    if shown_stage is None or shown_stage in sales_owned or decision.stage not in stage_order:
        return None
    if stage_order.index(decision.stage) >= stage_order.index(shown_stage):
        return None
    return (
        f"the criteria move the stage back to {decision.stage} ({decision.moved_back_by}), but this "
        f"CRM mapping does not allow backward stage moves: {fields.stage.property} stays {shown!r} "
        "(set stage.allow_backwards: true in the mapping file to allow it)"
    )


def _stage_change(
    stage: str,
    current: Mapping[str, str | None],
    values: ValueMap,
    stage_order: Sequence[str],
    sales_owned: Set[str],
    backward: bool = False,
) -> str | None:
    """The CRM stage value to write, or None: forward only (backward only when `backward`, the two
    switches), never from or into a Sales-owned stage."""
    desired = values.values.get(stage)
    if stage in sales_owned or stage not in stage_order or desired is None:
        return None
    shown = current.get(values.property)
    if shown is None or _is_empty(shown):
        return desired
    if shown.strip() == desired:
        return None
    shown_stage = _canonical(shown, values, stage_order)
    if shown_stage is None or shown_stage in sales_owned:
        return None  # a custom stage we cannot rank, or Sales' stage: not ours to move
    if stage_order.index(stage) > stage_order.index(shown_stage):
        return desired
    if backward and stage_order.index(stage) < stage_order.index(shown_stage):
        return desired
    return None


def _canonical(shown: str, values: ValueMap, stage_order: Sequence[str]) -> str | None:
    """Map a CRM value back to a canonical stage (case-insensitively); the highest if several share it."""
    wanted = shown.strip().casefold()
    matches = [
        stage
        for stage, crm_value in values.values.items()
        if crm_value.casefold() == wanted and stage in stage_order
    ]
    return max(matches, key=stage_order.index) if matches else None


def _lead_status_change(
    status: str | None,
    current: Mapping[str, str | None],
    last_written: Mapping[str, str | None],
    values: ValueMap | None,
) -> str | None:
    """The lead status to write, or None. A value a human set after our last write wins."""
    if status is None or values is None:
        return None
    desired = values.values.get(status)
    shown = current.get(values.property)
    if desired is None or shown == desired:
        return None
    if shown is None or _is_empty(shown):
        return desired
    if values.property in last_written and last_written[values.property] == shown:
        return desired  # still what we wrote: nobody overrode it, so it is ours to update
    return None


def _owner_changes(
    owner_id: str | None, current: Mapping[str, str | None], owner_property: str | None
) -> bool:
    if owner_id is None or owner_property is None:
        return False
    return (current.get(owner_property) or "").strip() != owner_id

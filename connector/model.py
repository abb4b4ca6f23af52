"""Frozen domain types shared by every layer: the vocabulary, no I/O and no behaviour beyond shape.

Values that come from a CRM are normalised to these before the lifecycle core sees them, so the
core never learns which CRM (or which SDK) produced a record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

FieldValue = str | int | float | bool | None
"""A canonical person field value after type coercion from the CRM's string."""

Crm = Literal["hubspot", "salesforce"]


@dataclass(frozen=True)
class Activity:
    """One dated interaction on a person's timeline.

    `type` is a canonical activity type declared in criteria.yaml (page_view, form_submission, chat...);
    `channel` is derived from it there. `source_id` is unique per CRM source so re-reads deduplicate.
    """

    person_id: str
    type: str
    occurred_at: datetime
    source: str
    source_id: str
    url: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class SourceActivity:
    """An activity as an adapter reads it: tied to a CRM record, before identity resolution."""

    crm: Crm
    object_type: str
    record_id: str
    type: str
    occurred_at: datetime
    source: str
    source_id: str
    url: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class CrmRecord:
    """One CRM record as pulled: canonical fields for the criteria plus the raw values of owned fields.

    `owned` holds the CRM's current values of the fields the connector may write (property name ->
    value or None), which is what the diff compares against.
    """

    crm: Crm
    object_type: str
    record_id: str
    email: str | None
    fields: dict[str, FieldValue]
    owned: dict[str, str | None]
    modified_at: datetime | None = None
    source_values: dict[str, str | None] = field(default_factory=dict)
    """Raw values read only to derive activities (e.g. a "last email open" date property)."""
    links: tuple[tuple[Crm, str, str], ...] = ()
    """Records of the same person in another CRM, as this CRM declares them: (crm, object, id),
    e.g. HubSpot's `salesforceleadid` / `salesforcecontactid` on a contact."""


@dataclass(frozen=True)
class Owner:
    """A CRM user or queue that can own records. `active` is False for archived/inactive users."""

    crm: Crm
    id: str
    email: str | None
    name: str
    active: bool
    is_queue: bool = False


@dataclass(frozen=True)
class RuleTrace:
    """One rule as evaluated: what it said, whether it held, and the values it read."""

    kind: Literal["stage", "disqualifier", "fit", "routing", "keep", "recycle", "move_back"]
    name: str
    expression: str
    matched: bool
    values: dict[str, FieldValue] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Decision:
    """What the criteria say about one person at one evaluation time, with the reasons."""

    person_id: str
    evaluated_at: datetime
    criteria_version: str
    stage: str
    computed_stage: str
    lead_status: str | None
    fit_score: int
    fit_grade: str
    signals: dict[str, int | float]
    trace: tuple[RuleTrace, ...]
    reason: str
    disqualified_by: str | None = None
    owner_id: str | None = None
    owner_reason: str | None = None
    recycled_by: str | None = None
    """The recycle rule that sent a stalled hand-off back to nurture (it sets `lead_status`)."""
    rule: str | None = None
    """The stage rule that fired (None: the default stage)."""
    moved_back_by: str | None = None
    """The recycle rule or disqualifier that moved the stage back (criteria `allow_backward_moves`).
    The diff writes a lower stage only for such a decision, and only where the CRM mapping allows it."""


@dataclass(frozen=True)
class WriteIntent:
    """One record's changes to send. `changes` maps CRM property -> new value; `before` has the old ones."""

    crm: Crm
    object_type: str
    record_id: str
    person_id: str
    changes: dict[str, str]
    before: dict[str, str | None]
    reason: str


@dataclass(frozen=True)
class WriteResult:
    """The CRM's answer for one intent. `error` is the CRM's own message when it refused.

    `gone` says the record no longer exists (deleted or merged away between read and write): there
    is nothing to retry, so it is audited and not parked.
    """

    intent: WriteIntent
    ok: bool
    error: str | None = None
    retryable: bool = False
    gone: bool = False


@dataclass(frozen=True)
class TaskResult:
    """What a CRM answered to one follow-up task create: its id, or why not (`key` = the task's)."""

    key: str
    ok: bool
    task_id: str | None = None
    error: str | None = None
    retryable: bool = True


# --------------------------------------------------------------------------- routing pool turns


@dataclass(frozen=True)
class PoolState:
    """A pool's shared state as the store holds it, read under the pool's lock."""

    pointer: int = 0
    current: Mapping[str, int] = field(default_factory=dict)
    """Smooth weighted round-robin: each member's current weight (weighted pools only)."""
    counts: Mapping[str, int] = field(default_factory=dict)
    """People each member got from this pool today (the routing day)."""


@dataclass(frozen=True)
class PoolPick:
    """The member whose turn it is, the pool state to store, and every member's verdict in order."""

    rep: str | None
    """None: nobody in the pool is eligible (the pool state is then left as it was)."""
    pointer: int
    current: dict[str, int]
    considered: tuple[tuple[str, str], ...]
    """(member, verdict) in the order looked at; the picked member's verdict is "picked"."""


@dataclass(frozen=True)
class Assignment:
    """A person's recorded pool turn (one per person, whatever the number of workers)."""

    person_id: str
    rep: str
    pool: str
    rule: str
    day: str
    reused: bool = False
    """True when the person already had this assignment: no new turn was taken."""

"""The hand-off beyond the owner write: manual owners win, follow-up tasks, business hours, the SLA.

Pure, like the rest of `lifecycle/`: the engine passes what the CRM shows, what the connector last
wrote, the person's timeline and a clock value; these functions return decisions with reasons.

* Owners. Routing (routing.py) decides who should own a person. Two facts about the *current*
  owner override it here: an owner a person set after the connector's last owner write is never
  overwritten (the CRM value differs from the connector's last-written one and is not empty), and
  a Salesforce Queue (id prefix 00G) counts as "nobody yet" when `queue_counts_as_unowned` is on,
  so routing picks a rep (off: the queue is kept like any owner). A manual owner wins over the
  queue rule: a person who put the record in a queue after us meant it.
* Follow-up task. One per hand-off (a person first at a hand-off stage with an owner), for that
  owner, due `due_business_hours` business hours later (`add_business_hours`), in the CRM that
  owns the person (`task_crms`).
* SLA. `sla_state` says whether Sales touched the person since the hand-off and whether the SLA
  lapsed without it; recycle rules in criteria.yaml read that as `sla_lapsed`, `sales_touched`
  and `handoff_hours`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from connector.lifecycle.routing import RoutingOutcome, rep_owner_id
from connector.lifecycle.signals import as_utc
from connector.mapping.schema import BusinessCalendar, HandoffSettings, Routing
from connector.model import Activity, Crm, FieldValue, RuleTrace

QUEUE_PREFIX = "00G"
"""Salesforce key prefix of Group records; an owner with it is a Queue (api-facts §8.1)."""

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MAX_DAYS_SCANNED = 3660
"""A calendar with no working day for ten years is a mapping error, not a loop."""


# --------------------------------------------------------------------------- owners


def is_queue(owner_id: str | None) -> bool:
    """True for a Salesforce Queue id (Group key prefix 00G)."""
    return bool(owner_id) and str(owner_id).startswith(QUEUE_PREFIX)


def owner_for_routing(current_owner_id: str | None, settings: HandoffSettings) -> str | None:
    """The current owner as routing should see it: a queue is nobody when the mapping says so."""
    if is_queue(current_owner_id) and settings.queue_counts_as_unowned:
        return None
    return current_owner_id


def manually_set(
    current_owner_id: str | None, last_written: Mapping[str, str | None], owner_property: str
) -> bool:
    """A person set the owner after the connector's last owner write: it differs and is not empty.

    A record the connector never wrote an owner to has no "after" to compare with; its owner is
    handled by `keep_existing_owner` (and inactive/queue rules) as before.
    """
    current = (current_owner_id or "").strip()
    if not current or owner_property not in last_written:
        return False
    return current != (last_written.get(owner_property) or "").strip()


def protect_owner(
    outcome: RoutingOutcome,
    *,
    routing: Routing,
    crm: Crm,
    current_owner_id: str | None,
    last_written: Mapping[str, str | None],
    owner_property: str | None,
) -> RoutingOutcome:
    """Apply the two owner facts to routing's outcome (see module doc); unchanged when neither holds.

    Only an outcome that would change the owner is overridden: a person not at a hand-off stage,
    or one routing keeps anyway, keeps routing's own reason. An outcome still waiting for its pool
    turn (`claim`) counts as a change: applied before the claim, a kept owner takes no turn.
    """
    current = (current_owner_id or "").strip() or None
    if (outcome.owner_id is None and outcome.claim is None) or current is None:
        return _note_queue(outcome, current, routing.handoff)
    values: dict[str, FieldValue] = {"current_owner_id": current}
    if owner_property is not None and manually_set(current, last_written, owner_property):
        wrote = last_written.get(owner_property) or "(empty)"
        values["connector_last_wrote"] = wrote
        note = f"kept owner {current}: set by a person after the connector's last write ({wrote})"
        if outcome.owner_id != current:
            note += f"; manual owners are never overwritten (routing would have chosen {outcome.owner_id})"
        trace = RuleTrace("keep", "manual_owner", "", True, values, note)
        return _kept(outcome, routing, crm, current, trace)
    if outcome.owner_id == current:
        return outcome
    if is_queue(current) and not routing.handoff.queue_counts_as_unowned:
        note = f"kept queue {current}: queue_counts_as_unowned is off, so a queue is an owner"
        return _kept(outcome, routing, crm, current, RuleTrace("keep", "queue_owner", "", True, values, note))
    return _note_queue(outcome, current, routing.handoff)


def _kept(
    outcome: RoutingOutcome, routing: Routing, crm: Crm, owner_id: str, trace: RuleTrace
) -> RoutingOutcome:
    rep = next((key for key, r in routing.reps.items() if rep_owner_id(r, crm) == owner_id), None)
    return replace(
        outcome,
        owner_id=owner_id,
        rep=rep,
        pool=None,
        rule=None,
        reason=trace.note,
        trace=(*outcome.trace, trace),
        claim=None,
    )


def _note_queue(outcome: RoutingOutcome, current: str | None, settings: HandoffSettings) -> RoutingOutcome:
    """Say why a queue-owned record was routed (routing itself saw no owner)."""
    if not (
        is_queue(current) and settings.queue_counts_as_unowned and outcome.owner_id not in (None, current)
    ):
        return outcome
    note = f"current owner {current} is a queue, which counts as unowned (queue_counts_as_unowned)"
    trace = RuleTrace("keep", "queue_owner", "", False, {"current_owner_id": current}, note)
    return replace(outcome, reason=f"{note}; {outcome.reason}", trace=(trace, *outcome.trace))


# --------------------------------------------------------------------------- business hours


@dataclass(frozen=True)
class Calendar:
    """A compiled `BusinessCalendar`: weekdays, opening hours and holidays in one time zone."""

    zone: ZoneInfo
    days: frozenset[int]
    start: time
    end: time
    end_is_midnight: bool
    holidays: frozenset[date]

    @classmethod
    def of(cls, spec: BusinessCalendar) -> Calendar:
        end_midnight = spec.end == "24:00"
        return cls(
            zone=ZoneInfo(spec.timezone),
            days=frozenset(_DAYS.index(d) for d in spec.days),
            start=time.fromisoformat(spec.start),
            end=time(0) if end_midnight else time.fromisoformat(spec.end),
            end_is_midnight=end_midnight,
            holidays=frozenset(spec.holidays),
        )

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def opening(self, day: date) -> datetime:
        """Wall-clock (naive) opening time of `day`."""
        return datetime.combine(day, self.start)

    def closing(self, day: date) -> datetime:
        """Wall-clock (naive) closing time of `day` (midnight after it for an end of 24:00)."""
        if self.end_is_midnight:
            return datetime.combine(day + timedelta(days=1), time(0))
        return datetime.combine(day, self.end)

    def contains(self, moment: datetime) -> bool:
        """True when `moment` is within working hours (both ends included)."""
        local = moment.astimezone(self.zone).replace(tzinfo=None)
        day = local.date()
        if self.end_is_midnight and _is_midnight(local) and self.is_working_day(day - timedelta(days=1)):
            return True
        return self.is_working_day(day) and self.opening(day) <= local <= self.closing(day)


def add_business_hours(start: datetime, hours: int, calendar: Calendar) -> datetime:
    """`start` plus `hours` working hours, as an aware UTC datetime.

    Counting happens in wall-clock time of the calendar's zone (so a 09:00-17:00 day is 8 hours on
    the days clocks change, too: those changes happen at night), then the result is converted to
    UTC. A start outside working hours counts from the next opening; a result that lands exactly
    on a closing time stays there rather than moving to the next morning.
    """
    if hours < 0:
        raise ValueError("hours must not be negative")
    local = as_utc(start).astimezone(calendar.zone).replace(tzinfo=None)
    remaining = timedelta(hours=hours)
    day = local.date()
    cursor = local
    if calendar.end_is_midnight and _is_midnight(local):
        day, cursor = day - timedelta(days=1), local  # midnight closes the previous day
    for _ in range(_MAX_DAYS_SCANNED):
        if calendar.is_working_day(day):
            opens, closes = calendar.opening(day), calendar.closing(day)
            begin = max(cursor, opens)
            if begin <= closes:
                available = closes - begin
                if remaining <= available:
                    return _to_utc(begin + remaining, calendar.zone)
                remaining -= available
        day += timedelta(days=1)
        cursor = calendar.opening(day)
    raise ValueError("the business calendar has no working day in ten years: check days and holidays")


def business_hours_between(start: datetime, end: datetime, calendar: Calendar) -> float:
    """Working hours from `start` to `end` (0 when `end` is not after `start`)."""
    if end <= start:
        return 0.0
    begin = as_utc(start).astimezone(calendar.zone).replace(tzinfo=None)
    finish = as_utc(end).astimezone(calendar.zone).replace(tzinfo=None)
    total = timedelta(0)
    day = begin.date() - timedelta(days=1)
    while day <= finish.date():
        if calendar.is_working_day(day):
            lo = max(begin, calendar.opening(day))
            hi = min(finish, calendar.closing(day))
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total / timedelta(hours=1)


def _is_midnight(local: datetime) -> bool:
    return local == datetime.combine(local.date(), time(0))


def _to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    return local.replace(tzinfo=zone).astimezone(UTC)


# --------------------------------------------------------------------------- follow-up tasks

TaskCrmChoice = Literal["auto", "hubspot", "salesforce", "both"]


@dataclass(frozen=True)
class Target:
    """One CRM record of the person and who owns it after this page's writes."""

    crm: Crm
    object_type: str
    record_id: str
    owner_id: str | None


@dataclass(frozen=True)
class TaskSpec:
    """A follow-up task to create once: for `owner_id`, on `record_id`, due at `due_at`."""

    person_id: str
    crm: Crm
    object_type: str
    record_id: str
    owner_id: str
    subject: str
    body: str
    due_at: datetime
    priority: str
    task_type: str
    due_date: date | None = None
    """The due day in the business time zone (Salesforce `ActivityDate` is a date only)."""

    @property
    def key(self) -> str:
        """Identifies the task across runs (one per person and CRM); sent as HubSpot's trace id."""
        return f"handoff:{self.person_id}:{self.crm}"


def task_targets(targets: Sequence[Target], choice: TaskCrmChoice) -> list[Target]:
    """The records that get the follow-up task: one per chosen CRM, among those with an owner.

    "The CRM that owns the person" is where the owner was assigned: a person in one CRM gets it
    there. A person in both gets it where `choice` says; `auto` picks Salesforce, where Sales
    works (BRIEF: HubSpot is marketing's, Salesforce sales'). Within a CRM a Contact is preferred
    to a Lead (a converted person is worked as the Contact).
    """
    owned = [t for t in targets if t.owner_id]
    by_crm: dict[Crm, Target] = {}
    for target in sorted(owned, key=lambda t: (t.object_type != "Contact", t.object_type, t.record_id)):
        by_crm.setdefault(target.crm, target)
    if not by_crm:
        return []
    if choice == "both":
        return [by_crm[c] for c in ("hubspot", "salesforce") if c in by_crm]
    if choice in by_crm:
        return [by_crm[choice]]
    if choice == "auto":
        return [by_crm.get("salesforce") or by_crm["hubspot"]]
    return []  # the chosen CRM has no record of this person


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def template_names(template: str) -> list[str]:
    """Placeholders a subject template uses (`{name}`), for validation."""
    return _PLACEHOLDER.findall(template)


SUBJECT_NAMES = ("email", "stage", "owner")
"""Placeholders a subject may use besides person fields."""


def render_subject(template: str, names: Mapping[str, Any]) -> str:
    """The subject with placeholders filled (absent values as empty), cut to Salesforce's 255."""

    def fill(match: re.Match[str]) -> str:
        value = names.get(match.group(1))
        return "" if value is None else str(value)

    return _PLACEHOLDER.sub(fill, template)[:255]


def task_spec(
    *,
    settings: HandoffSettings,
    calendar: Calendar,
    target: Target,
    person_id: str,
    person: Mapping[str, FieldValue],
    stage: str,
    owner_name: str,
    reason: str,
    handed_off_at: datetime,
) -> TaskSpec:
    """The task for one target record: subject from the template, body = the explain reason."""
    assert target.owner_id is not None
    names: dict[str, Any] = dict(person)
    names.update({"stage": stage.upper(), "owner": owner_name, "email": person.get("email") or ""})
    due = add_business_hours(handed_off_at, settings.task.due_business_hours, calendar)
    body = (
        f"Hand-off to {owner_name} at {stage.upper()} on "
        f"{as_utc(handed_off_at).strftime('%Y-%m-%d %H:%M UTC')}.\n\nWhy: {reason}"
    )
    return TaskSpec(
        person_id=person_id,
        crm=target.crm,
        object_type=target.object_type,
        record_id=target.record_id,
        owner_id=target.owner_id,
        subject=render_subject(settings.task.subject, names),
        body=body[:32000],
        due_at=due,
        priority=settings.task.priority,
        task_type=settings.task.type,
        due_date=due.astimezone(calendar.zone).date(),
    )


# --------------------------------------------------------------------------- SLA


@dataclass(frozen=True)
class SlaState:
    """The hand-off as recycle rules see it (`RECYCLE_NAMES`: handoff_hours, sla_lapsed, sales_touched)."""

    handoff_hours: int
    sales_touched: bool
    sla_lapsed: bool
    reason: str

    def names(self) -> dict[str, Any]:
        return {
            "handoff_hours": self.handoff_hours,
            "sales_touched": self.sales_touched,
            "sla_lapsed": self.sla_lapsed,
        }


NO_HANDOFF = SlaState(0, False, False, "no hand-off recorded")


def sla_state(
    *,
    handed_off_at: datetime | None,
    now: datetime,
    sla_business_hours: int | None,
    calendar: Calendar,
    timeline: Iterable[Activity],
    touch_types: Set[str],
    lead_status: str | None,
    touch_statuses: Set[str],
) -> SlaState:
    """Did Sales touch the person since the hand-off, and did the SLA lapse without a touch?

    A touch is what `acceptance` in criteria.yaml names: an activity of one of its types (a
    meeting, call or reply, logged by the owner in either CRM) at or after the hand-off, or the
    lead status moved to one of its statuses (a rep worked the lead). The SLA lapses when
    `sla_business_hours` working hours have passed since the hand-off without a touch. Without a
    hand-off (or without an SLA) nothing lapses.
    """
    if handed_off_at is None:
        return NO_HANDOFF
    start, moment = as_utc(handed_off_at), as_utc(now)
    hours = max(int((moment - start) / timedelta(hours=1)), 0)
    touched_by = next(
        (a for a in timeline if a.type in touch_types and start <= as_utc(a.occurred_at) <= moment), None
    )
    status_touch = lead_status is not None and lead_status in touch_statuses
    touched = touched_by is not None or status_touch
    if touched:
        what = f"{touched_by.type} on {as_utc(touched_by.occurred_at):%Y-%m-%d}" if touched_by else ""
        why = what or f"lead status {lead_status}"
        return SlaState(hours, True, False, f"Sales touched the hand-off ({why})")
    if sla_business_hours is None:
        return SlaState(hours, False, False, "no SLA configured")
    deadline = add_business_hours(start, sla_business_hours, calendar)
    if moment < deadline:
        return SlaState(hours, False, False, f"SLA runs until {deadline:%Y-%m-%d %H:%M} UTC")
    return SlaState(
        hours,
        False,
        True,
        f"SLA of {sla_business_hours} business hours lapsed at {deadline:%Y-%m-%d %H:%M} UTC",
    )

"""The engine's hand-off step: after the owner write, record the hand-off and create its tasks.

The decisions live in the pure `connector.lifecycle.handoff`; this module does the I/O around
them for the engine, and is kept apart from `engine.py` so the routing step there stays small:

* before routing, the current owner as routing should see it (a queue may count as nobody) and,
  after it, the manual-owner rule (`adjust_owner`);
* the SLA names recycle rules read, from the person's recorded hand-off (`sla_names`);
* the hand-off time, stamped into the write when the mapping names a CRM property (`stamp`);
* in the page transaction, the hand-off row and its planned follow-up tasks (`record`), once per
  person whatever replays happen;
* after the page commits, the planned tasks sent (`send_tasks`), journalled "sending" first, and
  at the start of a run the tasks a killed run left "sending" settled by asking the CRM
  (`settle_interrupted`). Together: each hand-off's task is created exactly once.

A hand-off is a person's first decision at a hand-off stage with an owner. A follow-up task is
created only when this run's writes made it (the connector moved the stage into a hand-off stage
or assigned the owner): people the connector finds already handed off get a hand-off time (the
SLA starts then) but no task, so turning the feature on does not flood reps with old work.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from connector.errors import ConnectorError, DailyLimitExhausted
from connector.lifecycle import handoff
from connector.lifecycle.handoff import Calendar, Target, TaskSpec
from connector.lifecycle.routing import RoutingOutcome
from connector.mapping.loader import Mappings
from connector.model import Activity, Crm, CrmRecord, Decision, TaskResult, WriteIntent, WriteResult
from connector.state.store import (
    TASK_CREATED,
    TASK_FAILED,
    TASK_PLANNED,
    TASK_SENDING,
    HandoffRow,
    StateStore,
    TaskRow,
)

if TYPE_CHECKING:
    from connector.engine import PersonResult, RunReport

log = logging.getLogger("connector.handoff")

TASK_ATTEMPTS = 5
"""Creates tried per task before it is left "failed" (shown by `status`, retried by nobody)."""


class TaskCreator(Protocol):
    """What an adapter offers for follow-up tasks (both CRM adapters implement it)."""

    def create_tasks(self, tasks: Sequence[TaskSpec]) -> list[TaskResult]: ...

    def find_task(self, task: TaskSpec) -> str | None: ...


@dataclass(frozen=True)
class OwnerFields:
    """Where the owner and the hand-off time go on one CRM object (None: not mapped/written)."""

    owner_property: str | None
    time_property: str | None


class HandoffStep:
    """Hand-off bookkeeping for one engine; `load` the page's people before deciding them."""

    def __init__(self, mappings: Mappings, store: StateStore, adapters: Mapping[Crm, Any]) -> None:
        self.routing = mappings.routing
        self.settings = mappings.routing.handoff
        self.criteria = mappings.criteria
        self.store = store
        self.adapters = adapters
        self.calendar = Calendar.of(self.settings.business_hours)
        self._rows: dict[str, HandoffRow] = {}

    # ------------------------------------------------------------------ deciding (per person)

    def load(self, person_ids: Sequence[str]) -> None:
        """Read the hand-offs of the people about to be decided (one query per 500). Replaces the
        previous page's: memory stays flat however many people a run sees."""
        self._rows = self.store.handoffs(person_ids)

    def owner_for_routing(self, current_owner_id: str | None) -> str | None:
        return handoff.owner_for_routing(current_owner_id, self.settings)

    def adjust_owner(
        self,
        outcome: RoutingOutcome,
        record: CrmRecord,
        current_owner_id: str | None,
        last_written: Mapping[str, str | None],
        owner_property: str | None,
    ) -> RoutingOutcome:
        return handoff.protect_owner(
            outcome,
            routing=self.routing,
            crm=record.crm,
            current_owner_id=current_owner_id,
            last_written=last_written,
            owner_property=owner_property,
        )

    def sla_names(
        self, person_id: str, timeline: Sequence[Activity], lead_status: str | None, now: datetime
    ) -> dict[str, Any] | None:
        """handoff_hours, sales_touched, sla_lapsed for recycle rules (None: never handed off)."""
        row = self._rows.get(person_id)
        if row is None:
            return None
        acceptance = self.criteria.acceptance
        state = handoff.sla_state(
            handed_off_at=row.handed_off_at,
            now=now,
            sla_business_hours=self.settings.sla_business_hours,
            calendar=self.calendar,
            timeline=timeline,
            touch_types=frozenset(acceptance.activity_types),
            lead_status=lead_status,
            touch_statuses=frozenset(acceptance.lead_statuses),
        )
        return state.names()

    def fields(self, crm: Crm, owner_property: str | None) -> OwnerFields:
        """The owner property and the hand-off time property of one CRM's objects."""
        record_time = self.settings.record_time
        prop = record_time.hubspot_property if crm == "hubspot" else record_time.salesforce_field
        return OwnerFields(owner_property, prop)

    def is_new(self, person_id: str, decision: Decision, owner_id: str | None) -> bool:
        """True when this decision hands the person to Sales for the first time."""
        return (
            person_id not in self._rows
            and decision.stage in self.routing.handoff_stages
            and decision.disqualified_by is None
            and bool(owner_id)
        )

    def stamp(
        self,
        intent: WriteIntent | None,
        record: CrmRecord,
        fields: OwnerFields,
        writes: frozenset[str],
        decision: Decision,
        owner_id: str | None,
        now: datetime,
    ) -> WriteIntent | None:
        """Add the hand-off time to a new hand-off's write, when the mapping names a property
        for it (and allows writing it); a value already there (set by someone) is kept."""
        prop = fields.time_property
        if (
            prop is None
            or not self.settings.record_time.enabled
            or prop not in writes
            or (record.owned.get(prop) or "").strip()
            or not self.is_new(decision.person_id, decision, owner_id)
        ):
            return intent
        value = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if intent is None:
            return WriteIntent(
                crm=record.crm,
                object_type=record.object_type,
                record_id=record.record_id,
                person_id=decision.person_id,
                changes={prop: value},
                before={prop: record.owned.get(prop)},
                reason=f"hand-off at {decision.stage}: {decision.reason}",
            )
        return replace(
            intent,
            changes={**intent.changes, prop: value},
            before={**intent.before, prop: record.owned.get(prop)},
        )

    # ------------------------------------------------------------------ recording (page transaction)

    def record(
        self,
        results: Sequence[PersonResult],
        written: Sequence[WriteResult],
        owner_properties: Mapping[tuple[str, str], str | None],
        owner_names: Mapping[str, str],
        now: datetime,
        report: RunReport,
    ) -> None:
        """Note new hand-offs and plan their tasks; remember recycles. Inside the page transaction."""
        outcome_of: dict[tuple[str, str, str], bool] = {
            (w.intent.crm, w.intent.object_type, w.intent.record_id): w.ok for w in written
        }
        by_person: dict[str, list[PersonResult]] = {}
        for result in results:
            by_person.setdefault(result.person_id, []).append(result)
        for pid, mine in by_person.items():
            decision = mine[0].decision
            if decision.recycled_by is not None and pid in self._rows:
                self.store.mark_recycled(pid, decision.recycled_by, now)
            targets, moved = self._targets(mine, outcome_of, owner_properties, report.dry_run)
            owner = next((t.owner_id for t in targets if t.owner_id), None)
            if not self.is_new(pid, decision, owner):
                continue
            tasks = self._plan_tasks(pid, mine, targets, owner_names, now) if moved else []
            if self.store.record_handoff(pid, decision.stage, owner, now, tasks):
                self._rows[pid] = HandoffRow(pid, decision.stage, owner, now)
                report.counts["handoffs"] += 1
                report.counts["tasks_planned"] += len(tasks)

    def _targets(
        self,
        mine: Sequence[PersonResult],
        outcome_of: Mapping[tuple[str, str, str], bool],
        owner_properties: Mapping[tuple[str, str], str | None],
        dry_run: bool,
    ) -> tuple[list[Target], bool]:
        """Each record with the owner it has after this page, and whether the page's writes made
        the hand-off (moved the stage or the owner). A refused owner write leaves no owner."""
        targets: list[Target] = []
        moved = False
        for result in mine:
            record, intent = result.record, result.intent
            prop = owner_properties.get((record.crm, record.object_type))
            owner = result.routing.owner_id if prop else None
            if intent is not None:
                landed = dry_run or outcome_of.get((record.crm, record.object_type, record.record_id), False)
                if landed:
                    moved = (
                        moved or (prop in intent.changes) or result.previous_stage != result.decision.stage
                    )
                elif prop in intent.changes:
                    owner = None
            targets.append(Target(record.crm, record.object_type, record.record_id, owner))
        return targets, moved

    def _plan_tasks(
        self,
        pid: str,
        mine: Sequence[PersonResult],
        targets: Sequence[Target],
        owner_names: Mapping[str, str],
        now: datetime,
    ) -> list[TaskRow]:
        task = self.settings.task
        if not task.enabled:
            return []
        rows: list[TaskRow] = []
        for target in handoff.task_targets(targets, task.crm):
            result = next(r for r in mine if r.record.record_id == target.record_id)
            person: dict[str, Any] = dict(result.record.fields)
            person["email"] = result.record.email or ""
            rep = self.routing.reps.get(result.routing.rep or "")
            name = rep.name if rep else owner_names.get(target.owner_id or "", target.owner_id or "")
            reason = result.decision.reason
            if result.routing.reason:
                reason = f"{reason}; owner: {result.routing.reason}"
            spec = handoff.task_spec(
                settings=self.settings,
                calendar=self.calendar,
                target=target,
                person_id=pid,
                person=person,
                stage=result.decision.stage,
                owner_name=name,
                reason=reason,
                handed_off_at=now,
            )
            rows.append(
                TaskRow(pid, spec.crm, spec.object_type, spec.record_id, spec.owner_id, spec_to_json(spec))
            )
        return rows

    # ------------------------------------------------------------------ sending (after the commit)

    def send_tasks(self, report: RunReport) -> None:
        """Create every planned task, journalled "sending" before the CRM sees it."""
        planned = self.store.handoff_tasks([TASK_PLANNED])
        for crm in sorted({row.crm for row in planned}):
            adapter = self.adapters.get(crm)  # type: ignore[call-overload]
            if adapter is None:
                continue
            rows = [row for row in planned if row.crm == crm]
            self.store.task_sending(rows)
            specs = [spec_from_json(row.spec_json) for row in rows]
            try:
                answers = adapter.create_tasks(specs)
            except DailyLimitExhausted:
                raise  # rows stay "sending": the next run asks the CRM before sending again
            except ConnectorError as exc:
                log.warning(
                    "could not create %d follow-up task(s) in %s: %s", len(rows), crm, exc.message,
                    extra={"event": "handoff.tasks_failed", "crm": crm, "error": type(exc).__name__},
                )  # fmt: skip
                report.counts["tasks_unconfirmed"] += len(rows)
                continue
            by_key = {a.key: a for a in answers}
            with self.store.transaction():
                for row, spec in zip(rows, specs, strict=True):
                    self._settle(row, by_key.get(spec.key), report)

    def _settle(self, row: TaskRow, answer: TaskResult | None, report: RunReport) -> None:
        if answer is not None and answer.ok:
            self.store.task_settled(row.person_id, row.crm, TASK_CREATED, task_id=answer.task_id)
            report.counts["tasks_created"] += 1
            return
        error = answer.error if answer is not None else "no answer for this task"
        retry = answer is None or answer.retryable
        state = TASK_PLANNED if retry and row.attempts + 1 < TASK_ATTEMPTS else TASK_FAILED
        self.store.task_settled(row.person_id, row.crm, state, error=error)
        report.counts["tasks_failed"] += 1
        log.warning(
            "follow-up task for %s in %s not created: %s", row.person_id, row.crm, error,
            extra={"event": "handoff.task_refused", "crm": row.crm, "person_id": row.person_id},
        )  # fmt: skip

    def settle_interrupted(self, report: RunReport) -> None:
        """Tasks a killed run sent but never confirmed: created if the CRM has them, else planned."""
        for row in self.store.handoff_tasks([TASK_SENDING]):
            adapter = self.adapters.get(row.crm)  # type: ignore[call-overload]
            if adapter is None:
                continue
            found = adapter.find_task(spec_from_json(row.spec_json))
            if found is not None:
                self.store.task_settled(row.person_id, row.crm, TASK_CREATED, task_id=found)
                report.counts["tasks_recovered"] += 1
            else:
                self.store.task_settled(row.person_id, row.crm, TASK_PLANNED)
                report.counts["tasks_resent"] += 1


def spec_to_json(spec: TaskSpec) -> str:
    data = asdict(spec)
    data["due_at"] = spec.due_at.astimezone(UTC).isoformat()
    data["due_date"] = spec.due_date.isoformat() if spec.due_date else None
    return json.dumps(data, sort_keys=True)


def spec_from_json(text: str) -> TaskSpec:
    data = json.loads(text)
    data["due_at"] = datetime.fromisoformat(data["due_at"])
    data["due_date"] = date.fromisoformat(data["due_date"]) if data.get("due_date") else None
    return TaskSpec(**data)

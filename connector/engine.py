"""One pass of the job, and the only module that wires I/O to the pure lifecycle core.

pull changed contacts and new activities -> resolve persons -> append to the timeline -> evaluate
criteria -> route owners at the hand-off -> diff against the CRM -> write only what changed ->
audit -> advance cursors (after the writes they cover).

`plan` runs the very same pass inside a state transaction that is rolled back, and skips the CRM
writes, so what it prints is exactly what `sync` would do.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connector.crm.hubspot import HubSpotAdapter, parse_hs_time, to_epoch_ms
from connector.errors import ConfigError, ConnectorError, ExitCode
from connector.lifecycle.diff import FieldMap, plan_write
from connector.lifecycle.identity import email_domain, normalize_email
from connector.lifecycle.routing import RoutingOutcome, compile_routing_conditions, route
from connector.lifecycle.rules import CriteriaEvaluator
from connector.mapping.expressions import Expression, expression_context
from connector.mapping.loader import Mappings
from connector.model import Activity, CrmRecord, Decision, Owner, SourceActivity, WriteIntent, WriteResult
from connector.state.store import StateStore

log = logging.getLogger("connector.engine")

CONTACTS_CURSOR = "hubspot:contacts:lastmodifieddate"


def events_cursor(event_type: str) -> str:
    return f"hubspot:events:{event_type}"


@dataclass
class PersonResult:
    """Everything decided about one person this run, for summaries and explain."""

    person_id: str
    record: CrmRecord
    decision: Decision
    routing: RoutingOutcome
    intent: WriteIntent | None
    previous_stage: str | None


@dataclass
class RunReport:
    run_id: str | None
    dry_run: bool
    started_at: datetime
    people: list[PersonResult] = field(default_factory=list)
    results: list[WriteResult] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    owners: dict[str, Owner] = field(default_factory=dict)
    api_calls: int = 0

    @property
    def intents(self) -> list[WriteIntent]:
        return [p.intent for p in self.people if p.intent is not None]

    @property
    def failures(self) -> list[WriteResult]:
        return [r for r in self.results if not r.ok]

    @property
    def exit_code(self) -> int:
        return ExitCode.PARTIAL if self.failures else ExitCode.OK


class Engine:
    """Runs passes for one HubSpot portal with one set of mappings and one state database."""

    def __init__(
        self,
        mappings: Mappings,
        store: StateStore,
        hubspot: HubSpotAdapter,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if mappings.hubspot is None:
            raise ConfigError(
                f"{mappings.directory}/hubspot.yaml is missing: this version syncs HubSpot only"
            )
        self.mappings = mappings
        self.hs_map = mappings.hubspot
        self.store = store
        self.hubspot = hubspot
        self.clock = clock
        self.person_fields: dict[str, str] = dict(mappings.person_fields)
        self.evaluator = CriteriaEvaluator(mappings.criteria, mappings.criteria_version, self.person_fields)
        self.field_map = FieldMap(
            stage=self.hs_map.stage,
            lead_status=self.hs_map.lead_status,
            owner_property=self.hs_map.owner.property if self.hs_map.owner else None,
            writes=frozenset(self.hs_map.writes),
        )
        self.stage_by_value = {value: stage for stage, value in self.hs_map.stage.values.items()}
        self.routing_when: dict[str, Expression] = compile_routing_conditions(mappings.routing)

    # ------------------------------------------------------------------ the pass

    def sync(self, *, dry_run: bool = False, command: str = "sync") -> RunReport:
        now = self.clock()
        report = RunReport(run_id=None, dry_run=dry_run, started_at=now)
        scope: AbstractContextManager[None] = self.store.rollback_scope() if dry_run else nullcontext()
        with scope:
            report.run_id = self.store.start_run(command)
            try:
                self._pass(report, now)
            except ConnectorError as exc:
                self.store.finish_run(report.run_id, "failed", report.counts, error=exc.message)
                raise
            status = "partial" if report.failures else "ok"
            self.store.finish_run(report.run_id, status, report.counts)
        report.api_calls = self.hubspot.calls
        return report

    def _pass(self, report: RunReport, now: datetime) -> None:
        assert report.run_id is not None
        owners = self.hubspot.owners()
        report.owners = {o.id: o for o in owners}
        active = frozenset(o.id for o in owners if o.active and not o.is_queue)

        records, contacts_cursor = self._pull_contacts()
        event_activities, event_cursors = self._pull_events()
        report.counts["contacts_read"] = len(records)

        missing = sorted({a.record_id for a in event_activities} - set(records))
        for record in self.hubspot.read_contacts(missing):
            records[record.record_id] = record
        activities = list(event_activities)
        activities += self.hubspot.engagement_activities(sorted(records))
        for record in records.values():
            activities += self.hubspot.date_activities(record)

        person_of = {rid: self._resolve(record) for rid, record in records.items()}
        added = self.store.add_activities(self._to_timeline(activities, person_of))
        report.counts["activities_new"] = added
        timelines = self.store.timelines(sorted(set(person_of.values())))
        last_written = self.store.last_written("hubspot", "contacts", sorted(records))

        pointers = self.store.pointers()
        for rid in sorted(records, key=lambda r: (records[r].modified_at or now, r)):
            record = records[rid]
            pid = person_of[rid]
            result = self._decide(
                record, pid, timelines.get(pid, []), active, pointers, last_written.get(rid, {}), now
            )
            if result.routing.pointer is not None:
                pool, position = result.routing.pointer
                pointers[pool] = position
                self.store.set_pointer(pool, position)
            self.store.save_decision(report.run_id, result.decision)
            report.people.append(result)
            report.counts[f"stage:{result.decision.stage}"] += 1
        report.counts["evaluated"] = len(report.people)
        report.counts["intents"] = len(report.intents)

        if not report.dry_run and report.intents:
            report.results = self.hubspot.apply(report.intents)
            with self.store.transaction():
                for res in report.results:
                    self.store.record_write(report.run_id, res)
        report.counts["written"] = sum(1 for r in report.results if r.ok)
        report.counts["failed"] = len(report.failures)

        with self.store.transaction():
            if contacts_cursor is not None:
                self.store.set_cursor(CONTACTS_CURSOR, to_epoch_ms(contacts_cursor))
            for event_type, moment in event_cursors.items():
                self.store.set_cursor(events_cursor(event_type), moment.isoformat())

    # ------------------------------------------------------------------ pulling

    def _pull_contacts(self) -> tuple[dict[str, CrmRecord], datetime | None]:
        stored = self.store.get_cursor(CONTACTS_CURSOR)
        since = parse_hs_time(stored) if stored else None
        records: dict[str, CrmRecord] = {}
        newest = since
        for page in self.hubspot.pull_contacts(since):
            for record in page.records:
                records[record.record_id] = record
            if page.max_modified and (newest is None or page.max_modified > newest):
                newest = page.max_modified
        return records, newest

    def _pull_events(self) -> tuple[list[SourceActivity], dict[str, datetime]]:
        events = self.hs_map.activities.events
        out: list[SourceActivity] = []
        cursors: dict[str, datetime] = {}
        if not events.enabled:
            return out, cursors
        for event_type in events.types:
            stored = self.store.get_cursor(events_cursor(event_type))
            since = datetime.fromisoformat(stored) if stored else None
            for batch, newest in self.hubspot.events(event_type, since):
                out.extend(batch)
                if newest is not None:
                    cursors[event_type] = newest
        return out, cursors

    def _resolve(self, record: CrmRecord) -> str:
        return self.store.resolve_person(
            "hubspot", record.object_type, record.record_id, normalize_email(record.email)
        )

    @staticmethod
    def _to_timeline(items: Iterable[SourceActivity], person_of: Mapping[str, str]) -> list[Activity]:
        out = []
        for a in items:
            pid = person_of.get(a.record_id)
            if pid is None:  # an event for a contact HubSpot no longer returns (deleted/merged)
                continue
            out.append(
                Activity(
                    person_id=pid,
                    type=a.type,
                    occurred_at=a.occurred_at,
                    source=a.source,
                    source_id=a.source_id,
                    url=a.url,
                    name=a.name,
                )
            )
        return out

    # ------------------------------------------------------------------ deciding

    def person_values(self, record: CrmRecord) -> dict[str, Any]:
        values: dict[str, Any] = dict(record.fields)
        email = normalize_email(record.email)
        values["email"] = email or ""
        values["email_domain"] = email_domain(email)
        return values

    def current_stage(self, record: CrmRecord) -> str | None:
        value = record.owned.get(self.hs_map.stage.property)
        return self.stage_by_value.get(value) if value else None

    def _decide(
        self,
        record: CrmRecord,
        pid: str,
        timeline: Sequence[Activity],
        active: frozenset[str],
        pointers: Mapping[str, int],
        last_written: Mapping[str, str | None],
        now: datetime,
    ) -> PersonResult:
        person = self.person_values(record)
        current = self.current_stage(record)
        decision = self.evaluator.evaluate(
            person_id=pid, person=person, timeline=timeline, current_stage=current, now=now
        )
        owner_prop = self.field_map.owner_property
        context = expression_context(
            signals=decision.signals,
            fit_score=decision.fit_score,
            fit_grade=decision.fit_grade,
            person=self.evaluator.person_context(person),
            lists=self.mappings.criteria.lists,
        )
        outcome = route(
            self.mappings.routing,
            crm="hubspot",
            stage=decision.stage,
            disqualified=decision.disqualified_by is not None,
            person=person,
            current_owner_id=record.owned.get(owner_prop) if owner_prop else None,
            active_owner_ids=active,
            pointers=pointers,
            when=self.routing_when,
            context=context,
        )
        decision = dataclasses.replace(decision, owner_id=outcome.owner_id, owner_reason=outcome.reason)
        intent = plan_write(
            crm="hubspot",
            object_type=record.object_type,
            record_id=record.record_id,
            person_id=pid,
            decision=decision,
            owner_id=outcome.owner_id if owner_prop else None,
            current=record.owned,
            last_written=last_written,
            fields=self.field_map,
            stage_order=self.mappings.criteria.stages,
            sales_owned=frozenset(self.mappings.criteria.sales_owned),
        )
        return PersonResult(
            person_id=pid,
            record=record,
            decision=decision,
            routing=outcome,
            intent=intent,
            previous_stage=current,
        )

    # ------------------------------------------------------------------ explain

    def explain(self, key: str) -> PersonResult | None:
        """Re-evaluate one person now (by email, HubSpot id or person id), changing nothing."""
        record = self._find_record(key)
        if record is None:
            return None
        with self.store.rollback_scope():
            owners = self.hubspot.owners()
            active = frozenset(o.id for o in owners if o.active and not o.is_queue)
            pid = self._resolve(record)
            activities = self.hubspot.engagement_activities([record.record_id])
            activities += self.hubspot.date_activities(record)
            self.store.add_activities(self._to_timeline(activities, {record.record_id: pid}))
            timeline = self.store.timelines([pid])[pid]
            last = self.store.last_written("hubspot", record.object_type, [record.record_id])
            return self._decide(
                record,
                pid,
                timeline,
                active,
                self.store.pointers(),
                last.get(record.record_id, {}),
                self.clock(),
            )

    def _find_record(self, key: str) -> CrmRecord | None:
        key = key.strip()
        if "@" in key:
            found = self.hubspot.read_contacts([key.casefold()], by_email=True)
            return found[0] if found else None
        if key.isdigit():
            found = self.hubspot.read_contacts([key])
            return found[0] if found else None
        pid = self.store.find_person(key)
        if pid is None:
            return None
        ids = [rid for crm, _obj, rid in self.store.records_of(pid) if crm == "hubspot"]
        found = self.hubspot.read_contacts(ids[:1])
        return found[0] if found else None

"""One pass of the job, and the only module that wires I/O to the pure lifecycle core.

For every page of every adapter feed: resolve persons -> append activities to their timelines ->
evaluate the criteria -> route owners at the hand-off -> diff against the CRM -> write only what
changed -> record decisions, audit rows and the feed's cursor in one transaction. A crash replays
at most the page in flight, and the diff (CRM values vs desired) makes the replay write nothing
that already landed.

`plan` runs the very same pass inside a state transaction that is rolled back, and skips the CRM
writes, so what it prints is exactly what `sync` would do.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connector.crm.base import CrmAdapter, Page
from connector.errors import ConfigError, ConnectorError, DailyLimitExhausted, ExitCode
from connector.lifecycle.diff import FieldMap, plan_write
from connector.lifecycle.identity import email_domain, normalize_email
from connector.lifecycle.routing import RoutingOutcome, compile_routing_conditions, route
from connector.lifecycle.rules import CriteriaEvaluator
from connector.mapping.expressions import Expression, expression_context
from connector.mapping.loader import Mappings
from connector.model import (
    Activity,
    Crm,
    CrmRecord,
    Decision,
    Owner,
    SourceActivity,
    WriteIntent,
    WriteResult,
)
from connector.state.store import StateStore

log = logging.getLogger("connector.engine")

PENDING_BATCH = 100  # records re-read per call when evaluating people with new activity only


@dataclass
class PersonResult:
    """Everything decided about one CRM record's person this run, for summaries and explain."""

    person_id: str
    record: CrmRecord
    decision: Decision
    routing: RoutingOutcome
    intent: WriteIntent | None
    previous_stage: str | None


@dataclass
class RunReport:
    """Aggregates of one run. Memory stays flat however many people a run sees: only counters,
    failures and one example per rule are kept — plus every intent when planning (`dry_run`)."""

    run_id: str | None
    dry_run: bool
    started_at: datetime
    counts: Counter[str] = field(default_factory=Counter)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    assigned: Counter[str] = field(default_factory=Counter)
    owners: dict[str, Owner] = field(default_factory=dict)
    planned: list[PersonResult] = field(default_factory=list)
    examples: dict[str, PersonResult] = field(default_factory=dict)
    failures: list[WriteResult] = field(default_factory=list)
    api_calls: int = 0
    stopped: bool = False
    limited: str | None = None
    """Set when a CRM's daily API budget ran out: the run stopped after the last committed page
    (cursors saved there) and the next run resumes from it."""
    stage_counts: dict[str, int] = field(default_factory=dict)
    """People per stage decided this run (a person seen in several feeds counts once)."""

    @property
    def intents(self) -> list[WriteIntent]:
        return [p.intent for p in self.planned if p.intent is not None]

    @property
    def exit_code(self) -> int:
        return ExitCode.PARTIAL if self.failures or self.limited else ExitCode.OK


class _ActiveOwners:
    """Active owner ids per CRM, read from the CRM on first use within a run."""

    def __init__(self, crms: Mapping[Crm, CrmBinding], report: RunReport) -> None:
        self._crms = crms
        self._report = report
        self._active: dict[Crm, frozenset[str]] = {}

    def of(self, crm: Crm) -> frozenset[str]:
        if crm not in self._active:
            owners = self._crms[crm].adapter.owners()
            self._report.owners.update({o.id: o for o in owners})
            self._active[crm] = frozenset(o.id for o in owners if o.active and not o.is_queue)
        return self._active[crm]


@dataclass(frozen=True)
class CrmBinding:
    """One CRM as the engine drives it: its adapter and how its owned fields map."""

    adapter: CrmAdapter
    fields: FieldMap
    stage_by_value: dict[str, str]


class Engine:
    """Runs passes over the configured CRMs with one set of mappings and one state database."""

    def __init__(
        self,
        mappings: Mappings,
        store: StateStore,
        adapters: Mapping[Crm, CrmAdapter],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.mappings = mappings
        self.store = store
        self.clock = clock
        self.crms: dict[Crm, CrmBinding] = {}
        for crm, adapter in adapters.items():
            crm_map = mappings.crms.get(crm)
            if crm_map is None:
                raise ConfigError(
                    f"{mappings.directory}/{crm}.yaml is missing: the {crm} adapter has no mapping"
                )
            self.crms[crm] = _binding(adapter, crm_map)
        if not self.crms:
            raise ConfigError("no CRM configured: add hubspot.yaml to the mappings folder")
        self.person_fields: dict[str, str] = dict(mappings.person_fields)
        self.evaluator = CriteriaEvaluator(mappings.criteria, mappings.criteria_version, self.person_fields)
        self.routing_when: dict[str, Expression] = compile_routing_conditions(mappings.routing)

    @property
    def api_calls(self) -> int:
        return sum(b.adapter.calls for b in self.crms.values())

    # ------------------------------------------------------------------ the pass

    def sync(
        self,
        *,
        dry_run: bool = False,
        command: str = "sync",
        should_stop: Callable[[], bool] = lambda: False,
    ) -> RunReport:
        """One pass. `should_stop` is asked between pages: a graceful stop (SIGTERM) finishes the
        page in flight, whose cursor is then saved, and ends the run as "stopped"."""
        now = self.clock()
        report = RunReport(run_id=None, dry_run=dry_run, started_at=now)
        calls_before = self.api_calls
        scope: AbstractContextManager[None] = self.store.rollback_scope() if dry_run else nullcontext()
        with scope:
            report.run_id = self.store.start_run(command)
            log.info("run started", extra={"event": "run.start", "run_id": report.run_id, "command": command})
            try:
                self._pass(report, now, should_stop)
            except DailyLimitExhausted as exc:
                report.limited = exc.message
                log.warning(
                    "run stopped by the daily API limit: %s", exc.message,
                    extra={"event": "run.limited", "run_id": report.run_id},
                )  # fmt: skip
            except ConnectorError as exc:
                self.store.finish_run(report.run_id, "failed", report.counts, error=exc.message)
                log.error(
                    "run failed: %s", exc.message,
                    extra={"event": "run.failed", "run_id": report.run_id, "error": type(exc).__name__},
                )  # fmt: skip
                raise
            status = "stopped" if report.stopped else "partial" if report.failures or report.limited else "ok"
            report.stage_counts = self.store.stage_counts(run_id=report.run_id)
            report.counts["people"] = sum(report.stage_counts.values())
            self.store.finish_run(report.run_id, status, report.counts, error=report.limited)
        report.api_calls = self.api_calls - calls_before
        event = {"event": "run.end", "run_id": report.run_id, "status": status, "api_calls": report.api_calls}
        log.info("run finished: %s", status, extra={**event, "counts": dict(report.counts)})
        return report

    def _pass(self, report: RunReport, now: datetime, should_stop: Callable[[], bool]) -> None:
        """Activity feeds first (timelines only), then changed records, then everyone whose
        timeline grew but who was not among the changed records — each person decided once, with
        all their new activity in, so a backfill never writes an interim stage.

        Owners are read when the first page needs them: a run with nothing new costs only the
        feeds' own calls (for HubSpot, one search and one events call per event type).
        """
        for binding in self.crms.values():
            start_run = getattr(binding.adapter, "start_run", None)
            if start_run is not None:
                start_run()  # per-run caches (owners, companies) start empty
        active = _ActiveOwners(self.crms, report)
        pointers = self.store.pointers()
        feeds = [(crm, feed) for crm, binding in self.crms.items() for feed in binding.adapter.feeds(now)]
        feeds.sort(key=lambda item: item[1].kind != "activities")
        for crm, feed in feeds:
            for page in feed.pull(self.store.get_cursor(feed.scope)):
                if feed.kind == "activities":
                    self._activity_page(report, crm, page, feed.scope)
                else:
                    self._page(report, crm, page, feed.scope, active.of(crm), pointers, now)
                if self._stop_requested(report, should_stop):
                    return
        for crm, binding in self.crms.items():
            while batch := self.store.pending(crm, limit=PENDING_BATCH):
                ids = [record_id for _object, record_id in batch]
                records = binding.adapter.read(ids)
                self._page(report, crm, Page(records=records, activities=[], cursor=None), None,
                           active.of(crm), pointers, now)  # fmt: skip
                gone = sorted(set(ids) - {r.record_id for r in records})
                if gone:  # deleted or merged in the CRM since: nothing left to decide
                    with self.store.transaction():
                        for object_type in {o for o, rid in batch if rid in gone}:
                            self.store.clear_pending(crm, object_type, gone)
                if self._stop_requested(report, should_stop):
                    return

    @staticmethod
    def _stop_requested(report: RunReport, should_stop: Callable[[], bool]) -> bool:
        if should_stop():
            report.stopped = True
            log.info("stopping after the page in flight", extra={"event": "run.stopping"})
        return report.stopped

    def _activity_page(self, report: RunReport, crm: Crm, page: Page, scope: str) -> None:
        """Append a page of activities and mark their people for evaluation, with the cursor."""
        records = {r.record_id: r for r in page.records}
        person_of = {rid: self._resolve(record) for rid, record in records.items()}
        report.counts["activities_new"] += self.store.add_activities(_to_timeline(page.activities, person_of))
        with self.store.transaction():
            for object_type in {r.object_type for r in records.values()}:
                marked = {
                    rid: pid for rid, pid in person_of.items() if records[rid].object_type == object_type
                }
                self.store.mark_pending(crm, object_type, marked)
            if page.cursor is not None:
                self.store.set_cursor(scope, page.cursor)
        log.info(
            "activity page done",
            extra={"event": "page.done", "run_id": report.run_id, "scope": scope, "records": len(records),
                   "activities": len(page.activities), "written": 0, "failed": 0, "cursor": page.cursor},
        )  # fmt: skip

    def _page(
        self,
        report: RunReport,
        crm: Crm,
        page: Page,
        scope: str | None,
        active: frozenset[str],
        pointers: dict[str, int],
        now: datetime,
    ) -> None:
        """Decide, write and record one page; its cursor commits with its audit rows."""
        assert report.run_id is not None
        binding = self.crms[crm]
        records = {r.record_id: r for r in page.records}
        person_of = {rid: self._resolve(record) for rid, record in records.items()}
        report.counts["records_read"] += len(records)
        report.counts["activities_new"] += self.store.add_activities(_to_timeline(page.activities, person_of))
        timelines = self.store.timelines(sorted(set(person_of.values())))
        last_written: dict[str, dict[str, str | None]] = {}
        for object_type in {r.object_type for r in records.values()}:
            ids = sorted(rid for rid, r in records.items() if r.object_type == object_type)
            last_written.update(self.store.last_written(crm, object_type, ids))

        results: list[PersonResult] = []
        for rid in sorted(records, key=lambda r: (records[r].modified_at or now, r)):
            result = self._decide(
                binding, records[rid], person_of[rid], timelines.get(person_of[rid], []), active, pointers,
                last_written.get(rid, {}), now,
            )  # fmt: skip
            if result.routing.pointer is not None:
                pool, position = result.routing.pointer
                pointers[pool] = position
            results.append(result)

        intents = [r.intent for r in results if r.intent is not None]
        try:
            written = [] if report.dry_run or not intents else binding.adapter.apply(intents)
        except DailyLimitExhausted as stop:
            # Part of the page's writes landed before the budget ran out: audit them, keep the
            # cursor where it was (the rerun reads the page again and the diff skips what landed).
            landed = [w for w in stop.done if isinstance(w, WriteResult)]
            with self.store.transaction():
                for res in landed:
                    self.store.record_write(report.run_id, res)
            self._tally(report, [], landed)
            raise
        with self.store.transaction():
            for res in written:
                self.store.record_write(report.run_id, res)
            for result in results:
                self.store.save_decision(report.run_id, result.decision)
            for pool, position in pointers.items():
                self.store.set_pointer(pool, position)
            for object_type in {r.object_type for r in records.values()}:
                ids = [rid for rid, r in records.items() if r.object_type == object_type]
                self.store.clear_pending(crm, object_type, ids)
            if scope is not None and page.cursor is not None:
                self.store.set_cursor(scope, page.cursor)
        self._tally(report, results, written)
        log.info(
            "page done",
            extra={"event": "page.done", "run_id": report.run_id, "scope": scope, "records": len(records),
                   "written": sum(1 for w in written if w.ok), "failed": sum(1 for w in written if not w.ok),
                   "cursor": page.cursor},
        )  # fmt: skip

    def _tally(self, report: RunReport, results: list[PersonResult], written: list[WriteResult]) -> None:
        failed = {w.intent.record_id for w in written if not w.ok}
        report.failures += [w for w in written if not w.ok]
        report.counts["written"] += sum(1 for w in written if w.ok)
        report.counts["failed"] += len(failed)
        report.counts["evaluated"] += len(results)
        for result in results:
            decision = result.decision
            if result.intent is not None:
                report.counts["intents"] += 1
            if report.dry_run:
                report.planned.append(result)
            if result.intent is None or result.record.record_id in failed:
                continue
            before = result.previous_stage or "(none)"
            if before != decision.stage:
                report.transitions[(before, decision.stage)] += 1
            owner_prop = self.crms[result.record.crm].fields.owner_property
            if owner_prop and owner_prop in result.intent.changes:
                report.assigned[result.intent.changes[owner_prop]] += 1
            key = decision.disqualified_by or next(
                (t.name for t in decision.trace if t.kind == "stage" and t.matched), "default"
            )
            report.examples.setdefault(key, result)

    # ------------------------------------------------------------------ deciding

    def _resolve(self, record: CrmRecord) -> str:
        return self.store.resolve_person(
            record.crm, record.object_type, record.record_id, normalize_email(record.email)
        )

    def person_values(self, record: CrmRecord) -> dict[str, Any]:
        values: dict[str, Any] = dict(record.fields)
        email = normalize_email(record.email)
        values["email"] = email or ""
        values["email_domain"] = email_domain(email)
        return values

    def _decide(
        self,
        binding: CrmBinding,
        record: CrmRecord,
        pid: str,
        timeline: Sequence[Activity],
        active: frozenset[str],
        pointers: Mapping[str, int],
        last_written: Mapping[str, str | None],
        now: datetime,
    ) -> PersonResult:
        person = self.person_values(record)
        stage_value = record.owned.get(binding.fields.stage.property)
        current = binding.stage_by_value.get(stage_value) if stage_value else None
        decision = self.evaluator.evaluate(
            person_id=pid, person=person, timeline=timeline, current_stage=current, now=now
        )
        owner_prop = binding.fields.owner_property
        context = expression_context(
            signals=decision.signals,
            fit_score=decision.fit_score,
            fit_grade=decision.fit_grade,
            person=self.evaluator.person_context(person),
            lists=self.mappings.criteria.lists,
        )
        outcome = route(
            self.mappings.routing,
            crm=record.crm,
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
            crm=record.crm,
            object_type=record.object_type,
            record_id=record.record_id,
            person_id=pid,
            decision=decision,
            owner_id=outcome.owner_id if owner_prop else None,
            current=record.owned,
            last_written=last_written,
            fields=binding.fields,
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
        """Re-evaluate one person now (by email, CRM id or person id), changing nothing."""
        with self.store.rollback_scope():
            for crm, binding in self.crms.items():
                record = binding.adapter.find(key) or self._find_by_person(crm, key)
                if record is None:
                    continue
                owners = binding.adapter.owners()
                active = frozenset(o.id for o in owners if o.active and not o.is_queue)
                pid = self._resolve(record)
                activities = binding.adapter.activities_for([record])
                self.store.add_activities(_to_timeline(activities, {record.record_id: pid}))
                timeline = self.store.timelines([pid])[pid]
                last = self.store.last_written(crm, record.object_type, [record.record_id])
                return self._decide(
                    binding, record, pid, timeline, active, self.store.pointers(),
                    last.get(record.record_id, {}), self.clock(),
                )  # fmt: skip
        return None

    def _find_by_person(self, crm: Crm, key: str) -> CrmRecord | None:
        pid = self.store.find_person(key)
        if pid is None:
            return None
        for record_crm, _object, record_id in self.store.records_of(pid):
            if record_crm == crm:
                return self.crms[crm].adapter.find(record_id)
        return None


def _binding(adapter: CrmAdapter, crm_map: Any) -> CrmBinding:
    fields = FieldMap(
        stage=crm_map.stage,
        lead_status=crm_map.lead_status,
        owner_property=crm_map.owner.property if crm_map.owner else None,
        writes=frozenset(crm_map.writes),
    )
    return CrmBinding(
        adapter=adapter,
        fields=fields,
        stage_by_value={value: stage for stage, value in crm_map.stage.values.items()},
    )


def _to_timeline(items: Sequence[SourceActivity], person_of: Mapping[str, str]) -> list[Activity]:
    out = []
    for a in items:
        pid = person_of.get(a.record_id)
        if pid is None:  # an activity of a record the CRM no longer returns (deleted or merged)
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

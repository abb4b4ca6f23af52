"""One pass of the job, and the only module that wires I/O to the pure lifecycle core.

For every page of every adapter feed: resolve persons -> append activities to their timelines ->
evaluate the criteria -> route owners at the hand-off -> diff against the CRM -> write only what
changed -> record decisions, audit rows, new hand-offs and the feed's cursor in one transaction ->
create the hand-offs' follow-up tasks (`handoff_step.py`). A crash replays
at most the page in flight, and the diff (CRM values vs desired) makes the replay write nothing
that already landed.

`plan` runs the very same pass inside a state transaction that is rolled back, and skips the CRM
writes, so what it prints is exactly what `sync` would do.

A writing run first takes the lease on every scope it writes (CRM account + object), renews it
before each write and inside each page's transaction (so a run that lost its lease cannot commit),
and releases it at the end. Before the CRM sees a write, the write is journalled; a run starts by
settling writes a killed predecessor left unconfirmed (reading the records back), and ends by
retrying parked writes that are due. A record whose data breaks evaluation is skipped with its
reason; the rest of the page goes on.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import socket
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connector.crm.base import ApiHealth, CrmAdapter, Page
from connector.errors import ConfigError, ConnectorError, DailyLimitExhausted, ExitCode, LeaseHeld
from connector.handoff_step import HandoffStep
from connector.lifecycle.diff import FieldMap, backward_note, plan_write
from connector.lifecycle.drift import Drift, RecordView, person_drift
from connector.lifecycle.gaps import Gap
from connector.lifecycle.identity import email_domain, match_key, normalize_email
from connector.lifecycle.routing import (
    RoutingOutcome,
    compile_routing_conditions,
    member_blocker,
    pick_member,
    rep_of_owner,
    rep_owner_id,
    route,
    settle,
)
from connector.lifecycle.rules import CriteriaEvaluator, Handoff
from connector.lifecycle.sharding import Shard, shard_key
from connector.mapping.expressions import Expression, expression_context
from connector.mapping.loader import Mappings
from connector.mapping.schema import HubSpotMapping, Routing, SalesforceMapping, ValueMap
from connector.model import (
    Activity,
    Assignment,
    Crm,
    CrmRecord,
    Decision,
    Owner,
    PoolPick,
    RuleTrace,
    SourceActivity,
    WriteIntent,
    WriteResult,
)
from connector.observability import redact
from connector.state.store import DEFAULT_LEASE_TTL, Lease, StateStore

log = logging.getLogger("connector.engine")

PENDING_BATCH = 100  # records re-read per call when evaluating people with new activity only
RECYCLE_SWEEP_AFTER = timedelta(days=1)
"""People at a recyclable stage whose last decision is older than this are re-read and re-decided
each run, so a hand-off that went quiet (no new data, hence never pulled) still gets recycled."""


@dataclass
class PersonResult:
    """Everything decided about one CRM record's person this run, for summaries and explain."""

    person_id: str
    record: CrmRecord
    decision: Decision
    routing: RoutingOutcome
    intent: WriteIntent | None
    previous_stage: str | None
    previous_lead_status: str | None = None
    """The CRM's lead status as a canonical name (None: empty or unmapped)."""
    gaps: tuple[Gap, ...] = ()
    """What each higher-stage rule still needs (filled by `explain` only)."""
    stage_note: str | None = None
    """Why a stage the criteria moved back is not written to this record (the mapping forbids it)."""


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
    routing_skips: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(rep, why) -> people for whom a pool passed the rep over (inactive, archived, capped)."""
    routing_examples: dict[str, PersonResult] = field(default_factory=dict)
    """One person per routing path taken (account owner, each rule's pool, fallback, a rep skipped)."""
    owners: dict[str, Owner] = field(default_factory=dict)
    planned: list[PersonResult] = field(default_factory=list)
    examples: dict[str, PersonResult] = field(default_factory=dict)
    failures: list[WriteResult] = field(default_factory=list)
    skipped: list[tuple[CrmRecord, str]] = field(default_factory=list)
    api_calls: int = 0
    stopped: bool = False
    stage_counts: dict[str, int] = field(default_factory=dict)
    """People per stage decided this run (a person seen in several feeds counts once)."""
    drift_people: int | None = None
    """People in both CRMs whose stage or owner differs, per the state database after the run."""
    parked_total: int | None = None
    """Writes parked in the state database after the run (this run's and earlier ones')."""
    api: dict[str, ApiHealth] = field(default_factory=dict)
    """Per CRM: this run's calls and 429s, and the limits' headroom at the end (metrics)."""

    @property
    def intents(self) -> list[WriteIntent]:
        return [p.intent for p in self.planned if p.intent is not None]

    @property
    def exit_code(self) -> int:
        """1 when work was left behind (writes parked, records skipped), else 0."""
        parked = [f for f in self.failures if not f.gone]
        return ExitCode.PARTIAL if parked or self.skipped else ExitCode.OK


class _OnFirstUse(Mapping[Crm, frozenset[str]]):
    """A mapping computed the first time it is read (the active owners of a run)."""

    def __init__(self, load: Callable[[], Mapping[Crm, frozenset[str]]]) -> None:
        self._load = load
        self._value: Mapping[Crm, frozenset[str]] | None = None

    def load(self) -> Mapping[Crm, frozenset[str]]:
        if self._value is None:
            self._value = self._load()
        return self._value

    _get = load

    def __getitem__(self, crm: Crm) -> frozenset[str]:
        return self._get()[crm]

    def __iter__(self) -> Iterator[Crm]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


@dataclass(frozen=True)
class ObjectBinding:
    """How one CRM object's owned fields map (HubSpot contacts; Salesforce Lead, Contact)."""

    fields: FieldMap
    stage_by_value: dict[str, str]
    mql_date: str | None = None
    mql_reason: str | None = None
    status_by_value: dict[str, str] = field(default_factory=dict)
    """CRM lead status value (casefolded) -> canonical lead status."""


@dataclass(frozen=True)
class CrmBinding:
    """One CRM as the engine drives it: its adapter and how each object's owned fields map."""

    adapter: CrmAdapter
    objects: dict[str, ObjectBinding]

    def of(self, object_type: str) -> ObjectBinding:
        return self.objects[object_type]


RecordKey = tuple[Crm, str, str]
"""(crm, object_type, record_id)"""

WHOLE = Shard(0, 1)
"""An unsharded backfill: one process does the whole range."""

Progress = Callable[[int, int | None], None]
"""Told after each record page: (records gone past, the feed's total where the CRM gives one)."""


def _no_progress(_done: int, _total: int | None) -> None:
    return None


class Engine:
    """Runs passes over the configured CRMs with one set of mappings and one state database."""

    def __init__(
        self,
        mappings: Mappings,
        store: StateStore,
        adapters: Mapping[Crm, CrmAdapter],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        fold_plus_tags: bool = False,
        lease_ttl: timedelta = DEFAULT_LEASE_TTL,
        accounts: Mapping[Crm, str] | None = None,
    ) -> None:
        self.mappings = mappings
        self.fold_plus_tags = fold_plus_tags
        self.store = store
        self.clock = clock
        self.lease_ttl = lease_ttl
        self.accounts: dict[Crm, str] = dict(accounts or {})
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self._leases: list[Lease] = []
        self._owners: dict[Crm, list[Owner]] = {}
        self._domain_owners: dict[str, str | None] = {}
        self._page_domains: set[str] = set()
        self._run_id: str | None = None
        self._held: dict[tuple[str, str, str], dict[str, str]] = {}
        self.crms: dict[Crm, CrmBinding] = {}
        for crm, adapter in adapters.items():
            crm_map = mappings.crms.get(crm)
            if crm_map is None:
                raise ConfigError(
                    f"{mappings.directory}/{crm}.yaml is missing: the {crm} adapter has no mapping"
                )
            self.crms[crm] = _binding(adapter, crm_map)
        if not self.crms:
            raise ConfigError("no CRM configured: add hubspot.yaml or salesforce.yaml to the mappings folder")
        self.person_fields: dict[str, str] = dict(mappings.person_fields)
        self.evaluator = CriteriaEvaluator(mappings.criteria, mappings.criteria_version, self.person_fields)
        self.routing_when: dict[str, Expression] = compile_routing_conditions(mappings.routing)
        self.reps_by_owner: dict[tuple[str, str], str] = {}
        for rep_key, rep in mappings.routing.reps.items():
            for crm in ("hubspot", "salesforce"):
                owner_id = rep_owner_id(rep, crm)
                if owner_id:
                    self.reps_by_owner[(crm, owner_id)] = rep_key
        self._progress: Progress = _no_progress
        self.handoff = HandoffStep(mappings, store, adapters)

    @property
    def api_calls(self) -> int:
        return sum(b.adapter.calls for b in self.crms.values())

    def _calls_by_crm(self) -> dict[str, tuple[int, int]]:
        return {crm: (b.adapter.calls, getattr(b.adapter, "throttled", 0)) for crm, b in self.crms.items()}

    def _api_health(self, before: Mapping[str, tuple[int, int]]) -> dict[str, ApiHealth]:
        """This run's share of each adapter's counters, with the headroom the CRM last reported."""
        out: dict[str, ApiHealth] = {}
        for crm, binding in self.crms.items():
            calls, throttled = before.get(crm, (0, 0))
            health = getattr(binding.adapter, "api_health", None)
            now = health() if health is not None else ApiHealth(binding.adapter.calls, 0)
            out[crm] = dataclasses.replace(now, calls=now.calls - calls, throttled=now.throttled - throttled)
        return out

    # ------------------------------------------------------------------ the pass

    def lease_scopes(self) -> list[str]:
        """The scopes a writing run holds: one per CRM account and written object."""
        scopes = []
        for crm in self.crms:
            crm_map = self.mappings.crms[crm]
            objects = getattr(crm_map, "objects", None) or [getattr(crm_map, "object", "records")]
            account = self.accounts.get(crm, "default")
            scopes += [f"{crm}:{account}:{obj}" for obj in objects]
        return scopes

    def sync(
        self,
        *,
        dry_run: bool = False,
        command: str = "sync",
        should_stop: Callable[[], bool] = lambda: False,
        progress: Progress | None = None,
    ) -> RunReport:
        """One pass (`retry-failed` instead retries every parked write now). `should_stop` is asked
        between pages: a graceful stop (SIGTERM) finishes the page in flight, whose cursor is then
        saved, and ends the run as "stopped". `progress` hears of every record page (a bar)."""
        self._progress = progress or _no_progress
        now = self.clock()
        report = RunReport(run_id=None, dry_run=dry_run, started_at=now)
        calls_before = self.api_calls
        by_crm_before = self._calls_by_crm()
        scope: AbstractContextManager[None] = self.store.rollback_scope() if dry_run else nullcontext()
        with scope:
            report.run_id = self.store.start_run(command)
            log.info("run started", extra={"event": "run.start", "run_id": report.run_id, "command": command})
            self._run_id = report.run_id
            self._domain_owners = {}
            self._held = {} if command == "retry-failed" else self._not_yet_due(now)
            try:
                if not dry_run:
                    self._acquire_leases(report.run_id)
                    self._recover(report)
                    self.handoff.settle_interrupted(report)
                if command == "retry-failed":
                    self._retry_failed(report, now, include_parked=True)
                else:
                    self._pass(report, now, should_stop)
                    if not dry_run and not report.stopped:
                        self._retry_failed(report, now, include_parked=False)
            except LeaseHeld as exc:
                self.store.finish_run(report.run_id, "blocked", report.counts, error=exc.message)
                log.error(
                    "run blocked: %s", exc.message,
                    extra={"event": "run.blocked", "run_id": report.run_id, "error": type(exc).__name__},
                )  # fmt: skip
                raise
            except DailyLimitExhausted as exc:  # committed pages keep their cursors: resume next run
                self.store.finish_run(report.run_id, "partial", report.counts, error=exc.message)
                log.error(
                    "run stopped: %s", exc.message,
                    extra={"event": "run.partial", "run_id": report.run_id, "error": type(exc).__name__},
                )  # fmt: skip
                raise
            except ConnectorError as exc:
                self.store.finish_run(report.run_id, "failed", report.counts, error=exc.message)
                log.error(
                    "run failed: %s", exc.message,
                    extra={"event": "run.failed", "run_id": report.run_id, "error": type(exc).__name__},
                )  # fmt: skip
                raise
            finally:
                self._release_leases()
            status = "stopped" if report.stopped else "partial" if report.exit_code != ExitCode.OK else "ok"
            self._finish_run(report, status)
        self._account_api(report, calls_before, by_crm_before)
        event = {"event": "run.end", "run_id": report.run_id, "status": status, "api_calls": report.api_calls}
        log.info("run finished: %s", status, extra={**event, "counts": dict(report.counts)})
        return report

    def _finish_run(self, report: RunReport, status: str) -> None:
        """The run's totals (people per stage, drift, parked writes) into the report and its row."""
        assert report.run_id is not None  # set when the run started
        report.stage_counts = self.store.stage_counts(run_id=report.run_id)
        report.counts["people"] = sum(report.stage_counts.values())
        report.drift_people = self.store.drift_count()
        report.parked_total = len(self.store.failed_writes())
        self.store.finish_run(report.run_id, status, report.counts)

    def _account_api(
        self, report: RunReport, calls_before: int, by_crm_before: Mapping[str, tuple[int, int]]
    ) -> None:
        """API calls and limit headroom this run, and one log line per rep routing passed over."""
        report.api_calls = self.api_calls - calls_before
        report.api = self._api_health(by_crm_before)
        for (rep, why), n in sorted(report.routing_skips.items()):
            log.info(
                "routing passed over %s for %d person(s): %s", rep, n, why,
                extra={"event": "routing.skipped", "run_id": report.run_id, "rep": rep, "why": why,
                       "people": n},
            )  # fmt: skip

    def _owner_property(self, crm: str, object_type: str) -> str | None:
        binding = self.crms.get(crm)  # type: ignore[call-overload]
        if binding is None or object_type not in binding.objects:
            return None
        prop: str | None = binding.of(object_type).fields.owner_property
        return prop

    def _note_refused(self, result: WriteResult) -> None:
        """Hold a refused write back until it is due (an owner in it stays the person's assignment)."""
        intent = result.intent
        key = _key(intent)
        if not result.ok and not result.gone:
            self._held[key] = dict(intent.changes)
        else:
            self._held.pop(key, None)

    def _not_yet_due(self, now: datetime) -> dict[tuple[str, str, str], dict[str, str]]:
        return {
            (f.crm, f.object_type, f.record_id): f.changes
            for f in self.store.failed_writes()
            if f.next_attempt_at is None or f.next_attempt_at > now
        }

    # ------------------------------------------------------------------ leases and recovery

    def _acquire_leases(self, run_id: str, scopes: Sequence[str] | None = None) -> None:
        for scope in self.lease_scopes() if scopes is None else scopes:
            try:
                lease = self.store.acquire_lease(scope, self.holder, ttl=self.lease_ttl, run_id=run_id)
            except LeaseHeld as held:
                if not _dead_on_this_host(held.holder):
                    raise
                log.warning(
                    "taking over %s from %s, a process on this host that is gone", scope, held.holder,
                    extra={"event": "lease.takeover", "scope": scope, "from": held.holder},
                )  # fmt: skip
                lease = self.store.acquire_lease(
                    scope, self.holder, ttl=self.lease_ttl, run_id=run_id, dead_holders=[held.holder]
                )
            self._leases.append(lease)
            log.debug(
                "lease on %s taken by %s for run %s", scope, self.holder, run_id,
                extra={"event": "lease.taken", "scope": scope, "holder": self.holder, "run_id": run_id},
            )  # fmt: skip

    def _renew_leases(self) -> None:
        for lease in self._leases:
            lease.renew()

    def _release_leases(self) -> None:
        leases, self._leases = self._leases, []
        for lease in leases:
            try:
                lease.release()
            except Exception:  # noqa: BLE001 - releasing is best effort; the lease expires anyway
                log.warning(
                    "could not release the lease on %s; it expires by itself", lease.scope,
                    extra={"event": "lease.release_failed", "scope": lease.scope},
                )  # fmt: skip

    def _recover(self, report: RunReport, only_runs: frozenset[str] | None = None) -> None:
        """Settle writes a killed run journalled but never confirmed, from the CRM's values now.

        A backfill shard settles only its own earlier run's (`only_runs`): the other shards are
        alive and their writes in flight are not interrupted."""
        assert report.run_id is not None
        for crm, binding in self.crms.items():
            entries = self.store.interrupted_writes(crm)
            if only_runs is not None:
                entries = [e for e in entries if e.run_id in only_runs]
            if not entries:
                continue
            current: dict[tuple[str, str], CrmRecord] = {}
            for object_type in sorted({e.object_type for e in entries}):
                ids = sorted({e.record_id for e in entries if e.object_type == object_type})
                for record in binding.adapter.read(ids):
                    current[(object_type, record.record_id)] = record
            for entry in entries:
                now_in_crm = current.get((entry.object_type, entry.record_id))
                state = self.store.settle_interrupted(
                    entry, now_in_crm.owned if now_in_crm else None, run_id=report.run_id
                )
                # A write that never landed needs no owner bookkeeping: the person's routing
                # assignment (committed before the write) offers the same owner again.
                report.counts[f"recovered_{state}"] += 1
            log.info(
                "settled %d write(s) an interrupted run left unconfirmed", len(entries),
                extra={"event": "recovery.settled", "crm": crm, "writes": len(entries)},
            )  # fmt: skip

    def _retry_failed(self, report: RunReport, now: datetime, *, include_parked: bool) -> None:
        """Re-read records with parked writes and run them through the page pipeline again.

        They are re-evaluated rather than replayed: the criteria or the CRM may have moved on, and
        the diff writes only what is still needed (nothing, if the CRM already shows it).
        """
        active: Mapping[Crm, frozenset[str]] | None = None
        for crm, binding in self.crms.items():
            due = self.store.due_failed_writes(crm, include_parked=include_parked)
            if not due:
                continue
            report.counts["retried"] += len(due)
            active = active or self._active_owners(report)
            for object_type in sorted({f.object_type for f in due}):
                ids = sorted(f.record_id for f in due if f.object_type == object_type)
                records = binding.adapter.read(ids)
                found = {r.record_id for r in records}
                for rid in ids:
                    if rid not in found:  # deleted or merged away since: nothing left to write
                        self.store.clear_failed_write(crm, object_type, rid)
                        report.counts["retry_gone"] += 1
                for start in range(0, len(records), 100):
                    chunk = records[start : start + 100]
                    page = Page(records=chunk, activities=binding.adapter.activities_for(chunk), cursor=None)
                    self._page(report, crm, page, None, active, now)

    def _pass(self, report: RunReport, now: datetime, should_stop: Callable[[], bool]) -> None:
        """Activity feeds first (timelines only), then changed records, then everyone whose
        timeline grew but who was not among the changed records — each person decided once, with
        all their new activity in, so a backfill never writes an interim stage.

        An adapter with `start_run` starts its run there (HubSpot: per-run caches and pacing
        estimates afresh) and has its owners read when a page first needs them, so a run with
        nothing new costs only the feeds' own calls (one search and one events call per event
        type). An adapter without one starts its run with `owners()` (Salesforce sizes its API
        share there), so owners are then read first, as before.
        """
        owners_start_run = False
        for binding in self.crms.values():
            start_run = getattr(binding.adapter, "start_run", None)
            if start_run is not None:
                start_run()
            else:
                owners_start_run = True
        active = _OnFirstUse(lambda: self._active_owners(report))
        if owners_start_run:
            active.load()
        feeds = [(crm, feed) for crm, binding in self.crms.items() for feed in binding.adapter.feeds(now)]
        feeds.sort(key=lambda item: item[1].kind != "activities")
        for crm, feed in feeds:
            for page in feed.pull(self.store.get_cursor(feed.scope)):
                if feed.kind == "activities":
                    self._activity_page(report, crm, page, feed.scope)
                else:
                    self._page(report, crm, page, feed.scope, active, now)
                    self._progress(
                        page.scanned if page.scanned is not None else len(page.records), page.total
                    )
                if self._stop_requested(report, should_stop):
                    return
        for crm, binding in self.crms.items():
            while batch := self.store.pending(crm, limit=PENDING_BATCH):
                ids = [record_id for _object, record_id in batch]
                records = binding.adapter.read(ids)
                self._page(report, crm, Page(records=records, activities=[], cursor=None), None,
                           active, now)  # fmt: skip
                gone = sorted(set(ids) - {r.record_id for r in records})
                if gone:  # deleted or merged in the CRM since: nothing left to decide
                    with self.store.transaction():
                        for object_type in {o for o, rid in batch if rid in gone}:
                            self.store.clear_pending(crm, object_type, gone)
                if self._stop_requested(report, should_stop):
                    return
        self._recycle_sweep(report, active, now, should_stop)

    def _recycle_sweep(
        self,
        report: RunReport,
        active: Mapping[Crm, frozenset[str]],
        now: datetime,
        should_stop: Callable[[], bool],
    ) -> None:
        """Re-decide people parked at a recyclable stage with nothing new: going quiet is the point.

        Each person is read through one record (the first configured CRM that has one); `_page`
        brings in their other records as for any page.
        """
        stages = sorted({stage for rule in self.mappings.criteria.recycle for stage in rule.stages})
        if not stages or report.stopped:
            return
        chosen: dict[Crm, list[str]] = {}
        for pid in self.store.stale_at_stage(stages, now - RECYCLE_SWEEP_AFTER):
            mine = [(c, o, r) for c, o, r in self.store.records_of(pid) if c in self.crms]
            mine = [k for k in mine if k[1] in self.crms[k[0]].objects]
            if mine:
                crm, _object, record_id = min(mine, key=lambda k: (list(self.crms).index(k[0]), k))
                chosen.setdefault(crm, []).append(record_id)
        for crm, ids in chosen.items():
            for start in range(0, len(ids), PENDING_BATCH):
                records = self.crms[crm].adapter.read(ids[start : start + PENDING_BATCH])
                report.counts["recycle_checked"] += len(records)
                self._page(report, crm, Page(records=records, activities=[], cursor=None), None,
                           active, now)  # fmt: skip
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
        records = {_key(r): r for r in page.records}
        with self.store.transaction():  # one commit for the page's identities, not one per record
            person_of = {key: self._resolve(record) for key, record in records.items()}
        report.counts["activities_new"] += self.store.add_activities(_to_timeline(page.activities, person_of))
        with self.store.transaction():
            for c, object_type in {key[:2] for key in records}:
                marked = {key[2]: pid for key, pid in person_of.items() if key[:2] == (c, object_type)}
                self.store.mark_pending(c, object_type, marked)
            if page.cursor is not None:
                self.store.set_cursor(scope, page.cursor)
        log.info(
            "activity page done",
            extra={"event": "page.done", "run_id": report.run_id, "scope": scope, "records": len(records),
                   "activities": len(page.activities), "written": 0, "failed": 0, "cursor": page.cursor},
        )  # fmt: skip

    def _active_owners(self, report: RunReport | None = None) -> dict[Crm, frozenset[str]]:
        """Per CRM, the owner ids routing may keep or assign: active users, plus queues that
        routing.yaml names as a rep's id (a Salesforce queue as the fallback, say)."""
        named = {rep_owner_id(rep, crm) for rep in self.mappings.routing.reps.values() for crm in self.crms}
        active: dict[Crm, frozenset[str]] = {}
        for crm, binding in self.crms.items():
            owners = binding.adapter.owners()
            self._owners[crm] = list(owners)
            if report is not None:
                report.owners.update({o.id: o for o in owners})
            active[crm] = frozenset(o.id for o in owners if o.active and (not o.is_queue or o.id in named))
        return active

    def _page(
        self,
        report: RunReport,
        crm: Crm,
        page: Page,
        scope: str | None,
        active: Mapping[Crm, frozenset[str]],
        now: datetime,
    ) -> None:
        """Decide, write and record one page; its cursor commits with its audit rows.

        A person on the page who also has records elsewhere (the other CRM, or a Salesforce lead
        and contact) is decided once over the merged timeline, and every one of their records is
        written per its own mapping, in the same page.
        """
        assert report.run_id is not None
        records: dict[RecordKey, CrmRecord] = {_key(r): r for r in page.records}
        report.counts["records_read"] += len(records)
        with self.store.transaction():  # one commit for the page's identities, not one per record
            person_of = {key: self._resolve(record) for key, record in records.items()}
            linked = self._linked_records(records, person_of)
        with self.store.transaction():
            for key, record in linked.items():
                records[key] = record
                person_of[key] = self._resolve(record)
            timeline = _to_timeline(page.activities, person_of)
            report.counts["activities_new"] += self.store.add_activities(timeline)
            timelines = self.store.timelines(sorted(set(person_of.values())))
            entered = self.store.stage_entered(sorted(set(person_of.values())))
            self.handoff.load(sorted(set(person_of.values())))
            last_written: dict[RecordKey, dict[str, str | None]] = {}
            for c, object_type in {(k[0], k[1]) for k in records}:
                ids = sorted(k[2] for k in records if k[:2] == (c, object_type))
                for rid, values in self.store.last_written(c, object_type, ids).items():
                    last_written[(c, object_type, rid)] = values

        people: dict[str, list[CrmRecord]] = {}
        for key in sorted(records, key=lambda k: (records[k].crm != crm, records[k].modified_at or now, k)):
            people.setdefault(person_of[key], []).append(records[key])
        results: list[PersonResult] = []
        decisions: list[Decision] = []
        self._page_domains = {d for r in records.values() if (d := email_domain(normalize_email(r.email)))}
        snapshots: list[tuple[str, dict[str, Any], str | None, str | None]] = []
        for pid, person_records in people.items():
            try:
                decided = self._decide_person(
                    person_records, pid, timelines.get(pid, []), active, last_written, now,
                    entered.get(pid, (None, None))[1],
                )  # fmt: skip
            except ConnectorError:
                raise
            except Exception as exc:  # noqa: BLE001 - one person's bad data must not stop the run
                reason = f"{type(exc).__name__}: {redact(str(exc))[:300]}"
                for record in person_records:
                    log.warning(
                        "skipped %s %s %s: %s", record.crm, record.object_type, record.record_id, reason,
                        extra={"event": "record.skipped", "crm": record.crm, "record_id": record.record_id,
                               "reason": reason},
                    )  # fmt: skip
                    report.skipped.append((record, reason))
                continue
            decisions.append(decided[0].decision)
            results += decided
            person, current, status = self._person_state(person_records)
            snapshots.append((pid, person, current, status))

        written: list[WriteResult] = []
        if not report.dry_run:
            for target in self.crms:
                # A write the CRM refused is not sent again before it is due: not later in the same
                # run (a record comes back with every feed that mentions it), not while its backoff
                # runs, not once parked. A different write (the criteria or the CRM moved on) goes.
                intents = [
                    r.intent
                    for r in results
                    if r.intent is not None
                    and r.intent.crm == target
                    and self._held.get(_key(r.intent)) != r.intent.changes
                ]
                if intents:
                    self._renew_leases()  # never write for a scope another run has taken over
                    self.store.journal_sending(report.run_id, intents)
                    written += self.crms[target].adapter.apply(intents)
        with self.store.transaction():
            if not report.dry_run:
                self._renew_leases()  # fences the commit: a lost lease rolls the page back
            for res in written:
                self.store.record_write(report.run_id, res)
                self._note_refused(res)
            # Nothing left to write for these: an older parked write no longer applies.
            self.store.clear_failed_writes([r.record for r in results if r.intent is None])
            self.store.save_decisions(report.run_id, decisions)
            held_back = self._backward_moves_not_sent(results)
            for decision in decisions:
                if decision.person_id not in held_back:
                    self.store.record_stage(decision.person_id, decision.stage, now)
            for pid, person, current, status in snapshots:
                self.store.save_snapshot(pid, person, current, status, now)
            if not report.dry_run:
                self.store.save_drift([d.person_id for d in decisions], self._drift(results, written), now)
            for c, object_type in {key[:2] for key in records}:  # linked records are decided too
                self.store.clear_pending(
                    c, object_type, [key[2] for key in records if key[:2] == (c, object_type)]
                )
            if scope is not None and page.cursor is not None:
                self.store.set_cursor(scope, page.cursor)
            self._record_handoffs(report, results, written, now)
        if not report.dry_run:
            self.handoff.send_tasks(report)
        self._tally(report, results, written)
        log.info(
            "page done",
            extra={"event": "page.done", "run_id": report.run_id, "scope": scope, "records": len(records),
                   "written": sum(1 for w in written if w.ok), "failed": sum(1 for w in written if not w.ok),
                   "cursor": page.cursor},
        )  # fmt: skip

    def _record_handoffs(
        self, report: RunReport, results: list[PersonResult], written: list[WriteResult], now: datetime
    ) -> None:
        """The hand-off step after the owner write: hand-off rows and planned follow-up tasks."""
        owner_properties: dict[tuple[str, str], str | None] = {
            (crm, name): obj.fields.owner_property
            for crm, binding in self.crms.items()
            for name, obj in binding.objects.items()
        }
        names = {owner_id: owner.name for owner_id, owner in report.owners.items()}
        self.handoff.record(results, written, owner_properties, names, now, report)

    def _linked_records(
        self, records: Mapping[RecordKey, CrmRecord], person_of: Mapping[RecordKey, str]
    ) -> dict[RecordKey, CrmRecord]:
        """The current values of the page's people's other records, in every configured CRM."""
        wanted: dict[Crm, set[str]] = {}
        for pid in sorted(set(person_of.values())):
            for c, object_type, rid in self.store.records_of(pid):
                if (
                    c in self.crms
                    and object_type in self.crms[c].objects
                    and (c, object_type, rid) not in records
                ):
                    wanted.setdefault(c, set()).add(rid)
        found: dict[RecordKey, CrmRecord] = {}
        for c, ids in sorted(wanted.items()):
            for record in self.crms[c].adapter.read(sorted(ids)):
                found[_key(record)] = record
        return found

    def _drift(self, results: Sequence[PersonResult], written: Sequence[WriteResult]) -> list[Drift]:
        """People on the page whose CRMs still disagree once this page's writes landed."""
        landed = {_key(w.intent) for w in written if w.ok}
        views: dict[str, list[RecordView]] = {}
        for result in results:
            record = result.record
            owned = dict(record.owned)
            if result.intent is not None and _key(result.intent) in landed:
                owned.update(result.intent.changes)
            fields = self.crms[record.crm].of(record.object_type).fields
            stage_value = (owned.get(fields.stage.property) or "").strip()
            stage = self.crms[record.crm].of(record.object_type).stage_by_value.get(stage_value)
            owner = (owned.get(fields.owner_property) or None) if fields.owner_property else None
            views.setdefault(result.person_id, []).append(
                RecordView(record.crm, record.object_type, record.record_id, stage, owner)
            )
        found = []
        for pid, records in views.items():
            drift = person_drift(
                pid, records, stage_order=self.mappings.criteria.stages, reps=self.reps_by_owner
            )
            if drift is not None:
                found.append(drift)
        return found

    def _tally(self, report: RunReport, results: list[PersonResult], written: list[WriteResult]) -> None:
        failed = {w.intent.record_id for w in written if not w.ok}
        report.failures += [w for w in written if not w.ok]
        report.counts["written"] += sum(1 for w in written if w.ok)
        report.counts["failed"] += sum(1 for w in written if not w.ok and not w.gone)
        report.counts["gone"] += sum(1 for w in written if w.gone)
        report.counts["skipped"] = len(report.skipped)
        report.counts["evaluated"] += len(results)
        for pid in {r.person_id for r in results}:
            mine = next(r for r in results if r.person_id == pid)
            for rep, why in mine.routing.skipped:
                summary = why.split(" (", 1)[0] if why.startswith("daily cap") else why
                report.routing_skips[(rep, summary)] += 1
                report.routing_examples.setdefault(f"skipped {rep}", mine)
            if mine.routing.owner_id is not None and mine.routing.trace:
                path = mine.routing.rule or mine.routing.trace[-1].name
                report.routing_examples.setdefault(path, mine)
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
            owner_prop = self.crms[result.record.crm].of(result.record.object_type).fields.owner_property
            if owner_prop and owner_prop in result.intent.changes:
                report.assigned[result.intent.changes[owner_prop]] += 1
            key = decision.disqualified_by or next(
                (t.name for t in decision.trace if t.kind == "stage" and t.matched), "default"
            )
            report.examples.setdefault(key, result)

    # ------------------------------------------------------------------ deciding

    def _resolve(self, record: CrmRecord) -> str:
        return self.store.resolve_person(
            record.crm,
            record.object_type,
            record.record_id,
            match_key(record.email, fold_plus_tags=self.fold_plus_tags),
            links=record.links,
        )

    def person_values(self, record: CrmRecord, others: Sequence[CrmRecord] = ()) -> dict[str, Any]:
        """The person's fields: this record's, gaps filled from their other records (in order)."""
        values: dict[str, Any] = dict(record.fields)
        for other in others:
            for name, value in other.fields.items():
                if values.get(name) in (None, ""):
                    values[name] = value
        raw = next((r.email for r in (record, *others) if normalize_email(r.email)), record.email)
        email = normalize_email(raw)
        values["email"] = email or ""
        values["email_domain"] = email_domain(email)
        return values

    def _backward_moves_not_sent(self, results: Sequence[PersonResult]) -> set[str]:
        """People the criteria moved back whose stage no CRM record will get (the mapping forbids
        it, or the record is protected). Their stage entry stays the one the CRM shows, so the
        time in stage recycle rules read keeps counting instead of restarting at a move that
        never happened."""
        moved = {r.person_id for r in results if r.decision.moved_back_by is not None}
        sent = {
            r.person_id
            for r in results
            if r.person_id in moved
            and r.intent is not None
            and self.crms[r.record.crm].of(r.record.object_type).fields.stage.property in r.intent.changes
        }
        return moved - sent

    def _current_stage(self, record: CrmRecord) -> str | None:
        binding = self.crms[record.crm].of(record.object_type)
        value = record.owned.get(binding.fields.stage.property)
        return binding.stage_by_value.get(value.strip()) if value else None

    def _current_status(self, record: CrmRecord) -> str | None:
        """The record's lead status as a canonical name (None: empty or not in the mapping)."""
        binding = self.crms[record.crm].of(record.object_type)
        if binding.fields.lead_status is None:
            return None
        value = (record.owned.get(binding.fields.lead_status.property) or "").strip()
        return binding.status_by_value.get(value.casefold()) if value else None

    def _person_state(self, records: Sequence[CrmRecord]) -> tuple[dict[str, Any], str | None, str | None]:
        """(person fields, highest current stage, first mapped lead status) over a person's records."""
        order = self.mappings.criteria.stages
        person = self.person_values(records[0], records[1:])
        stages = [s for s in (self._current_stage(r) for r in records) if s is not None and s in order]
        current = max(stages, key=order.index) if stages else None
        status = next((s for s in (self._current_status(r) for r in records) if s is not None), None)
        return person, current, status

    def _decide_person(
        self,
        records: Sequence[CrmRecord],
        pid: str,
        timeline: Sequence[Activity],
        active: Mapping[Crm, frozenset[str]],
        last_written: Mapping[RecordKey, Mapping[str, str | None]],
        now: datetime,
        stage_entered_at: datetime | None = None,
    ) -> list[PersonResult]:
        """One decision for one person, then routing and a diff per CRM record of theirs.

        The current stage is the highest any record shows (stages only move forward, so no CRM is
        pulled back to another's lower value). Owners: a record with an active owner keeps them;
        the others get the same rep, by their id in that CRM (routing.yaml reps), so one person has
        one owner across CRMs; only when that rep cannot own records there is it routed anew.
        """
        order = self.mappings.criteria.stages
        person, current, status = self._person_state(records)
        decision = self.evaluator.evaluate(
            person_id=pid,
            person=person,
            timeline=timeline,
            current_stage=current,
            now=now,
            handoff=Handoff(
                lead_status=status,
                stage_entered_at=stage_entered_at,
                sla=self.handoff.sla_names(pid, timeline, status, now),
            ),
        )
        context = expression_context(
            signals=decision.signals,
            fit_score=decision.fit_score,
            fit_grade=decision.fit_grade,
            person=self.evaluator.person_context(person),
            lists=self.mappings.criteria.lists,
        )

        routed = self._route_person(records, pid, decision, person, context, active, last_written, now)
        results: list[PersonResult] = []
        for record in records:
            binding = self.crms[record.crm].of(record.object_type)
            outcome = routed[_key(record)]
            record_decision = dataclasses.replace(
                decision, owner_id=outcome.owner_id, owner_reason=outcome.reason
            )
            intent = plan_write(
                crm=record.crm,
                object_type=record.object_type,
                record_id=record.record_id,
                person_id=pid,
                decision=record_decision,
                owner_id=outcome.owner_id if binding.fields.owner_property else None,
                current=record.owned,
                last_written=last_written.get(_key(record), {}),
                fields=binding.fields,
                stage_order=order,
                sales_owned=frozenset(self.mappings.criteria.sales_owned),
            )
            note = backward_note(
                decision=record_decision,
                current=record.owned,
                fields=binding.fields,
                stage_order=order,
                sales_owned=frozenset(self.mappings.criteria.sales_owned),
            )
            results.append(
                PersonResult(
                    person_id=pid,
                    record=record,
                    decision=record_decision,
                    routing=outcome,
                    intent=self.handoff.stamp(
                        _stamp_mql(intent, binding, record, record_decision, now),
                        record,
                        self.handoff.fields(record.crm, binding.fields.owner_property),
                        binding.fields.writes,
                        record_decision,
                        outcome.owner_id,
                        now,
                    ),
                    previous_stage=self._current_stage(record),
                    previous_lead_status=self._current_status(record),
                    stage_note=note,
                )
            )
        return results

    # ------------------------------------------------------------------ routing

    def _route_person(
        self,
        records: Sequence[CrmRecord],
        pid: str,
        decision: Decision,
        person: Mapping[str, Any],
        context: Mapping[str, Any],
        active: Mapping[Crm, frozenset[str]],
        last_written: Mapping[RecordKey, Mapping[str, str | None]],
        now: datetime,
    ) -> dict[RecordKey, RoutingOutcome]:
        """The routing step: one owner decision per record of the person, the same rep in each CRM.

        A record with an active owner keeps them (keep_existing_owner), and that owner is copied to
        the person's unowned records in the other CRM (through routing.yaml reps, else by the
        owners' email). Otherwise the rules decide; a pool turn is claimed once per person in the
        state database (`StateStore.claim_turn`), and only reps able to own records in every CRM
        the person is in take turns, so both CRMs get the same rep. A claim is never released
        when a write later fails: the turn stays counted and the person's assignment is offered
        again by the retry (no second turn, no rep skipped). The hand-off rules (`HandoffStep`)
        apply before any turn is claimed: an owner a person set after the connector's last write,
        or a queue kept as an owner, stays and takes no turn; a queue counts as unowned when
        routing.yaml says so.
        """
        routing = self.mappings.routing

        def owner_of(record: CrmRecord) -> str | None:
            prop = self.crms[record.crm].of(record.object_type).fields.owner_property
            return (record.owned.get(prop) or None) if prop else None

        ordered = sorted(records, key=lambda r: owner_of(r) not in active[r.crm])
        person_crms = {
            r.crm: active[r.crm] for r in records if self.crms[r.crm].of(r.object_type).fields.owner_property
        }
        claimed: tuple[Assignment | None, PoolPick | None] | None = None
        shared: tuple[Crm, str] | None = None  # the owner the person already has (or got) somewhere
        out: dict[RecordKey, RoutingOutcome] = {}
        for record in ordered:
            outcome = route(
                routing,
                crm=record.crm,
                stage=decision.stage,
                disqualified=decision.disqualified_by is not None,
                person=person,
                current_owner_id=self.handoff.owner_for_routing(owner_of(record)),
                active_owner_ids=active[record.crm],
                when=self.routing_when,
                context=context,
                domain_owners=self._domains_for(person, routing),
            )
            protect = functools.partial(
                self.handoff.adjust_owner,
                record=record,
                current_owner_id=owner_of(record),
                last_written=last_written.get(_key(record), {}),
                owner_property=self.crms[record.crm].of(record.object_type).fields.owner_property,
            )
            outcome = protect(outcome)
            kept = outcome.owner_id is not None and outcome.owner_id == owner_of(record)
            if not kept and shared is not None:  # set only at a hand-off stage
                outcome = self._copy_owner(shared, record.crm, active[record.crm], outcome)
            elif outcome.claim is not None:
                if claimed is None:
                    claimed = self._claim(pid, outcome, person_crms, now)
                assignment, pick = claimed
                outcome = protect(settle(
                    routing, outcome, crm=record.crm, active_owner_ids=active[record.crm],
                    assignment=assignment, pick=pick,
                ))  # fmt: skip
            if outcome.owner_id is not None and shared is None:
                shared = (record.crm, outcome.owner_id)
            out[_key(record)] = outcome
        return out

    def _claim(
        self,
        pid: str,
        outcome: RoutingOutcome,
        person_crms: Mapping[Crm, frozenset[str]],
        now: datetime,
    ) -> tuple[Assignment | None, PoolPick | None]:
        """Take the person's turn in the outcome's pool (atomically, in the state database)."""
        routing = self.mappings.routing
        claim = outcome.claim
        assert claim is not None
        pool = routing.pools[claim.pool]
        blocked = {
            m: why for m in pool.members if (why := member_blocker(routing, m, person_crms)) is not None
        }
        day = routing_day(routing, now).isoformat()
        return self.store.claim_turn(
            person_id=pid,
            pool=claim.pool,
            rule=claim.rule,
            day=day,
            choose=lambda state: pick_member(pool, state, blocked),
            keep=lambda rep: member_blocker(routing, rep, person_crms) is None,
            run_id=self._run_id,
            read_counts=pool.daily_cap is not None or bool(pool.caps),
        )

    # ------------------------------------------------------------------ backfill

    def backfill(
        self,
        *,
        since: datetime,
        until: datetime | None = None,
        shard: Shard = WHOLE,
        should_stop: Callable[[], bool] = lambda: False,
        progress: Progress | None = None,
    ) -> RunReport:
        """Decide every person whose records changed in [since, until), this shard's share only.

        Each shard reads the whole range but decides only records whose `sharding.shard_key`
        hashes to it, under its own cursors (`backfill:<id>:<I>/<N>:<feed>`) and its own lease, so
        N processes sharing the state database split the work with no person decided twice, and a
        killed shard resumes where its last page committed. Activity feeds of the range come
        first (timelines only), as in a sync. Records not changed in the range are left to the
        scheduled sync, as are parked-write retries and the recycle sweep.
        """
        self._progress = progress or _no_progress
        now = self.clock()
        lag = max(
            (getattr(b.adapter, "search_lag", timedelta(0)) for b in self.crms.values()), default=timedelta(0)
        )
        newest = now - lag  # a range ending later would hold our own writes (stamped now)
        if until is not None and until <= since:
            raise ConfigError(
                f"backfill: --until ({until:%Y-%m-%d %H:%M}) must be after --since ({since:%Y-%m-%d %H:%M})"
            )
        job = self.store.backfill(since, until, shard.count, newest)
        prefix = f"backfill:{job.id}:{shard}"
        previous = next((r for r in self.store.backfill_shards(job.id) if r["shard"] == shard.index), None)
        report = RunReport(run_id=None, dry_run=False, started_at=now)
        calls_before = self.api_calls
        by_crm_before = self._calls_by_crm()
        report.run_id = self.store.start_run("backfill")
        log.info(
            "backfill shard %s of %s started", shard, job.id,
            extra={"event": "backfill.start", "run_id": report.run_id, "backfill": job.id,
                   "shard": str(shard), "since": job.since.isoformat(), "until": job.until.isoformat()},
        )  # fmt: skip
        self._run_id = report.run_id
        self._domain_owners = {}
        self._held = self._not_yet_due(now)
        status = "failed"
        try:
            self._acquire_leases(report.run_id, [prefix])
            self.store.backfill_shard_started(job.id, shard.index, report.run_id)
            if previous and previous.get("run_id"):
                self._recover(report, only_runs=frozenset({str(previous["run_id"])}))
            self._backfill_pass(report, job.since, job.until, shard, prefix, now, should_stop, job.id)
            if not report.stopped:
                self.store.backfill_shard_progress(job.id, shard.index, 0, done=True)
            status = "stopped" if report.stopped else "partial" if report.exit_code != ExitCode.OK else "ok"
        except ConnectorError as exc:
            status = (
                "blocked"
                if isinstance(exc, LeaseHeld)
                else "partial"
                if isinstance(exc, DailyLimitExhausted)
                else "failed"
            )
            self.store.finish_run(report.run_id, status, report.counts, error=exc.message)
            log.error(
                "backfill shard %s %s: %s", shard, status, exc.message,
                extra={"event": f"run.{status}", "run_id": report.run_id, "error": type(exc).__name__},
            )  # fmt: skip
            raise
        finally:
            self._release_leases()
        self._finish_run(report, status)
        self._account_api(report, calls_before, by_crm_before)
        log.info(
            "backfill shard %s finished: %s", shard, status,
            extra={"event": "run.end", "run_id": report.run_id, "status": status, "backfill": job.id,
                   "shard": str(shard), "api_calls": report.api_calls, "counts": dict(report.counts)},
        )  # fmt: skip
        return report

    def _backfill_pass(
        self,
        report: RunReport,
        since: datetime,
        until: datetime,
        shard: Shard,
        prefix: str,
        now: datetime,
        should_stop: Callable[[], bool],
        backfill_id: str,
    ) -> None:
        def keep(record: CrmRecord) -> bool:
            key = shard_key(
                record.crm, record.object_type, record.record_id, record.email, record.links,
                fold_plus_tags=self.fold_plus_tags,
            )  # fmt: skip
            return shard.owns(key)

        feeds = []
        for crm, binding in self.crms.items():
            make = getattr(binding.adapter, "backfill_feeds", None)
            if make is None:
                log.warning(
                    "%s has no backfill feeds yet: its records are left to the scheduled sync", crm,
                    extra={"event": "backfill.unsupported", "crm": crm},
                )  # fmt: skip
                continue
            start_run = getattr(binding.adapter, "start_run", None)
            if start_run is not None:
                start_run()
            feeds += [(crm, feed) for feed in make(since, until, keep)]
        active = _OnFirstUse(lambda: self._active_owners(report))
        if any(getattr(b.adapter, "start_run", None) is None for b in self.crms.values()):
            active.load()
        feeds.sort(key=lambda item: item[1].kind != "activities")
        for crm, feed in feeds:
            scope = f"{prefix}:{feed.scope}"
            for page in feed.pull(self.store.get_cursor(scope) or feed.start):
                if feed.kind == "activities":
                    self._activity_page(report, crm, page, scope)
                else:
                    self._page(report, crm, page, scope, active, now)
                    self.store.backfill_shard_progress(backfill_id, shard.index, len(page.records))
                    self._progress(
                        page.scanned if page.scanned is not None else len(page.records), page.total
                    )
                if self._stop_requested(report, should_stop):
                    return

    def _copy_owner(
        self, shared: tuple[Crm, str], crm: Crm, active: frozenset[str], routed: RoutingOutcome
    ) -> RoutingOutcome:
        """The owner the person has in another CRM, as this CRM's id: through routing.yaml reps,
        else an owner here with the same email. Neither: the record is left as it is, and why."""
        routing = self.mappings.routing
        source_crm, source_id = shared
        rep_key = rep_of_owner(routing, source_id)
        rep = routing.reps.get(rep_key) if rep_key else None
        owner_id = rep_owner_id(rep, crm) if rep is not None else None
        how = f"rep {rep_key}" if rep is not None else ""
        if owner_id is None:
            source = next((o for o in self._owners.get(source_crm, []) if o.id == source_id), None)
            email = (source.email or "").strip().casefold() if source else ""
            match = next(
                (
                    o
                    for o in self._owners.get(crm, [])
                    if email and (o.email or "").strip().casefold() == email
                ),
                None,
            )
            owner_id = match.id if match is not None else None
            how = f"same email {email}" if match is not None else ""
        if owner_id is not None and owner_id in active:
            reason = (
                f"assigned owner {owner_id}: copied from this person's {source_crm} owner {source_id} ({how})"
            )
            trace = (*routed.trace, RuleTrace("routing", "copy_owner", "", True, {"from": source_id}, reason))
            return dataclasses.replace(
                routed,
                owner_id=owner_id,
                rep=rep_key,
                pool=None,
                rule=None,
                reason=reason,
                trace=trace,
                claim=None,
            )
        if owner_id is not None:  # the same person is inactive here: route as usual
            note = f"{source_crm} owner {source_id} is {owner_id} here, archived or inactive: routed anew"
            trace = (*routed.trace, RuleTrace("routing", "copy_owner", "", False, {"from": source_id}, note))
            return dataclasses.replace(routed, trace=trace)
        reason = (
            f"left unowned: this person's {source_crm} owner {source_id} is not a rep in routing.yaml "
            f"and no {crm} owner has their email, so it cannot be copied"
        )
        trace = (*routed.trace, RuleTrace("routing", "copy_owner", "", False, {"from": source_id}, reason))
        return dataclasses.replace(
            routed, owner_id=None, rep=None, pool=None, rule=None, reason=reason, trace=trace, claim=None
        )

    def _domains_for(self, person: Mapping[str, Any], routing: Routing) -> Mapping[str, str]:
        """Company domain -> owner id for this person's email domain, when an account-owner rule
        would use it. Asked of each adapter that can look companies up, in order, for what is still
        unknown (HubSpot: companies by `domain`), for this domain and the page's other unseen ones
        in one call each, once per run."""
        rules = [r for r in routing.rules if r.kind == "account_owner" and r.match_domain]
        domain = str(person.get("email_domain") or "").strip().casefold()
        if not rules or not domain or any(r.owner_field and person.get(r.owner_field) for r in rules):
            return {}
        free = {d.casefold() for r in rules for d in self.mappings.criteria.lists.get(r.free_mail_list, [])}
        if domain in free:
            return {}
        if domain not in self._domain_owners:
            wanted = sorted(({domain} | self._page_domains) - free - set(self._domain_owners))
            found: dict[str, str] = {}
            for binding in self.crms.values():
                lookup = getattr(binding.adapter, "company_owners", None)
                missing = [d for d in wanted if d not in found]
                if lookup is not None and missing:
                    found.update(lookup(missing))
            self._domain_owners.update({d: found.get(d) for d in wanted})
        owner = self._domain_owners.get(domain)
        return {domain: owner} if owner else {}

    # ------------------------------------------------------------------ explain

    def explain(self, key: str) -> PersonResult | None:
        """Re-evaluate one person now (by email, CRM id or person id), changing nothing."""
        with self.store.rollback_scope():
            for crm, binding in self.crms.items():
                record = binding.adapter.find(key) or self._find_by_person(crm, key)
                if record is None:
                    continue
                pid = self._resolve(record)
                records = {_key(record): record}
                records.update(self._linked_records(records, {_key(record): pid}))
                person_of = {k: self._resolve(r) for k, r in records.items()}
                activities: list[SourceActivity] = []
                for c in self.crms:
                    mine = [r for r in records.values() if r.crm == c]
                    if mine:
                        activities += self.crms[c].adapter.activities_for(mine)
                self.store.add_activities(_to_timeline(activities, person_of))
                timeline = self.store.timelines([pid])[pid]
                last: dict[RecordKey, dict[str, str | None]] = {}
                for r in records.values():
                    for rid, values in self.store.last_written(r.crm, r.object_type, [r.record_id]).items():
                        last[(r.crm, r.object_type, rid)] = values
                people = [record, *(r for k, r in records.items() if k != _key(record))]
                entered = self.store.stage_entered([pid]).get(pid, (None, None))[1]
                self.handoff.load([pid])
                result = self._decide_person(
                    people, pid, timeline, self._active_owners(), last, self.clock(),
                    entered,
                )[0]  # fmt: skip
                person, _current, _status = self._person_state(people)
                gaps = self.evaluator.gaps(result.decision, person)
                return dataclasses.replace(result, gaps=tuple(gaps))
        return None

    def _find_by_person(self, crm: Crm, key: str) -> CrmRecord | None:
        pid = self.store.find_person(key)
        if pid is None:
            return None
        for record_crm, _object, record_id in self.store.records_of(pid):
            if record_crm == crm:
                return self.crms[crm].adapter.find(record_id)
        return None


def routing_day(routing: Routing, now: datetime) -> date:
    """The day `now` falls on in routing.yaml's timezone: daily caps restart at its midnight.
    (Here, not in the pure core: the timezone database is read from disk.)"""
    return now.astimezone(ZoneInfo(routing.timezone)).date()


def _dead_on_this_host(holder: str) -> bool:
    """True when `holder` ("host:pid") names a process on this host that no longer exists.

    A lease's holder that crashed on the same machine (cron, a restarted worker) is then taken over
    at once instead of after the lease expires. Containers have their own hostnames, so there the
    expiry decides, as it must: a pid means nothing across machines.
    """
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return False


def _key(item: CrmRecord | WriteIntent) -> RecordKey:
    """The (crm, object type, record id) a record or a write is about."""
    return (item.crm, item.object_type, item.record_id)


def _binding(adapter: CrmAdapter, crm_map: Any) -> CrmBinding:
    objects: dict[str, ObjectBinding] = {}
    if isinstance(crm_map, HubSpotMapping):
        lead_status = crm_map.lead_status
        fields = FieldMap(
            stage=crm_map.stage,
            lead_status=lead_status,
            owner_property=crm_map.owner.property if crm_map.owner else None,
            writes=frozenset(crm_map.writes),
            reason_property=crm_map.stage_reason.property if crm_map.stage_reason else None,
            date_property=crm_map.stage_date.property if crm_map.stage_date else None,
            protected_statuses=frozenset(
                value.strip().casefold() for value in (lead_status.protected if lead_status else [])
            ),
            allow_backwards=crm_map.stage.allow_backwards,
        )
        objects[crm_map.object] = ObjectBinding(
            fields,
            {v: s for s, v in crm_map.stage.values.items()},
            status_by_value={v.casefold(): s for s, v in lead_status.values.items()} if lead_status else {},
        )
    elif isinstance(crm_map, SalesforceMapping):
        for name, obj in crm_map.objects.items():
            status = obj.lead_status
            fields = FieldMap(
                stage=ValueMap(property=obj.stage.field, values=obj.stage.values),
                lead_status=ValueMap(property=status.field, values=status.values) if status else None,
                owner_property=obj.owner.field if obj.owner else None,
                writes=frozenset(obj.writes),
                allow_backwards=obj.stage.allow_backwards,
            )
            by_value: dict[str, str] = {}
            for (
                stage,
                value,
            ) in obj.stage.values.items():  # several stages may share a value: keep the highest
                by_value[value] = stage
            objects[name] = ObjectBinding(
                fields,
                by_value,
                obj.mql_date,
                obj.mql_reason,
                status_by_value={v.casefold(): s for s, v in status.values.items()} if status else {},
            )
    else:
        raise ConfigError(f"unsupported CRM mapping {type(crm_map).__name__}")
    return CrmBinding(adapter=adapter, objects=objects)


def _stamp_mql(
    intent: WriteIntent | None, binding: ObjectBinding, record: CrmRecord, decision: Decision, now: datetime
) -> WriteIntent | None:
    """Add the optional MQL date and reason fields when this write moves the record to MQL.

    Only empty fields are stamped: the date of the first hand-off stays, whoever set it.
    """
    stage_prop = binding.fields.stage.property
    if intent is None or intent.changes.get(stage_prop) != binding.fields.stage.values.get("mql"):
        return intent
    extra: dict[str, str] = {}
    stamps = (
        (binding.mql_date, now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        (binding.mql_reason, decision.reason[:255]),
    )
    for prop, value in stamps:
        if prop and prop in binding.fields.writes and not (record.owned.get(prop) or "").strip():
            extra[prop] = value
    if not extra:
        return intent
    before = {**intent.before, **{p: record.owned.get(p) for p in extra}}
    return dataclasses.replace(intent, changes={**intent.changes, **extra}, before=before)


def _to_timeline(items: Sequence[SourceActivity], person_of: Mapping[RecordKey, str]) -> list[Activity]:
    out = []
    for a in items:
        pid = person_of.get((a.crm, a.object_type, a.record_id))
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

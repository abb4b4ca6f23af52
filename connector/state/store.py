"""Repository over the state database: SQLite by default, PostgreSQL through the same URL setting.

The engine opens one transaction per unit of work with `store.transaction()`; everything written
inside it (decisions, audit rows, last-written values, routing pointers, cursors, the lease
renewal) commits together or not at all, so a crash never leaves a cursor ahead of the writes it
covers. Three things make a crash at any point recoverable:

* the **write journal**: each record write is journalled ("sending") and committed *before* the
  CRM sees it, and settled after; a row still "sending" at the next start belongs to a run that
  died mid-write, and `settle_interrupted` records what the CRM actually shows;
* **leases** per scope (CRM account + object) with expiry and a fencing generation, so two runs
  never write the same scope at once and a crashed holder is taken over safely;
* **failed writes** are parked with the CRM's message and a next-attempt time (exponential
  backoff), retried by later runs up to a limit, then left for `connector retry-failed`.

Portability: every statement is SQLAlchemy Core that SQLite and PostgreSQL both run; upserts use
each dialect's `ON CONFLICT`, and SQLite transactions start with BEGIN IMMEDIATE so a
read-then-write (a lease compare-and-set) cannot interleave with another process's.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    String,
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from connector.errors import ConfigError, ConnectorError, ExitCode, LeaseHeld, LeaseLost, SchemaBehind
from connector.lifecycle.drift import Drift
from connector.model import (
    Activity,
    Assignment,
    Crm,
    CrmRecord,
    Decision,
    PoolPick,
    PoolState,
    WriteIntent,
    WriteResult,
)
from connector.state import migrations
from connector.state import schema as t

log = logging.getLogger("connector.state")

DEFAULT_WRITE_RETRY_LIMIT = 5
DEFAULT_WRITE_RETRY_BACKOFF = timedelta(minutes=15)
WRITE_RETRY_BACKOFF_CAP = timedelta(hours=24)
DEFAULT_LEASE_TTL = timedelta(minutes=10)

# Journal states. "sending" is the only unsettled one.
SENDING = "sending"
WRITTEN = "written"
FAILED = "failed"
GONE = "gone"
NOT_APPLIED = "not_applied"


class StateUnavailable(ConnectorError):
    """The state database server cannot be reached: a connection failure, like an unreachable CRM."""

    exit_code = ExitCode.CONNECTION


@dataclass(frozen=True)
class RunRow:
    id: str
    command: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    counts: dict[str, int]
    error: str | None


TASK_PLANNED = "planned"
TASK_SENDING = "sending"
TASK_CREATED = "created"
TASK_FAILED = "failed"


@dataclass(frozen=True)
class HandoffRow:
    """When a person was handed to Sales, at which stage, to whom; and when first recycled."""

    person_id: str
    stage: str
    owner_id: str | None
    handed_off_at: datetime
    recycled_at: datetime | None = None
    recycled_by: str | None = None


@dataclass(frozen=True)
class TaskRow:
    """One follow-up task in the journal; `spec_json` is what to create (see engine hand-off step)."""

    person_id: str
    crm: str
    object_type: str
    record_id: str
    owner_id: str
    spec_json: str
    state: str = TASK_PLANNED
    task_id: str | None = None
    attempts: int = 0
    error: str | None = None


@dataclass(frozen=True)
class FailedWrite:
    """A parked write. `next_attempt_at` None means the retry limit is reached (only `retry-failed`)."""

    crm: str
    object_type: str
    record_id: str
    person_id: str
    changes: dict[str, str]
    error: str
    attempts: int
    last_failed_at: datetime
    first_failed_at: datetime | None = None
    next_attempt_at: datetime | None = None
    retryable: bool = True

    @property
    def parked(self) -> bool:
        return self.next_attempt_at is None


@dataclass(frozen=True)
class StoredDecision:
    person_id: str
    run_id: str
    evaluated_at: datetime
    criteria_version: str
    stage: str
    lead_status: str | None
    owner_id: str | None
    fit_score: int
    fit_grade: str
    disqualified_by: str | None
    reason: str
    owner_reason: str | None
    signals: dict[str, Any]
    trace: list[dict[str, Any]]


@dataclass(frozen=True)
class BackfillRow:
    id: str
    since: datetime
    until: datetime
    shards: int


@dataclass(frozen=True)
class DriftRow:
    """A person whose CRMs disagree: per CRM their stage and owner (rep key, or `crm:id`)."""

    person_id: str
    email: str | None
    fields: tuple[str, ...]
    stages: dict[str, str | None]
    owners: dict[str, str | None]
    detected_at: datetime


@dataclass(frozen=True)
class LeaseRow:
    scope: str
    holder: str
    run_id: str | None
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime
    generation: int


@dataclass(frozen=True)
class JournalEntry:
    """A write that was sent (or about to be) and never settled: its run died mid-write."""

    id: int
    run_id: str
    crm: Crm
    object_type: str
    record_id: str
    person_id: str
    changes: dict[str, str]
    before: dict[str, str | None]
    reason: str
    sent_at: datetime

    def intent(self) -> WriteIntent:
        return WriteIntent(
            crm=self.crm,
            object_type=self.object_type,
            record_id=self.record_id,
            person_id=self.person_id,
            changes=dict(self.changes),
            before=dict(self.before),
            reason=self.reason,
        )


@dataclass(frozen=True)
class MigrationReport:
    before: int | None
    after: int
    applied: list[migrations.Migration]


@dataclass
class ForgetReport:
    """What `forget` removed, table by table (rows), so the operator can say what was erased."""

    person_ids: list[str] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return bool(self.person_ids)


def _real_now() -> datetime:
    return datetime.now(UTC)


def normalize_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean PostgreSQL through psycopg 3 (the driver we ship)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def display_url(url: str) -> str:
    """The URL with any password masked, for messages and `status`."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit transactions skip DDL
    # and start lazily, which breaks transactional migrations and compare-and-set).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _clean(value: str | None) -> str | None:
    """Text as PostgreSQL can store it: NUL bytes (legal in CRM strings, refused by PG) replaced."""
    if value is None:
        return None
    return value.replace("\x00", "\ufffd")


class StateStore:
    """All state access goes through here; SQL stays out of the engine and the lifecycle core."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = _real_now,
        write_retry_limit: int = DEFAULT_WRITE_RETRY_LIMIT,
        write_retry_backoff: timedelta = DEFAULT_WRITE_RETRY_BACKOFF,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.write_retry_limit = write_retry_limit
        self.write_retry_backoff = write_retry_backoff
        self._conn: Connection | None = None
        self._rolling_back = False
        self._plan = _PlanTurns()

    # ------------------------------------------------------------------ lifecycle

    @staticmethod
    def _engine(url: str) -> Engine:
        url = normalize_url(url)
        try:
            backend = make_url(url).get_backend_name()
        except ArgumentError as exc:
            raise ConfigError(
                f"CONNECTOR_STATE_URL: not a database URL ({exc}); use sqlite:///path/state.db or "
                "postgresql://user@host:5432/db"
            ) from None
        if backend not in ("sqlite", "postgresql"):
            raise ConfigError(
                f"CONNECTOR_STATE_URL: {backend} is not supported; use SQLite (the default, "
                "sqlite:///path/state.db) or PostgreSQL (postgresql://user@host:5432/db)"
            )
        try:
            if url.startswith("sqlite:///"):
                path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
                if str(path) not in ("", ":memory:"):
                    path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, pool_pre_ping=True)
        except ImportError as exc:
            raise ConfigError(
                f"CONNECTOR_STATE_URL: no database driver for this URL ({exc.name or exc}); install it, "
                "or use the default sqlite:///connector-state.db (PostgreSQL: postgresql://user@host/db)"
            ) from None
        except (ArgumentError, ValueError) as exc:
            raise ConfigError(
                f"CONNECTOR_STATE_URL: not a database URL ({exc}); use sqlite:///path/state.db or "
                "postgresql://user@host:5432/db"
            ) from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
        return engine

    @classmethod
    def open(
        cls,
        url: str,
        *,
        clock: Callable[[], datetime] = _real_now,
        write_retry_limit: int = DEFAULT_WRITE_RETRY_LIMIT,
        write_retry_backoff: timedelta = DEFAULT_WRITE_RETRY_BACKOFF,
    ) -> StateStore:
        """Connect and check the schema. An empty database is initialised; an old one is refused.

        Refusing (rather than upgrading silently) keeps schema changes an operator's decision:
        several containers may share a PostgreSQL database, and a backup before `connector migrate`
        is cheap. A brand-new database has nothing to lose, so it is created at the newest version.
        """
        engine = cls._engine(url)
        shown = display_url(normalize_url(url))
        try:
            with engine.begin() as conn:
                version = migrations.current_version(conn)
                if version is None:
                    migrations.upgrade(conn)
                    log.info(
                        "initialised a new state database at schema version %d", migrations.HEAD,
                        extra={"event": "state.initialised", "schema_version": migrations.HEAD},
                    )  # fmt: skip
                elif version < migrations.HEAD:
                    raise SchemaBehind(
                        f"CONNECTOR_STATE_URL: the state database {shown} is at schema version {version}; "
                        f"this connector needs version {migrations.HEAD}. Back it up, then run "
                        "`connector migrate`."
                    )
                elif version > migrations.HEAD:
                    raise ConfigError(
                        f"CONNECTOR_STATE_URL: the state database {shown} has schema version {version}, "
                        f"newer than this connector ({migrations.HEAD}); upgrade the connector"
                    )
        except ConnectorError:
            engine.dispose()
            raise
        except SQLAlchemyError as exc:
            engine.dispose()
            raise _db_error(exc, shown) from None
        return cls(
            engine,
            clock=clock,
            write_retry_limit=write_retry_limit,
            write_retry_backoff=write_retry_backoff,
        )

    @classmethod
    def migrate(cls, url: str) -> MigrationReport:
        """Bring the database to the newest schema (`connector migrate`); safe to run twice."""
        engine = cls._engine(url)
        shown = display_url(normalize_url(url))
        try:
            with engine.begin() as conn:
                before = migrations.current_version(conn)
                if before is not None and before > migrations.HEAD:
                    raise ConfigError(
                        f"CONNECTOR_STATE_URL: the state database {shown} has schema version {before}, "
                        f"newer than this connector ({migrations.HEAD}); upgrade the connector"
                    )
                applied = migrations.upgrade(conn)
                after = migrations.current_version(conn) or 0
        except SQLAlchemyError as exc:
            raise _db_error(exc, shown) from None
        finally:
            engine.dispose()
        return MigrationReport(before=before, after=after, applied=applied)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def url(self) -> str:
        return display_url(self.engine.url.render_as_string(hide_password=False))

    def schema_version(self) -> int:
        with self._c() as c:
            return migrations.current_version(c) or 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes atomically. Nested calls join the outer transaction."""
        if self._conn is not None:
            yield
            return
        with self.engine.begin() as conn:
            self._conn = conn
            try:
                yield
            finally:
                self._conn = None

    @contextmanager
    def rollback_scope(self) -> Iterator[None]:
        """Run everything inside one transaction that is always rolled back (for `plan`/`explain`)."""
        if self._conn is not None:
            raise RuntimeError("rollback_scope cannot nest inside another transaction")
        with self.engine.connect() as conn:
            trans = conn.begin()
            self._conn = conn
            self._rolling_back = True
            self._plan = _PlanTurns()
            try:
                yield
            finally:
                self._conn = None
                self._rolling_back = False
                trans.rollback()

    @contextmanager
    def _c(self) -> Iterator[Connection]:
        if self._conn is not None:
            yield self._conn
        else:
            with self.engine.begin() as conn:
                yield conn

    # ------------------------------------------------------------------ cursors

    def get_cursor(self, scope: str) -> str | None:
        with self._c() as c:
            value = c.execute(select(t.cursors.c.value).where(t.cursors.c.scope == scope)).scalar()
            return str(value) if value is not None else None

    def set_cursor(self, scope: str, value: str) -> None:
        with self._c() as c:
            _upsert(c, t.cursors, {"scope": scope}, {"value": value, "updated_at": self.clock()})

    def cursors(self) -> dict[str, str]:
        with self._c() as c:
            return {row.scope: row.value for row in c.execute(select(t.cursors))}

    def cursor_rows(self) -> list[tuple[str, str, datetime]]:
        """(scope, value, updated_at) of every cursor, for `status`."""
        with self._c() as c:
            rows = c.execute(select(t.cursors).order_by(t.cursors.c.scope))
            return [(r.scope, r.value, r.updated_at) for r in rows]

    # ------------------------------------------------------------------ identity

    def resolve_person(
        self,
        crm: Crm,
        object_type: str,
        record_id: str,
        email: str | None,
        links: Sequence[tuple[str, str, str]] = (),
    ) -> str:
        """The person id for a CRM record, creating the person on first sight.

        A record seen before keeps its person; a new record joins the person of a record it links
        to (HubSpot's `salesforceleadid`...), else the person with the same email key, so one human
        has one timeline across CRMs. A link between two records that are two persons so far (their
        emails differ) merges them: the older person keeps its id, the other's records, activities
        and decision move to it. `email` is the match key (`identity.match_key`).
        """
        email = _clean(email)
        if email is not None and len(email) > t.persons.c.email.type.length:  # type: ignore[attr-defined]
            email = None  # not an address (the identity rules reject these); never a database error
        with self._c() as c:
            pid = self._person_of(c, crm, object_type, record_id)
            linked = [p for link in links if (p := self._person_of(c, *link)) is not None]
            if pid is None and linked:
                pid = linked[0]
            if pid is None and email:
                pid = c.execute(
                    select(t.persons.c.id)
                    .where(t.persons.c.email == email)
                    .order_by(t.persons.c.created_at)
                    .limit(1)
                ).scalar()
            if pid is None:
                pid = "p_" + uuid.uuid4().hex[:20]
                c.execute(insert(t.persons).values(id=pid, email=email, created_at=self.clock()))
            elif email:
                c.execute(update(t.persons).where(t.persons.c.id == pid).values(email=email))
            if self._person_of(c, crm, object_type, record_id) is None:
                c.execute(
                    insert(t.identities).values(
                        crm=crm, object_type=object_type, record_id=record_id, person_id=pid
                    )
                )
            for other in dict.fromkeys(linked):
                if other != pid:
                    self._merge(c, keep=str(pid), drop=other)
            for link in links:  # a linked record not seen yet joins now, so its pages find this person
                if self._person_of(c, *link) is None:
                    c.execute(
                        insert(t.identities).values(
                            crm=link[0], object_type=link[1], record_id=link[2], person_id=pid
                        )
                    )
            return str(pid)

    @staticmethod
    def _person_of(c: Connection, crm: str, object_type: str, record_id: str) -> str | None:
        ident = t.identities.c
        pid = c.execute(
            select(ident.person_id).where(
                ident.crm == crm, ident.object_type == object_type, ident.record_id == record_id
            )
        ).scalar()
        return str(pid) if pid is not None else None

    def _merge(self, c: Connection, *, keep: str, drop: str) -> None:
        """Fold person `drop` into `keep`: identities and activities move, drop's decision goes."""
        c.execute(update(t.identities).where(t.identities.c.person_id == drop).values(person_id=keep))
        c.execute(update(t.activities).where(t.activities.c.person_id == drop).values(person_id=keep))
        c.execute(update(t.audit).where(t.audit.c.person_id == drop).values(person_id=keep))
        c.execute(update(t.failed_writes).where(t.failed_writes.c.person_id == drop).values(person_id=keep))
        c.execute(update(t.write_journal).where(t.write_journal.c.person_id == drop).values(person_id=keep))
        c.execute(update(t.pending).where(t.pending.c.person_id == drop).values(person_id=keep))
        c.execute(t.decisions.delete().where(t.decisions.c.person_id == drop))
        c.execute(t.person_snapshots.delete().where(t.person_snapshots.c.person_id == drop))
        c.execute(t.stage_entries.delete().where(t.stage_entries.c.person_id == drop))
        c.execute(t.drift.delete().where(t.drift.c.person_id == drop))
        c.execute(t.persons.delete().where(t.persons.c.id == drop))

    def find_person(self, key: str) -> str | None:
        """A person by id, normalised email or any CRM record id."""
        with self._c() as c:
            if c.execute(select(t.persons.c.id).where(t.persons.c.id == key)).scalar():
                return key
            pid = c.execute(
                select(t.persons.c.id).where(t.persons.c.email == key.strip().casefold())
            ).scalar()
            if pid:
                return str(pid)
            pid = c.execute(select(t.identities.c.person_id).where(t.identities.c.record_id == key)).scalar()
            return str(pid) if pid else None

    def records_of(self, person_id: str) -> list[tuple[str, str, str]]:
        """(crm, object_type, record_id) of every CRM record of a person."""
        with self._c() as c:
            rows = c.execute(select(t.identities).where(t.identities.c.person_id == person_id))
            return [(r.crm, r.object_type, r.record_id) for r in rows]

    def person_email(self, person_id: str) -> str | None:
        with self._c() as c:
            value = c.execute(select(t.persons.c.email).where(t.persons.c.id == person_id)).scalar()
            return str(value) if value else None

    # ------------------------------------------------------------------ timeline

    def add_activities(self, items: Iterable[Activity]) -> int:
        """Append activities not seen before (by source + source_id). Returns how many were new.

        Activities whose keys do not fit the columns (an absurdly long id from a CRM) are dropped
        with a warning rather than failing the page.
        """
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for item in items:
            if len(item.source) > 200 or len(item.source_id) > 200 or len(item.type) > 60:
                log.warning(
                    "dropped an activity with an oversized key from %s", item.source[:60],
                    extra={"event": "activity.dropped", "source": item.source[:60]},
                )  # fmt: skip
                continue
            row = asdict(item)
            row["url"] = _clean(item.url)
            row["name"] = _clean(item.name)
            rows[(item.source, item.source_id)] = row
        added = 0
        with self._c() as c:
            for chunk in _chunks(list(rows.values()), 500):
                stmt = _dialect_insert(c, t.activities).values(chunk).on_conflict_do_nothing()
                added += len(c.execute(stmt.returning(*t.activities.primary_key.columns)).all())
        return added

    def timelines(self, person_ids: Sequence[str]) -> dict[str, list[Activity]]:
        out: dict[str, list[Activity]] = {pid: [] for pid in person_ids}
        with self._c() as c:
            for chunk in _chunks(list(person_ids), 500):
                rows = c.execute(
                    select(t.activities)
                    .where(t.activities.c.person_id.in_(chunk))
                    .order_by(t.activities.c.occurred_at, t.activities.c.source, t.activities.c.source_id)
                )
                for r in rows:
                    out[r.person_id].append(
                        Activity(
                            person_id=r.person_id,
                            type=r.type,
                            occurred_at=r.occurred_at,
                            source=r.source,
                            source_id=r.source_id,
                            url=r.url,
                            name=r.name,
                        )
                    )
        return out

    # ------------------------------------------------------------------ pending evaluation

    def mark_pending(self, crm: Crm, object_type: str, records: Mapping[str, str]) -> None:
        """Remember records (id -> person id) whose person needs evaluating; idempotent."""
        now = self.clock()
        rows = [
            {"crm": crm, "object_type": object_type, "record_id": rid, "person_id": pid, "since": now}
            for rid, pid in records.items()
        ]
        with self._c() as c:
            for chunk in _chunks(rows, 500):
                _upsert_many(c, t.pending, ["crm", "object_type", "record_id"], chunk)

    def clear_pending(self, crm: Crm, object_type: str, record_ids: Sequence[str]) -> None:
        p = t.pending.c
        with self._c() as c:
            for chunk in _chunks(list(record_ids), 500):
                c.execute(
                    t.pending.delete().where(
                        p.crm == crm, p.object_type == object_type, p.record_id.in_(chunk)
                    )
                )

    def pending(self, crm: Crm, limit: int) -> list[tuple[str, str]]:
        """Up to `limit` (object_type, record_id) still to evaluate for `crm`, oldest first."""
        p = t.pending.c
        with self._c() as c:
            rows = c.execute(
                select(p.object_type, p.record_id)
                .where(p.crm == crm)
                .order_by(p.since, p.record_id)
                .limit(limit)
            )
            return [(r.object_type, r.record_id) for r in rows]

    # ------------------------------------------------------------------ decisions

    def save_decision(self, run_id: str, decision: Decision) -> None:
        self.save_decisions(run_id, [decision])

    def save_decisions(self, run_id: str, decisions: Sequence[Decision]) -> None:
        """Upsert the latest decision per person, a page at a time (one statement per 200)."""
        rows = {d.person_id: self._decision_row(run_id, d) for d in decisions}  # last one per person wins
        with self._c() as c:
            for chunk in _chunks(list(rows.values()), 200):
                _upsert_many(c, t.decisions, ["person_id"], chunk)

    @staticmethod
    def _decision_row(run_id: str, decision: Decision) -> dict[str, Any]:
        return {
            "person_id": decision.person_id,
            "run_id": run_id,
            "evaluated_at": decision.evaluated_at,
            "criteria_version": decision.criteria_version,
            "stage": decision.stage,
            "computed_stage": decision.computed_stage,
            "lead_status": decision.lead_status,
            "owner_id": decision.owner_id,
            "fit_score": decision.fit_score,
            "fit_grade": decision.fit_grade,
            "disqualified_by": decision.disqualified_by,
            "reason": _clean(decision.reason),
            "owner_reason": _clean(decision.owner_reason),
            "signals_json": json.dumps(decision.signals, sort_keys=True),
            "trace_json": json.dumps([asdict(tr) for tr in decision.trace], default=str),
        }

    def decision(self, person_id: str) -> StoredDecision | None:
        with self._c() as c:
            r = c.execute(select(t.decisions).where(t.decisions.c.person_id == person_id)).first()
        if r is None:
            return None
        return StoredDecision(
            person_id=r.person_id,
            run_id=r.run_id,
            evaluated_at=r.evaluated_at,
            criteria_version=r.criteria_version,
            stage=r.stage,
            lead_status=r.lead_status,
            owner_id=r.owner_id,
            fit_score=r.fit_score,
            fit_grade=r.fit_grade,
            disqualified_by=r.disqualified_by,
            reason=r.reason,
            owner_reason=r.owner_reason,
            signals=json.loads(r.signals_json),
            trace=json.loads(r.trace_json),
        )

    def stage_counts(self, run_id: str | None = None) -> dict[str, int]:
        """People per last decided stage (only those decided in `run_id`, if given)."""
        query = select(t.decisions.c.stage, func.count()).group_by(t.decisions.c.stage)
        if run_id is not None:
            query = query.where(t.decisions.c.run_id == run_id)
        with self._c() as c:
            rows = c.execute(query)
            return {str(stage): int(n) for stage, n in rows}

    # ------------------------------------------------------------------ snapshots and stage entries

    def save_snapshot(
        self,
        person_id: str,
        fields: Mapping[str, Any],
        crm_stage: str | None,
        crm_lead_status: str | None,
        at: datetime,
    ) -> None:
        """Remember the mapped person fields and the CRM's canonical stage/status (for `simulate`)."""
        values = {
            "fields_json": json.dumps(dict(fields), sort_keys=True, default=str),
            "crm_stage": crm_stage,
            "crm_lead_status": crm_lead_status,
            "updated_at": at,
        }
        with self._c() as c:
            _upsert(c, t.person_snapshots, {"person_id": person_id}, values)

    def record_stage(self, person_id: str, stage: str, at: datetime) -> None:
        """Note `at` as the moment the person entered `stage`, unless they were already in it."""
        with self._c() as c:
            known = c.execute(
                select(t.stage_entries.c.stage).where(t.stage_entries.c.person_id == person_id)
            ).scalar()
            if known == stage:
                return
            _upsert(c, t.stage_entries, {"person_id": person_id}, {"stage": stage, "entered_at": at})

    def stage_entered(self, person_ids: Sequence[str]) -> dict[str, tuple[str, datetime]]:
        """person id -> (stage, entered at), for the people the connector has decided before."""
        out: dict[str, tuple[str, datetime]] = {}
        with self._c() as c:
            for chunk in _chunks(list(person_ids), 500):
                rows = c.execute(select(t.stage_entries).where(t.stage_entries.c.person_id.in_(chunk)))
                out.update({r.person_id: (r.stage, r.entered_at) for r in rows})
        return out

    def stale_at_stage(self, stages: Sequence[str], evaluated_before: datetime) -> list[str]:
        """People whose last decision put them in one of `stages` and was made before the moment.

        The recycle sweep re-evaluates them: people with no new data are otherwise never looked at
        again, and going quiet is exactly what a recycle rule is about.
        """
        d = t.decisions.c
        with self._c() as c:
            rows = c.execute(
                select(d.person_id)
                .where(d.stage.in_(list(stages)), d.evaluated_at < evaluated_before)
                .order_by(d.person_id)
            )
            return [str(r.person_id) for r in rows]

    # ------------------------------------------------------------------ hand-offs

    def handoffs(self, person_ids: Sequence[str]) -> dict[str, HandoffRow]:
        """person id -> their hand-off, for the people handed to Sales before."""
        out: dict[str, HandoffRow] = {}
        h = t.handoffs.c
        with self._c() as c:
            for chunk in _chunks(list(person_ids), 500):
                for r in c.execute(select(t.handoffs).where(h.person_id.in_(chunk))):
                    out[r.person_id] = HandoffRow(
                        r.person_id, r.stage, r.owner_id, r.handed_off_at, r.recycled_at, r.recycled_by
                    )
        return out

    def record_handoff(
        self, person_id: str, stage: str, owner_id: str | None, at: datetime, tasks: Sequence[TaskRow]
    ) -> bool:
        """Note the person's hand-off and plan its follow-up tasks, once: False if already handed off.

        Call inside the page transaction, so the hand-off and its planned tasks commit with the
        writes that made it (and a replayed page plans nothing twice).
        """
        with self._c() as c:
            if not _insert_ignore(
                c, t.handoffs, person_id=person_id, stage=stage, owner_id=owner_id, handed_off_at=at
            ):
                return False
            for task in tasks:
                _insert_ignore(
                    c,
                    t.handoff_tasks,
                    person_id=person_id,
                    crm=task.crm,
                    object_type=task.object_type,
                    record_id=task.record_id,
                    owner_id=task.owner_id,
                    spec_json=task.spec_json,
                    state=TASK_PLANNED,
                    task_id=None,
                    attempts=0,
                    error=None,
                    updated_at=at,
                )
        return True

    def mark_recycled(self, person_id: str, rule: str, at: datetime) -> None:
        """Remember when a recycle rule first sent a handed-off person back (kept afterwards)."""
        h = t.handoffs.c
        with self._c() as c:
            c.execute(
                update(t.handoffs)
                .where(h.person_id == person_id, h.recycled_at.is_(None))
                .values(recycled_at=at, recycled_by=rule)
            )

    def handoff_tasks(self, states: Sequence[str] | None = None) -> list[TaskRow]:
        """Follow-up task rows, optionally only in these states, oldest first."""
        q = t.handoff_tasks.c
        stmt = select(t.handoff_tasks).order_by(q.updated_at, q.person_id, q.crm)
        if states is not None:
            stmt = stmt.where(q.state.in_(list(states)))
        with self._c() as c:
            return [
                TaskRow(
                    r.person_id,
                    r.crm,
                    r.object_type,
                    r.record_id,
                    r.owner_id,
                    r.spec_json,
                    r.state,
                    r.task_id,
                    r.attempts,
                    r.error,
                )
                for r in c.execute(stmt)
            ]

    def task_sending(self, tasks: Sequence[TaskRow]) -> None:
        """Mark tasks as being sent, committed on its own before the CRM sees the create: a run
        killed after the CRM created them leaves "sending" rows the next run settles by asking."""
        if not tasks:
            return
        q = t.handoff_tasks.c
        now = self.clock()
        with self.engine.begin() as c:
            for task in tasks:
                c.execute(
                    update(t.handoff_tasks)
                    .where(q.person_id == task.person_id, q.crm == task.crm)
                    .values(state=TASK_SENDING, attempts=q.attempts + 1, updated_at=now)
                )

    def task_settled(
        self, person_id: str, crm: str, state: str, *, task_id: str | None = None, error: str | None = None
    ) -> None:
        """Record a task's outcome: created (with the CRM's id), planned again, or failed for good."""
        q = t.handoff_tasks.c
        with self._c() as c:
            c.execute(
                update(t.handoff_tasks)
                .where(q.person_id == person_id, q.crm == crm)
                .values(state=state, task_id=task_id, error=_clean(error), updated_at=self.clock())
            )

    def simulation_people(
        self, batch: int = 1000
    ) -> Iterator[
        list[tuple[str, str | None, dict[str, Any], str | None, str | None, datetime | None, list[Activity]]]
    ]:
        """Every person with a snapshot, in batches: (id, email, fields, CRM stage, CRM lead status,
        stage entered at, timeline). Streams, so `simulate` over a large portal stays in memory bounds."""
        after = ""
        while True:
            with self._c() as c:
                rows = c.execute(
                    select(t.person_snapshots, t.persons.c.email)
                    .join(t.persons, t.persons.c.id == t.person_snapshots.c.person_id, isouter=True)
                    .where(t.person_snapshots.c.person_id > after)
                    .order_by(t.person_snapshots.c.person_id)
                    .limit(batch)
                ).all()
            if not rows:
                return
            ids = [r.person_id for r in rows]
            timelines = self.timelines(ids)
            entered = self.stage_entered(ids)
            yield [
                (
                    r.person_id,
                    r.email,
                    json.loads(r.fields_json),
                    r.crm_stage,
                    r.crm_lead_status,
                    entered[r.person_id][1] if r.person_id in entered else None,
                    timelines[r.person_id],
                )
                for r in rows
            ]
            after = ids[-1]

    def count_snapshots(self) -> int:
        with self._c() as c:
            return int(c.execute(select(func.count()).select_from(t.person_snapshots)).scalar() or 0)

    # ------------------------------------------------------------------ writes

    def last_written(
        self, crm: Crm, object_type: str, record_ids: Sequence[str]
    ) -> dict[str, dict[str, str | None]]:
        out: dict[str, dict[str, str | None]] = {}
        lw = t.last_written.c
        with self._c() as c:
            for chunk in _chunks(list(record_ids), 500):
                rows = c.execute(
                    select(t.last_written).where(
                        lw.crm == crm, lw.object_type == object_type, lw.record_id.in_(chunk)
                    )
                )
                for r in rows:
                    out.setdefault(r.record_id, {})[r.property] = r.value
        return out

    def journal_sending(self, run_id: str, intents: Sequence[WriteIntent]) -> None:
        """Record, durably, that these writes are about to be sent (call just before the CRM call).

        It commits on its own connection: the evidence must survive the page transaction rolling
        back (or the process dying) after the CRM has applied the write. (Routing turns commit
        earlier still, in `claim_turn`: an owner chosen for a write that never lands stays the
        person's assignment, and the next run offers the same owner again.)
        """
        now = self.clock()
        rows = [
            {
                "run_id": run_id,
                "crm": i.crm,
                "object_type": i.object_type,
                "record_id": i.record_id,
                "person_id": i.person_id,
                "changes_json": json.dumps(i.changes, sort_keys=True),
                "before_json": json.dumps(i.before, sort_keys=True),
                "reason": _clean(i.reason) or "",
                "state": SENDING,
                "sent_at": now,
            }
            for i in intents
        ]
        if not rows:
            return
        with self.engine.begin() as c:
            c.execute(insert(t.write_journal), rows)

    def record_write(self, run_id: str, result: WriteResult, *, gone: bool = False) -> None:
        """Audit one intent's outcome; remember written values; park, schedule or clear failures.

        `gone` says the record no longer exists in the CRM (deleted or merged between read and
        write): nothing to retry, so it is audited and not parked.
        """
        intent = result.intent
        gone = gone or result.gone
        now = self.clock()
        outcome = WRITTEN if result.ok else (GONE if gone else FAILED)
        with self._c() as c:
            self._audit(c, run_id, intent, outcome, result.error, now)
            c.execute(
                update(t.write_journal)
                .where(
                    t.write_journal.c.run_id == run_id,
                    t.write_journal.c.crm == intent.crm,
                    t.write_journal.c.object_type == intent.object_type,
                    t.write_journal.c.record_id == intent.record_id,
                    t.write_journal.c.state == SENDING,
                )
                .values(state=outcome, settled_at=now, error=_clean(result.error))
            )
            key = _failed_key(intent.crm, intent.object_type, intent.record_id)
            if result.ok:
                self._remember(c, run_id, intent, now)
                c.execute(t.failed_writes.delete().where(key))
                return
            if gone:
                c.execute(t.failed_writes.delete().where(key))
                return
            attempts = int(c.execute(select(t.failed_writes.c.attempts).where(key)).scalar() or 0) + 1
            values = {
                "person_id": intent.person_id,
                "changes_json": json.dumps(intent.changes, sort_keys=True),
                "error": _clean(result.error) or "unknown error",
                "last_failed_at": now,
                "run_id": run_id,
                "attempts": attempts,
                "next_attempt_at": self._next_attempt(attempts, now),
                "retryable": bool(result.retryable),
            }
            _upsert(
                c,
                t.failed_writes,
                {"crm": intent.crm, "object_type": intent.object_type, "record_id": intent.record_id},
                values,
                insert_only={"first_failed_at": now},
            )

    def _next_attempt(self, attempts: int, now: datetime) -> datetime | None:
        """Exponential backoff (base x 2^(n-1), capped at a day); None once the limit is reached."""
        if attempts >= self.write_retry_limit:
            return None
        wait = self.write_retry_backoff * (1 << min(attempts - 1, 30))
        return now + min(wait, WRITE_RETRY_BACKOFF_CAP)

    def _audit(
        self, c: Connection, run_id: str, intent: WriteIntent, outcome: str, error: str | None, now: datetime
    ) -> None:
        rows = [
            {
                "run_id": run_id,
                "at": now,
                "crm": intent.crm,
                "object_type": intent.object_type,
                "record_id": intent.record_id,
                "person_id": intent.person_id,
                "property": prop,
                "before": _clean(intent.before.get(prop)),
                "after": _clean(value),
                "reason": _clean(intent.reason) or "",
                "outcome": outcome,
                "error": _clean(error),
            }
            for prop, value in intent.changes.items()
        ]
        if rows:
            c.execute(insert(t.audit), rows)

    def _remember(self, c: Connection, run_id: str, intent: WriteIntent, now: datetime) -> None:
        for prop, value in intent.changes.items():
            _upsert(
                c,
                t.last_written,
                {
                    "crm": intent.crm,
                    "object_type": intent.object_type,
                    "record_id": intent.record_id,
                    "property": prop,
                },
                {"value": _clean(value), "written_at": now, "run_id": run_id},
            )

    def interrupted_writes(self, crm: Crm | None = None) -> list[JournalEntry]:
        """Writes journalled as "sending" whose run never settled them (it died mid-write)."""
        j = t.write_journal.c
        query = select(t.write_journal).where(j.state == SENDING).order_by(j.id)
        if crm is not None:
            query = query.where(j.crm == crm)
        with self._c() as c:
            return [
                JournalEntry(
                    id=r.id,
                    run_id=r.run_id,
                    crm=r.crm,
                    object_type=r.object_type,
                    record_id=r.record_id,
                    person_id=r.person_id,
                    changes=json.loads(r.changes_json),
                    before=json.loads(r.before_json),
                    reason=r.reason,
                    sent_at=r.sent_at,
                )
                for r in c.execute(query)
            ]

    def settle_interrupted(
        self, entry: JournalEntry, current: Mapping[str, str | None] | None, *, run_id: str
    ) -> str:
        """Record what became of an interrupted write, from the CRM's values now.

        `current` is the record's owned properties as the CRM shows them (None: the record is
        gone). If every property holds what was sent, the write landed: it is audited and
        remembered as ours (so a later human edit is still recognised as one); otherwise it did not
        land (or was overwritten since) and the normal diff will send what is still needed.
        Returns the state recorded.
        """
        now = self.clock()
        if current is None:
            state = GONE
        elif all((current.get(p) or "") == v for p, v in entry.changes.items()):
            state = WRITTEN
        else:
            state = NOT_APPLIED
        intent = entry.intent()
        intent = WriteIntent(
            crm=intent.crm,
            object_type=intent.object_type,
            record_id=intent.record_id,
            person_id=intent.person_id,
            changes=intent.changes,
            before=intent.before,
            reason=f"{intent.reason} (sent by run {entry.run_id}, which was interrupted; confirmed later)",
        )
        with self._c() as c:
            if state == WRITTEN:
                self._audit(c, entry.run_id, intent, WRITTEN, None, now)
                self._remember(c, entry.run_id, intent, now)
            c.execute(
                update(t.write_journal)
                .where(t.write_journal.c.id == entry.id, t.write_journal.c.state == SENDING)
                .values(state=state, settled_at=now, error=f"settled by run {run_id}")
            )
        return state

    def journal(self, *, run_id: str | None = None) -> list[dict[str, Any]]:
        query = select(t.write_journal).order_by(t.write_journal.c.id)
        if run_id:
            query = query.where(t.write_journal.c.run_id == run_id)
        with self._c() as c:
            return [dict(r._mapping) for r in c.execute(query)]

    # ------------------------------------------------------------------ failed writes

    def failed_writes(self) -> list[FailedWrite]:
        with self._c() as c:
            rows = c.execute(
                select(t.failed_writes).order_by(
                    t.failed_writes.c.last_failed_at, t.failed_writes.c.record_id
                )
            )
            return [_failed(r) for r in rows]

    def due_failed_writes(self, crm: Crm | None = None, *, include_parked: bool = False) -> list[FailedWrite]:
        """Failed writes a run should try again now: due by their backoff, or all (`retry-failed`)."""
        f = t.failed_writes.c
        query = select(t.failed_writes).order_by(f.last_failed_at, f.record_id)
        if crm is not None:
            query = query.where(f.crm == crm)
        if not include_parked:
            query = query.where(f.next_attempt_at.is_not(None), f.next_attempt_at <= self.clock())
        with self._c() as c:
            return [_failed(r) for r in c.execute(query)]

    def clear_failed_writes(self, records: Sequence[CrmRecord]) -> int:
        """Drop parked writes of these records (evaluated again with nothing left to write)."""
        f = t.failed_writes.c
        cleared = 0
        keys = sorted({(r.crm, r.object_type, r.record_id) for r in records})
        with self._c() as c:
            for crm, object_type in sorted({(k[0], k[1]) for k in keys}):
                ids = [k[2] for k in keys if k[:2] == (crm, object_type)]
                for chunk in _chunks(ids, 500):
                    cleared += int(
                        c.execute(
                            delete(t.failed_writes).where(
                                f.crm == crm, f.object_type == object_type, f.record_id.in_(chunk)
                            )
                        ).rowcount
                        or 0
                    )
        return cleared

    def clear_failed_write(self, crm: str, object_type: str, record_id: str) -> bool:
        """Drop a parked write that no longer applies (the CRM already shows the value, or the
        criteria no longer ask for it). True when there was one."""
        with self._c() as c:
            return bool(
                c.execute(t.failed_writes.delete().where(_failed_key(crm, object_type, record_id))).rowcount
            )

    def audit_rows(self, *, run_id: str | None = None, person_id: str | None = None) -> list[dict[str, Any]]:
        query = select(t.audit).order_by(t.audit.c.id)
        if run_id:
            query = query.where(t.audit.c.run_id == run_id)
        if person_id:
            query = query.where(t.audit.c.person_id == person_id)
        with self._c() as c:
            return [dict(r._mapping) for r in c.execute(query)]

    def daily_writes(self, properties: Sequence[str]) -> list[tuple[str, str, str, int]]:
        """(day, crm, value written, count) of successful writes of these properties, by day.

        Aggregated in SQL so a report over years of audit stays small in memory.
        """
        a = t.audit.c
        day = func.substr(func.cast(a.at, String), 1, 10)
        query = (
            select(day, a.crm, a.after, func.count())
            .where(a.property.in_(list(properties)), a.outcome == "written")
            .group_by(day, a.crm, a.after)
            .order_by(day)
        )
        with self._c() as c:
            return [(str(d), str(crm), str(after), int(n)) for d, crm, after, n in c.execute(query)]

    # ------------------------------------------------------------------ leases

    def acquire_lease(
        self,
        scope: str,
        holder: str,
        *,
        ttl: timedelta = DEFAULT_LEASE_TTL,
        run_id: str | None = None,
        dead_holders: Sequence[str] = (),
    ) -> Lease:
        """Take the lease on `scope`, or raise `LeaseHeld` naming who has it and until when.

        Free, expired (its holder crashed or hung) and our own leases are taken, and so is one held
        by a holder in `dead_holders` (the caller checked that process is gone); each takeover bumps
        the generation, which is what stops a holder that wakes up late from renewing. Runs in its
        own committed transaction: a lease nobody else can see protects nothing.
        """
        now = self.clock()
        expires = now + ttl
        lc = t.leases.c
        with self.engine.begin() as c:
            fresh = {
                "holder": holder,
                "run_id": run_id,
                "acquired_at": now,
                "renewed_at": now,
                "expires_at": expires,
            }
            if _insert_ignore(c, t.leases, scope=scope, generation=1, **fresh):
                return Lease(self, scope, holder, 1, ttl)
            taken = c.execute(
                update(t.leases)
                .where(lc.scope == scope, or_(lc.holder.in_([holder, *dead_holders]), lc.expires_at <= now))
                .values(generation=lc.generation + 1, **fresh)
            ).rowcount
            row = c.execute(select(t.leases).where(lc.scope == scope)).one()
        if taken:
            return Lease(self, scope, holder, int(row.generation), ttl)
        raise LeaseHeld(
            f"another run holds the lease on {scope}: {row.holder} (run {row.run_id or '-'}), until "
            f"{row.expires_at:%Y-%m-%d %H:%M:%S} UTC unless it renews it. This run changed nothing; "
            "run it again later (`connector status` shows lease holders).",
            scope=scope,
            holder=str(row.holder),
        )

    def _renew(self, lease: Lease) -> None:
        now = self.clock()
        lc = t.leases.c
        with self._c() as c:
            done = c.execute(
                update(t.leases)
                .where(lc.scope == lease.scope, lc.holder == lease.holder, lc.generation == lease.generation)
                .values(renewed_at=now, expires_at=now + lease.ttl)
            ).rowcount
        if not done:
            raise LeaseLost(
                f"the lease on {lease.scope} expired and another run took it over; this run stopped "
                "before writing more. Raise CONNECTOR_LEASE_TTL if pages take longer than it.",
                scope=lease.scope,
                holder=lease.holder,
            )

    def _release(self, lease: Lease) -> None:
        lc = t.leases.c
        with self.engine.begin() as c:
            c.execute(
                delete(t.leases).where(
                    lc.scope == lease.scope, lc.holder == lease.holder, lc.generation == lease.generation
                )
            )

    def leases(self) -> list[LeaseRow]:
        with self._c() as c:
            rows = c.execute(select(t.leases).order_by(t.leases.c.scope))
            return [
                LeaseRow(
                    scope=r.scope,
                    holder=r.holder,
                    run_id=r.run_id,
                    acquired_at=r.acquired_at,
                    renewed_at=r.renewed_at,
                    expires_at=r.expires_at,
                    generation=r.generation,
                )
                for r in rows
            ]

    # ------------------------------------------------------------------ routing

    # ------------------------------------------------------------------ routing turns

    def claim_turn(
        self,
        *,
        person_id: str,
        pool: str,
        rule: str,
        day: str,
        choose: Callable[[PoolState], PoolPick],
        keep: Callable[[str], bool],
        run_id: str | None = None,
        read_counts: bool = True,
    ) -> tuple[Assignment | None, PoolPick | None]:
        """Take `person_id`'s turn in `pool` atomically; returns (assignment, the pick made).

        One transaction: lock the pool's row (PostgreSQL `SELECT ... FOR UPDATE`; SQLite's
        transactions start with BEGIN IMMEDIATE, which already serialises writers), read today's
        counts, let `choose` (the pure `pick_member`) pick, then insert the assignment, move the
        pointer and count the turn. The assignment's primary key is the person, so of several
        workers racing for one person exactly one inserts; the others get that assignment back
        with `reused` set, and their pool state is untouched.

        A person who already has an assignment whose rep `keep` accepts (still active) gets it
        back without a new turn; one whose rep can no longer own records takes a new turn, which
        replaces it. (None, pick) means nobody in the pool was eligible: nothing is written.
        Inside `rollback_scope` (plan, explain) turns are taken in memory over the stored state
        (`_plan_turn`): nothing is written, so no lock is held while the plan runs and live
        workers' turns never wait for it.
        `read_counts` False skips reading today's counts (a pool without caps does not need them).
        """
        if self._rolling_back:
            return self._plan_turn(person_id, pool, rule, day, choose, keep, read_counts=read_counts)
        with self._c() as c:
            inserts = _routing_inserts(c)
            row = c.execute(_POOL_ROW, {"pool": pool}).first()
            if row is None:  # a new pool: racing creators both insert-or-skip, then both lock
                c.execute(inserts.pool, {"pool": pool, "position": 0, "current_json": "{}"})
                row = c.execute(_POOL_ROW, {"pool": pool}).one()
            existing = c.execute(_ASSIGNMENT_OF, {"person": person_id}).first()
            if existing is not None and keep(existing.rep):
                return _assignment(existing, reused=True), None
            counts: dict[str, int] = {}
            if read_counts:
                counts = {r.rep: int(r.n) for r in c.execute(_COUNTS_OF, {"pool": pool, "day": day})}
            state = PoolState(int(row.position), json.loads(row.current_json or "{}"), counts)
            pick = choose(state)
            if pick.rep is None:
                return None, pick
            if existing is not None:  # compare-and-set: only the assignment we judged is replaced
                a = t.routing_assignments.c
                c.execute(
                    delete(t.routing_assignments).where(a.person_id == person_id, a.rep == existing.rep)
                )
            now = self.clock()
            values = {
                "person_id": person_id,
                "rep": pick.rep,
                "pool": pool,
                "rule": rule,
                "day": day,
                "assigned_at": now,
                "run_id": run_id,
            }
            # RETURNING, not rowcount: psycopg reports -1 for a skipped conflict.
            if not c.execute(inserts.assignment, values).all():
                winner = c.execute(_ASSIGNMENT_OF, {"person": person_id}).one()
                return _assignment(winner, reused=True), None
            current = json.dumps(pick.current, sort_keys=True)
            c.execute(
                _MOVE_POOL, {"p": pool, "new_position": pick.pointer, "new_current": current, "at": now}
            )
            c.execute(inserts.count, {"pool": pool, "rep": pick.rep, "day": day, "count": 1})
            return Assignment(person_id, pick.rep, pool, rule, day), pick

    def _plan_turn(
        self,
        person_id: str,
        pool: str,
        rule: str,
        day: str,
        choose: Callable[[PoolState], PoolPick],
        keep: Callable[[str], bool],
        *,
        read_counts: bool,
    ) -> tuple[Assignment | None, PoolPick | None]:
        """`claim_turn` for a rolled-back pass: the stored state plus this pass's own turns."""
        plan = self._plan
        existing = plan.assignments.get(person_id) or self.assignment(person_id)
        if existing is not None and keep(existing.rep):
            return replace(existing, reused=True), None
        with self._c() as c:
            row = c.execute(_POOL_PEEK, {"pool": pool}).first()
            stored = (
                PoolState(int(row.position), json.loads(row.current_json or "{}")) if row else PoolState()
            )
            counts: Counter[str] = Counter()
            if read_counts:
                counts.update({r.rep: int(r.n) for r in c.execute(_COUNTS_OF, {"pool": pool, "day": day})})
                counts.update({rep: n for (p, rep, d), n in plan.counts.items() if (p, d) == (pool, day)})
        state = plan.pools.get(pool, stored)
        pick = choose(PoolState(state.pointer, state.current, dict(counts)))
        if pick.rep is None:
            return None, pick
        plan.pools[pool] = PoolState(pick.pointer, pick.current)
        plan.counts[(pool, pick.rep, day)] += 1
        plan.assignments[person_id] = Assignment(person_id, pick.rep, pool, rule, day)
        return plan.assignments[person_id], pick

    def assignment(self, person_id: str) -> Assignment | None:
        """The person's recorded pool turn, if any."""
        with self._c() as c:
            row = c.execute(
                select(t.routing_assignments).where(t.routing_assignments.c.person_id == person_id)
            ).first()
            return _assignment(row) if row is not None else None

    def release_assignment(self, person_id: str) -> bool:
        """Forget the person's turn (a recycled person is routed afresh at the next hand-off).
        Today's count stays: the rep did get the person today."""
        with self._c() as c:
            done = c.execute(
                delete(t.routing_assignments).where(t.routing_assignments.c.person_id == person_id)
            ).rowcount
            return bool(done)

    def routing_counts(self, day: str | None = None) -> dict[tuple[str, str, str], int]:
        """(pool, rep, day) -> people assigned, for `status` and tests."""
        with self._c() as c:
            query = select(t.routing_counts)
            if day is not None:
                query = query.where(t.routing_counts.c.day == day)
            return {(r.pool, r.rep, r.day): int(r._mapping["count"]) for r in c.execute(query)}

    def routing_pools(self) -> dict[str, PoolState]:
        """Each pool's stored pointer and weighted-turn state (counts left empty)."""
        with self._c() as c:
            return {
                r.pool: PoolState(int(r.position), json.loads(r.current_json or "{}"))
                for r in c.execute(select(t.routing_pools))
            }

    # ------------------------------------------------------------------ runs

    def start_run(self, command: str) -> str:
        now = self.clock()
        run_id = now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
        with self._c() as c:
            c.execute(
                insert(t.runs).values(
                    id=run_id, command=command, started_at=now, status="running", counts_json="{}"
                )
            )
        return run_id

    def finish_run(
        self, run_id: str, status: str, counts: Mapping[str, int], error: str | None = None
    ) -> None:
        with self._c() as c:
            c.execute(
                update(t.runs)
                .where(t.runs.c.id == run_id)
                .values(
                    finished_at=self.clock(),
                    status=status,
                    counts_json=json.dumps(dict(counts)),
                    error=_clean(error),
                )
            )

    def runs(self, limit: int = 10) -> list[RunRow]:
        with self._c() as c:
            rows = c.execute(
                select(t.runs).order_by(t.runs.c.started_at.desc(), t.runs.c.id.desc()).limit(limit)
            )
            return [
                RunRow(
                    id=r.id,
                    command=r.command,
                    started_at=r.started_at,
                    finished_at=r.finished_at,
                    status=r.status,
                    counts=json.loads(r.counts_json or "{}"),
                    error=r.error,
                )
                for r in rows
            ]

    # ------------------------------------------------------------------ backfills

    def backfill(
        self, since: datetime, until: datetime | None, shards: int, default_until: datetime
    ) -> BackfillRow:
        """The backfill of [since, until) in `shards` shards, created by the first shard to ask.

        Its id names the range as given (`until` "open" when not given), so every shard of one
        Indexed Job, and every restart of a shard, finds the same row and the same fixed `until`:
        `default_until` (the first shard's start minus the search lag) when not given or later,
        so the connector's own writes never fall inside the range it reads.
        """
        given = until.strftime("%Y%m%dT%H%M%SZ") if until else "open"
        backfill_id = f"{since:%Y%m%dT%H%M%SZ}-{given}-{shards}"
        now = self.clock()
        with self.engine.begin() as c:
            _insert_ignore(
                c, t.backfills, id=backfill_id, since=since, until=min(until or default_until, default_until),
                shards=shards,
                created_at=now,
            )  # fmt: skip
            row = c.execute(select(t.backfills).where(t.backfills.c.id == backfill_id)).one()
        return BackfillRow(id=row.id, since=row.since, until=row.until, shards=int(row.shards))

    def backfill_shard_started(self, backfill_id: str, shard: int, run_id: str) -> None:
        now = self.clock()
        with self._c() as c:
            fresh = {
                "status": "running",
                "records": 0,
                "run_id": run_id,
                "started_at": now,
                "updated_at": now,
            }
            if not _insert_ignore(c, t.backfill_shards, backfill_id=backfill_id, shard=shard, **fresh):
                bs = t.backfill_shards.c
                c.execute(
                    update(t.backfill_shards)
                    .where(bs.backfill_id == backfill_id, bs.shard == shard)
                    .values(status="running", run_id=run_id, updated_at=now, finished_at=None)
                )

    def backfill_shard_progress(
        self, backfill_id: str, shard: int, records: int, *, done: bool = False
    ) -> None:
        """Add `records` decided, after each committed page (informational: a crash between the
        page's commit and this undercounts by one page; cursors, not this count, decide resuming)."""
        now = self.clock()
        bs = t.backfill_shards.c
        values: dict[str, Any] = {"records": bs.records + records, "updated_at": now}
        if done:
            values.update(status="done", finished_at=now)
        with self._c() as c:
            c.execute(
                update(t.backfill_shards)
                .where(bs.backfill_id == backfill_id, bs.shard == shard)
                .values(**values)
            )

    def backfill_shards(self, backfill_id: str | None = None) -> list[dict[str, Any]]:
        bs = t.backfill_shards.c
        query = select(t.backfill_shards).order_by(bs.backfill_id, bs.shard)
        if backfill_id is not None:
            query = query.where(bs.backfill_id == backfill_id)
        with self._c() as c:
            return [dict(r._mapping) for r in c.execute(query)]

    # ------------------------------------------------------------------ drift

    def save_drift(self, person_ids: Sequence[str], found: Sequence[Drift], at: datetime) -> None:
        """Replace the drift rows of the people just decided with what was found for them."""
        with self._c() as c:
            if person_ids:
                c.execute(delete(t.drift).where(t.drift.c.person_id.in_(sorted(set(person_ids)))))
            rows = [
                {
                    "person_id": d.person_id,
                    "fields": ",".join(d.fields),
                    "detail_json": json.dumps({"stages": dict(d.stages), "owners": dict(d.owners)}),
                    "detected_at": at,
                }
                for d in {d.person_id: d for d in found}.values()
            ]
            if rows:
                c.execute(insert(t.drift), rows)

    def drift(self, limit: int | None = None) -> list[DriftRow]:
        """People whose CRMs disagree, with each CRM's stage and owner, newest first."""
        d = t.drift.c
        query = select(t.drift, t.persons.c.email).join(
            t.persons, t.persons.c.id == d.person_id, isouter=True
        )
        query = query.order_by(d.detected_at.desc(), d.person_id)
        if limit is not None:
            query = query.limit(limit)
        with self._c() as c:
            out = []
            for r in c.execute(query):
                detail = json.loads(r.detail_json)
                out.append(
                    DriftRow(
                        person_id=r.person_id,
                        email=r.email,
                        fields=tuple(f for f in r.fields.split(",") if f),
                        stages=detail.get("stages", {}),
                        owners=detail.get("owners", {}),
                        detected_at=r.detected_at,
                    )
                )
            return out

    def drift_count(self) -> int:
        with self._c() as c:
            return int(c.execute(select(func.count()).select_from(t.drift)).scalar() or 0)

    # ------------------------------------------------------------------ forget

    def forget(self, key: str) -> ForgetReport:
        """Erase a person (by email, person id or CRM record id) from the state, in one transaction.

        Removes the person, their identities, timeline, decision, field snapshot, stage entry,
        hand-off and follow-up task rows, pending evaluation, drift row, routing assignment,
        last-written values, parked and journalled writes; audit rows stay (they say what the
        connector did to which CRM record) but lose their payload: before/after values and errors
        are blanked. The CRM is untouched; a person still in the CRM comes back at the next sync
        with what the CRM holds then.
        """
        report = ForgetReport()
        with self.transaction(), self._c() as c:
            pids: set[str] = set()
            email = key.strip().casefold()
            pids.update(
                str(p) for p in c.execute(select(t.persons.c.id).where(t.persons.c.email == email)).scalars()
            )
            pids.update(
                str(p) for p in c.execute(select(t.persons.c.id).where(t.persons.c.id == key)).scalars()
            )
            pids.update(
                str(p)
                for p in c.execute(
                    select(t.identities.c.person_id).where(t.identities.c.record_id == key)
                ).scalars()
            )
            report.person_ids = sorted(pids)
            if not pids:
                return report
            records = c.execute(
                select(t.identities.c.crm, t.identities.c.object_type, t.identities.c.record_id).where(
                    t.identities.c.person_id.in_(pids)
                )
            ).all()

            def count(name: str, n: int) -> None:
                report.removed[name] = report.removed.get(name, 0) + int(n)

            per_person = (
                ("activities", t.activities),
                ("decisions", t.decisions),
                ("failed writes", t.failed_writes),
                ("pending evaluations", t.pending),
                ("field snapshots", t.person_snapshots),
                ("stage entries", t.stage_entries),
                ("drift rows", t.drift),
                ("hand-offs", t.handoffs),
                ("follow-up task rows", t.handoff_tasks),
                ("routing assignments", t.routing_assignments),
                ("journalled writes", t.write_journal),
            )
            for name, table in per_person:  # every table keyed by person_id
                count(name, c.execute(delete(table).where(table.c.person_id.in_(pids))).rowcount)
            lw = t.last_written.c
            for crm, obj, rid in records:
                count(
                    "last written values",
                    c.execute(
                        delete(t.last_written).where(
                            lw.crm == crm, lw.object_type == obj, lw.record_id == rid
                        )
                    ).rowcount,
                )
            count(
                "audit payloads",
                c.execute(
                    update(t.audit)
                    .where(t.audit.c.person_id.in_(pids))
                    .values(before=None, after=None, error=None, reason="erased by connector forget")
                ).rowcount,
            )
            count(
                "identities",
                c.execute(delete(t.identities).where(t.identities.c.person_id.in_(pids))).rowcount,
            )
            count("persons", c.execute(delete(t.persons).where(t.persons.c.id.in_(pids))).rowcount)
        return report


class Lease:
    """A held lease. `renew()` inside each page transaction fences the page's commit: if another
    run took the scope over, the renewal fails and the page (cursor included) rolls back."""

    def __init__(self, store: StateStore, scope: str, holder: str, generation: int, ttl: timedelta) -> None:
        self.store = store
        self.scope = scope
        self.holder = holder
        self.generation = generation
        self.ttl = ttl

    def renew(self) -> None:
        self.store._renew(self)

    def release(self) -> None:
        self.store._release(self)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# The claim's statements, built once: a claim runs per routed person, so their compilation is cached.
_POOL_PEEK = select(t.routing_pools).where(t.routing_pools.c.pool == bindparam("pool"))
_POOL_ROW = _POOL_PEEK.with_for_update()
_ASSIGNMENT_OF = select(t.routing_assignments).where(t.routing_assignments.c.person_id == bindparam("person"))
_COUNTS_OF = select(t.routing_counts.c.rep, t.routing_counts.c["count"].label("n")).where(
    t.routing_counts.c.pool == bindparam("pool"), t.routing_counts.c.day == bindparam("day")
)
_MOVE_POOL = (
    update(t.routing_pools)
    .where(t.routing_pools.c.pool == bindparam("p"))
    .values(
        position=bindparam("new_position"), current_json=bindparam("new_current"), updated_at=bindparam("at")
    )
)


@dataclass
class _PlanTurns:
    """Pool turns a rolled-back pass (plan, explain) took, kept in memory only."""

    pools: dict[str, PoolState] = field(default_factory=dict)
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    assignments: dict[str, Assignment] = field(default_factory=dict)


@dataclass(frozen=True)
class _RoutingInserts:
    pool: Any
    assignment: Any
    count: Any


_ROUTING_INSERTS: dict[str, _RoutingInserts] = {}


def _routing_inserts(c: Connection) -> _RoutingInserts:
    """The claim's three race-free inserts in this connection's dialect (built once per dialect)."""
    found = _ROUTING_INSERTS.get(c.dialect.name)
    if found is None:
        ins = postgresql.insert if c.dialect.name == "postgresql" else sqlite.insert
        count = ins(t.routing_counts)
        found = _RoutingInserts(
            pool=ins(t.routing_pools).on_conflict_do_nothing(),
            assignment=ins(t.routing_assignments)
            .on_conflict_do_nothing()
            .returning(t.routing_assignments.c.person_id),
            count=count.on_conflict_do_update(
                index_elements=["pool", "rep", "day"], set_={"count": t.routing_counts.c["count"] + 1}
            ),
        )
        _ROUTING_INSERTS[c.dialect.name] = found
    return found


def _assignment(r: Any, *, reused: bool = False) -> Assignment:
    return Assignment(str(r.person_id), r.rep, r.pool, r.rule, r.day, reused=reused)


def _failed(r: Any) -> FailedWrite:
    return FailedWrite(
        crm=r.crm,
        object_type=r.object_type,
        record_id=r.record_id,
        person_id=r.person_id,
        changes=json.loads(r.changes_json),
        error=r.error,
        attempts=r.attempts,
        last_failed_at=r.last_failed_at,
        first_failed_at=r.first_failed_at,
        next_attempt_at=r.next_attempt_at,
        retryable=bool(r.retryable),
    )


def _failed_key(crm: str, object_type: str, record_id: str) -> Any:
    f = t.failed_writes.c
    return (f.crm == crm) & (f.object_type == object_type) & (f.record_id == record_id)


def _db_error(exc: SQLAlchemyError, shown: str) -> ConnectorError:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, OperationalError):
        return StateUnavailable(
            f"CONNECTOR_STATE_URL: cannot reach the state database {shown} ({first}); check the server "
            "is up and the URL, user and database are right"
        )
    return ConfigError(
        f"CONNECTOR_STATE_URL: cannot open the state database {shown} ({type(exc).__name__}): {first}"
    )


def _dialect_insert(c: Connection, table: Table) -> Any:
    if c.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _insert_ignore(c: Connection, table: Table, **values: Any) -> int:
    """Insert unless the primary key exists (race-free on both backends). Returns rows inserted."""
    stmt = _dialect_insert(c, table).values(**values).on_conflict_do_nothing()
    # RETURNING, not rowcount: psycopg reports -1 for a skipped conflict.
    return len(c.execute(stmt.returning(*table.primary_key.columns)).all())


def _upsert(
    c: Connection,
    table: Table,
    key: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    insert_only: Mapping[str, Any] | None = None,
) -> None:
    """Insert the row, or update it when the primary key exists, in one race-free statement."""
    stmt = _dialect_insert(c, table).values(**key, **values, **(insert_only or {}))
    stmt = stmt.on_conflict_do_update(index_elements=list(key), set_=dict(values))
    c.execute(stmt)


def _upsert_many(c: Connection, table: Table, key: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert or update many rows (distinct keys) in one statement."""
    if not rows:
        return
    stmt = _dialect_insert(c, table).values(list(rows))
    columns = [name for name in rows[0] if name not in key]
    c.execute(
        stmt.on_conflict_do_update(index_elements=list(key), set_={n: stmt.excluded[n] for n in columns})
    )


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

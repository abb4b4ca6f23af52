"""Repository over the state database (SQLite by default, any SQLAlchemy URL).

The engine opens one transaction per unit of work with `store.transaction()`; everything written
inside it (decisions, audit rows, last-written values, routing pointers, cursors) commits together
or not at all, so a crash never leaves a cursor ahead of the writes it covers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    String,
    Table,
    and_,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from connector.errors import ConfigError
from connector.model import Activity, Crm, Decision, WriteResult
from connector.state import schema as t


@dataclass(frozen=True)
class RunRow:
    id: str
    command: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    counts: dict[str, int]
    error: str | None


@dataclass(frozen=True)
class FailedWrite:
    crm: str
    object_type: str
    record_id: str
    person_id: str
    changes: dict[str, str]
    error: str
    attempts: int
    last_failed_at: datetime


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


def _now() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class StateStore:
    """All state access goes through here; SQL stays out of the engine and the lifecycle core."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(cls, url: str) -> StateStore:
        """Connect and create the tables if the database is new. Bad URLs are config errors."""
        try:
            if url.startswith("sqlite:///"):
                path = Path(url.removeprefix("sqlite:///"))
                if str(path) not in ("", ":memory:"):
                    path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, future=True)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _sqlite_pragmas)
            t.metadata.create_all(engine)
            with engine.begin() as conn:
                version = conn.execute(
                    select(t.meta.c.value).where(t.meta.c.key == "schema_version")
                ).scalar()
                if version is None:
                    conn.execute(insert(t.meta).values(key="schema_version", value=str(t.SCHEMA_VERSION)))
                elif int(version) > t.SCHEMA_VERSION:
                    raise ConfigError(
                        f"CONNECTOR_STATE_URL: the state database has schema version {version}, newer "
                        f"than this connector ({t.SCHEMA_VERSION}); upgrade the connector"
                    )
        except ImportError as exc:
            raise ConfigError(
                f"CONNECTOR_STATE_URL: no database driver for this URL ({exc.name or exc}); install it, "
                "or use the default sqlite:///connector-state.db"
            ) from None
        except SQLAlchemyError as exc:
            raise ConfigError(
                f"CONNECTOR_STATE_URL: cannot open the state database ({type(exc).__name__}): "
                f"{str(exc).splitlines()[0]}"
            ) from None
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

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
            try:
                yield
            finally:
                self._conn = None
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
            _upsert(c, t.cursors, {"scope": scope}, {"value": value, "updated_at": _now()})

    def cursors(self) -> dict[str, str]:
        with self._c() as c:
            return {row.scope: row.value for row in c.execute(select(t.cursors))}

    # ------------------------------------------------------------------ identity

    def resolve_person(self, crm: Crm, object_type: str, record_id: str, email: str | None) -> str:
        """The person id for a CRM record, creating the person on first sight.

        A record seen before keeps its person; a new record joins the person with the same
        normalised email, so one human has one timeline across CRMs.
        """
        with self._c() as c:
            ident = t.identities.c
            pid = c.execute(
                select(ident.person_id).where(
                    ident.crm == crm, ident.object_type == object_type, ident.record_id == record_id
                )
            ).scalar()
            if pid is not None:
                if email:
                    c.execute(update(t.persons).where(t.persons.c.id == pid).values(email=email))
                return str(pid)
            if email:
                pid = c.execute(select(t.persons.c.id).where(t.persons.c.email == email).limit(1)).scalar()
            if pid is None:
                pid = "p_" + uuid.uuid4().hex[:20]
                c.execute(insert(t.persons).values(id=pid, email=email, created_at=_now()))
            c.execute(
                insert(t.identities).values(
                    crm=crm, object_type=object_type, record_id=record_id, person_id=pid
                )
            )
            return str(pid)

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
        """Append activities not seen before (by source + source_id). Returns how many were new."""
        added = 0
        with self._c() as c:
            a = t.activities.c
            for item in items:
                exists = c.execute(
                    select(func.count())
                    .select_from(t.activities)
                    .where(a.source == item.source, a.source_id == item.source_id)
                ).scalar()
                if exists:
                    continue
                c.execute(insert(t.activities).values(**asdict(item)))
                added += 1
        return added

    def timelines(self, person_ids: Sequence[str]) -> dict[str, list[Activity]]:
        out: dict[str, list[Activity]] = {pid: [] for pid in person_ids}
        with self._c() as c:
            for chunk in _chunks(list(person_ids), 500):
                rows = c.execute(
                    select(t.activities)
                    .where(t.activities.c.person_id.in_(chunk))
                    .order_by(t.activities.c.occurred_at)
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
        now = _now()
        with self._c() as c:
            for record_id, person_id in records.items():
                key = {"crm": crm, "object_type": object_type, "record_id": record_id}
                _upsert(c, t.pending, key, {"person_id": person_id, "since": now})

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
        row = {
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
            "reason": decision.reason,
            "owner_reason": decision.owner_reason,
            "signals_json": json.dumps(decision.signals, sort_keys=True),
            "trace_json": json.dumps([asdict(tr) for tr in decision.trace], default=str),
        }
        key = {"person_id": row.pop("person_id")}
        with self._c() as c:
            _upsert(c, t.decisions, key, row)

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

    def record_write(self, run_id: str, result: WriteResult) -> None:
        """Audit one intent's outcome; remember written values; park or clear failures."""
        intent = result.intent
        now = _now()
        outcome = "written" if result.ok else "failed"
        with self._c() as c:
            for prop, value in intent.changes.items():
                c.execute(
                    insert(t.audit).values(
                        run_id=run_id,
                        at=now,
                        crm=intent.crm,
                        object_type=intent.object_type,
                        record_id=intent.record_id,
                        person_id=intent.person_id,
                        property=prop,
                        before=intent.before.get(prop),
                        after=value,
                        reason=intent.reason,
                        outcome=outcome,
                        error=result.error,
                    )
                )
            key = (
                (t.failed_writes.c.crm == intent.crm)
                & (t.failed_writes.c.object_type == intent.object_type)
                & (t.failed_writes.c.record_id == intent.record_id)
            )
            if result.ok:
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
                        {"value": value, "written_at": now, "run_id": run_id},
                    )
                c.execute(t.failed_writes.delete().where(key))
                return
            attempts = c.execute(select(t.failed_writes.c.attempts).where(key)).scalar()
            values = {
                "person_id": intent.person_id,
                "changes_json": json.dumps(intent.changes, sort_keys=True),
                "error": result.error or "unknown error",
                "last_failed_at": now,
                "run_id": run_id,
            }
            if attempts is None:
                c.execute(
                    insert(t.failed_writes).values(
                        crm=intent.crm,
                        object_type=intent.object_type,
                        record_id=intent.record_id,
                        attempts=1,
                        first_failed_at=now,
                        **values,
                    )
                )
            else:
                c.execute(update(t.failed_writes).where(key).values(attempts=int(attempts) + 1, **values))

    def failed_writes(self) -> list[FailedWrite]:
        with self._c() as c:
            rows = c.execute(select(t.failed_writes).order_by(t.failed_writes.c.last_failed_at))
            return [
                FailedWrite(
                    crm=r.crm,
                    object_type=r.object_type,
                    record_id=r.record_id,
                    person_id=r.person_id,
                    changes=json.loads(r.changes_json),
                    error=r.error,
                    attempts=r.attempts,
                    last_failed_at=r.last_failed_at,
                )
                for r in rows
            ]

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

    # ------------------------------------------------------------------ routing

    def pointers(self) -> dict[str, int]:
        with self._c() as c:
            return {r.pool: int(r.position) for r in c.execute(select(t.rr_pointers))}

    def set_pointer(self, pool: str, position: int) -> None:
        with self._c() as c:
            _upsert(c, t.rr_pointers, {"pool": pool}, {"position": position})

    # ------------------------------------------------------------------ runs

    def start_run(self, command: str) -> str:
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
        with self._c() as c:
            c.execute(insert(t.runs).values(id=run_id, command=command, started_at=_now(), status="running"))
        return run_id

    def finish_run(
        self, run_id: str, status: str, counts: Mapping[str, int], error: str | None = None
    ) -> None:
        with self._c() as c:
            c.execute(
                update(t.runs)
                .where(t.runs.c.id == run_id)
                .values(finished_at=_now(), status=status, counts_json=json.dumps(dict(counts)), error=error)
            )

    def runs(self, limit: int = 10) -> list[RunRow]:
        with self._c() as c:
            rows = c.execute(select(t.runs).order_by(t.runs.c.started_at.desc()).limit(limit))
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


def _upsert(c: Connection, table: Table, key: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """Update the row with this primary key, or insert it. Portable across SQLite and PostgreSQL."""
    match = and_(*(table.c[name] == value for name, value in key.items()))
    if not c.execute(update(table).where(match).values(**values)).rowcount:
        c.execute(insert(table).values(**key, **values))


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

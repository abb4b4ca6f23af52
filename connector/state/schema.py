"""Table definitions (SQLAlchemy Core). One place, so migrations have one thing to diff against.

Personal data is kept to what the criteria need: a normalised email for identity, and the activity
timeline (type, time, page URL or form name). Names, titles and company data are re-read from the
CRM on every run instead of being copied here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

SCHEMA_VERSION = 1


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone, PostgreSQL keeps it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the state store; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

cursors = Table(
    "cursors",
    metadata,
    Column("scope", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

persons = Table(
    "persons",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("email", String(320), nullable=True, index=True),
    Column("created_at", UtcDateTime(), nullable=False),
)

identities = Table(
    "identities",
    metadata,
    Column("crm", String(20), primary_key=True),
    Column("object_type", String(40), primary_key=True),
    Column("record_id", String(64), primary_key=True),
    Column("person_id", String(40), nullable=False, index=True),
)

activities = Table(
    "activities",
    metadata,
    Column("source", String(40), primary_key=True),
    Column("source_id", String(200), primary_key=True),
    Column("person_id", String(40), nullable=False),
    Column("type", String(60), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("url", Text, nullable=True),
    Column("name", Text, nullable=True),
    Index("ix_activities_person_time", "person_id", "occurred_at"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("person_id", String(40), primary_key=True),
    Column("run_id", String(40), nullable=False),
    Column("evaluated_at", UtcDateTime(), nullable=False),
    Column("criteria_version", String(40), nullable=False),
    Column("stage", String(60), nullable=False),
    Column("computed_stage", String(60), nullable=False),
    Column("lead_status", String(60), nullable=True),
    Column("owner_id", String(64), nullable=True),
    Column("fit_score", Integer, nullable=False),
    Column("fit_grade", String(20), nullable=False),
    Column("disqualified_by", String(100), nullable=True),
    Column("reason", Text, nullable=False),
    Column("owner_reason", Text, nullable=True),
    Column("signals_json", Text, nullable=False),
    Column("trace_json", Text, nullable=False),
)

last_written = Table(
    "last_written",
    metadata,
    Column("crm", String(20), primary_key=True),
    Column("object_type", String(40), primary_key=True),
    Column("record_id", String(64), primary_key=True),
    Column("property", String(200), primary_key=True),
    Column("value", Text, nullable=True),
    Column("written_at", UtcDateTime(), nullable=False),
    Column("run_id", String(40), nullable=False),
)

rr_pointers = Table(
    "rr_pointers",
    metadata,
    Column("pool", String(100), primary_key=True),
    Column("position", Integer, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("command", String(40), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Column("status", String(20), nullable=False),
    Column("counts_json", Text, nullable=False, default="{}"),
    Column("error", Text, nullable=True),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(40), nullable=False, index=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("crm", String(20), nullable=False),
    Column("object_type", String(40), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("person_id", String(40), nullable=False, index=True),
    Column("property", String(200), nullable=False),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Column("reason", Text, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("error", Text, nullable=True),
)

failed_writes = Table(
    "failed_writes",
    metadata,
    Column("crm", String(20), primary_key=True),
    Column("object_type", String(40), primary_key=True),
    Column("record_id", String(64), primary_key=True),
    Column("person_id", String(40), nullable=False),
    Column("changes_json", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("first_failed_at", UtcDateTime(), nullable=False),
    Column("last_failed_at", UtcDateTime(), nullable=False),
    Column("run_id", String(40), nullable=False),
)

pending = Table(
    "pending",
    metadata,
    Column("crm", String(20), primary_key=True),
    Column("object_type", String(40), primary_key=True),
    Column("record_id", String(64), primary_key=True),
    Column("person_id", String(40), nullable=False),
    Column("since", UtcDateTime(), nullable=False),
)
"""Records whose person has new activity but has not been evaluated since (crash-safe hand-over
from activity feeds to the evaluation pass)."""

"""Table definitions (SQLAlchemy Core) of the current schema: what the store reads and writes.

The database itself is created and upgraded by the numbered steps in `connector.state.migrations`
(`connector migrate`), and a test checks that applying every step yields exactly these tables,
so the two never drift apart.

Personal data is kept to what the criteria need: a normalised email for identity, and the activity
timeline (type, time, page URL or form name). Names, titles and company data are re-read from the
CRM on every run instead of being copied here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


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
    Column("source", String(200), primary_key=True),
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

# Step 1's round-robin pointers: no longer written (step 3 copied them into routing_pools); the
# table stays because released migration steps are never edited.
rr_pointers = Table(
    "rr_pointers",
    metadata,
    Column("pool", String(100), primary_key=True),
    Column("position", Integer, nullable=False),
)

routing_pools = Table(
    "routing_pools",
    metadata,
    Column("pool", String(100), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("current_json", Text, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=True),
)

routing_counts = Table(
    "routing_counts",
    metadata,
    Column("pool", String(100), primary_key=True),
    Column("rep", String(100), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("count", Integer, nullable=False),
)

routing_assignments = Table(
    "routing_assignments",
    metadata,
    Column("person_id", String(40), primary_key=True),
    Column("rep", String(100), nullable=False),
    Column("pool", String(100), nullable=False),
    Column("rule", String(200), nullable=False),
    Column("day", String(10), nullable=False),
    Column("assigned_at", UtcDateTime(), nullable=False),
    Column("run_id", String(40), nullable=True),
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
    # When a later run should try again; NULL once `attempts` reached the limit (parked: only
    # `connector retry-failed` tries it again).
    Column("next_attempt_at", UtcDateTime(), nullable=True),
    Column("retryable", Boolean, nullable=False, server_default=true()),
)

leases = Table(
    "leases",
    metadata,
    # "<crm>:<account>:<object>": one writer per CRM account and object at a time.
    Column("scope", String(200), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("run_id", String(40), nullable=True),
    Column("acquired_at", UtcDateTime(), nullable=False),
    Column("renewed_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    # Fencing token: bumped on every takeover, so a holder that lost its lease cannot renew it.
    Column("generation", Integer, nullable=False),
)

write_journal = Table(
    "write_journal",
    metadata,
    # One row per record write, inserted (state "sending") and committed before the CRM sees the
    # request, settled ("written", "failed", "gone", "not_applied") after; a row still "sending"
    # at start-up belongs to a run that died mid-write, and the next run asks the CRM what happened.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(40), nullable=False),
    Column("crm", String(20), nullable=False),
    Column("object_type", String(40), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("person_id", String(40), nullable=False, index=True),
    Column("changes_json", Text, nullable=False),
    Column("before_json", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("state", String(20), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=False),
    Column("settled_at", UtcDateTime(), nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_write_journal_state", "state"),
    Index("ix_write_journal_record", "crm", "object_type", "record_id"),
)

person_snapshots = Table(
    "person_snapshots",
    metadata,
    Column("person_id", String(40), primary_key=True),
    Column("fields_json", Text, nullable=False),
    Column("crm_stage", String(60), nullable=True),
    Column("crm_lead_status", String(60), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)
"""The person fields the criteria read (only those mapped in the CRM files), as last pulled, plus the
CRM's canonical stage and lead status then: what `simulate` needs to re-evaluate without the CRM.
A new table (not new columns), so existing state databases gain it through `create_all`."""

stage_entries = Table(
    "stage_entries",
    metadata,
    Column("person_id", String(40), primary_key=True),
    Column("stage", String(60), nullable=False),
    Column("entered_at", UtcDateTime(), nullable=False),
)
"""When each person entered the stage they are in (first decision at that stage): recycle rules'
`days_in_stage` and the "accepted after the hand-off" test read it."""

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

backfills = Table(
    "backfills",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("since", UtcDateTime(), nullable=False),
    Column("until", UtcDateTime(), nullable=False),
    Column("shards", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
"""One row per `backfill --since --until` range and shard count. The first shard to start fixes
`until` (when not given: its start minus the search lag), so every shard and every resume of a
shard reads the very same range."""

backfill_shards = Table(
    "backfill_shards",
    metadata,
    Column("backfill_id", String(80), primary_key=True),
    Column("shard", Integer, primary_key=True),
    Column("status", String(20), nullable=False),
    Column("records", Integer, nullable=False),
    Column("run_id", String(40), nullable=True),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
)
"""Progress per shard (`running`, `done`): records decided so far and the run that last worked on
it. The shard's cursors live in `cursors` under `backfill:<id>:<shard>/<N>:<feed scope>`."""

drift = Table(
    "drift",
    metadata,
    Column("person_id", String(40), primary_key=True),
    Column("fields", String(40), nullable=False),
    Column("detail_json", Text, nullable=False),
    Column("detected_at", UtcDateTime(), nullable=False),
)
"""People in both CRMs whose stage or owner differs between them after the last run that decided
them (`lifecycle.drift`); replaced for each person decided, so it always reflects the latest view."""

handoffs = Table(
    "handoffs",
    metadata,
    Column("person_id", String(40), primary_key=True),
    Column("stage", String(60), nullable=False),
    Column("owner_id", String(64), nullable=True),
    Column("handed_off_at", UtcDateTime(), nullable=False),
    Column("recycled_at", UtcDateTime(), nullable=True),
    Column("recycled_by", String(100), nullable=True),
)
"""One row per person: when they were first handed to Sales (a hand-off stage with an owner).
The SLA counts from here; `recycled_*` say when a recycle rule first sent them back."""

handoff_tasks = Table(
    "handoff_tasks",
    metadata,
    Column("person_id", String(40), primary_key=True),
    Column("crm", String(20), primary_key=True),
    Column("object_type", String(40), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("owner_id", String(64), nullable=False),
    Column("spec_json", Text, nullable=False),
    Column("state", String(20), nullable=False),
    Column("task_id", String(64), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_handoff_tasks_state", "state"),
)
"""The follow-up task journal, one task per person and CRM: planned -> sending -> created
(or failed after `TASK_ATTEMPTS`); see migrations/m004_handoffs.py."""

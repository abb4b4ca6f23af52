"""Step 2: leases per scope, the write journal, and retry bookkeeping for parked writes."""

from __future__ import annotations

from sqlalchemy import Column, Connection, DateTime, Index, Integer, MetaData, String, Table, Text, text

DESCRIPTION = (
    "leases per scope, write journal (crash recovery), retry schedule for failed writes, "
    "records pending evaluation, person snapshots and stage entries, longer activity source names"
)


def upgrade(conn: Connection) -> None:
    md = MetaData()
    when = DateTime(timezone=True)
    Table(
        "leases",
        md,
        Column("scope", String(200), primary_key=True),
        Column("holder", String(200), nullable=False),
        Column("run_id", String(40), nullable=True),
        Column("acquired_at", when, nullable=False),
        Column("renewed_at", when, nullable=False),
        Column("expires_at", when, nullable=False),
        Column("generation", Integer, nullable=False),
    )
    Table(
        "write_journal",
        md,
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
        Column("sent_at", when, nullable=False),
        Column("settled_at", when, nullable=True),
        Column("error", Text, nullable=True),
        Index("ix_write_journal_state", "state"),
        Index("ix_write_journal_record", "crm", "object_type", "record_id"),
    )
    # Records waiting for evaluation after their activity arrived; databases created before the
    # migrations existed may already have it (the store used to create missing tables itself).
    Table(
        "pending",
        md,
        Column("crm", String(20), primary_key=True),
        Column("object_type", String(40), primary_key=True),
        Column("record_id", String(64), primary_key=True),
        Column("person_id", String(40), nullable=False),
        Column("since", when, nullable=False),
    )
    # What `simulate` and recycling read: each person's mapped fields as last pulled, and when they
    # entered their current stage (like `pending`, possibly created already by an older store).
    Table(
        "person_snapshots",
        md,
        Column("person_id", String(40), primary_key=True),
        Column("fields_json", Text, nullable=False),
        Column("crm_stage", String(60), nullable=True),
        Column("crm_lead_status", String(60), nullable=True),
        Column("updated_at", when, nullable=False),
    )
    Table(
        "stage_entries",
        md,
        Column("person_id", String(40), primary_key=True),
        Column("stage", String(60), nullable=False),
        Column("entered_at", when, nullable=False),
    )
    md.create_all(conn, checkfirst=True)
    timestamp = when.compile(dialect=conn.dialect)
    true = "true" if conn.dialect.name == "postgresql" else "1"
    conn.execute(text(f"ALTER TABLE failed_writes ADD COLUMN next_attempt_at {timestamp}"))
    conn.execute(text(f"ALTER TABLE failed_writes ADD COLUMN retryable BOOLEAN DEFAULT {true} NOT NULL"))
    # Step 1 sized activity sources at 40 characters, but "hubspot:property:<property name>" is
    # longer for many properties; SQLite never enforced the size, PostgreSQL refuses the insert.
    if conn.dialect.name == "postgresql":
        conn.execute(text("ALTER TABLE activities ALTER COLUMN source TYPE VARCHAR(200)"))
    # Failures parked before this step are due at the next run, like fresh ones.
    conn.execute(text("UPDATE failed_writes SET next_attempt_at = last_failed_at"))

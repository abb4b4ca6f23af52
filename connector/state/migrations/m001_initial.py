"""Step 1: the walking skeleton's tables, frozen as they were released (never edit this step)."""

from __future__ import annotations

from sqlalchemy import Column, Connection, DateTime, Index, Integer, MetaData, String, Table, Text

DESCRIPTION = "cursors, persons, identities, timeline, decisions, last written values, runs, audit"


def upgrade(conn: Connection) -> None:
    md = MetaData()
    when = DateTime(timezone=True)
    Table("meta", md, Column("key", String(64), primary_key=True), Column("value", Text, nullable=False))
    Table(
        "cursors",
        md,
        Column("scope", String(200), primary_key=True),
        Column("value", Text, nullable=False),
        Column("updated_at", when, nullable=False),
    )
    Table(
        "persons",
        md,
        Column("id", String(40), primary_key=True),
        Column("email", String(320), nullable=True, index=True),
        Column("created_at", when, nullable=False),
    )
    Table(
        "identities",
        md,
        Column("crm", String(20), primary_key=True),
        Column("object_type", String(40), primary_key=True),
        Column("record_id", String(64), primary_key=True),
        Column("person_id", String(40), nullable=False, index=True),
    )
    Table(
        "activities",
        md,
        Column("source", String(40), primary_key=True),
        Column("source_id", String(200), primary_key=True),
        Column("person_id", String(40), nullable=False),
        Column("type", String(60), nullable=False),
        Column("occurred_at", when, nullable=False),
        Column("url", Text, nullable=True),
        Column("name", Text, nullable=True),
        Index("ix_activities_person_time", "person_id", "occurred_at"),
    )
    Table(
        "decisions",
        md,
        Column("person_id", String(40), primary_key=True),
        Column("run_id", String(40), nullable=False),
        Column("evaluated_at", when, nullable=False),
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
    Table(
        "last_written",
        md,
        Column("crm", String(20), primary_key=True),
        Column("object_type", String(40), primary_key=True),
        Column("record_id", String(64), primary_key=True),
        Column("property", String(200), primary_key=True),
        Column("value", Text, nullable=True),
        Column("written_at", when, nullable=False),
        Column("run_id", String(40), nullable=False),
    )
    Table(
        "rr_pointers",
        md,
        Column("pool", String(100), primary_key=True),
        Column("position", Integer, nullable=False),
    )
    Table(
        "runs",
        md,
        Column("id", String(40), primary_key=True),
        Column("command", String(40), nullable=False),
        Column("started_at", when, nullable=False),
        Column("finished_at", when, nullable=True),
        Column("status", String(20), nullable=False),
        Column("counts_json", Text, nullable=False),
        Column("error", Text, nullable=True),
    )
    Table(
        "audit",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(40), nullable=False, index=True),
        Column("at", when, nullable=False),
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
    Table(
        "failed_writes",
        md,
        Column("crm", String(20), primary_key=True),
        Column("object_type", String(40), primary_key=True),
        Column("record_id", String(64), primary_key=True),
        Column("person_id", String(40), nullable=False),
        Column("changes_json", Text, nullable=False),
        Column("error", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("first_failed_at", when, nullable=False),
        Column("last_failed_at", when, nullable=False),
        Column("run_id", String(40), nullable=False),
    )
    md.create_all(conn, checkfirst=True)

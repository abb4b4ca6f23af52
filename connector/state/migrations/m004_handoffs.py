"""Step 4: hand-offs (when each person was handed to Sales) and their follow-up tasks.

`handoffs` holds one row per person: the first time they reached a hand-off stage with an owner.
`handoff_tasks` is the exactly-once journal of follow-up tasks: a row is inserted ("planned") in
the same transaction as the hand-off, marked "sending" (committed) before the CRM sees the create,
and "created" with the CRM's task id after; a row left "sending" by a killed run is settled by
asking the CRM whether the task exists before anything is sent again.
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, DateTime, Index, Integer, MetaData, String, Table, Text

DESCRIPTION = "hand-offs (time, stage, owner) and the follow-up task journal"


def upgrade(conn: Connection) -> None:
    md = MetaData()
    when = DateTime(timezone=True)
    Table(
        "handoffs",
        md,
        Column("person_id", String(40), primary_key=True),
        Column("stage", String(60), nullable=False),
        Column("owner_id", String(64), nullable=True),
        Column("handed_off_at", when, nullable=False),
        Column("recycled_at", when, nullable=True),
        Column("recycled_by", String(100), nullable=True),
    )
    Table(
        "handoff_tasks",
        md,
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
        Column("updated_at", when, nullable=False),
        Index("ix_handoff_tasks_state", "state"),
    )
    md.create_all(conn)

"""Step 5 (issue 8): sharded backfills (their ranges and per-shard progress) and cross-CRM drift.

Numbered 5 in the file name because steps 3 and 4 were developed in parallel on other branches;
see `MIGRATIONS` in `__init__` for its position on this branch.
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, DateTime, Integer, MetaData, String, Table, Text

DESCRIPTION = "sharded backfills (ranges, per-shard progress) and cross-CRM drift per person"


def upgrade(conn: Connection) -> None:
    md = MetaData()
    when = DateTime(timezone=True)
    Table(
        "backfills",
        md,
        Column("id", String(80), primary_key=True),
        Column("since", when, nullable=False),
        Column("until", when, nullable=False),
        Column("shards", Integer, nullable=False),
        Column("created_at", when, nullable=False),
    )
    Table(
        "backfill_shards",
        md,
        Column("backfill_id", String(80), primary_key=True),
        Column("shard", Integer, primary_key=True),
        Column("status", String(20), nullable=False),
        Column("records", Integer, nullable=False),
        Column("run_id", String(40), nullable=True),
        Column("started_at", when, nullable=False),
        Column("updated_at", when, nullable=False),
        Column("finished_at", when, nullable=True),
    )
    Table(
        "drift",
        md,
        Column("person_id", String(40), primary_key=True),
        Column("fields", String(40), nullable=False),
        Column("detail_json", Text, nullable=False),
        Column("detected_at", when, nullable=False),
    )
    md.create_all(conn)

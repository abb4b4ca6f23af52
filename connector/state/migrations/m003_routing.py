"""Step 3: routing state shared by every worker — pool pointers, daily counts, assignments."""

from __future__ import annotations

from sqlalchemy import Column, Connection, DateTime, Integer, MetaData, String, Table, Text, text

DESCRIPTION = (
    "routing: per-pool pointer and weighted-turn state, per (pool, rep, day) assignment counts, "
    "one assignment per person (taken atomically by concurrent workers)"
)


def upgrade(conn: Connection) -> None:
    md = MetaData()
    when = DateTime(timezone=True)
    # One row per pool: locked (SELECT ... FOR UPDATE / SQLite's write lock) while a turn is taken.
    Table(
        "routing_pools",
        md,
        Column("pool", String(100), primary_key=True),
        Column("position", Integer, nullable=False),
        Column("current_json", Text, nullable=False),
        Column("updated_at", when, nullable=True),
    )
    Table(
        "routing_counts",
        md,
        Column("pool", String(100), primary_key=True),
        Column("rep", String(100), primary_key=True),
        Column("day", String(10), primary_key=True),
        Column("count", Integer, nullable=False),
    )
    # The primary key is what makes a person's turn happen once however many workers race for it.
    Table(
        "routing_assignments",
        md,
        Column("person_id", String(40), primary_key=True),
        Column("rep", String(100), nullable=False),
        Column("pool", String(100), nullable=False),
        Column("rule", String(200), nullable=False),
        Column("day", String(10), nullable=False),
        Column("assigned_at", when, nullable=False),
        Column("run_id", String(40), nullable=True),
    )
    md.create_all(conn, checkfirst=True)
    # Round-robin positions kept so far (step 1's rr_pointers) carry over: no rep loses a turn.
    conn.execute(
        text(
            "INSERT INTO routing_pools (pool, position, current_json) "
            "SELECT pool, position, '{}' FROM rr_pointers"
        )
    )

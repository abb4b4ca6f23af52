"""Numbered, forward-only schema steps for the state database, applied by `connector migrate`.

Why not alembic: the schema is small, SQLAlchemy Core already speaks both backends, and a step
here is a plain function over a connection that a test can run against SQLite and PostgreSQL. The
rules that matter are the same as alembic's: steps are never edited once released, each step runs
in one transaction with the version bump (PostgreSQL and SQLite both have transactional DDL, and
the store opens SQLite transactions with BEGIN IMMEDIATE), and concurrent `migrate`s serialise on
a lock (an advisory lock on PostgreSQL, the write lock on SQLite).

The version lives in the `meta` table under `schema_version`. A database created by the walking
skeleton (tables from `create_all`, version 1) is simply at step 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, inspect, text

from connector.state.migrations import (
    m001_initial,
    m002_leases_journal_retries,
    m003_routing,
    m004_handoffs,
    m005_backfill,
)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    upgrade: Callable[[Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, m001_initial.DESCRIPTION, m001_initial.upgrade),
    Migration(2, m002_leases_journal_retries.DESCRIPTION, m002_leases_journal_retries.upgrade),
    Migration(3, m003_routing.DESCRIPTION, m003_routing.upgrade),
    Migration(4, m004_handoffs.DESCRIPTION, m004_handoffs.upgrade),
    Migration(5, m005_backfill.DESCRIPTION, m005_backfill.upgrade),
)
HEAD = MIGRATIONS[-1].version
_PG_LOCK_KEY = 7_440_211_731  # any constant: the advisory lock that serialises `migrate` runs


def current_version(conn: Connection) -> int | None:
    """The database's schema version; None for an empty database (no `meta` table yet)."""
    if not inspect(conn).has_table("meta"):
        return None
    value = conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar()
    return int(value) if value is not None else 0


def upgrade(conn: Connection) -> list[Migration]:
    """Apply every pending step inside the caller's transaction; returns the steps applied."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    version = current_version(conn) or 0
    if version > HEAD:
        return []
    applied = []
    for step in MIGRATIONS:
        if step.version <= version:
            continue
        step.upgrade(conn)
        _set_version(conn, step.version)
        applied.append(step)
    return applied


def _set_version(conn: Connection, version: int) -> None:
    done = conn.execute(
        text("UPDATE meta SET value = :v WHERE key = 'schema_version'"), {"v": str(version)}
    ).rowcount
    if not done:
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('schema_version', :v)"), {"v": str(version)})

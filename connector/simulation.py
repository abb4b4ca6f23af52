"""`connector simulate`: replay the stored timeline under the current and a proposed criteria file.

Reads the state database only (people's mapped fields as last pulled, their timelines, the CRM's
stage and lead status), never the CRM, and writes nothing: the whole read happens inside a
transaction that is rolled back. The comparison itself is `connector.lifecycle.simulate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from connector.errors import ConfigError
from connector.lifecycle.rules import CriteriaEvaluator, Handoff
from connector.lifecycle.simulate import Comparison, DayCounts, SimPerson, compare, history
from connector.mapping.loader import Mappings
from connector.state.store import StateStore


def parse_as_of(text: str | None, clock: Callable[[], datetime]) -> datetime:
    """`--as-of`: a date means the end of that day (UTC); a datetime without zone is UTC; none = now."""
    if text is None:
        return clock()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day, time(23, 59, 59, 999_999), tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--as-of {text!r} is not a date: write 2026-03-01 or 2026-03-01T12:00:00Z"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def stored_people(store: StateStore, batch: int = 1000) -> Iterator[SimPerson]:
    """Every person the state database holds a snapshot of, as the simulation reads them."""
    for rows in store.simulation_people(batch):
        for person_id, email, fields, stage, lead_status, entered, timeline in rows:
            yield SimPerson(
                person_id=person_id,
                label=email or person_id,
                person=fields,
                timeline=timeline,
                current_stage=stage,
                handoff=Handoff(lead_status=lead_status, stage_entered_at=entered),
            )


def evaluators(current: Mappings, proposed: Mappings) -> tuple[CriteriaEvaluator, CriteriaEvaluator]:
    return (
        CriteriaEvaluator(current.criteria, current.criteria_version, current.person_fields),
        CriteriaEvaluator(proposed.criteria, proposed.criteria_version, proposed.person_fields),
    )


def run_simulation(
    store: StateStore,
    current: Mappings,
    proposed: Mappings,
    as_of: datetime,
    *,
    samples: int = 5,
    progress: Callable[[int], None] | None = None,
) -> Comparison:
    before, after = evaluators(current, proposed)
    with store.rollback_scope():
        return compare(before, after, stored_people(store), as_of, samples=samples, progress=progress)


def run_history(
    store: StateStore,
    current: Mappings,
    proposed: Mappings,
    as_of: datetime,
    days: int,
    *,
    progress: Callable[[int], None] | None = None,
) -> list[DayCounts]:
    before, after = evaluators(current, proposed)
    start = as_of - timedelta(days=days - 1)
    with store.rollback_scope():
        return history(before, after, lambda: stored_people(store), start, as_of, progress=progress)


def csv_path(out: Path) -> Path:
    """Where the CSV of every move goes, beside the Markdown report."""
    return out.with_suffix(".csv")

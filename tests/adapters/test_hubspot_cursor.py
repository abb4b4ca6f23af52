"""Feed cursors: round trips, old formats, and a clear error for an unreadable one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.crm.hubspot_cursor import MAX_CURSOR_IDS, Position
from connector.errors import ConfigError

ids = st.frozensets(st.integers(min_value=1, max_value=10**12).map(str), max_size=30)


@given(
    st.integers(min_value=0, max_value=4 * 10**12),
    ids,
    st.none() | st.integers(min_value=0, max_value=10**12),
)
def test_positions_survive_a_round_trip(ts: int, done: frozenset[str], after_id: int | None) -> None:
    position = Position(ts=ts, ids=done, after_id=after_id)
    assert Position.decode(position.encode()) == position


def test_a_plain_position_is_stored_as_the_old_epoch_ms_format() -> None:
    assert Position(ts=1704067200000).encode() == "1704067200000"
    assert Position.decode("1704067200000") == Position(ts=1704067200000)
    assert Position().encode() is None


def test_old_iso_event_cursors_still_read() -> None:
    assert Position.decode("2024-01-01T00:00:00+00:00") == Position(ts=1704067200000)


def test_too_many_boundary_ids_are_dropped_rather_than_stored() -> None:
    crowded = Position(ts=5, ids=frozenset(str(i) for i in range(MAX_CURSOR_IDS + 1)))
    assert crowded.encode() == "5"


def test_an_unreadable_cursor_names_the_scope_and_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"hubspot:contacts:lastmodifieddate.*cursors table"):
        Position.decode("{not json", "hubspot:contacts:lastmodifieddate")


def test_done_knows_what_a_position_covers() -> None:
    position = Position(ts=100, ids=frozenset({"7"}), after_id=50)
    assert position.done("1", 99)  # before the boundary
    assert position.done("7", 100)  # at the boundary, listed
    assert position.done("40", 100)  # at the boundary, below the id reached
    assert not position.done("60", 100)
    assert not position.done("7", 101)
    assert not Position().done("1", 0)


def test_advancing_keeps_the_ids_at_the_newest_timestamp() -> None:
    position = Position(ts=100, ids=frozenset({"1"}))
    assert position.advanced([("2", 100), ("3", 100)]) == Position(ts=100, ids=frozenset({"1", "2", "3"}))
    assert position.advanced([("2", 100), ("4", 120)]) == Position(ts=120, ids=frozenset({"4"}))
    assert position.advanced([]) == position

"""Signals: numbers computed from one person's merged timeline over rolling windows.

The calculator runs for every person on every run, so everything that can be prepared once
(regexes, filter sets, window lengths) is prepared when it is built from the criteria, and the
per-person work is a single pass over the timeline per signal.

Window semantics, shared by every kind: an activity counts when
`now - window_days < occurred_at <= now`. An activity exactly at `now` counts (it happened "as of"
the run); one exactly `window_days` old does not (the window is N days long, not N days and an
instant); one in the future (clock skew, a scheduled meeting) is ignored. Naive datetimes are read
as UTC so a stray naive value cannot crash a run with a comparison error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from connector.mapping.schema import ActivityTypeSpec, SignalSpec
from connector.model import Activity


@dataclass(frozen=True)
class _Event:
    """An activity prepared once per evaluation: UTC time and channel resolved."""

    activity: Activity
    at: datetime
    channel: str


@dataclass(frozen=True)
class _CompiledSignal:
    """One SignalSpec with its filters turned into sets and compiled regexes."""

    name: str
    kind: str
    window: timedelta
    types: frozenset[str]
    channels: frozenset[str]
    url_patterns: tuple[re.Pattern[str], ...]
    name_patterns: tuple[re.Pattern[str], ...]

    def matches(self, event: _Event) -> bool:
        """All present filters must hold (AND); within one filter any value may match (OR)."""
        if self.types and event.activity.type not in self.types:
            return False
        if self.channels and event.channel not in self.channels:
            return False
        if self.url_patterns and not _search_any(self.url_patterns, event.activity.url):
            return False
        return not (self.name_patterns and not _search_any(self.name_patterns, event.activity.name))

    def value(self, events: Iterable[_Event], now: datetime) -> int:
        """The signal's number over the events inside its window."""
        oldest = now - self.window
        matching = [event for event in events if oldest < event.at <= now and self.matches(event)]
        if self.kind == "count":
            return len(matching)
        if self.kind == "distinct_channels":
            return len({event.channel for event in matching})
        return len(_distinct_days(matching))


def _search_any(patterns: tuple[re.Pattern[str], ...], text: str | None) -> bool:
    """An activity without the text never matches a filter on it."""
    if text is None:
        return False
    return any(pattern.search(text) for pattern in patterns)


def _distinct_days(events: Iterable[_Event]) -> set[date]:
    return {event.at.date() for event in events}


def as_utc(value: datetime) -> datetime:
    """Aware UTC datetime; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class SignalCalculator:
    """Computes every signal of the criteria for one person's timeline.

    Build it once per run from the criteria (regexes are compiled here; an invalid regex raises
    `re.error`, which `validate` reports long before a run); call `compute` per person.
    """

    def __init__(
        self, specs: Mapping[str, SignalSpec], activity_types: Mapping[str, ActivityTypeSpec]
    ) -> None:
        self._channels = {name: spec.channel for name, spec in activity_types.items()}
        self._signals = tuple(_compile(name, spec) for name, spec in specs.items())

    @property
    def names(self) -> tuple[str, ...]:
        """Signal names in definition order."""
        return tuple(signal.name for signal in self._signals)

    def compute(self, timeline: Sequence[Activity], now: datetime) -> dict[str, int]:
        """Every signal's value as of `now`.

        Activities of a type the criteria do not declare are ignored (they are outside the shared
        vocabulary, so no signal may depend on them), and the same (source, source_id) counts once,
        so a re-read page replayed into the timeline cannot inflate a count.
        """
        events = self._prepare(timeline)
        now_utc = as_utc(now)
        return {signal.name: signal.value(events, now_utc) for signal in self._signals}

    def _prepare(self, timeline: Sequence[Activity]) -> list[_Event]:
        unique: dict[tuple[str, str], _Event] = {}
        for activity in timeline:
            channel = self._channels.get(activity.type)
            if channel is None:
                continue
            event = _Event(activity=activity, at=as_utc(activity.occurred_at), channel=channel)
            key = (activity.source, activity.source_id)
            kept = unique.get(key)
            # Two versions of one source record: keep the same one whatever the timeline order.
            if kept is None or _version_key(event) > _version_key(kept):
                unique[key] = event
        return list(unique.values())


def _version_key(event: _Event) -> tuple[datetime, str, str, str]:
    activity = event.activity
    return (event.at, activity.type, activity.url or "", activity.name or "")


def _compile(name: str, spec: SignalSpec) -> _CompiledSignal:
    return _CompiledSignal(
        name=name,
        kind=spec.kind,
        window=timedelta(days=spec.window_days),
        types=frozenset(spec.types),
        channels=frozenset(spec.channels),
        url_patterns=tuple(re.compile(pattern) for pattern in spec.url_patterns),
        name_patterns=tuple(re.compile(pattern) for pattern in spec.name_patterns),
    )


def compute_signals(
    specs: Mapping[str, SignalSpec],
    activity_types: Mapping[str, ActivityTypeSpec],
    timeline: Sequence[Activity],
    now: datetime,
) -> dict[str, int]:
    """One-off convenience wrapper; loops should build a `SignalCalculator` once and reuse it."""
    return SignalCalculator(specs, activity_types).compute(timeline, now)

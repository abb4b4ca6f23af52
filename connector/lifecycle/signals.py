"""Signals: numbers computed from one person's merged timeline over rolling windows.

The calculator runs for every person on every run (and a million times in `simulate`), so
everything that can be prepared once is prepared when it is built from the criteria: regexes
compiled, filters turned into sets, and, per distinct (type, URL, name) an activity can have, the
list of signals whose filters it passes (memoised, since a site has far fewer pages and forms than
it has page views). The per-person work is then one pass over the timeline plus a small
computation per signal.

Window semantics, shared by every kind: an activity counts when
`now - window_days < occurred_at <= now`. An activity exactly at `now` counts (it happened "as of"
the run); one exactly `window_days` old does not (the window is N days long, not N days and an
instant); one in the future (clock skew, a scheduled meeting) is ignored. Naive datetimes are read
as UTC so a stray naive value cannot crash a run with a comparison error. Kinds that speak of days
(distinct_days, longest_gap_days, returns, cadence) use calendar dates in UTC.

What each kind computes over the activities in its window that pass its filters:

* `count`: how many. `distinct_channels`: how many different channels (the channel of each
  activity type is declared in criteria.yaml). `distinct_days`: on how many different dates.
* `longest_gap_days`: the largest difference in days between two consecutive active dates
  (activity on the 1st and the 4th: 3); 0 with fewer than two active dates.
* `returns`: active dates that came at most `within_days` days after the previous active date
  ("came back within 3 days"); the first date is never a return.
* `cadence`: the most active dates inside any `span_days` consecutive dates, counting only spans
  that contain a date with an `anchor` activity when an anchor is given. The seeds' "day 1 visits,
  day 3 returns, day 4 downloads a white paper" is `cadence >= 3` with span 4 and a download anchor.
  Anchor activities make their date active too.
* `days_since_first` / `days_since_last`: whole days (rounded down) since the earliest / latest;
  with none in the window they read 0 / `window_days` ("at least that long").
* `score`: for each activity `points[type] * 0.5 ** (age_days / half_life_days)` (no decay without
  a half-life), summed per type, each type capped by `caps`, the total capped by `cap`, rounded to
  2 decimals. A decimal number (CEL double); every other kind is a whole number (CEL int).
"""

from __future__ import annotations

import itertools
import math
import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING

from connector.mapping.schema import ActivityFilter, ActivityTypeSpec, SignalSpec
from connector.model import Activity

if TYPE_CHECKING:
    from connector.lifecycle.signal_batch import BatchSignals

_DAY = timedelta(days=1)
_ZERO = timedelta(0)
_PROFILE_MEMO_SIZE = 50_000

SignalValue = int | float


@dataclass(frozen=True)
class _Filter:
    """One ActivityFilter with its lists turned into sets and compiled regexes."""

    types: frozenset[str]
    channels: frozenset[str]
    url_patterns: tuple[re.Pattern[str], ...]
    name_patterns: tuple[re.Pattern[str], ...]

    @classmethod
    def of(cls, spec: ActivityFilter) -> _Filter:
        return cls(
            types=frozenset(spec.types),
            channels=frozenset(spec.channels),
            url_patterns=tuple(re.compile(pattern) for pattern in spec.url_patterns),
            name_patterns=tuple(re.compile(pattern) for pattern in spec.name_patterns),
        )

    def is_empty(self) -> bool:
        """No filter at all: every activity of a declared type passes."""
        return not (self.types or self.channels or self.url_patterns or self.name_patterns)

    def matches(self, type_: str, channel: str, url: str | None, name: str | None) -> bool:
        """All present filters must hold (AND); within one filter any value may match (OR)."""
        if self.types and type_ not in self.types:
            return False
        if self.channels and channel not in self.channels:
            return False
        if self.url_patterns and not _search_any(self.url_patterns, url):
            return False
        return not (self.name_patterns and not _search_any(self.name_patterns, name))


def _search_any(patterns: tuple[re.Pattern[str], ...], text: str | None) -> bool:
    """An activity without the text never matches a filter on it."""
    if text is None:
        return False
    return any(pattern.search(text) for pattern in patterns)


_SOURCE_KEY = attrgetter("source", "source_id")
_SOURCE_ID = attrgetter("source_id")
_CHANNEL = itemgetter(2)
_DATE = itemgetter(3)

_Event = tuple[timedelta, str, str, int]
"""One activity inside the longest window: (age, type, channel, calendar date ordinal in UTC).
A plain tuple: one is built per activity per person, and tuples are the cheapest to create."""


@dataclass(frozen=True)
class _Profile:
    """For one (type, url, name): the signals whose filters it passes, and whose anchors.

    `main`/`anchor` are the plain lists (index, window). `plans` lays the same facts out for the
    inner loop, indexed by the activity's age rank (how many distinct windows are already shorter
    than its age): the filtered count signals to increment, the other filtered signals and the
    anchors to hand the event to. Signals without a filter are not listed: they read every event
    of their window from the per-rank buckets. One bisect replaces a window test per signal.
    """

    channel: str
    main: tuple[tuple[int, timedelta], ...]
    anchor: tuple[tuple[int, timedelta], ...]
    plans: tuple[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...] = ()


@dataclass(frozen=True)
class _Signal:
    """One SignalSpec ready to compute."""

    name: str
    kind: str
    window: timedelta
    window_days: int
    filter: _Filter
    anchor: _Filter | None = None
    within_days: int = 0
    span_days: int = 0
    points: Mapping[str, float] = field(default_factory=dict)
    caps: Mapping[str, float] = field(default_factory=dict)
    cap: float | None = None
    half_life_days: float | None = None

    def value(self, events: Sequence[_Event], anchors: Sequence[_Event]) -> SignalValue:
        """The signal's number over the matching events inside its window (anchors: cadence only)."""
        kind = self.kind
        if kind == "count":
            return len(events)
        # C-level helpers (itemgetter, min over tuples, whose first item is the age): this runs for
        # every signal of every person.
        if kind == "distinct_channels":
            return len(set(map(_CHANNEL, events)))
        if kind == "distinct_days":
            return len(set(map(_DATE, events)))
        if kind == "days_since_last":
            return min(events)[0] // _DAY if events else self.window_days
        if kind == "days_since_first":
            return max(events)[0] // _DAY if events else 0
        if kind == "score":
            return self._score(events)
        days = sorted(set(map(_DATE, events)))
        if kind == "longest_gap_days":
            return max((later - earlier for earlier, later in itertools.pairwise(days)), default=0)
        if kind == "returns":
            return sum(
                1 for earlier, later in itertools.pairwise(days) if later - earlier <= self.within_days
            )
        return self._cadence(days, anchors)

    def _cadence(self, days: list[int], anchors: Sequence[_Event]) -> int:
        anchor_days = sorted(set(map(_DATE, anchors)))
        if self.anchor is not None:
            if not anchor_days:
                return 0
            days = sorted({*days, *anchor_days})
        best = 0
        end = 0
        for start, first in enumerate(days):
            last = first + self.span_days - 1
            end = max(end, start)
            while end < len(days) and days[end] <= last:
                end += 1
            if end - start > best and (
                self.anchor is None or any(first <= day <= last for day in anchor_days)
            ):
                best = end - start
        return best

    def _score(self, events: Sequence[_Event]) -> float:
        per_type: dict[str, list[float]] = {}
        half_life = self.half_life_days
        points_of = self.points
        for age, type_, _channel, _day in events:
            points = points_of.get(type_)
            if not points:
                continue
            if half_life is not None:
                points *= 0.5 ** ((age / _DAY) / half_life)
            bucket = per_type.get(type_)
            if bucket is None:
                per_type[type_] = [points]
            else:
                bucket.append(points)
        # fsum is exact and order-independent: the same timeline gives the same score in any order.
        subtotals = []
        for type_, contributions in per_type.items():
            subtotal = math.fsum(contributions)
            type_cap = self.caps.get(type_)
            subtotals.append(subtotal if type_cap is None else min(subtotal, type_cap))
        total = math.fsum(subtotals)
        if self.cap is not None:
            total = min(total, self.cap)
        return round(total, 2) + 0.0


_UNSEEN = _Profile("", (), ())
"""Stands for "not memoised yet" in the profile memo, where None means "not a declared type"."""


def as_utc(value: datetime) -> datetime:
    """Aware UTC datetime; a naive value is taken to be UTC already."""
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def signal_type(spec: SignalSpec) -> str:
    """The CEL type of a signal's value: "double" for scores, "int" for every other kind."""
    return "double" if spec.kind == "score" else "int"


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
        self._types = {name: signal_type(spec) for name, spec in specs.items()}
        self._windows = tuple(signal.window for signal in self._signals)
        self._longest = max(self._windows, default=_ZERO)
        self._ranks = sorted(set(self._windows))
        # Signals whose filter is empty take every declared activity in their window: they read the
        # per-rank buckets (the first `_reach[i]` of them) instead of a list of their own.
        self._open = tuple(signal.filter.is_empty() for signal in self._signals)
        self._reach = tuple(self._ranks.index(signal.window) + 1 for signal in self._signals)
        self._profiles: dict[tuple[str, str | None, str | None], _Profile | None] = {}
        self._batch: BatchSignals | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """Signal names in definition order."""
        return tuple(signal.name for signal in self._signals)

    @property
    def types(self) -> dict[str, str]:
        """Signal name -> CEL type of its value ("int" or "double")."""
        return dict(self._types)

    @property
    def compiled(self) -> tuple[_Signal, ...]:
        """The signals ready to compute, in definition order (for the batch twin)."""
        return self._signals

    @property
    def channels(self) -> dict[str, str]:
        """Declared activity type -> its channel."""
        return dict(self._channels)

    def compute_many(
        self, timelines: Sequence[Sequence[Activity]], now: datetime
    ) -> list[dict[str, SignalValue]]:
        """`compute` for many timelines at once, column-wise (`signal_batch`): for simulate and benches.

        Worth it from a few dozen timelines up; the numbers are identical to `compute`'s.
        """
        if self._batch is None:
            from connector.lifecycle.signal_batch import BatchSignals

            self._batch = BatchSignals(self)
        return self._batch.compute_many(timelines, now)

    def window_days(self, name: str) -> int:
        return next(signal.window_days for signal in self._signals if signal.name == name)

    def compute(self, timeline: Sequence[Activity], now: datetime) -> dict[str, SignalValue]:
        """Every signal's value as of `now`.

        Activities of a type the criteria do not declare are ignored (they are outside the shared
        vocabulary, so no signal may depend on them), and the same (source, source_id) counts once,
        so a re-read page replayed into the timeline cannot inflate a count.

        This is the hot loop of every run and of `simulate` (20 million activities for a million
        people), so it works on the memoised profiles: per activity one dict lookup, one age, one
        bisect for the age rank, one event into that rank's bucket, then short index lists for the
        filtered signals (filtered counts are tallied as integers). Unfiltered signals read the
        buckets of the ranks inside their window. Every kind's value is independent of the order
        of its events. `reference_compute` is the same definition written plainly, and a property
        test holds the two to identical results.
        """
        now_utc = now if now.tzinfo is UTC else as_utc(now)
        signals = self._signals
        counts = [0] * len(signals)
        matched: list[list[_Event]] = [[] for _ in signals]
        anchored: list[list[_Event]] = [[] for _ in signals]
        ranks = self._ranks
        buckets: list[list[_Event]] = [[] for _ in ranks]
        longest = self._longest
        profiles = self._profiles
        for activity in unique_activities(timeline):
            profile = profiles.get((activity.type, activity.url, activity.name), _UNSEEN)
            if profile is _UNSEEN:
                profile = self._profile(activity)
            if profile is None:
                continue
            at = activity.occurred_at
            if at.tzinfo is not UTC:
                at = as_utc(at)
            age = now_utc - at
            if age < _ZERO or age >= longest:
                continue
            rank = bisect_right(ranks, age)
            event = (age, activity.type, profile.channel, at.toordinal())
            buckets[rank].append(event)
            tallied, main, anchor = profile.plans[rank]
            for index in tallied:
                counts[index] += 1
            for index in main:
                matched[index].append(event)
            for index in anchor:
                anchored[index].append(event)
        prefix: list[list[_Event]] = []
        for bucket in buckets:
            prefix.append(prefix[-1] + bucket if prefix else bucket)
        values: dict[str, SignalValue] = {}
        for index, signal in enumerate(signals):
            if self._open[index]:
                events = prefix[self._reach[index] - 1]
                values[signal.name] = (
                    len(events) if signal.kind == "count" else signal.value(events, anchored[index])
                )
            elif signal.kind == "count":
                values[signal.name] = counts[index]
            else:
                values[signal.name] = signal.value(matched[index], anchored[index])
        return values

    def reference_compute(self, timeline: Sequence[Activity], now: datetime) -> dict[str, SignalValue]:
        """`compute` written plainly: every activity checked against every signal's filter and window.

        Kept as the readable definition the optimised `compute` is tested against; not for loops.
        """
        now_utc = as_utc(now)
        values: dict[str, SignalValue] = {}
        for signal in self._signals:
            events: list[_Event] = []
            anchors: list[_Event] = []
            for activity in unique_activities(timeline):
                channel = self._channels.get(activity.type)
                if channel is None:
                    continue
                at = as_utc(activity.occurred_at)
                age = now_utc - at
                if not _ZERO <= age < signal.window:
                    continue
                event = (age, activity.type, channel, at.toordinal())
                args = (activity.type, channel, activity.url, activity.name)
                if signal.filter.matches(*args):
                    events.append(event)
                if signal.anchor is not None and signal.anchor.matches(*args):
                    anchors.append(event)
            values[signal.name] = signal.value(events, anchors)
        return values

    def _profile(self, activity: Activity) -> _Profile | None:
        key = (activity.type, activity.url, activity.name)
        profile = self.profile(*key)
        if len(self._profiles) >= _PROFILE_MEMO_SIZE:
            self._profiles.clear()
        self._profiles[key] = profile
        return profile

    def profile(self, type_: str, url: str | None, name: str | None) -> _Profile | None:
        """Which signals an activity with this type, URL and name feeds (None: undeclared type)."""
        channel = self._channels.get(type_)
        profile = None
        if channel is not None:
            args = (type_, channel, url, name)
            main = tuple(
                (i, signal.window) for i, signal in enumerate(self._signals) if signal.filter.matches(*args)
            )
            anchor = tuple(
                (i, signal.window)
                for i, signal in enumerate(self._signals)
                if signal.anchor is not None and signal.anchor.matches(*args)
            )
            # Rank r holds ages in [ranks[r-1], ranks[r]): exactly the signals whose window > ranks[r-1].
            floors = (_ZERO, *self._ranks)
            count = [signal.kind == "count" for signal in self._signals]
            kept = [(i, window) for i, window in main if not self._open[i]]
            profile = _Profile(
                channel,
                main,
                anchor,
                plans=tuple(
                    (
                        tuple(i for i, window in kept if window > floor and count[i]),
                        tuple(i for i, window in kept if window > floor and not count[i]),
                        tuple(i for i, window in anchor if window > floor),
                    )
                    for floor in floors
                ),
            )
        return profile


def unique_activities(timeline: Sequence[Activity]) -> Sequence[Activity]:
    """One activity per (source, source_id); of two versions, the same one whatever the order."""
    # Distinct ids alone prove distinct pairs, and need no pair built per activity.
    if len(set(map(_SOURCE_ID, timeline))) == len(timeline):
        return timeline
    if len(set(map(_SOURCE_KEY, timeline))) == len(timeline):
        return timeline
    kept: dict[tuple[str, str], Activity] = {}
    for activity in timeline:
        key = (activity.source, activity.source_id)
        other = kept.get(key)
        if other is None or _version_key(activity) > _version_key(other):
            kept[key] = activity
    if len(kept) == len(timeline):
        return timeline
    return list(kept.values())


def _version_key(activity: Activity) -> tuple[datetime, str, str, str]:
    return (as_utc(activity.occurred_at), activity.type, activity.url or "", activity.name or "")


def _compile(name: str, spec: SignalSpec) -> _Signal:
    return _Signal(
        name=name,
        kind=spec.kind,
        window=timedelta(days=spec.window_days),
        window_days=spec.window_days,
        filter=_Filter.of(spec),
        anchor=_Filter.of(spec.anchor) if spec.anchor is not None else None,
        within_days=spec.within_days or 0,
        span_days=spec.span_days or 0,
        points=dict(spec.points),
        caps=dict(spec.caps),
        cap=spec.cap,
        half_life_days=spec.half_life_days,
    )


def compute_signals(
    specs: Mapping[str, SignalSpec],
    activity_types: Mapping[str, ActivityTypeSpec],
    timeline: Sequence[Activity],
    now: datetime,
) -> dict[str, SignalValue]:
    """One-off convenience wrapper; loops should build a `SignalCalculator` once and reuse it."""
    return SignalCalculator(specs, activity_types).compute(timeline, now)

"""Signals for many people at once: the same numbers as `SignalCalculator.compute`, in columns.

`simulate` and the criteria benchmark evaluate a million people; one Python pass per activity costs
about a microsecond, which caps a process near 20,000 people/s. Here the per-activity Python work
is a few C-level `map`s that turn a batch's timelines into flat columns (owner, profile, instant);
every kind is then computed for the whole batch with numpy: a mask per signal, `bincount` for
counts, sorted unique (person, day) keys for days, gaps, returns and cadence, `minimum.at` /
`maximum.at` for recency.

The results are identical to `compute`, not merely close (a property test holds them equal):

* Instants are whole microseconds (int64), so window edges are exact. Float timestamps hold every
  microsecond exactly only until 2038, so they are used only when the batch lies before then
  (the error is at most 0.37 µs, rounded away); later instants take an exact timedelta path.
* Score decay is computed with Python's own `pow` (numpy's vectorised power differs from the C
  library's in the last bit for about 5% of inputs), sums with `math.fsum` per (person, type) and
  per person, and rounding with `round`, exactly as `compute` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain, compress, repeat
from operator import attrgetter, sub

import numpy as np
import numpy.typing as npt

from connector.lifecycle.signals import SignalCalculator, SignalValue, _Signal, as_utc, unique_activities
from connector.model import Activity

_DAY_US = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FLOAT_EXACT_UNTIL = 2**31
"""Seconds since the epoch below which a float timestamp still resolves every microsecond."""

_PROFILE_LIMIT = 100_000
_KEY = attrgetter("type", "url", "name")
_AT = attrgetter("occurred_at")
_TZ = attrgetter("tzinfo")
_DAYS = attrgetter("days")
_SECONDS = attrgetter("seconds")
_MICROSECONDS = attrgetter("microseconds")

IntArray = npt.NDArray[np.int64]


class _Profiles(dict[tuple[str, str | None, str | None], int]):
    """(type, url, name) -> row of the profile tables; a new key is profiled on first sight."""

    def __init__(self, owner: BatchSignals) -> None:
        super().__init__()
        self._owner = owner

    def __missing__(self, key: tuple[str, str | None, str | None]) -> int:
        row = self._owner.add_profile(key)
        self[key] = row
        return row


class BatchSignals:
    """Column-wise twin of a `SignalCalculator`; build once per run, call `compute_many` per batch."""

    def __init__(self, calculator: SignalCalculator) -> None:
        self._calculator = calculator
        self._signals: tuple[_Signal, ...] = calculator.compiled
        self._channels = sorted(set(calculator.channels.values()))
        self._types = sorted(calculator.channels)
        self._profiles = _Profiles(self)
        # Row-wise facts per profile, grown as profiles appear, turned into arrays per batch.
        self._declared: list[bool] = []
        self._channel_of: list[int] = []
        self._type_of: list[int] = []
        self._match: list[list[bool]] = []
        self._anchor: list[list[bool]] = []
        self._tables: tuple[npt.NDArray[np.bool_], ...] | None = None
        self._points = [np.array([float(s.points.get(t, 0.0)) for t in self._types]) for s in self._signals]

    def add_profile(self, key: tuple[str, str | None, str | None]) -> int:
        """Classify one (type, url, name) once: which signals' filters and anchors it passes."""
        profile = self._calculator.profile(*key)
        self._tables = None
        row = len(self._declared)
        self._declared.append(profile is not None)
        count = len(self._signals)
        main = {index for index, _window in profile.main} if profile else set()
        anchor = {index for index, _window in profile.anchor} if profile else set()
        self._match.append([index in main for index in range(count)])
        self._anchor.append([index in anchor for index in range(count)])
        self._channel_of.append(self._channels.index(profile.channel) if profile else 0)
        self._type_of.append(self._types.index(key[0]) if profile else 0)
        return row

    def _arrays(self) -> tuple[npt.NDArray[np.bool_], ...]:
        if self._tables is None:
            count = len(self._signals)
            self._tables = (
                np.array(self._declared, dtype=bool),
                np.array(self._match, dtype=bool).reshape(-1, count),
                np.array(self._anchor, dtype=bool).reshape(-1, count),
            )
        return self._tables

    def reset_if_large(self) -> None:
        """Forget the profiles once there are many (URLs with tracking parameters never repeat)."""
        if len(self._declared) > _PROFILE_LIMIT:
            self._profiles.clear()
            self._declared, self._channel_of, self._type_of = [], [], []
            self._match, self._anchor, self._tables = [], [], None

    def compute_many(
        self, timelines: Sequence[Sequence[Activity]], now: datetime
    ) -> list[dict[str, SignalValue]]:
        """Every signal's value for each timeline as of `now`, in the order given."""
        columns = self.columns(timelines, now)
        names = [signal.name for signal in self._signals]
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]

    def columns(self, timelines: Sequence[Sequence[Activity]], now: datetime) -> list[list[SignalValue]]:
        """One list per signal (definition order) with each timeline's value."""
        self.reset_if_large()
        people = len(timelines)
        kept = [unique_activities(timeline) for timeline in timelines]
        lengths = np.fromiter(map(len, kept), dtype=np.int64, count=people)
        flat: list[Activity] = list(chain.from_iterable(kept))
        stamps = _microseconds(list(map(_AT, flat)))
        now_us = int(_microseconds([as_utc(now)])[0])
        today = now_us // _DAY_US
        owner = np.repeat(np.arange(people, dtype=np.int64), lengths)
        age = now_us - stamps
        longest = max((signal.window_days for signal in self._signals), default=0) * _DAY_US
        # Only activities inside the longest window are profiled (a timeline holds years).
        recent = (age >= 0) & (age < longest)
        if not recent.all():
            flat = list(compress(flat, recent.tolist()))
            owner, age, stamps = owner[recent], age[recent], stamps[recent]
        rows = np.fromiter(map(self._profiles.__getitem__, map(_KEY, flat)), dtype=np.int64, count=len(flat))
        declared, match, anchor = self._arrays()
        inside = declared[rows]
        owner, rows, age, stamps = owner[inside], rows[inside], age[inside], stamps[inside]
        day = stamps // _DAY_US  # days since the epoch: UTC calendar dates
        return [
            self._column(index, signal, people, owner, rows, age, day - today, match, anchor)
            for index, signal in enumerate(self._signals)
        ]

    def _column(
        self,
        index: int,
        signal: _Signal,
        people: int,
        owner: IntArray,
        rows: IntArray,
        age: IntArray,
        day: IntArray,  # relative to today's date (<= 0)
        match: npt.NDArray[np.bool_],
        anchor: npt.NDArray[np.bool_],
    ) -> list[SignalValue]:
        in_window = age < signal.window_days * _DAY_US
        mask = match[rows, index] & in_window
        who, ages, days = owner[mask], age[mask], day[mask]
        kind = signal.kind
        if kind == "count":
            return _ints(np.bincount(who, minlength=people))
        if kind == "distinct_channels":
            channels = np.asarray(self._channel_of, dtype=np.int64)[rows[mask]]
            return _distinct_per_person(who, channels, len(self._channels), people)
        if kind == "days_since_last":
            least = np.full(people, signal.window_days * _DAY_US, dtype=np.int64)
            np.minimum.at(least, who, ages)
            seen = np.bincount(who, minlength=people) > 0
            return _ints(np.where(seen, least // _DAY_US, signal.window_days))
        if kind == "days_since_first":
            most = np.zeros(people, dtype=np.int64)
            np.maximum.at(most, who, ages)
            return _ints(most // _DAY_US)
        if kind == "score":
            types = np.asarray(self._type_of, dtype=np.int64)[rows[mask]]
            return _scores(signal, self._points[index], self._types, who, types, ages, people)
        # Dates in the window are today - window_days .. today: offsets 0..window_days, and `span`
        # leaves room for a cadence span after the last, so one person's keys never reach the next's.
        base = -signal.window_days
        span = signal.window_days + signal.span_days + 2
        if kind == "distinct_days":
            return _distinct_per_person(who, days - base, span, people)
        keys = np.unique(who * span + (days - base))
        if kind in ("longest_gap_days", "returns"):
            same = (keys[1:] // span) == (keys[:-1] // span)
            gaps = (keys[1:] - keys[:-1])[same]
            firsts = (keys[1:] // span)[same]
            if kind == "returns":
                return _ints(np.bincount(firsts[gaps <= signal.within_days], minlength=people))
            longest = np.zeros(people, dtype=np.int64)
            np.maximum.at(longest, firsts, gaps)
            return _ints(longest)
        anchors: IntArray | None = None
        if signal.anchor is not None:
            hold = anchor[rows, index] & in_window
            anchors = np.unique(owner[hold] * span + (day[hold] - base))
            keys = np.union1d(keys, anchors)
        return _cadence(keys, anchors, signal.span_days, span, people)


def _microseconds(instants: list[datetime]) -> IntArray:
    """Whole microseconds since the epoch (UTC; a naive value is read as UTC), exactly."""
    zones = set(map(_TZ, instants))
    if zones != {UTC}:
        instants = [as_utc(instant) for instant in instants]
    count = len(instants)
    seconds = np.fromiter(map(datetime.timestamp, instants), dtype=np.float64, count=count)
    if count == 0 or (seconds.max() < _FLOAT_EXACT_UNTIL and seconds.min() > -_FLOAT_EXACT_UNTIL):
        return np.rint(seconds * 1e6).astype(np.int64)
    deltas: list[timedelta] = list(map(sub, instants, repeat(_EPOCH)))
    return (
        np.fromiter(map(_DAYS, deltas), dtype=np.int64, count=count) * _DAY_US
        + np.fromiter(map(_SECONDS, deltas), dtype=np.int64, count=count) * 1_000_000
        + np.fromiter(map(_MICROSECONDS, deltas), dtype=np.int64, count=count)
    )


def _ints(values: IntArray) -> list[SignalValue]:
    return values.tolist()  # type: ignore[no-any-return]


def _distinct_per_person(who: IntArray, values: IntArray, width: int, people: int) -> list[SignalValue]:
    """How many different `values` (each in [0, width)) each person has."""
    keys = np.unique(who * width + values)
    return _ints(np.bincount(keys // width, minlength=people))


def _cadence(
    keys: IntArray, anchors: IntArray | None, span_days: int, span: int, people: int
) -> list[SignalValue]:
    """Most active dates inside any `span_days` consecutive dates (containing an anchor date if any).

    `keys` are sorted unique person * span + date; `span` leaves room after each person's dates so a
    range search never reaches into the next person.
    """
    ends = np.searchsorted(keys, keys + span_days - 1, side="right")
    counts = ends - np.arange(len(keys))
    if anchors is not None:
        first = np.searchsorted(anchors, keys, side="left")
        found = first < len(anchors)
        nearest = anchors[np.minimum(first, max(len(anchors) - 1, 0))] if len(anchors) else keys
        counts = np.where(found & (nearest <= keys + span_days - 1), counts, 0)
    best = np.zeros(people, dtype=np.int64)
    np.maximum.at(best, keys // span, counts)
    return _ints(best)


def _scores(
    signal: _Signal,
    points: npt.NDArray[np.float64],
    types: Sequence[str],
    who: IntArray,
    type_ids: IntArray,
    ages: IntArray,
    people: int,
) -> list[SignalValue]:
    """`_Signal._score` for every person: decayed points, fsum per type, caps, fsum, cap, round."""
    worth = points[type_ids]
    keep = worth != 0
    who, type_ids, ages, worth = who[keep], type_ids[keep], ages[keep], worth[keep]
    order = np.lexsort((type_ids, who))
    who, type_ids, ages, worth = who[order], type_ids[order], ages[order], worth[order]
    if signal.half_life_days is not None:
        exponents = ((ages / _DAY_US) / signal.half_life_days).tolist()
        worth = worth * np.fromiter(map(pow, repeat(0.5), exponents), dtype=np.float64, count=len(exponents))
    if len(worth) == 0:
        return [0.0] * people
    # Groups are (person, type) runs. A group of one sums to its value and a person with one
    # group totals to it, exactly as fsum would: only longer runs go through fsum.
    group = who * len(types) + type_ids
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[starts, len(group)])
    subtotals = worth[starts]
    _fsum_runs(subtotals, worth, starts, sizes)
    caps = np.array([math.inf if cap is None else cap for cap in (signal.caps.get(t) for t in types)])
    subtotals = np.minimum(subtotals, caps[type_ids[starts]])
    owners = who[starts]
    firsts = np.searchsorted(owners, np.arange(people))
    counts = np.bincount(owners, minlength=people)
    totals = np.where(counts > 0, subtotals[np.minimum(firsts, len(owners) - 1)], 0.0)
    _fsum_runs(totals, subtotals, firsts, counts)
    if signal.cap is not None:
        totals = np.minimum(totals, signal.cap)
    return [round(total, 2) + 0.0 for total in totals.tolist()]


def _fsum_runs(
    out: npt.NDArray[np.float64], values: npt.NDArray[np.float64], starts: IntArray, sizes: IntArray
) -> None:
    """out[i] = fsum(values[starts[i] : starts[i] + sizes[i]]) wherever sizes[i] > 1."""
    runs = np.flatnonzero(sizes > 1)
    if len(runs) == 0:
        return
    plain = values.tolist()
    fsum = math.fsum
    out[runs] = [
        fsum(plain[first : first + size])
        for first, size in zip(starts[runs].tolist(), sizes[runs].tolist(), strict=True)
    ]

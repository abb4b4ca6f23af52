"""Invariants that must hold for any input, not just the examples we thought of (Hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.lifecycle import SignalCalculator, plan_write, signal_batch
from connector.mapping.schema import SignalSpec
from connector.model import Activity, Decision, FieldValue

from .lifecycle_fixtures import NOW, criteria, evaluator, field_map

STAGES = criteria().stages
SALES = frozenset(criteria().sales_owned)
TYPES = sorted(criteria().activity_types)
URLS = [
    None,
    "https://acme.example/pricing",
    "https://acme.example/solutions/crm",
    "https://acme.example/blog",
]
NAMES = [None, "Request a demo", "Whitepaper", "Newsletter", "Talk to an expert", "Contact Sales"]

activities = st.builds(
    Activity,
    person_id=st.just("p1"),
    type=st.sampled_from(TYPES),
    occurred_at=st.floats(min_value=-3, max_value=120, allow_nan=False).map(
        lambda d: NOW - timedelta(days=d)
    ),
    source=st.sampled_from(["hubspot", "salesforce"]),
    source_id=st.uuids().map(str),
    url=st.sampled_from(URLS),
    name=st.sampled_from(NAMES),
)

people = st.fixed_dictionaries(
    {},
    optional={
        "email": st.sampled_from(
            ["a@acme.com", "a@gmail.com", "a@rivalsoft.com", "test@x.io", "a@u.edu", None]
        ),
        "title": st.sampled_from(["VP Sales", "Manager", "Student", "", None]),
        "employees": st.one_of(st.none(), st.integers(min_value=0, max_value=10_000)),
        "industry": st.sampled_from(["Software", "Retail", None]),
        "country": st.sampled_from(["Germany", "Brazil", None]),
        "unsubscribed": st.one_of(st.none(), st.booleans()),
    },
)


@settings(max_examples=150, deadline=None)
@given(
    timeline=st.lists(activities, max_size=25),
    person=people,
    current=st.one_of(st.none(), st.sampled_from([*STAGES, "custom_stage"])),
)
def test_stage_never_moves_backwards_and_sales_owned_is_untouched(
    timeline: list[Activity], person: dict[str, FieldValue], current: str | None
) -> None:
    decision = evaluator().evaluate(
        person_id="p1", person=person, timeline=timeline, current_stage=current, now=NOW
    )
    assert decision.stage in STAGES
    if current in SALES:
        assert decision.stage == current
    elif current in STAGES:
        assert STAGES.index(decision.stage) >= STAGES.index(current)
    assert decision.reason


CALCULATOR = SignalCalculator(criteria().signals, criteria().activity_types)
LONGEST_WINDOW = max(spec.window_days for spec in criteria().signals.values())


@settings(max_examples=100, deadline=None)
@given(
    timeline=st.lists(activities, max_size=20),
    outside=st.lists(activities, max_size=10),
    data=st.data(),
)
def test_signals_ignore_order_and_duplicates_outside_the_window(
    timeline: list[Activity], outside: list[Activity], data: st.DataObject
) -> None:
    baseline = CALCULATOR.compute(timeline, NOW)
    shuffled = data.draw(st.permutations(timeline))
    assert CALCULATOR.compute(shuffled, NOW) == baseline
    # Copies of the timeline's own out-of-window activities, and other activities moved out of
    # every window (too old or in the future), change nothing.
    old = [
        a for a in timeline if a.occurred_at <= NOW - timedelta(days=LONGEST_WINDOW) or a.occurred_at > NOW
    ]
    moved = [
        Activity(**{**a.__dict__, "occurred_at": NOW - timedelta(days=LONGEST_WINDOW + 1 + i)})
        for i, a in enumerate(outside)
    ]
    future = [
        Activity(**{**a.__dict__, "source_id": a.source_id + "-f", "occurred_at": NOW + timedelta(hours=1)})
        for a in outside
    ]
    noisy = data.draw(st.permutations([*shuffled, *old, *old, *moved, *future]))
    assert CALCULATOR.compute(noisy, NOW) == baseline


# Every kind, several windows (1 day to a year) and filters, on top of the shipped signals: the
# optimised `compute` must agree with the plain `reference_compute` on all of them.
EXTRA_SIGNALS = {
    "gap_60d": SignalSpec(kind="longest_gap_days", window_days=60),
    "returns_45d": SignalSpec(kind="returns", window_days=45, within_days=3, types=["page_view"]),
    "first_365d": SignalSpec(kind="days_since_first", window_days=365),
    "cadence_plain_10d": SignalSpec(kind="cadence", window_days=10, span_days=3),
    "email_1d": SignalSpec(kind="count", window_days=1, channels=["email"]),
    "web_score_90d": SignalSpec(kind="score", window_days=90, points={"page_view": 2.5}, cap=7),
    "capped_score_60d": SignalSpec(
        kind="score",
        window_days=60,
        points={"page_view": 3, "chat": 1.5},
        caps={"page_view": 5},
        half_life_days=9,
    ),
    "demo_days_30d": SignalSpec(kind="distinct_days", window_days=30, name_patterns=["(?i)demo"]),
}
WIDE = SignalCalculator({**criteria().signals, **EXTRA_SIGNALS}, criteria().activity_types)

naive_or_aware = st.builds(
    lambda a, naive, copy: (
        [a, *([Activity(**{**a.__dict__, "url": "https://x.example/pricing"})] if copy else [])]
        if not naive
        else [Activity(**{**a.__dict__, "occurred_at": a.occurred_at.replace(tzinfo=None)})]
    ),
    activities,
    st.booleans(),
    st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(groups=st.lists(naive_or_aware, max_size=25), hours=st.integers(min_value=-48, max_value=48))
def test_optimised_signals_equal_the_plain_definition(groups: list[list[Activity]], hours: int) -> None:
    timeline = [activity for group in groups for activity in group]
    now = NOW + timedelta(hours=hours)
    assert WIDE.compute(timeline, now) == WIDE.reference_compute(timeline, now)
    # A second call goes through the memoised profiles only: still the same numbers.
    assert WIDE.compute(timeline, now) == WIDE.reference_compute(timeline, now)


# Column-wise signals (`compute_many`, used by simulate) must give exactly `compute`'s numbers and
# types for every person of a batch: window edges to the microsecond, naive/aware/other-zone
# instants, duplicates, future activities, empty timelines, and dates after 2038 (exact path).
WIDE_SPECS = {**criteria().signals, **EXTRA_SIGNALS}
EDGE_DAYS = sorted({spec.window_days for spec in WIDE_SPECS.values()})
instants = st.one_of(
    st.floats(min_value=-3, max_value=400, allow_nan=False).map(lambda d: timedelta(days=d)),
    st.tuples(st.sampled_from([0, *EDGE_DAYS]), st.sampled_from([-1, 0, 1])).map(
        lambda edge: timedelta(days=edge[0], microseconds=edge[1])
    ),
    # Whole days apart (gaps and returns exactly `within_days`, cadence spans exactly full).
    st.tuples(st.integers(0, 40), st.integers(0, 23)).map(lambda d: timedelta(days=d[0], hours=d[1])),
)
batch_activity = st.builds(
    lambda a, age, zone, version: Activity(
        **{
            **a.__dict__,
            "occurred_at": _zoned(a.occurred_at.replace(microsecond=0) - age, zone),
            "source_id": a.source_id[:1] if version else a.source_id,
        }
    ),
    activities,
    instants,
    st.sampled_from(["utc", "naive", "plus2"]),
    st.booleans(),
)


def _zoned(moment: datetime, zone: str) -> datetime:
    if zone == "naive":
        return moment.replace(tzinfo=None)
    if zone == "plus2":
        return moment.astimezone(timezone(timedelta(hours=2)))
    return moment


def _typed(values: dict[str, object]) -> dict[str, tuple[type, object]]:
    return {name: (type(value), value) for name, value in values.items()}


@settings(max_examples=150, deadline=None)
@given(
    timelines=st.lists(st.lists(batch_activity, max_size=20), max_size=6),
    hours=st.integers(min_value=-48, max_value=48),
    years=st.sampled_from([0, 0, 15]),
)
def test_column_wise_signals_equal_compute_for_every_person(
    timelines: list[list[Activity]], hours: int, years: int
) -> None:
    shift = timedelta(days=365 * years)  # 15 years: after 2038, where the exact (timedelta) path runs
    timelines = [
        [Activity(**{**a.__dict__, "occurred_at": a.occurred_at + shift}) for a in t] for t in timelines
    ]
    now = NOW + shift + timedelta(hours=hours)
    batch = WIDE.compute_many(timelines, now)
    assert [_typed(values) for values in batch] == [_typed(WIDE.compute(t, now)) for t in timelines]


@settings(max_examples=300, deadline=None)
@given(st.datetimes(timezones=st.just(UTC)))
def test_column_wise_instants_are_exact_microseconds_in_any_year(moment: datetime) -> None:
    exact = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert signal_batch._microseconds([moment, moment + timedelta(days=1)]).tolist() == [
        exact,
        exact + 86_400_000_000,
    ]


def test_column_wise_signals_count_gaps_of_exactly_within_days_as_returns() -> None:
    def views(*days: int) -> list[Activity]:
        return [
            Activity("p", "page_view", NOW - timedelta(days=d), "hubspot", f"v{d}", url="https://a.example/")
            for d in days
        ]

    # Active dates 10, 7, 3 and 0 days ago: gaps 3 (a return), 4 (not), 3 (a return).
    timelines = [views(10, 7, 3, 0), views(), views(44, 41)]
    batch = WIDE.compute_many(timelines, NOW)
    assert [values["returns_45d"] for values in batch] == [2, 0, 1]
    assert [values["gap_60d"] for values in batch] == [4, 0, 3]
    assert batch == [WIDE.compute(t, NOW) for t in timelines]


def test_column_wise_signals_forget_profiles_past_the_limit_and_still_agree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """URLs with tracking parameters never repeat: the profile tables are dropped and rebuilt."""
    monkeypatch.setattr(signal_batch, "_PROFILE_LIMIT", 5)
    calculator = SignalCalculator(WIDE_SPECS, criteria().activity_types)
    timelines = [
        [
            Activity(
                "p",
                "page_view",
                NOW - timedelta(days=d, hours=n),
                "hubspot",
                f"{n}-{d}",
                url=f"https://acme.example/pricing?utm={n}-{d}",
            )
            for d in range(4)
        ]
        for n in range(10)
    ]
    for start in range(0, 10, 2):  # five batches; the tables pass the limit and are reset
        chunk = timelines[start : start + 2]
        assert calculator.compute_many(chunk, NOW) == [calculator.compute(t, NOW) for t in chunk]
    assert calculator.compute_many([], NOW) == []
    assert calculator.compute_many([[]], NOW) == [calculator.compute([], NOW)]
    assert calculator.compute_many(timelines[:1], NOW)[0]["pricing_views_30d"] == 4


PROPS = ["lifecyclestage", "hs_lead_status", "hubspot_owner_id", "firstname", "jobtitle"]
crm_values = st.one_of(
    st.none(), st.sampled_from(["", "lead", "marketingqualifiedlead", "NEW", "OPEN", "7000000", "x"])
)


@settings(max_examples=200, deadline=None)
@given(
    writes=st.frozensets(st.sampled_from(PROPS)),
    current=st.dictionaries(st.sampled_from(PROPS), crm_values),
    last_written=st.dictionaries(st.sampled_from(PROPS), crm_values),
    stage=st.sampled_from(STAGES),
    lead_status=st.one_of(st.none(), st.sampled_from(criteria().lead_statuses)),
    owner_id=st.one_of(st.none(), st.sampled_from(["70000001", "70000002"])),
)
def test_plan_write_never_touches_unowned_properties(
    writes: frozenset[str],
    current: dict[str, str | None],
    last_written: dict[str, str | None],
    stage: str,
    lead_status: str | None,
    owner_id: str | None,
) -> None:
    decision = Decision(
        person_id="p1",
        evaluated_at=NOW,
        criteria_version="v",
        stage=stage,
        computed_stage=stage,
        lead_status=lead_status,
        fit_score=0,
        fit_grade="D",
        signals={},
        trace=(),
        reason="r",
    )
    fields = field_map()
    fields = type(fields)(fields.stage, fields.lead_status, fields.owner_property, writes)
    intent = plan_write(
        crm="hubspot",
        object_type="contacts",
        record_id="1",
        person_id="p1",
        decision=decision,
        owner_id=owner_id,
        current=current,
        last_written=last_written,
        fields=fields,
        stage_order=STAGES,
        sales_owned=SALES,
    )
    if intent is not None:
        assert intent.changes
        assert set(intent.changes) <= writes
        assert set(intent.before) == set(intent.changes)
        assert all(intent.changes[p] != current.get(p) for p in intent.changes)

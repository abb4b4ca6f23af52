"""Invariants that must hold for any input, not just the examples we thought of (Hypothesis)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.lifecycle import SignalCalculator, plan_write
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

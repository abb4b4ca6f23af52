"""The pure hand-off: manual owners win, queues, business hours (hypothesis), task targets, the SLA
and the recycle rule it feeds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.lifecycle.handoff import (
    Calendar,
    Target,
    add_business_hours,
    business_hours_between,
    protect_owner,
    render_subject,
    sla_state,
    task_targets,
)
from connector.lifecycle.routing import RoutingOutcome, route
from connector.lifecycle.rules import Handoff
from connector.mapping.schema import BusinessCalendar, HandoffSettings

from .lifecycle_fixtures import FIT_A, NOW, act, evaluator, pricing_views, routing
from .test_lifecycle_routing import run as run_routing

ANA, BEN = "70000001", "70000002"
BERLIN = Calendar.of(BusinessCalendar(timezone="Europe/Berlin"))
NEW_YORK = Calendar.of(BusinessCalendar(timezone="America/New_York"))


def routed(owner: str = BEN) -> RoutingOutcome:
    return RoutingOutcome(owner, "ben", "emea", "emea", f"assigned Ben (owner {owner})", ())


# --------------------------------------------------------------------------- owners


def test_an_owner_a_person_set_after_the_connectors_write_is_never_overwritten() -> None:
    kept = protect_owner(
        routed(), routing=routing(), crm="hubspot", current_owner_id="70000099",
        last_written={"hubspot_owner_id": ANA}, owner_property="hubspot_owner_id",
    )  # fmt: skip
    assert (kept.owner_id, kept.claim, kept.pool) == ("70000099", None, None)
    assert "set by a person after the connector's last write (70000001)" in kept.reason
    assert kept.trace[-1].name == "manual_owner"
    assert kept.trace[-1].matched


@pytest.mark.parametrize(
    ("current", "last_written"),
    [
        pytest.param(ANA, {"hubspot_owner_id": ANA}, id="still-what-we-wrote"),
        pytest.param("70000099", {}, id="never-wrote-an-owner"),
        pytest.param(None, {"hubspot_owner_id": ANA}, id="cleared-by-a-person"),
    ],
)
def test_routing_decides_when_the_owner_is_not_a_later_manual_choice(current, last_written) -> None:
    outcome = protect_owner(
        routed(), routing=routing(), crm="hubspot", current_owner_id=current,
        last_written=last_written, owner_property="hubspot_owner_id",
    )  # fmt: skip
    assert outcome == routed()


def test_a_manual_owner_is_kept_before_any_pool_turn_is_taken() -> None:
    """Applied while routing still waits for its pool turn, so a kept owner costs no turn."""
    pending = route(
        routing(), crm="hubspot", stage="mql", disqualified=False, person={"country": "Germany"},
        current_owner_id=None, active_owner_ids=frozenset({ANA, BEN, "70000004", "70000005"}),
    )  # fmt: skip
    assert pending.claim is not None
    assert pending.owner_id is None
    kept = protect_owner(
        pending, routing=routing(), crm="hubspot", current_owner_id="70000099",
        last_written={"hubspot_owner_id": ANA}, owner_property="hubspot_owner_id",
    )  # fmt: skip
    assert (kept.owner_id, kept.claim) == ("70000099", None)
    assert kept.trace[-1].name == "manual_owner"


def test_a_queue_counts_as_unowned_only_when_the_mapping_says_so() -> None:
    queue = "00GDn00000Que02AAA"
    config = routing()
    on = run_routing(
        {"country": "Germany"}, crm="salesforce", config=config,
        active=frozenset({"005Dn00000Rep04IAB", queue}),
    )  # fmt: skip
    noted = protect_owner(
        on,
        routing=config,
        crm="salesforce",
        current_owner_id=queue,
        last_written={},
        owner_property="OwnerId",
    )
    assert noted.owner_id == "005Dn00000Rep04IAB"
    assert "is a queue, which counts as unowned" in noted.reason
    off = config.model_copy(update={"handoff": HandoffSettings(queue_counts_as_unowned=False)})
    kept = protect_owner(
        on, routing=off, crm="salesforce", current_owner_id=queue, last_written={}, owner_property="OwnerId"
    )
    assert kept.owner_id == queue
    assert "queue_counts_as_unowned is off" in kept.reason


# --------------------------------------------------------------------------- business hours

MOMENTS = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(start=MOMENTS, hours=st.integers(0, 120), calendar=st.sampled_from([BERLIN, NEW_YORK]))
def test_due_is_inside_business_hours_and_exactly_n_business_hours_later(start, hours, calendar) -> None:
    due = add_business_hours(start, hours, calendar)
    assert calendar.contains(due)
    assert due >= start
    assert business_hours_between(start, due, calendar) == pytest.approx(hours)


@settings(max_examples=200, deadline=None)
@given(start=MOMENTS, a=st.integers(0, 60), b=st.integers(1, 60))
def test_due_grows_with_n_and_adding_in_two_steps_is_the_same(start, a, b) -> None:
    first = add_business_hours(start, a, BERLIN)
    assert add_business_hours(start, a + b, BERLIN) > first
    assert add_business_hours(first, b, BERLIN) == add_business_hours(start, a + b, BERLIN)


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        # Friday 16:00 Berlin + 2h -> Monday 10:00 (the weekend does not count)
        pytest.param("2026-03-06T15:00:00+00:00", 2, "2026-03-09T09:00:00+00:00", id="weekend"),
        # The clocks go forward on Sunday 29 March: Friday 16:00 CET + 2h = Monday 10:00 CEST (08:00 UTC)
        pytest.param("2026-03-27T15:00:00+00:00", 2, "2026-03-30T08:00:00+00:00", id="dst-spring"),
        # ...and back on 25 October: Friday 16:00 CEST + 2h = Monday 10:00 CET (09:00 UTC)
        pytest.param("2026-10-23T14:00:00+00:00", 2, "2026-10-26T09:00:00+00:00", id="dst-autumn"),
        # Saturday: counts from Monday 09:00; 8h is the whole of Monday, due at its closing time
        pytest.param("2026-03-07T10:00:00+00:00", 8, "2026-03-09T16:00:00+00:00", id="from-weekend"),
    ],
)
def test_business_hours_across_weekends_and_clock_changes(start: str, hours: int, due: str) -> None:
    assert add_business_hours(datetime.fromisoformat(start), hours, BERLIN) == datetime.fromisoformat(due)


def test_holidays_are_skipped() -> None:
    calendar = Calendar.of(BusinessCalendar(timezone="UTC", holidays=[date(2026, 12, 25)]))
    due = add_business_hours(datetime(2026, 12, 24, 16, tzinfo=UTC), 2, calendar)
    assert due == datetime(2026, 12, 28, 10, tzinfo=UTC)  # Thu 24 -> Fri 25 holiday -> Mon 28


# --------------------------------------------------------------------------- tasks


def test_the_task_goes_to_the_crm_that_owns_the_person() -> None:
    hs = Target("hubspot", "contacts", "501", ANA)
    lead = Target("salesforce", "Lead", "00Q1", "005A")
    contact = Target("salesforce", "Contact", "0031", "005A")
    assert task_targets([hs], "auto") == [hs]
    assert task_targets([hs, lead, contact], "auto") == [contact]  # Salesforce, the Contact first
    assert task_targets([hs, lead], "both") == [hs, lead]
    assert task_targets([hs, lead], "hubspot") == [hs]
    assert task_targets([replace(hs, owner_id=None)], "auto") == []  # no owner: no task


def test_subject_placeholders_are_filled_and_nothing_else_is_evaluated() -> None:
    subject = render_subject("Call {email} ({title}) at {stage} {missing} {email.__class__}", {
        "email": "a@b.example", "title": "VP", "stage": "MQL",
    })  # fmt: skip
    assert subject == "Call a@b.example (VP) at MQL  {email.__class__}"


# --------------------------------------------------------------------------- SLA and recycle

SLA = 16
HANDED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 Berlin


def sla(now: datetime, timeline=(), status: str | None = None):  # type: ignore[no-untyped-def]
    return sla_state(
        handed_off_at=HANDED, now=now, sla_business_hours=SLA, calendar=BERLIN, timeline=timeline,
        touch_types={"meeting", "call", "email_reply"}, lead_status=status,
        touch_statuses={"open", "in_progress", "attempted_to_contact", "connected"},
    )  # fmt: skip


def test_the_sla_lapses_after_n_business_hours_without_a_sales_touch() -> None:
    assert not sla(HANDED + timedelta(hours=30)).sla_lapsed  # Tue 16:00: 14 business hours
    lapsed = sla(datetime(2026, 3, 4, 9, tzinfo=UTC))  # Wed 10:00: 16 business hours
    assert lapsed.sla_lapsed
    assert lapsed.handoff_hours == 48
    assert not lapsed.sales_touched
    call = act("call", at=HANDED + timedelta(hours=3))
    assert sla(datetime(2026, 3, 9, tzinfo=UTC), [call]).sales_touched
    assert not sla(datetime(2026, 3, 9, tzinfo=UTC), [call]).sla_lapsed
    before = act("call", at=HANDED - timedelta(hours=1))  # a call before the hand-off is no touch
    assert sla(datetime(2026, 3, 9, tzinfo=UTC), [before]).sla_lapsed
    assert not sla(datetime(2026, 3, 9, tzinfo=UTC), status="in_progress").sla_lapsed


LAPSED = {"handoff_hours": 72, "sales_touched": False, "sla_lapsed": True}


def test_a_lapsed_handoff_is_recycled_by_the_criteria_rule_and_a_touched_one_is_not() -> None:
    timeline = pricing_views(3)  # the rules still place this A-fit person at MQL
    profile = FIT_A

    def decide(sla_names):  # type: ignore[no-untyped-def]
        return evaluator().evaluate(
            person_id="p1", person=profile, timeline=timeline, current_stage="mql", now=NOW,
            handoff=Handoff(lead_status="new", stage_entered_at=NOW - timedelta(days=3), sla=sla_names),
        )  # fmt: skip

    lapsed = decide({"handoff_hours": 72, "sales_touched": False, "sla_lapsed": True})
    assert (lapsed.stage, lapsed.lead_status, lapsed.recycled_by) == ("mql", "nurture", "handoff_sla_lapsed")
    assert "recycled by handoff_sla_lapsed" in lapsed.reason
    touched = decide({"handoff_hours": 72, "sales_touched": True, "sla_lapsed": False})
    assert (touched.lead_status, touched.recycled_by) == ("new", None)
    never = decide(None)
    assert never.recycled_by is None
    verdict = evaluator().verdict(
        person=profile, timeline=timeline, current_stage="mql", now=NOW,
        handoff=Handoff(lead_status="new", sla=LAPSED),
    )  # fmt: skip
    assert verdict.recycled_by == "handoff_sla_lapsed"


def test_the_handoff_time_is_stamped_once_into_a_mapped_and_writable_property() -> None:
    from connector.handoff_step import HandoffStep, OwnerFields
    from connector.mapping.loader import load_mappings
    from connector.model import CrmRecord

    from .lifecycle_fixtures import MAPPINGS, decide

    mappings = load_mappings(MAPPINGS)
    step = HandoffStep(mappings, store=None, adapters={})  # type: ignore[arg-type]
    decision = replace(decide(FIT_A, pricing_views(3)), person_id="p1")
    assert decision.stage == "mql"
    record = CrmRecord(
        crm="hubspot", object_type="contacts", record_id="501", email="ana@acme.com",
        fields={}, owned={"handoff_at": None},
    )  # fmt: skip
    fields = OwnerFields("hubspot_owner_id", "handoff_at")
    stamped = step.stamp(None, record, fields, frozenset({"handoff_at"}), decision, ANA, NOW)
    assert stamped is not None
    assert stamped.changes == {"handoff_at": "2026-03-10T12:00:00Z"}
    assert step.stamp(None, record, fields, frozenset(), decision, ANA, NOW) is None  # not in writes
    filled = replace(record, owned={"handoff_at": "2026-01-01T00:00:00Z"})
    assert step.stamp(None, filled, fields, frozenset({"handoff_at"}), decision, ANA, NOW) is None
    assert step.stamp(None, record, fields, frozenset({"handoff_at"}), decision, None, NOW) is None

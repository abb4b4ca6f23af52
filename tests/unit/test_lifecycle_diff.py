"""Diff: write only what changed, forward only, humans' lead statuses win, owned properties only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pytest

from connector.lifecycle import FieldMap, plan_write
from connector.model import Decision, WriteIntent

from .lifecycle_fixtures import NOW, criteria, field_map

STAGES = criteria().stages
SALES = frozenset(criteria().sales_owned)


def decision(
    stage: str = "mql", lead_status: str | None = "new", owner_reason: str | None = None
) -> Decision:
    return Decision(
        person_id="p1",
        evaluated_at=NOW,
        criteria_version="v",
        stage=stage,
        computed_stage=stage,
        lead_status=lead_status,
        fit_score=50,
        fit_grade="B",
        signals={},
        trace=(),
        reason=f"{stage} by rule x",
        owner_reason=owner_reason,
    )


def plan(
    current: Mapping[str, str | None],
    *,
    stage: str = "mql",
    lead_status: str | None = "new",
    owner_id: str | None = None,
    last_written: Mapping[str, str | None] | None = None,
    fields: FieldMap | None = None,
    owner_reason: str | None = None,
) -> WriteIntent | None:
    return plan_write(
        crm="hubspot",
        object_type="contacts",
        record_id="101",
        person_id="p1",
        decision=decision(stage, lead_status, owner_reason),
        owner_id=owner_id,
        current=current,
        last_written=last_written or {},
        fields=fields or field_map(),
        stage_order=STAGES,
        sales_owned=SALES,
    )


def changes(intent: WriteIntent | None) -> dict[str, str]:
    return intent.changes if intent else {}


SYNCED = {"lifecyclestage": "marketingqualifiedlead", "hs_lead_status": "NEW", "hubspot_owner_id": "70000001"}


def test_no_op_when_crm_already_matches() -> None:
    assert plan(SYNCED, owner_id="70000001") is None


def test_intent_carries_before_values_and_reason() -> None:
    intent = plan({"lifecyclestage": "lead", "hs_lead_status": None}, last_written={})
    assert intent is not None
    assert intent.changes == {"lifecyclestage": "marketingqualifiedlead", "hs_lead_status": "NEW"}
    assert intent.before == {"lifecyclestage": "lead", "hs_lead_status": None}
    assert (intent.crm, intent.object_type, intent.record_id, intent.person_id) == (
        "hubspot",
        "contacts",
        "101",
        "p1",
    )
    assert intent.reason == "mql by rule x"


@pytest.mark.parametrize(
    ("shown", "stage", "expected"),
    [
        pytest.param(None, "lead", "lead", id="empty-none-written"),
        pytest.param("", "subscriber", "subscriber", id="empty-string-written"),
        pytest.param("lead", "mql", "marketingqualifiedlead", id="forward"),
        pytest.param("LEAD", "sql", "salesqualifiedlead", id="forward-from-differently-cased-value"),
        pytest.param("salesqualifiedlead", "mql", None, id="never-backwards"),
        pytest.param("marketingqualifiedlead", "mql", None, id="equal"),
        pytest.param("opportunity", "sql", None, id="sales-owned-current-untouched"),
        pytest.param("lead", "customer", None, id="never-writes-a-sales-owned-stage"),
        pytest.param("evangelist", "sql", None, id="unknown-custom-current-left-alone"),
        pytest.param("lead", "nurture", None, id="unmapped-decision-stage"),
    ],
)
def test_stage_forward_only(shown: str | None, stage: str, expected: str | None) -> None:
    intent = plan({"lifecyclestage": shown}, stage=stage, lead_status=None)
    assert changes(intent).get("lifecyclestage") == expected


@pytest.mark.parametrize(
    ("shown", "last_written", "status", "expected"),
    [
        pytest.param(None, {}, "new", "NEW", id="empty-written"),
        pytest.param("", {"hs_lead_status": "OPEN"}, "new", "NEW", id="cleared-by-human-is-empty"),
        pytest.param("OPEN", {"hs_lead_status": "OPEN"}, "unqualified", "UNQUALIFIED", id="ours-updated"),
        pytest.param("IN_PROGRESS", {"hs_lead_status": "NEW"}, "unqualified", None, id="human-override-wins"),
        pytest.param("IN_PROGRESS", {}, "new", None, id="never-written-and-set-by-human"),
        pytest.param("NEW", {}, "new", None, id="equal"),
        pytest.param("OPEN", {"hs_lead_status": "OPEN"}, None, None, id="decision-leaves-status-alone"),
        pytest.param("OPEN", {"hs_lead_status": "OPEN"}, "archived", None, id="unmapped-status"),
    ],
)
def test_lead_status_manual_override_wins(
    shown: str | None, last_written: dict[str, str | None], status: str | None, expected: str | None
) -> None:
    intent = plan(
        {"lifecyclestage": "marketingqualifiedlead", "hs_lead_status": shown},
        lead_status=status,
        last_written=last_written,
    )
    assert changes(intent).get("hs_lead_status") == expected


@pytest.mark.parametrize(
    ("shown", "owner_id", "expected"),
    [
        pytest.param(None, "70000002", "70000002", id="unowned"),
        pytest.param("70000001", "70000002", "70000002", id="reassigned"),
        pytest.param("70000002", "70000002", None, id="same"),
        pytest.param("70000001", None, None, id="routing-chose-nobody"),
    ],
)
def test_owner(shown: str | None, owner_id: str | None, expected: str | None) -> None:
    current = {**SYNCED, "hubspot_owner_id": shown}
    assert changes(plan(current, owner_id=owner_id)).get("hubspot_owner_id") == expected


def test_owner_reason_is_appended_only_when_owner_changes() -> None:
    intent = plan({**SYNCED, "hubspot_owner_id": None}, owner_id="70000002", owner_reason="assigned Ben")
    assert intent is not None
    assert intent.reason == "mql by rule x; owner: assigned Ben"
    intent = plan({**SYNCED, "lifecyclestage": "lead"}, owner_id="70000001", owner_reason="kept")
    assert intent is not None
    assert intent.reason == "mql by rule x"


def test_properties_outside_writes_are_never_written() -> None:
    only_stage = replace(field_map(), writes=frozenset({"lifecyclestage"}))
    intent = plan({}, owner_id="70000002", fields=only_stage)
    assert changes(intent) == {"lifecyclestage": "marketingqualifiedlead"}
    assert intent is not None
    assert set(intent.before) == {"lifecyclestage"}
    assert plan({"lifecyclestage": "marketingqualifiedlead"}, owner_id="7", fields=only_stage) is None


def test_no_lead_status_or_owner_mapping() -> None:
    bare = FieldMap(stage=field_map().stage, lead_status=None, owner_property=None, writes=field_map().writes)
    assert changes(plan({}, owner_id="70000002", fields=bare)) == {"lifecyclestage": "marketingqualifiedlead"}

"""Routing v1: keep active owners, replace archived ones, territories, round-robin, fallback."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from connector.lifecycle import RoutingOutcome, compile_routing_conditions, route
from connector.mapping.schema import Pool, Routing, RoutingRule
from connector.model import FieldValue

from .lifecycle_fixtures import routing

ANA, BEN, CHLOE, DEV, EMMA, FRANK = (f"7000000{i}" for i in range(1, 7))
ALL_ACTIVE = frozenset({ANA, BEN, CHLOE, DEV, EMMA, FRANK})


def run(
    person: Mapping[str, FieldValue],
    *,
    stage: str = "mql",
    disqualified: bool = False,
    current_owner_id: str | None = None,
    active: frozenset[str] = ALL_ACTIVE,
    pointers: Mapping[str, int] | None = None,
    config: Routing | None = None,
    context: Mapping[str, object] | None = None,
) -> RoutingOutcome:
    config = config or routing()
    return route(
        config,
        crm="hubspot",
        stage=stage,
        disqualified=disqualified,
        person=person,
        current_owner_id=current_owner_id,
        active_owner_ids=active,
        pointers=pointers or {},
        when=compile_routing_conditions(config),
        context=context,
    )


@pytest.mark.parametrize(
    ("stage", "disqualified", "reason"),
    [
        pytest.param("lead", False, "lead is not a hand-off stage", id="not-handoff-stage"),
        pytest.param("opportunity", False, "not a hand-off stage", id="sales-stage"),
        pytest.param("sql", True, "disqualified", id="disqualified"),
    ],
)
def test_no_routing_outside_handoff(stage: str, disqualified: bool, reason: str) -> None:
    outcome = run({"country": "Germany"}, stage=stage, disqualified=disqualified)
    assert (outcome.owner_id, outcome.pointer) == (None, None)
    assert reason in outcome.reason


def test_active_owner_is_kept() -> None:
    outcome = run({"country": "Germany"}, current_owner_id=BEN, pointers={"emea": 1})
    assert (outcome.owner_id, outcome.rep, outcome.pointer) == (BEN, "ben", None)
    assert "kept current owner" in outcome.reason
    assert outcome.trace[0].kind == "keep"
    assert outcome.trace[0].matched


def test_active_owner_unknown_to_routing_is_still_kept() -> None:
    outcome = run({"country": "Germany"}, current_owner_id="99999999", active=ALL_ACTIVE | {"99999999"})
    assert (outcome.owner_id, outcome.rep) == ("99999999", None)


def test_archived_owner_is_replaced() -> None:
    outcome = run({"country": "Germany"}, current_owner_id=DEV, active=ALL_ACTIVE - {DEV})
    assert (outcome.owner_id, outcome.rep, outcome.pool, outcome.rule) == (EMMA, "emma", "emea", "emea")
    assert outcome.reason.startswith(f"current owner {DEV} is archived or inactive")
    assert "skipped dev" in outcome.reason


def test_keep_existing_owner_off_routes_again() -> None:
    config = routing().model_copy(update={"keep_existing_owner": False})
    outcome = run({"country": "Germany"}, current_owner_id=BEN, config=config)
    assert (outcome.owner_id, outcome.pool) == (DEV, "emea")


@pytest.mark.parametrize(
    ("country", "pool"),
    [
        pytest.param("United States", "north_america", id="exact"),
        pytest.param("  usa ", "north_america", id="case-and-spaces"),
        pytest.param("CANADA", "north_america", id="upper"),
        pytest.param("germany", "emea", id="emea-lower"),
        pytest.param("Brazil", None, id="no-territory"),
        pytest.param(None, None, id="no-country"),
    ],
)
def test_territory_match_is_case_insensitive(country: str | None, pool: str | None) -> None:
    outcome = run({"country": country})
    assert outcome.pool == pool
    if pool is None:
        assert (outcome.owner_id, outcome.rep) == (FRANK, "frank")
        assert "no routing rule matched" in outcome.reason


def test_archived_member_is_skipped_and_traced() -> None:
    outcome = run({"country": "US"}, active=ALL_ACTIVE - {CHLOE}, pointers={"north_america": 2})
    assert (outcome.owner_id, outcome.rep) == (ANA, "ana")
    assert outcome.pointer == ("north_america", 1)
    notes = [t.note for t in outcome.trace]
    assert "skipped chloe: owner 70000003 archived or inactive" in notes
    assert "skipped chloe: owner 70000003 archived" in outcome.reason


def test_pointer_persists_across_calls() -> None:
    pointers: dict[str, int] = {}
    owners = []
    for _ in range(7):
        outcome = run({"country": "Canada"}, pointers=pointers)
        assert outcome.pointer is not None
        pool, value = outcome.pointer
        pointers[pool] = value
        owners.append(outcome.rep)
    assert owners == ["ana", "ben", "chloe", "ana", "ben", "chloe", "ana"]
    assert pointers == {"north_america": 1}


def test_pointer_beyond_a_shrunk_pool_wraps() -> None:
    outcome = run({"country": "UK"}, pointers={"emea": 7})
    assert (outcome.rep, outcome.pointer) == ("emma", ("emea", 0))


@pytest.mark.parametrize(
    ("active", "owner", "reason"),
    [
        pytest.param(
            ALL_ACTIVE - {DEV, EMMA}, FRANK, "pool emea has no active member", id="pool-all-inactive"
        ),
        pytest.param(
            ALL_ACTIVE - {DEV, EMMA, FRANK}, None, "fallback frank cannot own records", id="fallback-inactive"
        ),
    ],
)
def test_fallback(active: frozenset[str], owner: str | None, reason: str) -> None:
    outcome = run({"country": "France"}, active=active)
    assert outcome.owner_id == owner
    assert outcome.pointer is None
    assert reason in outcome.reason


def test_member_without_an_id_in_this_crm_is_skipped() -> None:
    base = routing()
    no_salesforce = {
        key: rep.model_copy(update={"salesforce_user_id": None}) for key, rep in base.reps.items()
    }
    outcome = route(
        base.model_copy(update={"reps": no_salesforce}),
        crm="salesforce",
        stage="sql",
        disqualified=False,
        person={"country": "France"},
        current_owner_id=None,
        active_owner_ids=ALL_ACTIVE,
        pointers={},
    )
    assert outcome.owner_id is None
    assert "skipped dev: no salesforce id" in outcome.reason


def test_rule_when_condition_and_errors() -> None:
    config = routing().model_copy(
        update={
            "pools": {**routing().pools, "vip": Pool(members=["frank"])},
            "rules": [
                RoutingRule(name="broken", pool="vip", when='person.employees > "x"'),
                RoutingRule(name="enterprise", pool="vip", when="person.employees >= 1000"),
                *routing().rules,
            ],
        }
    )
    big = run(
        {"country": "Germany", "employees": 5000}, config=config, context={"person": {"employees": 5000}}
    )
    assert (big.rule, big.owner_id) == ("enterprise", FRANK)
    assert big.trace[0].note.startswith("evaluation error")
    small = run({"country": "Germany", "employees": 10}, config=config, context={"person": {"employees": 10}})
    assert small.rule == "emea"
    assert any(t.name == "enterprise" and t.note == "when: condition is false" for t in small.trace)

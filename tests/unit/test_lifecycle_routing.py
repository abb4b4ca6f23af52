"""Routing: keep active owners, replace archived ones, account owners, territories and segments,
pool turns (round-robin, weighted, daily caps) with the path traced, fallback."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from connector.engine import routing_day
from connector.lifecycle import RoutingOutcome, compile_routing_conditions, pick_member, route, settle
from connector.lifecycle.routing import member_blocker
from connector.mapping.schema import Band, Pool, Routing, RoutingRule
from connector.model import Assignment, FieldValue, PoolState

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
    states: dict[str, PoolState] | None = None,
    config: Routing | None = None,
    context: Mapping[str, object] | None = None,
    crm: str = "hubspot",
    domain_owners: Mapping[str, str] | None = None,
) -> RoutingOutcome:
    """`route`, then a pool turn as the store takes it (state kept in `states`), then `settle`."""
    config = config or routing()
    states = states if states is not None else {p: PoolState(v) for p, v in (pointers or {}).items()}
    outcome = route(
        config,
        crm=crm,  # type: ignore[arg-type]
        stage=stage,
        disqualified=disqualified,
        person=person,
        current_owner_id=current_owner_id,
        active_owner_ids=active,
        when=compile_routing_conditions(config),
        context=context,
        domain_owners=domain_owners,
    )
    if outcome.claim is None:
        return outcome
    name = outcome.claim.pool
    pool = config.pools[name]
    crms = {crm: active}
    blocked = {m: why for m in pool.members if (why := member_blocker(config, m, crms)) is not None}  # type: ignore[arg-type]
    state = states.get(name, PoolState())
    pick = pick_member(pool, state, blocked)
    assignment = None
    if pick.rep is not None:
        counts = dict(state.counts)
        counts[pick.rep] = counts.get(pick.rep, 0) + 1
        states[name] = PoolState(pick.pointer, pick.current, counts)
        assignment = Assignment("p1", pick.rep, name, outcome.claim.rule, "2026-01-05")
    return settle(
        config,
        outcome,
        crm=crm,
        active_owner_ids=active,
        assignment=assignment,
        pick=pick,  # type: ignore[arg-type]
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
    assert (outcome.owner_id, outcome.claim) == (None, None)
    assert reason in outcome.reason


def test_active_owner_is_kept() -> None:
    outcome = run({"country": "Germany"}, current_owner_id=BEN, pointers={"emea": 1})
    assert (outcome.owner_id, outcome.rep, outcome.claim) == (BEN, "ben", None)
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
    states = {"north_america": PoolState(2)}
    outcome = run({"country": "US"}, active=ALL_ACTIVE - {CHLOE}, states=states)
    assert (outcome.owner_id, outcome.rep) == (ANA, "ana")
    assert states["north_america"].pointer == 1
    verdicts = [(t.name, t.matched, t.note) for t in outcome.trace if t.name.startswith("north_america/")]
    assert verdicts == [
        ("north_america/chloe", False, "archived in hubspot (owner 70000003)"),
        ("north_america/ana", True, "picked"),
        ("north_america/ben", False, "not this turn"),
    ]
    assert outcome.skipped == (("chloe", "archived in hubspot (owner 70000003)"),)
    assert "skipped chloe: archived in hubspot" in outcome.reason


def test_pointer_persists_across_calls() -> None:
    states: dict[str, PoolState] = {}
    owners = [run({"country": "Canada"}, states=states).rep for _ in range(7)]
    assert owners == ["ana", "ben", "chloe", "ana", "ben", "chloe", "ana"]
    assert states["north_america"].pointer == 1
    assert dict(states["north_america"].counts) == {"ana": 3, "ben": 2, "chloe": 2}


def test_pointer_beyond_a_shrunk_pool_wraps() -> None:
    states = {"emea": PoolState(7)}
    outcome = run({"country": "UK"}, states=states)
    assert (outcome.rep, states["emea"].pointer) == ("emma", 0)


@pytest.mark.parametrize(
    ("active", "owner", "reason"),
    [
        pytest.param(
            ALL_ACTIVE - {DEV, EMMA}, FRANK, "pool emea has nobody eligible", id="pool-all-inactive"
        ),
        pytest.param(
            ALL_ACTIVE - {DEV, EMMA, FRANK},
            None,
            "fallback frank cannot own hubspot records",
            id="fallback-inactive",
        ),
    ],
)
def test_fallback(active: frozenset[str], owner: str | None, reason: str) -> None:
    outcome = run({"country": "France"}, active=active)
    assert outcome.owner_id == owner
    assert outcome.pool is None
    assert reason in outcome.reason
    assert {m for m, _why in outcome.skipped} == {"dev", "emma"}


def test_member_without_an_id_in_this_crm_is_skipped() -> None:
    base = routing()
    no_salesforce = {
        key: rep.model_copy(update={"salesforce_user_id": None}) for key, rep in base.reps.items()
    }
    outcome = run(
        {"country": "France"},
        stage="sql",
        config=base.model_copy(update={"reps": no_salesforce}),
        crm="salesforce",
    )
    assert outcome.owner_id is None
    assert ("dev", "no salesforce id") in outcome.skipped
    assert "fallback frank cannot own salesforce records (has no id there)" in outcome.reason


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


def _with(rules: list[RoutingRule], **pools: Pool) -> Routing:
    base = routing()
    return base.model_copy(update={"rules": rules, "pools": {**base.pools, **pools}})


ACCOUNT = RoutingRule(name="account", kind="account_owner", owner_field="company_owner")
SEGMENT = RoutingRule(name="enterprise", pool="vip", match={"employees": Band(min=1000)})
MID = RoutingRule(name="mid", pool="emea", match={"employees": Band(min=200, max=999)})
STATES = RoutingRule(name="west", pool="north_america", match={"state": ["CA", "California", "WA"]})
LISTS = {"lists": {"free_mail_domains": ["gmail.com"]}}


@pytest.mark.parametrize(
    ("person", "rule", "owner"),
    [
        pytest.param({"employees": 5000}, "enterprise", FRANK, id="band-open-top"),
        pytest.param({"employees": "999"}, "mid", DEV, id="band-upper-bound-included-text"),
        pytest.param({"employees": 200}, "mid", DEV, id="band-lower-bound-included"),
        pytest.param({"employees": 199}, None, FRANK, id="below-every-band"),
        pytest.param({"employees": "lots"}, None, FRANK, id="not-a-number"),
        pytest.param({"state": " california "}, "west", ANA, id="state-list-any-case"),
    ],
)
def test_segment_bands_and_state_lists(person: dict[str, FieldValue], rule: str | None, owner: str) -> None:
    config = _with([SEGMENT, MID, STATES], vip=Pool(members=["frank"]))
    outcome = run(person, config=config)
    assert (outcome.rule, outcome.owner_id) == (rule, owner)
    if rule is None:
        assert "no routing rule matched" in outcome.reason
        assert any("not in 200 <= value <= 999" in t.note for t in outcome.trace)


@pytest.mark.parametrize(
    ("person", "domains", "owner", "note"),
    [
        pytest.param({"company_owner": BEN}, {}, BEN, "associated company's owner", id="company-owner"),
        pytest.param(
            {"company_owner": "005Dn00000Rep05IAB"}, {}, EMMA, "associated company's owner", id="other-crm-id"
        ),
        pytest.param(
            {"email_domain": "acme.com"}, {"acme.com": BEN}, BEN, "company domain acme.com", id="domain"
        ),
        pytest.param(
            {"email_domain": "gmail.com", "country": "UK"},
            {"gmail.com": BEN},
            DEV,
            "free-mail",
            id="free-mail",
        ),
        pytest.param(
            {"company_owner": CHLOE, "country": "UK"}, {}, DEV, "archived or inactive", id="owner-archived"
        ),
        pytest.param(
            {"email_domain": "x.io", "country": "UK"}, {}, DEV, "no company with domain", id="no-company"
        ),
    ],
)
def test_account_owner_rule(
    person: dict[str, FieldValue], domains: dict[str, str], owner: str, note: str
) -> None:
    config = _with([ACCOUNT, *routing().rules])
    outcome = run(person, config=config, context=LISTS, domain_owners=domains, active=ALL_ACTIVE - {CHLOE})
    assert outcome.owner_id == owner
    account = next(t for t in outcome.trace if t.name == "account")
    assert note in account.note
    assert account.matched == (outcome.rule == "account")


def test_account_owner_in_salesforce_maps_through_reps() -> None:
    sf_active = frozenset({"005Dn00000Rep02IAB"})
    outcome = run({"company_owner": BEN}, config=_with([ACCOUNT]), crm="salesforce", active=sf_active)
    assert (outcome.owner_id, outcome.rep, outcome.rule) == ("005Dn00000Rep02IAB", "ben", "account")


def test_weighted_pool_shares_follow_weights_without_bursts() -> None:
    pool = Pool(
        members=["ana", "ben", "chloe"], strategy="weighted", weights={"ana": 5, "ben": 3, "chloe": 2}
    )
    state = PoolState()
    picks = []
    for _ in range(100):
        pick = pick_member(pool, state, {})
        assert pick.rep is not None
        picks.append(pick.rep)
        state = PoolState(pick.pointer, pick.current)
    assert (picks.count("ana"), picks.count("ben"), picks.count("chloe")) == (50, 30, 20)
    assert (
        max(len(run) for run in "".join(p[0] for p in picks).replace("b", " ").replace("c", " ").split()) <= 2
    )


def test_daily_cap_passes_a_member_over_and_the_trace_says_so() -> None:
    pool = Pool(members=["ana", "ben"], daily_cap=3, caps={"ben": 1})
    pick = pick_member(pool, PoolState(1, {}, {"ben": 1, "ana": 0}), {})
    assert pick.rep == "ana"
    assert pick.considered == (("ben", "daily cap reached (1 of 1 today)"), ("ana", "picked"))
    assert pick.pointer == 1  # past ana, so ben is first again tomorrow
    none = pick_member(pool, PoolState(0, {}, {"ana": 3, "ben": 1}), {})
    assert none.rep is None
    assert [v for _m, v in none.considered] == [
        "daily cap reached (3 of 3 today)",
        "daily cap reached (1 of 1 today)",
    ]


def test_routing_day_uses_the_configured_timezone() -> None:
    from datetime import UTC, datetime

    late = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)
    assert routing_day(routing(), late).isoformat() == "2026-01-05"
    berlin = routing().model_copy(update={"timezone": "Europe/Berlin"})
    assert routing_day(berlin, late).isoformat() == "2026-01-06"


def test_an_earlier_assignment_is_reused_without_a_new_turn() -> None:
    config = routing()
    outcome = route(
        config, crm="hubspot", stage="sql", disqualified=False, person={"country": "US"},
        current_owner_id=None, active_owner_ids=ALL_ACTIVE,
    )  # fmt: skip
    earlier = Assignment("p1", "ben", "north_america", "north_america", "2026-01-02", reused=True)
    final = settle(config, outcome, crm="hubspot", active_owner_ids=ALL_ACTIVE, assignment=earlier, pick=None)
    assert (final.owner_id, final.pool) == (BEN, "north_america")
    assert "taken for this person on 2026-01-02, so no new turn" in final.reason

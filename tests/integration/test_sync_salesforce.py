"""Full passes over real HTTP(S) with both CRMs: HubSpot's SDK and simple-salesforce on loopback."""

from __future__ import annotations

import math
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sf_fixtures import REPO, Clock, add_lead, add_user

from connector.cli import main
from connector.crm.factory import build_adapters, salesforce_login, salesforce_session
from connector.demo import check_expected
from connector.engine import Engine
from connector.errors import ApiShareReached, AuthError, ExitCode
from connector.mapping.loader import load_mappings
from connector.sandbox.salesforce_demo import (
    CONSUMER_KEY,
    INTEGRATION_PASSWORD,
    INTEGRATION_SECURITY_TOKEN,
    INTEGRATION_USERNAME,
    check_salesforce,
    register_connected_app,
)
from connector.sandbox.salesforce_store import SalesforceStore
from connector.settings import JwtAuth, PasswordAuth, Settings
from connector.state.store import StateStore

from .conftest import Joint

pytestmark = pytest.mark.integration


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_one_decision_per_person_written_to_both_crms(joint: Joint) -> None:
    report = joint.engine().sync()
    demo = joint.demo
    assert report.failures == []
    assert [
        f"{m.outcome.email}: {m.field}" for m in check_expected(demo.hubspot, demo.hubspot_expected)
    ] == []
    assert [f"{m.expected.email} {m.expected.persona}: {m.field}" for m in check_salesforce(demo)] == []

    # a person with HubSpot web activity and a Salesforce call: one person, one decision, both written
    cross = [e for e in demo.salesforce_expected if e.persona == "cross_web_and_call"]
    assert cross
    for expected in cross:
        pid = joint.state.find_person(expected.record_id)
        assert pid is not None
        records = joint.state.records_of(pid)
        assert {crm for crm, _obj, _id in records} == {"hubspot", "salesforce"}
        decision = joint.state.decision(pid)
        assert decision is not None
        assert decision.stage == "sql"
        assert {row["crm"] for row in joint.state.audit_rows(person_id=pid)} == {"hubspot", "salesforce"}
        sources = {a.source for a in joint.state.timelines([pid])[pid]}
        assert {"hubspot:events", "salesforce:Task"} <= sources

    # converted leads are never the target of a write
    converted = set(demo.snapshots)
    sent = {rec["id"] for r in demo.salesforce.record_writes() for rec in (r.body or {}).get("records", [])}
    assert converted
    assert not converted & sent


def test_people_joined_only_by_hubspots_salesforce_link(joint: Joint) -> None:
    joint.engine().sync()
    linked = [e for e in joint.demo.salesforce_expected if e.persona == "cross_linked_meeting"]
    assert linked
    for expected in linked:
        row = joint.demo.salesforce.records["Lead"][expected.record_id]
        contact_id = next(
            cid
            for cid, props in joint.demo.hubspot.contacts.items()
            if props.get("salesforceleadid") == row["Id"]
        )
        contact = joint.demo.hubspot.contacts[contact_id]
        assert str(contact["email"]).strip().lower() != str(row["Email"]).strip().lower()
        assert joint.state.find_person(row["Id"]) == joint.state.find_person(contact_id)
        assert contact["lifecyclestage"] == "salesqualifiedlead"
        assert row["Status"] == "Sales Accepted"


def test_a_second_sync_sends_no_write_to_either_crm(joint: Joint) -> None:
    engine = joint.engine()
    engine.sync()
    hubspot_writes, salesforce_writes = len(joint.demo.hubspot.writes()), len(joint.demo.salesforce.writes())
    assert hubspot_writes > 0
    assert salesforce_writes > 0
    second = engine.sync()
    assert second.counts["written"] == 0
    assert len(joint.demo.hubspot.writes()) == hubspot_writes
    assert len(joint.demo.salesforce.writes()) == salesforce_writes


# --------------------------------------------------------------------------- Salesforce alone


@pytest.fixture
def salesforce_only(tmp_path: Path) -> Path:
    folder = tmp_path / "sf-mappings"
    folder.mkdir()
    for name in ("criteria.yaml", "routing.yaml", "salesforce.yaml"):
        shutil.copy(REPO / "mappings" / name, folder / name)
    return folder


def _session_settings(sf_sandbox, tmp_path: Path, **extra: object) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(
        state_url=f"sqlite:///{tmp_path / 'sf-state.db'}",
        salesforce_auth="session",
        salesforce_instance_url=sf_sandbox.server.url,
        salesforce_session_id=SecretStr(sf_sandbox.store.session_id),
        salesforce_ca_bundle=sf_sandbox.ca_file,
        **extra,
    )


def _kind(path: str) -> str:
    if "/composite/sobjects" in path:
        return "write"
    if path.endswith("/limits"):
        return "limits"
    return "query"


def _soql_object(request) -> str:  # type: ignore[no-untyped-def]
    q = request.query.get("q", [""])[0]
    return q.split(" FROM ", 1)[1].split(" ", 1)[0] if " FROM " in q else "(next page)"


LEADS = 4_100  # three query pages of up to 2,000: the last reached by following nextRecordsUrl twice


def test_api_calls_for_three_pages_of_leads_are_the_pages_needed(
    sf_sandbox, sf_clock: Clock, salesforce_only: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Reads: limits 1 + User 1 + queues 1 + Campaign 1 + Lead ceil(LEADS/2000) + Contact 1 + one query
    per activity object (Task, Event, CampaignMember). Writes: ceil(changed / 200)."""
    store = sf_sandbox.store
    owner = add_user(store, "Ana")
    changed = 450  # competitors: the disqualifier sets Marketing Status "Unqualified"
    for i in range(LEADS):
        domain = "rivalsoft.com" if i < changed else "example-co.com"
        add_lead(
            store,
            owner["Id"],
            at=sf_clock.now - timedelta(days=1),
            Email=f"lead{i}@{domain}",
            Status="Nurture",
        )
    settings = _session_settings(sf_sandbox, tmp_path)
    mappings = load_mappings(salesforce_only)
    state = StateStore.open(settings.state_url)
    try:
        engine = Engine(mappings, state, build_adapters(settings, mappings), clock=lambda: sf_clock.now)
        sf_clock.tick(60)  # writes happen after the run started
        report = engine.sync()
        assert report.failures == []
        kinds = [_kind(r.path) for r in store.requests]
        objects = [_soql_object(r) for r in store.requests if _kind(r.path) == "query"]
        assert kinds.count("write") == math.ceil(changed / 200)
        assert kinds.count("limits") == 1
        pages = math.ceil(LEADS / 2000)
        assert objects.count("Lead") == 1
        assert objects.count("(next page)") == pages - 1
        assert sorted(set(objects) - {"(next page)"}) == [
            "Campaign", "CampaignMember", "Contact", "Event", "Group", "Lead", "Task", "User",
        ]  # fmt: skip
        assert len(store.requests) == 1 + 7 + pages + math.ceil(changed / 200)
        assert report.api_calls == len(store.requests)
        unqualified = [r for r in store.records["Lead"].values() if r["Marketing_Status__c"] == "Unqualified"]
        assert len(unqualified) == changed

        before = len(store.requests)
        sf_clock.tick(60)  # the next run starts after our writes: it reads them back, once
        second = engine.sync()
        assert second.counts["written"] == 0
        new = store.requests[before:]
        assert [_kind(r.path) for r in new].count("write") == 0
        assert len(new) == 1 + 7 + math.ceil(changed / 2000)
        lead_pages = [r for r in new if _soql_object(r) == "Lead"]
        assert [r.response["totalSize"] for r in lead_pages] == [changed]  # only the leads we wrote
    finally:
        state.close()


def test_api_share_stops_the_run_cleanly_and_the_next_run_resumes(
    sf_sandbox, sf_clock: Clock, salesforce_only: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    store = sf_sandbox.store
    owner = add_user(store, "Ana")
    for i in range(2100):  # two pages of leads
        add_lead(store, owner["Id"], at=sf_clock.now - timedelta(days=1), Email=f"q{i}@example-co.com")
    # 16 remaining; a 0.5 share may use 8: limits, users, queues, tasks, events, campaigns, campaign
    # members, the first page of leads — and not the second
    store.daily_api_limit, store.api_used = 1000, 984
    settings = _session_settings(sf_sandbox, tmp_path, salesforce_api_share=0.5)
    mappings = load_mappings(salesforce_only)
    state = StateStore.open(settings.state_url)
    try:
        engine = Engine(mappings, state, build_adapters(settings, mappings), clock=lambda: sf_clock.now)
        with pytest.raises(ApiShareReached) as stopped:
            engine.sync()
        assert stopped.value.exit_code == ExitCode.PARTIAL == 1
        assert state.runs(1)[0].status == "partial"
        cursor = state.cursors().get("salesforce:Lead")
        assert cursor is not None  # the first 2,000 leads' page committed its cursor
        assert store.api_used == 992  # exactly the share: 8 of the 16 left
        assert not any(r.status == 403 for r in store.requests)

        store.api_used = 0  # a new day
        engine = Engine(mappings, state, build_adapters(settings, mappings), clock=lambda: sf_clock.now)
        engine.sync()
        lead_queries = [r for r in store.requests if "FROM Lead" in r.query.get("q", [""])[0]]
        assert "SystemModstamp >" in lead_queries[-1].query["q"][0]  # resumed from the saved cursor
        assert sum(state.stage_counts().values()) == 2100  # every lead decided, across the two runs
    finally:
        state.close()


# --------------------------------------------------------------------------- login modes


def test_jwt_and_password_logins_and_their_failures(sf_sandbox) -> None:  # type: ignore[no-untyped-def]
    store = sf_sandbox.store
    store.insert(
        "User",
        {
            "Username": INTEGRATION_USERNAME,
            "LastName": "Integration",
            "Email": INTEGRATION_USERNAME,
            "IsActive": True,
        },
        at=datetime.now(UTC),
    )
    store.passwords[INTEGRATION_USERNAME] = INTEGRATION_PASSWORD + INTEGRATION_SECURITY_TOKEN
    key = register_connected_app(store)
    session = salesforce_session(_session_settings(sf_sandbox, Path("/tmp")))
    url = sf_sandbox.server.url
    jwt_auth = JwtAuth(
        username=INTEGRATION_USERNAME,
        consumer_key=SecretStr(CONSUMER_KEY),
        private_key=SecretStr(key),
        login_url=url,
    )
    password_auth = PasswordAuth(
        username=INTEGRATION_USERNAME,
        password=SecretStr(INTEGRATION_PASSWORD),
        security_token=SecretStr(INTEGRATION_SECURITY_TOKEN),
        login_url=url,
    )
    for auth in (jwt_auth, password_auth):
        client = salesforce_login(auth, session, "59.0")
        assert client.query("SELECT Id FROM User")["totalSize"] == 1
    with pytest.raises(AuthError, match="login failed"):
        salesforce_login(password_auth.model_copy(update={"password": SecretStr("wrong")}), session, "59.0")
    other_key = register_connected_app(SalesforceStore())  # signed with a key the org does not trust
    with pytest.raises(AuthError, match="login failed"):
        salesforce_login(jwt_auth.model_copy(update={"private_key": SecretStr(other_key)}), session, "59.0")


# --------------------------------------------------------------------------- CLI


def test_cli_sync_and_validate_online_with_session_auth(
    sf_sandbox, salesforce_only: Path, tmp_path: Path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    store = sf_sandbox.store
    owner = add_user(store, "Ana")
    add_lead(store, owner["Id"], Email="o'hara@example-co.com", Company="O'Hara's \"Best\" Bakery")
    for name, value in {
        "CONNECTOR_MAPPINGS_DIR": str(salesforce_only),
        "CONNECTOR_STATE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "CONNECTOR_SALESFORCE_AUTH": "session",
        "CONNECTOR_SALESFORCE_INSTANCE_URL": sf_sandbox.server.url,
        "CONNECTOR_SALESFORCE_SESSION_ID": store.session_id,
        "CONNECTOR_SALESFORCE_CA_BUNDLE": str(sf_sandbox.ca_file),
        "REQUESTS_CA_BUNDLE": "/nonexistent/ca.pem",  # must not override the configured CA
    }.items():
        monkeypatch.setenv(name, value)
    assert run_cli("sync") == 0
    assert run_cli("validate", "--online") == 0
    assert "Online: Salesforce mapping matches" in capsys.readouterr().out

    mapping = salesforce_only / "salesforce.yaml"
    text = mapping.read_text()
    text = text.replace("title:        {field: Title}", "title:        {field: Titel}", 1)
    text = text.replace("mql: Marketing Qualified", "mql: Marketing Qualfied", 1)
    mapping.write_text(text)
    assert run_cli("validate", "--online") == 2
    err = capsys.readouterr().err
    lines = text.splitlines()
    title_line = next(i for i, line in enumerate(lines, 1) if "{field: Titel}" in line)
    mql_line = next(i for i, line in enumerate(lines, 1) if "Marketing Qualfied" in line)
    assert f"salesforce.yaml:{title_line}:" in err
    assert "Lead has no field 'Titel'" in err
    assert "Title" in err  # did you mean
    assert f"salesforce.yaml:{mql_line}:" in err
    assert "'Marketing Qualfied' is not a value of the Lead.Status picklist" in err
    assert "Marketing Qualified" in err


def test_plan_writes_nothing_and_explain_merges_both_crms(joint: Joint) -> None:
    engine = joint.engine()
    planned = engine.sync(dry_run=True)
    assert planned.intents
    assert {i.crm for i in planned.intents} == {"hubspot", "salesforce"}
    assert joint.demo.hubspot.writes() == []
    assert joint.demo.salesforce.writes() == []

    engine.sync()
    expected = next(e for e in joint.demo.salesforce_expected if e.persona == "cross_web_and_call")
    result = engine.explain(expected.record_id)
    assert result is not None
    assert result.decision.stage == "sql"
    assert "sales_touches_14d" in result.decision.reason
    assert result.decision.signals["sales_touches_14d"] >= 1  # the Salesforce call
    assert result.decision.signals["interactions_30d"] >= 4  # plus the HubSpot page views


def test_leases_are_per_crm_account_and_object(joint: Joint, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_SALESFORCE_ACCOUNT", "00D000000000001EAA")
    assert Settings().salesforce_account == "00D000000000001EAA"
    mappings = load_mappings(REPO / "mappings")
    engine = Engine(
        mappings,
        joint.state,
        build_adapters(joint.settings, mappings),
        accounts={"hubspot": "portal-7", "salesforce": "00D000000000001EAA"},
    )
    scopes = engine.lease_scopes()
    assert "hubspot:portal-7:contacts" in scopes
    assert {s for s in scopes if s.startswith("salesforce:")} == {
        "salesforce:00D000000000001EAA:Lead",
        "salesforce:00D000000000001EAA:Contact",
    }


def test_an_owner_changed_by_hand_in_one_crm_is_listed_as_drift(
    joint: Joint, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rep reassigned in HubSpot only: the connector keeps an active owner, so the CRMs now
    disagree; `status` lists the person with each CRM's rep, and the gauge counts them."""
    joint.settings = joint.settings.model_copy(update={"hubspot_search_lag": 0.0})
    first = joint.engine().sync()
    before = {d.person_id for d in joint.state.drift()}
    assert first.drift_people == len(before)
    cross = next(e for e in joint.demo.salesforce_expected if e.persona == "cross_web_and_call")
    pid = joint.state.find_person(cross.record_id)
    assert pid is not None
    assert pid not in before
    contact_id = next(rid for crm, _obj, rid in joint.state.records_of(pid) if crm == "hubspot")
    contact = joint.demo.hubspot.contacts[contact_id]
    reps = load_mappings(REPO / "mappings").routing.reps
    rep_of = {rep.hubspot_owner_id: key for key, rep in reps.items()}
    mine = rep_of[contact["hubspot_owner_id"]]
    other = next(key for key in ("ana", "ben", "dev") if key != mine)
    contact["hubspot_owner_id"] = reps[other].hubspot_owner_id  # a rep changed it by hand
    contact["lastmodifieddate"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    second = joint.engine().sync()
    drift = {d.person_id: d for d in joint.state.drift()}
    assert set(drift) == before | {pid}
    assert second.drift_people == len(drift)
    assert drift[pid].fields == ("owner",)
    assert drift[pid].owners == {"hubspot": other, "salesforce": mine}
    assert drift[pid].stages == {"hubspot": "sql", "salesforce": "sql"}

    monkeypatch.setenv("CONNECTOR_STATE_URL", joint.settings.state_url)
    assert run_cli("status", "--json") == 0
    import json

    listed = {d["person_id"]: d for d in json.loads(capsys.readouterr().out)["drift"]}
    assert listed[pid]["owners"] == {"hubspot": other, "salesforce": mine}
    assert listed[pid]["email"] == joint.state.person_email(pid)
    assert run_cli("status") == 0
    assert f"{len(drift)} people differ" in capsys.readouterr().out

    # put back by hand: the next run that reads the person clears the row
    contact["hubspot_owner_id"] = reps[mine].hubspot_owner_id
    contact["lastmodifieddate"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    joint.engine().sync()
    assert pid not in {d.person_id for d in joint.state.drift()}


def test_a_backfill_in_two_shards_covers_both_crms(joint: Joint) -> None:
    """`backfill` reads Salesforce too: two shards, one after the other, leave both CRMs as one
    sync would (the demo's ground truth), and split the Salesforce rows between them."""
    from connector.lifecycle.sharding import Shard

    settings = joint.settings.model_copy(update={"hubspot_search_lag": 0})
    mappings = load_mappings(REPO / "mappings")
    since = datetime(2000, 1, 1, tzinfo=UTC)
    reports = [
        Engine(mappings, joint.state, build_adapters(settings, mappings)).backfill(
            since=since, shard=Shard(index, 2)
        )
        for index in range(2)
    ]
    demo = joint.demo
    assert [f"{m.expected.email} {m.expected.persona}: {m.field}" for m in check_salesforce(demo)] == []
    assert [
        f"{m.outcome.email}: {m.field}" for m in check_expected(demo.hubspot, demo.hubspot_expected)
    ] == []
    assert all(r.counts["records_read"] > 0 for r in reports)
    soql = [r for r in demo.salesforce.requests if "/query" in r.path]
    assert any("FROM Lead" in str(r.query) for r in soql)
    scopes = {s for s in joint.state.cursors() if s.startswith("backfill:")}
    assert any(s.endswith(":salesforce:Lead") for s in scopes)
    assert any(s.endswith(":salesforce:Contact") for s in scopes)

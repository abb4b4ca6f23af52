"""`connector demo` and `connector sandbox`: the whole job on the local emulator, no credentials.

The demo generates people whose expected stage and owner were written down with the data (not
computed by the engine), runs a real sync over HTTP through the real SDK, and checks the CRM
records against those expectations — so a new user sees the job work and can trust the result.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr
from rich.console import Console

from connector.crm.factory import build_adapters
from connector.engine import Engine, RunReport
from connector.errors import ConfigError
from connector.lifecycle.routing import routing_path
from connector.mapping.loader import load_mappings
from connector.report import owner_label, print_summary
from connector.sandbox import handoff_demo
from connector.sandbox.demo_data import ExpectedOutcome
from connector.sandbox.hubspot_app import HubSpotEmulator
from connector.sandbox.hubspot_store import HubSpotStore
from connector.sandbox.salesforce_app import SalesforceEmulator
from connector.sandbox.salesforce_demo import (
    CONSUMER_KEY,
    INTEGRATION_USERNAME,
    JointDemo,
    SfMismatch,
    build_joint_demo,
    check_salesforce,
    register_connected_app,
)
from connector.sandbox.server import TestCertificates, serve_in_thread
from connector.settings import Settings
from connector.state.store import StateStore


@dataclass(frozen=True)
class Mismatch:
    outcome: ExpectedOutcome
    field: str
    expected: str
    actual: str | None


def check_expected(store: HubSpotStore, outcomes: list[ExpectedOutcome]) -> list[Mismatch]:
    """Compare the emulator's records with the ground truth generated alongside the data."""
    problems: list[Mismatch] = []
    for o in outcomes:
        props = store.contacts.get(o.contact_id, {})
        stage = props.get("lifecyclestage")
        if stage != o.lifecyclestage:
            problems.append(Mismatch(o, "lifecyclestage", o.lifecyclestage, stage))
        status = props.get("hs_lead_status") or None
        if status != o.hs_lead_status:
            problems.append(Mismatch(o, "hs_lead_status", str(o.hs_lead_status), status))
        owner = props.get("hubspot_owner_id") or None
        if o.owner_pool:
            if owner not in o.owner_pool:
                problems.append(Mismatch(o, "hubspot_owner_id", "one of " + "/".join(o.owner_pool), owner))
        elif owner != o.owner:
            problems.append(Mismatch(o, "hubspot_owner_id", str(o.owner), owner))
    return problems


def serve_sandbox(console: Console, *, port: int, people: int, seed: int) -> None:
    """Serve both emulators with the joint demo data until Ctrl-C or SIGTERM; prints how to connect.

    HubSpot on `port`, Salesforce (TLS, with a throwaway CA written to a temporary file) on `port + 1`.
    """
    joint = build_joint_demo(datetime.now(UTC), seed=seed, people=people)
    store = joint.hubspot
    certs = TestCertificates()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sf_port = port + 1 if port else 0
    with (
        tempfile.TemporaryDirectory(prefix="connector-sandbox-") as tmp,
        serve_in_thread(HubSpotEmulator(store), port=port) as server,
        serve_in_thread(
            SalesforceEmulator(joint.salesforce), port=sf_port, ssl_context=certs.server_context()
        ) as sf_server,
    ):
        ca = certs.write_ca(Path(tmp) / "sandbox-ca.pem")
        console.print(f"HubSpot sandbox with {len(store.contacts)} demo contacts on {server.url}")
        leads = len(joint.salesforce.records.get("Lead", {}))
        console.print(f"Salesforce sandbox with {leads} demo leads on {sf_server.url}")
        console.print("Point the connector at it:")
        console.print(f"  export CONNECTOR_HUBSPOT_BASE_URL={server.url}")
        console.print(f"  export CONNECTOR_HUBSPOT_TOKEN={store.access_token}")
        console.print("  export CONNECTOR_SALESFORCE_AUTH=session")
        console.print(f"  export CONNECTOR_SALESFORCE_INSTANCE_URL={sf_server.url}")
        console.print(f"  export CONNECTOR_SALESFORCE_SESSION_ID={joint.salesforce.session_id}")
        console.print(f"  export CONNECTOR_SALESFORCE_CA_BUNDLE={ca}")
        console.print("Ctrl-C stops it.", end="\n")
        sys.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


def run_demo(
    console: Console, settings: Settings, *, people: int, seed: int, state_path: Path | None
) -> bool:
    """Run the demo on both emulators; True when every record ended as the ground truth says."""
    if not settings.mappings_dir.is_dir():
        raise ConfigError(
            f"CONNECTOR_MAPPINGS_DIR: folder {settings.mappings_dir} not found; run the demo from the "
            "repository root or pass --mappings PATH"
        )
    mappings = load_mappings(settings.mappings_dir)
    if mappings.hubspot is None:
        raise ConfigError(f"{settings.mappings_dir}/hubspot.yaml is missing")
    now = datetime.now(UTC)
    joint = build_joint_demo(now, seed=seed, people=people)
    store, outcomes = joint.hubspot, joint.hubspot_expected
    with_sf = mappings.salesforce is not None
    certs = TestCertificates()
    with (
        tempfile.TemporaryDirectory(prefix="connector-demo-") as tmp,
        serve_in_thread(HubSpotEmulator(store)) as server,
        serve_in_thread(
            SalesforceEmulator(joint.salesforce), ssl_context=certs.server_context()
        ) as sf_server,
    ):
        db = state_path or Path(tmp) / "demo-state.db"
        update: dict[str, object] = {
            "hubspot_base_url": server.url,
            "hubspot_token": _secret(store.access_token),
            "state_url": f"sqlite:///{db}",
        }
        if with_sf:
            update |= {
                "salesforce_auth": "jwt",
                "salesforce_username": INTEGRATION_USERNAME,
                "salesforce_consumer_key": _secret(CONSUMER_KEY),
                "salesforce_private_key": _secret(register_connected_app(joint.salesforce)),
                "salesforce_login_url": sf_server.url,
                "salesforce_ca_bundle": certs.write_ca(Path(tmp) / "sandbox-ca.pem"),
                "salesforce_private_key_file": None,
            }
        demo_settings = Settings(**{**settings.model_dump(), **update})
        engagements = sum(len(v) for v in store.engagements.values())
        console.print(
            f"[bold]Sandbox[/bold]: HubSpot emulator on {server.url} with {len(store.contacts)} demo "
            f"contacts, {len(store.events)} web events and {engagements} engagements."
        )
        if with_sf:
            org = joint.salesforce.records
            console.print(
                f"[bold]Sandbox[/bold]: Salesforce emulator on {sf_server.url} (TLS, JWT login) with "
                f"{len(org.get('Lead', {}))} leads, {len(org.get('Contact', {}))} contacts, "
                f"{len(org.get('Task', {}))} tasks, {len(org.get('Event', {}))} events and "
                f"{len(org.get('CampaignMember', {}))} campaign members."
            )
        state = StateStore.open(demo_settings.state_url)
        before = handoff_demo.snapshot(joint)
        try:
            engine = Engine(mappings, state, build_adapters(demo_settings, mappings))
            report = engine.sync(command="demo")
            print_summary(console, report)
            _print_examples(console, report)
            _print_routing(console, report)
            problems = check_expected(store, outcomes)
            _print_check(console, outcomes, problems)
            sf_problems = check_salesforce(joint) if with_sf else []
            if with_sf:
                _print_both_sides(console, joint, report)
                _print_sf_check(console, joint, sf_problems)
            handoff_problems = _print_tasks(console, joint, before, report)
            manual = handoff_demo.change_owners_as_a_human(joint, state, datetime.now(UTC))
            writes_before = len(store.writes()) + len(joint.salesforce.writes())
            second = engine.sync(command="demo")
            extra = len(store.writes()) + len(joint.salesforce.writes()) - writes_before
            console.print(
                f"Second sync: {second.counts['people']} people re-evaluated, {extra} write requests "
                f"to either CRM ({'idempotent' if extra == 0 else 'NOT idempotent'}), "
                f"{second.counts['tasks_created']} new follow-up tasks."
            )
            handoff_problems += _print_manual_owners(console, engine, joint, manual)
        finally:
            state.close()
    return not problems and not sf_problems and not handoff_problems and extra == 0 and not report.failures


# --- hand-off scenarios (issue 6 part B: follow-up tasks, manual owners) --------------------------------


def _print_tasks(
    console: Console, joint: JointDemo, before: handoff_demo.Before, report: RunReport
) -> list[str]:
    """Follow-up tasks in both emulators against the ground truth; returns the problems."""
    check = handoff_demo.check_tasks(joint, before)
    console.print(
        f"[bold]Hand-off tasks[/bold]: {report.counts['handoffs']} hand-offs recorded; "
        f"{len(check.hubspot)} follow-up tasks in HubSpot and {len(check.salesforce)} in Salesforce "
        f"for {check.expected} people handed to Sales by this sync (expected: one each, for the new owner)."
    )
    for task in check.hubspot[:2]:
        console.print(
            f'  HubSpot task for {task["contact"]}: "{task["hs_task_subject"]}", owner '
            f"{owner_label(task['hubspot_owner_id'], report.owners)}, due {task['hs_timestamp']}",
            markup=False,
        )
    for task in check.salesforce[:2]:
        console.print(
            f'  Salesforce Task on {task["who"]}: "{task["Subject"]}", owner '
            f"{owner_label(task['OwnerId'], report.owners)}, due {task['ActivityDate']}",
            markup=False,
        )
    for problem in check.problems[:10]:
        console.print(f"[red]mismatch[/red] {problem}", markup=False)
    if not check.problems:
        console.print("[bold]Ground truth[/bold]: every hand-off has exactly one task, for its owner.")
    return check.problems


def _print_manual_owners(
    console: Console, engine: Engine, joint: JointDemo, manual: list[handoff_demo.ManualOwner]
) -> list[str]:
    """Owners a person changed after the first sync: the second sync must have kept them."""
    problems = handoff_demo.owners_kept(joint, manual)
    for m in manual:
        explained = engine.explain(m.record_id)
        why = explained.routing.reason if explained is not None else "(not found)"
        console.print(
            f"[bold]Manual owner[/bold]: {m.email} in {m.crm} — the connector assigned {m.connector_owner}, "
            f"a person changed it to {m.human_owner}; after the second sync it is still {m.human_owner}.",
            markup=True,
        )
        console.print(f"      owner: {why}", markup=False)
    for problem in problems:
        console.print(f"[red]mismatch[/red] {problem}", markup=False)
    return problems


def _print_both_sides(console: Console, joint: JointDemo, report: RunReport) -> None:
    """The same people in both CRMs after the sync: one decision, each CRM's values, one rep."""
    console.print("[bold]Both sides[/bold]: people in HubSpot and Salesforce (one decision, one rep)")
    by_email = {o.email: o for o in joint.hubspot_expected}
    shown = 0
    for e in joint.salesforce_expected:
        hubspot = by_email.get(e.email)
        if hubspot is None or not e.persona.startswith("cross_") or shown >= 6:
            continue
        shown += 1
        contact = joint.hubspot.contacts[hubspot.contact_id]
        row = joint.salesforce.records[e.object_type][e.record_id]
        hs_owner = owner_label(contact.get("hubspot_owner_id"), report.owners)
        sf_owner = owner_label(row.get("OwnerId"), report.owners)
        console.print(f"  {e.email} ({e.persona})", markup=False)
        console.print(
            f"      HubSpot {hubspot.contact_id}: {contact.get('lifecyclestage')}, owner {hs_owner}",
            markup=False,
        )
        sf_stage = row.get("Status") or row.get("Lifecycle_Stage__c")
        console.print(
            f"      Salesforce {e.object_type} {e.record_id}: {sf_stage}, owner {sf_owner}",
            markup=False,
        )


def _print_sf_check(console: Console, joint: JointDemo, problems: list[SfMismatch]) -> None:
    expected = joint.salesforce_expected
    bad = {m.expected.record_id for m in problems}
    console.print(
        f"[bold]Ground truth[/bold]: {len(expected) - len(bad)}/{len(expected)} Salesforce records match the "
        "expected status, marketing status, owner and MQL stamp (converted leads: untouched)."
    )
    for m in problems[:15]:
        console.print(
            f"[red]mismatch[/red] {m.expected.email} ({m.expected.persona}, {m.expected.object_type} "
            f"{m.expected.record_id}): {m.field} expected {m.wanted}, got {m.actual}",
            markup=False,
        )


def _secret(value: str) -> SecretStr:
    return SecretStr(value)


def _print_examples(console: Console, report: RunReport) -> None:
    """One person per rule that fired, with the reason and the owner decision."""
    console.print("[bold]Why[/bold]: one example per rule that fired")
    for p in report.examples.values():
        owner = owner_label(p.decision.owner_id, report.owners)
        who = p.record.email or p.record.record_id
        console.print(f"  {who} -> [bold]{p.decision.stage}[/bold]", markup=True)
        console.print(f"      why:   {p.decision.reason}", markup=False)
        console.print(f"      owner: {owner} ({p.decision.owner_reason})", markup=False)


def _print_routing(console: Console, report: RunReport) -> None:
    """One person per routing path this run took (routing.yaml), with the path as explain shows it."""
    console.print("[bold]Routing[/bold]: one example per path taken (`connector explain` shows any person's)")
    for path, p in sorted(report.routing_examples.items()):
        who = p.record.email or p.record.record_id
        console.print(f"  {path}: {who} ({p.record.crm} {p.record.record_id})", markup=False)
        for line in routing_path(p.routing):
            console.print(f"      {line}", markup=False)


def _print_check(console: Console, outcomes: list[ExpectedOutcome], problems: list[Mismatch]) -> None:
    bad = {m.outcome.contact_id for m in problems}
    console.print(
        f"[bold]Ground truth[/bold]: {len(outcomes) - len(bad)}/{len(outcomes)} people match the expected "
        "stage, lead status and owner written with the demo data."
    )
    personas = Counter(o.persona for o in outcomes)
    console.print(f"Personas exercised: {len(personas)}")
    for m in problems[:15]:
        console.print(
            f"[red]mismatch[/red] {m.outcome.email} ({m.outcome.persona}): {m.field} expected {m.expected}, "
            f"got {m.actual}"
        )

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

from connector.crm.factory import hubspot_adapter
from connector.engine import Engine, RunReport
from connector.errors import ConfigError
from connector.mapping.loader import load_mappings
from connector.report import owner_label, print_summary
from connector.sandbox.demo_data import ExpectedOutcome, build_demo_portal
from connector.sandbox.hubspot_app import HubSpotEmulator
from connector.sandbox.hubspot_store import HubSpotStore
from connector.sandbox.server import serve_in_thread
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
    """Serve the emulator with demo data until Ctrl-C or SIGTERM; prints where to point the connector."""
    store, _ = build_demo_portal(datetime.now(UTC), seed=seed, people=people)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serve_in_thread(HubSpotEmulator(store), port=port) as server:
        console.print(f"HubSpot sandbox with {len(store.contacts)} demo contacts on {server.url}")
        console.print("Point the connector at it:")
        console.print(f"  export CONNECTOR_HUBSPOT_BASE_URL={server.url}")
        console.print(f"  export CONNECTOR_HUBSPOT_TOKEN={store.access_token}")
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
    """Run the demo; True when every person ended as the ground truth says."""
    if not settings.mappings_dir.is_dir():
        raise ConfigError(
            f"CONNECTOR_MAPPINGS_DIR: folder {settings.mappings_dir} not found; run the demo from the "
            "repository root or pass --mappings PATH"
        )
    mappings = load_mappings(settings.mappings_dir)
    if mappings.hubspot is None:
        raise ConfigError(f"{settings.mappings_dir}/hubspot.yaml is missing")
    now = datetime.now(UTC)
    store, outcomes = build_demo_portal(now, seed=seed, people=people)
    with (
        tempfile.TemporaryDirectory(prefix="connector-demo-") as tmp,
        serve_in_thread(HubSpotEmulator(store)) as server,
    ):
        db = state_path or Path(tmp) / "demo-state.db"
        demo_settings = settings.model_copy(
            update={
                "hubspot_base_url": server.url,
                "hubspot_token": _secret(store.access_token),
                "state_url": f"sqlite:///{db}",
            }
        )
        engagements = sum(len(v) for v in store.engagements.values())
        console.print(
            f"[bold]Sandbox[/bold]: HubSpot emulator on {server.url} with {len(store.contacts)} demo "
            f"contacts, {len(store.events)} web events and {engagements} engagements."
        )
        state = StateStore.open(demo_settings.state_url)
        try:
            engine = Engine(mappings, state, {"hubspot": hubspot_adapter(demo_settings, mappings.hubspot)})
            report = engine.sync(command="demo")
            print_summary(console, report)
            _print_examples(console, report)
            problems = check_expected(store, outcomes)
            _print_check(console, outcomes, problems)
            writes_before = len(store.writes())
            second = engine.sync(command="demo")
            extra = len(store.writes()) - writes_before
            console.print(
                f"Second sync: {second.counts['people']} people re-evaluated, {extra} write requests "
                f"({'idempotent' if extra == 0 else 'NOT idempotent'})."
            )
        finally:
            state.close()
    return not problems and extra == 0 and not report.failures


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

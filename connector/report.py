"""What people read: the plan table, the run summary, explain traces and status.

Rendering only — every number shown here was computed by the engine or read from the store.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from connector.engine import PersonResult, RunReport
from connector.model import Owner
from connector.state.store import StateStore, StoredDecision


def owner_label(owner_id: str | None, owners: dict[str, Owner]) -> str:
    if not owner_id:
        return "-"
    owner = owners.get(owner_id)
    if owner is None:
        return owner_id
    return owner.name + ("" if owner.active else " (archived)")


def print_plan(console: Console, report: RunReport, *, limit: int = 50) -> None:
    intents = report.intents
    console.print(
        f"[bold]Plan[/bold]: {report.counts['records_read']} records read, "
        f"{report.counts['people']} people evaluated, {len(intents)} would change "
        f"({sum(len(i.changes) for i in intents)} property writes). Nothing was written."
    )
    if not intents:
        return
    by_person = {p.person_id: p for p in report.planned}
    table = Table(show_lines=False)
    for col in ("contact", "email", "property", "current", "new", "why"):
        table.add_column(col, overflow="fold")
    shown = intents if limit <= 0 else intents[:limit]
    for intent in shown:
        person = by_person.get(intent.person_id)
        email = (person.record.email or "") if person else ""
        for prop, value in intent.changes.items():
            before = intent.before.get(prop)
            new = value
            if prop == "hubspot_owner_id":
                before = owner_label(before, report.owners) if before else before
                new = owner_label(value, report.owners)
            table.add_row(intent.record_id, email, prop, before or "-", new, intent.reason)
            email = ""
    console.print(table)
    if len(shown) < len(intents):
        console.print(f"... and {len(intents) - len(shown)} more (use --limit 0 to see all)")


def plan_json(report: RunReport) -> dict[str, Any]:
    return {
        "counts": dict(report.counts),
        "changes": [
            {
                "record_id": i.record_id,
                "person_id": i.person_id,
                "changes": i.changes,
                "before": i.before,
                "reason": i.reason,
            }
            for i in report.intents
        ],
    }


def print_summary(console: Console, report: RunReport) -> None:
    c = report.counts
    console.print(
        f"[bold]Sync {report.run_id}[/bold]: {c['records_read']} records read, {c['activities_new']} new "
        f"activities, {c['people']} people evaluated, {c['written']} records written, "
        f"{c['failed']} failed, {report.api_calls} API calls."
    )
    stages = Table(title="People evaluated, by stage")
    stages.add_column("stage")
    stages.add_column("people", justify="right")
    for stage, n in sorted(report.stage_counts.items()):
        stages.add_row(stage, str(n))
    console.print(stages)
    moves = report.transitions
    if moves:
        t = Table(title="Stage changes written")
        t.add_column("from")
        t.add_column("to")
        t.add_column("people", justify="right")
        for (a, b), n in sorted(moves.items()):
            t.add_row(a, b, str(n))
        console.print(t)
    assigned = Counter({owner_label(owner, report.owners): n for owner, n in report.assigned.items()})
    if assigned:
        t = Table(title="Owners assigned at the hand-off")
        t.add_column("owner")
        t.add_column("people", justify="right")
        for name, n in sorted(assigned.items()):
            t.add_row(name, str(n))
        console.print(t)
    for failure in report.failures:
        console.print(
            f"[red]failed[/red] {failure.intent.crm} {failure.intent.record_id}: {failure.error}", markup=True
        )
    if report.limited:
        console.print(f"[yellow]stopped early[/yellow]: {report.limited}", markup=True)


def print_explain(console: Console, result: PersonResult, stored: StoredDecision | None) -> None:
    d = result.decision
    who = result.record.email or result.record.record_id
    console.print(f"[bold]{who}[/bold] (HubSpot contact {result.record.record_id})")
    shown = result.previous_stage or "none"
    console.print(f"Stage: [bold]{d.stage}[/bold] (criteria say {d.computed_stage}; CRM shows {shown})")
    console.print(f"Why: {d.reason}")
    console.print(f"Fit: score {d.fit_score}, grade {d.fit_grade}")
    if d.disqualified_by:
        console.print(f"Disqualified by: {d.disqualified_by}")
    console.print(f"Owner: {d.owner_id or '-'} — {d.owner_reason or ''}")
    signals = Table(title="Signals")
    signals.add_column("signal")
    signals.add_column("value", justify="right")
    for name, value in sorted(d.signals.items()):
        signals.add_row(name, str(value))
    console.print(signals)
    rules = Table(title="Rules evaluated")
    for col in ("kind", "rule", "held", "values read", "note"):
        rules.add_column(col, overflow="fold")
    for tr in d.trace:
        values = ", ".join(f"{k}={v!r}" for k, v in tr.values.items())
        rules.add_row(tr.kind, tr.name, "yes" if tr.matched else "no", values, tr.note)
    for tr in result.routing.trace:
        values = ", ".join(f"{k}={v!r}" for k, v in tr.values.items())
        rules.add_row(tr.kind, tr.name, "yes" if tr.matched else "no", values, tr.note)
    console.print(rules)
    if result.intent:
        console.print(f"Next sync would write: {result.intent.changes}")
    else:
        console.print("Next sync would write nothing for this person.")
    if stored:
        console.print(
            f"Last stored decision: {stored.stage} at {stored.evaluated_at:%Y-%m-%d %H:%M} UTC "
            f"(run {stored.run_id}, criteria {stored.criteria_version})"
        )


def explain_json(result: PersonResult, stored: StoredDecision | None) -> dict[str, Any]:
    d = result.decision
    return {
        "person_id": result.person_id,
        "record": {"crm": "hubspot", "id": result.record.record_id, "email": result.record.email},
        "current_stage": result.previous_stage,
        "decision": {
            "stage": d.stage,
            "computed_stage": d.computed_stage,
            "lead_status": d.lead_status,
            "reason": d.reason,
            "fit_score": d.fit_score,
            "fit_grade": d.fit_grade,
            "disqualified_by": d.disqualified_by,
            "signals": d.signals,
            "criteria_version": d.criteria_version,
            "evaluated_at": d.evaluated_at.isoformat(),
            "trace": [asdict(t) for t in d.trace],
        },
        "routing": {
            "owner_id": result.routing.owner_id,
            "rep": result.routing.rep,
            "pool": result.routing.pool,
            "rule": result.routing.rule,
            "reason": result.routing.reason,
            "trace": [asdict(t) for t in result.routing.trace],
        },
        "would_write": result.intent.changes if result.intent else {},
        "stored_decision": (
            {
                "stage": stored.stage,
                "run_id": stored.run_id,
                "criteria_version": stored.criteria_version,
                "evaluated_at": stored.evaluated_at.isoformat(),
            }
            if stored
            else None
        ),
    }


def print_status(console: Console, store: StateStore) -> None:
    runs = Table(title="Recent runs")
    for col in ("run", "command", "started (UTC)", "status", "written", "failed", "error"):
        runs.add_column(col, overflow="fold")
    for r in store.runs(10):
        runs.add_row(
            r.id,
            r.command,
            f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            r.status,
            str(r.counts.get("written", 0)),
            str(r.counts.get("failed", 0)),
            r.error or "",
        )
    console.print(runs)
    cursors = Table(title="Cursors")
    cursors.add_column("scope")
    cursors.add_column("value")
    for scope, value in sorted(store.cursors().items()):
        cursors.add_row(scope, value)
    console.print(cursors)
    stages = Table(title="People by last decided stage")
    stages.add_column("stage")
    stages.add_column("people", justify="right")
    for stage, n in sorted(store.stage_counts().items()):
        stages.add_row(stage, str(n))
    console.print(stages)
    failed = store.failed_writes()
    if not failed:
        console.print("No parked write failures.")
        return
    t = Table(title="Parked write failures")
    for col in ("crm", "record", "changes", "attempts", "error"):
        t.add_column(col, overflow="fold")
    for f in failed:
        t.add_row(f.crm, f.record_id, str(f.changes), str(f.attempts), f.error)
    console.print(t)

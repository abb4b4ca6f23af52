"""What people read: the plan table, the run summary, explain traces and status.

Rendering only — every number shown here was computed by the engine or read from the store.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from connector.engine import PersonResult, RunReport
from connector.lifecycle.routing import routing_path
from connector.lifecycle.simulate import Comparison, DayCounts
from connector.model import Owner
from connector.state.store import DriftRow, StateStore, StoredDecision


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


def print_summary(console: Console, report: RunReport, *, title: str = "Sync") -> None:
    """What a run did, on a terminal: counts, people per stage, stage changes written, owners
    assigned at the hand-off, failures (parked or gone) and skipped records, drift."""
    c = report.counts
    console.print(
        f"[bold]{title} {report.run_id}[/bold]: {c['records_read']} records read, {c['activities_new']} new "
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
        what = "gone (deleted or merged in the CRM, not retried)" if failure.gone else "failed"
        console.print(
            f"{what} {failure.intent.crm} {failure.intent.record_id}: {failure.error}",
            markup=False,
            style=None if failure.gone else "red",
        )
    for record, reason in report.skipped:
        console.print(
            f"skipped {record.crm} {record.object_type} {record.record_id} (bad data): {reason}",
            markup=False,
            style="yellow",
        )
    recovered = {k.removeprefix("recovered_"): n for k, n in c.items() if k.startswith("recovered_")}
    if recovered:
        console.print(
            "Settled writes an interrupted run left unconfirmed: "
            + ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in sorted(recovered.items()))
        )
    if c["retried"]:
        console.print(f"Retried {c['retried']} parked write(s) that were due.")
    if report.parked_total:
        console.print(
            f"{report.parked_total} write(s) parked in all, this run's included: later runs retry them when "
            "due (`connector status` lists them, `connector retry-failed` retries them now).",
            style="yellow",
        )
    if report.drift_people:
        console.print(
            f"{report.drift_people} people differ in stage or owner between HubSpot and Salesforce "
            "(see `connector status`).",
            style="yellow",
        )


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
    if d.recycled_by:
        console.print(f"Recycled by: {d.recycled_by} (lead status {d.lead_status})")
    if d.moved_back_by:
        console.print(
            f"Moved back by: {d.moved_back_by} (allow_backward_moves in criteria.yaml; see the move_back row)"
        )
    if result.stage_note:
        console.print(f"Stage not written: {result.stage_note}", markup=False)
    console.print(f"Criteria version: {d.criteria_version}")
    console.print(f"Owner: {d.owner_id or '-'} — {d.owner_reason or ''}")
    if result.routing.trace:
        console.print("[bold]Routing path[/bold]:")
        for line in routing_path(result.routing):
            console.print(f"  {line}", markup=False)
    if result.gaps:
        console.print("[bold]What is missing for a higher stage[/bold]:")
        for gap in result.gaps:
            console.print(f"  {gap.sentence()}", markup=False)
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
            "recycled_by": d.recycled_by,
            "moved_back_by": d.moved_back_by,
            "rule": d.rule,
            "signals": d.signals,
            "criteria_version": d.criteria_version,
            "evaluated_at": d.evaluated_at.isoformat(),
            "trace": [asdict(t) for t in d.trace],
        },
        "stage_note": result.stage_note,
        "routing": {
            "owner_id": result.routing.owner_id,
            "rep": result.routing.rep,
            "pool": result.routing.pool,
            "rule": result.routing.rule,
            "reason": result.routing.reason,
            "path": routing_path(result.routing),
            "skipped": [{"rep": rep, "why": why} for rep, why in result.routing.skipped],
            "trace": [asdict(t) for t in result.routing.trace],
        },
        "next_stage": [
            {
                "rule": gap.rule,
                "stage": gap.stage,
                "missing": list(gap.missing),
                "failed_conditions": list(gap.failed),
                "blocked_by": gap.blocked_by,
            }
            for gap in result.gaps
        ],
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


DRIFT_SHOWN = 50
"""Drifting people listed by `status` on a terminal (all of them with `--json`)."""


def print_drift(console: Console, rows: list[DriftRow], total: int) -> None:
    """People whose HubSpot and Salesforce records disagree on stage or owner (reps by key)."""
    if not total:
        console.print("No drift: everyone in both CRMs has the same stage and owner in each.")
        return
    t = Table(
        title=f"Drift: {total} people differ between the CRMs"
        + (f" (newest {len(rows)})" if len(rows) < total else "")
    )
    for col in ("person", "differs", "stage per CRM", "owner per CRM", "seen (UTC)"):
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(
            row.email or row.person_id,
            ", ".join(row.fields),
            ", ".join(f"{crm}: {stage or '-'}" for crm, stage in sorted(row.stages.items())),
            ", ".join(f"{crm}: {owner or '-'}" for crm, owner in sorted(row.owners.items())),
            f"{row.detected_at:%Y-%m-%d %H:%M}",
        )
    console.print(t)


def status_json(store: StateStore, *, now: datetime | None = None) -> dict[str, Any]:
    """What `status` shows, for machines (`connector status --json`)."""
    now = now or datetime.now(UTC)
    return {
        "state_url": store.url,
        "schema_version": store.schema_version(),
        "runs": [
            {"id": r.id, "command": r.command, "started_at": r.started_at.isoformat(),
             "finished_at": r.finished_at.isoformat() if r.finished_at else None, "status": r.status,
             "counts": r.counts, "error": r.error}
            for r in store.runs(10)
        ],
        "cursors": {scope: value for scope, value, _updated in store.cursor_rows()},
        "leases": [
            {"scope": lease.scope, "holder": lease.holder, "run_id": lease.run_id,
             "expires_at": lease.expires_at.isoformat(), "expired": lease.expires_at <= now}
            for lease in store.leases()
        ],
        "stages": store.stage_counts(),
        "backfill_shards": [
            {**row, **{k: v.isoformat() for k, v in row.items() if isinstance(v, datetime)}}
            for row in store.backfill_shards()
        ],
        "drift": [
            {"person_id": d.person_id, "email": d.email, "fields": list(d.fields), "stages": d.stages,
             "owners": d.owners, "detected_at": d.detected_at.isoformat()}
            for d in store.drift()
        ],
        "failed_writes": [
            {"crm": f.crm, "object_type": f.object_type, "record_id": f.record_id, "changes": f.changes,
             "attempts": f.attempts, "error": f.error,
             "next_attempt_at": f.next_attempt_at.isoformat() if f.next_attempt_at else None}
            for f in store.failed_writes()
        ],
    }  # fmt: skip


def print_status(console: Console, store: StateStore, *, now: datetime | None = None) -> None:
    """Last runs, cursors, leases, people per stage and parked failures, as tables people read."""
    now = now or datetime.now(UTC)
    console.print(f"State database: {store.url} (schema version {store.schema_version()})")
    runs = Table(title="Recent runs")
    for col in ("run", "command", "started (UTC)", "took", "status", "written", "failed", "error"):
        runs.add_column(col, overflow="fold")
    for r in store.runs(10):
        took = f"{(r.finished_at - r.started_at).total_seconds():.1f}s" if r.finished_at else "-"
        runs.add_row(
            r.id,
            r.command,
            f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            took,
            r.status,
            str(r.counts.get("written", 0)),
            str(r.counts.get("failed", 0)),
            r.error or "",
        )
    console.print(runs)
    cursors = Table(title="Cursors")
    for col in ("scope", "value", "updated (UTC)"):
        cursors.add_column(col)
    for scope, value, updated in store.cursor_rows():
        cursors.add_row(scope, value, f"{updated:%Y-%m-%d %H:%M:%S}")
    console.print(cursors)
    leases = store.leases()
    if leases:
        t = Table(title="Leases (one writer per scope)")
        for col in ("scope", "holder", "run", "since (UTC)", "expires (UTC)", "state"):
            t.add_column(col, overflow="fold")
        for lease in leases:
            state = "expired (free to take over)" if lease.expires_at <= now else "held"
            t.add_row(
                lease.scope,
                lease.holder,
                lease.run_id or "-",
                f"{lease.acquired_at:%Y-%m-%d %H:%M:%S}",
                f"{lease.expires_at:%Y-%m-%d %H:%M:%S}",
                state,
            )
        console.print(t)
    else:
        console.print("No leases held: no run is writing.")
    stages = Table(title="People by last decided stage")
    stages.add_column("stage")
    stages.add_column("people", justify="right")
    for stage, n in sorted(store.stage_counts().items()):
        stages.add_row(stage, str(n))
    console.print(stages)
    shards = store.backfill_shards()
    if shards:
        t = Table(title="Backfill shards")
        for col in ("backfill", "shard", "status", "records", "run", "updated (UTC)"):
            t.add_column(col, overflow="fold")
        for row in shards:
            t.add_row(
                row["backfill_id"], str(row["shard"]), row["status"], str(row["records"]),
                row["run_id"] or "-", f"{row['updated_at']:%Y-%m-%d %H:%M:%S}",
            )  # fmt: skip
        console.print(t)
    print_drift(console, store.drift(limit=DRIFT_SHOWN), store.drift_count())
    failed = store.failed_writes()
    if not failed:
        console.print("No parked write failures.")
        return
    t = Table(title="Parked write failures")
    for col in ("crm", "record", "changes", "tries", "next try (UTC)", "CRM's reason"):
        t.add_column(col, overflow="fold")
    for f in failed:
        if f.next_attempt_at is None:
            nxt = "parked: run retry-failed"
        else:
            nxt = f"{f.next_attempt_at:%Y-%m-%d %H:%M}" + (" (due)" if f.next_attempt_at <= now else "")
        changes = ", ".join(f"{k}={v}" for k, v in sorted(f.changes.items()))
        t.add_row(f.crm, f"{f.object_type} {f.record_id}", changes, str(f.attempts), nxt, f.error)
    console.print(t)


# --------------------------------------------------------------------------- simulate


def _ordered_stages(comparison: Comparison) -> list[str]:
    seen = set(comparison.current) | set(comparison.proposed)
    return [s for s in comparison.stages if s in seen] + sorted(seen - set(comparison.stages))


def print_simulation(console: Console, comparison: Comparison, *, samples: int = 5) -> None:
    c = comparison
    console.print(
        f"[bold]Simulation[/bold] as of {c.as_of:%Y-%m-%d %H:%M} UTC over {c.people} people: criteria "
        f"{c.current_version} (current) vs {c.proposed_version} (proposed). Nothing was written."
    )
    counts = Table(title="People per stage")
    for col in ("stage", "current", "proposed", "change"):
        counts.add_column(col, justify="left" if col == "stage" else "right")
    for stage in _ordered_stages(c):
        before, after = c.current[stage], c.proposed[stage]
        counts.add_row(stage, str(before), str(after), f"{after - before:+d}" if after != before else "0")
    console.print(counts)
    if not c.moved:
        console.print("No one would change stage.")
        return
    matrix = Table(title=f"Who would move ({c.moved} people): current -> proposed")
    matrix.add_column("from \\ to")
    stages = _ordered_stages(c)
    for stage in stages:
        matrix.add_column(stage, justify="right")
    for source in stages:
        row = [str(c.matrix.get((source, target), 0) or "") for target in stages]
        matrix.add_row(source, *row)
    console.print(matrix)
    console.print(f"[bold]Examples[/bold] (up to {samples} per change):")
    for move in c.samples:
        console.print(f"  {move.label}: {move.before} -> {move.after}", markup=False)
        console.print(f"      now:      {move.reason_before}", markup=False)
        console.print(f"      proposed: {move.reason_after}", markup=False)


def simulation_markdown(comparison: Comparison) -> str:
    """The effect of a criteria change, small enough to paste into a pull request."""
    c = comparison
    lines = [
        f"### Criteria change: {c.current_version} -> {c.proposed_version}",
        "",
        f"Simulated as of {c.as_of:%Y-%m-%d %H:%M} UTC over {c.people} people; {c.moved} would change stage.",
        "",
        "| stage | current | proposed | change |",
        "| --- | ---: | ---: | ---: |",
    ]
    for stage in _ordered_stages(c):
        before, after = c.current[stage], c.proposed[stage]
        lines.append(f"| {stage} | {before} | {after} | {after - before:+d} |")
    if c.moved:
        lines += ["", "| from | to | people |", "| --- | --- | ---: |"]
        for (source, target), n in sorted(c.matrix.items(), key=lambda item: (-item[1], item[0])):
            if source != target:
                lines.append(f"| {source} | {target} | {n} |")
        lines += ["", "<details><summary>Examples</summary>", ""]
        for move in c.samples:
            lines.append(f"- **{_md(move.label)}** {move.before} -> {move.after}")
            lines.append(f"  - current: {_md(move.reason_before)}")
            lines.append(f"  - proposed: {_md(move.reason_after)}")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def simulation_csv(comparison: Comparison) -> str:
    """Every person who would move: person id, label, stages and the rules behind them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["person_id", "person", "current_stage", "proposed_stage", "current_rule", "proposed_rule"]
    )
    for move in comparison.moves:
        writer.writerow(
            [
                move.person_id,
                move.label,
                move.before,
                move.after,
                move.rule_before or "",
                move.rule_after or "",
            ]
        )
    return buffer.getvalue()


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def print_history(console: Console, days: list[DayCounts], stages: list[str]) -> None:
    table = Table(title="Stage counts per day, current / proposed (replayed, forward-only)")
    table.add_column("day")
    for stage in stages:
        table.add_column(stage, justify="right")
    for day in days:
        cells = [f"{day.current[s]} / {day.proposed[s]}" for s in stages]
        table.add_row(f"{day.day:%Y-%m-%d}", *cells)
    console.print(table)


def history_markdown(days: list[DayCounts], stages: list[str]) -> str:
    lines = ["", "#### Day by day (current / proposed)", "", "| day | " + " | ".join(stages) + " |"]
    lines.append("| --- |" + " ---: |" * len(stages))
    for day in days:
        lines.append(
            f"| {day.day:%Y-%m-%d} | "
            + " | ".join(f"{day.current[s]} / {day.proposed[s]}" for s in stages)
            + " |"
        )
    return "\n".join(lines) + "\n"

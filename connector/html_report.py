"""`connector report --html FILE`: one self-contained page people can read and forward.

Funnel per stage, what one run changed, MQL -> SQL conversion over time as an inline SVG chart
(no scripts, no network: it opens anywhere, including a mail client's preview), hand-offs per rep
and parked failures. Everything is read from the state database and rendered; nothing is computed
here that the engine did not record.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from html import escape

from connector.errors import ConfigError
from connector.mapping.loader import Mappings
from connector.state.store import FailedWrite, RunRow, StateStore

HANDOFF_STAGE = "mql"
QUALIFIED_STAGE = "sql"


@dataclass
class ReportData:
    run: RunRow | None
    funnel: list[tuple[str, int]]
    transitions: Counter[tuple[str, str]]
    handoffs: Counter[str]
    daily: dict[str, Counter[str]] = field(default_factory=dict)  # day -> canonical stage -> entries
    failures: list[FailedWrite] = field(default_factory=list)


def collect(store: StateStore, mappings: Mappings, run_id: str | None = None) -> ReportData:
    """Read what the report shows. `run_id` None means the latest run that could write."""
    runs = store.runs(200)
    if run_id:
        run = next((r for r in runs if r.id == run_id), None)
        if run is None:
            raise ConfigError(
                f"--run {run_id}: no such run among the last 200; `connector status` lists runs"
            )
    else:  # the latest run that changed something (a quiet run after it would show nothing)
        writing = [r for r in runs if r.command != "plan"]
        run = next((r for r in writing if r.counts.get("written", 0) > 0), writing[0] if writing else None)
    counts = store.stage_counts()
    order = list(mappings.criteria.stages)
    funnel = [(stage, counts.get(stage, 0)) for stage in order] + [
        (stage, n) for stage, n in sorted(counts.items()) if stage not in order
    ]
    maps = _object_maps(mappings)
    stage_props = {key: m[0] for key, m in maps.items()}
    owner_props = {key: m[1] for key, m in maps.items() if m[1]}
    canonical = {key: m[2] for key, m in maps.items()}
    by_crm: dict[str, dict[str, str]] = {}
    for (crm, _object), names in canonical.items():
        by_crm.setdefault(crm, {}).update(names)
    reps = _rep_names(mappings)

    transitions: Counter[tuple[str, str]] = Counter()
    handoffs: Counter[str] = Counter()
    if run is not None:
        for row in store.audit_rows(run_id=run.id):
            if row["outcome"] != "written":
                continue
            key = (row["crm"], row["object_type"])
            if row["property"] == stage_props.get(key):
                names = canonical.get(key, {})
                before = names.get(row["before"] or "", row["before"] or "(none)")
                transitions[(before, names.get(row["after"] or "", row["after"] or ""))] += 1
            elif row["property"] == owner_props.get(key):
                handoffs[reps.get(row["after"] or "", row["after"] or "-")] += 1

    daily: dict[str, Counter[str]] = defaultdict(Counter)
    for day, crm, value, n in store.daily_writes(sorted(set(stage_props.values()))):
        daily[day][by_crm.get(crm, {}).get(value, value)] += n
    return ReportData(
        run=run, funnel=funnel, transitions=transitions, handoffs=handoffs, daily=dict(daily),
        failures=store.failed_writes(),
    )  # fmt: skip


def _object_maps(mappings: Mappings) -> dict[tuple[str, str], tuple[str, str | None, dict[str, str]]]:
    """(crm, object type) -> (stage field, owner field, CRM stage value -> canonical stage)."""
    out: dict[tuple[str, str], tuple[str, str | None, dict[str, str]]] = {}
    if mappings.hubspot is not None:
        m = mappings.hubspot
        owner = m.owner.property if m.owner else None
        out[("hubspot", m.object)] = (m.stage.property, owner, {v: k for k, v in m.stage.values.items()})
    if mappings.salesforce is not None:
        for name, obj in mappings.salesforce.objects.items():
            owner = obj.owner.field if obj.owner else None
            out[("salesforce", name)] = (obj.stage.field, owner, {v: k for k, v in obj.stage.values.items()})
    return out


def _rep_names(mappings: Mappings) -> dict[str, str]:
    names: dict[str, str] = {}
    for rep in mappings.routing.reps.values():
        for owner_id in (rep.hubspot_owner_id, rep.salesforce_user_id):
            if owner_id:
                names[owner_id] = rep.name
    return names


# --------------------------------------------------------------------------- rendering


def render(data: ReportData, *, title: str = "Lifecycle connector report") -> str:
    run = data.run
    run_line = (
        f"Run {escape(run.id)} ({escape(run.command)}), {run.started_at:%Y-%m-%d %H:%M} UTC, status "
        f"{escape(run.status)}: {run.counts.get('written', 0)} records written, "
        f"{run.counts.get('failed', 0)} failed."
        if run
        else "No run recorded yet."
    )
    sections = [
        f"<h1>{escape(title)}</h1>",
        f"<p class='run'>{run_line}</p>",
        "<h2>Funnel: people by stage</h2>",
        _table(["stage", "people"], [[s, str(n)] for s, n in data.funnel], cls="funnel"),
        "<h2>Stage changes in this run</h2>",
        _table(["from", "to", "people"], [[a, b, str(n)] for (a, b), n in sorted(data.transitions.items())])
        if data.transitions
        else "<p>None.</p>",
        "<h2>MQL &rarr; SQL over time</h2>",
        conversion_chart(data.daily),
        "<h2>Hand-offs per rep (this run)</h2>",
        _table(["rep", "people"], [[r, str(n)] for r, n in sorted(data.handoffs.items())])
        if data.handoffs
        else "<p>None.</p>",
        "<h2>Parked write failures</h2>",
        _failures(data.failures),
    ]
    return _PAGE.format(title=escape(title), body="\n".join(sections))


def _failures(failures: list[FailedWrite]) -> str:
    if not failures:
        return "<p>None.</p>"
    rows = [
        [f.crm, f.record_id, ", ".join(f"{k}={v}" for k, v in f.changes.items()), str(f.attempts), f.error]
        for f in failures
    ]
    return _table(["crm", "record", "changes", "attempts", "error"], rows)


def _table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def conversion_chart(
    daily: dict[str, Counter[str]], *, days: int = 90, width: int = 720, height: int = 260
) -> str:
    """Daily entries into MQL and SQL for the last `days` days with data, plus the overall ratio."""
    if not daily:
        return "<p>No stage changes recorded yet.</p>"
    last = max(date.fromisoformat(d) for d in daily)
    first = max(min(date.fromisoformat(d) for d in daily), last - timedelta(days=days - 1))
    span = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    mql = [daily.get(d.isoformat(), Counter())[HANDOFF_STAGE] for d in span]
    sql = [daily.get(d.isoformat(), Counter())[QUALIFIED_STAGE] for d in span]
    top = max([*mql, *sql, 1])
    pad = 40
    plot_w, plot_h = width - 2 * pad, height - 2 * pad

    def coords(series: list[int]) -> list[tuple[float, float]]:
        step = plot_w / max(len(series) - 1, 1)
        offset = 0.0 if len(series) > 1 else plot_w / 2
        return [(pad + offset + i * step, pad + plot_h - v / top * plot_h) for i, v in enumerate(series)]

    def points(series: list[int]) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in coords(series))

    def dots(series: list[int], color: str, name: str) -> str:
        return "".join(
            f"<circle class='dot-{name}' cx='{x:.1f}' cy='{y:.1f}' r='3.5' fill='{color}'/>"
            for x, y in coords(series)
        )

    ratio = f"{sum(sql) / sum(mql):.0%}" if sum(mql) else "n/a"
    return (
        "<figure><svg id='conversion-chart' xmlns='http://www.w3.org/2000/svg' "
        f"width='{width}' height='{height}' role='img' aria-label='MQL and SQL entries per day'>"
        f"<rect x='{pad}' y='{pad}' width='{plot_w}' height='{plot_h}' fill='#fafafa' stroke='#ccc'/>"
        f"<text x='{pad}' y='{pad - 10}' font-size='12'>max {top}/day</text>"
        f"<polyline class='series-mql' fill='none' stroke='#2b6cb0' stroke-width='2' points='{points(mql)}'/>"
        f"<polyline class='series-sql' fill='none' stroke='#c05621' stroke-width='2' points='{points(sql)}'/>"
        f"{dots(mql, '#2b6cb0', 'mql')}{dots(sql, '#c05621', 'sql')}"
        f"<text x='{pad}' y='{height - 12}' font-size='12'>{span[0].isoformat()}</text>"
        f"<text x='{width - pad}' y='{height - 12}' font-size='12' "
        f"text-anchor='end'>{span[-1].isoformat()}</text>"
        "</svg>"
        f"<figcaption><span style='color:#2b6cb0'>&#9632;</span> entered MQL ({sum(mql)}) "
        f"<span style='color:#c05621'>&#9632;</span> entered SQL ({sum(sql)}); "
        f"SQL/MQL over the period: <b class='ratio'>{ratio}</b></figcaption></figure>"
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 60rem; }}
table {{ border-collapse: collapse; margin: .5rem 0 1.5rem; }}
th, td {{ border: 1px solid #ddd; padding: .3rem .7rem; text-align: left; }}
th {{ background: #f3f3f3; }}
</style></head>
<body>
{body}
</body></html>
"""

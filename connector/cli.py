"""Command line: `connector validate | plan | sync | retry-failed | backfill | run | explain | status |
forget | migrate | report | simulate | sandbox | demo`.

Every `ConnectorError` becomes one clear message on stderr and its class's exit code (0 ok,
1 partial, 2 configuration, 3 authentication/connection, 4 lease held by another run,
5 unexpected); nothing a user can cause prints a traceback.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from connector import __version__
from connector.errors import ConnectorError, ExitCode, MappingError
from connector.observability import configure_logging, redact
from connector.settings import Settings, load_settings

if TYPE_CHECKING:
    from connector.state.store import StateStore

F = TypeVar("F", bound=Callable[..., Any])
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
log = logging.getLogger("connector.cli")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="connector")
@click.option(
    "--log-level",
    default="WARNING",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="How much to log on stderr.",
)
@click.option(
    "--log-format",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "json", "text"]),
    help="auto: JSON lines when stderr is not a terminal (containers), text otherwise.",
)
def cli(log_level: str, log_format: str) -> None:
    """Lifecycle connector: shared MQL/SQL criteria, executed against your CRM.

    Configuration comes from CONNECTOR_* environment variables (or a .env file); criteria and
    routing from the YAML files in CONNECTOR_MAPPINGS_DIR (default ./mappings).
    """
    configure_logging(log_level, log_format)


def mappings_option(fn: F) -> F:
    return click.option(
        "--mappings",
        "mappings_dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Mapping folder (overrides CONNECTOR_MAPPINGS_DIR).",
    )(fn)


def _settings(mappings_dir: Path | None = None) -> Settings:
    overrides: dict[str, object] = {}
    if mappings_dir is not None:
        overrides["mappings_dir"] = mappings_dir
    return load_settings(**overrides)


# --------------------------------------------------------------------------- validate


@cli.command()
@mappings_option
@click.option(
    "--online",
    is_flag=True,
    help="Also check every mapped field and picklist value against the CRM (needs credentials).",
)
def validate(mappings_dir: Path | None, online: bool) -> None:
    """Check the mapping files and run the criteria examples; print OK or every problem with file:line."""
    from connector.mapping.examples import check_examples
    from connector.mapping.loader import load_mappings

    settings = _settings(mappings_dir)
    mappings = load_mappings(settings.mappings_dir)
    examples, issues = check_examples(mappings)
    if issues:
        raise MappingError(issues)
    if online:
        _validate_online(settings, mappings)
    c = mappings.criteria
    out.print(
        f"OK: {settings.mappings_dir} — {len(c.signals)} signals, {len(c.fit.rules)} fit rules, "
        f"{len(c.rules)} stage rules, {len(c.disqualifiers)} disqualifiers, {len(c.recycle)} recycle "
        f"rules, {len(mappings.routing.pools)} pools, {examples} criteria examples pass "
        f"(criteria version {mappings.criteria_version})"
    )


def _validate_online(settings: Settings, mappings: Any) -> None:
    """Check each configured CRM's mapping against the CRM itself; every issue at its file:line."""
    from connector.crm.online import CHECKS
    from connector.errors import ConfigError

    issues = []
    checked = []
    missing = []
    for crm in mappings.crms:
        online = CHECKS.get(crm)
        if online is None:
            err.print(f"note: no online check for {crm} yet; its mapping was checked offline only")
        elif not online.configured(settings):
            missing.append(online.credentials)
        else:
            issues += online.check(settings, mappings)
            checked.append(online.label)
    if not checked:
        raise ConfigError(
            "validate --online needs CRM credentials: set " + " or ".join(missing or ["a CRM's credentials"])
        )
    if issues:
        raise MappingError(issues)
    out.print(f"Online: {', '.join(checked)} mapping matches the CRM (fields and picklist values).")


# --------------------------------------------------------------------------- plan / sync


@cli.command()
@mappings_option
@click.option("--limit", default=50, show_default=True, help="Rows of changes to show (0 = all).")
@click.option("--json", "as_json", is_flag=True, help="Print the changes as JSON.")
def plan(mappings_dir: Path | None, limit: int, as_json: bool) -> None:
    """Show what `sync` would change in the CRM. Writes nothing, to the CRM or the state."""
    from connector import progress
    from connector import report as rep
    from connector.observability import json_logs

    with _engine(mappings_dir) as engine, progress.feed(err, "Planning", json_logs=json_logs()) as step:
        report = engine.sync(dry_run=True, command="plan", progress=step)
    if as_json:
        out.print_json(data=rep.plan_json(report))
        return
    rep.print_plan(out, report, limit=limit)


@cli.command()
@mappings_option
@click.option(
    "--metrics-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write Prometheus metrics of this run to a textfile (node-exporter textfile collector).",
)
@click.option("--pushgateway", help="Push this run's metrics to a Prometheus Pushgateway at this address.")
def sync(mappings_dir: Path | None, metrics_file: Path | None, pushgateway: str | None) -> None:
    """Pull changes, evaluate the criteria, route owners and write what changed.

    Exits 1 when some records were parked or skipped (see `status`), 4 when another run holds
    the lease.
    """
    from connector import report as rep

    started = time.monotonic()
    with _engine(mappings_dir) as engine:
        report = engine.sync(command="sync")
        crms = list(engine.crms)
    _export_metrics(report, crms, started, metrics_file, pushgateway)
    rep.print_summary(out, report)
    if report.exit_code:
        raise SystemExit(report.exit_code)


def _export_metrics(
    report: Any,
    crms: list[str],
    started: float,
    metrics_file: Path | None,
    pushgateway: str | None,
    *,
    job: str = "lifecycle_connector",
) -> None:
    """A one-shot run's metrics to a node-exporter textfile and/or a Pushgateway (each backfill
    shard pushes under its own job name, so shards do not overwrite each other's)."""
    if not (metrics_file or pushgateway):
        return
    from connector.metrics import Metrics

    metrics = Metrics()
    metrics.observe(report, duration=time.monotonic() - started, finished_at=time.time(), crm=crms)
    if metrics_file:
        metrics.write_textfile(metrics_file)
    if pushgateway:
        metrics.push(pushgateway, job=job)


@cli.command("retry-failed")
@mappings_option
def retry_failed(mappings_dir: Path | None) -> None:
    """Retry every parked write now, whatever its schedule (records are re-read and re-evaluated)."""
    from connector import report as rep

    with _engine(mappings_dir) as engine:
        if not engine.store.failed_writes():
            out.print("No parked write failures: nothing to retry.")
            return
        report = engine.sync(command="retry-failed")
        left = engine.store.failed_writes()
    rep.print_summary(out, report)
    out.print(
        f"{report.counts['retried']} parked write(s) retried; {len(left)} still parked"
        + (" (see `connector status`)." if left else ".")
    )
    if report.exit_code:
        raise SystemExit(report.exit_code)


@cli.command()
@mappings_option
@click.option(
    "--since", "since_text", required=True, help="Start of the range (a date, UTC, or an ISO time)."
)
@click.option(
    "--until", "until_text", help="End of the range, excluded (default: when the first shard started)."
)
@click.option(
    "--shard", "shard_text", default="0/1", show_default=True, help="This process's shard I of N (0-based)."
)
@click.option(
    "--metrics-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write Prometheus metrics of this shard's run to a textfile.",
)
@click.option("--pushgateway", help="Push this shard's metrics to a Prometheus Pushgateway at this address.")
def backfill(
    mappings_dir: Path | None,
    since_text: str,
    until_text: str | None,
    shard_text: str,
    metrics_file: Path | None,
    pushgateway: str | None,
) -> None:
    """Decide everyone whose records changed in [--since, --until), split across N shards.

    Run N processes (e.g. a Kubernetes Indexed Job) with `--shard 0/N` ... `--shard N-1/N` against
    the same PostgreSQL state: each decides a disjoint share of the people, with its own cursors
    and lease, and a killed shard resumes where it stopped when started again.
    """
    import signal

    from connector import progress
    from connector import report as rep
    from connector.lifecycle.sharding import Shard
    from connector.observability import json_logs

    try:
        shard = Shard.parse(shard_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    since = _parse_moment(since_text, "--since")
    until = _parse_moment(until_text, "--until") if until_text else None
    stop = {"requested": False}

    def request_stop(*_args: object) -> None:
        stop["requested"] = True

    signal.signal(signal.SIGTERM, request_stop)
    with (
        _engine(mappings_dir) as engine,
        progress.feed(err, f"Backfill shard {shard}", json_logs=json_logs()) as step,
    ):
        started = time.monotonic()
        report = engine.backfill(
            since=since, until=until, shard=shard, should_stop=lambda: stop["requested"], progress=step
        )
        crms = list(engine.crms)
    _export_metrics(
        report, crms, started, metrics_file, pushgateway, job=f"lifecycle_connector_backfill_{shard.index}"
    )
    rep.print_summary(out, report, title=f"Backfill shard {shard}")
    if report.exit_code:
        raise SystemExit(report.exit_code)


def _parse_moment(text: str, option: str) -> datetime:
    """A date (midnight UTC) or an ISO time (UTC when no zone is given)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{option} {text!r}: expected a date like 2024-01-31 or 2024-01-31T12:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@cli.command()
@mappings_option
@click.option("--every", help="Run every interval, e.g. 15m, 1h, 1h30m (first run immediately).")
@click.option("--cron", "cron_expr", help='Run on a cron schedule in UTC, e.g. "*/15 * * * *".')
@click.option("--jitter", default="0s", show_default=True, help="Random delay up to this before each run.")
@click.option(
    "--metrics-host",
    default="0.0.0.0",  # noqa: S104 - a container's metrics must be reachable by the scraper
    show_default=True,
    help="Address for /metrics and /healthz (all interfaces, for scrapers).",
)
@click.option(
    "--metrics-port", default=9464, show_default=True, help="Port for /metrics and /healthz (0 = any)."
)
@click.option("--no-metrics", is_flag=True, help="Do not serve /metrics and /healthz.")
def run(
    mappings_dir: Path | None,
    every: str | None,
    cron_expr: str | None,
    jitter: str,
    metrics_host: str,
    metrics_port: int,
    no_metrics: bool,
) -> None:
    """Keep running on a schedule. SIGTERM finishes the page in flight, saves cursors, exits 0."""
    import signal

    from connector import scheduler as sched
    from connector.errors import ConfigError
    from connector.metrics import Metrics
    from connector.sandbox.server import serve_in_thread

    if (every is None) == (cron_expr is None):
        raise ConfigError("connector run: give exactly one of --every INTERVAL or --cron EXPRESSION")
    schedule: sched.Schedule = (
        sched.Every(sched.parse_interval(every)) if every else sched.Cron(str(cron_expr))
    )
    jitter_delta = sched.parse_interval(jitter) if jitter.strip() not in ("0", "0s", "") else timedelta(0)
    metrics = Metrics()
    server = None if no_metrics else serve_in_thread(metrics.wsgi_app(), host=metrics_host, port=metrics_port)
    if server is not None:
        log.warning(
            "serving metrics on %s/metrics", server.url, extra={"event": "metrics.serving", "url": server.url}
        )
    try:
        with _engine(mappings_dir) as engine:
            crms = list(engine.crms)

            def job(should_stop: Callable[[], bool]) -> None:
                started = time.monotonic()
                try:
                    report = engine.sync(command="run", should_stop=should_stop)
                except ConnectorError as exc:
                    metrics.observe_failure(type(exc).__name__)
                    raise
                metrics.observe(
                    report, duration=time.monotonic() - started, finished_at=time.time(), crm=crms
                )

            scheduler = sched.Scheduler(schedule, job, jitter=jitter_delta)
            signal.signal(signal.SIGTERM, lambda *_: scheduler.stop())
            signal.signal(signal.SIGINT, lambda *_: scheduler.stop())
            code = scheduler.run()
    finally:
        if server is not None:
            server.stop()
    raise SystemExit(code)


# --------------------------------------------------------------------------- explain / status


@cli.command()
@click.argument("person")
@mappings_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def explain(person: str, mappings_dir: Path | None, as_json: bool) -> None:
    """Explain the decision for PERSON (email, HubSpot contact id or person id)."""
    from connector import report as rep

    with _engine(mappings_dir) as engine:
        result = engine.explain(person)
        stored = engine.store.decision(result.person_id) if result else None
    if result is None:
        err.print(f"No contact found for {person!r} in the configured CRMs (contacts and leads).")
        raise SystemExit(ExitCode.CONFIG)
    if as_json:
        out.print_json(data=rep.explain_json(result, stored))
        return
    rep.print_explain(out, result, stored)


@cli.command()
@click.option(
    "--criteria",
    "criteria_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The proposed criteria file (checked against the mapping folder's CRM and routing files).",
)
@mappings_option
@click.option("--as-of", "as_of", default=None, help="Evaluate as of this date (end of day, UTC) or time.")
@click.option("--samples", default=5, show_default=True, help="Example people shown per stage change.")
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the effect as Markdown to this file (and every mover as CSV beside it).",
)
@click.option(
    "--history", "history_days", type=int, default=None, help="Also replay the last N days, day by day."
)
def simulate(
    criteria_file: Path,
    mappings_dir: Path | None,
    as_of: str | None,
    samples: int,
    out_file: Path | None,
    history_days: int | None,
) -> None:
    """Compare current and proposed criteria over the stored timeline. Writes nothing.

    Prints people per stage under both, who would move (the transition matrix) and example people
    with both reasons. `--history N` replays the last N days and shows the counts of each day.
    """
    from connector import report as rep
    from connector import simulation as sim
    from connector.mapping.examples import check_examples
    from connector.mapping.loader import load_mappings
    from connector.state.store import StateStore

    settings = _settings(mappings_dir)
    current = load_mappings(settings.mappings_dir)
    proposed = load_mappings(settings.mappings_dir, criteria_file=criteria_file)
    _count, issues = check_examples(proposed, criteria_file)
    for issue in issues:
        err.print(f"warning: {issue.render()}", markup=False)
    moment = sim.parse_as_of(as_of, _now)
    if history_days is not None and not 1 <= history_days <= 366:
        raise click.BadParameter("--history takes a number of days from 1 to 366")
    store = StateStore.open(settings.state_url)
    try:
        people = store.count_snapshots()
        if people == 0:
            out.print("The state database holds no people yet: run `connector sync` first, then simulate.")
            return
        with _progress(people, "Simulating") as advance:
            comparison = sim.run_simulation(
                store, current, proposed, moment, samples=samples, progress=advance
            )
        days = None
        if history_days:
            with _progress(people * history_days, "Replaying days") as advance:
                days = sim.run_history(store, current, proposed, moment, history_days, progress=advance)
    finally:
        store.close()
    rep.print_simulation(out, comparison, samples=samples)
    stages = [s for s in current.criteria.stages if s not in current.criteria.sales_owned]
    if days is not None:
        rep.print_history(out, days, stages)
    if out_file is not None:
        markdown = rep.simulation_markdown(comparison)
        if days is not None:
            markdown += rep.history_markdown(days, stages)
        out_file.write_text(markdown, encoding="utf-8")
        sim.csv_path(out_file).write_text(rep.simulation_csv(comparison), encoding="utf-8")
        out.print(f"Wrote {out_file} and {sim.csv_path(out_file)}.")


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal (stderr); nothing when output is piped or logs are JSON."""
    from connector import progress
    from connector.observability import json_logs

    with progress.counted(err, label, total, json_logs=json_logs()) as advance:
        yield advance


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (every drifting person).")
def status(as_json: bool) -> None:
    """Recent runs, cursors, leases, people per stage, backfill shards, drift, parked failures.

    Drift lists people in both CRMs whose stage or owner differs between HubSpot and Salesforce.
    """
    from connector import report as rep

    store = _store(_settings())
    try:
        if as_json:
            out.print_json(data=rep.status_json(store))
        else:
            rep.print_status(out, store)
    finally:
        store.close()


@cli.command()
@click.argument("person")
def forget(person: str) -> None:
    """Erase PERSON (email, person id or CRM record id) from the state database.

    Removes their timeline, decisions, identities, last-written values and parked writes, and
    blanks the before/after values of their audit rows. The CRM is not touched: a person still in
    the CRM comes back at the next sync, with only what the criteria read.
    """
    store = _store(_settings())
    try:
        report = store.forget(person)
    finally:
        store.close()
    if not report.found:
        out.print(f"Nobody matching {person!r} in the state database; nothing removed.", markup=False)
        return
    removed = ", ".join(f"{n} {what}" for what, n in report.removed.items() if n)
    out.print(f"Forgot {person} ({', '.join(report.person_ids)}): removed {removed}.", markup=False)


@cli.command()
def migrate() -> None:
    """Create or upgrade the state database schema (CONNECTOR_STATE_URL) to this version's."""
    from connector.state.store import StateStore, display_url, normalize_url

    settings = _settings()
    report = StateStore.migrate(settings.state_url)
    where = display_url(normalize_url(settings.state_url))
    if not report.applied:
        out.print(f"{where}: schema already at version {report.after}; nothing to do.", markup=False)
        return
    start = "empty" if report.before is None else f"version {report.before}"
    out.print(f"{where}: migrated from {start} to version {report.after}:", markup=False)
    for step in report.applied:
        out.print(f"  {step.version}: {step.description}", markup=False)


@cli.command("report")
@mappings_option
@click.option("--run", "run_id", help="Run id (default: the latest sync).")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Write the page here.",
)
def report_cmd(mappings_dir: Path | None, run_id: str | None, html_path: Path) -> None:
    """Write a readable report: funnel, changes of a run, MQL->SQL over time, hand-offs, failures."""
    from connector import html_report
    from connector.mapping.loader import load_mappings

    settings = _settings(mappings_dir)
    mappings = load_mappings(settings.mappings_dir)
    store = _store(settings)
    try:
        data = html_report.collect(store, mappings, run_id)
    finally:
        store.close()
    html_path.write_text(html_report.render(data), encoding="utf-8")
    out.print(f"Report written to {html_path}")


# --------------------------------------------------------------------------- sandbox / demo


@cli.command()
@click.option("--port", default=8975, show_default=True, help="Port on 127.0.0.1 (0 = any free port).")
@click.option("--people", default=300, show_default=True, help="Demo people to generate.")
@click.option("--seed", default=7, show_default=True, help="Seed of the demo data.")
def sandbox(port: int, people: int, seed: int) -> None:
    """Serve the HubSpot and Salesforce emulators with demo data until Ctrl-C."""
    from connector import demo as demo_mod

    demo_mod.serve_sandbox(out, port=port, people=people, seed=seed)


@cli.command()
@mappings_option
@click.option("--people", default=300, show_default=True, help="Demo people to generate.")
@click.option("--seed", default=7, show_default=True, help="Seed of the demo data.")
@click.option(
    "--state",
    "state_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Keep the demo's state database here (default: a temporary file).",
)
def demo(mappings_dir: Path | None, people: int, seed: int, state_path: Path | None) -> None:
    """Start the sandbox, sync it, and show stages, owners and reasons. No credentials needed."""
    from connector import demo as demo_mod

    settings = _settings(mappings_dir)
    ok = demo_mod.run_demo(out, settings, people=people, seed=seed, state_path=state_path)
    if not ok:
        raise SystemExit(ExitCode.FATAL)


# --------------------------------------------------------------------------- plumbing


@contextmanager
def _engine(mappings_dir: Path | None) -> Iterator[Any]:
    from connector.crm.factory import build_adapters
    from connector.engine import Engine
    from connector.mapping.loader import load_mappings

    settings = _settings(mappings_dir)
    mappings = load_mappings(settings.mappings_dir)
    adapters = build_adapters(settings, mappings)
    store = _store(settings)
    try:
        yield Engine(
            mappings,
            store,
            adapters,
            fold_plus_tags=settings.email_fold_plus_tags,
            lease_ttl=timedelta(seconds=settings.lease_ttl),
            accounts={"hubspot": settings.hubspot_account, "salesforce": settings.salesforce_account},
        )
    finally:
        store.close()


def _store(settings: Settings) -> StateStore:
    from connector.state.store import StateStore

    return StateStore.open(
        settings.state_url,
        write_retry_limit=settings.write_retry_limit,
        write_retry_backoff=timedelta(seconds=settings.write_retry_backoff),
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn errors into one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="connector", standalone_mode=False)
    except click.exceptions.Abort:
        err.print("Aborted.")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.CONFIG)
    except MappingError as exc:
        for issue in exc.issues:
            err.print(issue.render(), markup=False)
        err.print(f"{len(exc.issues)} problem(s) found.", markup=False)
        sys.exit(exc.exit_code)
    except ConnectorError as exc:
        err.print(f"error: {redact(exc.message)}", markup=False)
        if exc.detail:
            log.info("detail: %s", exc.detail)
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except Exception as exc:
        log.debug("internal error", exc_info=True)
        err.print(
            f"internal error: {type(exc).__name__}: {redact(_first_line(exc))} "
            "(rerun with --log-level DEBUG for details and report it)",
            markup=False,
        )
        sys.exit(ExitCode.FATAL)


def _first_line(exc: BaseException) -> str:
    """The gist of an unexpected error: database errors append the SQL and its parameters (which
    can hold personal data) on later lines; those go to the DEBUG log only."""
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else ""

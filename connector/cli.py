"""Command line: `connector validate | plan | sync | explain | status | sandbox | demo`.

Every `ConnectorError` becomes one clear message on stderr and its class's exit code (2 config,
3 auth, 4 partial, 5 transient, 1 fatal); nothing a user can cause prints a traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from connector import __version__
from connector.errors import ConnectorError, ExitCode, MappingError
from connector.observability import configure_logging, redact
from connector.settings import Settings, load_settings

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
def cli(log_level: str) -> None:
    """Lifecycle connector: shared MQL/SQL criteria, executed against your CRM.

    Configuration comes from CONNECTOR_* environment variables (or a .env file); criteria and
    routing from the YAML files in CONNECTOR_MAPPINGS_DIR (default ./mappings).
    """
    configure_logging(log_level)


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
    help="Also check the files against each configured CRM: properties, options, owners, sources.",
)
def validate(mappings_dir: Path | None, online: bool) -> None:
    """Check the mapping files; print OK or every problem with file:line:column."""
    from connector.mapping.loader import load_mappings

    settings = _settings(mappings_dir)
    mappings = load_mappings(settings.mappings_dir)
    checked = _validate_online(settings, mappings) if online else []
    c = mappings.criteria
    out.print(
        f"OK: {settings.mappings_dir} — {len(c.signals)} signals, {len(c.fit.rules)} fit rules, "
        f"{len(c.rules)} stage rules, {len(c.disqualifiers)} disqualifiers, "
        f"{len(mappings.routing.pools)} pools (criteria version {mappings.criteria_version})"
        + (f"; checked online against {', '.join(checked)}" if checked else "")
    )


def _validate_online(settings: Settings, mappings: Any) -> list[str]:
    """Run every configured CRM's online checker; raise one MappingError with all their issues."""
    from connector.crm.online import CHECKS

    issues = []
    checked = []
    for crm in mappings.crms:
        check = CHECKS.get(crm)
        if check is None:
            err.print(f"note: no online check for {crm} yet; its mapping was checked offline only")
            continue
        issues += check(settings, mappings)
        checked.append(crm)
    if issues:
        raise MappingError(issues)
    return checked


# --------------------------------------------------------------------------- plan / sync


@cli.command()
@mappings_option
@click.option("--limit", default=50, show_default=True, help="Rows of changes to show (0 = all).")
@click.option("--json", "as_json", is_flag=True, help="Print the changes as JSON.")
def plan(mappings_dir: Path | None, limit: int, as_json: bool) -> None:
    """Show what `sync` would change in the CRM. Writes nothing, to the CRM or the state."""
    from connector import report as rep

    with _engine(mappings_dir) as engine:
        report = engine.sync(dry_run=True, command="plan")
    if as_json:
        out.print_json(data=rep.plan_json(report))
        return
    rep.print_plan(out, report, limit=limit)


@cli.command()
@mappings_option
def sync(mappings_dir: Path | None) -> None:
    """Pull changes, evaluate the criteria, route owners and write what changed."""
    from connector import report as rep

    with _engine(mappings_dir) as engine:
        report = engine.sync(command="sync")
    rep.print_summary(out, report)
    if report.failures:
        raise SystemExit(report.exit_code)


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
        err.print(f"No contact found for {person!r} in HubSpot.")
        raise SystemExit(ExitCode.CONFIG)
    if as_json:
        out.print_json(data=rep.explain_json(result, stored))
        return
    rep.print_explain(out, result, stored)


@cli.command()
def status() -> None:
    """Recent runs, cursors, people per stage and parked write failures."""
    from connector import report as rep
    from connector.state.store import StateStore

    settings = _settings()
    store = StateStore.open(settings.state_url)
    try:
        rep.print_status(out, store)
    finally:
        store.close()


# --------------------------------------------------------------------------- sandbox / demo


@cli.command()
@click.option("--port", default=8975, show_default=True, help="Port on 127.0.0.1 (0 = any free port).")
@click.option("--people", default=300, show_default=True, help="Demo people to generate.")
@click.option("--seed", default=7, show_default=True, help="Seed of the demo data.")
def sandbox(port: int, people: int, seed: int) -> None:
    """Serve the HubSpot emulator with demo data until Ctrl-C."""
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
    from connector.crm.factory import hubspot_adapter
    from connector.engine import Engine
    from connector.errors import ConfigError
    from connector.mapping.loader import load_mappings
    from connector.state.store import StateStore

    settings = _settings(mappings_dir)
    mappings = load_mappings(settings.mappings_dir)
    if mappings.hubspot is None:
        raise ConfigError(f"{settings.mappings_dir}/hubspot.yaml is missing")
    adapter = hubspot_adapter(settings, mappings.hubspot)
    store = StateStore.open(settings.state_url)
    try:
        yield Engine(mappings, store, {"hubspot": adapter})
    finally:
        store.close()


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
            f"internal error: {type(exc).__name__}: {redact(str(exc))} "
            "(rerun with --log-level DEBUG for details and report it)",
            markup=False,
        )
        sys.exit(ExitCode.FATAL)

"""Operations on the state: exit codes, leases between runs, parked writes and their retries,
`status`, `migrate` and `forget`, each through the CLI against an emulator on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.state import migrations
from connector.state.store import StateStore

from .harness import CrmHarness, OwnedState, Runner

pytestmark = pytest.mark.integration


def open_store(runner: Runner, **kwargs: object) -> StateStore:
    return StateStore.open(runner.state_url, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- exit codes


def test_exit_0_when_everything_was_written(
    harness: CrmHarness, runner: Runner, reference: OwnedState
) -> None:
    assert runner.run("sync") == 0
    assert harness.state() == reference


def test_exit_1_when_records_are_parked_then_retry_failed_clears_them(
    harness: CrmHarness, runner: Runner, reference: OwnedState, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.remove_option("hs_lead_status", "NEW")
    assert runner.run("sync") == 1
    out = capsys.readouterr().out
    assert "INVALID_OPTION" in out or "VALIDATION_ERROR" in out
    store = open_store(runner)
    try:
        parked = store.failed_writes()
        assert parked
        assert all(f.changes.get("hs_lead_status") == "NEW" for f in parked)
        assert all("NEW" in f.error for f in parked)  # the CRM's own reason is kept
    finally:
        store.close()
    assert runner.run("status") == 0
    status = capsys.readouterr().out
    assert "Parked write failures" in status
    assert "hs_lead_status=NEW" in status

    harness.restore_options("hs_lead_status")
    assert runner.run("retry-failed") == 0
    assert "0 still parked" in capsys.readouterr().out
    assert harness.state() == reference
    assert runner.run("retry-failed") == 0
    assert "nothing to retry" in capsys.readouterr().out


def test_exit_2_for_configuration(runner: Runner, capsys: pytest.CaptureFixture[str]) -> None:
    runner.monkeypatch.delenv("CONNECTOR_HUBSPOT_TOKEN")
    assert runner.run("sync") == 2
    assert "CONNECTOR_HUBSPOT_TOKEN" in capsys.readouterr().err


def test_exit_3_for_authentication(harness: CrmHarness, runner: Runner) -> None:
    harness.revoke_credentials()
    assert runner.run("sync") == 3


def test_exit_4_while_another_run_holds_the_lease_then_takeover_after_expiry(
    harness: CrmHarness, runner: Runner, reference: OwnedState, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(runner)
    try:
        lease = store.acquire_lease(f"{harness.crm}:default:contacts", "backfill-host:77", run_id="manual-1")
    finally:
        store.close()
    assert runner.run("sync") == 4
    err = capsys.readouterr().err
    assert "backfill-host:77" in err
    assert harness.writes() == []  # blocked runs change nothing
    assert runner.run("status") == 0
    status = capsys.readouterr().out
    assert "backfill-host:77" in status
    assert "blocked" in status

    # The holder crashes: once its lease expires, the next run takes the scope over.
    later = lease.store.clock() + timedelta(minutes=11)
    store = open_store(runner, clock=lambda: later)
    try:
        taken = store.acquire_lease(f"{harness.crm}:default:contacts", "scheduler:1")
        assert taken.generation == 2
        taken.release()
    finally:
        store.close()
    assert runner.run("sync") == 0
    assert harness.state() == reference


def test_exit_5_for_an_answer_the_connector_does_not_understand(
    harness: CrmHarness, runner: Runner, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.server_error("search", times=1, status=400)
    assert runner.run("sync") == 5
    assert "Traceback" not in capsys.readouterr().err


# --------------------------------------------------------------------------- retries on later runs


def test_parked_writes_are_retried_by_later_runs_until_the_limit(
    harness: CrmHarness, runner: Runner, reference: OwnedState, capsys: pytest.CaptureFixture[str]
) -> None:
    runner.monkeypatch.setenv("CONNECTOR_WRITE_RETRY_LIMIT", "2")
    runner.monkeypatch.setenv("CONNECTOR_WRITE_RETRY_BACKOFF", "0")  # due at once, to see the count
    harness.remove_option("hs_lead_status", "NEW")
    assert runner.run("sync") == 1
    assert runner.run("sync") == 1  # due: retried (re-read, re-evaluated), refused again: limit hit
    store = open_store(runner)
    try:
        parked = store.failed_writes()
        assert parked
        assert {f.attempts for f in parked} == {2}
        assert all(f.parked for f in parked)
    finally:
        store.close()
    capsys.readouterr()
    assert runner.run("sync") == 0  # parked: later runs leave them alone
    assert "Retried" not in capsys.readouterr().out
    assert runner.run("status") == 0
    assert "parked: run retry-failed" in capsys.readouterr().out
    harness.restore_options("hs_lead_status")
    assert runner.run("retry-failed") == 0
    assert harness.state() == reference


# --------------------------------------------------------------------------- migrate and forget


def test_an_old_state_database_is_refused_until_migrate(
    harness: CrmHarness, runner: Runner, reference: OwnedState, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = StateStore._engine(runner.state_url)
    with engine.begin() as conn:
        migrations.m001_initial.upgrade(conn)
        migrations._set_version(conn, 1)
    engine.dispose()
    assert runner.run("sync") == 2
    assert "connector migrate" in capsys.readouterr().err
    assert harness.writes() == []
    assert runner.run("migrate") == 0
    out = capsys.readouterr().out
    assert f"from version 1 to version {migrations.HEAD}" in out
    assert runner.run("migrate") == 0
    assert "nothing to do" in capsys.readouterr().out
    assert runner.run("sync") == 0
    assert harness.state() == reference


def test_forget_erases_a_person_and_says_what_was_removed(
    harness: CrmHarness, runner: Runner, capsys: pytest.CaptureFixture[str]
) -> None:
    assert runner.run("sync") == 0
    store = open_store(runner)
    try:
        audited = store.audit_rows()
        person = audited[0]["person_id"]
        email = store.person_email(person)
    finally:
        store.close()
    assert email
    capsys.readouterr()
    assert runner.run("forget", email.upper()) == 0
    out = capsys.readouterr().out
    assert f"Forgot {email.upper()}" in out
    assert "audit payloads" in out
    assert "persons" in out
    store = open_store(runner)
    try:
        assert store.find_person(email) is None
        assert store.decision(person) is None
        assert all(r["before"] is None and r["after"] is None for r in store.audit_rows(person_id=person))
    finally:
        store.close()
    assert runner.run("forget", email) == 0
    assert "nothing removed" in capsys.readouterr().out


def test_the_readme_documents_every_exit_code() -> None:
    import re

    from connector.errors import ExitCode

    from .harness import REPO

    readme = (REPO / "README.md").read_text()
    section = readme.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(m) for m in re.findall(r"^\| (\d) \|", section, flags=re.MULTILINE)}
    codes = {v for k, v in vars(ExitCode).items() if k.isupper()}
    assert documented == codes == {0, 1, 2, 3, 4, 5}

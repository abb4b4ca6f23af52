"""Secrets stay secret and writes stay inside the mapping.

A full sync runs at DEBUG with a distinctive token, through retries, CRM error bodies that echo the
token back, an authentication failure and every read-only command; the token must appear in no
log line, no output, no error and no row of any state table.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from connector.settings import load_settings
from connector.state import schema as t
from connector.state.store import StateStore

from .harness import REPO, CrmHarness, Runner

pytestmark = pytest.mark.integration

TOKEN = "zq7-Distinctive-Secret-4242-kx"


def _everything_stored(state_url: str) -> str:
    store = StateStore.open(state_url)
    try:
        with store._c() as c:
            return "\n".join(
                repr(tuple(row)) for table in t.metadata.sorted_tables for row in c.execute(select(table))
            )
    finally:
        store.close()


def test_no_token_in_logs_errors_output_or_state(
    harness: CrmHarness, runner: Runner, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.use_token(TOKEN)  # type: ignore[attr-defined]
    runner.monkeypatch.setenv("CONNECTOR_HUBSPOT_TOKEN", TOKEN)
    harness.rate_limit("search", times=2, policy="SECONDLY", retry_after=1)
    harness.server_error_echoing("write", f"Bearer {TOKEN} rejected; token={TOKEN}")  # type: ignore[attr-defined]
    assert runner.run("--log-level", "DEBUG", "sync") == 0
    assert runner.run("--log-level", "DEBUG", "plan") == 0
    assert runner.run("--log-level", "DEBUG", "status") == 0
    harness.revoke_credentials()
    assert runner.run("--log-level", "DEBUG", "sync") == 3
    captured = capsys.readouterr()
    seen = captured.out + captured.err
    assert "debug" in captured.err.lower()  # logging really was at DEBUG
    assert "401" in captured.err
    assert TOKEN not in seen
    assert TOKEN not in _everything_stored(runner.state_url)


def test_settings_keep_the_token_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_HUBSPOT_TOKEN", TOKEN)
    settings = load_settings()
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings.model_dump())
    assert settings.require_hubspot_token().get_secret_value() == TOKEN


def test_the_token_can_come_from_a_file_the_environment_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "hubspot-token"
    secret.write_text(TOKEN + "\n")
    monkeypatch.setenv("CONNECTOR_HUBSPOT_TOKEN_FILE", str(secret))
    assert load_settings().require_hubspot_token().get_secret_value() == TOKEN
    monkeypatch.setenv("CONNECTOR_HUBSPOT_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(Exception, match="CONNECTOR_HUBSPOT_TOKEN_FILE") as caught:
        load_settings().require_hubspot_token()
    assert getattr(caught.value, "exit_code", None) == 2


def test_only_properties_the_mapping_lists_are_ever_written(
    harness: CrmHarness, runner: Runner, tmp_path: Path
) -> None:
    folder = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", folder)
    text = (folder / "hubspot.yaml").read_text()
    narrowed, replaced = re.subn(r"(?m)^writes: \[.*\]$", "writes: [lifecyclestage]", text)
    narrowed, dropped = re.subn(r"(?m)^stage_reason:\n(  .*\n)+", "", narrowed)  # it must be written
    assert (replaced, dropped) == (1, 1)
    (folder / "hubspot.yaml").write_text(narrowed)
    runner.monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(folder))
    assert runner.run("sync") == 0
    written = {prop for _rid, prop, _value in harness.writes()}
    assert written == {"lifecyclestage"}

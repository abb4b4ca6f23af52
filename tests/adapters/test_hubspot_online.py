"""`connector validate --online` against the emulator: what only the live portal can reveal,
reported at the file:line to change, through the real CLI."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.cli import main
from connector.sandbox.hubspot_app import HubSpotEmulator
from connector.sandbox.hubspot_store import HubSpotStore
from connector.sandbox.server import ServerThread, serve_in_thread

from .portal import MAPPINGS


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def demo_portal(demo, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HubSpotStore, ServerThread]]:
    store, _ = demo
    with serve_in_thread(HubSpotEmulator(store)) as server:
        monkeypatch.setenv("CONNECTOR_HUBSPOT_BASE_URL", server.url)
        monkeypatch.setenv("CONNECTOR_HUBSPOT_TOKEN", store.access_token)
        yield store, server


def edited_mappings(tmp_path: Path, edits: dict[str, list[tuple[str, str]]]) -> Path:
    """A copy of the shipped mappings with exact text replacements (line numbers stay put)."""
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    for name, replacements in edits.items():
        path = target / name
        text = path.read_text()
        for old, new in replacements:
            assert old in text, f"{old!r} not in {name}"
            text = text.replace(old, new, 1)
        path.write_text(text)
    return target


def line_of(path: Path, fragment: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if fragment in line)


def test_the_shipped_mappings_against_the_demo_portal_flag_only_the_archived_rep(demo_portal, capsys) -> None:
    store, _ = demo_portal
    assert run_cli("validate", "--online", "--mappings", str(MAPPINGS)) == 2
    err = capsys.readouterr().err
    line = line_of(MAPPINGS / "routing.yaml", "chloe:")
    assert f"routing.yaml:{line}:" in err
    assert "reps.chloe.hubspot_owner_id: the HubSpot owner 70000003 (Chloe Chen) is archived" in err
    assert "1 problem(s) found." in err
    assert not [r for r in store.requests if r.method != "GET"], "validate only reads"


def test_every_kind_of_mismatch_is_reported_at_its_line(demo_portal, tmp_path: Path, capsys) -> None:
    store, _ = demo_portal
    store.events_api = False  # a Professional portal
    folder = edited_mappings(
        tmp_path,
        {
            "hubspot.yaml": [
                ("title:        {property: jobtitle}", "title:        {property: jobtitel}"),
                (
                    "unsubscribed: {property: hs_email_optout, type: bool}",
                    "unsubscribed: {property: email, type: bool}",
                ),
                ("    mql: marketingqualifiedlead", "    mql: mql"),
                ("    in_progress: IN_PROGRESS", "    in_progress: WORKING"),
            ],
            "routing.yaml": [('hubspot_owner_id: "70000003"', 'hubspot_owner_id: "123"')],
        },
    )
    assert run_cli("validate", "--online", "--mappings", str(folder)) == 2
    err = capsys.readouterr().err
    hubspot, criteria, routing = (str(folder / n) for n in ("hubspot.yaml", "criteria.yaml", "routing.yaml"))

    def at(file: str, fragment: str) -> str:
        return f"{file}:{line_of(Path(file), fragment)}:"

    expected = [
        (at(hubspot, "jobtitel"), "the portal has no contact property 'jobtitel'", "did you mean 'jobtitle'"),
        (at(hubspot, "unsubscribed:"), "'email' is of type string, which cannot be read as bool", ""),
        (at(hubspot, "mql: mql"), "'mql' is not an option of lifecyclestage", "marketingqualifiedlead"),
        (at(hubspot, "in_progress: WORKING"), "'WORKING' is not an option of hs_lead_status", "IN_PROGRESS"),
        (at(hubspot, "enabled: true"), "HubSpot refused the Events API (403)", ""),
        (at(routing, '"123"'), "HubSpot has no owner with id 123 (rep 'chloe')", "not the user id"),
        (
            at(criteria, "types: [chat]"),
            "no source in hubspot.yaml produces chat",
            "Events API is not available",
        ),
        (at(criteria, "types: [page_view]"), "no source in hubspot.yaml produces page_view", ""),
    ]
    for where, message, hint in expected:
        found = [line for line in err.splitlines() if line.startswith(where) and message in line]
        assert found, f"missing {where} {message}\n{err}"
        assert hint in found[0]
    assert re.search(r"(\d+) problem\(s\) found", err)


def test_history_sources_satisfy_signals_on_a_portal_without_events(
    demo_portal, tmp_path: Path, capsys
) -> None:
    store, _ = demo_portal
    store.events_api = False
    folder = edited_mappings(
        tmp_path,
        {
            "hubspot.yaml": [
                ("tier: enterprise", "tier: professional"),
                ("    enabled: true", "    enabled: false"),
                (
                    "  date_properties:",
                    "  history:\n"
                    "    - {property: hs_analytics_num_page_views, type: page_view, counter: true}\n"
                    "    - {property: recent_conversion_event_name, type: form_submission, value_as: name}\n"
                    "  date_properties:",
                ),
            ]
        },
    )
    assert run_cli("validate", "--online", "--mappings", str(folder)) == 2
    err = capsys.readouterr().err
    url_line = line_of(folder / "criteria.yaml", "url_patterns:")
    assert f"criteria.yaml:{url_line}:" in err  # page views from a counter carry no URL...
    assert "the url_patterns of 'pricing_views_30d' can never match" in err
    assert "hs_analytics_last_url" in err  # ...and the hint names the history that would
    assert "content_downloads_30d" not in err  # form submissions now carry their name
    assert "forms_90d" not in err
    assert "produces chat" in err  # chat still has no source below Enterprise
    assert "Events API" not in err  # events are off, so nothing is said about them

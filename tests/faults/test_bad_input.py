"""Bad input never crashes a run: hostile mapping files stop with a clear message (exit 2), and
dirty CRM records are evaluated or skipped with a reason while the rest of the run goes on.

The property-based test generates whole portals of dirty contacts — nulls, invalid and absurd
dates, very long strings, unicode and control characters, duplicate emails in several spellings,
values of the wrong type, unknown stages and owners — and runs them through pull -> evaluate ->
write against the emulator over real HTTP, on each state backend.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from connector.sandbox.hubspot_store import hs_datetime
from connector.state import schema as t
from connector.state.store import StateStore

from .conftest import NOW
from .harness import REPO, HubSpotHarness, Runner

pytestmark = pytest.mark.integration

# --------------------------------------------------------------------------- mapping files

HOSTILE_MAPPINGS = {
    # id: (file, content, fragment of the message)
    "alias-bomb": (
        "criteria.yaml",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "alias",
    ),
    "deep-nesting": ("criteria.yaml", "x: " + "[" * 5000 + "]" * 5000 + "\n", "nesting"),
    "huge-file": ("routing.yaml", "# pad\n" * 400_000, "bytes"),
    "wrong-types": ("criteria.yaml", "stages: 42\nsignals: [1, 2]\nrules: {a: b}\n", "criteria.yaml:"),
    "binary": ("hubspot.yaml", "\x00\xff\xfe garbage", "hubspot.yaml"),
    "not-a-mapping": ("routing.yaml", "- just\n- a list\n", "expected a mapping"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_MAPPINGS))
@pytest.mark.parametrize("command", ["validate", "sync"])
def test_hostile_mapping_files_stop_with_a_clear_message(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    command: str,
) -> None:
    from .harness import run_cli

    file, content, fragment = HOSTILE_MAPPINGS[case]
    folder = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", folder)
    (folder / file).write_bytes(content.encode("utf-8", "surrogateescape"))
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(folder))
    monkeypatch.setenv("CONNECTOR_HUBSPOT_TOKEN", "unused-token")
    monkeypatch.setenv("CONNECTOR_HUBSPOT_BASE_URL", "http://127.0.0.1:9")  # never reached
    assert run_cli(command) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "internal error" not in err
    assert fragment.lower() in err.lower()


# --------------------------------------------------------------------------- dirty CRM records

nasty_text = st.one_of(
    st.none(),
    st.just(""),
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x1F), max_size=10),  # control chars
    st.sampled_from(["\x00", "\u202e\u200b", "🙂" * 50, "' OR 1=1 --", "<script>", "Ünïcödé", "null", "NaN"]),
    st.builds(
        lambda ch, n: ch * n, st.sampled_from(["x", "é", "🙂", "\x07"]), st.integers(5000, 70000)
    ),  # long
)
nasty_date = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "",
            "not a date",
            "2026-02-30T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "99999999999999999999",
            "-5",
            "1e12",
            "2026-11-01",
        ]
    ),
    st.integers(min_value=0, max_value=4_102_444_800_000).map(str),
)
nasty_number = st.one_of(
    st.none(), st.sampled_from(["abc", "1e309", "-0", "NaN", "Infinity", "12.5"]), st.integers().map(str)
)
emails = st.one_of(
    st.none(),
    st.sampled_from(["", "n/a", "dup@acme.example", " DUP@Acme.Example ", "dup@acme.example\u200b", "a@b@c"]),
    st.emails().map(str),
    st.text(max_size=30).map(lambda s: s + "@x.example"),
    st.just("x" * 400 + "@long.example"),
)
contact = st.fixed_dictionaries(
    {
        "email": emails,
        "jobtitle": nasty_text,
        "industry": nasty_text,
        "country": nasty_text,
        "employee_count": nasty_number,
        "hs_email_optout": st.one_of(st.none(), st.sampled_from(["true", "false", "TRUE", "maybe", ""])),
        "lifecyclestage": st.one_of(
            st.none(), st.sampled_from(["", "subscriber", "lead", "customer", "opportunity", "foo", "LEAD"])
        ),
        "hs_lead_status": st.one_of(st.none(), st.sampled_from(["", "NEW", "CONNECTED", "weird"])),
        "hubspot_owner_id": st.one_of(st.none(), st.sampled_from(["", "70000001", "999", "abc"])),
        "hs_email_last_open_date": nasty_date,
        "hs_email_last_click_date": nasty_date,
        "hs_social_last_engagement": nasty_date,
    }
)


@pytest.fixture
def dirty(state_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    harness = HubSpotHarness(NOW)
    runner = Runner(harness, state_url, monkeypatch)
    yield harness, runner
    harness.close()


def _load(harness: HubSpotHarness, contacts: list[dict[str, Any]]) -> None:
    store = harness.store
    with store.lock:
        store.contacts.clear()
        store.events.clear()
        store.engagements.clear()
        store.associations.clear()
        store.requests.clear()
        for i, props in enumerate(contacts):
            cid = str(5000 + i)
            stamp = hs_datetime(
                NOW.replace(microsecond=0) - __import__("datetime").timedelta(days=1, seconds=i)
            )
            store.contacts[cid] = {
                "hs_object_id": cid,
                "createdate": stamp,
                "lastmodifieddate": stamp,
                **props,
            }


def _wipe(state_url: str) -> None:
    store = StateStore.open(state_url)
    try:
        with store.transaction(), store._c() as c:
            for table in reversed(t.metadata.sorted_tables):
                if table.name != "meta":
                    c.execute(delete(table))
    finally:
        store.close()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(contacts=st.lists(contact, min_size=1, max_size=12))
def test_dirty_records_are_evaluated_or_skipped_never_crash_the_run(dirty, contacts) -> None:  # type: ignore[no-untyped-def]
    harness, runner = dirty
    _wipe(runner.state_url)
    _load(harness, contacts)
    code = runner.run("sync")
    assert code in (0, 1)  # done, or done with some records parked/skipped: never a crash
    allowed = _allowed_values()
    for rid, prop, value in harness.writes():
        assert prop in allowed, (rid, prop)  # only properties the mapping lists under `writes`
        values = allowed[prop]
        assert values is None or value in values, (rid, prop, value)
    store = StateStore.open(runner.state_url)
    try:
        for parked in store.failed_writes():
            assert parked.error  # parked with the CRM's reason
        [run] = store.runs(1)
        assert run.status in ("ok", "partial")
    finally:
        store.close()
    before = len(harness.writes())
    assert runner.run("sync") in (0, 1)
    assert len(harness.writes()) == before  # and a second run has nothing new to write


def _allowed_values() -> dict[str, set[str] | None]:
    """Property -> the values the connector may write there (None: any text, e.g. a reason)."""
    import yaml

    hub = yaml.safe_load((REPO / "mappings" / "hubspot.yaml").read_text())
    routing = yaml.safe_load((REPO / "mappings" / "routing.yaml").read_text())
    known: dict[str, set[str] | None] = {
        hub["stage"]["property"]: set(hub["stage"]["values"].values()),
        hub["lead_status"]["property"]: set(hub["lead_status"]["values"].values()),
        hub["owner"]["property"]: {str(r["hubspot_owner_id"]) for r in routing["reps"].values()},
    }
    return {prop: known.get(prop) for prop in hub["writes"]}

"""One person across HubSpot and Salesforce: email keys, declared links, and merges in the store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.lifecycle.identity import Candidate, group_records, match_key
from connector.model import Activity
from connector.state.store import StateStore


@pytest.mark.parametrize(
    ("raw", "fold", "expected"),
    [
        (" Ana+Webinar@ACME.com ", False, "ana+webinar@acme.com"),
        (" Ana+Webinar@ACME.com ", True, "ana@acme.com"),
        ("ana@acme.com", True, "ana@acme.com"),
        ("+tag@acme.com", True, "+tag@acme.com"),  # nothing before the +: keep the address as it is
        ("n/a", True, None),
    ],
)
def test_match_key(raw: str, fold: bool, expected: str | None) -> None:
    assert match_key(raw, fold_plus_tags=fold) == expected


EMAILS = st.sampled_from(["a@x.com", "A@X.com ", "b@x.com", "c@y.com", None, "junk"])
RECORDS = st.lists(
    st.tuples(st.sampled_from(["hubspot", "salesforce"]), st.integers(0, 6), EMAILS), min_size=1, max_size=12
)


def _candidates(rows, links):  # type: ignore[no-untyped-def]
    keys = [(crm, "obj", str(n)) for crm, n, _e in rows]
    seen: dict[tuple[str, str, str], Candidate] = {}
    for (_crm, n, email), key in zip(rows, keys, strict=True):
        declared = tuple(keys[i % len(keys)] for i in links.get(n, ()))
        seen.setdefault(key, Candidate(key, match_key(email), declared))
    return list(seen.values())


@given(rows=RECORDS, links=st.dictionaries(st.integers(0, 6), st.lists(st.integers(0, 11), max_size=2)))
def test_grouping_is_a_partition_that_respects_emails_and_links(rows, links) -> None:  # type: ignore[no-untyped-def]
    candidates = _candidates(rows, links)
    groups = group_records(candidates)
    flat = [key for group in groups for key in group]
    assert sorted(flat) == sorted(c.record for c in candidates)  # every record exactly once
    group_of = {key: i for i, group in enumerate(groups) for key in group}
    for a in candidates:
        for link in a.links:
            assert group_of[a.record] == group_of[link]
        for b in candidates:
            if a.email_key is not None and a.email_key == b.email_key:
                assert group_of[a.record] == group_of[b.record]


def test_different_emails_without_a_link_stay_apart() -> None:
    groups = group_records(
        [
            Candidate(("hubspot", "contacts", "1"), "a@x.com"),
            Candidate(("salesforce", "Lead", "00Q1"), "b@x.com"),
        ]
    )
    assert len(groups) == 2


# --------------------------------------------------------------------------- the store


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")


def test_a_salesforce_lead_joins_the_hubspot_person_by_email(store: StateStore) -> None:
    hubspot = store.resolve_person("hubspot", "contacts", "101", "ana@acme.com")
    lead = store.resolve_person("salesforce", "Lead", "00Q1", match_key("  ANA@acme.com "))
    assert lead == hubspot


def test_a_link_joins_records_whose_emails_differ(store: StateStore) -> None:
    pid = store.resolve_person(
        "hubspot", "contacts", "101", "ana@acme.com", links=[("salesforce", "Lead", "00Q1")]
    )
    assert store.resolve_person("salesforce", "Lead", "00Q1", "a.alvarez@acme.com") == pid
    assert sorted(store.records_of(pid)) == [("hubspot", "contacts", "101"), ("salesforce", "Lead", "00Q1")]


def test_a_link_between_two_known_people_merges_them(store: StateStore) -> None:
    now = datetime.now(UTC)
    first = store.resolve_person("hubspot", "contacts", "101", "ana@acme.com")
    second = store.resolve_person("salesforce", "Lead", "00Q1", "a.alvarez@acme.com")
    assert first != second
    store.add_activities([Activity(second, "call", now, "salesforce:Task", "00T1")])
    merged = store.resolve_person(
        "hubspot", "contacts", "101", "ana@acme.com", links=[("salesforce", "Lead", "00Q1")]
    )
    assert merged == first
    assert store.find_person("00Q1") == first
    assert [a.source_id for a in store.timelines([first])[first]] == ["00T1"]
    assert store.find_person(second) is None  # the other person is gone, not orphaned

"""Pure parts of issue 8: which shard decides a record, and when two CRMs drift apart."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.lifecycle.drift import RecordView, person_drift, rep_index
from connector.lifecycle.sharding import Shard, fnv1a, shard_key, shard_of

STAGES = ["subscriber", "lead", "mql", "sql", "opportunity", "customer"]
REPS = rep_index(
    {"ana": {"hubspot": "701", "salesforce": "005A"}, "ben": {"hubspot": "702", "salesforce": "005B"}}
)


def view(
    crm: str, stage: str | None, owner: str | None, object_type: str = "x", rid: str = "1"
) -> RecordView:
    return RecordView(crm, object_type, rid, stage, owner)


# --------------------------------------------------------------------------- sharding

emails = st.from_regex(r"[a-z]{1,8}@[a-z]{1,6}\.(com|io)", fullmatch=True)


@given(emails, st.integers(min_value=1, max_value=16))
def test_every_record_of_one_email_lands_in_one_shard_whatever_its_case_or_crm(email: str, n: int) -> None:
    keys = {
        shard_key("hubspot", "contacts", "1", f"  {email.upper()} "),
        shard_key("salesforce", "Lead", "00Q1", email),
        shard_key("salesforce", "Contact", "0031", email.capitalize()),
    }
    assert len(keys) == 1
    [key] = keys
    owners = [i for i in range(n) if Shard(i, n).owns(key)]
    assert len(owners) == 1  # exactly one shard decides it


def test_records_without_email_follow_their_link_or_their_own_id() -> None:
    link = ("salesforce", "Lead", "00Q9")
    assert shard_key("hubspot", "contacts", "5", None, [link]) == shard_key(
        "salesforce", "Lead", "00Q9", "n/a"
    )
    assert shard_key("hubspot", "contacts", "5", "") == "record:hubspot:contacts:5"


def test_the_hash_is_stable_across_processes_and_spreads_keys() -> None:
    assert fnv1a("") == 0xCBF29CE484222325
    assert fnv1a("a") == 0xAF63DC4C8601EC8C  # FNV-1a 64 test vector
    counts = [0] * 4
    for i in range(4000):
        counts[shard_of(f"email:user{i}@example.com", 4)] += 1
    assert min(counts) > 850  # roughly a quarter each


@pytest.mark.parametrize("text", ["4/4", "-1/4", "1/0", "1", "a/b", "1/4/2"])
def test_bad_shard_arguments_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"I/N|0 <= I < N"):
        Shard.parse(text)


def test_shard_parse_and_print_round_trip() -> None:
    assert Shard.parse(" 3/8 ") == Shard(3, 8)
    assert str(Shard(3, 8)) == "3/8"


# --------------------------------------------------------------------------- drift


def test_one_crm_only_or_agreement_is_no_drift() -> None:
    assert person_drift("p", [view("hubspot", "mql", "701")], stage_order=STAGES, reps=REPS) is None
    both = [view("hubspot", "sql", "701"), view("salesforce", "sql", "005A", "Lead")]
    assert person_drift("p", both, stage_order=STAGES, reps=REPS) is None


def test_owner_drift_is_compared_by_rep_not_by_id() -> None:
    found = person_drift(
        "p",
        [view("hubspot", "sql", "702"), view("salesforce", "sql", "005A", "Lead")],
        stage_order=STAGES,
        reps=REPS,
    )
    assert found is not None
    assert found.fields == ("owner",)
    assert dict(found.owners) == {"hubspot": "ben", "salesforce": "ana"}


def test_an_owner_no_rep_names_is_shown_by_id_and_differs() -> None:
    found = person_drift(
        "p",
        [view("hubspot", "sql", "701"), view("salesforce", "sql", "00GQUEUE", "Lead")],
        stage_order=STAGES,
        reps=REPS,
    )
    assert found is not None
    assert dict(found.owners) == {"hubspot": "ana", "salesforce": "salesforce:00GQUEUE"}


def test_stage_drift_takes_each_crms_highest_record() -> None:
    records = [
        view("hubspot", "mql", None),
        view("salesforce", "lead", "005A", "Lead", "00Q1"),
        view("salesforce", "sql", "005A", "Contact", "0031"),
    ]
    found = person_drift("p", records, stage_order=STAGES, reps=REPS)
    assert found is not None
    assert found.fields == ("stage",)  # hubspot has no owner yet: not an owner conflict
    assert dict(found.stages) == {"hubspot": "mql", "salesforce": "sql"}


def test_a_missing_value_on_one_side_is_not_a_conflict() -> None:
    # Salesforce leads always have an owner (a queue) while the HubSpot contact waits for the hand-off
    records = [view("hubspot", None, None), view("salesforce", "lead", "00GQUEUE", "Lead")]
    assert person_drift("p", records, stage_order=STAGES, reps=REPS) is None


@given(
    st.lists(
        st.tuples(st.sampled_from(["hubspot", "salesforce"]), st.sampled_from([*STAGES, None]),
                  st.sampled_from(["701", "702", "005A", "005B", None])),
        min_size=1, max_size=5,
    )
)  # fmt: skip
def test_drift_is_symmetric_in_record_order(rows: list[tuple[str, str | None, str | None]]) -> None:
    records = [view(crm, stage, owner, rid=str(i)) for i, (crm, stage, owner) in enumerate(rows)]
    forward = person_drift("p", records, stage_order=STAGES, reps=REPS)
    backward = person_drift("p", list(reversed(records)), stage_order=STAGES, reps=REPS)
    assert (forward is None) == (backward is None)
    if forward is not None and backward is not None:
        assert forward.fields == backward.fields
        assert forward.stages == backward.stages
        assert forward.owners == backward.owners

"""Writes over real HTTP: 207 and whole-batch 400 handling, no retry of a 400, backwards stage
moves in HubSpot's documented order, the stage's reason and date properties, concurrent batches."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from connector.errors import FatalError
from connector.model import WriteIntent
from connector.sandbox.hubspot_app import HubSpotEmulator
from connector.sandbox.hubspot_store import HubSpotStore, default_contact_properties, property_definition
from connector.sandbox.server import ServerThread

from .portal import T0, add_contact, make_adapter, mapping, spec_checked


@pytest.fixture
def portal() -> Iterator[tuple[HubSpotStore, HubSpotEmulator, ServerThread]]:
    store = HubSpotStore()
    store.properties["contacts"] = default_contact_properties()
    for i in range(300):
        add_contact(store, 1000 + i, T0, lifecyclestage="lead")
    emulator = HubSpotEmulator(store)
    with spec_checked(emulator) as server:
        yield store, emulator, server


def intent(record_id: str, before: dict[str, str | None] | None = None, **changes: str) -> WriteIntent:
    return WriteIntent(
        crm="hubspot",
        object_type="contacts",
        record_id=record_id,
        person_id=f"p{record_id}",
        changes=changes,
        before=before or {k: None for k in changes},
        reason="rule mql_pricing fired: pricing_views_30d=3",
    )


def updates(store: HubSpotStore) -> list:  # type: ignore[type-arg]
    return [r for r in store.requests if r.path.endswith("/batch/update")]


def test_a_207_writes_the_good_records_and_reports_the_bad_one_with_hubspots_message(portal) -> None:
    store, _, server = portal
    results = make_adapter(server, store).apply(
        [
            intent("1000", lifecyclestage="marketingqualifiedlead"),
            intent("1001", hs_lead_status="NOT_A_STATUS"),
            intent("1002", hubspot_owner_id="999999"),
            intent("1003", lifecyclestage="salesqualifiedlead"),
        ]
    )
    assert [r.ok for r in results] == [True, False, False, True]
    assert "NOT_A_STATUS was not one of the allowed options" in (results[1].error or "")
    assert (results[1].error or "").startswith("VALIDATION_ERROR")
    assert "999999" in (results[2].error or "")
    assert updates(store)[0].status == 207
    assert store.contacts["1000"]["lifecyclestage"] == "marketingqualifiedlead"
    assert store.contacts["1003"]["lifecyclestage"] == "salesqualifiedlead"
    assert store.contacts["1001"].get("hs_lead_status") is None


def test_a_whole_batch_400_is_split_until_the_bad_input_is_found(portal) -> None:
    store, _, server = portal
    store.batch_all_or_nothing = True
    intents = [intent(str(1000 + i), hs_lead_status="OPEN") for i in range(100)]
    intents[37] = intent("1037", hs_lead_status="WRONG")
    results = make_adapter(server, store).apply(intents)
    assert [r.intent.record_id for r in results if not r.ok] == ["1037"]
    assert "WRONG" in (results[37].error or "")
    assert sum(1 for i in range(100) if store.contacts[str(1000 + i)].get("hs_lead_status") == "OPEN") == 99
    assert len(updates(store)) <= 2 * 7 + 1  # bisection: about two calls per halving, not 100


def test_a_400_is_never_retried_but_a_503_is(portal) -> None:
    store, emulator, server = portal
    sleeps: list[float] = []
    adapter = make_adapter(server, store, sleeps=sleeps)
    emulator.fail(400, path_prefix="/crm/v3/objects/contacts/batch/read", body={"status": "error",
        "message": "Invalid input", "category": "VALIDATION_ERROR",
        "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf"})  # fmt: skip
    with pytest.raises(FatalError, match="400 VALIDATION_ERROR"):
        adapter.read_contacts(["1000"])
    assert len([r for r in store.requests if r.path.endswith("/batch/read")]) == 1
    assert sleeps == []
    emulator.fail(503, path_prefix="/crm/v3/objects/contacts/batch/read")
    assert [r.record_id for r in adapter.read_contacts(["1000"])] == ["1000"]
    assert len([r for r in store.requests if r.path.endswith("/batch/read")]) == 3
    assert len(sleeps) == 1


def backwards_mapping(allow: bool):  # type: ignore[no-untyped-def]
    return mapping(lambda d: d["stage"].update(allow_backwards=allow))


def test_a_backward_stage_is_cleared_then_set_then_read_back_when_the_mapping_allows_it(portal) -> None:
    store, _, server = portal
    store.contacts["1000"]["lifecyclestage"] = "salesqualifiedlead"
    adapter = make_adapter(server, store, backwards_mapping(True))
    recycle = intent(
        "1000",
        before={"lifecyclestage": "salesqualifiedlead", "hs_lead_status": None},
        lifecyclestage="lead",
        hs_lead_status="OPEN",
    )
    forward = intent("1001", before={"lifecyclestage": "lead"}, lifecyclestage="marketingqualifiedlead")
    results = adapter.apply([recycle, forward])
    assert [r.ok for r in results] == [True, True]
    sent = [(i["id"], i["properties"]) for r in updates(store) for i in r.body["inputs"]]
    mine = [props for rid, props in sent if rid == "1000"]
    assert mine == [{"lifecyclestage": "", "hs_lead_status": "OPEN"}, {"lifecyclestage": "lead"}]
    assert store.contacts["1000"]["lifecyclestage"] == "lead"
    assert store.contacts["1000"]["hs_lead_status"] == "OPEN"
    reads = [r for r in store.requests if r.path.endswith("/batch/read")]
    assert [i["id"] for i in reads[-1].body["inputs"]] == ["1000"]  # read back, only the moved one
    order = [r.path.rsplit("/", 1)[-1] for r in store.requests if "/objects/contacts/batch/" in r.path]
    assert order[-3:] == ["update", "update", "read"]


def test_a_backward_stage_is_refused_with_the_setting_to_change_when_not_allowed(portal) -> None:
    store, _, server = portal
    store.contacts["1000"]["lifecyclestage"] = "salesqualifiedlead"
    results = make_adapter(server, store, backwards_mapping(False)).apply(
        [intent("1000", before={"lifecyclestage": "salesqualifiedlead"}, lifecyclestage="lead")]
    )
    assert not results[0].ok
    assert "stage.allow_backwards: true" in (results[0].error or "")
    assert updates(store) == []
    assert store.contacts["1000"]["lifecyclestage"] == "salesqualifiedlead"


def test_a_backward_move_sends_the_stage_reason_with_the_set_not_the_clear(portal) -> None:
    """The diff puts `stage_reason` in the stage's intent; clearing must not write it alone."""
    store, _, server = portal
    store.properties["contacts"]["stage_reason"] = property_definition(
        "stage_reason", "Reason", "string", "text"
    )
    store.contacts["1000"]["lifecyclestage"] = "salesqualifiedlead"

    def edit(d):  # type: ignore[no-untyped-def]
        d["stage"]["allow_backwards"] = True
        d["stage_reason"] = {"property": "stage_reason"}
        d["writes"] += ["stage_reason"]

    results = make_adapter(server, store, mapping(edit)).apply(
        [
            intent(
                "1000",
                before={"lifecyclestage": "salesqualifiedlead", "stage_reason": None},
                lifecyclestage="lead",
                stage_reason="recycled: no reply in 30 days",
            )
        ]
    )
    assert results[0].ok
    sent = [i["properties"] for r in updates(store) for i in r.body["inputs"]]
    assert sent == [
        {"lifecyclestage": ""},
        {"lifecyclestage": "lead", "stage_reason": "recycled: no reply in 30 days"},
    ]
    assert store.contacts["1000"]["stage_reason"] == "recycled: no reply in 30 days"


def test_batches_of_100_are_sent_concurrently(portal) -> None:
    store, emulator, server = portal
    barrier = threading.Barrier(3)
    emulator.faults._sleep = lambda _s: barrier.wait(timeout=5)  # all three in flight, or it breaks
    emulator.faults.latency_by_prefix["/crm/v3/objects/contacts/batch/update"] = 0.3
    results = make_adapter(server, store, workers=4).apply(
        [intent(str(1000 + i), hs_lead_status="OPEN") for i in range(300)]
    )
    assert all(r.ok for r in results)
    assert [r.intent.record_id for r in results] == [str(1000 + i) for i in range(300)]
    assert [len(r.body["inputs"]) for r in updates(store)] == [100, 100, 100]

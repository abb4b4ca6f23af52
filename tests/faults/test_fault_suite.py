"""The fault suite: every CRM emulator, every state backend, each fault asserted on outcomes.

Each case injects a fault the real APIs produce, runs `connector sync` (and, when the fault stops
the run, a second sync once it clears), then checks what matters to a user: the exit code, the
waits the retry policy chose, that the CRM ends exactly as an uninterrupted run leaves it, and that
no record was ever written two different values.
"""

from __future__ import annotations

import pytest

from connector.state.store import StateStore

from .harness import CrmHarness, OwnedState, Runner, conflicting_writes

pytestmark = pytest.mark.integration


def settled(harness: CrmHarness, runner: Runner, reference: OwnedState) -> None:
    assert harness.state() == reference
    assert conflicting_writes(harness.writes()) == {}
    store = StateStore.open(runner.state_url)
    try:
        assert store.failed_writes() == []
        assert store.interrupted_writes() == []
        assert store.leases() == []  # every run released its lease, even the failed ones
    finally:
        store.close()


# --------------------------------------------------------------------------- absorbed by retries

# A fault the retry policy absorbs never reaches the state store: the run sees the same answers it
# would without the fault, so these cases run on SQLite only. The cases below, where a fault stops
# the run and the next run resumes from what the store kept, run on both backends.
store_not_involved = pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)


@store_not_involved
@pytest.mark.parametrize(
    ("role", "policy", "retry_after", "waits"),
    [
        pytest.param("search", "SECONDLY", 1, [1.0, 1.0, 1.0], id="search-secondly-burst"),
        pytest.param("write", "TEN_SECONDLY_ROLLING", 2, [2.0, 2.0, 2.0], id="write-burst-retry-after"),
        pytest.param("owners", "TEN_SECONDLY_ROLLING", None, [10.0, 10.0, 10.0], id="burst-no-retry-after"),
    ],
)
def test_429_bursts_are_waited_out(
    harness: CrmHarness,
    runner: Runner,
    reference: OwnedState,
    role: str,
    policy: str,
    retry_after: float | None,
    waits: list[float],
) -> None:
    harness.rate_limit(role, times=3, policy=policy, retry_after=retry_after)
    assert runner.run() == 0
    assert runner.sleeps == waits  # the CRM's Retry-After (or its policy's window) wins over backoff
    settled(harness, runner, reference)


@store_not_involved
@pytest.mark.parametrize(
    ("role", "kind"),
    [
        pytest.param("write", "server_error", id="5xx-storm-on-writes"),
        pytest.param("search", "server_error", id="5xx-storm-on-search"),
        pytest.param("search", "stall", id="timeouts"),
        pytest.param("write", "reset", id="connection-reset-before-write"),
        pytest.param("write", "reset_after", id="connection-reset-after-write-applied"),
        pytest.param("search", "truncate", id="truncated-json"),
        pytest.param("owners", "invalid_json", id="invalid-json"),
        pytest.param("read", "truncate", id="truncated-batch-read"),
    ],
)
def test_short_transport_faults_are_retried(
    harness: CrmHarness, runner: Runner, reference: OwnedState, role: str, kind: str
) -> None:
    if kind == "stall":
        # A real client-side timeout: short, but long enough that a busy machine answers normal
        # requests within it (the stalled ones wait 3 s, or until the test ends).
        runner.monkeypatch.setenv("CONNECTOR_REQUEST_TIMEOUT", "1")
    if kind == "server_error":
        harness.server_error(role, times=3)
    else:
        harness.break_transport(role, kind, times=2)
    assert runner.run() == 0
    expected = 3 if kind == "server_error" else 2
    if kind == "stall":
        assert len(runner.sleeps) >= expected  # a slow machine may time out one more request
    else:
        assert len(runner.sleeps) == expected
    settled(harness, runner, reference)


# --------------------------------------------------------------------------- stop, then recover


def test_a_5xx_storm_longer_than_the_retries_stops_with_exit_3_and_the_rerun_finishes(
    harness: CrmHarness, runner: Runner, reference: OwnedState, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.server_error("write", times=50)
    assert runner.run() == 3
    assert "temporary error" in capsys.readouterr().err
    assert harness.writes() == []
    harness.clear_faults()
    assert runner.run() == 0
    settled(harness, runner, reference)


def test_an_expired_token_stops_with_exit_3_naming_the_setting(
    harness: CrmHarness, runner: Runner, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.revoke_credentials()
    assert runner.run() == 3
    err = capsys.readouterr().err
    assert "TOKEN" in err
    assert "Traceback" not in err
    assert harness.writes() == []


def test_a_token_revoked_mid_run_keeps_what_was_done_and_the_rerun_finishes(
    harness: CrmHarness, runner: Runner, reference: OwnedState, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.revoke_credentials(at_role="write")
    assert runner.run() == 3
    assert "401" in capsys.readouterr().err
    harness.restore_credentials()
    assert runner.run() == 0
    settled(harness, runner, reference)


def test_the_daily_limit_stops_the_run_as_partial_and_the_next_run_resumes(
    harness: CrmHarness, runner: Runner, reference: OwnedState, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.exhaust_daily_limit("write")
    assert runner.run() == 1
    assert "daily" in capsys.readouterr().err.lower()
    assert runner.sleeps == []  # a spent day is not waited out inside the run
    harness.clear_faults()
    assert runner.run() == 0
    settled(harness, runner, reference)


# --------------------------------------------------------------------------- records that vanish


@pytest.mark.parametrize("merged", [False, True], ids=["deleted", "merged"])
def test_a_record_deleted_or_merged_between_read_and_write_is_reported_not_parked(
    harness: CrmHarness,
    runner: Runner,
    reference: OwnedState,
    capsys: pytest.CaptureFixture[str],
    merged: bool,
) -> None:
    ids = harness.record_ids()
    changed = [rid for rid in ids if reference[rid] != harness.state()[rid]]
    victim, survivor = changed[0], ids[-1]
    harness.delete_before_write(victim, merged_into=survivor if merged else None)
    assert runner.run() == 0
    assert "gone" in capsys.readouterr().out
    expected = {rid: values for rid, values in reference.items() if rid != victim}
    assert harness.state() == expected
    store = StateStore.open(runner.state_url)
    try:
        assert store.failed_writes() == []
        outcomes = {r["outcome"] for r in store.audit_rows() if r["record_id"] == victim}
        assert outcomes == {"gone"}
    finally:
        store.close()
    assert runner.run() == 0  # and the next run does not trip over it

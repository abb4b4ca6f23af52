"""Kill the worker with SIGKILL at many points of a sync, rerun it, and compare with a clean run.

The worker is a forked child running `connector sync` against the emulator in this process; the
emulator kills it at the n-th request of a kind, either before handling that request or after
handling it but before answering (a write that landed without the worker ever learning so). A
second, unkilled run then finishes the job. Asserted every time: the CRM ends exactly as an
uninterrupted run leaves it (stages, statuses and round-robin owners alike), no record property was
ever written two different values, no write is left unsettled and no lease is left behind.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import warnings
from collections.abc import Iterator

import pytest

from connector.state.store import StateStore

from .harness import CrmHarness, OwnedState, Runner, conflicting_writes, run_cli

pytestmark = pytest.mark.integration


def kill_points() -> Iterator[object]:
    """Every write request before it is sent and after it lands, plus requests from first to late
    (points past the end of a clean run are skipped, saying so)."""
    for nth in (1, 2):
        for after in (False, True):
            yield pytest.param("write", nth, after, id=f"write{nth}-{'landed' if after else 'unsent'}")
    for nth in (1, 3, 6, 10, 15, 19, 22):
        yield pytest.param("any", nth, False, id=f"request{nth}")


def _worker() -> None:
    code = run_cli("sync")
    os._exit(code)


@pytest.mark.parametrize(("role", "nth", "after"), list(kill_points()))
def test_killed_at_any_point_a_rerun_ends_as_an_uninterrupted_run(
    harness: CrmHarness,
    runner: Runner,
    reference: OwnedState,
    clean_requests: dict[str, int],
    role: str,
    nth: int,
    after: bool,
) -> None:
    available = clean_requests[role]
    if nth > available:
        pytest.skip(f"a clean {harness.crm} sync makes only {available} {role} requests")
    context = multiprocessing.get_context("fork")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the child only syncs
        worker = context.Process(target=_worker)
        killed: list[int] = []

        def kill() -> None:
            assert worker.pid is not None
            os.kill(worker.pid, signal.SIGKILL)
            killed.append(worker.pid)
            with contextlib.suppress(ChildProcessError):  # already reaped by join(): dead too
                os.waitid(os.P_PID, worker.pid, os.WEXITED | os.WNOWAIT)  # dead before we answer

        harness.on_request(role, kill, nth=nth, after=after)
        worker.start()
        worker.join(timeout=120)
    assert killed, "the kill point was never reached"
    assert worker.exitcode == -signal.SIGKILL

    harness.clear_faults()
    assert runner.run("sync") == 0
    assert harness.state() == reference
    assert conflicting_writes(harness.writes()) == {}
    store = StateStore.open(runner.state_url)
    try:
        assert store.interrupted_writes() == []
        assert store.leases() == []
        assert store.failed_writes() == []
        runs = store.runs(5)
        assert [r.status for r in runs[:2]] == ["ok", "running"]  # the killed run never finished
    finally:
        store.close()
    assert runner.run("sync") == 0  # and a third run finds nothing left to do
    assert conflicting_writes(harness.writes()) == {}

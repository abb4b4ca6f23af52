"""The loopback server and the shared fault knobs."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterable
from typing import Any

import pytest

from connector.sandbox import server as server_module
from connector.sandbox.server import Faults, ForcedResponse, ServerThread, run_foreground, serve_in_thread


def hello(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"hi"]


def test_serves_on_a_free_loopback_port_until_stopped() -> None:
    with serve_in_thread(hello) as running:
        assert running.url == f"http://127.0.0.1:{running.port}"
        assert running.port > 0
        with urllib.request.urlopen(running.url, timeout=5) as response:
            assert response.read() == b"hi"
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", running.port), timeout=1),
    ):
        pass


def test_stop_is_idempotent() -> None:
    running = ServerThread(hello).start()
    running.stop()
    running.stop()


def test_run_foreground_closes_the_socket_on_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    class Interrupted:
        def serve_forever(self) -> None:
            calls.append("serve")
            raise KeyboardInterrupt

        def server_close(self) -> None:
            calls.append("close")

    monkeypatch.setattr(server_module, "make_server", lambda *args, **kwargs: Interrupted())
    run_foreground(hello, port=0)
    assert calls == ["serve", "close"]


def test_forced_responses_match_prefix_and_method_and_run_out() -> None:
    faults = Faults()
    faults.force(ForcedResponse(429, {}, path_prefix="/crm/v3/objects", method="POST", times=2))
    faults.force(ForcedResponse(502, {}))
    assert faults.take("GET", "/crm/v3/objects/contacts") is not None  # only the catch-all matches
    assert [f.status for f in faults.pending()] == [429]
    assert faults.take("POST", "/crm/v3/owners") is None
    assert [faults.take("POST", "/crm/v3/objects/contacts/search").status for _ in range(2)] == [429, 429]  # type: ignore[union-attr]
    assert faults.take("POST", "/crm/v3/objects/contacts/search") is None
    assert faults.pending() == []


def test_latency_uses_the_longest_prefix_and_skips_zero() -> None:
    slept: list[float] = []
    faults = Faults(sleep=slept.append)
    faults.wait("/x")
    faults.latency_by_prefix = {"/a": 1.0, "/a/b": 2.0}
    faults.wait("/a/b/c")
    faults.wait("/a/x")
    faults.clear()
    faults.wait("/a/b")
    assert slept == [2.0, 1.0]

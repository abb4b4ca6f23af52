"""Serve an emulator's WSGI app over real HTTP on loopback, plus the fault knobs emulators share.

The HubSpot SDK talks urllib3 and simple-salesforce talks requests; neither can be intercepted
in-process reliably, so the emulators are real servers on 127.0.0.1 (httpx's `serve_in_thread`
pattern). `serve_in_thread` picks a free port and returns once the socket is listening, so a test
can use `.url` immediately; `run_foreground` is what `connector sandbox` blocks in.

`Faults` holds the knobs benchmarks and retry tests turn: a per-request latency (slept through an
injectable `sleep`, so tests never wait for real) and a queue of forced responses ("the next 3
requests under /crm/v3/objects/contacts/search answer 429"). The emulator app consults it and logs
forced answers like any other, so tests can count them.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

LOOPBACK = "127.0.0.1"
# How often serve_forever checks for shutdown: bounds how long `stop()` takes (tests stop a lot).
_POLL_SECONDS = 0.02


class _QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without the per-request access log (tests and benchmarks stay readable)."""

    def log(self, type: str, message: str, *args: Any) -> None:
        return None

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # a connection the emulator reset on purpose (a "reset" breakage)
            self.close_connection = True


class TestCertificates:
    """A throwaway certificate authority and a server certificate for 127.0.0.1 / localhost.

    simple-salesforce only builds `https://` URLs, so the Salesforce emulator must speak TLS. The CA
    is generated per process (`trustme`), never trusted system-wide: clients are handed its PEM
    file explicitly (`verify=<ca file>`), which is what `connector demo` and the tests do.
    """

    def __init__(self) -> None:
        import trustme  # a runtime dependency only of the sandbox

        self._ca = trustme.CA()
        self._leaf = self._ca.issue_cert(LOOPBACK, "localhost")

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._leaf.configure_cert(context)
        return context

    @property
    def ca_pem(self) -> bytes:
        return bytes(self._ca.cert_pem.bytes())

    def write_ca(self, path: Path) -> Path:
        """Write the CA certificate (PEM) where a client can be told to trust it; returns the path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.ca_pem)
        return path


class ServerThread:
    """A WSGI server running in a daemon thread; a context manager that stops it on exit.

    With `ssl_context` the server speaks HTTPS and `url` starts with https://.
    """

    def __init__(
        self,
        app: WSGIApplication,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=_QuietRequestHandler, ssl_context=ssl_context
        )
        self._scheme = "https" if ssl_context is not None else "http"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _POLL_SECONDS},
            name=f"sandbox-{self.port}",
            daemon=True,
        )

    @property
    def port(self) -> int:
        """The bound port (the OS picked it when 0 was asked for)."""
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """Base URL to hand to a client, e.g. `HubSpot(access_token=..., host=server.url)`."""
        return f"{self._scheme}://{self._server.host}:{self.port}"

    def start(self) -> Self:
        """Start serving; the socket already listens, so requests succeed as soon as this returns."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting requests and close the listening socket. Safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> Self:
        return self if self._thread.is_alive() else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_in_thread(
    app: WSGIApplication,
    host: str = LOOPBACK,
    port: int = 0,
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> ServerThread:
    """Serve `app` in the background on a free loopback port (or `port`); returns the started server."""
    return ServerThread(app, host, port, ssl_context=ssl_context).start()


def run_foreground(
    app: WSGIApplication,
    host: str = LOOPBACK,
    port: int = 8080,
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Serve `app` in the calling thread until interrupted (Ctrl-C), with werkzeug's access log.

    Binds to loopback by default on purpose: the sandbox accepts a fixed, public token.
    """
    server = make_server(host, port, app, threaded=True, ssl_context=ssl_context)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@dataclass
class ForcedResponse:
    """A canned answer for the next `times` requests whose path starts with `path_prefix`.

    `body` is JSON-serialisable; `method` None matches any method. The emulator turns it into a
    real HTTP response (status, JSON body, headers) and logs it like any other.
    """

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    path_prefix: str = ""
    method: str | None = None
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.path_prefix) and self.method in (None, method.upper())


_Q = TypeVar("_Q", "Breakage", "Hook")
BreakageKind = Literal["reset", "reset_after", "truncate", "invalid_json", "stall"]


@dataclass
class Breakage:
    """A transport-level failure for the next `times` matching requests.

    * `reset`: the connection is reset before the request is handled (nothing happened);
    * `reset_after`: the request is handled (a write is applied) and then the connection is reset,
      so the client never learns the outcome — the case a write journal exists for;
    * `truncate`: the answer is cut in half (valid status and headers, broken JSON);
    * `invalid_json`: a 200 whose body is not JSON at all (a misbehaving proxy or gateway);
    * `stall`: the answer waits up to `seconds` (until `Faults.clear()`), so a client times out.
    """

    kind: BreakageKind
    path_prefix: str = ""
    method: str | None = None
    times: int = 1
    seconds: float = 5.0

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.path_prefix) and self.method in (None, method.upper())


@dataclass
class Hook:
    """A callback run before the next `times` matching requests are handled (e.g. delete a record
    between the connector's read and its write). It receives the request's JSON body (or None)."""

    fn: Callable[[Any], None]
    path_prefix: str = ""
    method: str | None = None
    times: int = 1
    after: bool = False
    """Run after the request was handled, before the answer goes out."""

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.path_prefix) and self.method in (None, method.upper())


class Faults:
    """Thread-safe fault knobs: latency per request, forced responses, transport breakages, hooks.

    Latency is `latency` seconds for every request plus `latency_by_prefix[prefix]` for matching
    paths (the longest matching prefix wins), slept through `sleep` so tests can record it instead.
    """

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self.latency: float = 0.0
        self.latency_by_prefix: dict[str, float] = {}
        self._sleep = sleep
        self._queue: list[ForcedResponse] = []
        self._breakages: list[Breakage] = []
        self._hooks: list[Hook] = []
        self._released = threading.Event()
        self._lock = threading.Lock()

    def breakage(self, breakage: Breakage) -> None:
        with self._lock:
            self._breakages.append(breakage)

    def take_breakage(self, method: str, path: str) -> Breakage | None:
        return self._take(self._breakages, method, path)

    def hook(self, hook: Hook) -> None:
        with self._lock:
            self._hooks.append(hook)

    def take_hook(self, method: str, path: str, *, after: bool = False) -> Hook | None:
        return self._take([h for h in self._hooks if h.after == after], method, path, self._hooks)

    def _take(self, queue: list[_Q], method: str, path: str, owner: list[_Q] | None = None) -> _Q | None:
        """The first item of `queue` matching the request, consuming one of its `times` (and
        removing it from `owner`, the list it lives in, once used up)."""
        with self._lock:
            for item in queue:
                if item.matches(method, path):
                    item.times -= 1
                    if item.times <= 0:
                        (owner if owner is not None else queue).remove(item)
                    return item
        return None

    def stall(self, seconds: float) -> None:
        """Hold an answer back (a real wait, ended early by `clear()`)."""
        self._released.wait(seconds)

    def force(self, response: ForcedResponse) -> None:
        """Queue a forced response; queued ones are consumed in order, first match wins."""
        with self._lock:
            self._queue.append(response)

    def take(self, method: str, path: str) -> ForcedResponse | None:
        """The forced response for this request, if any, consuming one of its `times`."""
        with self._lock:
            for forced in self._queue:
                if forced.matches(method, path):
                    forced.times -= 1
                    if forced.times <= 0:
                        self._queue.remove(forced)
                    return forced
        return None

    def pending(self) -> list[ForcedResponse | Breakage | Hook]:
        """Faults not yet used up (a test can assert every declared fault fired)."""
        with self._lock:
            return [*self._queue, *self._breakages, *self._hooks]

    def clear(self) -> None:
        """Drop queued faults and latency, and release stalled answers (between tests)."""
        with self._lock:
            self._queue.clear()
            self._breakages.clear()
            self._hooks.clear()
        self._released.set()
        self._released = threading.Event()
        self.latency = 0.0
        self.latency_by_prefix = {}

    def delay(self, path: str) -> float:
        """Seconds to wait before answering `path`."""
        prefixes: Iterable[str] = (p for p in self.latency_by_prefix if path.startswith(p))
        longest = max(prefixes, key=len, default=None)
        return self.latency + (self.latency_by_prefix[longest] if longest is not None else 0.0)

    def wait(self, path: str) -> None:
        """Sleep the configured latency for `path` (no call at all when it is zero)."""
        seconds = self.delay(path)
        if seconds > 0:
            self._sleep(seconds)

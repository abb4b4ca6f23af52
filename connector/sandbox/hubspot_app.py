"""A HubSpot API emulator (WSGI) that the real `hubspot-api-client` SDK runs against unmodified.

`HubSpotEmulator(store)` serves the endpoints the connector uses, with HubSpot's wire format (field
names as in the official OpenAPI specs) and HubSpot's documented limits, so an adapter that passes
here has met the real rules, not a convenient stand-in:

* CRM v3 objects: search (filters, one sort, 200 a page, the 10,000-result cap), batch read and
  batch update (100 inputs, 207 multi-status with per-record errors), list, get and PATCH;
* owners (active and archived listed separately), CRM v4 association batch read (1,000 inputs,
  per-input paging of 500), the events API, and the properties API;
* errors in HubSpot's shape (`status`, `message`, `correlationId`, `category`...), 401 without the
  store's bearer token, and 429 bodies that name the `policyName`.

Every request is appended to `store.requests`. Faults (latency, forced 429/5xx answers) and optional
real rate limits are knobs for retry tests and benchmarks; see `rate_limit`, `fail`, `RateLimits`.
Where HubSpot's behaviour is undocumented, the choice made is stated next to the code.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import logging
import os
import random
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from connector.sandbox.hubspot_search import (
    MAX_RESULTS,
    Kind,
    SearchError,
    compile_matcher,
    instant,
    kind_of,
    order,
    parse_search_request,
    query_matches,
)
from connector.sandbox.hubspot_store import (
    HubSpotStore,
    LoggedRequest,
    default_contact_properties,
    default_object_properties,
    hs_datetime,
)
from connector.sandbox.server import Breakage, BreakageKind, Faults, ForcedResponse, Hook

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json;charset=utf-8"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"
BATCH_LIMIT = 100
BATCH_HISTORY_LIMIT = 50
ASSOCIATION_BATCH_LIMIT = 1000
ASSOCIATION_PAGE_SIZE = 500
LIST_DEFAULT_LIMIT = 10
LIST_MAX_LIMIT = 100
OWNERS_DEFAULT_LIMIT = 100
OWNERS_MAX_LIMIT = 500
# The events API documents no default or maximum page size; these are the emulator's choice, and a
# larger `limit` is clamped rather than refused so a client never fails on an undocumented rule.
EVENTS_DEFAULT_LIMIT = 100
EVENTS_MAX_LIMIT = 1000

ENGAGEMENT_TYPES = ("emails", "calls", "meetings", "notes", "tasks", "communications")
_TYPE_ALIASES: dict[str, tuple[str, ...]] = {
    "contacts": ("contact", "0-1"),
    "companies": ("company", "0-2"),
    "deals": ("deal", "0-3"),
    "tasks": ("task", "0-27"),
    "notes": ("note", "0-46"),
    "meetings": ("meeting", "0-47"),
    "calls": ("call", "0-48"),
    "emails": ("email", "0-49"),
    "communications": ("communication", "0-18"),
}
OBJECT_TYPES: dict[str, str] = {
    alias: canonical
    for canonical, aliases in _TYPE_ALIASES.items()
    for alias in (canonical, canonical.upper(), *aliases, *(a.upper() for a in aliases))
}
SINGULAR = {canonical: aliases[0] for canonical, aliases in _TYPE_ALIASES.items()}

CONTACT_DEFAULT_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
OBJECT_DEFAULT_PROPERTIES = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")
# Asking for properties replaces the defaults, but these always come back (as HubSpot does).
CONTACT_ALWAYS_PROPERTIES = ("createdate", "hs_object_id", "lastmodifieddate")
CONTACT_QUERY_PROPERTIES = ("firstname", "lastname", "email", "phone", "mobilephone", "company")

# HubSpot-defined association type ids (api-facts §2; hubspot/crm/association_type.py).
ASSOCIATION_TYPE_IDS: dict[tuple[str, str], int] = {
    ("contacts", "calls"): 193,
    ("calls", "contacts"): 194,
    ("contacts", "emails"): 197,
    ("emails", "contacts"): 198,
    ("contacts", "meetings"): 199,
    ("meetings", "contacts"): 200,
    ("contacts", "notes"): 201,
    ("notes", "contacts"): 202,
    ("contacts", "tasks"): 203,
    ("tasks", "contacts"): 204,
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("contacts", "deals"): 4,
    ("deals", "contacts"): 3,
    ("contacts", "communications"): 82,
    ("communications", "contacts"): 81,
}
PRIMARY_COMPANY_TYPE_ID = 1

# Values HubSpot computes; writing them is an error even without a property catalogue entry.
READ_ONLY_PROPERTIES = frozenset(
    {"hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate", "hs_createdate"}
)
READ_ONLY_PREFIXES = (
    "hs_analytics_",
    "hs_email_",
    "hs_lifecyclestage_",
    "hs_v2_date_",
    "hs_sales_email_last_",
    "num_",
    "recent_conversion_",
    "first_conversion_",
    "notes_last_",
    "hs_last_sales_activity_",
)

_EPOCH = "1970-01-01T00:00:00.000Z"


class ApiError(Exception):
    """An error answer in HubSpot's `Error` shape; raised by handlers, rendered by the dispatcher."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        context: Mapping[str, list[str]] | None = None,
        sub_category: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.context = context
        self.sub_category = sub_category
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.context:
            body["context"] = dict(self.context)
        if self.errors:
            body["errors"] = self.errors
        return body


def validation_error(message: str, **kwargs: Any) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message, **kwargs)


@dataclass
class Reply:
    """What a handler answers: status, JSON body, extra headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RateLimits:
    """Optional real rate limiting, for benchmarks that check the connector paces itself.

    `ten_secondly`: requests per rolling 10 s (190 Professional/Enterprise, 100 lower tiers);
    `search_per_second`: search requests per second per account (5); `daily`: requests per
    emulator lifetime. None disables a limit. Search does not count against the 10-second bucket
    (the spec marks search "ten-secondly" exempt; api-facts §1.2 calls that unconfirmed).
    """

    ten_secondly: int | None = None
    search_per_second: int | None = None
    daily: int | None = None
    headers: bool = True
    """Send X-HubSpot-RateLimit-* headers (private apps get them; OAuth apps do not, api-facts §5)."""


def rate_limit_body(policy: str) -> dict[str, Any]:
    """The 429 body HubSpot sends for `policy` (api-facts §5; HubSpot/hubspot-api-python#117)."""
    label = {"TEN_SECONDLY_ROLLING": "ten_secondly_rolling", "SECONDLY": "secondly", "DAILY": "daily"}
    body: dict[str, Any] = {
        "status": "error",
        "message": f"You have reached your {label.get(policy, policy.lower())} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "groupName": f"publicapi:private-app-api-calls-{label.get(policy, 'x').replace('_', '-')}:0",
    }
    if policy == "SECONDLY":
        body["category"] = "RATE_LIMITS"  # as the search endpoints' "secondly limit" body carries it
    return body


class _Limiter:
    """Rolling windows over an injectable monotonic clock; answers the 429 a limit would produce."""

    def __init__(self, limits: RateLimits, monotonic: Callable[[], float]) -> None:
        self.limits = limits
        self._now = monotonic
        self._burst: deque[float] = deque()
        self._search: deque[float] = deque()
        self._daily = 0

    def check(self, path: str) -> Reply | None:
        now = self._now()
        is_search = path.endswith("/search")
        if self.limits.daily is not None and self._daily >= self.limits.daily:
            return Reply(429, rate_limit_body("DAILY"))
        search_limit = self.limits.search_per_second if is_search else None
        burst_limit = None if is_search else self.limits.ten_secondly
        if search_limit is not None and not _admit(self._search, now, 1.0, search_limit):
            return Reply(429, rate_limit_body("SECONDLY"), {"Retry-After": "1"})
        if burst_limit is not None and not _admit(self._burst, now, 10.0, burst_limit):
            headers = self._headers() if self.limits.headers else {}
            return Reply(429, rate_limit_body("TEN_SECONDLY_ROLLING"), headers)
        self._daily += 1
        return None

    def headers(self, path: str) -> dict[str, str]:
        """X-HubSpot-RateLimit-* headers for a successful call (not sent on search responses, nor
        at all with `RateLimits(headers=False)`, as for OAuth apps)."""
        return {} if path.endswith("/search") or not self.limits.headers else self._headers()

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.limits.ten_secondly is not None:
            headers["X-HubSpot-RateLimit-Max"] = str(self.limits.ten_secondly)
            headers["X-HubSpot-RateLimit-Remaining"] = str(
                max(0, self.limits.ten_secondly - len(self._burst))
            )
            headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = "10000"
        if self.limits.daily is not None:
            headers["X-HubSpot-RateLimit-Daily"] = str(self.limits.daily)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(0, self.limits.daily - self._daily))
        return headers


def _admit(window: deque[float], now: float, seconds: float, limit: int) -> bool:
    while window and window[0] <= now - seconds:
        window.popleft()
    if len(window) >= limit:
        return False
    window.append(now)
    return True


def _encode_cursor(offset: int) -> str:
    """An opaque paging token, like HubSpot's, so clients pass it back instead of doing arithmetic."""
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def _decode_cursor(token: str | None) -> int:
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        return max(0, int(base64.urlsafe_b64decode(padded.encode()).decode()))
    except (ValueError, binascii.Error):
        raise validation_error(f"Invalid paging cursor: {token!r}") from None


def _strings(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise validation_error(f"{name} must be an array of strings")
    return list(dict.fromkeys(value))


def _query_list(request: Request, name: str) -> list[str]:
    """A multi-valued query parameter, repeated (`a=1&a=2`) or comma-separated (`a=1,2`)."""
    return [item for value in request.args.getlist(name) for item in value.split(",") if item]


def _query_bool(request: Request, name: str, default: bool = False) -> bool:
    """Booleans arrive as `true`/`false`, and as `True`/`False` from the Python SDK."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if raw.lower() not in ("true", "false"):
        raise validation_error(f"{name} must be true or false, got {raw!r}")
    return raw.lower() == "true"


def _query_int(request: Request, name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise validation_error(f"{name} must be an integer, got {raw!r}") from None


def _numeric_id(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (1 << 62, value)


def _iso(value: str | None) -> str:
    """A stored datetime (ISO or epoch ms) as the ISO-8601 form `createdAt`/`updatedAt` use."""
    if not value:
        return _EPOCH
    try:
        return hs_datetime(instant(value))
    except ValueError:
        return _EPOCH


# Each endpoint names the HubSpotEmulator method (with a leading underscore) that answers it.
ROUTES = Map(
    [
        Rule("/crm/v3/objects/<object_type>/search", methods=["POST"], endpoint="search"),
        Rule("/crm/v3/objects/<object_type>/batch/read", methods=["POST"], endpoint="batch_read"),
        Rule("/crm/v3/objects/<object_type>/batch/update", methods=["POST"], endpoint="batch_update"),
        Rule("/crm/v3/objects/<object_type>/batch/create", methods=["POST"], endpoint="batch_create"),
        Rule("/crm/v3/objects/<object_type>", methods=["GET"], endpoint="list_objects"),
        Rule("/crm/v3/objects/<object_type>/<object_id>", methods=["GET"], endpoint="get_object"),
        Rule("/crm/v3/objects/<object_type>/<object_id>", methods=["PATCH"], endpoint="patch_object"),
        Rule("/crm/v3/owners", methods=["GET"], endpoint="list_owners"),
        Rule("/crm/v3/owners/<owner_id>", methods=["GET"], endpoint="get_owner"),
        Rule(
            "/crm/v4/associations/<from_type>/<to_type>/batch/read",
            methods=["POST"],
            endpoint="association_batch_read",
        ),
        Rule("/events/v3/events", methods=["GET"], endpoint="events"),
        Rule("/events/v3/events/event-types", methods=["GET"], endpoint="event_types"),
        Rule("/crm/v3/properties/<object_type>", methods=["GET"], endpoint="list_properties"),
        Rule("/crm/v3/properties/<object_type>/<property_name>", methods=["GET"], endpoint="get_property"),
    ]
)


class HubSpotEmulator:
    """The WSGI app. Construct with a store, serve with `connector.sandbox.server.serve_in_thread`.

    `clock` dates writes (`lastmodifieddate`) and batch timestamps; `sleep` is what latency faults
    sleep through; `monotonic` drives the optional `RateLimits`. Inject all three in tests.
    `tie_seed` makes the order among equal sort values arbitrary (HubSpot documents none).
    A store without a contact property catalogue gets HubSpot's defaults, so validation and the
    properties API have something real to work from.
    """

    def __init__(
        self,
        store: HubSpotStore,
        *,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        limits: RateLimits | None = None,
        tie_seed: int | None = None,
    ) -> None:
        self.store = store
        self.faults = Faults(sleep=sleep)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._limiter = _Limiter(limits or RateLimits(), monotonic)
        self._limit_lock = threading.Lock()
        self._monotonic = monotonic
        self._failure_rate = 0.0
        self._failure_rng = random.Random(0)
        self._failure_status = 503
        self._failure_prefix = ""
        self._tie_key: Callable[[str], Any] | None = None
        if tie_seed is not None:

            @functools.lru_cache(maxsize=1 << 18)
            def tie_key(object_id: str) -> bytes:
                return hashlib.blake2b(f"{tie_seed}:{object_id}".encode(), digest_size=8).digest()

            self._tie_key = tie_key
        with store.lock:
            store.properties.setdefault("contacts", default_contact_properties())
            for object_type, catalogue in default_object_properties().items():
                store.properties.setdefault(object_type, catalogue)

    # --- fault knobs ------------------------------------------------------------------------------

    def rate_limit(
        self,
        *,
        times: int = 1,
        policy: str = "TEN_SECONDLY_ROLLING",
        retry_after: float | None = 1,
        path_prefix: str = "",
        method: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with HubSpot's 429 for `policy`.

        Whether HubSpot sends `Retry-After` on 429 is unconfirmed (api-facts §5); pass None to omit.
        """
        headers = {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000", "X-HubSpot-RateLimit-Remaining": "0"}
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        self.faults.force(
            ForcedResponse(429, rate_limit_body(policy), headers, path_prefix, method, times),
        )

    def fail(
        self,
        status: int = 502,
        *,
        times: int = 1,
        path_prefix: str = "",
        method: str | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` (5xx bursts, 423, 477...).

        `body` defaults to HubSpot's error JSON; pass bytes for a non-JSON answer such as the HTML
        page a proxy sends with a 502, which clients must survive too.
        """
        default = ApiError(status, "INTERNAL_ERROR" if status >= 500 else "ERROR", f"Simulated HTTP {status}")
        self.faults.force(
            ForcedResponse(
                status, body if body is not None else default.body(), {}, path_prefix, method, times
            )
        )

    def random_failures(self, rate: float, *, seed: int, status: int = 503, path_prefix: str = "") -> None:
        """Answer each matching request with `status` at probability `rate`, drawn from a generator
        seeded with `seed` (a benchmark's 5xx storm is the same on every run). 0 switches it off."""
        with self.store.lock:
            self._failure_rate = rate
            self._failure_rng = random.Random(seed)
            self._failure_status = status
            self._failure_prefix = path_prefix

    def _random_failure(self, path: str) -> Reply | None:
        with self.store.lock:
            if not self._failure_rate or not path.startswith(self._failure_prefix):
                return None
            if self._failure_rng.random() >= self._failure_rate:
                return None
        error = ApiError(self._failure_status, "INTERNAL_ERROR", f"Simulated HTTP {self._failure_status}")
        return Reply(self._failure_status, error.body())

    def break_transport(
        self,
        kind: BreakageKind,
        *,
        times: int = 1,
        path_prefix: str = "",
        method: str | None = None,
        seconds: float = 5.0,
    ) -> None:
        """Break the next `times` matching exchanges at the transport level; see `Breakage`."""
        self.faults.breakage(Breakage(kind, path_prefix, method, times, seconds))

    def before(
        self,
        fn: Callable[[Any], None],
        *,
        path_prefix: str = "",
        method: str | None = None,
        times: int = 1,
    ) -> None:
        """Run `fn(json_body)` under the portal lock just before the next `times` matching requests
        are handled."""

        def locked(body: Any) -> None:
            with self.store.lock:
                fn(body)

        self.faults.hook(Hook(locked, path_prefix, method, times))

    def after(
        self,
        fn: Callable[[Any], None],
        *,
        path_prefix: str = "",
        method: str | None = None,
        times: int = 1,
    ) -> None:
        """Run `fn(json_body)` after the next `times` matching requests were handled (a write
        applied) but before the answer is sent: the moment a client dies without learning of it."""
        self.faults.hook(Hook(fn, path_prefix, method, times, after=True))

    def delete_contact(self, contact_id: str, *, merged_into: str | None = None) -> None:
        """Remove a contact as a user deleting it (or merging it into another) would.

        After a merge HubSpot keeps the surviving record and lists the old id in its
        `hs_merged_object_ids`; the old id answers OBJECT_NOT_FOUND to writes, like a deleted one.
        """
        with self.store.lock:
            self.store.contacts.pop(contact_id, None)
            if merged_into is not None and merged_into in self.store.contacts:
                survivor = self.store.contacts[merged_into]
                ids = [i for i in (survivor.get("hs_merged_object_ids") or "").split(";") if i]
                survivor["hs_merged_object_ids"] = ";".join([*ids, contact_id])

    # --- WSGI -------------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path.rstrip("/") or "/"
        hook = self.faults.take_hook(request.method, path, after=False)
        if hook is not None:
            hook.fn(_parse_body(request)[0])
        broken = self.faults.take_breakage(request.method, path)
        if broken is not None and broken.kind == "stall":
            self.faults.stall(broken.seconds)
        if broken is not None and broken.kind == "reset":
            _reset(environ)
        reply = self._dispatch(request)
        done = self.faults.take_hook(request.method, path, after=True)
        if done is not None:
            done.fn(_parse_body(request)[0])
        if broken is not None and broken.kind == "reset_after":
            _reset(environ)
        if isinstance(reply.body, bytes):  # a forced non-JSON answer, e.g. an edge proxy's HTML 502
            response = Response(reply.body, reply.status, reply.headers, content_type=HTML_CONTENT_TYPE)
        else:
            data = json.dumps(reply.body).encode()
            if broken is not None and broken.kind == "truncate":
                data = data[: max(1, len(data) // 2)]
            elif broken is not None and broken.kind == "invalid_json":
                data = b"<html><body>upstream answered garbage</body></html>"
            response = Response(data, reply.status, reply.headers, content_type=JSON_CONTENT_TYPE)
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Reply:
        """Gate (token, rate limits) on arrival, then the latency, then the answer.

        HubSpot counts a request against its limits when its edge receives it, before the backend
        spends any time on it; so does the emulator. Counting after the injected latency (or after
        waiting for the portal lock behind a slow search) would bunch requests that arrived apart.
        """
        # The SDK calls "/crm/v3/owners/" and "/events/v3/events/"; HubSpot serves both spellings.
        path = request.path.rstrip("/") or "/"
        arrived = self._monotonic()
        forced = self.faults.take(request.method, path)
        gated = None if forced is not None else self._gate(request, path)
        self.faults.wait(path)
        body, body_error = _parse_body(request)
        if forced is not None:
            reply = Reply(forced.status, forced.body, dict(forced.headers))
        elif gated is not None:
            reply = gated
        else:
            reply = self._random_failure(path) or self._answer(request, path, body, body_error)
        self._log(request, path, body, reply, arrived)
        return reply

    def _gate(self, request: Request, path: str) -> Reply | None:
        """The 401 or 429 this request gets on arrival, or None to let it through."""
        try:
            self._authenticate(request)
        except ApiError as error:
            return Reply(error.status, error.body())
        with self._limit_lock:
            return self._limiter.check(path)

    def _answer(self, request: Request, path: str, body: Any, body_error: ApiError | None) -> Reply:
        try:
            if body_error is not None:
                raise body_error
            endpoint, args = self._match(path, request.method)
            handler: Callable[..., Reply] = getattr(self, f"_{endpoint}")
            with self.store.lock:  # one request at a time mutates the portal (the server is threaded)
                reply = handler(request, body, **args)
            with self._limit_lock:
                reply.headers.update(self._limiter.headers(path))
            return reply
        except ApiError as error:
            return Reply(error.status, error.body())
        except Exception:  # answer like HubSpot (a JSON 500) and keep the traceback in the log
            log.exception("HubSpot emulator failed on %s %s", request.method, path)
            return Reply(500, ApiError(500, "INTERNAL_ERROR", "internal error").body())

    def _match(self, path: str, method: str) -> tuple[str, dict[str, str]]:
        adapter = ROUTES.bind("sandbox.invalid")
        try:
            endpoint, args = adapter.match(path, method=method)
        except MethodNotAllowed:
            raise ApiError(405, "VALIDATION_ERROR", f"{method} is not supported on {path}") from None
        except NotFound:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"Resource not found: {method} {path}") from None
        return str(endpoint), {k: str(v) for k, v in args.items()}

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise ApiError(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and "
                "you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )
        if scheme.lower() != "bearer" or token.strip() != self.store.access_token:
            raise ApiError(
                401, "INVALID_AUTHENTICATION", "The access token provided is invalid or has been revoked."
            )

    def _log(self, request: Request, path: str, body: Any, reply: Reply, arrived: float) -> None:
        keep = self.store.log_bodies
        entry = LoggedRequest(
            method=request.method,
            path=path,
            query={k: list(v) for k, v in request.args.lists()} if keep else {},
            body=body if keep else None,
            status=reply.status,
            response=reply.body if keep else None,
            at=arrived,
        )
        with self.store.lock:
            self.store.requests.append(entry)

    # --- object plumbing ----------------------------------------------------------------------------

    def _object_type(self, raw: str) -> str:
        canonical = OBJECT_TYPES.get(raw) or OBJECT_TYPES.get(raw.lower())
        if canonical is None:
            raise validation_error(f"Unable to infer object type from: {raw}")
        return canonical

    def _objects(self, object_type: str) -> dict[str, dict[str, str | None]]:
        if object_type == "contacts":
            return self.store.contacts
        return self.store.engagements.setdefault(object_type, {})

    def _catalogue(self, object_type: str) -> dict[str, dict[str, Any]] | None:
        """The property definitions of a type, or None when the portal declares none for it."""
        return self.store.properties.get(object_type) or None

    def _kinds(self, object_type: str) -> Callable[[str], Kind]:
        catalogue = self._catalogue(object_type) or {}
        return lambda name: kind_of(catalogue.get(name), name)

    def _created_property(self, object_type: str) -> str:
        return "createdate" if object_type == "contacts" else "hs_createdate"

    def _modified_property(self, object_type: str) -> str:
        return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"

    def _values(self, object_id: str, props: Mapping[str, str | None]) -> Mapping[str, str | None]:
        """The record's properties with `hs_object_id` (a copy only when the seed left it out)."""
        if props.get("hs_object_id") == object_id:
            return props
        return {**props, "hs_object_id": object_id}

    def _find(self, object_type: str, key: str, id_property: str | None) -> str | None:
        """The record id for `key`, by id or by a unique property (`idProperty`, e.g. email)."""
        objects = self._objects(object_type)
        if not id_property or id_property == "hs_object_id":
            return key if key in objects else None
        catalogue = self._catalogue(object_type)
        if catalogue is not None and id_property not in catalogue:
            raise validation_error(f"Unable to find property {id_property} to use as idProperty")
        wanted = key.casefold() if id_property == "email" else key
        for object_id, props in objects.items():
            value = props.get(id_property)
            if value is not None and (value.casefold() if id_property == "email" else value) == wanted:
                return object_id
        return None

    def _property_names(self, object_type: str, requested: Sequence[str]) -> list[str]:
        """Requested properties plus the always-returned ones; the type's defaults when none asked."""
        defaults: tuple[str, ...]
        always: tuple[str, ...]
        if object_type == "contacts":
            defaults, always = CONTACT_DEFAULT_PROPERTIES, CONTACT_ALWAYS_PROPERTIES
        else:
            defaults = always = OBJECT_DEFAULT_PROPERTIES
        return list(dict.fromkeys([*requested, *always])) if requested else list(defaults)

    def _present(
        self,
        object_type: str,
        object_id: str,
        requested: Sequence[str] = (),
        with_history: Sequence[str] = (),
    ) -> dict[str, Any]:
        """A `SimplePublicObject`. Properties the portal does not define are left out (as HubSpot
        does); defined ones without a value come back as null."""
        props = self._values(object_id, self._objects(object_type)[object_id])
        catalogue = self._catalogue(object_type)
        names = [
            n
            for n in self._property_names(object_type, requested)
            if n in props or catalogue is None or n in catalogue
        ]
        created = _iso(props.get(self._created_property(object_type)) or props.get("hs_timestamp"))
        modified = props.get(self._modified_property(object_type))
        result: dict[str, Any] = {
            "id": object_id,
            "properties": {n: props.get(n) for n in names},
            "createdAt": created,
            "updatedAt": _iso(modified) if modified else created,
            "archived": False,
        }
        if with_history:
            result["propertiesWithHistory"] = {
                n: self._history(object_type, object_id, n, props.get(n), created) for n in with_history
            }
        return result

    def _history(
        self, object_type: str, object_id: str, name: str, value: str | None, created: str
    ) -> list[dict[str, Any]]:
        recorded = self.store.property_history.get(object_type, {}).get(object_id, {}).get(name)
        if recorded:
            return [dict(entry) for entry in recorded]
        if value in (None, ""):
            return []
        return [{"value": value, "timestamp": created, "sourceType": "IMPORT"}]

    def _batch_reply(
        self, started: str, results: list[dict[str, Any]], errors: list[dict[str, Any]]
    ) -> Reply:
        """200 `BatchResponse...`, or 207 `...WithErrors` when any input failed."""
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": hs_datetime(self._clock()),
        }
        if not errors:
            return Reply(200, body)
        body |= {"numErrors": len(errors), "errors": errors}
        return Reply(207, body)

    # --- CRM objects ------------------------------------------------------------------------------

    def _search(self, request: Request, body: Any, object_type: str) -> Reply:
        object_type = self._object_type(object_type)
        try:
            search = parse_search_request(_body_object(body, required=False))
        except SearchError as error:
            raise validation_error(str(error)) from None
        kinds = self._kinds(object_type)
        records = [(i, self._values(i, p)) for i, p in self._objects(object_type).items()]
        searchable = CONTACT_QUERY_PROPERTIES if object_type == "contacts" else None
        try:
            matches = compile_matcher(search.groups, kinds)
            matched = [
                (i, p)
                for i, p in records
                if matches(p) and query_matches(search.query, p, searchable or list(p))
            ]
        except SearchError as error:
            raise validation_error(str(error)) from None
        ranked = order(matched, search.sort, self._created_property(object_type), kinds, self._tie_key)
        end = min(search.offset + search.limit, len(ranked), MAX_RESULTS)
        payload: dict[str, Any] = {
            "total": len(ranked),
            "results": [
                self._present(object_type, i, search.properties) for i, _ in ranked[search.offset : end]
            ],
        }
        if search.limit > 0 and end < len(ranked):
            # Past 10,000 this still hands out "10000": HubSpot does too, and answers that page 400.
            payload["paging"] = {"next": {"after": str(end), "link": f"?after={end}"}}
        return Reply(200, payload)

    def _batch_read(self, request: Request, body: Any, object_type: str) -> Reply:
        object_type = self._object_type(object_type)
        started = hs_datetime(self._clock())
        payload = _body_object(body)
        inputs = _batch_inputs(payload, BATCH_LIMIT)
        properties = _strings(payload.get("properties"), "properties")
        with_history = _strings(payload.get("propertiesWithHistory"), "propertiesWithHistory")
        if with_history and len(inputs) > BATCH_HISTORY_LIMIT:
            raise validation_error(
                "The maximum number of inputs supported in a batch request for property histories is "
                f"{BATCH_HISTORY_LIMIT}"
            )
        id_property = payload.get("idProperty")
        keys = list(dict.fromkeys(_input_id(item) for item in inputs))
        found = {key: self._find(object_type, key, id_property) for key in keys}
        results = [
            self._present(object_type, object_id, properties, with_history)
            for object_id in dict.fromkeys(v for v in found.values() if v is not None)
        ]
        missing = [key for key, object_id in found.items() if object_id is None]
        return self._batch_reply(started, results, [self._not_found(object_type, missing)] if missing else [])

    def _not_found(self, object_type: str, keys: list[str]) -> dict[str, Any]:
        """The `StandardError` HubSpot puts in `errors[]` for ids it cannot find (hubspot-api-php#619)."""
        return {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": (
                f"Could not get some {SINGULAR[object_type].upper()} objects, they may be deleted or not "
                "exist. Check that ids are valid."
            ),
            "context": {"ids": keys},
            "errors": [],
            "links": {},
        }

    def _batch_update(self, request: Request, body: Any, object_type: str) -> Reply:
        """Apply each valid input; report the rest per record (207), like a multi-status batch.

        Whether real batch/update answers a bad value with a 207 or a whole-batch 400 is unconfirmed
        (api-facts §1.4); by default the emulator takes the harder case for clients: valid inputs
        are applied and failures are reported per record, so an adapter must read `errors[]` on a
        2xx. `store.batch_all_or_nothing` switches to the other documented shape: one invalid value
        fails the whole batch with a 400 that names no record, and nothing is applied.
        """
        object_type = self._object_type(object_type)
        started = hs_datetime(self._clock())
        inputs = _batch_inputs(_body_object(body), BATCH_LIMIT)
        updates = [_update_input(item) for item in inputs]
        _refuse_duplicates([key for key, _, _, _ in updates])
        if self.store.batch_all_or_nothing:
            invalid = [
                problem for _, _, values, _ in updates for problem in self._problems(object_type, values)
            ]
            if invalid:
                raise validation_error(
                    "Property values were not valid: " + json.dumps(invalid, separators=(",", ":")),
                    errors=[{"message": p["message"], "code": p["error"], "in": p["name"]} for p in invalid],
                )
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        missing: list[str] = []
        for key, id_property, values, trace_id in updates:
            object_id = self._find(object_type, key, id_property)
            if object_id is None:
                missing.append(key)
                continue
            problems = self._problems(object_type, values)
            if problems:
                errors.append(_invalid_values(problems, object_id, trace_id))
                continue
            self._apply(object_type, object_id, values)
            results.append(self._present(object_type, object_id, list(values)))
        if missing:
            errors.insert(0, self._not_found(object_type, missing))
        return self._batch_reply(started, results, errors)

    def _batch_create(self, request: Request, body: Any, object_type: str) -> Reply:
        """Create engagement objects (the connector creates hand-off tasks), with associations.

        `SimplePublicObjectBatchInputForCreate`: `properties` and `associations` are required;
        each association names the target (`to.id`) and HubSpot-defined type ids, which must be the
        documented ones for the pair (task -> contact is 204). Valid inputs are created; invalid
        ones are reported per input (207), echoing `objectWriteTraceId` so a client can tell which.
        Contacts are not created here (the connector never creates people).
        """
        object_type = self._object_type(object_type)
        if object_type not in ENGAGEMENT_TYPES:
            raise validation_error(f"batch create of {object_type} is not supported by the sandbox")
        started = hs_datetime(self._clock())
        inputs = _batch_inputs(_body_object(body), BATCH_LIMIT)
        planned: list[tuple[dict[str, str], list[tuple[str, str]], str | None]] = []
        for item in inputs:
            if "associations" not in item:
                raise validation_error("Each input needs associations (an empty array is allowed)")
            trace = item.get("objectWriteTraceId")
            planned.append(
                (
                    _properties_of(item),
                    self._create_associations(object_type, item),
                    None if trace is None else str(trace),
                )
            )
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for values, links, trace_id in planned:
            problems = self._problems(object_type, values)
            missing = [to_id for to_type, to_id in links if to_id not in self._objects(to_type)]
            if problems:
                errors.append(_invalid_values(problems, "", trace_id))
                continue
            if missing:
                error = _problem("associations", "INVALID_ASSOCIATION", f"No object with id {missing[0]}")
                errors.append(_invalid_values([error], "", trace_id))
                continue
            object_id = self.store.next_id()
            now = hs_datetime(self._clock())
            record: dict[str, str | None] = {
                "hs_object_id": object_id,
                "hs_createdate": now,
                "hs_lastmodifieddate": now,
            }
            kinds = self._kinds(object_type)
            record.update({k: (None if v == "" else _normalise(v, kinds(k))) for k, v in values.items()})
            self._objects(object_type)[object_id] = record
            for to_type, to_id in links:
                self.store.associate(object_type, object_id, to_type, to_id)
            created = self._present(object_type, object_id, list(values))
            if trace_id is not None:
                created["objectWriteTraceId"] = trace_id
            results.append(created)
        reply = self._batch_reply(started, results, errors)
        return Reply(201 if reply.status == 200 else reply.status, reply.body)

    def _create_associations(self, object_type: str, item: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(target type, target id) per association of a create input; 400 for a malformed one."""
        links: list[tuple[str, str]] = []
        associations = item.get("associations")
        if not isinstance(associations, list):
            raise validation_error("associations must be an array")
        for association in associations:
            target = association.get("to") if isinstance(association, dict) else None
            types = association.get("types") if isinstance(association, dict) else None
            if (
                not isinstance(target, dict)
                or not target.get("id")
                or not isinstance(types, list)
                or not types
            ):
                raise validation_error("Each association needs to.id and at least one type")
            for spec in types:
                if not isinstance(spec, dict) or spec.get("associationCategory") != "HUBSPOT_DEFINED":
                    raise validation_error("associationCategory must be HUBSPOT_DEFINED for these types")
                type_id = spec.get("associationTypeId")
                pair = next(
                    (p for p, i in ASSOCIATION_TYPE_IDS.items() if i == type_id and p[0] == object_type), None
                )
                if pair is None:
                    raise validation_error(
                        f"associationTypeId {type_id} is not a HUBSPOT_DEFINED type from {object_type}"
                    )
                links.append((pair[1], str(target["id"])))
        return links

    def _list_objects(self, request: Request, body: Any, object_type: str) -> Reply:
        object_type = self._object_type(object_type)
        limit = _query_int(request, "limit", LIST_DEFAULT_LIMIT)
        if not 1 <= limit <= LIST_MAX_LIMIT:
            raise validation_error(f"limit must be between 1 and {LIST_MAX_LIMIT}, got {limit}")
        if _query_bool(request, "archived"):
            return Reply(200, {"results": []})  # the emulator holds no archived records
        start = _query_int(request, "after", 0)
        # `after` is the id to resume from (HubSpot's list cursor is id-based, so inserts never shift it).
        ids = sorted((i for i in self._objects(object_type) if _numeric_id(i)[0] >= start), key=_numeric_id)
        page = ids[:limit]
        properties = _query_list(request, "properties")
        with_history = _query_list(request, "propertiesWithHistory")
        payload: dict[str, Any] = {
            "results": [self._present(object_type, i, properties, with_history) for i in page]
        }
        if len(ids) > limit:
            after = str(_numeric_id(page[-1])[0] + 1)
            payload["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return Reply(200, payload)

    def _get_object(self, request: Request, body: Any, object_type: str, object_id: str) -> Reply:
        object_type = self._object_type(object_type)
        found = self._find(object_type, object_id, request.args.get("idProperty"))
        if found is None:
            raise _object_missing(object_id)
        properties = _query_list(request, "properties")
        with_history = _query_list(request, "propertiesWithHistory")
        return Reply(200, self._present(object_type, found, properties, with_history))

    def _patch_object(self, request: Request, body: Any, object_type: str, object_id: str) -> Reply:
        """PATCH one record: all-or-nothing, so any invalid value is a 400 for the whole request."""
        object_type = self._object_type(object_type)
        found = self._find(object_type, object_id, request.args.get("idProperty"))
        if found is None:
            raise _object_missing(object_id)
        values = _properties_of(_body_object(body))
        problems = self._problems(object_type, values)
        if problems:
            detail = _invalid_values(problems, found, None)
            raise validation_error(detail["message"], errors=detail["errors"])
        self._apply(object_type, found, values)
        return Reply(200, self._present(object_type, found, list(values)))

    # --- writes -------------------------------------------------------------------------------------

    def _problems(self, object_type: str, values: Mapping[str, str]) -> list[dict[str, Any]]:
        """HubSpot's per-property validation results (`{"isValid": false, "error": CODE, ...}`)."""
        catalogue = self._catalogue(object_type)
        problems: list[dict[str, Any]] = []
        for name, value in values.items():
            definition = catalogue.get(name) if catalogue else None
            if catalogue is not None and definition is None:
                problems.append(_problem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
            elif _is_read_only(name, definition):
                problems.append(
                    _problem(
                        name, "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.'
                    )
                )
            elif value != "" and definition is not None:
                problem = self._value_problem(name, value, definition)
                if problem is not None:
                    problems.append(problem)
        return problems

    def _value_problem(self, name: str, value: str, definition: Mapping[str, Any]) -> dict[str, Any] | None:
        type_ = definition.get("type")
        if name == "hubspot_owner_id" or (type_ == "enumeration" and definition.get("externalOptions")):
            return self._owner_problem(name, value)
        if type_ == "enumeration":
            allowed = [str(o.get("value")) for o in definition.get("options") or []]
            chosen = value.split(";") if definition.get("fieldType") == "checkbox" else [value]
            bad = next((c for c in chosen if c not in allowed), None)
            if bad is not None:
                return _problem(
                    name,
                    "INVALID_OPTION",
                    f"{bad} was not one of the allowed options: [{', '.join(allowed)}]",
                )
            return None
        return _typed_value_problem(name, value, type_)

    def _owner_problem(self, name: str, value: str) -> dict[str, Any] | None:
        """`hubspot_owner_id` takes an active owner's `id` (never `userId`, never a deactivated owner).

        HubSpot answers a non-number with INVALID_INTEGER ("... was not a valid integer (for owner
        ID)."); for an unknown or archived owner the emulator answers INVALID_OWNER_ID (its choice:
        the real code for that case is undocumented, but the write is refused).
        """
        if not value.isdigit():
            return _problem(name, "INVALID_INTEGER", f"{value} was not a valid integer (for owner ID).")
        active = {str(o.get("id")) for o in self.store.owners if not o.get("archived")}
        if value not in active:
            return _problem(name, "INVALID_OWNER_ID", f"{value} is not a valid owner id")
        return None

    def _apply(self, object_type: str, object_id: str, values: Mapping[str, str]) -> None:
        """Write valid values; bump the modified date only when something actually changed."""
        record = self._objects(object_type)[object_id]
        now = hs_datetime(self._clock())
        kinds = self._kinds(object_type)
        changed: dict[str, str | None] = {}
        for name, raw in values.items():
            value = None if raw == "" else _normalise(raw, kinds(name))
            if name == "lifecyclestage" and self._is_backwards(object_type, record.get(name), value):
                # HubSpot only moves lifecyclestage forward: a backward value is accepted (2xx) but not
                # applied, unless the stage was cleared ("") in an earlier request (HS-CONTACTS; the
                # community thread in api-facts §3.3 saw "204 but the change was not made").
                continue
            if record.get(name) != value:
                record[name] = value
                changed[name] = value
        if changed:
            self._after_change(object_type, object_id, record, changed, now)

    def _after_change(
        self,
        object_type: str,
        object_id: str,
        record: dict[str, str | None],
        changed: Mapping[str, str | None],
        now: str,
    ) -> None:
        """What HubSpot derives from a write: history entries, stage/owner dates, modified dates."""
        history = self.store.property_history.setdefault(object_type, {}).setdefault(object_id, {})
        for name, value in changed.items():
            history.setdefault(name, []).insert(
                0,
                {"value": value or "", "timestamp": now, "sourceType": "INTEGRATION", "sourceId": "sandbox"},
            )
        stage = changed.get("lifecyclestage")
        if object_type == "contacts" and stage and not record.get(f"hs_lifecyclestage_{stage}_date"):
            record[f"hs_lifecyclestage_{stage}_date"] = now
        if object_type == "contacts" and changed.get("hubspot_owner_id"):
            record["hubspot_owner_assigneddate"] = now
        record[self._modified_property(object_type)] = now
        if object_type == "contacts":
            record["hs_lastmodifieddate"] = now

    def _is_backwards(self, object_type: str, current: str | None, new: str | None) -> bool:
        if current in (None, "") or new is None:
            return False
        catalogue = self._catalogue(object_type) or {}
        options = (catalogue.get("lifecyclestage") or {}).get("options") or []
        rank = {str(o.get("value")): int(o.get("displayOrder", i)) for i, o in enumerate(options)}
        if current not in rank or new not in rank:
            return False
        return rank[new] < rank[current]

    # --- owners -------------------------------------------------------------------------------------

    def _list_owners(self, request: Request, body: Any) -> Reply:
        """`archived=true` lists only archived (deactivated) owners, `false` (default) only active ones."""
        limit = _query_int(request, "limit", OWNERS_DEFAULT_LIMIT)
        if not 1 <= limit <= OWNERS_MAX_LIMIT:
            raise validation_error(f"limit must be between 1 and {OWNERS_MAX_LIMIT}, got {limit}")
        archived = _query_bool(request, "archived")
        email = request.args.get("email")
        owners = sorted(
            (
                o
                for o in self.store.owners
                if bool(o.get("archived", False)) == archived
                and (email is None or str(o.get("email", "")).casefold() == email.casefold())
            ),
            key=lambda o: _numeric_id(str(o.get("id"))),
        )
        offset = _query_int(request, "after", 0)
        page = owners[offset : offset + limit]
        payload: dict[str, Any] = {"results": [_public_owner(o) for o in page]}
        if offset + limit < len(owners):
            after = str(offset + limit)
            payload["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return Reply(200, payload)

    def _get_owner(self, request: Request, body: Any, owner_id: str) -> Reply:
        key = "userId" if request.args.get("idProperty") == "userId" else "id"
        archived = _query_bool(request, "archived")
        for owner in self.store.owners:
            if str(owner.get(key)) == owner_id and bool(owner.get("archived", False)) == archived:
                return Reply(200, _public_owner(owner))
        raise ApiError(404, "OBJECT_NOT_FOUND", f"Owner {owner_id} not found", context={"id": [owner_id]})

    # --- associations v4 ------------------------------------------------------------------------

    def _association_batch_read(self, request: Request, body: Any, from_type: str, to_type: str) -> Reply:
        """Per-input pages of 500 targets; inputs without associations are per-input errors (207).

        The real API answers an input with no associations with a 207 error of subCategory
        `crm.associations.NO_ASSOCIATIONS_FOUND` (category OBJECT_NOT_FOUND), not an empty `to`;
        observed in public integrations, e.g. "No company is associated with deal 5156...".
        """
        source, target = self._object_type(from_type), self._object_type(to_type)
        started = hs_datetime(self._clock())
        inputs = _batch_inputs(_body_object(body), ASSOCIATION_BATCH_LIMIT)
        index = self._association_index(source, target)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            from_id = _input_id(item)
            targets = index.get(from_id, [])
            if not targets:
                errors.append(_no_associations(source, target, from_id))
                continue
            results.append(self._association_page(source, target, from_id, targets, item.get("after")))
        return self._batch_reply(started, results, errors)

    def _association_index(self, source: str, target: str) -> dict[str, list[str]]:
        """from id -> target ids (deduplicated, ascending), across however the store spelled the types."""
        merged: dict[str, list[str]] = {}
        for (from_key, to_key), edges in self.store.associations.items():
            if OBJECT_TYPES.get(from_key, from_key) == source and OBJECT_TYPES.get(to_key, to_key) == target:
                for from_id, to_ids in edges.items():
                    merged.setdefault(str(from_id), []).extend(str(t) for t in to_ids)
        return {k: sorted(dict.fromkeys(v), key=_numeric_id) for k, v in merged.items()}

    def _association_page(
        self, source: str, target: str, from_id: str, targets: list[str], after: Any
    ) -> dict[str, Any]:
        offset = _decode_cursor(str(after) if after is not None else None)
        page = targets[offset : offset + ASSOCIATION_PAGE_SIZE]
        type_id = ASSOCIATION_TYPE_IDS.get((source, target))
        result: dict[str, Any] = {
            "from": {"id": from_id},
            "to": [
                {
                    # An integer on the wire, although the spec types it as a string (api-facts §2).
                    "toObjectId": int(t) if t.isdigit() else t,
                    "associationTypes": _association_types(source, target, type_id, primary=t == targets[0]),
                }
                for t in page
            ],
        }
        if offset + ASSOCIATION_PAGE_SIZE < len(targets):
            # 'paging' is present only when there are more pages (spec); `link` is deprecated.
            result["paging"] = {"next": {"after": _encode_cursor(offset + ASSOCIATION_PAGE_SIZE)}}
        return result

    # --- events ---------------------------------------------------------------------------------

    def _events(self, request: Request, body: Any) -> Reply:
        """`GET /events/v3/events`: filters, time window, cursor paging; oldest first by default.

        `occurredAfter` is inclusive and `occurredBefore` exclusive (half-open windows, the
        emulator's choice: the docs do not say), so consecutive windows neither overlap nor miss.
        A portal without the Events API (`store.events_api` False: below Enterprise) answers 403
        MISSING_SCOPES (the emulator's choice; HubSpot documents the tier, not the error).
        """
        self._require_events_api()
        selected = [e for e in self.store.events if self._event_selected(request, e)]
        return self._events_page(request, selected)

    def _require_events_api(self) -> None:
        if not self.store.events_api:
            raise ApiError(
                403,
                "MISSING_SCOPES",
                "This app hasn't been granted all required scopes to make this call. "
                "Read more about required scopes here: https://developers.hubspot.com/scopes.",
                errors=[{"message": "The Events API requires an Enterprise subscription"}],
            )

    def _events_page(self, request: Request, selected: list[dict[str, Any]]) -> Reply:
        descending = any(s.upper() in ("DESCENDING", "-OCCURREDAT") for s in _query_list(request, "sort"))
        selected.sort(
            key=lambda e: (instant(str(e["occurredAt"])), _numeric_id(str(e["id"]))), reverse=descending
        )
        limit = min(max(_query_int(request, "limit", EVENTS_DEFAULT_LIMIT), 1), EVENTS_MAX_LIMIT)
        offset = _decode_cursor(request.args.get("after"))
        payload: dict[str, Any] = {"results": [_public_event(e) for e in selected[offset : offset + limit]]}
        if offset + limit < len(selected):
            after = _encode_cursor(offset + limit)
            payload["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return Reply(200, payload)

    def _event_selected(self, request: Request, event: Mapping[str, Any]) -> bool:
        args = request.args
        object_type, object_id = args.get("objectType"), args.get("objectId")
        if object_id is not None and object_type is None:
            raise validation_error("objectId must be used together with objectType")
        checks = [
            object_type is None or _same_type(str(event.get("objectType")), object_type),
            object_id is None or str(event.get("objectId")) == object_id,
            args.get("eventType") is None or event.get("eventType") == args.get("eventType"),
            not args.getlist("id") or str(event.get("id")) in _query_list(request, "id"),
            self._within(request, str(event["occurredAt"])),
            self._event_properties_match(request, event),
        ]
        return all(checks)

    def _within(self, request: Request, occurred_at: str) -> bool:
        moment = instant(occurred_at)
        after, before = request.args.get("occurredAfter"), request.args.get("occurredBefore")
        return (after is None or moment >= _query_instant(after, "occurredAfter")) and (
            before is None or moment < _query_instant(before, "occurredBefore")
        )

    def _event_properties_match(self, request: Request, event: Mapping[str, Any]) -> bool:
        """`property.<name>=v` filters on the event's properties, `objectProperty.<name>=v` on the
        contact's (e.g. `objectProperty.email=a@b.com` instead of an objectId)."""
        for key, values in request.args.lists():
            if key.startswith("property."):
                if str((event.get("properties") or {}).get(key[len("property.") :])) not in values:
                    return False
            elif key.startswith("objectProperty."):
                contact = self.store.contacts.get(str(event.get("objectId")), {})
                value = contact.get(key[len("objectProperty.") :]) or ""
                if value.casefold() not in {v.casefold() for v in values}:
                    return False
        return True

    def _event_types(self, request: Request, body: Any) -> Reply:
        self._require_events_api()
        names = {str(e.get("eventType")) for e in self.store.events} | {"e_visited_page"}
        return Reply(200, {"eventTypes": sorted(names)})

    # --- properties -----------------------------------------------------------------------------

    def _list_properties(self, request: Request, body: Any, object_type: str) -> Reply:
        object_type = self._object_type(object_type)
        if _query_bool(request, "archived"):
            return Reply(200, {"results": []})
        definitions = (self._catalogue(object_type) or {}).values()
        return Reply(200, {"results": [dict(d) for d in definitions]})

    def _get_property(self, request: Request, body: Any, object_type: str, property_name: str) -> Reply:
        object_type = self._object_type(object_type)
        definition = (self._catalogue(object_type) or {}).get(property_name)
        if definition is None:
            raise ApiError(
                404,
                "OBJECT_NOT_FOUND",
                f"Unable to find property {property_name} for object type {SINGULAR[object_type]}",
                context={"propertyName": [property_name]},
            )
        return Reply(200, dict(definition))


# --- request parsing helpers ------------------------------------------------------------------------


def _parse_body(request: Request) -> tuple[Any, ApiError | None]:
    """The JSON body (None when empty), or the 400 HubSpot gives for malformed JSON."""
    raw = request.get_data(cache=True)
    if not raw:
        return None, None
    try:
        return json.loads(raw), None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        where = (
            f"line {error.lineno}, column {error.colno}"
            if isinstance(error, json.JSONDecodeError)
            else "body"
        )
        text = raw.decode("utf-8", "replace")
        return text, validation_error(f"Invalid input JSON on {where}: {error}")


def _body_object(body: Any, *, required: bool = True) -> dict[str, Any]:
    if body is None and not required:
        return {}
    if not isinstance(body, dict):
        raise validation_error("The request body must be a JSON object")
    return body


def _batch_inputs(payload: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise validation_error("inputs must be an array of objects")
    if len(inputs) > limit:
        raise validation_error(
            f"Batch input size {len(inputs)} exceeds the limit of {limit} inputs per request",
            context={"maxInputs": [str(limit)]},
        )
    return inputs


def _input_id(item: Mapping[str, Any]) -> str:
    value = item.get("id")
    if value is None or str(value) == "":
        raise validation_error("Each input needs an id")
    return str(value)


def _properties_of(payload: Mapping[str, Any]) -> dict[str, str]:
    properties = payload.get("properties")
    if not isinstance(properties, dict):
        raise validation_error("properties must be an object of property name to value")
    return {
        str(k): "" if v is None else (str(v).lower() if isinstance(v, bool) else str(v))
        for k, v in properties.items()
    }


def _update_input(item: Mapping[str, Any]) -> tuple[str, str | None, dict[str, str], str | None]:
    trace = item.get("objectWriteTraceId")
    return (
        _input_id(item),
        item.get("idProperty"),
        _properties_of(item),
        None if trace is None else str(trace),
    )


def _refuse_duplicates(keys: list[str]) -> None:
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise validation_error(f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique")


def _query_instant(raw: str, name: str) -> datetime:
    try:
        return instant(raw)
    except ValueError:
        raise validation_error(f"{name} must be an ISO-8601 date-time, got {raw!r}") from None


def _same_type(stored: str, asked: str) -> bool:
    return OBJECT_TYPES.get(stored, stored.lower()) == OBJECT_TYPES.get(asked, asked.lower())


# --- response helpers -------------------------------------------------------------------------------


def _object_missing(object_id: str) -> ApiError:
    return ApiError(
        404,
        "OBJECT_NOT_FOUND",
        "Object not found.  objectId are usually numeric.",
        context={"id": [object_id]},
    )


def _problem(name: str, code: str, message: str) -> dict[str, Any]:
    return {
        "isValid": False,
        "message": message,
        "error": code,
        "name": name,
        "localizedErrorMessage": message,
    }


def _invalid_values(problems: list[dict[str, Any]], object_id: str, trace_id: str | None) -> dict[str, Any]:
    """HubSpot's "Property values were not valid: [...]" error, with one ErrorDetail per property."""
    context: dict[str, list[str]] = {"ids": [object_id]} if object_id else {}
    if trace_id is not None:
        context["objectWriteTraceId"] = [trace_id]
    return {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": "Property values were not valid: " + json.dumps(problems, separators=(",", ":")),
        "context": context,
        "errors": [
            {
                "message": p["message"],
                "code": p["error"],
                "in": p["name"],
                "context": {"propertyName": [p["name"]]},
            }
            for p in problems
        ],
        "links": {},
    }


def _is_read_only(name: str, definition: Mapping[str, Any] | None) -> bool:
    if definition is not None and "modificationMetadata" in definition:
        return bool((definition.get("modificationMetadata") or {}).get("readOnlyValue"))
    return name in READ_ONLY_PROPERTIES or name.startswith(READ_ONLY_PREFIXES)


def _typed_value_problem(name: str, value: str, type_: Any) -> dict[str, Any] | None:
    """Type checks for number, bool and date properties (codes as HubSpot names them, where known)."""
    if type_ == "number":
        try:
            float(value)
        except ValueError:
            return _problem(name, "INVALID_FLOAT", f"{value} was not a valid number.")
    elif type_ == "bool" and value.lower() not in ("true", "false"):
        return _problem(name, "INVALID_BOOLEAN", f"{value} was not a valid boolean (true or false).")
    elif type_ in ("datetime", "date"):
        try:
            moment = instant(value)
        except ValueError:
            return _problem(
                name, "INVALID_DATE", f"{value} was not a valid date (epoch milliseconds or ISO-8601)."
            )
        if type_ == "date" and (moment.hour, moment.minute, moment.second, moment.microsecond) != (
            0,
            0,
            0,
            0,
        ):
            # HubSpot: date properties store a day; values must be at midnight UTC.
            return _problem(
                name, "INVALID_DATE", f"{value} is not at midnight UTC, as a date property needs."
            )
    return None


def _normalise(value: str, kind: Kind) -> str:
    """Store values the way HubSpot returns them: datetimes ISO with ms, dates YYYY-MM-DD, bools lowercase."""
    if kind == "datetime":
        return hs_datetime(instant(value))
    if kind == "date":
        return instant(value).date().isoformat()
    if kind == "bool":
        return value.lower()
    return value


def _association_types(
    source: str, target: str, type_id: int | None, *, primary: bool
) -> list[dict[str, Any]]:
    types: list[dict[str, Any]] = []
    if primary and (source, target) == ("contacts", "companies"):
        types.append({"category": "HUBSPOT_DEFINED", "typeId": PRIMARY_COMPANY_TYPE_ID, "label": "Primary"})
    if type_id is not None:
        types.append({"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None})
    return types


def _no_associations(source: str, target: str, from_id: str) -> dict[str, Any]:
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
        "message": f"No {SINGULAR[target]} is associated with {SINGULAR[source]} {from_id}.",
        "context": {
            "fromObjectId": [from_id],
            "fromObjectType": [SINGULAR[source]],
            "toObjectType": [SINGULAR[target]],
        },
        "errors": [],
        "links": {},
    }


def _public_owner(owner: Mapping[str, Any]) -> dict[str, Any]:
    """A `PublicOwner`, with the spec's required fields filled in when the seed left them out."""
    public = dict(owner)
    public["id"] = str(public.get("id"))
    public.setdefault("type", "PERSON")
    public.setdefault("archived", False)
    public.setdefault("createdAt", _EPOCH)
    public.setdefault("updatedAt", public["createdAt"])
    return public


def _public_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """An `ExternalUnifiedEvent`: ids and property values as strings, `occurredAt` ISO."""
    return {
        "id": str(event["id"]),
        "eventType": str(event["eventType"]),
        "objectType": str(event.get("objectType", "contact")),
        "objectId": str(event["objectId"]),
        "occurredAt": hs_datetime(instant(str(event["occurredAt"]))),
        "properties": {k: str(v) for k, v in (event.get("properties") or {}).items() if v is not None},
    }


def _reset(environ: WSGIEnvironment) -> None:
    """Drop the client's connection with a TCP reset (SO_LINGER 0), as a failing network does.

    Raising ConnectionResetError afterwards makes the server treat it as a dropped connection.
    """
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The request handler's file objects keep the socket open through `close()`; detach the
        # descriptor and close that, so the reset goes out now. The handler then sees a closed
        # socket and drops the exchange.
        os.close(sock.detach())
    raise ConnectionResetError("emulated connection reset")

"""A Salesforce REST API emulator (WSGI) that `simple-salesforce` runs against unmodified, over TLS.

`SalesforceEmulator(store)` serves what the connector uses, with Salesforce's wire format and its
documented limits (api-facts §7, §8), so an adapter that passes here met the real rules:

* OAuth 2.0 JWT bearer token endpoint (`/services/oauth2/token`, RS256 assertions checked against
  the connected app's certificate) and the SOAP `login` call (username + password + token);
* `query` / `queryAll` over a real SOQL subset (`salesforce_soql.py`), 2,000 records a page by
  default (`Sforce-Query-Options: batchSize=` 200-2,000), `nextRecordsUrl` locators, and the
  16,384-byte URI cap;
* `sobjects/<Type>/describe` (fields, types, picklist values), single-record GET/PATCH/POST;
* `composite/sobjects` PATCH: at most 200 records, `allOrNone`, per-record results in request order;
* `limits` and the `Sforce-Limit-Info: api-usage=used/max` header on every REST answer, with a
  configurable daily allocation that answers 403 `REQUEST_LIMIT_EXCEEDED` when spent;
* errors in Salesforce's JSON shape (`[{"message", "errorCode", "fields"}]`): INVALID_SESSION_ID,
  MALFORMED_QUERY, INVALID_FIELD, UNABLE_TO_LOCK_ROW, FIELD_CUSTOM_VALIDATION_EXCEPTION,
  DUPLICATES_DETECTED, INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST, INACTIVE_OWNER_OR_USER and
  CANNOT_UPDATE_CONVERTED_LEAD ("cannot reference converted lead").

simple-salesforce always builds `https://` URLs: serve this app with
`serve_in_thread(app, ssl_context=TestCertificates().server_context())`. Every request is appended
to `store.requests`; `faults` holds latency and forced answers (see `server.Faults`).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import jwt
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from connector.sandbox.salesforce_soql import Evaluator, SoqlError, parse
from connector.sandbox.salesforce_store import LoggedRequest, SalesforceStore, sf_datetime
from connector.sandbox.server import Faults, ForcedResponse

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
XML_CONTENT_TYPE = "text/xml;charset=UTF-8"
DEFAULT_BATCH = 2000
MIN_BATCH = 200
COLLECTION_LIMIT = 200
MAX_URI_BYTES = 16_384
MAX_SOQL_CHARS = 100_000
MAX_LOCATORS = 200
ORG_ID = "00DDn00000SANDBX"

ROUTES = Map(
    [
        Rule("/services/oauth2/token", methods=["POST"], endpoint="oauth_token"),
        Rule("/services/Soap/u/<version>", methods=["POST"], endpoint="soap_login"),
        Rule("/services/data/v<version>/query", methods=["GET"], endpoint="query"),
        Rule("/services/data/v<version>/queryAll", methods=["GET"], endpoint="query_all"),
        Rule("/services/data/v<version>/query/<locator>", methods=["GET"], endpoint="query_more"),
        Rule("/services/data/v<version>/queryAll/<locator>", methods=["GET"], endpoint="query_more"),
        Rule("/services/data/v<version>/limits", methods=["GET"], endpoint="limits"),
        Rule("/services/data/v<version>/sobjects/<sobject>/describe", methods=["GET"], endpoint="describe"),
        Rule("/services/data/v<version>/sobjects/<sobject>", methods=["POST"], endpoint="create"),
        Rule("/services/data/v<version>/sobjects/<sobject>/<record_id>", methods=["GET"], endpoint="get"),
        Rule(
            "/services/data/v<version>/sobjects/<sobject>/<record_id>", methods=["PATCH"], endpoint="update"
        ),
        Rule("/services/data/v<version>/composite/sobjects", methods=["PATCH"], endpoint="collection_update"),
        Rule("/services/data/v<version>/composite/sobjects", methods=["POST"], endpoint="collection_create"),
    ]
)


class SfError(Exception):
    """An error answer in Salesforce's REST shape: a JSON list of {message, errorCode, fields}."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []

    def body(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields:
            entry["fields"] = self.fields
        return [entry]


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_CONTENT_TYPE


@dataclass(frozen=True)
class RecordError:
    """A per-record failure as sObject Collections reports it (`statusCode`, not `errorCode`)."""

    code: str
    message: str
    fields: tuple[str, ...] = ()

    def result(self) -> dict[str, Any]:
        return {
            "success": False,
            "errors": [{"statusCode": self.code, "message": self.message, "fields": list(self.fields)}],
        }


class SalesforceEmulator:
    """The WSGI app. `clock` dates writes (SystemModstamp); `sleep` is what latency faults sleep."""

    def __init__(
        self,
        store: SalesforceStore,
        *,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.faults = Faults(sleep=sleep)
        self._clock = clock or (lambda: datetime.now(UTC))

    # --- fault knobs ------------------------------------------------------------------------------

    def fail(
        self,
        status: int = 503,
        *,
        code: str = "SERVER_UNAVAILABLE",
        message: str = "Simulated outage",
        times: int = 1,
        path_prefix: str = "",
        method: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` and a Salesforce error body."""
        body = [{"message": message, "errorCode": code}]
        self.faults.force(ForcedResponse(status, body, {}, path_prefix, method, times))

    def now(self) -> datetime:
        """Write time, truncated to whole seconds as Salesforce's system date-times are."""
        return self._clock().astimezone(UTC).replace(microsecond=0)

    # --- WSGI -------------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        reply = self._dispatch(request, environ)
        payload = reply.body if isinstance(reply.body, bytes | str) else json.dumps(reply.body)
        response = Response(payload, reply.status, reply.headers, content_type=reply.content_type)
        return response(environ, start_response)

    def _dispatch(self, request: Request, environ: WSGIEnvironment) -> Reply:
        path = request.path.rstrip("/") or "/"
        self.faults.wait(path)
        body = _json_body(request)
        forced = self.faults.take(request.method, path)
        if forced is not None:
            reply = Reply(forced.status, forced.body, dict(forced.headers))
        else:
            reply = self._answer(request, environ, path, body)
        if path.startswith("/services/data/"):
            with self.store.lock:
                reply.headers["Sforce-Limit-Info"] = (
                    f"api-usage={self.store.api_used}/{self.store.daily_api_limit}"
                )
        self._log(request, path, body, reply)
        return reply

    def _answer(self, request: Request, environ: WSGIEnvironment, path: str, body: Any) -> Reply:
        try:
            uri = str(environ.get("REQUEST_URI") or environ.get("RAW_URI") or request.full_path)
            header_bytes = sum(len(k) + len(v) + 4 for k, v in request.headers.items())
            if len(uri.encode()) + header_bytes > MAX_URI_BYTES:
                # Salesforce's edge refuses these before the API sees them: an HTML page, not JSON.
                return Reply(
                    431, "<html><body>Request Header Fields Too Large</body></html>", {}, "text/html"
                )
            endpoint, args = self._match(path, request.method)
            handler: Callable[..., Reply] = getattr(self, f"_{endpoint}")
            if path.startswith("/services/data/"):
                self._authenticate(request)
                with self.store.lock:
                    if self.store.api_used >= self.store.daily_api_limit:
                        raise SfError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                    self.store.api_used += 1
            with self.store.lock:
                return handler(request, body, **args)
        except SfError as error:
            return Reply(error.status, error.body())
        except Exception:  # answer like Salesforce (a JSON 500) and keep the traceback in the log
            log.exception("Salesforce emulator failed on %s %s", request.method, path)
            return Reply(500, SfError(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.").body())

    def _match(self, path: str, method: str) -> tuple[str, dict[str, str]]:
        adapter = ROUTES.bind("sandbox.invalid")
        try:
            endpoint, args = adapter.match(path, method=method)
        except MethodNotAllowed:
            raise SfError(
                405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are GET,PATCH"
            ) from None
        except NotFound:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist") from None
        return str(endpoint), {k: str(v) for k, v in args.items()}

    def _authenticate(self, request: Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self.store.lock:
            valid = scheme.lower() in ("bearer", "oauth") and token.strip() in self.store.sessions
        if not valid:
            raise SfError(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def _log(self, request: Request, path: str, body: Any, reply: Reply) -> None:
        entry = LoggedRequest(
            method=request.method,
            path=path,
            query={k: list(v) for k, v in request.args.lists()},
            body=body,
            status=reply.status,
            response=reply.body,
            headers={k: v for k, v in request.headers.items() if k.lower().startswith("sforce")},
        )
        with self.store.lock:
            self.store.requests.append(entry)

    # --- login ------------------------------------------------------------------------------------

    def _new_session(self) -> str:
        token = f"{ORG_ID}!{uuid.uuid4().hex}"
        self.store.sessions.add(token)
        return token

    def _oauth_token(self, request: Request, _body: Any) -> Reply:
        """JWT bearer flow: verify the RS256 assertion with the connected app's key, issue a token."""
        form = request.form
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply(
                400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
            )
        assertion = form.get("assertion", "")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return Reply(400, {"error": "invalid_grant", "error_description": "invalid assertion"})
        key = self.store.connected_apps.get(str(unverified.get("iss", "")))
        if key is None:
            return Reply(
                400, {"error": "invalid_client_id", "error_description": "client identifier invalid"}
            )
        try:
            claims = jwt.decode(
                assertion, key, algorithms=["RS256"], options={"verify_aud": False, "require": ["exp", "sub"]}
            )
        except jwt.ExpiredSignatureError:
            return Reply(400, {"error": "invalid_grant", "error_description": "expired authorization code"})
        except jwt.PyJWTError:
            return Reply(400, {"error": "invalid_grant", "error_description": "invalid assertion"})
        user = self._user(str(claims.get("sub", "")))
        if user is None:
            return Reply(
                400, {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"}
            )
        host = f"https://{request.host}"
        return Reply(
            200,
            {
                "access_token": self._new_session(),
                "scope": "api",
                "instance_url": host,
                "id": f"{host}/id/{ORG_ID}/{user['Id']}",
                "token_type": "Bearer",
            },
        )

    def _user(self, username: str) -> dict[str, Any] | None:
        return next(
            (
                u
                for u in self.store.table("User").values()
                if str(u.get("Username", "")).casefold() == username.casefold() and u.get("IsActive")
            ),
            None,
        )

    def _soap_login(self, request: Request, _body: Any, version: str) -> Reply:
        """The SOAP `login` call simple-salesforce makes for username + password + security token."""
        try:
            root = ET.fromstring(request.get_data())  # noqa: S314 - loopback sandbox, client is ours
        except ET.ParseError:
            return _soap_fault("INVALID_LOGIN", "Invalid request")
        values = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root.iter()}
        username, password = values.get("username", ""), values.get("password", "")
        user = self._user(username)
        if user is None or self.store.passwords.get(str(user["Username"])) != password:
            return _soap_fault(
                "INVALID_LOGIN",
                "INVALID_LOGIN: Invalid username, password, security token; or user locked out.",
            )
        host = f"https://{request.host}"
        session = self._new_session()
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{host}/services/Soap/m/{version}/{ORG_ID}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{host}/services/Soap/u/{version}/{ORG_ID}</serverUrl>"
            f"<sessionId>{escape(session)}</sessionId><userId>{user['Id']}</userId>"
            "<userInfo><sessionSecondsValid>7200</sessionSecondsValid></userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Reply(200, xml, {}, XML_CONTENT_TYPE)

    # --- query ------------------------------------------------------------------------------------

    def _query(self, request: Request, _body: Any, version: str) -> Reply:
        return self._run_query(request, version, include_deleted=False)

    def _query_all(self, request: Request, _body: Any, version: str) -> Reply:
        return self._run_query(request, version, include_deleted=True)

    def _run_query(self, request: Request, version: str, *, include_deleted: bool) -> Reply:
        text = request.args.get("q")
        if text is None:
            raise SfError(400, "MALFORMED_QUERY", "A query string has to be specified")
        if len(text) > MAX_SOQL_CHARS:
            raise SfError(
                400, "MALFORMED_QUERY", f"SOQL statements cannot be longer than {MAX_SOQL_CHARS} characters"
            )
        try:
            query = parse(text)
            sobject = self._sobject_name(query.sobject)
            if sobject is None:
                pointer = " " * (query.sobject_column - 1) + "^"
                raise SoqlError(
                    "INVALID_TYPE",
                    f"\n{text}\n{pointer}\nERROR at Row:1:Column:{query.sobject_column}\nsObject type "
                    f"'{query.sobject}' is not supported. If you are attempting to use a custom object, be "
                    "sure to append the '__c' after the entity name.",
                )
            schema = self.store.schema[sobject]
            evaluator = Evaluator(query, {name: f.type for name, f in schema.items()})
        except SoqlError as error:
            raise SfError(400, error.code, error.message) from None
        rows = [r for r in self.store.table(sobject).values() if include_deleted or not r.get("IsDeleted")]
        matched = evaluator.run(rows)
        records = [_serialise(sobject, row, evaluator.select, version) for row in matched]
        batch = _batch_size(request.headers.get("Sforce-Query-Options", ""))
        locator = f"01g{uuid.uuid4().hex[:15]}"
        self.store.locators[locator] = (sobject, records, batch)
        while len(self.store.locators) > MAX_LOCATORS:
            self.store.locators.popitem(last=False)
        kind = "queryAll" if include_deleted else "query"
        return Reply(200, _page(records, 0, batch, locator, version, kind))

    def _query_more(self, request: Request, _body: Any, version: str, locator: str) -> Reply:
        key, _, offset_text = locator.partition("-")
        entry = self.store.locators.get(key)
        if entry is None or not offset_text.isdigit():
            raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        _sobject, records, batch = entry
        kind = "queryAll" if "/queryAll/" in request.path else "query"
        return Reply(200, _page(records, int(offset_text), batch, key, version, kind))

    def _sobject_name(self, name: str) -> str | None:
        return next((s for s in self.store.schema if s.lower() == name.lower()), None)

    # --- limits / describe ------------------------------------------------------------------------

    def _limits(self, _request: Request, _body: Any, version: str) -> Reply:
        store = self.store
        return Reply(
            200,
            {
                "DailyApiRequests": {
                    "Max": store.daily_api_limit,
                    "Remaining": max(0, store.daily_api_limit - store.api_used),
                },
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "DataStorageMB": {"Max": 1024, "Remaining": 1000},
            },
        )

    def _describe(self, _request: Request, _body: Any, version: str, sobject: str) -> Reply:
        name = self._sobject_name(sobject)
        if name is None:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        from connector.sandbox.salesforce_store import KEY_PREFIXES

        base = f"/services/data/v{version}/sobjects/{name}"
        return Reply(
            200,
            {
                "name": name,
                "label": name,
                "keyPrefix": KEY_PREFIXES.get(name),
                "custom": False,
                "queryable": True,
                "createable": True,
                "updateable": True,
                "fields": [f.describe() for f in self.store.schema[name].values()],
                "urls": {"describe": f"{base}/describe", "sobject": base, "rowTemplate": f"{base}/{{ID}}"},
            },
        )

    # --- records ----------------------------------------------------------------------------------

    def _get(self, request: Request, _body: Any, version: str, sobject: str, record_id: str) -> Reply:
        found = self.store.find(record_id)
        name = self._sobject_name(sobject)
        if found is None or found[0] != name or found[1].get("IsDeleted"):
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        fields = request.args.get("fields")
        wanted = [f.strip() for f in fields.split(",")] if fields else list(self.store.schema[found[0]])
        return Reply(200, _serialise(found[0], found[1], wanted, version))

    def _create(self, _request: Request, body: Any, version: str, sobject: str) -> Reply:
        name = self._sobject_name(sobject)
        if name is None:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        if not isinstance(body, dict):
            raise SfError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        schema = self.store.schema[name]
        for key in body:
            if key != "attributes" and key not in schema:
                raise SfError(400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {name}")
            if key in schema and not schema[key].createable:
                raise SfError(
                    400, "INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {key}.", [key]
                )
        values = {k: v for k, v in body.items() if k != "attributes"}
        row = self.store.insert(name, values, at=self.now())
        return Reply(201, {"id": row["Id"], "success": True, "errors": []})

    def _update(self, _request: Request, body: Any, version: str, sobject: str, record_id: str) -> Reply:
        name = self._sobject_name(sobject)
        if name is None:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        if not isinstance(body, dict):
            raise SfError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        self._check_fields(name, body)
        found = self.store.find(record_id)
        if found is None or found[0] != name:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        error = self._apply(found[0], found[1], {k: v for k, v in body.items() if k != "attributes"})
        if error is not None:
            raise SfError(400, error.code, error.message, list(error.fields))
        return Reply(204, b"")

    def _collection_update(self, _request: Request, body: Any, version: str) -> Reply:
        """sObject Collections update: validate the whole request, then each record in order."""
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise SfError(400, "JSON_PARSER_ERROR", "The request body must hold a records array")
        records: list[Any] = body["records"]
        if len(records) > COLLECTION_LIMIT:
            raise SfError(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records into this call",
            )
        all_or_none = bool(body.get("allOrNone", False))
        plans: list[tuple[str, dict[str, Any], dict[str, Any]] | RecordError] = []
        for record in records:
            plans.append(self._plan_record(record))
        errors: list[RecordError | None] = []
        for plan in plans:
            if isinstance(plan, RecordError):
                errors.append(plan)
            else:
                errors.append(self._check_record(*plan))
        if all_or_none and any(errors):
            rolled = RecordError(
                "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "Record rolled back because not all records were valid and the request was using "
                "AllOrNone header",
            )
            return Reply(200, [(e or rolled).result() for e in errors])
        results: list[dict[str, Any]] = []
        for plan, error in zip(plans, errors, strict=True):
            if error is not None or isinstance(plan, RecordError):
                results.append((error or RecordError("UNKNOWN_EXCEPTION", "unknown")).result())
                continue
            _sobject, row, changes = plan
            self._write(row, changes)
            results.append({"id": row["Id"], "success": True, "errors": []})
        return Reply(200, results)

    def _collection_create(self, _request: Request, body: Any, version: str) -> Reply:
        """sObject Collections create: at most 200 records, none with an id, results in order.

        Each record is checked like a single create (unknown or non-createable fields, restricted
        picklists, required fields, references that must exist: WhoId a Lead or Contact, OwnerId
        an active User or a Queue); with `allOrNone` one bad record rolls back all.
        """
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise SfError(400, "JSON_PARSER_ERROR", "The request body must hold a records array")
        records: list[Any] = body["records"]
        if len(records) > COLLECTION_LIMIT:
            raise SfError(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records into this call",
            )
        plans: list[tuple[str, dict[str, Any]] | RecordError] = [self._plan_create(r) for r in records]
        if bool(body.get("allOrNone", False)) and any(isinstance(p, RecordError) for p in plans):
            rolled = RecordError(
                "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "Record rolled back because not all records were valid and the request was using "
                "AllOrNone header",
            )
            return Reply(200, [(p if isinstance(p, RecordError) else rolled).result() for p in plans])
        results: list[dict[str, Any]] = []
        for plan in plans:
            if isinstance(plan, RecordError):
                results.append(plan.result())
                continue
            row = self.store.insert(plan[0], plan[1], at=self.now())
            results.append({"id": row["Id"], "success": True, "errors": []})
        return Reply(200, results)

    def _plan_create(self, record: Any) -> tuple[str, dict[str, Any]] | RecordError:
        if not isinstance(record, dict):
            return RecordError("JSON_PARSER_ERROR", "each record must be a JSON object")
        sobject = self._sobject_name(str((record.get("attributes") or {}).get("type") or ""))
        if sobject is None:
            return RecordError("INVALID_TYPE", "sObject type not specified or not supported")
        if record.get("id") or record.get("Id"):
            return RecordError("INVALID_FIELD", "cannot specify Id in an insert call")
        self._check_fields(sobject, record)
        values = {k: v for k, v in record.items() if k != "attributes"}
        schema = self.store.schema[sobject]
        for key, value in values.items():
            definition = schema[key]
            if not definition.createable:
                return RecordError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {key}.", (key,)
                )
            if definition.restricted and value is not None and value not in definition.picklist:
                return RecordError(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{definition.label}: bad value for restricted picklist field: {value}",
                    (key,),
                )
            if definition.type == "reference" and value is not None:
                target = self.store.find(str(value))
                if target is None or (definition.reference_to and target[0] not in definition.reference_to):
                    return RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", (key,))
                if key == "OwnerId" and target[0] == "User" and not target[1].get("IsActive"):
                    return RecordError(
                        "INACTIVE_OWNER_OR_USER", "operation performed with inactive user as owner"
                    )
            if (
                definition.type == "date"
                and value is not None
                and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value))
            ):
                return RecordError(
                    "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    f"{definition.label}: value not of required type: {value}",
                    (key,),
                )
        missing = [
            name
            for name, definition in schema.items()
            if not definition.nillable
            and definition.createable
            and values.get(name) is None
            and definition.type not in ("boolean",)
            and name not in ("OwnerId",)
        ]
        if missing:
            return RecordError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                tuple(missing),
            )
        return sobject, values

    def _plan_record(self, record: Any) -> tuple[str, dict[str, Any], dict[str, Any]] | RecordError:
        if not isinstance(record, dict):
            return RecordError("JSON_PARSER_ERROR", "each record must be a JSON object")
        attributes = record.get("attributes") or {}
        sobject = self._sobject_name(str(attributes.get("type") or ""))
        if sobject is None:
            return RecordError("INVALID_TYPE", "sObject type not specified or not supported")
        record_id = record.get("id") or record.get("Id")
        if not record_id:
            return RecordError("MISSING_ARGUMENT", "Id not specified in an update call")
        self._check_fields(sobject, record)
        found = self.store.find(str(record_id))
        if found is None or found[0] != sobject:
            return RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        changes = {k: v for k, v in record.items() if k not in ("attributes", "id", "Id")}
        return found[0], found[1], changes

    def _check_fields(self, sobject: str, record: dict[str, Any]) -> None:
        """Unknown fields fail the whole request, as JSON deserialisation does on Salesforce."""
        schema = self.store.schema[sobject]
        for key in record:
            if key not in ("attributes", "id", "Id") and key not in schema:
                raise SfError(400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {sobject}")

    def _check_record(self, sobject: str, row: dict[str, Any], changes: dict[str, Any]) -> RecordError | None:
        """Why Salesforce would refuse this record's update, or None. Consumes one lock failure."""
        record_id = str(row["Id"])
        if row.get("IsDeleted"):
            return RecordError("ENTITY_IS_DELETED", "entity is deleted")
        if sobject == "Lead" and row.get("IsConverted"):
            return RecordError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
        schema = self.store.schema[sobject]
        for key, value in changes.items():
            definition = schema[key]
            if not definition.updateable:
                return RecordError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {key}. Please check the security settings of this "
                    "field "
                    "and verify that it is read/write for your profile or permission set.",
                    (key,),
                )
            if definition.restricted and value is not None and value not in definition.picklist:
                return RecordError(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{definition.label}: bad value for restricted picklist field: {value}",
                    (key,),
                )
            if key == "OwnerId":
                owner = self.store.find(str(value)) if value else None
                if owner is None or owner[0] not in ("User", "Group"):
                    return RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", (key,))
                if owner[0] == "User" and not owner[1].get("IsActive"):
                    return RecordError(
                        "INACTIVE_OWNER_OR_USER", "operation performed with inactive user as owner"
                    )
                if owner[0] == "Group" and owner[1].get("Type") != "Queue":
                    return RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", (key,))
        pending = self.store.lock_failures.get(record_id, 0)
        if pending > 0:
            self.store.lock_failures[record_id] = pending - 1
            return RecordError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")
        rejection = self.store.rejections.get(record_id)
        if rejection is not None:
            return RecordError(rejection[0], rejection[1])
        return None

    def _apply(self, sobject: str, row: dict[str, Any], changes: dict[str, Any]) -> RecordError | None:
        error = self._check_record(sobject, row, changes)
        if error is None:
            self._write(row, changes)
        return error

    def _write(self, row: dict[str, Any], changes: dict[str, Any]) -> None:
        row.update(changes)
        stamp = sf_datetime(self.now())
        row["LastModifiedDate"] = stamp
        row["SystemModstamp"] = stamp


def _serialise(sobject: str, row: Mapping[str, Any], fields: Iterable[str], version: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "attributes": {"type": sobject, "url": f"/services/data/v{version}/sobjects/{sobject}/{row['Id']}"}
    }
    for name in fields:
        record[name] = row.get(name)
    return record


def _page(
    records: list[dict[str, Any]], offset: int, batch: int, locator: str, version: str, kind: str
) -> dict[str, Any]:
    chunk = records[offset : offset + batch]
    done = offset + batch >= len(records)
    page: dict[str, Any] = {"totalSize": len(records), "done": done, "records": chunk}
    if not done:
        page["nextRecordsUrl"] = f"/services/data/v{version}/{kind}/{locator}-{offset + batch}"
    return page


def _batch_size(header: str) -> int:
    """`Sforce-Query-Options: batchSize=N`: 200 to 2,000 (a hint Salesforce may lower, never raise)."""
    match = re.search(r"batchSize\s*=\s*(\d+)", header)
    if match is None:
        return DEFAULT_BATCH
    return max(MIN_BATCH, min(DEFAULT_BATCH, int(match.group(1))))


def _json_body(request: Request) -> Any:
    if request.method not in ("PATCH", "POST") or not request.is_json:
        return None
    try:
        return json.loads(request.get_data() or b"null")
    except ValueError:
        return None


def _soap_fault(code: str, message: str) -> Reply:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{escape(message)}</faultstring>"
        f"<detail><sf:LoginFault><sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage></sf:LoginFault></detail>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Reply(500, xml, {}, XML_CONTENT_TYPE)

"""Check the emulator's traffic against HubSpot's official OpenAPI specs (openapi-core).

`SpecChecker` is WSGI middleware: it forwards each request to the emulator, then validates the
request (when the emulator accepted it) and the response against the spec file that owns the path.
The specs are read from `../shared/specs/hubspot/` beside the repo checkout; they are HubSpot's
files and are never copied into this repository.

Where the specs disagree with what the live API does, the spec is patched in memory below, one
documented deviation at a time, instead of switching validation off.
"""

from __future__ import annotations

import copy
import functools
import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.wrappers import Request, Response

SPEC_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "specs" / "hubspot"

# path prefix -> spec file that documents it
SPEC_FILES = {
    "/crm/v3/objects/contacts": "contacts.json",
    "/crm/v3/objects/companies": "companies.json",
    "/crm/v3/objects/emails": "emails.json",
    "/crm/v3/objects/calls": "calls.json",
    "/crm/v3/objects/meetings": "meetings.json",
    "/crm/v3/objects/notes": "notes.json",
    "/crm/v3/objects/tasks": "tasks.json",
    "/crm/v3/objects/communications": "communications.json",
    "/crm/v4/associations": "associations-v4.json",
    "/crm/v3/owners": "owners.json",
    "/crm/v3/properties": "properties.json",
    "/events/v3": "events.json",
}


def spec_file_for(path: str) -> str | None:
    return next((name for prefix, name in SPEC_FILES.items() if path.startswith(prefix)), None)


def load_spec(name: str, spec_dir: Path = SPEC_DIR) -> dict[str, Any]:
    with (spec_dir / name).open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
    return loaded


def _patch_search_sorts(schemas: dict[str, Any]) -> None:
    # The spec (and the SDK model) type `sorts` as list[str]; the API takes
    # {"propertyName", "direction"} objects (HS-SEARCH; HubSpot/hubspot-api-python#236).
    schemas["PublicObjectSearchRequest"]["properties"]["sorts"]["items"] = {
        "oneOf": [
            {"type": "string"},
            {
                "type": "object",
                "required": ["propertyName"],
                "properties": {
                    "propertyName": {"type": "string"},
                    "direction": {"type": "string", "enum": ["ASCENDING", "DESCENDING"]},
                },
            },
        ]
    }


def _patch_null_property_values(schemas: dict[str, Any]) -> None:
    # Requested properties without a value come back as null (HS-SEARCH examples); the spec's
    # `additionalProperties: {type: string}` does not say nullable.
    schemas["SimplePublicObject"]["properties"]["properties"]["additionalProperties"]["nullable"] = True


def _patch_integer_to_object_id(schemas: dict[str, Any]) -> None:
    # v4 association reads return `toObjectId` as an integer; the spec types it as a string (api-facts §2).
    schemas["MultiAssociatedObjectWithLabel"]["properties"]["toObjectId"] = {
        "type": "integer",
        "format": "int64",
    }


def _patch_null_association_label(schemas: dict[str, Any]) -> None:
    # Unlabelled association types carry `"label": null` (api-facts §2 example); the spec says string.
    schemas["AssociationSpecWithLabel"]["properties"]["label"]["nullable"] = True


def _patch_string_sub_category(schemas: dict[str, Any]) -> None:
    # Batch errors carry `subCategory` as a string, e.g. "crm.associations.NO_ASSOCIATIONS_FOUND"
    # (observed 207 bodies); the spec's StandardError types it as an object.
    schemas["StandardError"]["properties"]["subCategory"] = {"type": "string"}


KNOWN_DEVIATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "PublicObjectSearchRequest": _patch_search_sorts,
    "SimplePublicObject": _patch_null_property_values,
    "MultiAssociatedObjectWithLabel": _patch_integer_to_object_id,
    "AssociationSpecWithLabel": _patch_null_association_label,
    "StandardError": _patch_string_sub_category,
}


def patched(spec: dict[str, Any], *, deviations: bool = True) -> dict[str, Any]:
    """A copy of `spec` that openapi-core can check, with the API's known deviations applied.

    The first two adjustments are about the tooling, not the API, and always apply; the
    `KNOWN_DEVIATIONS` apply where the spec has the schema, unless `deviations` is False.
    """
    spec = copy.deepcopy(spec)
    schemes = spec["components"].get("securitySchemes", {})
    if "oauth2" in schemes:
        # OAuth access tokens and private-app tokens both travel as `Authorization: Bearer <token>`.
        # openapi-core cannot evaluate oauth2 schemes (it only warns), so check them as HTTP bearer.
        schemes["oauth2"] = {"type": "http", "scheme": "bearer"}
    for response in spec["components"].get("responses", {}).values():
        # Error bodies are declared as `*/*`, which openapi-core leaves undecoded (bytes never match
        # the object schema). HubSpot sends them as application/json: declare that, so error bodies
        # are validated against `Error` for real.
        if "*/*" in response.get("content", {}):
            response["content"]["application/json"] = response["content"].pop("*/*")
    schemas = spec["components"]["schemas"]
    for schema_name, patch in KNOWN_DEVIATIONS.items():
        if deviations and schema_name in schemas:
            patch(schemas)
    return spec


@functools.cache
def openapi_for(spec_dir: Path, name: str, patch: bool = True) -> OpenAPI:
    """The (patched) spec, built once per test session (building one takes ~50 ms)."""
    spec = load_spec(name, spec_dir)
    return OpenAPI.from_dict(patched(spec, deviations=patch))


RATE_LIMIT_KEYS = {"status", "message", "correlationId", "policyName"}


class SpecChecker:
    """WSGI middleware validating every exchange; violations collect in `violations`."""

    def __init__(self, app: Any, spec_dir: Path = SPEC_DIR, *, patch: bool = True) -> None:
        self.app = app
        self.spec_dir = spec_dir
        self.patch = patch  # False validates against the specs as published (to show a deviation)
        self.violations: list[str] = []
        self.checked = 0

    def api(self, name: str) -> OpenAPI:
        return openapi_for(self.spec_dir, name, self.patch)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        response = Response.from_app(self.app, environ)
        self.check(environ, body, response)
        return response(environ, start_response)

    def check(self, environ: dict[str, Any], body: bytes, response: Response) -> None:
        path = environ.get("PATH_INFO", "").rstrip("/")
        name = spec_file_for(path)
        if name is None:
            return
        self.checked += 1
        request = _as_hubspot_request(environ, path, body)
        api = self.api(name)
        where = f"{environ['REQUEST_METHOD']} {path} -> {response.status_code}"
        if response.status_code < 400:
            # Only requests the emulator accepted must be spec-valid; tests send bad ones on purpose.
            self._collect(where + " (request)", api.iter_request_errors(WerkzeugOpenAPIRequest(request)))
        if response.status_code >= 500 and response.mimetype != "application/json":
            return  # an edge proxy's page (e.g. HTML 502), not an API answer the spec describes
        if response.status_code == 429:
            # HubSpot's 429 body has no `category` (api-facts §5), which the spec's Error requires.
            missing = RATE_LIMIT_KEYS - set(json.loads(response.get_data()))
            if missing:
                self.violations.append(f"{where}: 429 body lacks {sorted(missing)}")
            return
        errors = api.iter_response_errors(WerkzeugOpenAPIRequest(request), WerkzeugOpenAPIResponse(response))
        self._collect(where + " (response)", errors)

    def _collect(self, where: str, errors: Iterable[Exception]) -> None:
        for error in errors:
            cause = error.__cause__
            detail = list(getattr(cause, "schema_errors", None) or ([cause] if cause else []))
            distinct = list(dict.fromkeys(str(d).split("\n", 1)[0] for d in detail))
            self.violations.append(f"{where}: {str(error)[:200]} {distinct[:10]}")


def _as_hubspot_request(environ: dict[str, Any], path: str, body: bytes) -> Request:
    """The request as if sent to api.hubapi.com (the spec's server), trailing slash removed: the SDK
    calls "/crm/v3/owners/" and "/events/v3/events/", which HubSpot serves like the spec's paths."""
    env = dict(environ)
    env.update(
        {
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "https",
            "HTTP_HOST": "api.hubapi.com",
            "SERVER_NAME": "api.hubapi.com",
            "SERVER_PORT": "443",
            "PATH_INFO": path,
        }
    )
    return Request(env)

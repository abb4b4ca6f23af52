"""Translate what the HubSpot SDK raises into `connector.errors`, redacted, at the adapter boundary.

Every SDK sub-package has its own `ApiException` class (about 60 copies, no shared base), so
errors are recognised by their `.status` and `.body`, never by class. Transport failures are
urllib3 exceptions. Bodies and headers may hold tokens: only redacted text leaves this module.
"""

from __future__ import annotations

import json
from typing import Any

import urllib3

from connector.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    DailyLimitExhausted,
    FatalError,
    RateLimited,
    TransientError,
)
from connector.observability import redact


def _body(exc: BaseException) -> dict[str, Any]:
    raw = getattr(exc, "body", None)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str):
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def translate(exc: BaseException, action: str) -> ConnectorError:
    """Map an SDK or transport exception to the class that says what to do next."""
    if isinstance(exc, ConnectorError):
        return exc
    status = getattr(exc, "status", None)
    if isinstance(status, int) and hasattr(exc, "body"):
        return _translate_status(status, _body(exc), exc, action)
    if isinstance(exc, urllib3.exceptions.HTTPError | TimeoutError | ConnectionError):
        return TransientError(
            f"HubSpot did not answer while {action} ({type(exc).__name__}); will retry",
            detail=redact(str(exc)),
        )
    return FatalError(f"unexpected error while {action}: {type(exc).__name__}", detail=redact(str(exc)))


def _translate_status(status: int, body: dict[str, Any], exc: BaseException, action: str) -> ConnectorError:
    category = str(body.get("category") or body.get("errorType") or "")
    message = redact(str(body.get("message") or getattr(exc, "reason", "") or ""))
    detail = f"HTTP {status} {category} correlationId={body.get('correlationId', '-')}: {message}"
    if status == 401:
        return AuthError(
            f"HubSpot rejected the access token while {action} (401): check CONNECTOR_HUBSPOT_TOKEN "
            "holds a current private-app token",
            detail=detail,
        )
    if status == 403:
        return AuthError(
            f"HubSpot refused {action} (403 {category}): the private app lacks a scope; grant "
            "crm.objects.contacts.read, crm.objects.contacts.write and crm.objects.owners.read",
            detail=detail,
        )
    if status == 429:
        policy = str(body.get("policyName") or "")
        if policy == "DAILY":
            return DailyLimitExhausted(
                f"HubSpot's daily API limit is used up ({action}); the run stops and resumes after the reset",
                detail=detail,
            )
        default_wait = 1.0 if policy == "SECONDLY" else 10.0
        return RateLimited(
            f"HubSpot rate limit ({policy or 'unknown policy'}) while {action}",
            retry_after=_retry_after(exc) or default_wait,
            policy=policy or None,
            detail=detail,
        )
    if status == 0:
        return ConfigError(
            f"TLS to HubSpot failed while {action}: check CONNECTOR_HUBSPOT_BASE_URL and the CA bundle",
            detail=detail,
        )
    if status >= 500 or status in (408, 423, 477):
        return TransientError(f"HubSpot had a temporary error ({status}) while {action}", detail=detail)
    return FatalError(f"HubSpot answered {status} {category} while {action}: {message}", detail=detail)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an SDK `ApiException` (any sub-package's), else None."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) and hasattr(exc, "body") else None


def headers_of(exc: BaseException) -> dict[str, str]:
    """Response headers of an SDK `ApiException`, for the pacer (`X-HubSpot-RateLimit-*`)."""
    headers = getattr(exc, "headers", None)
    if not headers or not hasattr(headers, "items"):
        return {}
    return {str(k): str(v) for k, v in headers.items()}

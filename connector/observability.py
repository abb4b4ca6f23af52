"""Logging set-up and secret redaction.

Tokens reach this process only through settings; `redact` is the last line of defence for any
text that might echo one back (an error body, a URL), applied by the log filter and by adapters
before an error message leaves them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"\bpat-[a-z]{2}\d?-[0-9a-f-]{8,}\b"),
    re.compile(
        r"(?i)((?:access_token|session_id|sessionid|client_secret|password|token)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
    ),
]
_known_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a secret so it is masked wherever it appears, whatever its shape."""
    if len(value) >= 6:
        _known_secrets.add(value)


def redact(text: str) -> str:
    for secret in _known_secrets:
        text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        for key in _event_keys(record):
            value = record.__dict__[key]
            if isinstance(value, str):
                record.__dict__[key] = redact(value)
        return True


_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def _event_keys(record: logging.LogRecord) -> list[str]:
    """Fields passed with `extra=` (run_id, phase, counts...), i.e. not LogRecord's own."""
    return [k for k in record.__dict__ if k not in _STANDARD_ATTRS and not k.startswith("_")]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and every `extra=` field.

    Containers ship stderr to a log pipeline; one event per line parses without guessing.
    """

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _event_keys(record):
            event[key] = record.__dict__[key]
        if record.exc_info:
            event["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(event, default=str, ensure_ascii=False)


_json_logs = False


def json_logs() -> bool:
    """Whether logs are JSON lines (a container, a pipe): progress bars stay silent then."""
    return _json_logs


def configure_logging(level: str = "WARNING", fmt: str = "auto") -> None:
    """Logs on stderr: JSON lines when stderr is not a terminal (or `fmt="json"`), readable text
    otherwise; every record passes through redaction."""
    global _json_logs
    handler = logging.StreamHandler(sys.stderr)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    _json_logs = use_json
    if use_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))

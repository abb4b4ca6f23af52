"""Logging set-up and secret redaction.

Tokens reach this process only through settings; `redact` is the last line of defence for any
text that might echo one back (an error body, a URL), applied by the log filter and by adapters
before an error message leaves them.
"""

from __future__ import annotations

import logging
import re
import sys

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
        return True


def configure_logging(level: str = "WARNING") -> None:
    """Human-readable logs on stderr; every record passes through redaction."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

"""Every exception the connector raises, named by what the caller should do next.

Each class carries a user message (what happened and whose move it is) and maps to a process exit
code, so `cli` never has to guess. Vendor exceptions are translated into these at the adapter
boundary and never leak their headers or bodies (which may hold tokens) into logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ExitCode:
    OK = 0
    FATAL = 1
    CONFIG = 2
    AUTH = 3
    PARTIAL = 4
    TRANSIENT = 5


class ConnectorError(Exception):
    """Root of the hierarchy. `str(e)` is the user message; `detail` is for logs only."""

    exit_code = ExitCode.FATAL

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


@dataclass(frozen=True)
class MappingIssue:
    """One problem in a mapping file, located precisely enough to jump to it in an editor."""

    file: str
    line: int
    column: int
    path: str
    message: str
    hint: str = ""

    def render(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        field = f" {self.path}:" if self.path else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}:{field} {self.message}{hint}"


class ConfigError(ConnectorError):
    """The operator must fix settings or mapping files; retrying will not help."""

    exit_code = ExitCode.CONFIG


class MappingError(ConfigError):
    """One or more mapping files are invalid; carries every issue found, not just the first."""

    def __init__(self, issues: list[MappingIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(i.render() for i in issues))


class AuthError(ConnectorError):
    """Credentials were rejected or lack a scope: the operator must issue new ones."""

    exit_code = ExitCode.AUTH


class TransientError(ConnectorError):
    """Worth retrying after a pause (5xx, timeouts, connection resets)."""

    exit_code = ExitCode.TRANSIENT


class RateLimited(TransientError):
    """The CRM asked us to slow down. `retry_after` in seconds when the CRM said so."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        policy: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message, detail=detail)
        self.retry_after = retry_after
        self.policy = policy


class DailyLimitExhausted(ConnectorError):
    """The day's API budget is spent: stop cleanly, keep what is done, resume after the reset.

    `done` holds what completed before the stop within the interrupted operation (e.g. the write
    results of the batches that landed), so the caller can record it before stopping.
    """

    exit_code = ExitCode.PARTIAL

    def __init__(self, message: str, *, detail: str | None = None, done: list[Any] | None = None) -> None:
        super().__init__(message, detail=detail)
        self.done: list[Any] = list(done or [])


class RecordError(ConnectorError):
    """The CRM rejected one record: park it with the CRM's message and carry on with the rest."""

    exit_code = ExitCode.PARTIAL

    def __init__(self, message: str, *, record_id: str, detail: str | None = None) -> None:
        super().__init__(message, detail=detail)
        self.record_id = record_id


class FatalError(ConnectorError):
    """A bug or an unexpected CRM answer: stop the run, keep cursors where they were."""

    exit_code = ExitCode.FATAL

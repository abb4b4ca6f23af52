"""Every exception the connector raises, named by what the caller should do next.

Each class carries a user message (what happened and whose move it is) and maps to a process exit
code, so `cli` never has to guess. Vendor exceptions are translated into these at the adapter
boundary and never leak their headers or bodies (which may hold tokens) into logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ExitCode:
    """Process exit codes, as documented in the README ("Exit codes").

    A scheduler reads them to decide what to do: 1 means the run finished but left work behind
    (records parked, or the daily API budget ran out) and the next run picks it up; 2 needs a human
    to fix settings or mappings; 3 means the CRM could not be reached or refused the credentials
    (retrying after a pause may help, a new token certainly does); 4 means another run holds the
    lease on the scope, so this one did nothing and can simply run again later. 5 is for what the
    connector did not expect (a bug, or a CRM answer it does not understand); cursors stay where
    they were, so nothing is lost, but someone should read the log.
    """

    OK = 0
    PARTIAL = 1
    CONFIG = 2
    AUTH = 3
    CONNECTION = 3
    LEASE = 4
    FATAL = 5


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
    """Worth retrying after a pause (5xx, timeouts, connection resets).

    Retried inside the run first; when the retries run out the CRM is unreachable for now, which
    a scheduler treats like an authentication failure: exit 3, try again later.
    """

    exit_code = ExitCode.CONNECTION


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


class LeaseHeld(ConnectorError):
    """Another run holds the lease on this scope: this run did nothing and can run again later."""

    exit_code = ExitCode.LEASE

    def __init__(self, message: str, *, scope: str, holder: str, detail: str | None = None) -> None:
        super().__init__(message, detail=detail)
        self.scope = scope
        self.holder = holder


class LeaseLost(LeaseHeld):
    """Our lease expired and another run took the scope over: stop before writing anything more."""


class SchemaBehind(ConfigError):
    """The state database predates this connector's schema: `connector migrate` must run first."""


class FatalError(ConnectorError):
    """A bug or an unexpected CRM answer: stop the run, keep cursors where they were."""

    exit_code = ExitCode.FATAL


class ApiShareReached(DailyLimitExhausted):
    """This run used the share of the CRM's remaining daily API requests it may use: stop cleanly.

    Cursors of committed pages are kept; the next run resumes from them.
    """

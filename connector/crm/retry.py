"""One retry policy for every CRM call, built once from settings.

Only `TransientError` is retried (429, 5xx, timeouts, resets); a `Retry-After` the CRM sent wins
over our own backoff. Tests inject `sleep` and read the recorded waits instead of sleeping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from connector.errors import RateLimited, TransientError

T = TypeVar("T")
log = logging.getLogger("connector.retry")


class RetryAfterOrBackoff:
    """Wait what the CRM asked for (capped), else exponential backoff with jitter."""

    def __init__(self, *, initial: float, maximum: float) -> None:
        self.maximum = maximum
        self.backoff = wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self.maximum)
        return float(self.backoff(state))


def _log_before_sleep(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("retrying after %.1fs (attempt %d): %s", wait, state.attempt_number, exc)


class RetryPolicy:
    """Callable wrapper: `policy.call(fn, *args)` runs fn under the shared policy."""

    def __init__(
        self,
        *,
        max_attempts: int = 5,
        initial_wait: float = 0.5,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] | None = None,
        retry_on: type[Exception] = TransientError,
    ) -> None:
        self.max_attempts = max_attempts
        self.initial_wait = initial_wait
        self.max_wait = max_wait
        self._sleep = sleep
        self.retry_on = retry_on

    def for_creates(self) -> RetryPolicy:
        """The same policy retrying only 429s: a create that timed out or got a 5xx may have
        happened, and sending it again could create it twice (the caller settles it instead)."""
        return RetryPolicy(
            max_attempts=self.max_attempts,
            initial_wait=self.initial_wait,
            max_wait=self.max_wait,
            sleep=self._sleep,
            retry_on=RateLimited,
        )

    def retrying(self) -> Retrying:
        kwargs: dict[str, object] = {}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        return Retrying(
            retry=retry_if_exception_type(self.retry_on),
            wait=RetryAfterOrBackoff(initial=self.initial_wait, maximum=self.max_wait),
            stop=stop_after_attempt(self.max_attempts),
            reraise=True,
            before_sleep=_log_before_sleep,
            **kwargs,  # type: ignore[arg-type]
        )

    def call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        return self.retrying()(fn, *args, **kwargs)

    def pause(self, attempt: int) -> float:
        """Back off before re-sending records a batch call refused transiently (attempt from 1).

        Per-record failures inside a 200 OK (Salesforce's UNABLE_TO_LOCK_ROW in a collection) never
        raise, so tenacity cannot see them; this waits the same exponential schedule, through the
        injected `sleep` in tests. Returns the seconds waited.
        """
        seconds = float(min(self.initial_wait * (2 ** (attempt - 1)), self.max_wait))
        (self._sleep or time.sleep)(seconds)
        return seconds

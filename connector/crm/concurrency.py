"""Enough requests in flight to use the rate limit when the API is slow, and no more.

At 300 ms a request, one thread sends about three requests a second; HubSpot allows 10 to 19.
`Pool.map` runs independent calls (association reads per object type, batch reads of 100, batch
updates of 100) on a bounded thread pool, and `prefetch` reads the next page of a feed while the
engine decides and writes the current one. The shared `Pacer` keeps all of them under the limits.

Failures keep their meaning across threads: `map` waits for what is running, cancels what has not
started, and raises the most significant error (a spent daily budget first, so the run stops
cleanly), and `prefetch` hands the producer's exception to the consumer at the next page.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from connector.errors import DailyLimitExhausted

T = TypeVar("T")
R = TypeVar("R")

_in_pool = threading.local()


class Pool:
    """A bounded thread pool whose `map` is safe to call from anywhere, including its own workers
    (a nested call runs inline instead of waiting on itself)."""

    def __init__(self, workers: int, name: str = "crm") -> None:
        self.workers = max(1, workers)
        self._executor = (
            ThreadPoolExecutor(self.workers, thread_name_prefix=name, initializer=_mark_worker)
            if self.workers > 1
            else None
        )

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`[fn(i) for i in items]`, concurrently; results in input order."""
        if self._executor is None or len(items) <= 1 or getattr(_in_pool, "worker", False):
            return [fn(item) for item in items]
        futures = [self._executor.submit(fn, item) for item in items]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            for future in pending:
                future.cancel()
            wait(futures)
            raise _most_significant(futures)
        return [f.result() for f in futures]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)


def _mark_worker() -> None:
    _in_pool.worker = True


def _most_significant(futures: Sequence[Future[R]]) -> BaseException:
    errors = [f.exception() for f in futures if not f.cancelled() and f.exception() is not None]
    for error in errors:
        if isinstance(error, DailyLimitExhausted):
            return error
    first = errors[0]
    assert first is not None
    return first


_ITEM, _ERROR, _DONE = "item", "error", "done"


def prefetch(source: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Yield `source`'s items while a background thread already produces the next `depth`.

    Closing the returned generator (the consumer stopped early, e.g. on a spent daily budget)
    stops the producer at its next item and closes `source`.
    """
    if depth < 1:
        yield from source
        return
    slots: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in source:
                if not put((_ITEM, item)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put((_ERROR, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name="prefetch", daemon=True)
    producer.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == _ITEM:
                yield value  # type: ignore[misc]
            elif kind == _ERROR:
                assert isinstance(value, BaseException)
                raise value
            else:
                return
    finally:
        stop.set()
        producer.join(timeout=60)

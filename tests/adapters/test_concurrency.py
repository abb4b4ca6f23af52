"""The bounded pool and the read-ahead: order kept, errors kept, early stops stop the producer."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from connector.crm.concurrency import Pool, prefetch
from connector.errors import DailyLimitExhausted, FatalError, TransientError


def test_map_keeps_input_order_and_really_runs_in_parallel() -> None:
    pool = Pool(4)
    barrier = threading.Barrier(4)

    def work(n: int) -> int:
        barrier.wait(timeout=5)  # only passes when four calls are in flight at once
        return n * n

    try:
        assert pool.map(work, [1, 2, 3, 4]) == [1, 4, 9, 16]
    finally:
        pool.close()


def test_a_spent_daily_budget_wins_over_other_errors() -> None:
    pool = Pool(3)

    def work(n: int) -> int:
        if n == 0:
            raise TransientError("flaky")
        if n == 1:
            raise DailyLimitExhausted("spent")
        return n

    try:
        with pytest.raises(DailyLimitExhausted):
            pool.map(work, [0, 1, 2])
    finally:
        pool.close()


def test_nested_map_runs_inline_instead_of_deadlocking() -> None:
    pool = Pool(2)
    try:
        result = pool.map(lambda n: sum(pool.map(lambda m: m + n, [1, 2, 3])), [10, 20])
        assert result == [36, 66]
    finally:
        pool.close()


def test_one_worker_means_no_threads() -> None:
    seen: set[str] = set()
    Pool(1).map(lambda _n: seen.add(threading.current_thread().name), [1, 2, 3])
    assert seen == {threading.current_thread().name}


def test_prefetch_yields_everything_in_order() -> None:
    assert list(prefetch(iter(range(50)), 2)) == list(range(50))


def test_prefetch_hands_the_producers_error_to_the_consumer() -> None:
    def source() -> Iterator[int]:
        yield 1
        raise FatalError("broken page")

    reader = prefetch(source(), 1)
    assert next(reader) == 1
    with pytest.raises(FatalError, match="broken page"):
        next(reader)


def test_closing_the_consumer_stops_and_closes_the_producer() -> None:
    produced: list[int] = []
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            for n in range(1000):
                produced.append(n)
                yield n
        finally:
            closed.set()

    reader = prefetch(source(), 1)
    assert next(reader) == 0
    reader.close()
    assert closed.wait(timeout=5)
    assert len(produced) <= 3  # at most the read-ahead, never the whole source

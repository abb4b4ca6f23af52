"""Progress bars for long commands (`plan`, `backfill`, `simulate`) on a terminal, and nothing else.

A bar is drawn only when stderr is a terminal and logs are not JSON: in a container or a pipe the
JSON log lines are the record of progress, and a bar's control sequences would corrupt them.
Counts, rate and ETA are shown; the total comes from the CRM where it gives one (HubSpot search's
`total`), else the bar counts without an end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second, from rich's own speed estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "-/s", style="progress.data.speed")


def shown(console: Console, json_logs: bool) -> bool:
    return console.is_terminal and not json_logs


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


@contextmanager
def counted(
    console: Console, label: str, total: int | None, *, json_logs: bool
) -> Iterator[Callable[[int], None]]:
    """A bar with a known total (or none); yields `advance(n)`."""
    if not shown(console, json_logs):
        yield lambda _n: None
        return
    with _progress(console) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


@contextmanager
def feed(console: Console, label: str, *, json_logs: bool) -> Iterator[Callable[[int, int | None], None]]:
    """A bar over CRM pages; yields `step(records, total)`: a page's records and, where the CRM
    reports it, how many the query matched (the bar's total from then on)."""
    if not shown(console, json_logs):
        yield lambda _n, _total: None
        return
    with _progress(console) as progress:
        task = progress.add_task(label, total=None)

        def step(n: int, total: int | None) -> None:
            current = progress.tasks[0]
            if total is not None and current.total is None:
                progress.update(task, total=total)
            elif current.total is not None and current.completed + n > current.total:
                progress.update(task, total=None)  # a second feed went past the first's total
            progress.advance(task, n)

        yield step

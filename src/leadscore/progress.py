"""Progress display: stages report ``(step, fraction)``; the CLI shows rich progress bars."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

ProgressFn = Callable[[str, float], None]


def no_progress(step: str, fraction: float) -> None:
    """The silent default for library calls."""


@contextmanager
def progress_bar(title: str, console: Console | None = None) -> Iterator[ProgressFn]:
    """A rich progress bar fed by a ``(step, fraction)`` callback; fraction in [0, 1]."""
    with Progress(
        TextColumn("[bold]{task.fields[title]}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=False,
    ) as bar:
        task: TaskID = bar.add_task("", total=1.0, title=title)

        def update(step: str, fraction: float) -> None:
            bar.update(task, completed=min(max(fraction, 0.0), 1.0), description=step)

        yield update
        bar.update(task, completed=1.0, description="done")

"""Progress events that long operations report; the CLI turns them into progress bars."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of a long operation."""

    item: str
    done: int
    total: int
    status: str  # e.g. "indexed", "skipped", "ok", "notneeded"


ProgressCallback = Callable[[Progress], None]


def ignore_progress(_: Progress) -> None:
    """A progress callback that does nothing."""

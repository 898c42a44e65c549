"""Progress as data: a service reports how far a long job is through a callback the surface passes in (a
rich bar in the CLI, a log line or a websocket message elsewhere). Services never draw anything themselves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProgressCallback", "ProgressUpdate", "report"]


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """One step of a job: `task` names it ("synthesizing MES"), `done` of `total` units (None: unknown, a
    spinner); `message` is a sentence the surface may show once (e.g. why bars are being generated)."""

    task: str
    done: int = 0
    total: int | None = None
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.total is not None and self.done >= self.total


ProgressCallback = Callable[[ProgressUpdate], None]


def report(on_progress: ProgressCallback | None, update: ProgressUpdate) -> None:
    """Send `update` to the surface's callback, if it gave one."""
    if on_progress is not None:
        on_progress(update)

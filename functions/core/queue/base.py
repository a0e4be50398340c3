"""The TaskQueue port: spawn work leaves the request and runs elsewhere.

Tasks are named: enqueueing a name that is already queued or done is a no-op, so a retry
or a double click never starts a second worker for the same environment.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

Handler = Callable[[dict], None]


class QueueError(Exception):
    """The queue could not take the task now (the reconciler enqueues it again)."""


class TaskQueue(ABC):
    @abstractmethod
    def enqueue(self, kind: str, name: str, payload: dict) -> bool:
        """Queue `payload` for the `kind` handler; False when `name` was already queued."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Finish or drop queued work on shutdown."""

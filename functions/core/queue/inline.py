"""In-process queue for local mode: a small thread pool, deduplicated by task name."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from .base import Handler, TaskQueue

log = logging.getLogger("cmbcluster.queue")


class InlineQueue(TaskQueue):
    def __init__(self, handlers: dict[str, Handler], workers: int = 8):
        self._handlers = handlers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="task")
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def enqueue(self, kind: str, name: str, payload: dict) -> bool:
        handler = self._handlers[kind]
        with self._lock:
            if name in self._seen:
                return False
            self._seen.add(name)
        self._pool.submit(self._run, handler, name, payload)
        return True

    @staticmethod
    def _run(handler: Handler, name: str, payload: dict) -> None:
        try:
            handler(payload)
        except Exception:
            log.exception("task failed", extra={"task": name})

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

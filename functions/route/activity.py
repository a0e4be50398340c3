"""What counts as someone using their environment, and recording it cheaply.

A person's requests count: page loads, uploads, downloads, and the Streamlit messages a
click or a keystroke sends (a script rerun, a stop, a file upload request). What an
open tab does by itself does not: health probes, the websocket (re)connecting, the
app heartbeats it sends, and reruns the app schedules itself (`st.fragment(run_every)`).

Activity is recorded at most once a minute per environment and never on the request's
path: `record` checks a dict and, at most once a minute, hands the write to a thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from ..core.store.base import Store

log = logging.getLogger("cmbcluster.activity")

WRITE_INTERVAL_SECONDS = 60.0

# Streamlit paths an open, idle tab requests by itself.
PASSIVE_SUFFIXES = ("/_stcore/health", "/_stcore/host-config", "/_stcore/stream",
                    "/_stcore/script-health-check", "/favicon.png")

# BackMsg (streamlit/proto/BackMsg.proto) field numbers.
_CLEAR_CACHE, _STOP_SCRIPT, _RERUN_SCRIPT, _FILE_URLS_REQUEST = 5, 7, 11, 16
_PERSON_FIELDS = frozenset({_CLEAR_CACHE, _STOP_SCRIPT, _FILE_URLS_REQUEST})
_IS_AUTO_RERUN = 6  # ClientState field


def is_person_request(rest: str) -> bool:
    """An HTTP request below the environment's base path that a person caused."""
    return not rest.endswith(PASSIVE_SUFFIXES)


def is_person_message(message: bytes) -> bool:
    """A websocket message from the browser that a person caused.

    Reads the protobuf wire format directly: importing Streamlit's generated classes
    would cost the control plane tens of megabytes for two field numbers.
    """
    try:
        for number, value in _fields(message):
            if number in _PERSON_FIELDS:
                return True
            if number == _RERUN_SCRIPT and isinstance(value, bytes):
                return not any(n == _IS_AUTO_RERUN and v for n, v in _fields(value))
    except ValueError:
        return False  # not a BackMsg: nothing a person did that we can tell
    return False


def _fields(data: bytes):
    """Top-level (field number, value) pairs; length-delimited values as bytes."""
    i, end = 0, len(data)
    while i < end:
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            size, i = _varint(data, i)
            if i + size > end:
                raise ValueError("truncated")
            value, i = data[i:i + size], i + size
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError("unsupported wire type")
        yield number, value


def _varint(data: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("bad varint")
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7


class ActivityRecorder:
    """Throttled, asynchronous `touch_activity` for one process."""

    def __init__(self, store: Store, interval: float = WRITE_INTERVAL_SECONDS,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="activity")

    def record(self, env_id: str) -> None:
        now = self.clock()
        last = self._last.get(env_id)
        if last is not None and now - last < self.interval:
            return
        with self._lock:
            last = self._last.get(env_id)
            if last is not None and now - last < self.interval:
                return
            self._last[env_id] = now
        self._pool.submit(self._write, env_id, now)

    def _write(self, env_id: str, now: float) -> None:
        try:
            self.store.touch_activity(env_id, datetime.fromtimestamp(now, UTC),
                                      min_interval=self.interval)
        except Exception:
            log.exception("could not record activity", extra={"environment": env_id})

    def close(self) -> None:
        self._pool.shutdown(wait=True)

"""Activity reporting: tells the platform that a person is using this environment,
so the culler does not stop it while they work.

`report_activity()` is called once per script run; a Streamlit rerun happens only
when someone interacts with the page, so an open but idle tab reports nothing. It is
a no-op unless the platform configured both the URL and the token, and it never
blocks or fails the page: the POST happens in a background thread, at most once a
minute per server process (the platform throttles its writes to the same rate).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime

URL_ENV = "CMBCLUSTER_ACTIVITY_URL"
TOKEN_ENV = "CMBCLUSTER_ACTIVITY_TOKEN"
MIN_INTERVAL_SECONDS = 60.0
POST_TIMEOUT_SECONDS = 5.0

log = logging.getLogger(__name__)

_lock = threading.Lock()
_last_report: float | None = None

Poster = Callable[[str, str, bytes], None]


def _post(url: str, token: str, body: bytes) -> None:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=POST_TIMEOUT_SECONDS) as response:
        response.read()


def _post_quietly(post: Poster, url: str, token: str, body: bytes) -> None:
    try:
        post(url, token, body)
    except Exception as exc:  # a missed report only makes the culler less sure
        log.warning("activity report to %s failed: %s", url, exc)


def report_activity(
    *, now: Callable[[], float] = time.monotonic, post: Poster = _post
) -> threading.Thread | None:
    """Report one user interaction; returns the sending thread, or None when
    reporting is off or a report went out less than a minute ago."""
    global _last_report
    url = os.environ.get(URL_ENV, "")
    token = os.environ.get(TOKEN_ENV, "")
    if not url or not token:
        return None
    # urllib would also open file:// and ftp:// URLs; only HTTP is meant here.
    if not url.startswith(("http://", "https://")):
        return None
    with _lock:
        current = now()
        if _last_report is not None and current - _last_report < MIN_INTERVAL_SECONDS:
            return None
        _last_report = current
    body = json.dumps(
        {"kind": "streamlit_rerun", "at": datetime.now(UTC).isoformat(timespec="seconds")}
    ).encode()
    thread = threading.Thread(
        target=_post_quietly, args=(post, url, token, body), name="activity-report", daemon=True
    )
    thread.start()
    return thread


def _reset_for_tests() -> None:
    global _last_report
    with _lock:
        _last_report = None

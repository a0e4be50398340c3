"""Activity reporting: off by default, throttled, authenticated, never in the way."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from envapp import activity


@pytest.fixture(autouse=True)
def fresh_throttle(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(activity.URL_ENV, raising=False)
    monkeypatch.delenv(activity.TOKEN_ENV, raising=False)
    activity._reset_for_tests()
    yield
    activity._reset_for_tests()


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    """A real HTTP endpoint recording what it receives."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "auth": self.headers["Authorization"],
                             "type": self.headers["Content-Type"], "body": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/activity", received
    server.shutdown()
    server.server_close()


def test_off_unless_url_and_token_are_both_set(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple] = []
    assert activity.report_activity(post=lambda *a: calls.append(a)) is None
    monkeypatch.setenv(activity.URL_ENV, "http://127.0.0.1:9/x")
    assert activity.report_activity(post=lambda *a: calls.append(a)) is None
    monkeypatch.delenv(activity.URL_ENV)
    monkeypatch.setenv(activity.TOKEN_ENV, "t")
    assert activity.report_activity(post=lambda *a: calls.append(a)) is None
    assert calls == []


def test_only_http_urls_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(activity.URL_ENV, "file:///etc/passwd")
    monkeypatch.setenv(activity.TOKEN_ENV, "t")
    assert activity.report_activity(post=lambda *a: pytest.fail("posted")) is None


def test_posts_with_bearer_token(monkeypatch: pytest.MonkeyPatch, receiver) -> None:
    url, received = receiver
    monkeypatch.setenv(activity.URL_ENV, url)
    monkeypatch.setenv(activity.TOKEN_ENV, "s3cret")
    thread = activity.report_activity()
    assert thread is not None and thread.daemon
    thread.join(timeout=5)
    assert len(received) == 1
    assert received[0]["path"] == "/activity"
    assert received[0]["auth"] == "Bearer s3cret"
    assert received[0]["type"] == "application/json"
    assert received[0]["body"]["kind"] == "streamlit_rerun"


def test_at_most_once_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(activity.URL_ENV, "http://example.invalid/a")
    monkeypatch.setenv(activity.TOKEN_ENV, "t")
    sent: list[bytes] = []
    clock = iter([1000.0, 1030.0, 1059.9, 1060.0, 1061.0])

    def post(url: str, token: str, body: bytes) -> None:
        sent.append(body)

    results = [activity.report_activity(now=lambda: next(clock), post=post) for _ in range(5)]
    for thread in results:
        if thread:
            thread.join(timeout=5)
    assert [r is not None for r in results] == [True, False, False, True, False]
    assert len(sent) == 2


def test_a_failing_endpoint_never_reaches_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    # Port 9 (discard) on loopback refuses connections: the POST fails in the thread.
    monkeypatch.setenv(activity.URL_ENV, "http://127.0.0.1:9/activity")
    monkeypatch.setenv(activity.TOKEN_ENV, "t")
    thread = activity.report_activity()
    assert thread is not None
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_slow_endpoint_does_not_block_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(activity.URL_ENV, "http://example.invalid/a")
    monkeypatch.setenv(activity.TOKEN_ENV, "t")
    release = threading.Event()
    thread = activity.report_activity(post=lambda *a: release.wait(5))
    assert thread is not None and thread.is_alive()  # returned while the POST waits
    release.set()
    thread.join(timeout=5)

"""The image's HEALTHCHECK script: base path aware, fails closed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

import healthcheck


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, "http://127.0.0.1:8501/_stcore/health"),
        ({"STREAMLIT_SERVER_BASE_URL_PATH": "/user/abc/"},
         "http://127.0.0.1:8501/user/abc/_stcore/health"),
        ({"CMBCLUSTER_BASE_PATH": "user/abc"}, "http://127.0.0.1:8501/user/abc/_stcore/health"),
        ({"STREAMLIT_SERVER_BASE_URL_PATH": "a", "CMBCLUSTER_BASE_PATH": "b",
          "STREAMLIT_SERVER_PORT": "9000"}, "http://127.0.0.1:9000/a/_stcore/health"),
    ],
)
def test_health_url(env: dict[str, str], url: str) -> None:
    assert healthcheck.health_url(env) == url


@pytest.fixture
def fake_streamlit() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            ok = self.path == "/user/abc/_stcore/health"
            self.send_response(200 if ok else 404)
            self.end_headers()
            self.wfile.write(b"ok" if ok else b"")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def test_main_checks_the_base_path(fake_streamlit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMLIT_SERVER_PORT", str(fake_streamlit))
    monkeypatch.setenv("STREAMLIT_SERVER_BASE_URL_PATH", "/user/abc")
    assert healthcheck.main() == 0
    monkeypatch.setenv("STREAMLIT_SERVER_BASE_URL_PATH", "/user/other")
    assert healthcheck.main() == 1  # 404 raises HTTPError, an OSError


def test_main_fails_when_nothing_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMLIT_SERVER_PORT", "9")
    monkeypatch.delenv("STREAMLIT_SERVER_BASE_URL_PATH", raising=False)
    assert healthcheck.main() == 1

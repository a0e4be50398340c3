"""A real local platform per test module: proxy, control plane, Streamlit children."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from functions.core.config import ensure_secret_key, load_settings
from functions.core.models import User
from functions.core.sessions import SESSION_COOKIE
from functions.local import LocalPlatform, build_local_platform, start_local


class RunningPlatform:
    """The local platform on its own event loop thread, as `make up` runs it."""

    def __init__(self, data_dir: Path, with_hub: bool = False, **env: str):
        settings = ensure_secret_key(load_settings({
            "CMBCLUSTER_DATA_DIR": str(data_dir), "PORT": "0", "START_TIMEOUT": "30",
            **env,
        }))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.platform = build_local_platform(settings)
        self.local: LocalPlatform = self.run(start_local(settings, self.platform, with_hub))
        self.url = self.local.url

    def run(self, coro, timeout: float = 120):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, stop_environments: bool = True) -> None:
        self.run(self.local.stop(stop_environments))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def session_for(self, user_id: str, role: str = "user") -> requests.Session:
        """A browser-like client signed in as `user_id` (a real signed session)."""
        user = self.platform.store.upsert_user(User(user_id, f"{user_id}@example.org",
                                                    user_id.title(), role=role))
        http = requests.Session()
        host = self.url.split("://", 1)[1].split(":")[0]
        http.cookies.set(SESSION_COOKIE, self.platform.sessions.issue(user, 3600), domain=host)
        http.headers["Origin"] = self.url
        return http


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Iterator[RunningPlatform]:
    plat = RunningPlatform(tmp_path_factory.mktemp("platform"), MAX_TOTAL_ENVIRONMENTS="10")
    yield plat
    plat.stop()

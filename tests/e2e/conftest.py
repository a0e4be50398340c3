"""End-to-end rig: `make up`'s real stack in a subprocess, driven by Debian's Chromium.

Each test module gets its own platform (`python -m functions.cli up`, a temp data dir, a
free port) and each test its own browser contexts. Screenshots of every step go to
artifacts/e2e/<test>-<step>.png so a person can look at what the browser saw.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from ..conftest import ROOT, free_port, missing_service

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ARTIFACTS = ROOT / "artifacts" / "e2e"
ADMIN = "admin"  # a dev-login user name; ADMIN_EMAILS names admin@localhost

# Streamlit reruns and environment starts are slow on a small machine: wait on what
# the page shows, with room for a cold start, never on a fixed sleep.
UI_TIMEOUT_MS = 30_000
START_TIMEOUT_MS = 90_000


@dataclass
class Platform:
    url: str
    data_dir: Path
    proc: subprocess.Popen
    log: Path

    def api(self, username: str) -> requests.Session:
        """A dev-login API session (for set-up the test is not about)."""
        http = requests.Session()
        http.headers["Origin"] = self.url
        resp = http.post(f"{self.url}/auth/dev-login", data={"username": username},
                         allow_redirects=False, timeout=10)
        assert resp.status_code in (302, 303), resp.text
        return http

    def launch(self, username: str, timeout: float = 90) -> dict:
        """Start `username`'s environment through the API and wait until it runs."""
        http = self.api(username)
        env = http.post(f"{self.url}/api/environments", json={}, timeout=10).json()
        deadline = time.monotonic() + timeout
        while env["state"] in ("pending", "starting") and time.monotonic() < deadline:
            time.sleep(0.3)
            env = http.get(f"{self.url}/api/environments/{env['id']}", timeout=10).json()
        assert env["state"] == "running", env
        return env

    def record(self, username: str, env_id: str) -> dict:
        return self.api(username).get(f"{self.url}/api/environments/{env_id}",
                                      timeout=10).json()


def start_platform(data_dir: Path, **env: str) -> Platform:
    """`python -m functions.cli up` (what `make up` runs), on a free port."""
    port = int(env.pop("PORT", 0)) or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"{data_dir.name}-platform.log"
    variables = {**os.environ, "CMBCLUSTER_DATA_DIR": str(data_dir), "PORT": str(port),
                 "HOST": "127.0.0.1", "START_TIMEOUT": "90",
                 "CMBCLUSTER_LOGIN_RATE_LIMIT": "1000/60", **env}
    for name in ("OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "OIDC_SERVER_METADATA_URL"):
        if name not in env:
            variables.pop(name, None)  # a developer's own settings must not leak in
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "functions.cli", "up"], cwd=ROOT,
                                env=variables, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    # The proxy answers before the hub is ready (it gets the hub's address once the
    # hub is healthy): wait for the hub itself, through the proxy.
    if not wait_ok(f"{url}/hub/_stcore/health", 90, proc):
        stop_platform(proc)
        pytest.fail(f"the platform did not start: {log.read_text()[-3000:]}")
    return Platform(url=url, data_dir=data_dir, proc=proc, log=log)


def wait_ok(url: str, timeout: float, proc: subprocess.Popen) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return True
        time.sleep(0.2)
    return False


def stop_platform(proc: subprocess.Popen) -> None:
    """SIGTERM is Ctrl-C for `up`: it stops every environment and the hub itself."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(45)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[Platform]:
    plat = start_platform(tmp_path_factory.mktemp("e2e") / "data",
                          ADMIN_EMAILS=f"{ADMIN}@localhost", MAX_TOTAL_ENVIRONMENTS="10")
    yield plat
    stop_platform(plat.proc)


# Per module, not per session: Playwright's sync API keeps an event loop running in
# this thread, and the asyncio tests of later directories need it gone.
@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        missing_service(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser, request) -> Iterator[Callable[[], object]]:
    """Pages in fresh browser contexts: one per person (cookies are per context)."""
    contexts = []

    def make():
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(UI_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def shot(request) -> Callable[[object, str], Path]:
    """shot(page, step) saves artifacts/e2e/<test>-<step>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^a-z0-9_]+", "_", request.node.name.lower()).removeprefix("test_")

    def take(page, step: str) -> Path:
        path = ARTIFACTS / f"{test}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take

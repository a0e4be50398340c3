"""Local mode: every function in one process, with embedded parts.

The control plane's Flask apps are served by waitress on a loopback port; the aiohttp
proxy in front owns the public origin; the spawn queue and the culler run in-process;
environments and the hub are Streamlit child processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from waitress.server import create_server

from .admin.app import create_app as admin_app
from .auth.app import create_app as auth_app
from .core.backends.local import LocalBackend, process_start_time
from .core.config import Settings
from .core.lifecycle import SPAWN_TASK, stop_environment
from .core.platform import Platform, build_platform
from .core.queue.inline import InlineQueue
from .cull.app import create_app as cull_app
from .cull.culler import cull
from .cull.reconcile import reconcile
from .route.app import activity_recorder
from .route.app import create_app as route_app
from .route.proxy import LocalProxy
from .spawn.app import create_app as spawn_app
from .spawn.worker import run_spawn

log = logging.getLogger("cmbcluster.local")

ROOT = Path(__file__).resolve().parent.parent
RESEARCH_APP = ROOT / "user-environment" / "app.py"
HUB_APP = ROOT / "frontend" / "hub.py"
LAUNCHER = ROOT / "user-environment" / "launch.py"

WSGIApp = Callable


class PrefixDispatcher:
    """Send each request to the function app that owns its path prefix."""

    def __init__(self, routes: Iterable[tuple[str, WSGIApp]], default: WSGIApp):
        # Longest prefix first, so /api/admin wins over /api.
        self.routes = sorted(routes, key=lambda r: len(r[0]), reverse=True)
        self.default = default

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        for prefix, app in self.routes:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return app(environ, start_response)
        return self.default(environ, start_response)


def control_plane(platform: Platform) -> PrefixDispatcher:
    auth, spawn, route = auth_app(platform), spawn_app(platform), route_app(platform)
    admin, cull = admin_app(platform), cull_app(platform)
    return PrefixDispatcher(
        [
            ("/auth", auth), ("/api/me", auth),
            ("/api/admin", admin),
            ("/api/environments", spawn), ("/api/profiles", spawn), ("/api/workspace", spawn),
            ("/tasks", spawn),
            ("/route", route),
            ("/cull", cull),
        ],
        default=spawn,  # /health, /metrics, and 404s in the common JSON shape
    )


class HubProcess:
    """The hub UI: a Streamlit child under /hub that calls the API for its visitors."""

    def __init__(self, settings: Settings, api_url: str, public_url: str):
        self.settings = settings
        self.port = _free_port()
        self.upstream = f"http://127.0.0.1:{self.port}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(settings.data_dir),
            "PYTHONPATH": str(ROOT),
            "CMBCLUSTER_API_URL": api_url,
            "CMBCLUSTER_PUBLIC_URL": public_url,
            "CMBCLUSTER_DEV_LOGIN": "1" if settings.dev_login_enabled else "0",
            "CMBCLUSTER_PROVIDER_NAME": provider_name(settings),
        }
        log_file = (settings.data_dir / "logs").joinpath("hub.log")
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file = settings.data_dir / "hub.json"
        _stop_previous_hub(self.pid_file)
        with log_file.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(LAUNCHER), "run", str(HUB_APP),
                 "--server.address", "127.0.0.1", "--server.port", str(self.port),
                 "--server.baseUrlPath", "/hub", "--server.headless", "true",
                 "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
                 "--client.toolbarMode", "minimal"],
                env=env, cwd=settings.data_dir, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(json.dumps(
            {"pid": self.proc.pid, "start_time": process_start_time(self.proc.pid)}))

    def wait_healthy(self, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(self.upstream + "/hub/_stcore/health", timeout=1):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.pid_file.unlink(missing_ok=True)


def provider_name(settings: Settings) -> str:
    """What the hub's sign-in button names: Google's discovery document, or the
    provider's host (an institution's own OpenID provider)."""
    host = urlsplit(settings.oidc_server_metadata_url).hostname or ""
    return "Google" if host == "accounts.google.com" else (host or "your provider")


def _stop_previous_hub(pid_file: Path) -> None:
    """A platform killed with SIGKILL leaves its hub running: end it before starting anew
    (when the pid still names that same process, not a reused pid)."""
    try:
        old = json.loads(pid_file.read_text())
        pid, started = int(old["pid"]), old["start_time"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if started is not None and process_start_time(pid) == started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalPlatform:
    """A running local platform; `stop()` ends everything it started."""

    platform: Platform
    url: str
    _wsgi: object
    _wsgi_thread: threading.Thread
    _runner: web.ServerRunner
    _proxy: LocalProxy
    _hub: HubProcess | None
    _culler: asyncio.Task

    async def stop(self, stop_environments: bool = True) -> None:
        self._culler.cancel()
        if stop_environments:
            await asyncio.to_thread(shutdown_environments, self.platform)
        if self._hub is not None:
            await asyncio.to_thread(self._hub.stop)
        await self._runner.cleanup()
        await self._proxy.close()
        self._wsgi.close()
        self.platform.queue.close()
        self.platform.backend.close()


def build_local_platform(settings: Settings, research_app: Path = RESEARCH_APP) -> Platform:
    platform = build_platform(settings)
    platform.backend = LocalBackend(settings.data_dir, research_app)
    # As many starts at once as there are cores, like the cloud's rate-limited queue:
    # Streamlit's start-up is CPU-bound, so more at once only slows each one and the API.
    platform.queue = InlineQueue({SPAWN_TASK: lambda payload: run_spawn(platform, payload)},
                                 workers=os.cpu_count() or 2)
    return platform


async def start_local(settings: Settings, platform: Platform | None = None,
                      with_hub: bool = True) -> LocalPlatform:
    platform = platform or build_local_platform(settings)
    # Whatever the last run left (it may have been killed): adopt or close it first.
    await asyncio.to_thread(reconcile, platform)

    wsgi = create_server(control_plane(platform), host="127.0.0.1", port=0, threads=32,
                         ident="cmbcluster", clear_untrusted_proxy_headers=False)
    wsgi_thread = threading.Thread(target=wsgi.run, name="wsgi", daemon=True)
    wsgi_thread.start()
    control = f"http://127.0.0.1:{wsgi.effective_port}"

    # Bind first so the hub can be told the public URL (PORT=0 picks a free port).
    proxy = LocalProxy(platform, control, on_activity=activity_recorder(platform).record)
    await proxy.open()
    runner = web.ServerRunner(proxy.server(), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
    await site.start()
    port = runner.addresses[0][1]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = settings.public_url or f"http://{host}:{port}"
    platform.public_url = url
    hub = None
    if with_hub:
        hub = HubProcess(settings, control, url)
        if not await asyncio.to_thread(hub.wait_healthy):
            log.error("the hub did not start; see %s", settings.data_dir / "logs" / "hub.log")
        proxy.hub = hub.upstream
    culler = asyncio.create_task(cull_every(platform, settings.cull_interval_seconds))
    return LocalPlatform(platform, url, wsgi, wsgi_thread, runner, proxy, hub, culler)


async def cull_every(platform: Platform, seconds: float) -> None:
    """Local stand-in for the Cloud Scheduler job that calls POST /cull."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await asyncio.to_thread(cull, platform)
        except Exception:
            log.exception("cull pass failed")


def shutdown_environments(platform: Platform) -> None:
    """Ctrl-C: every environment stops (its files stay) and its record says why."""
    for env in platform.store.active_environments():
        stop_environment(platform, env, "the platform was shut down")
    platform.backend.stop_all()


def serve(settings: Settings) -> None:
    """`make up`: run until Ctrl-C or SIGTERM, then stop every child."""

    async def main() -> None:
        # Handlers first: a SIGTERM during start-up must still stop what has started.
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, done.set)
        running = await start_local(settings)
        print(banner(running), flush=True)
        await done.wait()
        print("stopping: environments, hub and control plane...", flush=True)
        await running.stop()

    asyncio.run(main())


def banner(running: LocalPlatform) -> str:
    s = running.platform.settings
    how = ("sign in with the dev login (any user name; ADMIN_EMAILS lists admins)"
           if s.dev_login_enabled else "sign in with your identity provider")
    return (f"\nCMBCluster is running at {running.url}/\n  {how}\n"
            f"  data: {s.data_dir}\n  Ctrl-C stops the platform and every environment.\n")




"""Local mode: every function in one process, with embedded parts.

The control plane's Flask apps are served by waitress on a loopback port; the aiohttp
proxy in front owns the public origin; the spawn queue and the culler run in-process;
environments and the hub are Streamlit child processes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from waitress.server import create_server

from .admin.app import create_app as admin_app
from .auth.app import create_app as auth_app
from .core.backends.local import LocalBackend
from .core.config import Settings
from .core.lifecycle import SPAWN_TASK, stop_environment
from .core.platform import Platform, build_platform
from .core.queue.inline import InlineQueue
from .cull.app import create_app as cull_app
from .cull.reconcile import reconcile
from .route.app import create_app as route_app
from .route.proxy import LocalProxy
from .spawn.app import create_app as spawn_app
from .spawn.worker import run_spawn

log = logging.getLogger("cmbcluster.local")

ROOT = Path(__file__).resolve().parent.parent
RESEARCH_APP = ROOT / "user-environment" / "app.py"

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


@dataclass
class LocalPlatform:
    """A running local platform; `stop()` ends everything it started."""

    platform: Platform
    url: str
    _wsgi: object
    _wsgi_thread: threading.Thread
    _runner: web.AppRunner
    _loop: asyncio.AbstractEventLoop

    async def stop(self, stop_environments: bool = True) -> None:
        if stop_environments:
            await asyncio.to_thread(shutdown_environments, self.platform)
        await self._runner.cleanup()
        self._wsgi.close()
        self.platform.queue.close()
        self.platform.backend.close()


def build_local_platform(settings: Settings, research_app: Path = RESEARCH_APP) -> Platform:
    platform = build_platform(settings)
    platform.backend = LocalBackend(settings.data_dir, research_app)
    platform.queue = InlineQueue({SPAWN_TASK: lambda payload: run_spawn(platform, payload)})
    return platform


async def start_local(settings: Settings, platform: Platform | None = None) -> LocalPlatform:
    platform = platform or build_local_platform(settings)
    # Whatever the last run left (it may have been killed): adopt or close it first.
    await asyncio.to_thread(reconcile, platform)

    wsgi = create_server(control_plane(platform), host="127.0.0.1", port=0, threads=32,
                         ident="cmbcluster", clear_untrusted_proxy_headers=False)
    wsgi_thread = threading.Thread(target=wsgi.run, name="wsgi", daemon=True)
    wsgi_thread.start()
    control = f"http://127.0.0.1:{wsgi.effective_port}"

    proxy = LocalProxy(platform, control)
    runner = web.AppRunner(proxy.application(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
    await site.start()
    port = runner.addresses[0][1]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = settings.public_url or f"http://{host}:{port}"
    return LocalPlatform(platform, url, wsgi, wsgi_thread, runner, asyncio.get_running_loop())


def shutdown_environments(platform: Platform) -> None:
    """Ctrl-C: every environment stops (its files stay) and its record says why."""
    for env in platform.store.active_environments():
        stop_environment(platform, env, "the platform was shut down")
    platform.backend.stop_all()


def serve(settings: Settings) -> None:
    """`make up`: run until Ctrl-C or SIGTERM, then stop every child."""

    async def main() -> None:
        running = await start_local(settings)
        print(banner(running), flush=True)
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, done.set)
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




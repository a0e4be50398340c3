"""Real servers on loopback for the proxy tests: an upstream app, and the proxy itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from functions.core.backends.base import Server
from functions.core.config import load_settings
from functions.core.platform import Platform, build_platform
from functions.core.store.sqlite import SqliteStore
from functions.route.proxy import LocalProxy

ENV = "0123456789ab"
BASE = f"/user/alice/{ENV}"


class OneServer:
    """A backend with one environment, alice's, served by the given upstream."""

    def __init__(self, upstream: str):
        self.server = Server(ENV, "alice", upstream, BASE)

    def route(self, env_id: str) -> Server | None:
        return self.server if env_id == ENV else None


async def serve_handler(handler: Callable) -> tuple[web.AppRunner, str]:
    """`handler` for every path on a free port; the runner (to clean up) and its URL."""
    app = web.Application(client_max_size=1024**3)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@dataclass
class RunningProxy:
    platform: Platform
    proxy: LocalProxy
    runner: web.ServerRunner
    url: str

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.proxy.close()


async def serve_proxy(data_dir: Path, upstream: str, **options) -> RunningProxy:
    """A LocalProxy in front of `upstream` (as alice's environment) on a free port."""
    settings = load_settings({"CMBCLUSTER_DATA_DIR": str(data_dir), "SECRET_KEY": "k" * 40})
    plat = build_platform(settings, SqliteStore(data_dir / "db"))
    plat.backend = OneServer(upstream)
    proxy = LocalProxy(plat, upstream, on_activity=options.pop("on_activity", None))
    await proxy.open()
    runner = web.ServerRunner(proxy.server(**options))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return RunningProxy(plat, proxy, runner, f"http://127.0.0.1:{runner.addresses[0][1]}")

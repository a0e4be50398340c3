"""Micro-benchmark of the latency the local proxy adds to one request.

    .venv/bin/python -m bench.proxy_micro [--runs 5] [--blocks 20] [--block 100]
                                          [--loop asyncio|uvloop] [--streamlit]

Starts, as subprocesses, an upstream and `LocalProxy` in front of it twice: once as it is
(`current`) and once with the aiohttp-client `_forward` it had before (`aiohttp`), so both
are measured side by side on the same noisy machine. One client then sends keep-alive GETs
of an environment's health check (the access check included) in interleaved blocks: direct
to the upstream, through `current`, through `aiohttp`. Each run reports p50/p99 of each
and what each proxy adds over direct; the summary is the median of the runs.

Upstreams: `raw` is a minimal asyncio server answering "ok" (what the proxy costs, with
little upstream noise); `--streamlit` also measures against a real Streamlit
(user-environment/launch.py), which is what a user reaches.

Prints JSON; the machine is shared, so compare within one run, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import free_port, pct, timed_gets

ROOT = Path(__file__).resolve().parents[1]
ENV_ID = "0123456789ab"
BASE = f"/user/alice/{ENV_ID}"
HEALTH = f"{BASE}/_stcore/health"
VARIANTS = ("current", "aiohttp")


# -- the processes --------------------------------------------------------------------------
async def raw_upstream(port: int) -> None:
    """An HTTP/1.1 keep-alive server that answers every request with "ok"."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"

    class Answer(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.pending = b""

        def data_received(self, data: bytes) -> None:
            self.pending += data
            while b"\r\n\r\n" in self.pending:  # GETs only: no bodies to skip
                _, self.pending = self.pending.split(b"\r\n\r\n", 1)
                self.transport.write(answer)

    server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", port)
    await server.serve_forever()


async def run_proxy(upstream: str, port: int, variant: str) -> None:
    from aiohttp import web

    from functions.core.backends.base import Server
    from functions.core.config import load_settings
    from functions.core.models import User
    from functions.core.platform import build_platform
    from functions.core.store.sqlite import SqliteStore
    from functions.route.proxy import LocalProxy

    class OneServer:
        def __init__(self) -> None:
            self.server = Server(ENV_ID, "alice", upstream, BASE)

        def route(self, env_id: str) -> Server | None:
            return self.server if env_id == ENV_ID else None

    data = Path(tempfile.mkdtemp(prefix="proxy-micro-"))
    settings = load_settings({"CMBCLUSTER_DATA_DIR": str(data), "SECRET_KEY": "k" * 40})
    platform = build_platform(settings, SqliteStore(data / "db"))
    platform.backend = OneServer()
    alice = platform.store.upsert_user(User("alice", "alice@x.org"))
    proxy_class = LocalProxy if variant == "current" else _aiohttp_proxy_class()
    proxy = proxy_class(platform, upstream)
    await proxy.open()
    runner = web.ServerRunner(proxy.server())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(platform.sessions.issue(alice, 3600), flush=True)  # the parent's cookie
    await asyncio.Event().wait()


def _aiohttp_proxy_class() -> type:
    """LocalProxy with the `_forward` it had before functions/route/upstream.py."""
    import aiohttp
    from aiohttp import web
    from multidict import CIMultiDict

    from functions.route import proxy as module

    class AiohttpForward(module.LocalProxy):
        async def _forward(self, request: web.BaseRequest, url: str,
                           strip_session: bool) -> web.StreamResponse:
            body = request.content if request.body_exists else None
            try:
                upstream = await self._session.request(
                    request.method, url, headers=self._headers(request, strip_session),
                    data=body, allow_redirects=False,
                )
            except aiohttp.ClientError:
                return module._plain(502, "upstream unavailable")
            async with upstream:
                headers = CIMultiDict((k, v) for k, v in upstream.headers.items()
                                      if k.lower() not in module.HOP_BY_HOP)
                length = upstream.content_length
                if length is not None and length <= module.BUFFER_LIMIT:
                    return web.Response(status=upstream.status, headers=headers,
                                        body=await upstream.read())
                response = web.StreamResponse(status=upstream.status, headers=headers)
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response

    return AiohttpForward


def serve(argv: list[str]) -> None:
    """Entry point of the subprocesses: `serve upstream PORT LOOP` or
    `serve proxy UPSTREAM PORT VARIANT LOOP`."""
    role = argv[0]
    loop = argv[-1]
    if role == "upstream":
        main = raw_upstream(int(argv[1]))
    else:
        main = run_proxy(argv[1], int(argv[2]), argv[3])
    if loop == "uvloop":
        import uvloop
        uvloop.run(main)
    else:
        asyncio.run(main)


# -- the client ---------------------------------------------------------------------------
def connect(port: int, timeout: float = 30) -> http.client.HTTPConnection:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return conn
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def wait_healthy(port: int, path: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = connect(port, timeout=1)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"127.0.0.1:{port}{path} did not answer")


def spawn(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=ROOT, start_new_session=True, **kwargs)


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def start_upstream(kind: str, loop: str) -> tuple[int, subprocess.Popen]:
    port = free_port()
    if kind == "raw":
        proc = spawn([sys.executable, "-m", "bench.proxy_micro", "serve", "upstream",
                      str(port), loop])
        connect(port).close()
    else:
        proc = spawn([sys.executable, "user-environment/launch.py", "run",
                      "user-environment/app.py", "--server.port", str(port),
                      "--server.address", "127.0.0.1", "--server.baseUrlPath", BASE,
                      "--server.headless", "true", "--browser.gatherUsageStats", "false",
                      "--server.fileWatcherType", "none"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_healthy(port, HEALTH)
    return port, proc


def start_proxy(upstream_port: int, variant: str, loop: str) -> tuple[int, str,
                                                                          subprocess.Popen]:
    port = free_port()
    proc = spawn([sys.executable, "-m", "bench.proxy_micro", "serve", "proxy",
                  f"http://127.0.0.1:{upstream_port}", str(port), variant, loop],
                 stdout=subprocess.PIPE, text=True)
    token = proc.stdout.readline().strip()
    if not token:
        raise RuntimeError(f"the {variant} proxy did not start")
    return port, token, proc


def measure(upstream: str, loop: str, runs: int, blocks: int, block: int) -> dict:
    upstream_port, upstream_proc = start_upstream(upstream, loop)
    procs = [upstream_proc]
    try:
        proxies = {}
        for variant in VARIANTS:
            port, token, proc = start_proxy(upstream_port, variant, loop)
            procs.append(proc)
            proxies[variant] = (port, {"Cookie": f"cmbcluster_session={token}"})
        per_run = []
        for _ in range(runs):
            direct = connect(upstream_port)
            via = {v: connect(port) for v, (port, _) in proxies.items()}
            timed_gets(direct, HEALTH, {}, block)  # warm both ends' connections and caches
            for v in VARIANTS:
                timed_gets(via[v], HEALTH, proxies[v][1], block)
            samples: dict[str, list[float]] = {"direct": [], **{v: [] for v in VARIANTS}}
            for _ in range(blocks):
                samples["direct"] += timed_gets(direct, HEALTH, {}, block)
                for v in VARIANTS:
                    samples[v] += timed_gets(via[v], HEALTH, proxies[v][1], block)
            per_run.append(_summary(samples))
            for conn in (direct, *via.values()):
                conn.close()
        keys = per_run[0].keys()
        median = {k: round(statistics.median(r[k] for r in per_run), 3) for k in keys}
        return {"median_of_runs": median, "runs": per_run,
                "requests_per_run_each": blocks * block}
    finally:
        stop(procs)


def _summary(samples: dict[str, list[float]]) -> dict[str, float]:
    d50, d99 = pct(samples["direct"], 0.5), pct(samples["direct"], 0.99)
    out = {"direct_p50_ms": round(d50, 3), "direct_p99_ms": round(d99, 3)}
    for v in VARIANTS:
        p50, p99 = pct(samples[v], 0.5), pct(samples[v], 0.99)
        out |= {f"{v}_p50_ms": round(p50, 3), f"{v}_p99_ms": round(p99, 3),
                f"{v}_added_p50_ms": round(p50 - d50, 3),
                f"{v}_added_p99_ms": round(p99 - d99, 3)}
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--block", type=int, default=100)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                        help="the event loop of proxy and raw upstream; `cmbcluster up` "
                             "uses asyncio's")
    parser.add_argument("--streamlit", action="store_true",
                        help="also measure against a real Streamlit upstream")
    args = parser.parse_args()
    result = {"loop": args.loop, "cpus": os.cpu_count(),
              "raw": measure("raw", args.loop, args.runs, args.blocks, args.block)}
    if args.streamlit:
        result["streamlit"] = measure("streamlit", args.loop, args.runs, args.blocks,
                                      args.block)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

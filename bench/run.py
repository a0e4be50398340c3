"""CMBCluster benchmarks, measured side by side in one run (`make bench`).

    .venv/bin/python -m bench.run [--launches 5] [--requests 2000] [--storm 20]

1. launch: POST /api/environments to a routed, healthy environment (the record says
   running and `<url>_stcore/health` answers through the proxy), against bare
   `streamlit run` of the same app to its health check; interleaved, medians, ratio.
2. proxy: added latency per request, GET of an environment's health through the proxy
   (access check included) against the same GET straight to the environment, each on
   one keep-alive connection, interleaved in blocks; p50 and p99 of each, the difference.
3. storm: `--storm` users launch at once (each watching its launch as the hub does)
   while another signed-in client polls GET /api/environments; p50/p99 of that API
   while they start.
4. memory: resident size of the control-plane process (proxy, all functions, queue,
   culler) and, separately, of the hub UI process, after the storm.

Results are printed as JSON and written to bench/results/latest.json. The machine is
shared and noisy: compare the ratios, not the absolute numbers, across runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

from bench.common import free_port, pct, timed_gets

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "user-environment" / "app.py"
RESULTS = ROOT / "bench" / "results"


def wait_for(url: str, timeout: float = 60, poll: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(poll)
    raise RuntimeError(f"{url} did not answer")


# -- the platform under test --------------------------------------------------------------
class Platform:
    def __init__(self, data_dir: Path, total: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "CMBCLUSTER_DATA_DIR": str(data_dir), "PORT": str(self.port),
               "MAX_TOTAL_ENVIRONMENTS": str(total), "START_TIMEOUT": "120",
               "CMBCLUSTER_LOGIN_RATE_LIMIT": "1000/60"}  # one address signs in 25 users
        self.proc = subprocess.Popen([sys.executable, "-m", "functions.cli", "up"], cwd=ROOT,
                                     env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(self.url + "/hub/_stcore/health", 90, 0.05)

    def session(self, username: str) -> requests.Session:
        http = requests.Session()
        http.headers["Origin"] = self.url
        resp = http.post(self.url + "/auth/dev-login", data={"username": username},
                         allow_redirects=False)
        resp.raise_for_status()
        return http

    def launch(self, http: requests.Session, poll: float = 0.01) -> tuple[float, dict]:
        """Seconds from POST to a running record whose URL answers through the proxy."""
        started = time.perf_counter()
        env = http.post(self.url + "/api/environments", json={}).json()
        while env["state"] in ("pending", "starting"):
            time.sleep(poll)
            env = http.get(f"{self.url}/api/environments/{env['id']}").json()
        if env["state"] != "running":
            raise RuntimeError(f"launch failed: {env}")
        while http.get(self.url + env["url"] + "_stcore/health").status_code != 200:
            time.sleep(0.01)
        return time.perf_counter() - started, env

    def rss_mb(self, pid: int) -> float:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def hub_pid(self) -> int:
        return json.loads((Path(self.data_dir) / "hub.json").read_text())["pid"]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)


def bare_streamlit_start() -> float:
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/_stcore/health")
        return time.perf_counter() - started
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


# -- the benchmarks -------------------------------------------------------------------------
def bench_launch(plat: Platform, runs: int) -> dict:
    ours, bare = [], []
    http = plat.session("launcher")
    for _ in range(runs):
        bare.append(bare_streamlit_start())
        seconds, env = plat.launch(http)
        ours.append(seconds)
        http.delete(f"{plat.url}/api/environments/{env['id']}")
    return {
        "bare_streamlit_s": round(statistics.median(bare), 3),
        "cmbcluster_launch_s": round(statistics.median(ours), 3),
        "ratio": round(statistics.median(ours) / statistics.median(bare), 3),
        "runs": runs,
    }


def bench_proxy(plat: Platform, requests_n: int) -> dict:
    http = plat.session("proxybench")
    _, env = plat.launch(http)
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    route = env["url"] + "_stcore/health"
    direct_port = _direct_port(plat, env)
    via = http_conn(plat.port)
    direct = http_conn(direct_port)
    proxied, straight = [], []
    block = 100
    for _ in range(max(1, requests_n // block)):
        straight += timed_gets(direct, route, {}, block)
        proxied += timed_gets(via, route, {"Cookie": cookie}, block)
    http.delete(f"{plat.url}/api/environments/{env['id']}")
    return {
        "direct_p50_ms": round(pct(straight, 0.5), 3),
        "direct_p99_ms": round(pct(straight, 0.99), 3),
        "proxied_p50_ms": round(pct(proxied, 0.5), 3),
        "proxied_p99_ms": round(pct(proxied, 0.99), 3),
        "added_p50_ms": round(pct(proxied, 0.5) - pct(straight, 0.5), 3),
        "added_p99_ms": round(pct(proxied, 0.99) - pct(straight, 0.99), 3),
        "requests_each": len(proxied),
    }


def _direct_port(plat: Platform, env: dict) -> int:
    state = json.loads((Path(plat.data_dir) / "servers" / f"{env['id']}.json").read_text())
    return int(state["port"])


def http_conn(port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def bench_storm(plat: Platform, users: int) -> dict:
    sessions = [plat.session(f"storm{i}") for i in range(users)]
    watcher = plat.session("watcher")
    latencies: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            watcher.get(plat.url + "/api/environments").raise_for_status()
            latencies.append((time.perf_counter() - t) * 1000)
            time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    barrier = threading.Barrier(users)
    times: list[float] = []

    def one(http: requests.Session) -> None:
        barrier.wait()
        # Each user watches the way the hub does (a poll every 0.3 s), not in a tight loop.
        seconds, _ = plat.launch(http, poll=0.3)
        times.append(seconds)

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    stop.set()
    poller.join()
    memory = {"control_plane_rss_mb": round(plat.rss_mb(plat.proc.pid), 1),
              "hub_rss_mb": round(plat.rss_mb(plat.hub_pid()), 1)}
    return {
        "users": users,
        "all_running_s": round(wall, 2),
        "launch_p50_s": round(pct(times, 0.5), 2),
        "api_p50_ms": round(pct(latencies, 0.5), 2),
        "api_p99_ms": round(pct(latencies, 0.99), 2),
        "api_samples": len(latencies),
        **memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--launches", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--storm", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plat = Platform(Path(tmp), total=args.storm + 5)
        plat.data_dir = tmp
        try:
            results = {
                "launch": bench_launch(plat, args.launches),
                "proxy": bench_proxy(plat, args.requests),
                "storm": bench_storm(plat, args.storm),
            }
        finally:
            plat.stop()
    results["machine"] = {"cpus": os.cpu_count(), "host": urlsplit(plat.url).hostname}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Bare `streamlit run` against `user-environment/launch.py`: start-up and request latency.

    .venv/bin/python -m bench.bare_streamlit [--runs 5] [--requests 50]

For each way of starting, the median over runs of the time from spawn to the first 200
from `<base>/_stcore/health`, and the median and p95 of sequential health requests on
one keep-alive connection (where the launcher's TCP_NODELAY fix shows). Prints JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import free_port

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "user-environment" / "app.py"
LAUNCHER = ROOT / "user-environment" / "launch.py"
BASE = "/user/bench/000000000000"


def health(port: int, conn: http.client.HTTPConnection | None = None) -> int:
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    conn.request("GET", f"{BASE}/_stcore/health")
    response = conn.getresponse()
    response.read()
    return response.status


def one_run(entry: list[str], requests: int) -> tuple[float, list[float]]:
    port = free_port()
    cmd = [sys.executable, *entry, "run", str(APP), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.baseUrlPath", BASE,
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--server.runOnSave", "false"]
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HOME": home}
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=home, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            while True:
                try:
                    if health(port) == 200:
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.perf_counter() - t0 > 60:
                    raise RuntimeError(f"{' '.join(entry)} did not get healthy")
                time.sleep(0.01)
            startup = time.perf_counter() - t0
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            health(port, conn)  # open the connection; the first request is not the point
            times = []
            for _ in range(requests):
                t = time.perf_counter()
                health(port, conn)
                times.append(time.perf_counter() - t)
            conn.close()
        finally:
            proc.terminate()
            proc.wait(10)
    return startup, times


def summarise(entry: list[str], runs: int, requests: int) -> dict:
    startups, latencies = [], []
    for _ in range(runs):
        startup, times = one_run(entry, requests)
        startups.append(startup)
        latencies.extend(times)
    latencies.sort()
    return {
        "startup_to_health_s_median": round(statistics.median(startups), 3),
        "startup_to_health_s_all": [round(s, 3) for s in startups],
        "keepalive_request_ms_median": round(statistics.median(latencies) * 1000, 2),
        "keepalive_request_ms_p95": round(latencies[int(len(latencies) * 0.95)] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    result = {
        "runs": args.runs,
        "requests_per_run": args.requests,
        "bare_streamlit": summarise(["-m", "streamlit"], args.runs, args.requests),
        "launch_py": summarise([str(LAUNCHER)], args.runs, args.requests),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

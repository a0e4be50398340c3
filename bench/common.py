"""Helpers every benchmark here shares."""

from __future__ import annotations

import http.client
import socket
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by rank, as the results report p50 and p99."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_gets(conn: http.client.HTTPConnection, path: str, headers: dict,
               n: int) -> list[float]:
    """Milliseconds for each of `n` sequential GETs on one keep-alive connection."""
    out = []
    for _ in range(n):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        out.append((time.perf_counter() - started) * 1000)
        if resp.status != 200:
            raise RuntimeError(f"GET {path} answered {resp.status}")
    return out

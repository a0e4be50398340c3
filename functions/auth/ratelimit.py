"""Per-client rate limit for sign-in attempts: a token bucket per address, in memory.

Each process keeps its own buckets, so N replicas allow up to N times the rate; that
still bounds password-spraying-style retries and code-guessing, and needs no store
write on every attempt.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping

from ..core.config import ConfigError

LIMIT_VARIABLE = "CMBCLUSTER_LOGIN_RATE_LIMIT"
DEFAULT_LIMIT = "20/60"  # attempts / seconds
MAX_TRACKED = 10_000


def parse_limit(extra: Mapping[str, str]) -> tuple[int, float]:
    raw = extra.get(LIMIT_VARIABLE, DEFAULT_LIMIT).strip() or DEFAULT_LIMIT
    try:
        count, _, seconds = raw.partition("/")
        attempts, window = int(count), float(seconds or 60)
    except ValueError:
        attempts, window = 0, 0.0
    if attempts < 1 or not 0 < window < math.inf:
        raise ConfigError(f"{LIMIT_VARIABLE}={raw!r}: expected ATTEMPTS/SECONDS, e.g. 20/60")
    return attempts, window


def client_key(address: str | None) -> str:
    """IPv6 clients are limited per /64: one host usually holds the whole prefix."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class RateLimiter:
    def __init__(self, attempts: int, window: float):
        self.capacity = attempts
        self.rate = attempts / window  # tokens regained per second
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str) -> float:
        """Take one attempt; 0 when allowed, else the seconds until the next is."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(self.capacity), now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._buckets[key] = (tokens - 1 if wait == 0 else tokens, now)
            while len(self._buckets) > MAX_TRACKED:
                # The least recently seen address goes first; a full bucket is lost at worst.
                self._buckets.popitem(last=False)
            return wait

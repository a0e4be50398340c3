"""Usage over time, derived from environment records alone.

The records already carry when each environment was created, started and stopped, so
the admin chart needs no metrics store of its own: replaying those instants gives the
number running at any moment and the launches in any interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd


@dataclass(frozen=True)
class Window:
    label: str
    span: timedelta
    bucket: timedelta


WINDOWS = (
    Window("Last hour", timedelta(hours=1), timedelta(minutes=1)),
    Window("Last 24 hours", timedelta(hours=24), timedelta(minutes=30)),
    Window("Last 7 days", timedelta(days=7), timedelta(hours=4)),
    Window("Last 30 days", timedelta(days=30), timedelta(days=1)),
)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def running_intervals(envs: list[dict], now: datetime) -> list[tuple[datetime, datetime]]:
    """When each environment was serving: from `started` to `stopped`, or to now while
    it still runs. Environments that never started (failed, still starting) count as
    launches only."""
    spans = []
    for env in envs:
        started = parse_time(env.get("started"))
        if started is None:
            continue
        stopped = parse_time(env.get("stopped"))
        if stopped is None:
            if env.get("state") not in ("running", "stopping"):
                continue  # closed without a stop time: nothing trustworthy to draw
            stopped = now
        spans.append((started, max(started, stopped)))
    return spans


def usage_frame(envs: list[dict], window: Window, now: datetime | None = None) -> pd.DataFrame:
    """One row per bucket of `window`, ending now: `running` is the most environments
    running at once during the bucket (so a short session still shows), `launches` the
    environments created in it."""
    now = now or datetime.now(UTC)
    start = now - window.span
    edges = pd.date_range(start=start, end=now, periods=_bucket_count(window) + 1)
    lefts, rights = edges[:-1], edges[1:]

    spans = running_intervals(envs, now)
    running = [
        _peak_overlap([(max(a, lo), min(b, hi)) for a, b in spans if a < hi and b > lo])
        for lo, hi in zip(lefts, rights, strict=True)
    ]

    created = [t for env in envs if (t := parse_time(env.get("created"))) and t >= start]
    launches = pd.Series(0, index=range(len(lefts)))
    if created:
        # Each launch falls in the bucket whose right edge is the first one past it.
        positions = edges.searchsorted(pd.DatetimeIndex(created), side="right") - 1
        counts = pd.Series(positions).clip(0, len(lefts) - 1).value_counts()
        launches = launches.add(counts, fill_value=0).astype(int)

    return pd.DataFrame({"running": running, "launches": launches.to_list()},
                        index=pd.DatetimeIndex(lefts, name="time"))


def _bucket_count(window: Window) -> int:
    return max(1, round(window.span / window.bucket))


def _peak_overlap(spans: list[tuple[datetime, datetime]]) -> int:
    """The largest number of spans covering one instant (a sweep over their ends)."""
    points = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans],
                    key=lambda p: (p[0], p[1]))  # an end before a start at the same time
    peak = current = 0
    for _, step in points:
        current += step
        peak = max(peak, current)
    return peak

"""The admin usage chart's numbers, from environment records alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from frontend.stats import WINDOWS, usage_frame

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HOUR = WINDOWS[0]  # last hour, one-minute buckets


def iso(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def env(created: float, started: float | None, stopped: float | None, state: str) -> dict:
    return {"created": iso(created), "started": iso(started) if started is not None else None,
            "stopped": iso(stopped) if stopped is not None else None, "state": state}


def test_running_counts_overlaps_and_launches_land_in_their_minute():
    envs = [
        env(50, 49.5, 20, "stopped"),  # ran from 49.5 to 20 minutes ago
        env(30, 29.5, None, "running"),  # still running
        env(10, None, 9, "failed"),  # never started: a launch, never running
    ]
    frame = usage_frame(envs, HOUR, NOW)
    assert len(frame) == 60
    at = {round((NOW - t.to_pydatetime()).total_seconds() / 60): row
          for t, row in frame.iterrows()}
    assert at[55]["running"] == 0
    assert at[40]["running"] == 1
    assert at[25]["running"] == 2  # both overlap here
    assert at[5]["running"] == 1
    assert frame["launches"].sum() == 3
    assert at[50]["launches"] == 1 and at[10]["launches"] == 1


def test_a_short_session_inside_one_bucket_still_shows():
    frame = usage_frame([env(30.6, 30.5, 30.2, "stopped")], HOUR, NOW)
    assert frame["running"].max() == 1


def test_old_launches_are_outside_the_window():
    frame = usage_frame([env(120, 119, 100, "stopped")], HOUR, NOW)
    assert frame["launches"].sum() == 0 and frame["running"].max() == 0

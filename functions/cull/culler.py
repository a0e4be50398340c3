"""The culler: running environments nobody has used for MAX_INACTIVE_HOURS stop, and,
when MAX_AGE_HOURS is set, so do those older than that. The server goes, the workspace
stays, the record says why.

Each stop is conditional on the environment still being idle at the moment of the write
(`idle_before`), so a click that lands between the query and the stop keeps it alive,
and two cullers racing each other stop it once.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from ..core import metrics
from ..core.lifecycle import stop_environment
from ..core.models import Environment, State, utcnow
from ..core.platform import Platform
from .reconcile import reconcile

log = logging.getLogger("cmbcluster.cull")

PARALLEL_STOPS = 4  # bounded: a big cull must not hammer the backend's API
RUNNING = frozenset({State.RUNNING})


def cull(platform: Platform, now: datetime | None = None) -> dict:
    """One pass: cull idle and over-age environments, then reconcile."""
    now = now or utcnow()
    s = platform.settings
    idle_cutoff = now - timedelta(hours=s.max_inactive_hours)
    jobs: dict[str, tuple[Environment, str, datetime | None]] = {}
    for env in platform.store.idle_environments(idle_cutoff):
        jobs[env.id] = (env, f"idle for more than {_hours(s.max_inactive_hours)}", idle_cutoff)
    if s.max_age_hours:
        age_cutoff = now - timedelta(hours=s.max_age_hours)
        for env in platform.store.active_environments():
            if env.state == State.RUNNING and (env.started or env.created) < age_cutoff:
                jobs.setdefault(env.id, (env, f"older than {_hours(s.max_age_hours)}", None))

    def stop(job: tuple[Environment, str, datetime | None]) -> str | None:
        env, reason, idle_before = job
        done = stop_environment(platform, env, reason, expected=RUNNING,
                                idle_before=idle_before)
        if done is None:
            return None
        kind = "idle" if reason.startswith("idle") else "max_age"
        metrics.culled.labels(kind).inc()
        log.info("culled: %s", reason, extra={"environment": env.id, "user": env.owner})
        return kind

    with ThreadPoolExecutor(max_workers=PARALLEL_STOPS, thread_name_prefix="cull") as pool:
        results = list(pool.map(stop, jobs.values()))
    summary = {"culled_idle": results.count("idle"), "culled_max_age": results.count("max_age")}
    summary.update(reconcile(platform))
    return summary


def _hours(hours: float) -> str:
    if hours < 1 / 60:
        return f"{hours * 3600:.3g} seconds"
    if hours < 1:
        return f"{hours * 60:.3g} minutes"
    return f"{hours:g} hour" + ("" if hours == 1 else "s")

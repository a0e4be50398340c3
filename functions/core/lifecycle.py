"""Lifecycle steps more than one function takes: stopping and failing an environment.

The spawn API, the admin API, the culler and the reconciler all stop environments; each
step is a compare-and-set on the record, so when they race exactly one of them moves
the record and every one of them leaves the backend without a server.
"""

from __future__ import annotations

import logging
from datetime import datetime

from . import metrics
from .env_access import env_host
from .models import ACTIVE_STATES, AuditEntry, Environment, State, utcnow
from .platform import Platform

log = logging.getLogger("cmbcluster.lifecycle")

SPAWN_TASK = "spawn"
# An environment reports its own reruns here, with a token that names only itself.
ACTIVITY_PATH = "/route/activity"
ACTIVITY_TOKEN = "activity"
ACTIVITY_TOKEN_TTL_SECONDS = 30 * 24 * 3600


def base_path(owner: str, env_id: str) -> str:
    """Where an environment is served on the platform's origin (no trailing slash)."""
    return f"/user/{owner}/{env_id}"


def environment_url(platform: Platform, owner: str, env_id: str) -> str:
    """Where the browser opens an environment: its own host on the apps domain in the
    cloud, a path on the platform's origin otherwise."""
    path = base_path(owner, env_id) + "/"
    host = env_host(platform.settings, env_id)
    return f"https://{host}{path}" if host else path


def stop_environment(platform: Platform, env: Environment, reason: str,
                     actor: str | None = None,
                     expected: frozenset[State] = ACTIVE_STATES,
                     idle_before: datetime | None = None) -> Environment | None:
    """Move an active environment to stopping, remove its server, mark it stopped.

    Returns the stopped record, or None when another caller had already moved it (its
    server is removed all the same, so a lost race never leaves one behind), or when,
    with `idle_before`, someone used it since (then nothing is touched).
    """
    store = platform.store
    moving = store.transition(env.id, expected - {State.STOPPING}, State.STOPPING,
                              idle_before=idle_before, reason=reason)
    if moving is None:
        current = store.get_environment(env.id)
        if current is not None and current.state == State.RUNNING:
            return None  # still in use (a conditional cull lost to a click): keep it
        if current is None or current.state != State.STOPPING:
            _remove_server(platform, env.id)
            return None
    _remove_server(platform, env.id)
    done = store.transition(env.id, [State.STOPPING], State.STOPPED, stopped=utcnow())
    if done is not None:
        log.info("environment stopped", extra={"environment": env.id, "user": env.owner})
        if actor is not None:
            store.audit(AuditEntry(actor, "environment.stop", env.id,
                                   {"owner": env.owner, "reason": reason}))
    return done


def fail_environment(platform: Platform, env_id: str, reason: str) -> Environment | None:
    """Mark a pending or starting environment failed and remove what it made."""
    failed = platform.store.transition(env_id, [State.PENDING, State.STARTING], State.FAILED,
                                       reason=reason, stopped=utcnow())
    _remove_server(platform, env_id)
    if failed is not None:
        log.warning("environment failed: %s", reason, extra={"environment": env_id})
    return failed


def _remove_server(platform: Platform, env_id: str) -> None:
    if platform.backend is not None:
        platform.backend.stop(env_id)


def refresh_gauges(platform: Platform) -> None:
    """Recompute the active-environment gauges from the store (cheap: active only)."""
    active = platform.store.active_environments()
    metrics.active_users.set(len({e.owner for e in active}))
    for state in ACTIVE_STATES:
        metrics.active_environments.labels(str(state)).set(
            sum(1 for e in active if e.state == state))
    if platform.backend is not None:
        metrics.cpu_usage.clear()
        metrics.memory_usage.clear()
        for env_id, (cpu, rss) in platform.backend.usage().items():
            metrics.cpu_usage.labels(env_id).set(cpu)
            metrics.memory_usage.labels(env_id).set(rss)

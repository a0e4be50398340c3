"""The reconciler: make the backend and the records agree, whatever crashed when.

- A server with no live record (its record stopped, failed or vanished) is removed.
- A running record whose server is gone is closed with a reason.
- A stop that died half-way is finished.
- A pending or starting record older than START_TIMEOUT fails and its server goes;
  a younger one is queued again (the task name makes that a no-op when it is queued
  already, and it rescues one whose worker died with the process).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from ..core import metrics
from ..core.lifecycle import SPAWN_TASK, fail_environment, stop_environment
from ..core.models import State, utcnow
from ..core.platform import Platform

log = logging.getLogger("cmbcluster.reconcile")


def reconcile(platform: Platform) -> dict[str, int]:
    store, backend = platform.store, platform.backend
    counts = {"orphans_removed": 0, "closed": 0, "failed": 0, "requeued": 0}
    records = {e.id: e for e in store.active_environments()}
    servers = {s.env_id: s for s in backend.servers()}

    for env_id in servers:
        if env_id not in records:
            log.info("removing orphan server", extra={"environment": env_id})
            backend.stop(env_id)
            counts["orphans_removed"] += 1

    stuck_before = utcnow() - timedelta(seconds=platform.settings.start_timeout)
    stuck = {e.id for e in store.stuck_environments(stuck_before)}
    for env in records.values():
        server = servers.get(env.id)
        if env.state == State.RUNNING and (server is None or not server.alive):
            if stop_environment(platform, env, "its server exited",
                                expected=frozenset({State.RUNNING})):
                metrics.culled.labels("server_gone").inc()
                counts["closed"] += 1
        elif env.state == State.STOPPING:
            stop_environment(platform, env, env.reason or "stopped")
        elif env.id in stuck:
            reason = f"it did not start within {platform.settings.start_timeout:g} s"
            if fail_environment(platform, env.id, reason):
                counts["failed"] += 1
        elif env.state in (State.PENDING, State.STARTING) and platform.queue.enqueue(
                SPAWN_TASK, env.id, {"environment": env.id}):
            counts["requeued"] += 1
    if any(counts.values()):
        log.info("reconciled: %s", counts)
    return counts

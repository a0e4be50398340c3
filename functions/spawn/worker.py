"""The spawn worker: turns a pending environment into a running one, or a failed one.

It runs as a queue task named after the environment, and every step is idempotent, so
a retried task (Cloud Tasks retries, a platform restart) continues where the last try
stopped instead of starting a second server.
"""

from __future__ import annotations

import logging
import time

from ..core import metrics
from ..core.backends.base import BackendError, ServerSpec
from ..core.lifecycle import (
    ACTIVITY_PATH,
    ACTIVITY_TOKEN,
    ACTIVITY_TOKEN_TTL_SECONDS,
    base_path,
    environment_url,
    fail_environment,
)
from ..core.models import ProgressEvent, State, utcnow
from ..core.platform import Platform

log = logging.getLogger("cmbcluster.spawn")

# Streamlit is healthy about a second after exec: poll tightly then, and back off when a
# busy machine makes it slower, so twenty starts at once do not flood it with probes.
HEALTH_POLL_SECONDS = 0.03
HEALTH_POLL_MAX_SECONDS = 0.25
TIGHT_POLL_SECONDS = 2.0
STATE_CHECK_SECONDS = 0.5  # how often to notice a stop issued while we wait


def environment_variables(platform: Platform, env_id: str, owner: str) -> dict[str, str]:
    """What the research app is told about itself. The activity token lets it report
    reruns (the cloud's ingress never sees websocket messages) and nothing else."""
    variables = {
        "CMBCLUSTER_OWNER": owner,
        "CMBCLUSTER_ACTIVITY_URL": platform.public_url + ACTIVITY_PATH,
        "CMBCLUSTER_ACTIVITY_TOKEN": platform.signer.sign(ACTIVITY_TOKEN, env_id,
                                                          ACTIVITY_TOKEN_TTL_SECONDS),
    }
    shared = platform.settings.shared_data_dir
    if shared is not None:
        variables["CMBCLUSTER_SHARED_DIR"] = str(shared)
    return variables


def run_spawn(platform: Platform, payload: dict) -> None:
    store, backend = platform.store, platform.backend
    env_id = str(payload.get("environment", ""))
    env = store.get_environment(env_id)
    if env is None or env.state not in (State.PENDING, State.STARTING):
        return  # already done, stopped or failed: a retry has nothing to do
    if env.state == State.PENDING:
        env = store.transition(env_id, [State.PENDING], State.STARTING)
        if env is None:
            return  # stopped before we began
    profile = platform.settings.profile(env.profile)
    if profile is None:
        fail_environment(platform, env_id, f"profile {env.profile!r} no longer exists")
        return

    created = env.created

    def progress(phase: str, message: str, percent: int) -> None:
        elapsed = round((utcnow() - created).total_seconds(), 3)
        store.record_progress(env_id, ProgressEvent(phase, message, percent), {phase: elapsed})
        metrics.spawn_phase_seconds.labels(phase).observe(elapsed)

    deadline = created.timestamp() + platform.settings.start_timeout
    spec = ServerSpec(env_id=env_id, owner=env.owner, profile=profile,
                      base_path=base_path(env.owner, env_id),
                      env=environment_variables(platform, env_id, env.owner))
    try:
        server = backend.start(spec, progress)
    except BackendError as err:
        fail_environment(platform, env_id, f"could not start the server: {err}")
        return
    metrics.pods_created.labels(profile.name).inc()

    next_state_check, poll, spawned = 0.0, HEALTH_POLL_SECONDS, time.time()
    while not backend.is_healthy(server):
        if backend.route(env_id) is None:
            fail_environment(platform, env_id, "the app exited while starting (see its log)")
            return
        now = time.time()
        if now >= deadline:
            fail_environment(platform, env_id, "the app did not become healthy within "
                             f"{platform.settings.start_timeout:g} s")
            return
        if now >= next_state_check:
            next_state_check = now + STATE_CHECK_SECONDS
            current = store.get_environment(env_id)
            if current is None or current.state != State.STARTING:
                backend.stop(env_id)  # stopped or failed while starting: leave nothing
                return
        time.sleep(poll)
        if now - spawned > TIGHT_POLL_SECONDS:
            poll = min(poll * 1.5, HEALTH_POLL_MAX_SECONDS)

    progress("healthy", "your environment is ready", 100)
    now = utcnow()
    running = store.transition(env_id, [State.STARTING], State.RUNNING,
                               url=environment_url(platform, env.owner, env_id), started=now,
                               last_activity=now)
    if running is None:
        backend.stop(env_id)  # a stop won the race while the app came up
        return
    log.info("environment running", extra={"environment": env_id, "user": env.owner})

"""The spawn function: the environments API, and the spawn task handler."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

from flask import Flask, Response, jsonify, request, stream_with_context

from ..core import metrics
from ..core.errors import ApiError, NotFound
from ..core.lifecycle import SPAWN_TASK, stop_environment
from ..core.models import ENV_ID, Environment, State, new_environment_id
from ..core.platform import Platform
from ..core.queue.base import QueueError
from ..core.service_auth import ServiceTokenVerifier
from ..core.store.base import CapacityReached, LimitReached
from ..core.tokens import InvalidToken
from ..core.web import create_app as base_app
from ..core.web import current_user, json_body, platform
from .worker import run_spawn

log = logging.getLogger("cmbcluster.spawn")

EVENT_POLL_SECONDS = 0.25
DONE_STATES = (State.RUNNING, State.FAILED, State.STOPPED)


def create_app(plat: Platform) -> Flask:
    app = base_app("spawn", plat)

    @app.get("/api/profiles")
    def profiles():
        current_user()
        s = platform().settings
        return jsonify({"profiles": [p.public() for p in s.profiles],
                        "default": s.default_profile})

    @app.post("/api/environments")
    def launch():
        _, user = current_user()
        body = json_body()
        name = body.get("profile")
        if name is not None and not isinstance(name, str):
            raise ApiError(400, "bad_profile", "profile: expected a profile name")
        s = platform().settings
        profile = s.profile(name)
        if profile is None:
            raise ApiError(400, "unknown_profile", f"unknown profile {name!r}; choose one of "
                           + ", ".join(p.name for p in s.profiles))
        env = Environment(id=new_environment_id(), owner=user.id, profile=profile.name)
        try:
            claim = platform().store.claim_environment(
                env, max_per_user=s.max_user_pods, max_total=s.max_total_environments)
        except LimitReached as err:
            if all(e.state == State.STOPPING for e in err.active):
                raise ApiError(409, "still_stopping", "your last environment is still "
                               "stopping; launch again in a few seconds") from None
            raise ApiError(409, "limit_reached",
                           f"you already have {len(err.active)} active environment(s); "
                           "stop one before launching another") from None
        except CapacityReached:
            raise ApiError(503, "capacity_reached", "the platform is at capacity; try again "
                           "in a few minutes", {"Retry-After": "60"}) from None
        env = claim.environment
        # Enqueue on every call, not only on creation: the task name makes it a no-op when
        # queued already, and it heals a claim whose enqueue was lost to a crash.
        if env.state == State.PENDING:
            try:
                platform().queue.enqueue(SPAWN_TASK, env.id, {"environment": env.id})
            except QueueError:
                # The claim stands; the reconciler's next pass enqueues it again.
                log.warning("spawn task not queued", extra={"environment": env.id})
        return jsonify(env.public()), 202 if claim.created else 200

    @app.get("/api/environments")
    def list_mine():
        _, user = current_user()
        page = platform().store.list_environments(owner=user.id, limit=50)
        return jsonify({"environments": [e.public() for e in page.items]})

    @app.get("/api/environments/<env_id>")
    def get_one(env_id: str):
        return jsonify(_own_environment(env_id).public())

    @app.delete("/api/environments/<env_id>")
    def stop(env_id: str):
        env = _own_environment(env_id)
        if env.active:
            stopped = stop_environment(platform(), env, "stopped by its owner")
            env = stopped or platform().store.get_environment(env_id)
        return jsonify(env.public())

    @app.get("/api/environments/<env_id>/events")
    def events(env_id: str):
        env = _own_environment(env_id)
        limit = platform().settings.start_timeout + 30
        return Response(stream_with_context(_event_stream(env, limit)),
                        mimetype="text/event-stream",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/api/workspace")
    def workspace():
        _, user = current_user()
        used = platform().backend.workspace_bytes(user.id)
        if used is not None:
            metrics.storage_usage.labels(user.id).set(used)
        return jsonify({"bytes": used})

    tasks = None
    if plat.settings.tasks_audience:
        s = plat.settings
        tasks = ServiceTokenVerifier(s.tasks_audience, s.tasks_service_accounts,
                                     (s.service_oidc_issuer,), s.service_oidc_jwks_url)

    @app.post("/tasks/spawn")
    def spawn_task():
        # Cloud Tasks delivers here with the queue's Google-signed OIDC token; nobody
        # else may make the worker run (TASKS_AUDIENCE, TASKS_SERVICE_ACCOUNTS).
        if tasks is None:
            raise ApiError(403, "forbidden", "spawn tasks arrive from the queue only")
        try:
            tasks.verify(request.headers.get("Authorization"))
        except InvalidToken:
            raise ApiError(401, "bad_token", "a valid service token is required") from None
        except PermissionError as err:
            raise ApiError(403, "forbidden", str(err)) from None
        run_spawn(platform(), json_body())
        return jsonify({"status": "done"})

    return app


def _own_environment(env_id: str) -> Environment:
    """The caller's environment, or 404 (a foreign id is indistinguishable from none)."""
    _, user = current_user()
    env = platform().store.get_environment(env_id) if ENV_ID.match(env_id) else None
    if env is None or env.owner != user.id:
        raise NotFound("no such environment")
    return env


def _event_stream(env: Environment, limit: float) -> Iterator[str]:
    store = platform().store
    sent = 0
    deadline = time.monotonic() + limit
    while True:
        for event in env.events[sent:]:
            yield f"event: progress\ndata: {json.dumps(event.public())}\n\n"
        sent = len(env.events)
        if env.state in DONE_STATES or time.monotonic() > deadline:
            yield f"event: {env.state}\ndata: {json.dumps(env.public())}\n\n"
            return
        time.sleep(EVENT_POLL_SECONDS)
        env = store.get_environment(env.id) or env

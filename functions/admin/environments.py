"""The admin API for environments: everyone's, with idle time; stop any of them."""

from __future__ import annotations

from flask import Flask, jsonify, request

from ..core.errors import ApiError, NotFound
from ..core.lifecycle import stop_environment
from ..core.models import ENV_ID, State, utcnow
from ..core.store.base import last_seen
from ..core.web import platform, require_admin
from .paging import fetch_page


def register(app: Flask) -> None:
    @app.get("/api/admin/environments")
    def list_environments():
        require_admin()
        states = request.args.get("state")
        try:
            wanted = [State(x) for x in states.split(",")] if states else None
        except ValueError:
            raise ApiError(400, "bad_state", "state: one or more of "
                           + ", ".join(State)) from None
        page = fetch_page(platform().store.list_environments, states=wanted)
        now = utcnow()
        items = []
        for env in page.items:
            item = env.public()
            item.pop("events")
            if env.state == State.RUNNING:
                item["idle_seconds"] = round((now - last_seen(env)).total_seconds())
            items.append(item)
        return jsonify({"environments": items, "next_cursor": page.next_cursor})

    @app.delete("/api/admin/environments/<env_id>")
    def stop(env_id: str):
        admin = require_admin()
        env = platform().store.get_environment(env_id) if ENV_ID.match(env_id) else None
        if env is None:
            raise NotFound("no such environment")
        if env.active:
            stopped = stop_environment(platform(), env, f"stopped by administrator {admin.email}",
                                       actor=admin.id)
            env = stopped or platform().store.get_environment(env_id)
        return jsonify(env.public())

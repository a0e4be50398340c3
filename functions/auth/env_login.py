"""`GET /auth/env-login?env=<id>&next=<path>`: the hub's half of the environment handoff
(functions/core/env_access.py): a signed-in owner gets a one-time ticket for the
environment's own host; anyone else is sent to sign in, or refused."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from flask import Flask, Response, redirect, request

from ..core import env_access
from ..core.errors import ApiError, NotFound
from ..core.models import ENV_ID
from ..core.tokens import InvalidToken
from ..core.web import platform, session_token
from .redirects import safe_next


def register(app: Flask) -> None:
    app.get("/auth/env-login")(env_login)


def env_login() -> Response:
    p = platform()
    env_id = request.args.get("env", "")
    host = env_access.env_host(p.settings, env_id) if ENV_ID.match(env_id) else None
    if host is None:
        raise NotFound("no such environment")
    try:
        identity, user = p.sessions.user(session_token())
    except InvalidToken:
        back = request.full_path if request.query_string else request.path
        return redirect("/auth/login?next=" + quote(back, safe=""), code=302)
    env = p.store.get_environment(env_id)
    if env is None or env.owner != user.id:
        raise NotFound("no such environment")  # another's id is indistinguishable from none
    if not env.active:
        raise ApiError(409, "not_running", "this environment is not running; launch it from "
                       "the hub")
    ticket, _ = env_access.issue_ticket(p.signer, identity, env_id)
    target = safe_next(request.args.get("next"), default=env.url or "/")
    query = urlencode({"ticket": ticket, "next": target})
    return redirect(f"https://{host}{env_access.CALLBACK_PATH}?{query}", code=302)

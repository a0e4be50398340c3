"""The route function: ingress-nginx `auth-url` calls `GET /route/verify` per request."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, redirect, request

from ..core import env_access
from ..core.errors import ApiError
from ..core.lifecycle import ACTIVITY_PATH, ACTIVITY_TOKEN
from ..core.models import ENV_ID, utcnow
from ..core.platform import Platform
from ..core.sessions import SESSION_COOKIE
from ..core.tokens import InvalidToken
from ..core.web import create_app as base_app
from ..core.web import platform
from .access import BadPath, Decision, Target, decide, parse_path
from .activity import ActivityRecorder, is_person_request

USER_HEADER = "X-Auth-User"


def create_app(plat: Platform) -> Flask:
    app = base_app("route", plat)
    recorder = activity_recorder(plat)

    @app.get("/route/verify")
    def verify():
        original = (request.headers.get("X-Original-URL")
                    or request.headers.get("X-Original-URI") or "")
        # The raw path exactly as the client sent it: never decode or normalise here.
        raw_path = urlsplit(original).path if "://" in original else original.split("?")[0]
        try:
            target = parse_path(raw_path)
        except BadPath as err:
            return Response(f"forbidden: {err}\n", 403, mimetype="text/plain")
        host = urlsplit(original).netloc if "://" in original else request.host
        caller = caller_of(target, host)
        if caller is False:
            return Response("forbidden: wrong host\n", 403, mimetype="text/plain")
        decision = decide(caller, target)
        if decision == Decision.ALLOW:
            # ingress-nginx asks for each HTTP request and websocket handshake; the
            # handshake is the tab (re)connecting, not a person doing something.
            if is_person_request(target.rest):
                recorder.record(target.env_id)
            return Response("ok\n", 200, {USER_HEADER: caller}, mimetype="text/plain")
        if decision == Decision.SIGN_IN:
            return Response("sign in first\n", 401, mimetype="text/plain")
        return Response("forbidden\n", 403, mimetype="text/plain")

    @app.get(env_access.CALLBACK_PATH)
    def env_callback():
        """The environment host's half of the handoff: redeem the ticket, set the cookie."""
        p = platform()
        env_id = env_access.env_id_of_host(p.settings, request.host)
        if env_id is None or not ENV_ID.match(env_id):
            raise ApiError(404, "not_found", "not an environment host")
        try:
            claims = env_access.read_ticket(p.signer, request.args.get("ticket"), env_id)
        except InvalidToken:
            raise ApiError(401, "bad_ticket", "sign in again from the hub") from None
        if not p.store.use_once("env-ticket", claims["jti"], utcnow() + timedelta(minutes=5)):
            raise ApiError(401, "bad_ticket", "this sign-in link was used already")
        if not p.sessions.still_valid(claims["sub"], claims["ver"]):
            raise ApiError(401, "bad_ticket", "sign in again from the hub")
        ttl = p.settings.token_expire_hours * 3600
        response = redirect(safe_path(request.args.get("next")), code=302)
        response.set_cookie(env_access.COOKIE, env_access.access_token(p.signer, claims, ttl),
                            max_age=int(ttl), path="/", secure=True, httponly=True,
                            samesite="Lax")
        return response

    @app.post(ACTIVITY_PATH)
    def activity():
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        try:
            claims = platform().signer.verify(token if scheme.lower() == "bearer" else None,
                                              ACTIVITY_TOKEN)
        except InvalidToken:
            raise ApiError(401, "bad_token", "an environment activity token is required") \
                from None
        env_id = str(claims["sub"])
        if not ENV_ID.match(env_id):
            raise ApiError(400, "bad_token", "malformed environment id")
        recorder.record(env_id)
        return jsonify({"recorded": True})

    return app


def activity_recorder(plat: Platform) -> ActivityRecorder:
    """One recorder per process, shared with the local proxy, so the once-a-minute
    throttle holds across both ways of noticing activity."""
    if "activity" not in plat.services:
        plat.services["activity"] = ActivityRecorder(
            plat.store, plat.settings.activity_interval_seconds)
    return plat.services["activity"]


def caller_of(target: Target, host: str) -> str | None | Literal[False]:
    """Who the request's credentials name (None: none valid), from cookies alone.

    On an apps domain the only credential is the environment's own access cookie, and
    the host must be the environment's; False when it is another host. Without one,
    environments share the platform's host and the session cookie.
    """
    p = platform()
    if p.settings.apps_domain:
        if env_access.env_id_of_host(p.settings, host) != target.env_id:
            return False
        try:
            user_id, version = env_access.read_access(
                p.signer, request.cookies.get(env_access.COOKIE), target.env_id)
        except InvalidToken:
            return None
        return user_id if p.sessions.still_valid(user_id, version) else None
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return p.sessions.identity(token, fresh=False).user_id
    except InvalidToken:
        return None


def safe_path(value: str | None) -> str:
    """A same-host path to land on after the handoff; anything else goes to `/`."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    try:
        parse_path(value.split("?", 1)[0])
    except BadPath:
        return "/"
    return value

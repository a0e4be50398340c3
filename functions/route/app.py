"""The route function: ingress-nginx `auth-url` calls `GET /route/verify` per request."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, request

from ..core.errors import ApiError
from ..core.lifecycle import ACTIVITY_PATH, ACTIVITY_TOKEN
from ..core.models import ENV_ID
from ..core.platform import Platform
from ..core.sessions import SESSION_COOKIE
from ..core.tokens import Identity, InvalidToken
from ..core.web import create_app as base_app
from ..core.web import platform
from .access import BadPath, Decision, decide, parse_path
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
        identity = session_identity(request.cookies.get(SESSION_COOKIE))
        decision = decide(identity, target)
        if decision == Decision.ALLOW:
            # ingress-nginx asks for each HTTP request and websocket handshake; the
            # handshake is the tab (re)connecting, not a person doing something.
            if is_person_request(target.rest):
                recorder.record(target.env_id)
            return Response("ok\n", 200, {USER_HEADER: identity.user_id},
                            mimetype="text/plain")
        if decision == Decision.SIGN_IN:
            return Response("sign in first\n", 401, mimetype="text/plain")
        return Response("forbidden\n", 403, mimetype="text/plain")

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


def session_identity(token: str | None) -> Identity | None:
    """The caller, from the cookie alone (cached revocation state, no store read)."""
    if not token:
        return None
    try:
        return platform().sessions.identity(token, fresh=False)
    except InvalidToken:
        return None

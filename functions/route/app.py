"""The route function: ingress-nginx `auth-url` calls `GET /route/verify` per request."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, request

from ..core.platform import Platform
from ..core.sessions import SESSION_COOKIE
from ..core.tokens import Identity, InvalidToken
from ..core.web import create_app as base_app
from ..core.web import platform
from .access import BadPath, Decision, decide, parse_path

USER_HEADER = "X-Auth-User"


def create_app(plat: Platform) -> Flask:
    app = base_app("route", plat)

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
            return Response("ok\n", 200, {USER_HEADER: identity.user_id},
                            mimetype="text/plain")
        if decision == Decision.SIGN_IN:
            return Response("sign in first\n", 401, mimetype="text/plain")
        return Response("forbidden\n", 403, mimetype="text/plain")

    return app


def session_identity(token: str | None) -> Identity | None:
    """The caller, from the cookie alone (cached revocation state, no store read)."""
    if not token:
        return None
    try:
        return platform().sessions.identity(token, fresh=False)
    except InvalidToken:
        return None

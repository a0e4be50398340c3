"""What every function's Flask app shares: the app factory, the session, JSON input."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.middleware.proxy_fix import ProxyFix

from . import metrics
from .errors import ApiError, install_error_handlers
from .lifecycle import refresh_gauges
from .models import User
from .platform import Platform
from .sessions import SESSION_COOKIE
from .tokens import Identity, InvalidToken

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_JSON_BYTES = 64 * 1024


def create_app(name: str, plat: Platform) -> Flask:
    """A Flask app for one function: JSON errors, `GET /health`, Origin checks."""
    app = Flask(f"cmbcluster.{name}")
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    # One trusted hop in front (the local proxy, or Cloud Run's front end) tells us the
    # client's address and the public scheme and host.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    app.extensions["cmbcluster"] = plat
    install_error_handlers(app)
    app.before_request(check_origin)

    @app.get("/health")
    def health():
        return jsonify({"status": "ok", "function": name})

    @app.get("/metrics")
    def prometheus():
        refresh_gauges(plat)
        return Response(metrics.exposition(), mimetype="text/plain; version=0.0.4")

    return app


def platform() -> Platform:
    return current_app.extensions["cmbcluster"]


def public_origin() -> str:
    url = platform().settings.public_url
    return url or f"{request.scheme}://{request.host}"


def check_origin() -> None:
    """Refuse cross-site state changes: a browser sends Origin with every POST/DELETE."""
    if request.method not in UNSAFE_METHODS:
        return
    origin = request.headers.get("Origin")
    if origin is None or origin == public_origin():
        return
    if origin == "null" or urlsplit(origin).netloc != urlsplit(public_origin()).netloc:
        raise ApiError(403, "bad_origin", "cross-site request refused")


def session_token() -> str | None:
    return request.cookies.get(SESSION_COOKIE)


def current_user() -> tuple[Identity, User]:
    """The signed-in user, read fresh from the store; 401 JSON otherwise."""
    if "user" not in g:
        try:
            g.user = platform().sessions.user(session_token())
        except InvalidToken:
            raise ApiError(401, "not_signed_in", "sign in first") from None
    return g.user


def require_admin() -> User:
    _, user = current_user()
    if not user.is_admin:
        raise ApiError(403, "forbidden", "administrators only")
    return user


def json_body() -> dict[str, Any]:
    """The request's JSON object; an empty body is an empty object; anything else 400."""
    raw = request.get_data(cache=True)
    if len(raw) > MAX_JSON_BYTES:
        raise ApiError(413, "too_large", "request body too large")
    if not raw.strip():
        return {}
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "expected a JSON object")
    return data

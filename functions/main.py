"""Entry points for functions-framework: one Cloud Run service each.

    functions-framework --target=spawn --source=functions/main.py

Each target is a whole Flask app of its own (its routes under one service). The platform
is built on the first request from the environment, so a bad variable fails the
service's start-up check with a line naming it.
"""

from __future__ import annotations

import threading

import flask

from .admin.app import create_app as admin_app
from .auth.app import create_app as auth_app
from .core.config import ensure_secret_key, load_settings
from .core.platform import Platform, attach_cloud_adapters, build_platform
from .cull.app import create_app as cull_app
from .route.app import create_app as route_app
from .spawn.app import create_app as spawn_app

FACTORIES = {
    "auth": auth_app,
    "spawn": spawn_app,
    "route": route_app,
    "cull": cull_app,
    "admin": admin_app,
}

_lock = threading.Lock()
_platform: Platform | None = None
_apps: dict[str, flask.Flask] = {}


def _app(name: str) -> flask.Flask:
    global _platform
    with _lock:
        if _platform is None:
            settings = ensure_secret_key(load_settings())
            if settings.mode == "cloud":
                _platform = attach_cloud_adapters(build_platform(settings))
            else:  # functions-framework on a workstation: the local adapters
                from .local import build_local_platform

                _platform = build_local_platform(settings)
        if name not in _apps:
            _apps[name] = FACTORIES[name](_platform)
        return _apps[name]


def _serve(name: str, request: flask.Request) -> flask.Response:
    app = _app(name)
    with app.request_context(request.environ):
        return app.full_dispatch_request()


def auth(request: flask.Request) -> flask.Response:
    return _serve("auth", request)


def spawn(request: flask.Request) -> flask.Response:
    return _serve("spawn", request)


def route(request: flask.Request) -> flask.Response:
    return _serve("route", request)


def cull(request: flask.Request) -> flask.Response:
    return _serve("cull", request)


def admin(request: flask.Request) -> flask.Response:
    return _serve("admin", request)

"""The admin function."""

from __future__ import annotations

from flask import Flask

from ..core.platform import Platform
from ..core.web import create_app as _create_app
from . import environments, users


def create_app(platform: Platform) -> Flask:
    app = _create_app("admin", platform)
    users.register(app)
    environments.register(app)
    return app

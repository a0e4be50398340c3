"""The cull function."""

from __future__ import annotations

from flask import Flask

from ..core.platform import Platform
from ..core.web import create_app as _create_app


def create_app(platform: Platform) -> Flask:
    app = _create_app("cull", platform)
    return app

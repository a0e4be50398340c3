"""The cull function: Cloud Scheduler calls `POST /cull`; locally a timer does."""

from __future__ import annotations

from flask import Flask

from ..core.platform import Platform
from ..core.web import create_app as base_app


def create_app(plat: Platform) -> Flask:
    app = base_app("cull", plat)
    return app

"""The cull function: Cloud Scheduler calls `POST /cull`; locally a timer does.

In the cloud the caller proves itself with the Google-signed OIDC token of the
scheduler's service account (CULL_AUDIENCE, CULL_SERVICE_ACCOUNTS). An administrator's
session may also trigger a pass (the admin page's "cull now"). Anyone else: 401 or 403.
"""

from __future__ import annotations

from flask import Flask, jsonify, request

from ..core.errors import ApiError
from ..core.platform import Platform
from ..core.service_auth import ServiceTokenVerifier
from ..core.tokens import InvalidToken
from ..core.web import create_app as base_app
from ..core.web import platform, require_admin
from .culler import cull


def create_app(plat: Platform) -> Flask:
    app = base_app("cull", plat)
    s = plat.settings
    verifier = None
    if s.cull_audience:
        verifier = ServiceTokenVerifier(s.cull_audience, s.cull_service_accounts,
                                        (s.service_oidc_issuer,), s.service_oidc_jwks_url)

    @app.post("/cull")
    def run_cull():
        authorization = request.headers.get("Authorization")
        if authorization:
            if verifier is None:
                raise ApiError(401, "not_signed_in", "service tokens are not configured")
            try:
                verifier.verify(authorization)
            except InvalidToken:
                raise ApiError(401, "bad_token", "a valid service token is required") from None
            except PermissionError as err:
                raise ApiError(403, "forbidden", str(err)) from None
        else:
            require_admin()
        return jsonify(cull(platform()))

    return app

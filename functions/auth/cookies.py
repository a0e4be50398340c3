"""The two cookies sign-in uses.

- The session cookie: the signed session token, on the whole site, for
  TOKEN_EXPIRE_HOURS. Host-only (no Domain attribute), so no sibling host, and no user
  environment on the apps domain, ever receives it.
- The login cookie: the transient state of one sign-in (state, nonce, PKCE verifier,
  where to go next), signed, for ten minutes, sent only to /auth. Keeping it in the
  browser instead of server memory lets any replica finish a sign-in another began.
"""

from __future__ import annotations

from flask import Response

from ..core.config import Settings
from ..core.sessions import SESSION_COOKIE

LOGIN_COOKIE = "cmbcluster_login"
LOGIN_PATH = "/auth"
LOGIN_TTL_SECONDS = 600


def _attributes(settings: Settings, path: str) -> dict:
    return {"path": path, "secure": settings.secure_cookies, "httponly": True,
            "samesite": "Lax"}


def set_session(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=int(settings.token_expire_hours * 3600),
                        **_attributes(settings, "/"))


def clear_session(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, **_attributes(settings, "/"))


def set_login(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(LOGIN_COOKIE, token, max_age=LOGIN_TTL_SECONDS,
                        **_attributes(settings, LOGIN_PATH))


def clear_login(response: Response, settings: Settings) -> None:
    response.delete_cookie(LOGIN_COOKIE, **_attributes(settings, LOGIN_PATH))

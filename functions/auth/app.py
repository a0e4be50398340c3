"""The auth function: sign-in with OpenID Connect (or the loopback dev login), sign-out,
and who am I.

    GET  /auth/login?next=PATH   -> the provider (or, dev login, a one-field form)
    GET  /auth/callback          -> session cookie, then PATH
    POST /auth/logout            -> cookie cleared, every token of the user revoked;
                                    form field `next`: a 303 there instead of JSON
    GET  /api/me                 -> {id, email, name, role}
    POST /auth/dev-login         -> form field `username`; only without an OIDC client
                                    and on loopback, otherwise 404

Every failure is a 4xx JSON answer (503 when the provider is unreachable) and sets no
session cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps

from flask import Flask, Response, jsonify, redirect, request

from ..core import metrics
from ..core.errors import ApiError, NotFound
from ..core.models import USER_ID, AuditEntry, Role, User
from ..core.platform import Platform
from ..core.tokens import InvalidToken
from ..core.web import create_app as _create_app
from ..core.web import current_user, platform, public_origin, session_token
from . import cookies, env_login
from .allowlist import denial, is_admin_email
from .oidc import BadIdToken, CodeRejected, OidcClient, ProviderUnavailable
from .ratelimit import RateLimiter, client_key, parse_limit
from .redirects import checked_next, safe_next

LOGIN_TOKEN = "login"  # TokenSigner typ of the login cookie
DEV_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
OIDC_SERVICE = "auth.oidc"
LIMITER_SERVICE = "auth.ratelimit"


def create_app(platform: Platform) -> Flask:
    app = _create_app("auth", platform)
    settings = platform.settings
    platform.services[LIMITER_SERVICE] = RateLimiter(*parse_limit(settings.extra))
    if settings.oidc_configured:
        platform.services[OIDC_SERVICE] = OidcClient(
            settings.oidc_server_metadata_url, settings.oidc_client_id,
            settings.oidc_client_secret)

    app.get("/auth/login")(counted(rate_limited(login)))
    app.get("/auth/callback")(counted(rate_limited(callback)))
    app.post("/auth/dev-login")(counted(rate_limited(dev_login)))
    app.post("/auth/logout")(logout)
    app.get("/api/me")(me)
    app.after_request(forget_login_state)
    env_login.register(app)
    return app


# -- cross-cutting: rate limit and the authentication metric ---------------------------
def rate_limited(view: Callable) -> Callable:
    @wraps(view)
    def wrapper(*args, **kwargs) -> Response:
        limiter: RateLimiter = platform().services[LIMITER_SERVICE]
        wait = limiter.hit(client_key(request.remote_addr))
        if wait:
            raise ApiError(429, "rate_limited", "too many sign-in attempts; try again later",
                           {"Retry-After": str(max(1, math.ceil(wait)))})
        return view(*args, **kwargs)
    return wrapper


def _result(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status == 403:
        return "denied"
    return "error" if status >= 500 else "invalid"


def counted(view: Callable) -> Callable:
    """Count each attempt's outcome; starting a sign-in counts only when it fails."""
    @wraps(view)
    def wrapper(*args, **kwargs) -> Response:
        try:
            response = view(*args, **kwargs)
        except ApiError as err:
            metrics.authentication_requests.labels(result=_result(err.status)).inc()
            raise
        if request.endpoint != "login":
            metrics.authentication_requests.labels(result="success").inc()
        return response
    return wrapper


def forget_login_state(response: Response) -> Response:
    # A callback is the end of a sign-in, whatever its outcome.
    if request.path == "/auth/callback":
        cookies.clear_login(response, platform().settings)
    return response


# -- OpenID Connect ----------------------------------------------------------------------
def _oidc() -> OidcClient:
    client = platform().services.get(OIDC_SERVICE)
    if client is None:
        raise NotFound("no identity provider is configured")
    return client


def _redirect_uri() -> str:
    return public_origin() + "/auth/callback"


def login() -> Response:
    settings = platform().settings
    target = checked_next(request.args.get("next"))
    if not settings.oidc_configured:
        if settings.dev_login_enabled:
            return dev_login_form(target)
        raise NotFound("no identity provider is configured")
    try:
        auth = _oidc().authorization_request(_redirect_uri())
    except ProviderUnavailable:
        raise ApiError(503, "provider_unavailable",
                       "the identity provider cannot be reached; try again shortly") from None
    state = platform().signer.sign(LOGIN_TOKEN, auth.state, cookies.LOGIN_TTL_SECONDS,
                                   nonce=auth.nonce, verifier=auth.verifier, next=target)
    response = redirect(auth.url, code=302)
    cookies.set_login(response, settings, state)
    return response


def _login_state() -> dict:
    try:
        return platform().signer.verify(request.cookies.get(cookies.LOGIN_COOKIE), LOGIN_TOKEN,
                                        ("nonce", "verifier", "next"))
    except InvalidToken:
        raise ApiError(400, "login_expired", "this sign-in expired or began in another "
                       "browser; start again") from None


def callback() -> Response:
    client = _oidc()
    args = request.args
    if "error" in args:
        raise ApiError(403, "provider_refused", "the identity provider did not sign you in")
    login_state = _login_state()
    state = args.get("state", "")
    if not hmac.compare_digest(state.encode(), str(login_state["sub"]).encode()):
        raise ApiError(400, "state_mismatch", "this answer belongs to another sign-in")
    if not all(isinstance(login_state[k], str) and login_state[k]
               for k in ("nonce", "verifier", "next")):
        raise ApiError(400, "login_expired", "this sign-in is incomplete; start again")
    try:
        if "iss" in args and args["iss"] != client.issuer:  # RFC 9207 mix-up defence
            raise ApiError(400, "wrong_issuer", "this answer came from another provider")
        code = args.get("code")
        if not code:
            raise ApiError(400, "no_code", "the identity provider sent no code")
        expires = datetime.fromtimestamp(login_state["exp"], UTC)
        if not platform().store.use_once("oidc_login", state, expires):
            # The state carries the nonce and verifier: consuming it consumes them.
            raise ApiError(400, "login_replayed", "this sign-in was already used")
        tokens = client.exchange(code, login_state["verifier"], _redirect_uri())
        claims = client.verify_id_token(tokens.get("id_token"), login_state["nonce"])
        issuer = client.issuer
    except ProviderUnavailable:
        raise ApiError(503, "provider_unavailable",
                       "the identity provider cannot be reached; try again shortly") from None
    except CodeRejected:
        raise ApiError(400, "code_rejected", "the identity provider refused the sign-in "
                       "code; start again") from None
    except BadIdToken as err:
        # The reason (expired, wrong audience...) helps an operator and tells nothing
        # an attacker holding the token does not know.
        raise ApiError(401, "bad_id_token", f"the identity token failed verification: {err}"
                       ) from None
    refused = denial(platform().settings, claims, issuer)
    if refused:
        raise ApiError(403, "not_allowed", refused)
    email = claims["email"].lower()
    if len(email) > 320:
        raise ApiError(403, "not_allowed", "the email address is too long")
    user = User(id=oidc_user_id(claims["sub"]), email=email, name=_name(claims),
                role=_role_for(email))
    return _sign_in(user, login_state["next"])


def oidc_user_id(subject: str) -> str:
    """The provider's subject when it is a valid user id (Google's are), else a digest."""
    if USER_ID.match(subject):
        return subject
    return "u-" + hashlib.sha256(subject.encode()).hexdigest()[:40]


def _name(claims: dict) -> str:
    name = claims.get("name")
    return name[:200] if isinstance(name, str) else ""


def _role_for(email: str) -> Role:
    return Role.ADMIN if is_admin_email(platform().settings, email) else Role.USER


def _sign_in(user: User, target: str) -> Response:
    """Record the sign-in and answer with the session cookie and a redirect."""
    p = platform()
    existing = p.store.get_user(user.id)
    if existing is not None and existing.disabled:
        raise ApiError(403, "account_disabled", "this account is disabled")
    stored = p.store.upsert_user(user, login_at=datetime.now(UTC))
    if stored.disabled:  # disabled between the two reads
        raise ApiError(403, "account_disabled", "this account is disabled")
    token = p.sessions.issue(stored, p.settings.token_expire_hours * 3600)
    response = redirect(target, code=303)
    cookies.set_session(response, p.settings, token)
    return response


# -- dev login ---------------------------------------------------------------------------
DEV_FORM = """<!doctype html><meta charset="utf-8"><title>CMBCluster: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<body style="font-family:sans-serif;max-width:32em;margin:4em auto;line-height:1.5">
<h1>Sign in to CMBCluster</h1>
<p>Local development sign-in: no identity provider is configured and the platform
listens on this machine only, so any user name signs you in.</p>
<form method="post" action="/auth/dev-login">
<input type="hidden" name="next" value="{next}">
<label>User name <input name="username" required pattern="[a-z0-9][a-z0-9_\\-]{{0,63}}"
 autofocus autocomplete="username"></label> <button type="submit">Sign in</button></form>
</body>
"""


def dev_login_form(target: str) -> Response:
    return Response(DEV_FORM.format(next=html.escape(target)), mimetype="text/html")


def dev_login() -> Response:
    settings = platform().settings
    if not settings.dev_login_enabled:
        raise NotFound()
    username = request.form.get("username", "").strip().lower()
    if not DEV_USERNAME.match(username):
        raise ApiError(400, "bad_username", "expected 1-64 of a-z 0-9 _ -, starting with a "
                       "letter or digit")
    email = f"{username}@localhost"
    admin = is_admin_email(settings, email) or username in settings.admin_emails
    user = User(id=username, email=email, name=username, role=Role.ADMIN if admin else Role.USER)
    response = _sign_in(user, checked_next(request.form.get("next")))
    platform().store.audit(AuditEntry(actor=username, action="dev_login", target=username,
                                      detail={"address": request.remote_addr or ""}))
    return response


# -- sign-out and identity ---------------------------------------------------------------
def logout() -> Response:
    p = platform()
    try:
        _, user = p.sessions.user(session_token())
    except InvalidToken:
        user = None  # nothing to revoke; an old cookie cannot sign anyone else out
    if user is not None:
        # Revoke every token of this user, not just this cookie: a copied cookie dies too.
        revoked = p.store.update_user(user.id, revoke_tokens=True)
        if revoked is not None:
            p.sessions.remember(revoked)
    # A browser form (the hub's "Sign out" button) names where to land next; an API
    # client sends no `next` and gets JSON. safe_next keeps it to a path on this site.
    target = request.form.get("next") or request.args.get("next")
    response = (redirect(safe_next(target), code=303) if target
                else jsonify({"signed_out": True}))
    cookies.clear_session(response, p.settings)
    return response


def me() -> Response:
    _, user = current_user()
    return jsonify({"id": user.id, "email": user.email, "name": user.name,
                    "role": str(user.role)})

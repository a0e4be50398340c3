"""The whole sign-in against a real OpenID provider, from /auth/login to /api/me."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests

from functions.core.metrics import REGISTRY
from functions.core.sessions import SESSION_COOKIE

from .oidc_rig import CLIENT_ID, provider_login, session_cookie_set


def auth_count(result: str) -> float:
    return REGISTRY.get_sample_value("cmbcluster_authentication_requests_total",
                                     {"result": result}) or 0.0


def test_sign_in_to_me(oidc, make_hub):
    hub = make_hub(oidc.main)
    before = auth_count("success")
    with requests.Session() as browser:
        auth_url = hub.start_login(browser, "/environments?tab=mine")
        query = parse_qs(urlsplit(auth_url).query)
        assert auth_url.startswith(oidc.main.metadata["authorization_endpoint"])
        assert query["client_id"] == [CLIENT_ID]
        assert query["response_type"] == ["code"]
        assert query["code_challenge_method"] == ["S256"]
        assert query["state"][0] and query["nonce"][0] and query["code_challenge"][0]
        assert query["redirect_uri"] == [f"{hub.url}/auth/callback"]

        resp = hub.finish(browser, provider_login(browser, auth_url, "alice", hub.url))
        assert resp.status_code == 303, resp.text
        assert resp.headers["Location"] == "/environments?tab=mine"
        assert session_cookie_set(resp)

        me = browser.get(f"{hub.url}/api/me", timeout=10)
        assert me.status_code == 200
        assert me.json() == {"id": "alice", "email": "alice@uni.example",
                             "name": "Alice Analyst", "role": "user"}
    assert auth_count("success") == before + 1
    assert hub.store.get_user("alice").last_login is not None


def test_session_cookie_attributes(oidc, make_hub):
    hub = make_hub(oidc.main, TOKEN_EXPIRE_HOURS="2")
    with requests.Session() as browser:
        resp = hub.sign_in(browser, "alice")
    (cookie,) = [h for h in resp.raw.headers.getlist("Set-Cookie")
                 if h.startswith(SESSION_COOKIE + "=")]
    attrs = [a.strip().lower() for a in cookie.split(";")[1:]]
    assert "httponly" in attrs
    assert "samesite=lax" in attrs
    assert "path=/" in attrs
    assert "max-age=7200" in attrs
    assert not any(a.startswith("domain") for a in attrs)  # host-only
    assert "secure" not in attrs  # plain http here; https PUBLIC_URL adds it (dev tests)


def test_admin_emails_make_admins(oidc, make_hub):
    hub = make_hub(oidc.main, ADMIN_EMAILS="Root@Uni.Example")
    with requests.Session() as browser:
        assert hub.sign_in(browser, "root").status_code == 303
        assert browser.get(f"{hub.url}/api/me", timeout=10).json()["role"] == "admin"
        assert browser.get(f"{hub.url}/api/admin/users", timeout=10).status_code == 200


def test_allow_lists_admit_listed_domain_and_email(oidc, make_hub):
    hub = make_hub(oidc.main, ALLOWED_EMAIL_DOMAINS="uni.example",
                   ALLOWED_EMAILS="bob@gmail.example")
    for account in ("alice", "bob"):
        with requests.Session() as browser:
            resp = hub.sign_in(browser, account)
            assert resp.status_code == 303, resp.text
            assert session_cookie_set(resp)


def test_logout_clears_cookie_and_revokes(oidc, make_hub):
    hub = make_hub(oidc.main)
    with requests.Session() as browser:
        hub.sign_in(browser, "alice")
        old = browser.cookies.get(SESSION_COOKIE)
        resp = browser.post(f"{hub.url}/auth/logout", timeout=10)
        assert resp.status_code == 200
        assert SESSION_COOKIE not in browser.cookies
        assert browser.get(f"{hub.url}/api/me", timeout=10).status_code == 401
    # The old cookie, replayed from elsewhere, is dead too.
    resp = requests.get(f"{hub.url}/api/me", cookies={SESSION_COOKIE: old}, timeout=10)
    assert resp.status_code == 401
    assert resp.json()["error"] == "not_signed_in"


def test_signing_in_again_after_logout_works(oidc, make_hub):
    hub = make_hub(oidc.main)
    with requests.Session() as browser:
        hub.sign_in(browser, "alice")
        browser.post(f"{hub.url}/auth/logout", timeout=10)
        assert hub.sign_in(browser, "alice").status_code == 303
        assert browser.get(f"{hub.url}/api/me", timeout=10).status_code == 200


def test_provider_down_at_start_then_back(oidc, make_hub):
    # The app starts with an unreachable provider and answers 503, not 500, until it is up.
    hub = make_hub(oidc.main, metadata_url="http://127.0.0.1:9/.well-known/openid-configuration")
    with requests.Session() as browser:
        resp = browser.get(f"{hub.url}/auth/login", allow_redirects=False, timeout=10)
        assert resp.status_code == 503
        assert resp.json()["error"] == "provider_unavailable"
        assert not session_cookie_set(resp)
    hub = make_hub(oidc.main)
    with requests.Session() as browser:
        assert hub.sign_in(browser, "alice").status_code == 303

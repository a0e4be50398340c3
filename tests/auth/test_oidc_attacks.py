"""Attacks on the OpenID Connect callback. Each must end in a clear 4xx and no session.

The ID tokens here are all real, made by a running oidc-provider: for another client,
by a provider with a slow clock, by a provider with another issuer, or a real token with
one byte changed. The token relay (oidc_rig.TokenRelay) delivers them in place of the one
the main provider sent.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests

from functions.auth.cookies import LOGIN_COOKIE
from functions.core.metrics import REGISTRY
from functions.core.sessions import SESSION_COOKIE
from functions.core.tokens import TokenSigner

from .oidc_rig import (
    OTHER_CLIENT_ID,
    OTHER_CLIENT_SECRET,
    SECRET_KEY,
    provider_login,
    session_cookie_set,
)


def refused(resp: requests.Response, status: int, error: str, browser=None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == error, body
    assert not session_cookie_set(resp)
    if browser is not None:
        assert SESSION_COOKIE not in browser.cookies
    return body


def nonce_of(auth_url: str) -> str:
    return parse_qs(urlsplit(auth_url).query)["nonce"][0]


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def replace_cookie(browser: requests.Session, name: str, value: str, path: str) -> None:
    for cookie in list(browser.cookies):
        if cookie.name == name:
            browser.cookies.clear(cookie.domain, cookie.path, cookie.name)
    browser.cookies.set(name, value, path=path)


def swapped_sign_in(hub, relay, account: str, make_token) -> tuple[requests.Response, object]:
    """Sign in through the relay, which hands the callback `make_token(real, nonce)`."""
    browser = requests.Session()
    auth_url = hub.start_login(browser)
    nonce = nonce_of(auth_url)
    relay.swap = lambda real: make_token(real, nonce)
    return hub.finish(browser, provider_login(browser, auth_url, account, hub.url)), browser


def test_tampered_id_token(oidc, relay, make_hub):
    hub = make_hub(oidc.main, metadata_url=relay.metadata_url)

    def tamper(real: str, nonce: str) -> str:
        header, payload, signature = real.split(".")
        # Well-formed claims naming another person; the signature is the original one.
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims |= {"sub": "root", "email": "root@uni.example"}
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        return ".".join((header, forged, signature))

    resp, browser = swapped_sign_in(hub, relay, "alice", tamper)
    body = refused(resp, 401, "bad_id_token", browser)
    assert "signature" in body["message"].lower()
    assert hub.store.get_user("root") is None


def test_relay_passes_an_untouched_token(oidc, relay, make_hub):
    # The rig itself: without a swap the relay is invisible, so the refusals above and
    # below are due to the swapped token, not to the relay.
    hub = make_hub(oidc.main, metadata_url=relay.metadata_url)
    resp, _ = swapped_sign_in(hub, relay, "alice", lambda real, nonce: real)
    assert resp.status_code == 303 and session_cookie_set(resp)


def test_wrong_audience(oidc, relay, make_hub):
    hub = make_hub(oidc.main, metadata_url=relay.metadata_url)
    # A genuine token from the same provider, made for another application.
    resp, browser = swapped_sign_in(hub, relay, "alice", lambda real, nonce: oidc.main.id_token(
        "alice", nonce, f"{hub.url}/auth/callback", client_id=OTHER_CLIENT_ID,
        client_secret=OTHER_CLIENT_SECRET))
    body = refused(resp, 401, "bad_id_token", browser)
    assert "audience" in body["message"].lower()


def test_wrong_issuer(oidc, relay, make_hub):
    hub = make_hub(oidc.main, metadata_url=relay.metadata_url)
    # Signed with the very same key, by a provider with another issuer.
    resp, browser = swapped_sign_in(hub, relay, "alice", lambda real, nonce: (
        oidc.other_issuer.id_token("alice", nonce, f"{hub.url}/auth/callback")))
    body = refused(resp, 401, "bad_id_token", browser)
    assert "issuer" in body["message"].lower()


def test_expired_id_token(oidc, relay, make_hub):
    hub = make_hub(oidc.main, metadata_url=relay.metadata_url)
    # Same issuer, same key, a clock ten minutes slow: the token expired before it came.
    resp, browser = swapped_sign_in(hub, relay, "alice", lambda real, nonce: (
        oidc.slow_clock.id_token("alice", nonce, f"{hub.url}/auth/callback")))
    body = refused(resp, 401, "bad_id_token", browser)
    assert "expired" in body["message"].lower()


def test_id_token_from_an_earlier_sign_in(oidc, relay, make_hub):
    # A real token with the nonce of another sign-in is refused for this one.
    hub = make_hub(oidc.main, metadata_url=relay.metadata_url)
    old = oidc.main.id_token("alice", "an-earlier-nonce", f"{hub.url}/auth/callback")
    resp, browser = swapped_sign_in(hub, relay, "alice", lambda real, nonce: old)
    body = refused(resp, 401, "bad_id_token", browser)
    assert "nonce" in body["message"]


def test_replayed_callback(oidc, make_hub):
    hub = make_hub(oidc.main)
    with requests.Session() as browser:
        callback = provider_login(browser, hub.start_login(browser), "alice", hub.url)
        login_cookie = browser.cookies.get(LOGIN_COOKIE)
        assert hub.finish(browser, callback).status_code == 303
    # The same answer and the same login cookie, a second time (another browser).
    with requests.Session() as attacker:
        attacker.cookies.set(LOGIN_COOKIE, login_cookie, path="/auth")
        refused(hub.finish(attacker, callback), 400, "login_replayed", attacker)


def test_state_mismatch(oidc, make_hub):
    hub = make_hub(oidc.main)
    with requests.Session() as browser:
        callback = provider_login(browser, hub.start_login(browser), "alice", hub.url)
        refused(hub.finish(browser, with_query(callback, state="forged-state")), 400,
                "state_mismatch", browser)


def test_callback_in_a_browser_that_did_not_start_the_sign_in(oidc, make_hub):
    # Login CSRF: the attacker's own callback URL opened in the victim's browser.
    hub = make_hub(oidc.main)
    with requests.Session() as attacker:
        callback = provider_login(attacker, hub.start_login(attacker), "eve", hub.url)
    with requests.Session() as victim:
        refused(hub.finish(victim, callback), 400, "login_expired", victim)


def test_missing_pkce_verifier(oidc, make_hub):
    # A login cookie without its verifier (signed with the real key) is refused before
    # the code goes anywhere.
    hub = make_hub(oidc.main)
    with requests.Session() as browser:
        auth_url = hub.start_login(browser)
        callback = provider_login(browser, auth_url, "alice", hub.url)
        state = parse_qs(urlsplit(auth_url).query)["state"][0]
        forged = TokenSigner(SECRET_KEY).sign("login", state, 600, nonce=nonce_of(auth_url),
                                              next="/")
        replace_cookie(browser, LOGIN_COOKIE, forged, "/auth")
        refused(hub.finish(browser, callback), 400, "login_expired", browser)


def test_code_injected_into_another_sign_in(oidc, make_hub):
    # A code issued for one sign-in's PKCE challenge, replayed into another sign-in
    # (whose verifier does not match): the real provider refuses the exchange.
    hub = make_hub(oidc.main)
    with requests.Session() as attacker:
        stolen = provider_login(attacker, hub.start_login(attacker), "eve", hub.url)
    with requests.Session() as victim:
        auth_url = hub.start_login(victim)
        state = parse_qs(urlsplit(auth_url).query)["state"][0]
        refused(hub.finish(victim, with_query(stolen, state=state)), 400, "code_rejected",
                victim)


def test_provider_enforces_pkce(oidc, hub_server):
    # The provider these tests run against requires PKCE, as the issue asks of the flow.
    _, hub_url = hub_server
    query = urlencode({"client_id": "cmbcluster", "response_type": "code", "scope": "openid",
                       "redirect_uri": f"{hub_url}/auth/callback", "nonce": "n", "state": "s"})
    resp = requests.get(f"{oidc.main.metadata['authorization_endpoint']}?{query}",
                        allow_redirects=False, timeout=10)
    assert resp.status_code == 303
    error = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert error["error"] == ["invalid_request"]
    assert "PKCE" in error["error_description"][0]


def test_callback_without_code(oidc, make_hub):
    hub = make_hub(oidc.main)
    with requests.Session() as browser:
        callback = provider_login(browser, hub.start_login(browser), "alice", hub.url)
        refused(hub.finish(browser, with_query(callback, code=None)), 400, "no_code", browser)


def test_callback_from_another_issuer(oidc, make_hub):
    # RFC 9207: the `iss` in the answer names the provider that sent it.
    hub = make_hub(oidc.main)
    with requests.Session() as browser:
        callback = provider_login(browser, hub.start_login(browser), "alice", hub.url)
        refused(hub.finish(browser, with_query(callback, iss="https://evil.example")), 400,
                "wrong_issuer", browser)


def test_provider_error_answer(oidc, make_hub):
    hub = make_hub(oidc.main)
    with requests.Session() as browser:
        auth_url = hub.start_login(browser)
        state = parse_qs(urlsplit(auth_url).query)["state"][0]
        resp = hub.finish(browser, f"{hub.url}/auth/callback?error=access_denied&state={state}")
        refused(resp, 403, "provider_refused", browser)


@pytest.mark.parametrize(("account", "env"), [
    ("eve", {"ALLOWED_EMAIL_DOMAINS": "uni.example"}),
    ("bob", {"ALLOWED_EMAIL_DOMAINS": "uni.example", "ALLOWED_EMAILS": "carol@gmail.example"}),
    ("wronghd", {"ALLOWED_EMAIL_DOMAINS": "uni.example"}),
], ids=["domain-not-listed", "email-not-listed", "hosted-domain-not-listed"])
def test_disallowed_domain(oidc, make_hub, account, env):
    hub = make_hub(oidc.main, **env)
    with requests.Session() as browser:
        refused(hub.sign_in(browser, account), 403, "not_allowed", browser)
    assert hub.store.get_user(account) is None


def test_unverified_email(oidc, make_hub):
    hub = make_hub(oidc.main)
    denied = REGISTRY.get_sample_value("cmbcluster_authentication_requests_total",
                                       {"result": "denied"}) or 0.0
    with requests.Session() as browser:
        body = refused(hub.sign_in(browser, "unverified"), 403, "not_allowed", browser)
    assert "not verified" in body["message"]
    assert REGISTRY.get_sample_value("cmbcluster_authentication_requests_total",
                                     {"result": "denied"}) == denied + 1


def test_disabled_user(oidc, make_hub):
    hub = make_hub(oidc.main)
    with requests.Session() as browser:
        assert hub.sign_in(browser, "alice").status_code == 303
        hub.store.update_user("alice", disabled=True)
        # The cookie stops working at once ...
        assert browser.get(f"{hub.url}/api/me", timeout=10).status_code == 401
    with requests.Session() as browser:  # ... and signing in again is refused.
        refused(hub.sign_in(browser, "alice"), 403, "account_disabled", browser)


def test_rate_limited_login(oidc, make_hub):
    hub = make_hub(oidc.main, CMBCLUSTER_LOGIN_RATE_LIMIT="2/60")
    with requests.Session() as browser:
        hub.start_login(browser)
        hub.start_login(browser)
        resp = browser.get(f"{hub.url}/auth/login", allow_redirects=False, timeout=10)
        refused(resp, 429, "rate_limited", browser)
        assert int(resp.headers["Retry-After"]) >= 1


OPEN_REDIRECTS = [
    "//evil.example/", "///evil.example", "/\\evil.example", "\\\\evil.example",
    "https://evil.example/", "http:evil.example", "javascript:alert(1)", "evil.example",
    "/%2f%2fevil.example", "/%2F%2Fevil.example", "%2f%2fevil.example",
    "/%5cevil.example", "/%5Cevil.example", "/%252f%252fevil.example",
    "/\t/evil.example", "/\n/evil.example", "/%09/evil.example", "/%0d%0a/evil.example",
    " //evil.example", "/ /evil.example", "/\x00/evil.example", "/\u3002evil.example",
    "//evil.example@hub/", "https:/\\evil.example", "/.\\/evil.example", "",
]


@pytest.mark.parametrize("target", [t for t in OPEN_REDIRECTS if t])
def test_open_redirect_in_next_is_refused_before_sign_in(oidc, make_hub, target):
    hub = make_hub(oidc.main)
    with requests.Session() as browser:
        resp = browser.get(f"{hub.url}/auth/login", params={"next": target},
                           allow_redirects=False, timeout=10)
    assert resp.status_code == 400 and resp.json()["error"] == "bad_next"
    assert "Set-Cookie" not in resp.headers  # no sign-in started, no session


def test_no_next_lands_on_the_home_page(oidc, make_hub):
    hub = make_hub(oidc.main)
    with requests.Session() as browser:
        resp = hub.sign_in(browser, "alice", next_path="")
    assert resp.status_code == 303 and resp.headers["Location"] == "/"

"""The dev login: only without an OIDC client and on loopback; rate-limited like the rest."""

from __future__ import annotations

import pytest

from functions.auth.app import create_app
from functions.core.config import ConfigError, load_settings
from functions.core.platform import build_platform
from functions.core.sessions import SESSION_COOKIE
from functions.core.store.sqlite import SqliteStore

from .oidc_rig import SECRET_KEY


@pytest.fixture
def make_client(tmp_path):
    stores = []

    def make(**env):
        settings = load_settings({"SECRET_KEY": SECRET_KEY, "HOST": "127.0.0.1",
                                  "CMBCLUSTER_DATA_DIR": str(tmp_path)} | env)
        stores.append(SqliteStore(tmp_path / f"dev{len(stores)}.db"))
        platform = build_platform(settings, stores[-1])
        return create_app(platform).test_client(), platform

    yield make
    for store in stores:
        store.close()


def session_cookie(resp) -> str | None:
    for header in resp.headers.getlist("Set-Cookie"):
        if header.startswith(SESSION_COOKIE + "="):
            return header
    return None


def test_dev_login_signs_in(make_client):
    client, platform = make_client()
    resp = client.post("/auth/dev-login", data={"username": "Ada", "next": "/launch"})
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/launch"
    assert session_cookie(resp)
    me = client.get("/api/me")
    assert me.json == {"id": "ada", "email": "ada@localhost", "name": "ada", "role": "user"}
    assert platform.store.list_audit().items[0].action == "dev_login"


def test_dev_login_form_on_login_page(make_client):
    client, _ = make_client()
    resp = client.get("/auth/login?next=/x%22%3E%3Cscript%3E")
    assert resp.status_code == 200
    assert 'name="username"' in resp.text
    assert "<script>" not in resp.text


@pytest.mark.parametrize("admin_emails", ["ada", "ada@localhost"])
def test_dev_login_admin(make_client, admin_emails):
    client, _ = make_client(ADMIN_EMAILS=admin_emails)
    client.post("/auth/dev-login", data={"username": "ada"})
    assert client.get("/api/me").json["role"] == "admin"


@pytest.mark.parametrize("username", ["", "-ada", "ada/../root", "a" * 65, "ada@x", "ad a"])
def test_dev_login_bad_username(make_client, username):
    client, _ = make_client()
    resp = client.post("/auth/dev-login", data={"username": username})
    assert resp.status_code == 400
    assert resp.json["error"] == "bad_username"
    assert session_cookie(resp) is None


def test_dev_login_absent_with_an_oidc_client(make_client):
    client, _ = make_client(OIDC_CLIENT_ID="cmbcluster", OIDC_CLIENT_SECRET="s",
                            OIDC_SERVER_METADATA_URL="http://127.0.0.1:9/none")
    resp = client.post("/auth/dev-login", data={"username": "ada"})
    assert resp.status_code == 404
    assert session_cookie(resp) is None


def test_no_client_and_no_loopback_refuses_to_start():
    with pytest.raises(ConfigError, match="HOST"):
        load_settings({"HOST": "0.0.0.0", "SECRET_KEY": SECRET_KEY})


def test_dev_login_rate_limited(make_client):
    client, _ = make_client(CMBCLUSTER_LOGIN_RATE_LIMIT="3/60")
    for _ in range(3):
        assert client.post("/auth/dev-login", data={"username": "ada"}).status_code == 303
    resp = client.post("/auth/dev-login", data={"username": "ada"})
    assert resp.status_code == 429
    assert resp.json["error"] == "rate_limited"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert session_cookie(resp) is None
    # Per client address: another client is not held back.
    other = client.post("/auth/dev-login", data={"username": "ada"},
                        headers={"X-Forwarded-For": "192.0.2.7"})
    assert other.status_code == 303


def test_bad_rate_limit_setting(make_client):
    with pytest.raises(ConfigError, match="CMBCLUSTER_LOGIN_RATE_LIMIT"):
        make_client(CMBCLUSTER_LOGIN_RATE_LIMIT="lots")


def test_secure_cookie_under_https(make_client):
    client, _ = make_client(PUBLIC_URL="https://hub.example")
    resp = client.post("/auth/dev-login", data={"username": "ada"})
    attrs = [a.strip().lower() for a in session_cookie(resp).split(";")]
    assert "secure" in attrs and "httponly" in attrs and "samesite=lax" in attrs


def test_cross_site_dev_login_refused(make_client):
    client, _ = make_client()
    resp = client.post("/auth/dev-login", data={"username": "ada"},
                       headers={"Origin": "https://evil.example"})
    assert resp.status_code == 403
    assert session_cookie(resp) is None


def test_logout_without_session(make_client):
    client, _ = make_client()
    resp = client.post("/auth/logout")
    assert resp.status_code == 200


def test_me_not_signed_in(make_client):
    client, _ = make_client()
    resp = client.get("/api/me")
    assert resp.status_code == 401
    assert resp.json["error"] == "not_signed_in"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil",
                                    "/%2f%2fevil.example"])
def test_dev_login_refuses_an_open_redirect(make_client, target):
    client, _ = make_client()
    resp = client.post("/auth/dev-login", data={"username": "ada", "next": target})
    assert resp.status_code == 400 and resp.get_json()["error"] == "bad_next"
    assert "Set-Cookie" not in resp.headers

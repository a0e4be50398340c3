"""The admin user API: administrators only, audited, no self-lockout."""

from __future__ import annotations

import pytest

from functions.admin.app import create_app as admin_app
from functions.auth.app import create_app as auth_app
from functions.core.config import load_settings
from functions.core.models import Role, User
from functions.core.platform import build_platform
from functions.core.sessions import SESSION_COOKIE
from functions.core.store.sqlite import SqliteStore

from .oidc_rig import SECRET_KEY


class Api:
    """The admin API with a signed-in user's cookie (made by the dev login)."""

    def __init__(self, admin, auth, username: str):
        self.admin = admin.test_client()
        resp = auth.test_client().post("/auth/dev-login", data={"username": username})
        assert resp.status_code == 303
        token = resp.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        self.admin.set_cookie(SESSION_COOKIE, token)

    def __getattr__(self, method):
        return getattr(self.admin, method)


@pytest.fixture
def hub(tmp_path):
    settings = load_settings({"SECRET_KEY": SECRET_KEY, "CMBCLUSTER_DATA_DIR": str(tmp_path),
                              "ADMIN_EMAILS": "root"})
    store = SqliteStore(tmp_path / "admin.db")
    platform = build_platform(settings, store)
    admin, auth = admin_app(platform), auth_app(platform)
    yield platform, (lambda username: Api(admin, auth, username))
    store.close()


def test_non_admin_is_refused(hub):
    platform, api = hub
    alice = api("alice")
    for resp in (alice.get("/api/admin/users"), alice.get("/api/admin/audit"),
                 alice.patch("/api/admin/users/alice", json={"role": "admin"})):
        assert resp.status_code == 403
        assert resp.json["error"] == "forbidden"
    assert platform.store.get_user("alice").role == Role.USER


def test_not_signed_in_is_401(hub):
    platform, api = hub
    client = api("root").admin.application.test_client()
    assert client.get("/api/admin/users").status_code == 401


def test_list_users_paginates(hub):
    platform, api = hub
    for name in ("u1", "u2", "u3"):
        platform.store.upsert_user(User(id=name, email=f"{name}@x.example"))
    root = api("root")
    first = root.get("/api/admin/users?limit=2").json
    assert [u["id"] for u in first["users"]] == ["root", "u1"]
    second = root.get(f"/api/admin/users?limit=2&cursor={first['next_cursor']}").json
    assert [u["id"] for u in second["users"]] == ["u2", "u3"]
    assert second["next_cursor"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=x", "limit=-1",
                                   "cursor=not-a-cursor"])
def test_list_users_bad_paging(hub, query):
    _, api = hub
    resp = api("root").get(f"/api/admin/users?{query}")
    assert resp.status_code == 400


def test_grant_and_revoke_admin_is_audited(hub):
    platform, api = hub
    alice_session = api("alice")
    root = api("root")
    resp = root.patch("/api/admin/users/alice", json={"role": "admin"})
    assert resp.status_code == 200
    assert resp.json["user"]["role"] == "admin"
    assert alice_session.get("/api/admin/users").status_code == 200

    assert root.patch("/api/admin/users/alice", json={"role": "user"}).status_code == 200
    # Demotion revokes the tokens that still say "admin".
    assert alice_session.get("/api/admin/users").status_code == 401

    entries = root.get("/api/admin/audit").json["entries"]
    updates = [e for e in entries if e["action"] == "user.update"]
    assert [e["detail"]["role"] for e in updates] == [
        {"from": "admin", "to": "user"}, {"from": "user", "to": "admin"}]
    assert all(e["actor"] == "root" and e["target"] == "alice" for e in updates)


def test_disable_stops_sessions_at_once(hub):
    platform, api = hub
    alice = api("alice")
    root = api("root")
    assert alice.get("/api/admin/users").status_code == 403  # signed in, not admin
    assert root.patch("/api/admin/users/alice", json={"disabled": True}).status_code == 200
    assert alice.get("/api/admin/users").status_code == 401
    assert platform.store.get_user("alice").disabled


@pytest.mark.parametrize("body", [{"disabled": True}, {"role": "user"}])
def test_admin_cannot_lock_themself_out(hub, body):
    platform, api = hub
    resp = api("root").patch("/api/admin/users/root", json=body)
    assert resp.status_code == 409
    user = platform.store.get_user("root")
    assert user.is_admin and not user.disabled


def test_unknown_user(hub):
    _, api = hub
    resp = api("root").patch("/api/admin/users/nobody", json={"role": "admin"})
    assert resp.status_code == 404


@pytest.mark.parametrize("body", [{}, {"role": "owner"}, {"role": 1}, {"disabled": "yes"},
                                  {"disabled": 1}, {"email": "x@y"}, [1], "text"])
def test_bad_values(hub, body):
    platform, api = hub
    api("alice")
    resp = api("root").patch("/api/admin/users/alice", json=body)
    assert resp.status_code == 400
    assert platform.store.get_user("alice").role == Role.USER


def test_audit_bad_cursor(hub):
    _, api = hub
    assert api("root").get("/api/admin/audit?cursor=%%%").status_code == 400

"""Environments on their own hosts: the handoff from the hub's session to an
environment's own cookie, and everything an attacker might try along the way."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from functions.auth.app import create_app as auth_app
from functions.core import env_access
from functions.core.config import load_settings
from functions.core.models import Environment, State, User, new_environment_id
from functions.core.platform import build_platform
from functions.core.sessions import SESSION_COOKIE
from functions.core.store.sqlite import SqliteStore
from functions.route.app import create_app as route_app

APPS = "apps.example.org"
HUB = "cmb.example.org"


@pytest.fixture
def world(tmp_path):
    settings = load_settings({"CMBCLUSTER_DATA_DIR": str(tmp_path), "SECRET_KEY": "k" * 40,
                              "APPS_DOMAIN": APPS, "PUBLIC_URL": f"https://{HUB}"})
    plat = build_platform(settings, SqliteStore(tmp_path / "db"))
    users = {u: plat.store.upsert_user(User(u, f"{u}@x.org")) for u in ("alice", "bob")}
    envs = {}
    for owner in ("alice", "bob"):
        env = Environment(id=new_environment_id(), owner=owner, profile="small")
        plat.store.claim_environment(env, max_per_user=1, max_total=10)
        plat.store.transition(env.id, [State.PENDING], State.STARTING)
        url = f"https://{env.id}.{APPS}/user/{owner}/{env.id}/"
        plat.store.transition(env.id, [State.STARTING], State.RUNNING, url=url)
        envs[owner] = env.id
    hub, route = auth_app(plat).test_client(), route_app(plat).test_client(use_cookies=False)
    tokens = {u: plat.sessions.issue(user, 600) for u, user in users.items()}
    return plat, hub, route, envs, tokens


def ticket_for(hub, token: str, env_id: str, next_path: str = "") -> str:
    hub.set_cookie(SESSION_COOKIE, token)
    resp = hub.get(f"/auth/env-login?env={env_id}&next={next_path}")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    location = urlsplit(resp.headers["Location"])
    assert location.netloc == f"{env_id}.{APPS}"
    assert location.path == env_access.CALLBACK_PATH
    return parse_qs(location.query)["ticket"][0]


def redeem(route, env_id: str, ticket: str, next_path: str = "/"):
    return route.get(f"{env_access.CALLBACK_PATH}?ticket={ticket}&next={next_path}",
                     headers={"Host": f"{env_id}.{APPS}"})


def verify(route, env_id: str, owner: str, cookie: str | None, host: str | None = None):
    headers = {"X-Original-URL": f"https://{host or env_id + '.' + APPS}"
                                 f"/user/{owner}/{env_id}/_stcore/stream"}
    if cookie:
        headers["Cookie"] = f"{env_access.COOKIE}={cookie}"
    return route.get("/route/verify", headers=headers)


def access_cookie(resp) -> str:
    header = resp.headers["Set-Cookie"]
    assert "HttpOnly" in header and "Secure" in header and "Domain" not in header
    return header.split(";", 1)[0].split("=", 1)[1]


def test_the_owner_gets_in_through_the_handoff(world):
    plat, hub, route, envs, tokens = world
    env = envs["alice"]
    path = f"/user/alice/{env}/"
    resp = redeem(route, env, ticket_for(hub, tokens["alice"], env, path), path)
    assert resp.status_code == 302 and resp.headers["Location"] == path
    cookie = access_cookie(resp)
    ok = verify(route, env, "alice", cookie)
    assert ok.status_code == 200 and ok.headers["X-Auth-User"] == "alice"


def test_no_cookie_is_401_so_ingress_starts_the_handoff(world):
    _, _, route, envs, _ = world
    assert verify(route, envs["alice"], "alice", None).status_code == 401


def test_the_hub_session_is_not_an_environment_credential(world):
    _, _, route, envs, tokens = world
    env = envs["alice"]
    resp = route.get("/route/verify", headers={
        "X-Original-URL": f"https://{env}.{APPS}/user/alice/{env}/",
        "Cookie": f"{SESSION_COOKIE}={tokens['alice']}"})
    assert resp.status_code == 401


def test_no_ticket_for_someone_elses_environment(world):
    _, hub, _, envs, tokens = world
    hub.set_cookie(SESSION_COOKIE, tokens["alice"])
    assert hub.get(f"/auth/env-login?env={envs['bob']}").status_code == 404


def test_not_signed_in_goes_to_sign_in_first(world):
    _, hub, _, envs, _ = world
    resp = hub.get(f"/auth/env-login?env={envs['alice']}&next=/x")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/auth/login?next=")


def test_a_ticket_works_once(world):
    _, hub, route, envs, tokens = world
    env = envs["alice"]
    ticket = ticket_for(hub, tokens["alice"], env)
    assert redeem(route, env, ticket).status_code == 302
    replay = redeem(route, env, ticket)
    assert replay.status_code == 401 and "Set-Cookie" not in replay.headers


def test_a_ticket_or_cookie_for_one_environment_is_worthless_on_another(world):
    _, hub, route, envs, tokens = world
    alice_env, bob_env = envs["alice"], envs["bob"]
    ticket = ticket_for(hub, tokens["alice"], alice_env)
    assert redeem(route, bob_env, ticket).status_code == 401
    cookie = access_cookie(redeem(route, alice_env, ticket_for(hub, tokens["alice"], alice_env)))
    # alice's cookie replayed against bob's environment, on bob's host or on her own
    assert verify(route, bob_env, "bob", cookie).status_code == 401
    assert verify(route, bob_env, "bob", cookie, host=f"{alice_env}.{APPS}").status_code == 403
    assert verify(route, alice_env, "alice", cookie, host=f"evil.{APPS}").status_code == 403


def test_a_forged_or_session_token_is_not_a_ticket(world):
    _, _, route, envs, tokens = world
    env = envs["alice"]
    assert redeem(route, env, tokens["alice"]).status_code == 401
    assert redeem(route, env, "x.y.z").status_code == 401
    assert redeem(route, env, "").status_code == 401


def test_logout_revokes_environment_cookies_too(world):
    plat, hub, route, envs, tokens = world
    env = envs["alice"]
    cookie = access_cookie(redeem(route, env, ticket_for(hub, tokens["alice"], env)))
    assert verify(route, env, "alice", cookie).status_code == 200
    revoked = plat.store.update_user("alice", revoke_tokens=True)
    plat.sessions.remember(revoked)
    assert verify(route, env, "alice", cookie).status_code == 401


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil",
                                    "/user/alice/../bob/", "javascript:alert(1)"])
def test_the_handoff_lands_only_on_a_path_of_the_environment(world, target):
    _, hub, route, envs, tokens = world
    env = envs["alice"]
    resp = redeem(route, env, ticket_for(hub, tokens["alice"], env), target)
    assert resp.status_code == 302 and resp.headers["Location"] == "/"


def test_callback_only_on_environment_hosts(world):
    _, hub, route, envs, tokens = world
    ticket = ticket_for(hub, tokens["alice"], envs["alice"])
    resp = route.get(f"{env_access.CALLBACK_PATH}?ticket={ticket}", headers={"Host": HUB})
    assert resp.status_code == 404
    resp = route.get(f"{env_access.CALLBACK_PATH}?ticket={ticket}",
                     headers={"Host": f"a.b.{APPS}"})
    assert resp.status_code == 404

"""The admin environments API: everyone's environments, idle time, stop any of them."""

from __future__ import annotations

import pytest
import requests

from .test_launch import launch


@pytest.fixture(scope="module")
def setup(running):
    admin = running.session_for("root", role="admin")
    user = running.session_for("una")
    env = launch(running, user)
    assert env["state"] == "running"
    return admin, user, env


def test_admins_see_everyones_environments_with_idle_time(running, setup):
    admin, _, env = setup
    listed = admin.get(f"{running.url}/api/admin/environments?state=running").json()
    mine = next(e for e in listed["environments"] if e["id"] == env["id"])
    assert mine["owner"] == "una" and mine["idle_seconds"] >= 0
    assert "events" not in mine


@pytest.mark.parametrize("query,code", [
    ("state=zombie", "bad_state"), ("limit=0", "bad_limit"), ("limit=abc", "bad_limit"),
    ("cursor=!!!", "bad_cursor"),
])
def test_bad_listing_queries_are_400(running, setup, query, code):
    admin, _, _ = setup
    resp = admin.get(f"{running.url}/api/admin/environments?{query}")
    assert resp.status_code == 400 and resp.json()["error"] == code


def test_users_and_strangers_cannot_use_the_admin_api(running, setup):
    _, user, env = setup
    assert user.get(f"{running.url}/api/admin/environments").status_code == 403
    assert user.delete(f"{running.url}/api/admin/environments/{env['id']}").status_code == 403
    assert requests.get(f"{running.url}/api/admin/environments").status_code == 401
    assert running.platform.store.get_environment(env["id"]).state == "running"


def test_an_admin_stops_someone_elses_environment_and_it_is_audited(running, setup):
    admin, user, env = setup
    assert admin.delete(f"{running.url}/api/admin/environments/000000000000").status_code == 404
    stopped = admin.delete(f"{running.url}/api/admin/environments/{env['id']}").json()
    assert stopped["state"] == "stopped"
    assert stopped["reason"] == "stopped by administrator root@example.org"
    assert user.get(f"{running.url}/api/environments/{env['id']}").json()["reason"] == (
        "stopped by administrator root@example.org")
    audit = admin.get(f"{running.url}/api/admin/audit").json()["entries"]
    assert audit[0]["action"] == "environment.stop" and audit[0]["target"] == env["id"]
    assert running.platform.backend.route(env["id"]) is None

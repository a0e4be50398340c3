"""Launch and reach an environment through the local platform, with real processes."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from websockets.exceptions import InvalidStatus

from .streamlit_ws import rerun, streamlit_socket


def wait_running(http: requests.Session, url: str, env_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        env = http.get(f"{url}/api/environments/{env_id}").json()
        if env["state"] in ("running", "failed", "stopped"):
            return env
        time.sleep(0.1)
    raise AssertionError(f"environment {env_id} still {env['state']} after {timeout} s")


def launch(running, http: requests.Session, profile: str | None = None) -> dict:
    body = {} if profile is None else {"profile": profile}
    resp = http.post(f"{running.url}/api/environments", json=body)
    assert resp.status_code in (200, 202), resp.text
    return wait_running(http, running.url, resp.json()["id"])


def cookie_header(http: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


@pytest.fixture(scope="module")
def alice(running):
    return running.session_for("alice")


@pytest.fixture(scope="module")
def bob(running):
    return running.session_for("bob")


@pytest.fixture(scope="module")
def alice_env(running, alice):
    env = launch(running, alice)
    assert env["state"] == "running", env
    return env


@pytest.fixture(scope="module")
def bob_env(running, bob):
    env = launch(running, bob)
    assert env["state"] == "running", env
    return env


def test_each_user_reaches_their_own_environment_over_http(running, alice, alice_env,
                                                           bob, bob_env):
    for http, env in ((alice, alice_env), (bob, bob_env)):
        assert env["url"] == f"/user/{env['owner']}/{env['id']}/"
        page = http.get(running.url + env["url"])
        assert page.status_code == 200 and "<html" in page.text.lower()
        health = http.get(running.url + env["url"] + "_stcore/health")
        assert (health.status_code, health.text) == (200, "ok")


def test_each_user_runs_their_app_over_a_websocket(running, alice, alice_env):
    with streamlit_socket(running.url, alice_env["url"], cookie_header(alice)) as ws:
        kinds = rerun(ws)
    assert "new_session" in kinds and "delta" in kinds


def test_records_carry_phase_timings_and_progress(alice_env):
    assert {"scheduled", "container_started", "healthy"} <= set(alice_env["timings"])
    assert alice_env["events"][-1]["percent"] == 100
    assert alice_env["last_activity"] is not None


def test_a_user_cannot_reach_another_users_environment(running, alice, bob_env):
    resp = alice.get(running.url + bob_env["url"], allow_redirects=False)
    assert resp.status_code == 403
    with pytest.raises(InvalidStatus) as err, \
            streamlit_socket(running.url, bob_env["url"], cookie_header(alice)):
        pass
    assert err.value.response.status_code == 403


def test_a_users_own_path_cannot_carry_another_environment(running, alice, bob_env):
    # alice's name in the path, bob's environment id: the backend knows the real owner.
    resp = alice.get(f"{running.url}/user/alice/{bob_env['id']}/_stcore/health")
    assert resp.status_code == 403


@pytest.mark.parametrize("trick", [
    "/user/alice/{a}/../../bob/{b}/_stcore/health",
    "/user/alice/{a}/%2e%2e/%2e%2e/bob/{b}/_stcore/health",
    "/user/alice/{a}/%2E./%2E./bob/{b}/_stcore/health",
    "/user/alice/{a}/.%2e/.%2e/bob/{b}/_stcore/health",
    "/user/alice/{a}/..%2fbob/{b}/_stcore/health",
    "/user/alice/{a}/..%5c..%5cbob/{b}/_stcore/health",
    "/user/alice/{a}/%252e%252e/%252e%252e/bob/{b}/_stcore/health",
    "/user/alice/{a}/./_stcore/health",
    "/user//alice/{a}/_stcore/health",
    "/user/alice//{a}/_stcore/health",
    "/user/alice/{a}//_stcore/health",
    "/user/alice/{a}\\..\\..\\bob\\{b}/_stcore/health",
])
def test_path_tricks_never_route_to_another_environment(running, alice, alice_env, bob_env,
                                                        trick):
    path = trick.format(a=alice_env["id"], b=bob_env["id"])
    # Send the path exactly as written: requests would normalise the dot segments.
    req = requests.Request("GET", running.url + "/x", cookies=alice.cookies).prepare()
    req.url = running.url + path
    resp = alice.send(req, allow_redirects=False)
    assert resp.status_code in (400, 403, 404), (path, resp.status_code)
    assert resp.text != "ok"


def test_not_signed_in_browsers_are_sent_to_sign_in_and_back(running, alice_env):
    anon = requests.Session()
    page = anon.get(running.url + alice_env["url"], headers={"Accept": "text/html"},
                    allow_redirects=False)
    assert page.status_code == 302
    location = urlsplit(page.headers["Location"])
    assert location.path == "/auth/login"
    assert parse_qs(location.query) == {"next": [alice_env["url"]]}
    api = anon.get(running.url + alice_env["url"] + "_stcore/health")
    assert api.status_code == 401
    with pytest.raises(InvalidStatus) as err, streamlit_socket(running.url, alice_env["url"]):
        pass
    assert err.value.response.status_code == 401


def test_forged_and_foreign_cookies_are_refused(running, alice_env):
    forged = requests.Session()
    forged.cookies.set("cmbcluster_session", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.")
    assert forged.get(running.url + alice_env["url"] + "_stcore/health").status_code == 401


def test_double_click_gives_one_environment(running):
    carol = running.session_for("carol")
    results, barrier = [], threading.Barrier(2)

    def click():
        barrier.wait()
        results.append(carol.post(f"{running.url}/api/environments", json={}))

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [200, 202]
    assert len({r.json()["id"] for r in results}) == 1
    env = wait_running(carol, running.url, results[0].json()["id"])
    assert env["state"] == "running"
    listed = carol.get(f"{running.url}/api/environments").json()["environments"]
    assert [e["id"] for e in listed] == [env["id"]]
    servers = [s for s in running.platform.backend.servers() if s.owner == "carol"]
    assert len(servers) == 1
    carol.delete(f"{running.url}/api/environments/{env['id']}")


def test_stop_frees_the_slot_and_keeps_workspace_files(running, tmp_path):
    dave = running.session_for("dave")
    first = launch(running, dave)
    workspace = Path(running.platform.settings.data_dir) / "workspaces" / "dave"
    (workspace / "notes.txt").write_text("CMB TT peak near ell 220")
    stopped = dave.delete(f"{running.url}/api/environments/{first['id']}").json()
    assert stopped["state"] == "stopped" and stopped["reason"] == "stopped by its owner"
    assert running.platform.backend.route(first["id"]) is None
    gone = dave.get(running.url + first["url"] + "_stcore/health")
    assert gone.status_code == 503
    second = launch(running, dave)
    assert second["id"] != first["id"] and second["state"] == "running"
    assert (workspace / "notes.txt").read_text() == "CMB TT peak near ell 220"
    dave.delete(f"{running.url}/api/environments/{second['id']}")


@pytest.mark.parametrize("body,status,code", [
    (b"{not json", 400, "bad_json"),
    (b"[1, 2]", 400, "bad_json"),
    (b'{"profile": 7}', 400, "bad_profile"),
    (b'{"profile": "gpu-monster"}', 400, "unknown_profile"),
    (b'{"profile": "../small"}', 400, "unknown_profile"),
])
def test_bad_launch_requests_get_clear_errors(running, body, status, code):
    erin = running.session_for("erin")
    resp = erin.post(f"{running.url}/api/environments", data=body,
                     headers={"Content-Type": "application/json"})
    assert resp.status_code == status
    assert resp.json()["error"] == code and resp.json()["message"]
    assert erin.get(f"{running.url}/api/environments").json() == {"environments": []}


def test_foreign_and_malformed_ids_are_not_found(running, alice, bob_env):
    for env_id in (bob_env["id"], "nope", "0" * 12, "..%2f..%2fetc"):
        assert alice.get(f"{running.url}/api/environments/{env_id}").status_code == 404
        assert alice.delete(f"{running.url}/api/environments/{env_id}").status_code == 404
    assert running.platform.store.get_environment(bob_env["id"]).state == "running"


def test_api_needs_a_session(running):
    anon = requests.Session()
    resp = anon.post(f"{running.url}/api/environments", json={})
    assert resp.status_code == 401 and resp.json()["error"] == "not_signed_in"


def test_cross_site_launch_is_refused(running):
    frank = running.session_for("frank")
    resp = frank.post(f"{running.url}/api/environments", json={},
                      headers={"Origin": "https://evil.example"})
    assert resp.status_code == 403 and resp.json()["error"] == "bad_origin"
    assert frank.get(f"{running.url}/api/environments").json() == {"environments": []}


def test_progress_streams_as_server_sent_events(running):
    gina = running.session_for("gina")
    env = gina.post(f"{running.url}/api/environments", json={}).json()
    with gina.get(f"{running.url}/api/environments/{env['id']}/events", stream=True,
                  timeout=60) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        text = "".join(chunk for chunk in resp.iter_content(decode_unicode=True))
    assert "event: progress" in text and '"phase": "healthy"' in text
    assert text.rstrip().splitlines()[-2] == "event: running"
    gina.delete(f"{running.url}/api/environments/{env['id']}")


def test_metrics_use_the_original_names(running, alice_env, bob_env):
    text = requests.get(f"{running.url}/metrics").text
    assert "cmbcluster_active_users 2.0" in text
    memory = [line for line in text.splitlines()
              if line.startswith(f'cmbcluster_memory_usage{{environment="{alice_env["id"]}"}}')]
    assert memory and float(memory[0].split()[-1]) > 20e6  # a Streamlit process's RSS
    for name in ("cmbcluster_pods_created_total", "cmbcluster_authentication_requests_total",
                 "cmbcluster_spawn_phase_seconds_bucket", "cmbcluster_culled_total"):
        assert name in text

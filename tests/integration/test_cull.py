"""Culling and reconciliation with real Streamlit processes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from functions.core import metrics
from functions.core.models import State
from functions.cull.culler import cull

from .conftest import RunningPlatform
from .streamlit_ws import heartbeat, rerun, streamlit_socket
from .test_failures_and_restart import dev_session, processes_under, start_platform
from .test_launch import cookie_header, launch, wait_running

IDLE_HOURS = 6 / 3600  # six seconds


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    plat = RunningPlatform(tmp_path_factory.mktemp("cull"), MAX_INACTIVE_HOURS=str(IDLE_HOURS),
                           ACTIVITY_INTERVAL_SECONDS="1", MAX_USER_PODS="1")
    yield plat
    plat.stop()


def culled_count(reason: str) -> float:
    return metrics.REGISTRY.get_sample_value("cmbcluster_culled_total", {"reason": reason}) or 0


def test_an_idle_environment_is_culled_and_its_files_are_there_next_time(quick):
    http = quick.session_for("ida")
    env = launch(quick, http)
    workspace = quick.platform.settings.data_dir / "workspaces" / "ida"
    (workspace / "map.fits").write_bytes(b"SIMPLE  =                    T")
    before = culled_count("idle")
    assert cull(quick.platform)["culled_idle"] == 0  # not idle long enough yet
    time.sleep(6.5)
    cull(quick.platform)
    record = http.get(f"{quick.url}/api/environments/{env['id']}").json()
    assert record["state"] == "stopped"
    assert record["reason"] == "idle for more than 6 seconds"
    assert culled_count("idle") == before + 1
    assert quick.platform.backend.route(env["id"]) is None
    again = launch(quick, http)
    assert again["state"] == "running"
    assert (workspace / "map.fits").read_bytes().startswith(b"SIMPLE")
    http.delete(f"{quick.url}/api/environments/{again['id']}")


def test_interaction_keeps_an_environment_and_an_idle_tab_does_not(quick):
    busy_user, idle_user = quick.session_for("busy"), quick.session_for("lurker")
    busy, idle = launch(quick, busy_user), launch(quick, idle_user)
    with streamlit_socket(quick.url, busy["url"], cookie_header(busy_user)) as busy_ws, \
            streamlit_socket(quick.url, idle["url"], cookie_header(idle_user)) as idle_ws:
        rerun(idle_ws)  # opening the page is a person; then the tab sits there
        deadline = time.monotonic() + 9
        while time.monotonic() < deadline:
            rerun(busy_ws)  # a widget interaction, as a slider drag sends
            heartbeat(idle_ws)  # all an idle tab sends
            time.sleep(1.2)
        cull(quick.platform)
    store = quick.platform.store
    assert store.get_environment(busy["id"]).state == State.RUNNING
    gone = store.get_environment(idle["id"])
    assert gone.state == State.STOPPED and gone.reason.startswith("idle")
    busy_user.delete(f"{quick.url}/api/environments/{busy['id']}")


def test_reruns_reported_by_the_environment_itself_count(quick):
    """The cloud path: ingress never sees websocket messages, so the app reports."""
    http = quick.session_for("selfreport")
    env = launch(quick, http)
    token = quick.platform.signer.sign("activity", env["id"], 600)
    time.sleep(4)
    resp = requests.post(f"{quick.url}/route/activity", json={"kind": "streamlit_rerun"},
                         headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200
    time.sleep(3)  # 7 s since start, 3 s since the report
    cull(quick.platform)
    assert quick.platform.store.get_environment(env["id"]).state == State.RUNNING
    http.delete(f"{quick.url}/api/environments/{env['id']}")


@pytest.mark.parametrize("auth", ["", "Bearer nonsense", "Basic abc"])
def test_activity_reports_need_the_environments_token(quick, auth):
    resp = requests.post(f"{quick.url}/route/activity", headers={"Authorization": auth})
    assert resp.status_code == 401


def test_a_session_token_is_not_an_activity_token(quick):
    http = quick.session_for("mallory")
    session = next(c.value for c in http.cookies)
    resp = requests.post(f"{quick.url}/route/activity",
                         headers={"Authorization": f"Bearer {session}"})
    assert resp.status_code == 401


def race(*calls):
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def servers_of(plat: RunningPlatform, owner: str) -> list:
    return [s for s in plat.platform.backend.servers() if s.owner == owner and s.alive]


def test_a_cull_racing_a_launch_leaves_one_consistent_record(quick):
    http = quick.session_for("racer")
    assert launch(quick, http)["state"] == "running"
    time.sleep(6.5)
    _, clicked = race(lambda: cull(quick.platform),
                      lambda: http.post(f"{quick.url}/api/environments", json={}))
    assert clicked.status_code in (200, 202, 409)
    for record in http.get(f"{quick.url}/api/environments").json()["environments"]:
        if record["state"] in ("pending", "starting"):
            wait_running(http, quick.url, record["id"])
    records = http.get(f"{quick.url}/api/environments").json()["environments"]
    live = [r for r in records if r["state"] == "running"]
    assert len(live) <= 1
    assert all(r["state"] in ("running", "stopped") for r in records)
    assert len(servers_of(quick, "racer")) == len(live)
    if live:
        http.delete(f"{quick.url}/api/environments/{live[0]['id']}")


def test_a_stop_racing_a_cull_and_two_cullers_at_once(quick):
    http = quick.session_for("stopper")
    env = launch(quick, http)
    time.sleep(6.5)
    results = race(lambda: cull(quick.platform), lambda: cull(quick.platform),
                   lambda: http.delete(f"{quick.url}/api/environments/{env['id']}"))
    assert results[2].status_code == 200
    assert results[0]["culled_idle"] + results[1]["culled_idle"] <= 1
    record = quick.platform.store.get_environment(env["id"])
    assert record.state == State.STOPPED and record.reason
    assert servers_of(quick, "stopper") == []


def test_post_cull_needs_an_admin_or_the_scheduler(quick):
    anon = requests.post(f"{quick.url}/cull")
    assert anon.status_code == 401 and anon.json()["error"] == "not_signed_in"
    user = quick.session_for("notadmin")
    assert user.post(f"{quick.url}/cull").status_code == 403
    forged = requests.post(f"{quick.url}/cull", headers={"Authorization": "Bearer x.y.z"})
    assert forged.status_code == 401
    admin = quick.session_for("boss", role="admin")
    resp = admin.post(f"{quick.url}/cull")
    assert resp.status_code == 200 and "culled_idle" in resp.json()


def test_killed_mid_spawn_then_restarted_leaves_nothing_stuck_or_orphaned(tmp_path):
    from ..conftest import free_port

    data_dir, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    first = start_platform(data_dir, port)
    alice = dev_session(url, "alice")
    env_id = alice.post(f"{url}/api/environments", json={}).json()["id"]
    time.sleep(0.3)  # the worker has spawned the process, which is not healthy yet
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    second = start_platform(data_dir, port)
    try:
        env = wait_running(alice, url, env_id)
        assert env["state"] == "running"  # the restart picked the spawn up again
        servers = list((Path(data_dir) / "servers").glob("*.json"))
        assert [p.stem for p in servers] == [env_id]
        assert alice.get(f"{url}{env['url']}_stcore/health").text == "ok"
        envs = alice.get(f"{url}/api/environments").json()["environments"]
        assert [e["state"] for e in envs] == ["running"]
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert processes_under(data_dir) == set()
    assert os.path.exists(data_dir / "workspaces" / "alice")

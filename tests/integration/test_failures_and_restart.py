"""Starts that fail, and a platform that is killed and started again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from functions.core.backends.local import LocalBackend
from functions.core.models import State
from functions.core.queue.base import QueueError, TaskQueue
from functions.cull.reconcile import reconcile

from ..conftest import ROOT, free_port, wait_http
from .conftest import RunningPlatform
from .test_launch import launch, wait_running


def processes_under(data_dir: Path) -> set[int]:
    """Every live process whose working directory is inside the platform's data dir
    (environments run in their workspaces there)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd.startswith(str(data_dir)):
            found.add(int(entry.name))
    return found


def fake_python(tmp_path: Path, body: str) -> str:
    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_an_app_that_never_gets_healthy_fails_with_a_reason_and_leaves_nothing(tmp_path):
    plat = RunningPlatform(tmp_path / "data", START_TIMEOUT="3")
    plat.platform.backend = LocalBackend(tmp_path / "data", ROOT / "user-environment/app.py",
                                         python=fake_python(tmp_path, "exec sleep 600"))
    try:
        http = plat.session_for("alice")
        env = launch(plat, http)
        assert env["state"] == "failed"
        assert "did not become healthy within 3 s" in env["reason"]
        assert plat.platform.backend.servers() == []
        assert processes_under(tmp_path / "data") == set()
        again = http.post(f"{plat.url}/api/environments", json={})
        assert again.status_code == 202  # the failed start freed the slot
    finally:
        plat.stop()


def test_an_app_that_exits_at_once_fails_fast(tmp_path):
    plat = RunningPlatform(tmp_path / "data", START_TIMEOUT="60")
    plat.platform.backend = LocalBackend(tmp_path / "data", ROOT / "user-environment/app.py",
                                         python=fake_python(tmp_path, "exit 3"))
    try:
        started = time.monotonic()
        env = launch(plat, plat.session_for("alice"))
        assert env["state"] == "failed" and "exited while starting" in env["reason"]
        assert time.monotonic() - started < 10
    finally:
        plat.stop()


def start_platform(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "CMBCLUSTER_DATA_DIR": str(data_dir), "PORT": str(port),
           "START_TIMEOUT": "60"}
    proc = subprocess.Popen([sys.executable, "-m", "functions.cli", "up"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_http(f"http://127.0.0.1:{port}/health", 60, proc), "platform did not start"
    return proc


def dev_session(url: str, username: str) -> requests.Session:
    http = requests.Session()
    http.headers["Origin"] = url
    resp = http.post(f"{url}/auth/dev-login", data={"username": username, "next": "/"},
                     allow_redirects=False)
    assert resp.status_code in (302, 303), resp.text
    return http


def test_after_a_kill_and_restart_no_environment_process_is_untracked(tmp_path):
    data_dir, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    first = start_platform(data_dir, port)
    try:
        alice = dev_session(url, "alice")
        env_id = alice.post(f"{url}/api/environments", json={}).json()["id"]
        env = wait_running(alice, url, env_id)
        assert env["state"] == "running"
        bob = dev_session(url, "bob")
        bob_env = wait_running(bob, url, bob.post(f"{url}/api/environments", json={})
                               .json()["id"])
        # bob stops his environment while the platform is down: simulate by killing the
        # platform first, then marking the record stopped behind its back.
        children = processes_under(data_dir)
        assert len(children) >= 2
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)

    from functions.core.store.sqlite import SqliteStore

    store = SqliteStore(data_dir / "cmbcluster.db")
    store.transition(bob_env["id"], [State.RUNNING], State.STOPPING)
    store.transition(bob_env["id"], [State.STOPPING], State.STOPPED)
    assert processes_under(data_dir) >= children  # the children outlived the platform

    second = start_platform(data_dir, port)
    try:
        # alice's live environment was re-adopted and still answers through the proxy.
        health = alice.get(f"{url}{env['url']}_stcore/health")
        assert (health.status_code, health.text) == (200, "ok")
        assert alice.get(f"{url}/api/environments/{env_id}").json()["state"] == "running"
        # bob's, whose record is closed, was removed: no process is left untracked.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and bob_env["id"] in _server_ids(data_dir):
            time.sleep(0.2)
        assert _server_ids(data_dir) == {env_id}
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    # A graceful stop takes every child with it, and says why on the record.
    assert processes_under(data_dir) == set()
    assert store.get_environment(env_id).reason == "the platform was shut down"


def _server_ids(data_dir: Path) -> set[str]:
    return {p.stem for p in (data_dir / "servers").glob("*.json")}



class FlakyQueue(TaskQueue):
    """The real in-process queue behind an outage that refuses the first task."""

    def __init__(self, inner: TaskQueue):
        self.inner, self.refused = inner, 0

    def enqueue(self, kind: str, name: str, payload: dict) -> bool:
        if self.refused == 0:
            self.refused += 1
            raise QueueError("queue unavailable")
        return self.inner.enqueue(kind, name, payload)


def test_a_queue_outage_delays_a_launch_but_loses_nothing(tmp_path):
    plat = RunningPlatform(tmp_path / "data")
    plat.platform.queue = FlakyQueue(plat.platform.queue)
    try:
        http = plat.session_for("alice")
        resp = http.post(f"{plat.url}/api/environments", json={})
        assert resp.status_code == 202 and resp.json()["state"] == "pending"
        assert reconcile(plat.platform)["requeued"] == 1
        assert wait_running(http, plat.url, resp.json()["id"])["state"] == "running"
    finally:
        plat.stop()


class LostQueue(TaskQueue):
    """A queue whose tasks never run, as when a worker dies with them."""

    def enqueue(self, kind: str, name: str, payload: dict) -> bool:
        return True


def test_a_start_stuck_past_the_timeout_fails_at_the_next_reconcile(tmp_path):
    plat = RunningPlatform(tmp_path / "data", START_TIMEOUT="1")
    plat.platform.queue = LostQueue()
    try:
        http = plat.session_for("alice")
        env_id = http.post(f"{plat.url}/api/environments", json={}).json()["id"]
        assert reconcile(plat.platform)["failed"] == 0  # young: queued again instead
        time.sleep(1.2)
        assert reconcile(plat.platform)["failed"] == 1
        record = http.get(f"{plat.url}/api/environments/{env_id}").json()
        assert record["state"] == "failed"
        assert record["reason"] == "it did not start within 1 s"
        assert http.post(f"{plat.url}/api/environments", json={}).status_code == 202
    finally:
        plat.stop()

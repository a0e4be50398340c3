"""LocalBackend against real Streamlit processes (no mocks)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from functions.core.backends.base import BackendError, Server, ServerSpec
from functions.core.backends.local import DEFAULT_LAUNCHER, LocalBackend, process_start_time
from functions.core.config import Profile

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "user-environment" / "app.py"
PROFILE = Profile("test", 1.0, 1024, 1, "local")


def spec(env_id: str, owner: str = "alice", profile: Profile = PROFILE, **env: str) -> ServerSpec:
    return ServerSpec(env_id, owner, profile, f"/user/{owner}/{env_id}", dict(env))


def wait_healthy(backend: LocalBackend, server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not backend.is_healthy(server):
        assert time.monotonic() < deadline, f"{server.env_id} not healthy in {timeout}s"
        time.sleep(0.05)


def gone(pid: int, timeout: float = 5) -> bool:
    """Whether the process has exited (a zombie awaiting its new parent counts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat[stat.rindex(")") + 2] == "Z":
            return True
        time.sleep(0.05)
    return False


def pid_of(server: Server, data_dir: Path) -> int:
    return json.loads((data_dir / "servers" / f"{server.env_id}.json").read_text())["pid"]


@pytest.fixture
def backend(tmp_path: Path):
    b = LocalBackend(tmp_path, APP)
    yield b
    b.stop_all()
    b.close()


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """One healthy server shared by the read-only tests, with a platform secret in the
    parent's environment that must not reach it."""
    data_dir = tmp_path_factory.mktemp("shared")
    os.environ["SECRET_KEY"] = "platform-secret-" * 3
    b = LocalBackend(data_dir, APP)
    phases: list[str] = []
    try:
        server = b.start(spec("aaaaaaaaaaaa", FOO="bar"), lambda p, m, pct: phases.append(p))
    finally:
        del os.environ["SECRET_KEY"]
    wait_healthy(b, server)
    yield b, server, phases, data_dir
    b.stop_all()
    b.close()


def test_start_is_healthy_under_base_path(running) -> None:
    b, server, phases, data_dir = running
    assert phases == ["scheduled", "image_ready", "container_started"]
    assert server.upstream.startswith("http://127.0.0.1:")
    assert b.route(server.env_id).upstream == server.upstream
    assert [s.env_id for s in b.servers() if s.alive] == [server.env_id]
    port = int(server.upstream.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/_stcore/health")  # outside the base path: not served
    assert conn.getresponse().status == 404
    assert (data_dir / "logs" / f"{server.env_id}.log").stat().st_size > 0


def test_child_process_setup(running) -> None:
    b, server, _, data_dir = running
    pid = pid_of(server, data_dir)
    workspace = data_dir / "workspaces" / "alice"
    assert os.getpgid(pid) == pid and os.getsid(pid) == pid  # own session and group
    assert Path(os.readlink(f"/proc/{pid}/cwd")) == workspace
    env = dict(item.split("=", 1) for item in
               Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item)
    assert env["CMBCLUSTER_ENV_ID"] == server.env_id
    assert env["CMBCLUSTER_WORKSPACE"] == str(workspace)
    assert env["FOO"] == "bar"
    assert env["OPENBLAS_NUM_THREADS"] == "1"
    assert "SECRET_KEY" not in env
    limits = Path(f"/proc/{pid}/limits").read_text()
    data_line = next(line for line in limits.splitlines() if line.startswith("Max data size"))
    assert data_line.split()[3:5] == [str(1024 * 1024 * 1024)] * 2


def test_start_twice_gives_one_process(running) -> None:
    b, server, _, data_dir = running
    pid = pid_of(server, data_dir)
    phases: list[str] = []
    again = b.start(spec(server.env_id), lambda p, m, pct: phases.append(p))
    assert again == server and pid_of(again, data_dir) == pid
    assert phases == []  # nothing was started
    mine = [p for p in os.listdir("/proc") if p.isdigit()
            and f"CMBCLUSTER_ENV_ID={server.env_id}".encode()
            in _read(f"/proc/{p}/environ")]
    assert mine == [str(pid)]


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def test_tcp_nodelay_on_keepalive_connection(running) -> None:
    # Without the launcher's patch each request after the first on a reused connection
    # waits for the client's delayed ACK: ~40 ms. With it, about 1 ms.
    _, server, _, _ = running
    port = int(server.upstream.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    times = []
    for _ in range(21):
        t = time.perf_counter()
        conn.request("GET", f"{server.base_path}/_stcore/health")
        response = conn.getresponse()
        response.read()
        times.append((time.perf_counter() - t) * 1000)
        assert response.status == 200
    assert statistics.median(times[1:]) < 15, times
    assert sum(t > 38 for t in times[1:]) <= 2, times


def test_workspace_persists_and_close_keeps_servers(backend: LocalBackend,
                                                     tmp_path: Path) -> None:
    server = backend.start(spec("bbbbbbbbbbbb", owner="bob"), lambda *a: None)
    workspace = tmp_path / "workspaces" / "bob"
    (workspace / "notes.txt").write_text("x" * 1000)
    assert backend.workspace_bytes("bob") == 1000
    backend.stop(server.env_id)
    assert backend.route(server.env_id) is None
    assert backend.servers() == []
    assert not (tmp_path / "servers" / "bbbbbbbbbbbb.json").exists()

    server = backend.start(spec("bbbbbbbbbbbb", owner="bob"), lambda *a: None)
    wait_healthy(backend, server)
    assert (workspace / "notes.txt").read_text() == "x" * 1000
    pid = pid_of(server, tmp_path)
    backend.close()  # the platform leaving does not end the user's session
    time.sleep(0.3)
    assert process_start_time(pid) is not None and backend.is_healthy(server)


def test_stop_kills_the_group_and_is_idempotent(tmp_path: Path) -> None:
    # A launcher that leaves a grandchild in the group, as an app's subprocess would.
    launcher = tmp_path / "launch_with_grandchild.py"
    launcher.write_text(textwrap.dedent(f"""
        import os, subprocess, sys
        child = subprocess.Popen(["sleep", "300"])
        with open(os.environ["CMBCLUSTER_WORKSPACE"] + "/grandchild", "w") as f:
            f.write(str(child.pid))
        os.execv(sys.executable, [sys.executable, {str(DEFAULT_LAUNCHER)!r}, *sys.argv[1:]])
    """))
    backend = LocalBackend(tmp_path / "data", APP, launcher=launcher)
    server = backend.start(spec("cccccccccccc"), lambda *a: None)
    wait_healthy(backend, server)
    pid = pid_of(server, tmp_path / "data")
    grandchild = int((tmp_path / "data" / "workspaces" / "alice" / "grandchild").read_text())
    assert os.getpgid(grandchild) == pid

    backend.stop(server.env_id)
    assert gone(pid) and gone(grandchild)
    assert backend.route(server.env_id) is None and backend.servers() == []
    assert not backend.is_healthy(server)
    backend.stop(server.env_id)  # already gone: no error
    backend.stop("never-started")
    backend.close()


def test_exited_server_is_reported_dead_then_cleaned(tmp_path: Path) -> None:
    launcher = tmp_path / "crash.py"
    launcher.write_text("import sys; sys.exit(3)\n")
    backend = LocalBackend(tmp_path, APP, launcher=launcher)
    server = backend.start(spec("dddddddddddd"), lambda *a: None)
    deadline = time.monotonic() + 10
    while backend.route(server.env_id) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [(s.env_id, s.alive) for s in backend.servers()] == [(server.env_id, False)]
    backend.stop(server.env_id)  # what the reconciler does with a dead server
    assert backend.servers() == []
    backend.close()


RESTART_SCRIPT = """
import json, sys, time
from pathlib import Path
from functions.core.backends.local import LocalBackend
from functions.core.backends.base import ServerSpec
from functions.core.config import Profile
backend = LocalBackend(Path(sys.argv[1]), Path(sys.argv[2]))
spec = ServerSpec("eeeeeeeeeeee", "carol", Profile("t", 1.0, 1024, 1, "local"),
                  "/user/carol/eeeeeeeeeeee")
server = backend.start(spec, lambda *a: None)
print(json.dumps({"upstream": server.upstream}), flush=True)
time.sleep(300)
"""


def test_restart_after_sigkill_readopts_live_child(tmp_path: Path) -> None:
    platform = subprocess.Popen([sys.executable, "-c", RESTART_SCRIPT, str(tmp_path), str(APP)],
                                stdout=subprocess.PIPE, text=True)
    try:
        upstream = json.loads(platform.stdout.readline())["upstream"]
    finally:
        platform.send_signal(signal.SIGKILL)  # the platform dies without cleaning up
        platform.wait()
    pid = json.loads((tmp_path / "servers" / "eeeeeeeeeeee.json").read_text())["pid"]
    assert process_start_time(pid) is not None  # the child outlived its parent

    backend = LocalBackend(tmp_path, APP)
    try:
        [server] = backend.servers()
        assert (server.env_id, server.owner, server.upstream, server.alive) == (
            "eeeeeeeeeeee", "carol", upstream, True)
        assert backend.route("eeeeeeeeeeee").upstream == upstream
        wait_healthy(backend, server)
        # Same id again: the adopted process, not a second one.
        assert backend.start(spec("eeeeeeeeeeee", owner="carol"), lambda *a: None) == server
    finally:
        backend.stop_all()
        backend.close()
    assert gone(pid) and backend.servers() == []
    assert list((tmp_path / "servers").iterdir()) == []


def _write_state(data_dir: Path, env_id: str, pid: int, start_time: int) -> Path:
    path = data_dir / "servers" / f"{env_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"env_id": env_id, "owner": "alice", "base_path": "/x",
                                "port": 1, "pid": pid, "pgid": pid,
                                "start_time": start_time}))
    return path


def test_dead_child_state_dropped_and_its_group_cleared(tmp_path: Path) -> None:
    # The leader exits, its grandchild stays in the group (as after a crash).
    leader = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; exec sleep 0.2"],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    orphan = int(leader.stdout.readline())
    path = _write_state(tmp_path, "ffffffffffff", leader.pid, process_start_time(leader.pid))
    leader.wait()
    assert process_start_time(orphan) is not None

    backend = LocalBackend(tmp_path, APP)
    assert backend.servers() == [] and not path.exists()
    assert gone(orphan)
    backend.close()


def test_pid_reuse_is_not_adopted(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        path = _write_state(tmp_path, "gggggggggggg", stranger.pid,
                            process_start_time(stranger.pid) + 1)
        (tmp_path / "servers" / "garbage.json").write_text("{not json")
        backend = LocalBackend(tmp_path, APP)
        assert backend.servers() == [] and backend.route("gggggggggggg") is None
        assert not path.exists() and list((tmp_path / "servers").iterdir()) == []
        time.sleep(0.1)
        assert stranger.poll() is None  # not ours: left alone
        backend.close()
    finally:
        stranger.kill()
        stranger.wait()


MEMORY_APP = """
import os
import numpy as np
import streamlit as st

result = os.path.join(os.environ["CMBCLUSTER_WORKSPACE"], "result")
with open(result, "w") as f:
    for mb in (64, int(os.environ["ALLOC_MB"])):
        try:
            a = np.ones(mb * 1024 * 1024 // 8)
            f.write(f"{mb}:ok ")
            del a
        except MemoryError:
            f.write(f"{mb}:MemoryError ")
st.write("done")
"""


def run_script_once(server: Server) -> None:
    """Open a session over the websocket, as a browser does, and run the app once."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    url = server.upstream.replace("http", "ws", 1) + server.base_path + "/_stcore/stream"
    with connect(url, subprotocols=["streamlit"]) as ws:
        rerun = BackMsg()
        rerun.rerun_script.query_string = ""
        ws.send(rerun.SerializeToString())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = ForwardMsg()
            msg.ParseFromString(ws.recv(timeout=60))
            if msg.WhichOneof("type") == "script_finished":
                return
    raise AssertionError("the script did not finish")


def test_memory_limit_enforced(tmp_path: Path) -> None:
    app = tmp_path / "memory_app.py"
    app.write_text(MEMORY_APP)
    backend = LocalBackend(tmp_path / "data", app)
    small = Profile("small", 1.0, 512, 1, "local")
    try:
        server = backend.start(spec("hhhhhhhhhhhh", profile=small, ALLOC_MB="1024"),
                               lambda *a: None)
        wait_healthy(backend, server)
        run_script_once(server)
        result = (tmp_path / "data" / "workspaces" / "alice" / "result").read_text()
        assert result.split() == ["64:ok", "1024:MemoryError"]
        assert backend.is_healthy(server)  # the server and the platform carry on
    finally:
        backend.stop_all()
        backend.close()


def test_bad_app_python_or_names_give_backend_error(tmp_path: Path) -> None:
    calls: list[str] = []
    missing = LocalBackend(tmp_path, tmp_path / "missing.py")
    with pytest.raises(BackendError, match="missing.py"):
        missing.start(spec("iiiiiiiiiiii"), lambda p, m, pct: calls.append(p))
    assert calls == ["scheduled"]
    no_python = LocalBackend(tmp_path, APP, python=str(tmp_path / "nopython"))
    with pytest.raises(BackendError, match="python"):
        no_python.start(spec("iiiiiiiiiiii"), lambda *a: None)
    backend = LocalBackend(tmp_path, APP)
    with pytest.raises(BackendError):
        backend.start(spec("iiiiiiiiiiii", owner="../etc"), lambda *a: None)
    with pytest.raises(BackendError):
        backend.start(spec("../../x"), lambda *a: None)
    assert backend.servers() == [] and list((tmp_path / "servers").iterdir()) == []
    for b in (missing, no_python, backend):
        b.close()

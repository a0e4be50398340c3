"""The local backend: each environment is a Streamlit process on this machine.

A server is `python user-environment/launch.py run <app> ...` in its own session (so
its own process group), bound to 127.0.0.1 on a free port, under the environment's
base path, with the owner's workspace (`<data_dir>/workspaces/<owner>`, kept across
stops) as working directory and HOME. Output goes to `<data_dir>/logs/<env_id>.log`.

Environment. The child does not inherit the platform's environment (it holds
SECRET_KEY and OIDC secrets): it gets a short allow-list (PATH, locale, TZ, CA bundles),
then CMBCLUSTER_WORKSPACE, CMBCLUSTER_ENV_ID, thread counts sized to the profile's CPUs,
then `spec.env`, which wins. Streamlit reads `STREAMLIT_*` variables as configuration,
so `spec.env` can also set Streamlit options.

Memory limit. RLIMIT_DATA set to the profile's `memory_mb`, applied with `prlimit` on
the new pid right after spawn (no `preexec_fn`, which is unsafe in a threaded parent;
the child is still exec'ing Python then, so no user code runs unlimited). Since Linux
4.7 RLIMIT_DATA counts private writable mappings, so a big numpy array gets
MemoryError while the server, and the platform, keep running. It is chosen over
RLIMIT_AS because it does not count reserved-but-inaccessible address space: glibc's
per-thread malloc arenas (64 MiB PROT_NONE reservations each), and thread stack guard
pages, would exhaust an RLIMIT_AS long before any real use. OpenBLAS/OpenMP thread
counts are capped at the profile's CPUs, which bounds their per-thread buffers too.
Cgroups were not used: on this host the memory controller is cgroup v1 and belongs to
the machine's supervisor. RLIMIT_DATA is a guard against accidents, not a security
boundary (a root child can raise its own hard limit); the cloud backend's pod limits
are the boundary.

Liveness without syscalls on the hot path. `route()` is called on every proxied
request, so it is a dict lookup and a flag test. One watcher thread per server blocks
on a pidfd (Linux >= 5.3; works for processes that are not our children) and clears
the flag, reaping the child if it is ours, the moment the process exits.

Restart semantics: re-adopt, never lose track. Each server has a state file
`<data_dir>/servers/<env_id>.json` (pid, pgid, port, the process start time from
`/proc/<pid>/stat`, owner, base path), written before `start` returns. Children run in
their own session, so they outlive a SIGKILLed platform. A new `LocalBackend` on the
same data dir reads every state file:
  - pid alive with the same start time: re-adopted, listed by `servers()` and routed
    by `route()`; the reconciler stops those with no live record.
  - no process with that pid: the server died; its group is sent SIGKILL (to clear any
    grandchildren it left; the pgid cannot belong to anyone else while one of ours is
    in it) and the state file is dropped.
  - pid alive with another start time: the pid was reused by an unrelated process; it
    is left alone and the state file is dropped.
`close()` never stops servers (a restart should not cost users their sessions);
`stop_all()` is the graceful Ctrl-C path. Grandchildren that leave the process group
(setsid) are out of reach: that needs a cgroup, as the cloud backend's pod has.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import logging
import math
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .base import Backend, BackendError, ProgressFn, Server, ServerSpec

log = logging.getLogger(__name__)

DEFAULT_LAUNCHER = Path(__file__).resolve().parents[3] / "user-environment" / "launch.py"

ENVIRONMENT_NICENESS = 19

# File names inside the data dir come from these; refuse anything path-like.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

# Variables a research environment may inherit from the platform's environment.
_INHERITED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SSL_CERT_FILE",
              "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMEXPR_MAX_THREADS")


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22),
    or None when there is no such process. With the pid it names one process for ever."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(b")") + 2:].split()
    return int(fields[19])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass
class _Proc:
    env_id: str
    owner: str
    base_path: str
    port: int
    pid: int
    pgid: int
    start_time: int
    popen: subprocess.Popen | None = None  # None when re-adopted after a restart
    exited: threading.Event = field(default_factory=threading.Event)

    @property
    def upstream(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def server(self) -> Server:
        return Server(self.env_id, self.owner, self.upstream, self.base_path,
                      alive=not self.exited.is_set())

    @functools.cached_property
    def live(self) -> Server:
        """What `route` hands the proxy on every request: built once."""
        return Server(self.env_id, self.owner, self.upstream, self.base_path)

    def state(self) -> dict:
        return {"env_id": self.env_id, "owner": self.owner, "base_path": self.base_path,
                "port": self.port, "pid": self.pid, "pgid": self.pgid,
                "start_time": self.start_time}


class LocalBackend(Backend):
    def __init__(self, data_dir: Path, app_path: Path, python: str = sys.executable, *,
                 launcher: Path = DEFAULT_LAUNCHER, stop_timeout: float = 5.0,
                 health_timeout: float = 1.0) -> None:
        self.data_dir = Path(data_dir)
        self.app_path = Path(app_path)
        self.python = python
        self.launcher = Path(launcher)
        self.stop_timeout = stop_timeout
        self.health_timeout = health_timeout
        self._workspaces = self.data_dir / "workspaces"
        self._logs = self.data_dir / "logs"
        self._state = self.data_dir / "servers"
        for d in (self._workspaces, self._logs, self._state):
            d.mkdir(parents=True, exist_ok=True)
        self._procs: dict[str, _Proc] = {}
        self._lock = threading.Lock()  # guards _procs and _env_locks
        self._env_locks: dict[str, threading.Lock] = {}  # one start/stop at a time per env
        self._closed = threading.Event()
        self._readopt()

    # -- the Backend port ------------------------------------------------------------

    def start(self, spec: ServerSpec, progress: ProgressFn) -> Server:
        for what, value in (("environment id", spec.env_id), ("owner", spec.owner)):
            if not _SAFE_NAME.match(value):
                raise BackendError(f"{what} {value!r} is not a safe name")
        if not spec.base_path.startswith("/") or spec.base_path.endswith("/"):
            raise BackendError(f"base path {spec.base_path!r}: expected /a/b, no trailing /")
        with self._env_lock(spec.env_id):
            current = self._procs.get(spec.env_id)
            if current is not None and not current.exited.is_set():
                return current.server()
            if current is not None:  # exited on its own: clear what it left, start afresh
                self._terminate(current)
            progress("scheduled", "Reserving your resources", 10)
            python = self._resolve()
            progress("image_ready", "Preparing the research software", 30)
            proc = self._spawn(spec, python)
            progress("container_started", "Starting your environment", 60)
            return proc.server()

    def is_healthy(self, server: Server) -> bool:
        # A stale Server (process gone, port maybe reused by another env) is not healthy.
        live = self.route(server.env_id)
        if live is None or live.upstream != server.upstream:
            return False
        port = int(server.upstream.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=self.health_timeout)
        try:
            conn.request("GET", f"{server.base_path}/_stcore/health")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def stop(self, env_id: str) -> None:
        with self._env_lock(env_id):
            proc = self._procs.get(env_id)
            if proc is not None:
                self._terminate(proc)

    def servers(self) -> list[Server]:
        with self._lock:
            procs = list(self._procs.values())
        return [p.server() for p in procs]

    def route(self, env_id: str) -> Server | None:
        proc = self._procs.get(env_id)
        return proc.live if proc is not None and not proc.exited.is_set() else None

    def usage(self) -> dict[str, tuple[float, int]]:
        with self._lock:
            procs = [p for p in self._procs.values() if not p.exited.is_set()]
        found = {}
        for proc in procs:
            try:
                stat = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                pages = int(Path(f"/proc/{proc.pid}/statm").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue  # exited while we looked
            cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")  # utime+stime
            found[proc.env_id] = (cpu, pages * os.sysconf("SC_PAGE_SIZE"))
        return found

    def workspace_bytes(self, owner: str) -> int | None:
        if not _SAFE_NAME.match(owner):
            return None
        total = 0
        for root, _dirs, files in os.walk(self._workspaces / owner):
            for name in files:
                with contextlib.suppress(OSError):  # deleted while we walk
                    total += os.lstat(os.path.join(root, name)).st_size
        return total

    def close(self) -> None:
        """Let the watcher threads go; the servers keep running (see the module doc)."""
        self._closed.set()

    def stop_all(self) -> None:
        """Stop every server at once (the graceful shutdown path)."""
        with self._lock:
            env_ids = list(self._procs)
        if env_ids:
            with ThreadPoolExecutor(max_workers=min(len(env_ids), 16)) as pool:
                list(pool.map(self.stop, env_ids))

    # -- start and stop --------------------------------------------------------------

    def _env_lock(self, env_id: str) -> threading.Lock:
        with self._lock:
            return self._env_locks.setdefault(env_id, threading.Lock())

    def _resolve(self) -> str:
        if not self.app_path.is_file():
            raise BackendError(f"app {self.app_path} not found")
        if not self.launcher.is_file():
            raise BackendError(f"launcher {self.launcher} not found")
        if not (os.path.isfile(self.python) and os.access(self.python, os.X_OK)):
            raise BackendError(f"python {self.python} is not an executable")
        return self.python

    def _child_env(self, spec: ServerSpec, workspace: Path) -> dict[str, str]:
        env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
        threads = str(max(1, math.ceil(spec.profile.cpu)))
        env.update(dict.fromkeys(_THREAD_VARS, threads))
        env.update(HOME=str(workspace), PYTHONUNBUFFERED="1",
                   CMBCLUSTER_WORKSPACE=str(workspace), CMBCLUSTER_ENV_ID=spec.env_id)
        env.update(spec.env)
        return env

    def _spawn(self, spec: ServerSpec, python: str) -> _Proc:
        workspace = self._workspaces / spec.owner
        workspace.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._lock:
            taken = {p.port for p in self._procs.values()}
        port = _free_port()
        while port in taken:  # a sibling not yet listening on its port
            port = _free_port()
        cmd = [python, str(self.launcher), "run", str(self.app_path.resolve()),
               "--server.port", str(port),
               "--server.address", "127.0.0.1",
               "--server.baseUrlPath", spec.base_path,
               "--server.headless", "true",
               "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none",
               "--server.runOnSave", "false",
               # A research environment has nothing to deploy: no Deploy button.
               "--client.toolbarMode", "minimal"]
        log_path = self._logs / f"{spec.env_id}.log"
        with open(log_path, "ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} start {spec.env_id} "
                      f"port {port} profile {spec.profile.name}\n".encode())
            out.flush()
            try:
                popen = subprocess.Popen(
                    cmd, cwd=workspace, env=self._child_env(spec, workspace),
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True)
            except OSError as exc:
                raise BackendError(f"could not start {python}: {exc}") from exc
        limit = spec.profile.memory_mb * 1024 * 1024
        try:
            resource.prlimit(popen.pid, resource.RLIMIT_DATA, (limit, limit))
        except OSError as exc:
            # Never leave an unlimited server running: stop it and say why.
            _killpg(popen.pid, signal.SIGKILL)
            popen.wait()
            raise BackendError(f"could not set the memory limit: {exc}") from exc
        # Research code runs below the control plane's priority, so twenty environments
        # busy starting (or computing) cannot starve the API and the proxy of CPU. Set
        # while the child is still one thread: its later threads inherit it.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, popen.pid, ENVIRONMENT_NICENESS)
        start_time = process_start_time(popen.pid)
        if start_time is None:  # died at once (e.g. bad interpreter): the log says why
            popen.wait()
            raise BackendError(f"process exited at start (code {popen.returncode}); "
                               f"see {log_path}")
        proc = _Proc(spec.env_id, spec.owner, spec.base_path, port, popen.pid,
                     pgid=popen.pid, start_time=start_time, popen=popen)
        self._write_state(proc)
        self._track(proc)
        return proc

    def _terminate(self, proc: _Proc) -> None:
        """SIGTERM the group, give it `stop_timeout`, SIGKILL what is left, forget it."""
        if not self._wait_exit(proc, 0):
            _killpg(proc.pgid, signal.SIGTERM)
            self._wait_exit(proc, self.stop_timeout)
        # Also when the leader has gone: grandchildren may remain in its group.
        _killpg(proc.pgid, signal.SIGKILL)
        self._wait_exit(proc, 5)
        proc.exited.set()
        with self._lock:
            if self._procs.get(proc.env_id) is proc:
                del self._procs[proc.env_id]
        with contextlib.suppress(FileNotFoundError):
            (self._state / f"{proc.env_id}.json").unlink()

    @staticmethod
    def _wait_exit(proc: _Proc, timeout: float) -> bool:
        """Whether the leader exited within `timeout`; reaps it when it is our child.
        Does not rely on the watcher thread, which is gone after close()."""
        deadline = time.monotonic() + timeout
        while True:
            if proc.exited.is_set():
                return True
            if proc.popen is not None:
                if proc.popen.poll() is not None:
                    return True
            elif process_start_time(proc.pid) != proc.start_time:
                return True
            if time.monotonic() >= deadline:
                return False
            proc.exited.wait(0.05)

    # -- tracking and restarts -------------------------------------------------------

    def _track(self, proc: _Proc) -> None:
        try:
            pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            pidfd = None  # no pidfd (old kernel) or already gone: the watcher polls
        # Between spawn/adoption and pidfd_open the pid may have died and been reused.
        if pidfd is not None and process_start_time(proc.pid) != proc.start_time:
            os.close(pidfd)
            pidfd = None
        with self._lock:
            self._procs[proc.env_id] = proc
        threading.Thread(target=self._watch, args=(proc, pidfd), daemon=True,
                         name=f"watch-{proc.env_id}").start()

    def _watch(self, proc: _Proc, pidfd: int | None) -> None:
        try:
            while not self._closed.is_set():
                if pidfd is not None:
                    if select.select([pidfd], [], [], 1.0)[0]:
                        break
                elif proc.popen is not None:
                    if proc.popen.poll() is not None:
                        break
                    time.sleep(0.2)
                elif process_start_time(proc.pid) != proc.start_time:
                    break
                else:
                    time.sleep(0.2)
            else:
                return  # backend closed: the server keeps running, unwatched
            if proc.popen is not None:
                proc.popen.wait()  # reap it, so no zombie lingers
            proc.exited.set()
            log.info("environment %s: process %s exited", proc.env_id, proc.pid)
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def _write_state(self, proc: _Proc) -> None:
        path = self._state / f"{proc.env_id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(proc.state()))
        os.replace(tmp, path)  # a crash mid-write never leaves half a file

    def _readopt(self) -> None:
        for path in sorted(self._state.glob("*.json")):
            try:
                state = json.loads(path.read_text())
                proc = _Proc(**{k: state[k] for k in ("env_id", "owner", "base_path")},
                             **{k: int(state[k]) for k in ("port", "pid", "pgid",
                                                            "start_time")})
                if not _SAFE_NAME.match(proc.env_id) or path.stem != proc.env_id:
                    raise ValueError("state file name and env id differ")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("dropping unreadable server state %s: %s", path, exc)
                path.unlink(missing_ok=True)
                continue
            now = process_start_time(proc.pid)
            if now == proc.start_time:
                log.info("re-adopted environment %s (pid %s, port %s)",
                         proc.env_id, proc.pid, proc.port)
                self._track(proc)
                continue
            if now is None:
                # Ours died: its group may hold grandchildren, and while any member
                # lives the pgid cannot be reused, so this reaches only ours.
                _killpg(proc.pgid, signal.SIGKILL)
                log.info("environment %s: process %s is gone; state dropped",
                         proc.env_id, proc.pid)
            else:
                log.warning("environment %s: pid %s now belongs to another process; "
                            "state dropped", proc.env_id, proc.pid)
            path.unlink(missing_ok=True)

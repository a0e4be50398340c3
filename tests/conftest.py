"""Shared fixtures: real services started by the tests themselves.

A service that cannot start fails the tests that need it, with the reason: `make test`
installs and starts every one of them, so a missing one is a broken set-up, never a
reason to skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def missing_service(reason: str) -> None:
    """A test's real service is missing: fail, naming it (`make test` provides it)."""
    pytest.fail(f"required service unavailable ({reason}); `make test` installs it")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status < 500:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def stop_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """Stop a child started with start_new_session, its own children (the JVM) too."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(grace)


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory) -> Iterator[str]:
    """The official Firestore emulator on a free port; yields its host:port."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        missing_service("gcloud (Firestore emulator) is not installed")
    host = f"127.0.0.1:{free_port()}"
    log = (tmp_path_factory.mktemp("firestore") / "emulator.log").open("wb")
    proc = subprocess.Popen(
        [gcloud, "emulators", "firestore", "start", f"--host-port={host}", "--quiet"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        if not wait_http(f"http://{host}/", 90, proc):
            missing_service(f"Firestore emulator did not start (see {log.name})")
        yield host
    finally:
        stop_group(proc)
        log.close()

"""The control-plane image's command: functions-framework serves each target from
functions/main.py, configured by environment only (as Dockerfile.functions runs it)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import ROOT, free_port, stop_group, wait_http

TARGETS = ("auth", "spawn", "route", "cull", "admin")
FRAMEWORK = Path(sys.executable).parent / "functions-framework"


def test_dockerfile_runs_functions_framework_on_main():
    dockerfile = (ROOT / "Dockerfile.functions").read_text()
    assert re.search(r"FUNCTION_SOURCE=/app/functions/main\.py", dockerfile)
    assert re.search(r"^COPY functions /app/functions$", dockerfile, re.MULTILINE)
    assert re.search(r'^CMD \["functions-framework"\]$', dockerfile, re.MULTILINE)
    assert re.search(r"^USER 10001$", dockerfile, re.MULTILINE)


@pytest.fixture(scope="module")
def services(tmp_path_factory) -> Iterator[dict[str, str]]:
    """Every target at once, from a directory outside the repository (as in the image,
    where nothing but --source locates the code)."""
    work = tmp_path_factory.mktemp("functions")
    env = {k: v for k, v in os.environ.items() if k not in ("HOST", "CMBCLUSTER_MODE")}
    procs, urls = [], {}
    try:
        for target in TARGETS:
            port = free_port()
            log = (work / f"{target}.log").open("wb")
            procs.append(subprocess.Popen(
                [str(FRAMEWORK)], cwd=work, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**env, "FUNCTION_TARGET": target, "PORT": str(port),
                     "FUNCTION_SOURCE": str(ROOT / "functions" / "main.py"),
                     "STORE": "sqlite", "CMBCLUSTER_DATA_DIR": str(work / "data")}))
            urls[target] = f"http://127.0.0.1:{port}"
        for proc, (target, url) in zip(procs, urls.items(), strict=True):
            assert wait_http(url + "/health", 60, proc), f"{target}: see {work}/{target}.log"
        yield urls
    finally:
        for proc in procs:
            stop_group(proc)


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_serves_its_own_app(services, target):
    with urllib.request.urlopen(services[target] + "/health", timeout=5) as resp:
        assert json.loads(resp.read()) == {"function": target, "status": "ok"}

"""functions-framework entry points: each function answers GET /health on its own."""

from __future__ import annotations

import pytest
from werkzeug.test import EnvironBuilder

from functions import main


@pytest.fixture(autouse=True)
def local_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CMBCLUSTER_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(main, "_platform", None)
    monkeypatch.setattr(main, "_apps", {})


@pytest.mark.parametrize("name", ["auth", "spawn", "route", "cull", "admin"])
def test_each_entry_point_answers_health(name):
    request = EnvironBuilder(path="/health").get_request()
    response = getattr(main, name)(request)
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "function": name}


def test_unknown_paths_are_json_404s():
    response = main.spawn(EnvironBuilder(path="/nope").get_request())
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


def test_spawn_tasks_are_refused_without_the_queue():
    request = EnvironBuilder(path="/tasks/spawn", method="POST", json={}).get_request()
    assert main.spawn(request).status_code in (401, 403)

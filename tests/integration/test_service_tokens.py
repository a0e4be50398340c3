"""Cloud Scheduler (POST /cull) and Cloud Tasks (POST /tasks/spawn) prove themselves with
an OIDC ID token for their service account. A real OpenID provider mints the tokens
here, standing in for Google: the checks are the same (signature by the issuer's keys,
audience = our service, the allowed account's verified e-mail)."""

from __future__ import annotations

import json
import secrets
import shutil

import pytest

from functions.core.backends.local import LocalBackend
from functions.core.config import load_settings
from functions.core.platform import build_platform
from functions.core.queue.inline import InlineQueue
from functions.core.store.sqlite import SqliteStore
from functions.cull.app import create_app as cull_app
from functions.spawn.app import create_app as spawn_app

from ..auth.oidc_rig import ACCOUNTS, OIDC_DIR, start_provider, stop_provider
from ..conftest import ROOT, missing_service

SCHEDULER, TASKS, OTHER = "cull-service", "spawn-service", "someone-else"
REDIRECT = "http://127.0.0.1:9/callback"  # never visited: the flow stops at the redirect


@pytest.fixture(scope="module")
def provider():
    if shutil.which("node") is None:
        missing_service("node is not installed")
    if not (OIDC_DIR / "node_modules" / "oidc-provider").exists():
        missing_service("the test OpenID provider is not installed: npm ci --prefix tests/oidc")
    clients = [{"client_id": cid, "client_secret": cid + "-secret", "redirect_uris": [REDIRECT]}
               for cid in (SCHEDULER, TASKS, OTHER)]
    prov = start_provider({"OIDC_CLIENTS": json.dumps(clients),
                           "OIDC_ACCOUNTS": json.dumps(ACCOUNTS)})
    yield prov
    stop_provider(prov.process)


def token(provider, account: str, client: str) -> str:
    return provider.id_token(account, secrets.token_urlsafe(8), REDIRECT, client_id=client,
                             client_secret=client + "-secret")


@pytest.fixture(scope="module")
def apps(provider, tmp_path_factory):
    data = tmp_path_factory.mktemp("svc")
    settings = load_settings({
        "CMBCLUSTER_DATA_DIR": str(data), "SECRET_KEY": "k" * 40,
        "CULL_AUDIENCE": SCHEDULER, "CULL_SERVICE_ACCOUNTS": ACCOUNTS["root"]["email"],
        "TASKS_AUDIENCE": TASKS, "TASKS_SERVICE_ACCOUNTS": ACCOUNTS["root"]["email"],
        "SERVICE_OIDC_ISSUER": provider.issuer,
        "SERVICE_OIDC_JWKS_URL": provider.metadata["jwks_uri"],
    })
    plat = build_platform(settings, SqliteStore(data / "db"))
    plat.backend = LocalBackend(data, ROOT / "user-environment" / "app.py")
    plat.queue = InlineQueue({})
    return cull_app(plat).test_client(), spawn_app(plat).test_client()


def bearer(value: str) -> dict:
    return {"Authorization": f"Bearer {value}"}


def test_the_scheduler_may_cull(provider, apps):
    cull, _ = apps
    resp = cull.post("/cull", headers=bearer(token(provider, "root", SCHEDULER)))
    assert resp.status_code == 200 and resp.get_json()["culled_idle"] == 0


def test_another_account_may_not_cull(provider, apps):
    cull, _ = apps
    resp = cull.post("/cull", headers=bearer(token(provider, "alice", SCHEDULER)))
    assert resp.status_code == 403


def test_a_token_for_another_service_is_refused(provider, apps):
    cull, spawn = apps
    tasks_token = token(provider, "root", TASKS)
    assert cull.post("/cull", headers=bearer(tasks_token)).status_code == 401
    other = token(provider, "root", OTHER)
    assert spawn.post("/tasks/spawn", json={}, headers=bearer(other)).status_code == 401


def test_unauthenticated_and_forged_calls_are_refused(provider, apps):
    cull, spawn = apps
    assert cull.post("/cull").status_code == 401
    real = token(provider, "root", SCHEDULER)
    head, body, sig = real.split(".")
    assert cull.post("/cull", headers=bearer(f"{head}.{body}.{sig[::-1]}")).status_code == 401
    assert cull.post("/cull", headers={"Authorization": real}).status_code == 401
    assert spawn.post("/tasks/spawn", json={}).status_code == 401
    queue_header = {"X-CloudTasks-QueueName": "spawn"}  # forgeable: not enough on its own
    assert spawn.post("/tasks/spawn", json={}, headers=queue_header).status_code == 401


def test_the_queue_may_deliver_spawn_tasks(provider, apps):
    _, spawn = apps
    resp = spawn.post("/tasks/spawn", json={"environment": "000000000000"},
                      headers=bearer(token(provider, "root", TASKS)))
    assert resp.status_code == 200  # an unknown environment: nothing to do, and no error

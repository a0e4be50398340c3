"""The spawn worker driving KubernetesBackend (on the API mock): the shared code path."""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client

from functions.core.config import load_settings
from functions.core.models import Environment, State, User
from functions.core.platform import build_platform
from functions.core.store.sqlite import SqliteStore
from functions.spawn.worker import run_spawn

from .conftest import kubernetes_backend
from .k8s_fake import serve
from .test_kubernetes_backend import HEALTHY, RUNNING

ENV_ID = "0123456789ab"


def test_worker_runs_an_environment_to_running_and_stop_keeps_the_volume(tmp_path):
    settings = load_settings({"CMBCLUSTER_DATA_DIR": str(tmp_path), "SECRET_KEY": "k" * 40,
                              "START_TIMEOUT": "20"})
    with serve() as fake:
        backend = kubernetes_backend(fake.url)
        platform = build_platform(settings, SqliteStore(tmp_path / "db.sqlite"))
        platform.backend = backend
        platform.store.upsert_user(User(id="alice", email="alice@example.org"))
        platform.store.claim_environment(Environment(id=ENV_ID, owner="alice",
                                                     profile="small"),
                                         max_per_user=1, max_total=10)
        pod = f"env-{ENV_ID}"
        fake.pod_scripts[pod] = [RUNNING]

        def become_ready() -> None:  # kubelet's readiness probe passes a moment later
            time.sleep(0.3)
            fake.set_pod_status(pod, HEALTHY)

        threading.Thread(target=become_ready, daemon=True).start()
        run_spawn(platform, {"environment": ENV_ID})

        env = platform.store.get_environment(ENV_ID)
        assert env.state == State.RUNNING, env.reason
        assert env.url == f"/user/alice/{ENV_ID}/"
        assert [e.phase for e in env.events] == [
            "scheduled", "image_ready", "container_started", "healthy"]
        assert fake.names("pods") == [pod]

        run_spawn(platform, {"environment": ENV_ID})  # a redelivered task: nothing new
        assert len([m for m, p, _ in fake.requests if m == "POST" and p.endswith("/pods")]) == 1

        backend.stop(ENV_ID)
        assert fake.names("pods") == [] and fake.names("persistentvolumeclaims") == [
            "workspace-alice"]
        backend.close()


def test_cloud_mode_builds_the_kubernetes_backend_and_the_tasks_queue(tmp_path, monkeypatch):
    import google.auth
    from google.auth.credentials import AnonymousCredentials

    import functions.core.backends.kubernetes as k8s
    from functions.core.platform import attach_cloud_adapters
    from functions.core.queue.cloudtasks import CloudTasksQueue

    settings = load_settings({
        "CMBCLUSTER_MODE": "cloud", "PROJECT_ID": "p", "SECRET_KEY": "k" * 40,
        "OIDC_CLIENT_ID": "c", "OIDC_CLIENT_SECRET": "s", "HOST": "0.0.0.0",
        "PUBLIC_URL": "https://cmb.example.org", "TASKS_LOCATION": "europe-west1",
        "TASKS_QUEUE": "spawn", "TASKS_TARGET_URL": "https://spawn.run.app",
        "TASKS_SERVICE_ACCOUNT": "tasks@p.iam.gserviceaccount.com",
        "K8S_AUTH_URL": "https://route.run.app/route/verify",
        "CMBCLUSTER_DATA_DIR": str(tmp_path),
    })
    # No cluster or Google credentials here: hand the adapters a client and anonymous
    # credentials; what is under test is that the settings reach them.
    api = client.ApiClient(client.Configuration(host="http://127.0.0.1:9"))
    monkeypatch.setattr(k8s, "_default_api_client", lambda: api)
    monkeypatch.setattr(google.auth, "default",
                        lambda *a, **kw: (AnonymousCredentials(), "p"))
    plat = attach_cloud_adapters(build_platform(settings, SqliteStore(tmp_path / "db")))
    assert isinstance(plat.backend, k8s.KubernetesBackend)
    assert plat.backend.cluster.host == "cmb.example.org"
    assert plat.backend.cluster.auth_url == "https://route.run.app/route/verify"
    assert isinstance(plat.queue, CloudTasksQueue)
    assert plat.queue.queue_path == "projects/p/locations/europe-west1/queues/spawn"


def test_cloud_mode_refuses_to_start_without_its_queue(tmp_path):
    from functions.core.config import ConfigError

    with pytest.raises(ConfigError, match="TASKS_QUEUE"):
        load_settings({"CMBCLUSTER_MODE": "cloud", "PROJECT_ID": "p", "SECRET_KEY": "k" * 40,
                       "OIDC_CLIENT_ID": "c", "OIDC_CLIENT_SECRET": "s",
                       "PUBLIC_URL": "https://x.org", "TASKS_LOCATION": "l",
                       "CMBCLUSTER_DATA_DIR": str(tmp_path)})

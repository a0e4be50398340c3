"""KubernetesBackend against a Kubernetes API mock, through the real Python client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from functions.core.backends.base import BackendError
from functions.core.backends.kubernetes import KubernetesBackend

from .conftest import kubernetes_backend, make_spec, validate
from .k8s_fake import FakeKubernetes, serve

POD = "env-0123456789ab"

SCHEDULED = {"type": "PodScheduled", "status": "True"}
READY = {"type": "Ready", "status": "True"}


def container(state: dict, ready: bool = False) -> dict:
    return {"name": "streamlit", "image": "user-env:1", "imageID": "", "ready": ready,
            "restartCount": 0, "state": state}


PULLING = {"phase": "Pending", "conditions": [SCHEDULED],
           "containerStatuses": [container({"waiting": {"reason": "ContainerCreating"}})]}
RUNNING = {"phase": "Running", "conditions": [SCHEDULED],
           "containerStatuses": [container({"running": {"startedAt": "2025-01-01T00:00:01Z"}})]}
HEALTHY = {**RUNNING, "conditions": [SCHEDULED, READY]}


@pytest.fixture
def fake() -> Iterator[FakeKubernetes]:
    with serve() as api:
        yield api


@pytest.fixture
def backend(fake: FakeKubernetes) -> Iterator[KubernetesBackend]:
    kube = kubernetes_backend(fake.url)
    yield kube
    kube.close()


class Progress:
    def __init__(self) -> None:
        self.phases: list[str] = []

    def __call__(self, phase: str, message: str, percent: int) -> None:
        self.phases.append(phase)


def test_start_creates_volume_pod_service_ingress_and_reports_phases(fake, backend):
    fake.pod_scripts[POD] = [{"phase": "Pending"}, {"phase": "Pending",
                                                    "conditions": [SCHEDULED]},
                             PULLING, RUNNING]
    progress = Progress()
    server = backend.start(make_spec(), progress)
    assert progress.phases == ["scheduled", "image_ready", "container_started"]
    assert server.env_id == "0123456789ab" and server.owner == "alice"
    assert server.base_path == "/user/alice/0123456789ab"
    assert fake.names("persistentvolumeclaims") == ["workspace-alice"]
    assert fake.names("pods") == fake.names("services") == fake.names("ingresses") == [POD]
    assert backend.route("0123456789ab") == server


def test_every_posted_object_validates(fake, backend):
    fake.pod_scripts[POD] = [RUNNING]
    backend.start(make_spec(CMBCLUSTER_OWNER="alice"), Progress())
    posted = fake.posted()
    assert [o["kind"] for o in posted] == ["PersistentVolumeClaim", "Pod", "Service", "Ingress"]
    for obj in posted:
        validate(obj)


def test_start_twice_makes_one_of_each(fake, backend):
    fake.pod_scripts[POD] = [RUNNING, RUNNING]
    first = backend.start(make_spec(), Progress())
    second = backend.start(make_spec(), Progress())  # every create answers 409
    assert first == second
    assert fake.names("pods") == [POD]
    posts = [path for method, path, _ in fake.requests if method == "POST"]
    assert len(posts) == 8  # four creates per start; the second four were 409s


def test_volume_kept_from_an_earlier_session_is_reused(fake, backend):
    fake.pod_scripts[POD] = [RUNNING]
    backend.start(make_spec(), Progress())
    backend.stop("0123456789ab")
    fake.pod_scripts["env-bbbbbbbbbbbb"] = [RUNNING]
    backend.start(make_spec("bbbbbbbbbbbb"), Progress())
    assert fake.names("persistentvolumeclaims") == ["workspace-alice"]
    assert fake.names("pods") == ["env-bbbbbbbbbbbb"]


def test_stop_removes_the_server_keeps_the_volume_and_is_idempotent(fake, backend):
    fake.pod_scripts[POD] = [RUNNING]
    backend.start(make_spec(), Progress())
    backend.stop("0123456789ab")
    assert fake.names("pods") == fake.names("services") == fake.names("ingresses") == []
    assert fake.names("persistentvolumeclaims") == ["workspace-alice"]
    assert backend.route("0123456789ab") is None
    backend.stop("0123456789ab")  # every delete answers 404
    backend.stop("not a valid id")


def test_is_healthy_follows_the_ready_condition(fake, backend):
    fake.pod_scripts[POD] = [RUNNING]
    server = backend.start(make_spec(), Progress())
    fake.set_pod_status(POD, RUNNING)
    assert backend.is_healthy(server) is False
    fake.set_pod_status(POD, HEALTHY)
    assert backend.is_healthy(server) is True


def test_a_pod_gone_while_starting_is_noticed_by_route(fake, backend):
    fake.pod_scripts[POD] = [RUNNING]
    server = backend.start(make_spec(), Progress())
    fake.remove("pods", POD)
    assert backend.is_healthy(server) is False
    assert backend.route("0123456789ab") is None  # the worker fails it at once


def test_is_healthy_survives_an_api_error(fake, backend):
    fake.pod_scripts[POD] = [RUNNING]
    server = backend.start(make_spec(), Progress())
    fake.set_pod_status(POD, HEALTHY)
    fake.fail_next.append(500)
    assert backend.is_healthy(server) is False
    assert backend.route("0123456789ab") == server  # a hiccup is not a crash
    assert backend.is_healthy(server) is True


def test_bad_image_fails_fast(fake, backend):
    bad = {"phase": "Pending", "conditions": [SCHEDULED], "containerStatuses": [
        container({"waiting": {"reason": "InvalidImageName", "message": "bad ref"}})]}
    fake.pod_scripts[POD] = [bad]
    with pytest.raises(BackendError, match="InvalidImageName"):
        backend.start(make_spec(), Progress())


def test_crash_loop_fails_fast_with_the_exit_code(fake, backend):
    crashing = container({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}})
    crashing["lastState"] = {"terminated": {"exitCode": 3, "reason": "Error"}}
    fake.pod_scripts[POD] = [{"phase": "Running", "conditions": [SCHEDULED],
                              "containerStatuses": [crashing]}]
    with pytest.raises(BackendError, match="exit code 3"):
        backend.start(make_spec(), Progress())


def test_start_gives_up_waiting_without_failing(fake, backend):
    backend.start_timeout = 0.1  # the worker's deadline judges what happens next
    progress = Progress()
    fake.pod_scripts[POD] = [{"phase": "Pending"}] * 1000
    server = backend.start(make_spec(), progress)
    assert progress.phases == []
    assert backend.route(server.env_id) == server


def test_start_refuses_a_pod_on_its_way_out(fake, backend):
    fake.pod_scripts[POD] = [RUNNING]
    backend.start(make_spec(), Progress())
    fake.mark_deleting(POD)
    with pytest.raises(BackendError, match="being deleted"):
        backend.start(make_spec(), Progress())


def test_api_errors_become_backend_errors(fake, backend):
    fake.fail_next.append(403)  # e.g. RBAC refuses the control plane's account
    with pytest.raises(BackendError, match="403"):
        backend.start(make_spec(), Progress())
    fake.fail_next.append(500)
    with pytest.raises(BackendError, match="500"):
        backend.stop("0123456789ab")


def test_servers_lists_pods_and_notices_deletion(fake, backend):
    for env_id in ("aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"):
        fake.pod_scripts[f"env-{env_id}"] = [RUNNING]
        backend.start(make_spec(env_id, owner="Bob_1"), Progress())
    fake.set_pod_status("env-bbbbbbbbbbbb", {"phase": "Failed"})
    fake.mark_deleting("env-cccccccccccc")
    listed = {s.env_id: s for s in backend.servers()}
    assert set(listed) == {"aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"}
    assert listed["aaaaaaaaaaaa"].alive is True
    assert listed["bbbbbbbbbbbb"].alive is False
    assert listed["cccccccccccc"].alive is False
    # The raw owner id comes back, not the label-safe slug.
    assert listed["aaaaaaaaaaaa"].owner == "Bob_1"
    assert listed["aaaaaaaaaaaa"].base_path == "/user/Bob_1/aaaaaaaaaaaa"

    fake.remove("pods", "env-aaaaaaaaaaaa")
    assert "aaaaaaaaaaaa" not in {s.env_id for s in backend.servers()}
    selectors = [path for method, path, _ in fake.requests
                 if method == "GET" and path.split("?")[0].endswith("/pods")]
    assert selectors and all("labelSelector=app%3Dcmbcluster-user-env" in p for p in selectors)


def test_workspace_size_is_unknown(backend):
    assert backend.workspace_bytes("alice") is None


def test_gke_client_sends_a_fresh_google_token(monkeypatch):
    import base64

    import google.auth

    from functions.core.backends.kubernetes import api_client_for_gke

    class Credentials:
        valid, token, refreshes = False, None, 0

        def refresh(self, request) -> None:
            self.refreshes += 1
            self.valid, self.token = True, f"token-{self.refreshes}"

    creds = Credentials()
    monkeypatch.setattr(google.auth, "default", lambda scopes: (creds, "p"))
    api = api_client_for_gke("172.16.0.2", base64.b64encode(b"PEM").decode())
    configuration = api.configuration
    assert configuration.host == "https://172.16.0.2"
    with open(configuration.ssl_ca_cert, "rb") as ca:
        assert ca.read() == b"PEM"
    assert configuration.auth_settings()["BearerToken"]["value"] == "Bearer token-1"
    assert configuration.auth_settings()["BearerToken"]["value"] == "Bearer token-1"
    creds.valid = False  # expired: the next request refreshes it
    assert configuration.auth_settings()["BearerToken"]["value"] == "Bearer token-2"
    api.close()

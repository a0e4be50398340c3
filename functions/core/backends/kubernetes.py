"""The Kubernetes backend: each environment is a Pod (+ Service + Ingress) on GKE.

The only module that imports the Kubernetes SDK. Objects come from `manifests` (pure);
this module only sends them and reads pod status.

start. Creates the owner's volume claim, then the pod, service and ingress, each under
a name derived from the environment id; a 409 Conflict means an earlier try made it,
which is fine, so a retried spawn task continues instead of starting a second server.
Then it polls the pod (a GET every `poll_seconds`) and reports the phases the worker
records: `scheduled` (PodScheduled), `image_ready` (the container is no longer waiting
to pull its image), `container_started` (running). It returns once the container
runs, or after `start_timeout`, leaving the rest of the wait to the worker's deadline;
it fails fast on errors that no wait can mend (a bad image name, a pod that failed).
Polling rather than a watch: a handful of GETs per start, no long-lived stream to
break on Cloud Run's request model.

is_healthy. The pod's Ready condition, not an HTTP probe of the pod IP. The readiness
probe is kubelet requesting the same `<base_path>/_stcore/health` from inside the node;
Cloud Run could reach a pod IP only through a VPC connector and a NetworkPolicy hole
(the policy admits ingress-nginx alone, on purpose); and Ready is also the moment the
Service gets the pod as an endpoint, i.e. when the ingress can actually serve it.

route. In the cloud ingress-nginx routes requests, not us, so `route` serves the worker
only: a lookup in the cache of servers this process started and has seen alive (no I/O,
as the port requires). `is_healthy` drops a server whose pod is gone or failed, so the
worker's `route(env_id) is None` check notices a crash without another API call.

stop deletes ingress, service and pod (404 is fine) and keeps the claim. servers() lists
pods by the `app=cmbcluster-user-env` label: alive while Pending or Running and not
being deleted.

Credentials. Pass an `ApiClient` (`api_client_for_gke` builds one from the GKE endpoint
and CA with Google application-default credentials: Cloud Run's service account, which
RBAC confines to the user namespace, see terraform/kubernetes.tf); without one, the
in-cluster service account or else the current kubeconfig context.
"""

from __future__ import annotations

import base64
import json
import logging
import tempfile
import threading
import time
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import manifests
from .base import Backend, BackendError, ProgressFn, Server, ServerSpec
from .manifests import Cluster

log = logging.getLogger(__name__)

# Waiting reasons no amount of waiting mends: fail the start now, with the reason.
# CrashLoopBackOff: the app has already exited at least once before it ever served.
_FATAL_WAITING = {"InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError",
                  "CrashLoopBackOff"}
_PULLING = {"ContainerCreating", "PodInitializing", "ErrImagePull", "ImagePullBackOff"}


def api_client_for_gke(endpoint: str, ca_certificate_b64: str) -> client.ApiClient:
    """An ApiClient for a GKE control plane, authenticated as the ambient Google
    service account; the token is refreshed before it expires."""
    import google.auth  # the cloud extra; imported here so tests need no credentials
    import google.auth.transport.requests

    credentials, _ = google.auth.default(
        scopes=["https://www.googleapis.com/auth/cloud-platform"])
    lock = threading.Lock()

    def refresh(configuration: client.Configuration) -> None:
        with lock:
            if not credentials.valid:
                credentials.refresh(google.auth.transport.requests.Request())
            configuration.api_key["authorization"] = credentials.token

    ca = tempfile.NamedTemporaryFile(prefix="gke-ca-", suffix=".pem", delete=False)  # noqa: SIM115
    with ca:
        ca.write(base64.b64decode(ca_certificate_b64))
    configuration = client.Configuration()
    configuration.host = endpoint if endpoint.startswith("https://") else f"https://{endpoint}"
    configuration.ssl_ca_cert = ca.name
    configuration.api_key_prefix["authorization"] = "Bearer"
    configuration.refresh_api_key_hook = refresh
    # The client consults the hook only when a key is already set: set the first one.
    refresh(configuration)
    return client.ApiClient(configuration)


def _default_api_client() -> client.ApiClient:
    """Inside a cluster its service account; elsewhere the current kubeconfig context."""
    from kubernetes import config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def _ok_if(status: int, call, *args, **kwargs) -> Any:
    """Run an API call; an ApiException with `status` (409 on create, 404 on delete)
    means the object is already as we want it."""
    try:
        return call(*args, **kwargs)
    except ApiException as err:
        if err.status != status:
            raise
        return None


class KubernetesBackend(Backend):
    def __init__(self, namespace: str, *, host: str, auth_url: str, hub_url: str,
                 ingress_class: str = "nginx", ingress_namespace: str = "ingress-nginx",
                 storage_class: str | None = None, image_pull_policy: str = "IfNotPresent",
                 tls_secret: str | None = None, node_selector: dict[str, str] | None = None,
                 start_timeout: float = 120.0, poll_seconds: float = 0.5,
                 request_timeout: float = 10.0,
                 api_client: client.ApiClient | None = None) -> None:
        self.cluster = Cluster(
            namespace=namespace, host=host, auth_url=auth_url, hub_url=hub_url,
            ingress_class=ingress_class, ingress_namespace=ingress_namespace,
            storage_class=storage_class, image_pull_policy=image_pull_policy,
            tls_secret=tls_secret, node_selector=dict(node_selector or {}),
            startup_seconds=max(1, int(start_timeout)))
        self.namespace = namespace
        self.start_timeout = start_timeout
        self.poll_seconds = poll_seconds
        self.request_timeout = request_timeout
        self._api_client = api_client or _default_api_client()
        self._core = client.CoreV1Api(self._api_client)
        self._networking = client.NetworkingV1Api(self._api_client)
        self._cache: dict[str, Server] = {}
        self._lock = threading.Lock()

    # -- the Backend port ------------------------------------------------------------

    def start(self, spec: ServerSpec, progress: ProgressFn) -> Server:
        try:
            claim, pod, service, ingress = manifests.environment_objects(self.cluster, spec)
        except ValueError as err:
            raise BackendError(str(err)) from None
        ns, timeout = self.namespace, self.request_timeout
        try:
            _ok_if(409, self._core.create_namespaced_persistent_volume_claim, ns, claim,
                   _request_timeout=timeout)
            created = _ok_if(409, self._core.create_namespaced_pod, ns, pod,
                             _request_timeout=timeout)
            if created is None:
                self._check_reusable(pod["metadata"]["name"])
            _ok_if(409, self._core.create_namespaced_service, ns, service,
                   _request_timeout=timeout)
            _ok_if(409, self._networking.create_namespaced_ingress, ns, ingress,
                   _request_timeout=timeout)
        except ApiException as err:
            raise BackendError(f"Kubernetes API: {err.status} {err.reason}") from None
        server = Server(spec.env_id, spec.owner, self._upstream(spec.env_id), spec.base_path)
        with self._lock:
            self._cache[spec.env_id] = server
        self._follow(spec.env_id, progress)
        return server

    def is_healthy(self, server: Server) -> bool:
        try:
            pod = self._read_pod(manifests.pod_name(server.env_id))
        except BackendError as err:  # the API hiccuped: not healthy yet, ask again later
            log.warning("health of %s unknown: %s", server.env_id, err,
                        extra={"environment": server.env_id})
            return False
        if pod is None or not _alive(pod):
            with self._lock:
                self._cache.pop(server.env_id, None)
            return False
        return _condition(pod.get("status") or {}, "Ready")

    def stop(self, env_id: str) -> None:
        with self._lock:
            self._cache.pop(env_id, None)
        try:
            name = manifests.pod_name(env_id)
        except ValueError:
            return  # no object can carry such a name
        ns, timeout = self.namespace, self.request_timeout
        try:
            # Routing goes first, so no request reaches a pod on its way out.
            _ok_if(404, self._networking.delete_namespaced_ingress, name, ns,
                   _request_timeout=timeout)
            _ok_if(404, self._core.delete_namespaced_service, name, ns,
                   _request_timeout=timeout)
            _ok_if(404, self._core.delete_namespaced_pod, name, ns, _request_timeout=timeout)
        except ApiException as err:
            raise BackendError(f"Kubernetes API: {err.status} {err.reason}") from None

    def servers(self) -> list[Server]:
        try:
            response = self._core.list_namespaced_pod(
                self.namespace, label_selector=f"{manifests.APP_LABEL}={manifests.APP}",
                _preload_content=False, _request_timeout=self.request_timeout)
        except ApiException as err:
            raise BackendError(f"Kubernetes API: {err.status} {err.reason}") from None
        found = []
        for pod in json.loads(response.data).get("items", []):
            meta = pod.get("metadata", {})
            env_id = (meta.get("labels") or {}).get(manifests.ENV_LABEL)
            if not env_id:
                continue
            annotations = meta.get("annotations") or {}
            found.append(Server(env_id, annotations.get(manifests.OWNER_ANNOTATION, ""),
                                self._upstream(env_id),
                                annotations.get(manifests.BASE_PATH_ANNOTATION, ""),
                                alive=_alive(pod)))
        return found

    def route(self, env_id: str) -> Server | None:
        return self._cache.get(env_id)

    def close(self) -> None:
        self._api_client.close()

    # -- helpers ---------------------------------------------------------------------

    def _upstream(self, env_id: str) -> str:
        # Informational: the in-cluster address ingress-nginx reaches (through the Service).
        return f"http://{manifests.pod_name(env_id)}.{self.namespace}.svc:{manifests.PORT}"

    def _read_pod(self, name: str) -> dict | None:
        try:
            response = self._core.read_namespaced_pod(
                name, self.namespace, _preload_content=False,
                _request_timeout=self.request_timeout)
        except ApiException as err:
            if err.status == 404:
                return None
            raise BackendError(f"Kubernetes API: {err.status} {err.reason}") from None
        return json.loads(response.data)

    def _check_reusable(self, name: str) -> None:
        """A pod by this name already exists (an earlier try of this start): use it,
        unless it is finished or on its way out; then this start cannot succeed."""
        pod = self._read_pod(name)
        if pod is not None and not _alive(pod):
            raise BackendError(f"pod {name} exists but has ended or is being deleted; "
                               "retry once it is gone")

    def _follow(self, env_id: str, progress: ProgressFn) -> None:
        """Report scheduled / image_ready / container_started as the pod gets there."""
        name = manifests.pod_name(env_id)
        reported: set[str] = set()

        def report(phase: str, message: str, percent: int) -> None:
            if phase not in reported:
                reported.add(phase)
                progress(phase, message, percent)

        deadline = time.monotonic() + self.start_timeout
        while True:
            pod = self._read_pod(name)
            if pod is None:
                raise BackendError(f"pod {name} was deleted while starting")
            status = pod.get("status") or {}
            if status.get("phase") == "Failed":
                raise BackendError(f"pod {name} failed: {status.get('reason') or ''} "
                                   f"{status.get('message') or ''}".strip())
            if _condition(status, "PodScheduled"):
                report("scheduled", "A machine was found for your environment", 20)
            container = next(iter(status.get("containerStatuses") or []), None)
            state = (container or {}).get("state") or {}
            waiting = state.get("waiting") or {}
            reason = waiting.get("reason", "")
            if reason in _FATAL_WAITING:
                last = ((container or {}).get("lastState") or {}).get("terminated") or {}
                exit_code = f" (exit code {last['exitCode']})" if "exitCode" in last else ""
                raise BackendError(f"{reason}{exit_code}: {waiting.get('message', '')}"
                                   .rstrip(": "))
            if container is not None and (not waiting or reason not in _PULLING):
                report("scheduled", "A machine was found for your environment", 20)
                report("image_ready", "The research software is ready", 50)
            if "running" in state:
                report("container_started", "Starting your environment", 70)
                return
            if "terminated" in state:  # it ran and exited: it will restart; let the
                return                 # worker's health wait and deadline judge it
            if time.monotonic() >= deadline:
                log.warning("pod %s not running after %.0f s (%s)", name, self.start_timeout,
                            reason or status.get("phase"), extra={"environment": env_id})
                return
            time.sleep(self.poll_seconds)


def _condition(status: dict, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in status.get("conditions") or [])


def _alive(pod: dict) -> bool:
    return ((pod.get("metadata") or {}).get("deletionTimestamp") is None
            and (pod.get("status") or {}).get("phase", "Pending") in ("Pending", "Running"))

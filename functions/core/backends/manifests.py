"""Kubernetes objects for one research environment, as plain dicts (no SDK, no I/O).

Pure functions in the manner of KubeSpawner's objects.py: the Kubernetes backend POSTs
exactly what these return, and the tests validate each against the Kubernetes schemas.

Per environment (named after the environment id, so creating twice is a 409, not a
second server): a Pod `env-<id>`, a Service and an Ingress of the same name.
Per owner: a PersistentVolumeClaim `workspace-<owner>`, kept across sessions.
Per namespace: one NetworkPolicy confining every pod in it.

Names. Environment ids are already DNS labels (12 lower-case alphanumerics). Owner ids
may hold upper case and underscores, which object names and label values refuse, so
`owner_slug` maps them: a name that is already a clean DNS label stays as it is; any
other becomes a cleaned prefix, `--`, and a hash of the original. Clean names never
contain `--`, so two owners never share a volume (Alice and alice included). The raw
owner id travels in an annotation, which accepts any string.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from .base import ServerSpec

APP_LABEL = "app"
APP = "cmbcluster-user-env"
WORKSPACE_APP = "cmbcluster-workspace"
ENV_LABEL = "cmbcluster/env-id"
OWNER_LABEL = "cmbcluster/owner"
OWNER_ANNOTATION = "cmbcluster/owner"
BASE_PATH_ANNOTATION = "cmbcluster/base-path"
PROFILE_ANNOTATION = "cmbcluster/profile"

PORT = 8501
WORKSPACE = "/workspace"
UID = GID = 1000
NETWORK_POLICY = "cmbcluster-user-envs"
# Streamlit's default server.maxUploadSize is 200 MB: nginx must not refuse less.
MAX_BODY = "200m"
# Streamlit holds one websocket per tab for as long as the tab is open; nginx's default
# 60 s read timeout would cut idle tabs off every minute.
WEBSOCKET_TIMEOUT_SECONDS = "3600"

# Egress never reaches these: cluster-internal and private addresses (other users' pods,
# the nodes, the control plane's VPC) and link-local, which holds the metadata server
# (169.254.169.254, and GKE's 169.254.169.252) and its node credentials.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                  "100.64.0.0/10")

_ENV_ID = re.compile(r"^[a-z0-9]{1,50}$")
_CLEAN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_SLUG_MAX = 40  # workspace-<slug> and label values both stay well under 63


@dataclass(frozen=True)
class Cluster:
    """Where and how environments run: the deployment's side of every manifest."""

    namespace: str
    # Host each environment is served on. `{env_id}` and `{owner}` (the slug) are
    # substituted, so "{env_id}.apps.example.org" gives each environment its own origin
    # and "cmbcluster.example.org" serves them all under the platform's host.
    host: str
    auth_url: str  # the route function's GET /route/verify, reachable from ingress-nginx
    hub_url: str  # where the hub signs people in (its /auth/login and /auth/env-login)
    ingress_class: str = "nginx"
    ingress_namespace: str = "ingress-nginx"
    storage_class: str | None = None  # None: the cluster's default class
    image_pull_policy: str = "IfNotPresent"
    tls_secret: str | None = None  # a certificate for `host` (e.g. a wildcard), if any
    tmp_size: str = "1Gi"
    node_selector: dict[str, str] = field(default_factory=dict)
    startup_seconds: int = 120  # how long the startup probe lets Streamlit come up


def pod_name(env_id: str) -> str:
    if not _ENV_ID.match(env_id):
        raise ValueError(f"environment id {env_id!r} is not a DNS label")
    return f"env-{env_id}"


def owner_slug(owner: str) -> str:
    """A DNS-label-safe, label-value-safe name for `owner`, distinct for each owner."""
    if not owner:
        raise ValueError("empty owner")
    if _CLEAN.match(owner) and len(owner) <= _SLUG_MAX:
        return owner
    digest = hashlib.sha256(owner.encode()).hexdigest()[:10]
    cleaned = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", owner.lower())).strip("-")
    prefix = cleaned[:_SLUG_MAX - len(digest) - 2].strip("-") or "user"
    return f"{prefix}--{digest}"


def claim_name(owner: str) -> str:
    return f"workspace-{owner_slug(owner)}"


def host_for(cluster: Cluster, env_id: str, owner: str) -> str:
    return cluster.host.format(env_id=env_id, owner=owner_slug(owner))


def signin_url(cluster: Cluster, env_id: str) -> str:
    """Where ingress-nginx sends a browser the route function answered 401. On a shared
    host the hub's session cookie is the credential: sign in. On the environment's own
    host it never arrives there: the hub hands a one-time ticket over instead
    (functions/core/env_access.py)."""
    if "{env_id}" in cluster.host:
        return f"{cluster.hub_url}/auth/env-login?env={env_id}&next=$escaped_request_uri"
    return f"{cluster.hub_url}/auth/login?next=$escaped_request_uri"


def env_labels(spec: ServerSpec) -> dict[str, str]:
    return {APP_LABEL: APP, ENV_LABEL: spec.env_id, OWNER_LABEL: owner_slug(spec.owner)}


def _metadata(name: str, cluster: Cluster, spec: ServerSpec) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": cluster.namespace,
        "labels": env_labels(spec),
        "annotations": {OWNER_ANNOTATION: spec.owner, BASE_PATH_ANNOTATION: spec.base_path,
                        PROFILE_ANNOTATION: spec.profile.name},
    }


def _quantity_cpu(cores: float) -> str:
    return f"{max(1, math.ceil(cores * 1000))}m"


def _environment(spec: ServerSpec) -> list[dict[str, str]]:
    threads = str(max(1, math.ceil(spec.profile.cpu)))
    variables = {name: threads for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                            "MKL_NUM_THREADS", "NUMEXPR_MAX_THREADS")}
    variables.update(spec.env)
    # The platform's own settings win: the probes and the ingress depend on them.
    variables.update(STREAMLIT_SERVER_BASE_URL_PATH=spec.base_path,
                     CMBCLUSTER_WORKSPACE=WORKSPACE, CMBCLUSTER_ENV_ID=spec.env_id)
    return [{"name": k, "value": v} for k, v in sorted(variables.items())]


def _probe(spec: ServerSpec, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": f"{spec.base_path}/_stcore/health", "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def pod(cluster: Cluster, spec: ServerSpec) -> dict[str, Any]:
    """The environment's server: one Streamlit container, locked down."""
    profile = spec.profile
    memory = f"{profile.memory_mb}Mi"
    pod_spec: dict[str, Any] = {
        # No Kubernetes credentials and no list of the namespace's Services (one per
        # environment, and none of the user's business) inside the environment.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 15,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": GID,
            "fsGroup": GID,
            # A big workspace is not chowned file by file on every start.
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [{
            "name": "streamlit",
            "image": profile.image,
            "imagePullPolicy": cluster.image_pull_policy,
            "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
            "env": _environment(spec),
            "resources": {
                # CPU: a quarter reserved, the profile's worth allowed, so a node packs
                # idle sessions densely. Memory is not compressible: request = limit, so
                # nobody is OOM-killed for a neighbour's burst.
                "requests": {"cpu": _quantity_cpu(profile.cpu / 4), "memory": memory},
                "limits": {"cpu": _quantity_cpu(profile.cpu), "memory": memory},
            },
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "privileged": False,
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "volumeMounts": [
                {"name": "workspace", "mountPath": WORKSPACE},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
            # The startup probe gives a slow first import time; after it, readiness gates
            # the Service (and the worker's "healthy"), liveness restarts a hung server.
            "startupProbe": _probe(spec, 1, cluster.startup_seconds),
            "readinessProbe": _probe(spec, 2, 2),
            "livenessProbe": _probe(spec, 20, 3),
        }],
        "volumes": [
            {"name": "workspace",
             "persistentVolumeClaim": {"claimName": claim_name(spec.owner)}},
            {"name": "tmp", "emptyDir": {"sizeLimit": cluster.tmp_size}},
        ],
    }
    if cluster.node_selector:
        pod_spec["nodeSelector"] = dict(cluster.node_selector)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": _metadata(pod_name(spec.env_id), cluster, spec), "spec": pod_spec}


def workspace_claim(cluster: Cluster, spec: ServerSpec) -> dict[str, Any]:
    """The owner's files. Not labelled as an environment, so nothing that lists or
    deletes environments ever touches it."""
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": f"{spec.profile.storage_gb}Gi"}},
    }
    if cluster.storage_class:
        claim_spec["storageClassName"] = cluster.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": claim_name(spec.owner),
            "namespace": cluster.namespace,
            "labels": {APP_LABEL: WORKSPACE_APP, OWNER_LABEL: owner_slug(spec.owner)},
            "annotations": {OWNER_ANNOTATION: spec.owner},
        },
        "spec": claim_spec,
    }


def service(cluster: Cluster, spec: ServerSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(pod_name(spec.env_id), cluster, spec),
        "spec": {
            "type": "ClusterIP",
            "selector": {APP_LABEL: APP, ENV_LABEL: spec.env_id},
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def ingress(cluster: Cluster, spec: ServerSpec) -> dict[str, Any]:
    """Routes `<host><base_path>/` to the environment, behind the route function."""
    name = pod_name(spec.env_id)
    host = host_for(cluster, spec.env_id, spec.owner)
    metadata = _metadata(name, cluster, spec)
    prefix = "nginx.ingress.kubernetes.io/"
    metadata["annotations"].update({
        # Every request (and websocket handshake) is checked by the route function.
        prefix + "auth-url": cluster.auth_url,
        # A 401 sends the browser to sign in and back. Naming the parameter ourselves
        # keeps ingress-nginx from appending its own absolute `rd=` URL: `next` stays a
        # path, the only kind the hub's login accepts.
        prefix + "auth-signin": signin_url(cluster, spec.env_id),
        prefix + "auth-signin-redirect-param": "next",
        prefix + "auth-response-headers": "X-Auth-User",
        prefix + "proxy-body-size": MAX_BODY,
        prefix + "proxy-read-timeout": WEBSOCKET_TIMEOUT_SECONDS,
        prefix + "proxy-send-timeout": WEBSOCKET_TIMEOUT_SECONDS,
        # Streamlit streams script output; buffering would hold it back.
        prefix + "proxy-buffering": "off",
    })
    ingress_spec: dict[str, Any] = {
        "ingressClassName": cluster.ingress_class,
        "rules": [{
            "host": host,
            "http": {"paths": [{
                "path": f"{spec.base_path}/",
                "pathType": "Prefix",
                "backend": {"service": {"name": name, "port": {"name": "http"}}},
            }]},
        }],
    }
    if cluster.tls_secret:
        ingress_spec["tls"] = [{"hosts": [host], "secretName": cluster.tls_secret}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": metadata, "spec": ingress_spec}


def network_policy(cluster: Cluster) -> dict[str, Any]:
    """Every pod in the namespace: reachable only from ingress-nginx on the app port;
    may resolve names and reach the public internet, nothing private or link-local.
    Selecting all pods (not only labelled ones) means a pod created by hand is confined
    too."""
    dns_ports = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": NETWORK_POLICY, "namespace": cluster.namespace,
                     "labels": {APP_LABEL: APP}},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{
                "from": [{"namespaceSelector": {"matchLabels": {
                    "kubernetes.io/metadata.name": cluster.ingress_namespace}}}],
                "ports": [{"protocol": "TCP", "port": PORT}],
            }],
            "egress": [
                # kube-dns is cluster-internal, so it needs its own rule.
                {"to": [{"namespaceSelector": {"matchLabels": {
                            "kubernetes.io/metadata.name": "kube-system"}},
                         "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                 "ports": dns_ports},
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}]},
            ],
        },
    }


def environment_objects(cluster: Cluster, spec: ServerSpec) -> list[dict[str, Any]]:
    """Everything `start` creates, in creation order (the volume before its pod)."""
    return [workspace_claim(cluster, spec), pod(cluster, spec), service(cluster, spec),
            ingress(cluster, spec)]


HANDOFF_NAME = "cmbcluster-env-handoff"


def handoff_objects(cluster: Cluster, apps_domain: str, route_host: str) -> list[dict[str, Any]]:
    """The one route every environment host needs besides its own: `/_cmbcluster/` on
    `*.<apps_domain>` goes to the route function (a Cloud Run service outside the
    cluster, reached through an ExternalName Service), where the hub's one-time ticket
    becomes the environment's cookie. No auth-url here: this is how a browser gets one."""
    labels = {APP_LABEL: "cmbcluster-handoff"}
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": HANDOFF_NAME, "namespace": cluster.namespace, "labels": labels},
        "spec": {"type": "ExternalName", "externalName": route_host,
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]},
    }
    prefix = "nginx.ingress.kubernetes.io/"
    host = f"*.{apps_domain}"
    ingress_spec: dict[str, Any] = {
        "ingressClassName": cluster.ingress_class,
        "rules": [{"host": host, "http": {"paths": [{
            "path": "/_cmbcluster/", "pathType": "Prefix",
            "backend": {"service": {"name": HANDOFF_NAME, "port": {"name": "https"}}},
        }]}}],
    }
    if cluster.tls_secret:
        ingress_spec["tls"] = [{"hosts": [host], "secretName": cluster.tls_secret}]
    ingress_obj = {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {
            "name": HANDOFF_NAME, "namespace": cluster.namespace, "labels": labels,
            "annotations": {
                # Cloud Run routes on its own host name and speaks only HTTPS.
                prefix + "backend-protocol": "HTTPS",
                prefix + "upstream-vhost": route_host,
                prefix + "proxy-ssl-server-name": "on",
            },
        },
        "spec": ingress_spec,
    }
    return [service, ingress_obj]

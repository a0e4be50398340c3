"""Shared pieces of the cloud adapter tests."""

from __future__ import annotations

import kubernetes_validate
import pytest
from kubernetes import client

from functions.core.backends.base import ServerSpec
from functions.core.backends.kubernetes import KubernetesBackend
from functions.core.backends.manifests import Cluster
from functions.core.config import Profile

# GKE's regular channel is within a few minors of this; strict rejects unknown fields.
K8S_VERSION = "1.30.0"

PROFILE = Profile("medium", 2.0, 4096, 20, "europe-docker.pkg.dev/p/r/user-env:1", "")


def validate(obj: dict) -> None:
    """Raise if `obj` is not a valid object of its kind (unknown fields included)."""
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def make_spec(env_id: str = "0123456789ab", owner: str = "alice", **env: str) -> ServerSpec:
    return ServerSpec(env_id=env_id, owner=owner, profile=PROFILE,
                      base_path=f"/user/{owner}/{env_id}", env=dict(env))


@pytest.fixture
def cluster() -> Cluster:
    return Cluster(namespace="cmbcluster", host="cmbcluster.example.org",
                   auth_url="https://route-abc.a.run.app/route/verify",
                   hub_url="https://cmbcluster.example.org",
                   storage_class="standard-rwo", tls_secret="cmbcluster-tls")


def kubernetes_backend(api_url: str, **options) -> KubernetesBackend:
    """The real backend and the real kubernetes client, pointed at a fake API server."""
    configuration = client.Configuration()
    configuration.host = api_url
    return KubernetesBackend(
        "cmbcluster", host="cmbcluster.example.org",
        auth_url="https://route.example.run.app/route/verify",
        hub_url="https://cmbcluster.example.org",
        start_timeout=5, poll_seconds=0.01, request_timeout=5,
        api_client=client.ApiClient(configuration), **options)

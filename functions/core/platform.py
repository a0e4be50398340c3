"""What every function shares at run time, built once per process from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from .backends.base import Backend
from .config import Settings
from .queue.base import TaskQueue
from .sessions import SessionGuard
from .store.base import Store
from .tokens import TokenSigner


@dataclass
class Platform:
    settings: Settings
    store: Store
    sessions: SessionGuard
    backend: Backend | None = None
    queue: TaskQueue | None = None
    services: dict = field(default_factory=dict)  # per-function singletons (rate limits...)
    public_url: str = ""  # where browsers (and environments) reach the platform

    def __post_init__(self) -> None:
        self.public_url = self.public_url or self.settings.public_url

    @property
    def signer(self) -> TokenSigner:
        return self.sessions.signer


def open_store(settings: Settings) -> Store:
    if settings.store == "firestore":
        from .store.firestore import FirestoreStore  # only cloud mode imports the SDK

        return FirestoreStore(project=settings.project_id, database=settings.firestore_database)
    from .store.sqlite import SqliteStore

    return SqliteStore(settings.data_dir / "cmbcluster.db")


def build_platform(settings: Settings, store: Store | None = None) -> Platform:
    store = store or open_store(settings)
    return Platform(settings=settings, store=store,
                    sessions=SessionGuard(TokenSigner(settings.secret_key), store))


def attach_cloud_adapters(platform: Platform) -> Platform:
    """Cloud mode: environments are pods on GKE, spawn work goes through Cloud Tasks."""
    from urllib.parse import urlsplit

    from .backends.kubernetes import KubernetesBackend, api_client_for_gke
    from .queue.cloudtasks import CloudTasksQueue

    s, c = platform.settings, platform.settings.cloud
    api = api_client_for_gke(c.k8s_endpoint, c.k8s_ca_cert) if c.k8s_endpoint else None
    platform.backend = KubernetesBackend(
        s.namespace, host=c.k8s_apps_host or urlsplit(s.public_url).hostname,
        auth_url=c.k8s_auth_url, hub_url=s.public_url,
        ingress_class=c.k8s_ingress_class, ingress_namespace=c.k8s_ingress_namespace,
        storage_class=c.k8s_storage_class or None, image_pull_policy=c.k8s_image_pull_policy,
        tls_secret=c.k8s_tls_secret or None, start_timeout=s.start_timeout, api_client=api)
    platform.queue = CloudTasksQueue(s.project_id, c.tasks_location, c.tasks_queue,
                                     c.tasks_target_url, c.tasks_service_account)
    return platform

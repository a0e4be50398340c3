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

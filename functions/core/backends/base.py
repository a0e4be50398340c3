"""The Backend port: where environments run (local processes, or pods on GKE).

The spawn worker drives a backend through `start` and `is_healthy`; the proxy asks it
for `route`; the reconciler compares `servers()` with the store. Every call is
idempotent by environment id: starting twice gives one server, stopping twice is fine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import Profile

# progress(phase, message, percent): the worker turns these into events and timings.
ProgressFn = Callable[[str, str, int], None]


class BackendError(Exception):
    """The backend could not create or reach a server (the message says why)."""


@dataclass(frozen=True)
class ServerSpec:
    env_id: str
    owner: str
    profile: Profile
    base_path: str  # e.g. /user/alice/0123456789ab, no trailing slash
    env: dict[str, str] = field(default_factory=dict)  # extra variables for the app


@dataclass(frozen=True)
class Server:
    env_id: str
    owner: str
    upstream: str  # base URL the proxy forwards to, e.g. http://127.0.0.1:41234
    base_path: str
    alive: bool = True


class Backend(ABC):
    @abstractmethod
    def start(self, spec: ServerSpec, progress: ProgressFn) -> Server:
        """Create the workspace if missing and the server if missing; return at once
        (health is the worker's to wait for)."""

    @abstractmethod
    def is_healthy(self, server: Server) -> bool:
        """One probe of `<base_path>/_stcore/health`."""

    @abstractmethod
    def stop(self, env_id: str) -> None:
        """Remove the server; keep the workspace. No error when it is already gone."""

    @abstractmethod
    def servers(self) -> list[Server]:
        """Every server this backend knows of, live or exited (for the reconciler)."""

    @abstractmethod
    def route(self, env_id: str) -> Server | None:
        """The live server the proxy forwards this environment's requests to, if any.
        Called on every proxied request: no I/O."""

    def usage(self) -> dict[str, tuple[float, int]]:
        """CPU seconds and resident bytes per live environment, when the backend can tell
        (the cloud reads these from the cluster's own metrics instead)."""
        return {}

    def workspace_bytes(self, owner: str) -> int | None:
        """Disk used by the owner's workspace, when the backend can tell."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Stop what the backend itself runs (not the servers)."""

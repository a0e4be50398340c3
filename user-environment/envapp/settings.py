"""Where the environment's files live, read from the environment variables the
platform sets on the server process (local backend) or the pod (Kubernetes)."""

from __future__ import annotations

import os
from pathlib import Path

WORKSPACE_ENV = "CMBCLUSTER_WORKSPACE"
SHARED_ENV = "CMBCLUSTER_SHARED_DIR"
OWNER_ENV = "CMBCLUSTER_OWNER"
DEFAULT_WORKSPACE = "/workspace"
APPS_DIRNAME = "apps"


def workspace_dir() -> Path:
    """The user's persistent workspace, or the current directory when it is missing
    (running the app by hand on a laptop)."""
    configured = Path(os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE)
    if configured.is_dir():
        return configured.resolve()
    return Path.cwd().resolve()


def shared_dir() -> Path | None:
    """The team's read-only data directory, when one is configured and mounted."""
    value = os.environ.get(SHARED_ENV)
    if not value:
        return None
    path = Path(value)
    return path.resolve() if path.is_dir() else None


def owner() -> str | None:
    """Who this environment belongs to (the platform sets it; absent when run by hand)."""
    return os.environ.get(OWNER_ENV) or None


def apps_dir(workspace: Path) -> Path:
    """Where users put their own Streamlit pages."""
    return workspace / APPS_DIRNAME

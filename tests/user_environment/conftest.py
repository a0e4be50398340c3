"""Shared fixtures for the research-environment tests.

The app is not an installed package (the image copies it to /app), so its directory
goes on sys.path here, as `streamlit run` does for the real server.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

APP_DIR = Path(__file__).resolve().parents[2] / "user-environment"
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace the app is pointed at, with no shared area or activity URL."""
    root = tmp_path / "workspace"
    root.mkdir()
    monkeypatch.setenv("CMBCLUSTER_WORKSPACE", str(root))
    for name in ("CMBCLUSTER_SHARED_DIR", "CMBCLUSTER_OWNER", "CMBCLUSTER_ACTIVITY_URL",
                 "CMBCLUSTER_ACTIVITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return root


@pytest.fixture(scope="session")
def planck_spectra():
    """Planck 2018 spectra to ell=2000, computed once for the whole run (CAMB takes
    seconds). Going through the app's cache lets the page tests reuse the result."""
    from envapp.caching import cached_spectra
    from envapp.cmb import CosmoParams

    frame, _seconds = cached_spectra(CosmoParams(), 2000, True)
    return frame

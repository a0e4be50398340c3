"""Fixtures for the sign-in tests; the rig itself lives in oidc_rig.py (importable by the
tests, which a conftest module is not reliably)."""

from .oidc_rig import hub_server, make_hub, oidc, relay  # noqa: F401

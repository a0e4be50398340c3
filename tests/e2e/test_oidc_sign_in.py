"""Signing in through a real OpenID provider (npm `oidc-provider`), in the browser.

A platform of its own: with an OIDC client configured the dev login is off, and the
provider must know the platform's callback URL before either starts, so the port is
chosen first and handed to both.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from ..auth.oidc_rig import (
    ACCOUNTS,
    CLIENT_ID,
    CLIENT_SECRET,
    OIDC_DIR,
    Provider,
    start_provider,
    stop_provider,
)
from ..conftest import free_port, missing_service
from .conftest import Platform, start_platform, stop_platform


@pytest.fixture(scope="module")
def oidc_platform(tmp_path_factory) -> Iterator[tuple[Platform, Provider]]:
    if shutil.which("node") is None:
        missing_service("node is not installed")
    if not (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        missing_service("the test OpenID provider is not installed: npm ci --prefix tests/oidc")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    provider = start_provider({
        "OIDC_CLIENTS": json.dumps([{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                     "redirect_uris": [f"{url}/auth/callback"]}]),
        "OIDC_ACCOUNTS": json.dumps(ACCOUNTS),
    })
    try:
        plat = start_platform(
            tmp_path_factory.mktemp("e2e-oidc") / "data", PORT=str(port), PUBLIC_URL=url,
            OIDC_CLIENT_ID=CLIENT_ID, OIDC_CLIENT_SECRET=CLIENT_SECRET,
            OIDC_SERVER_METADATA_URL=provider.metadata_url)
        try:
            yield plat, provider
        finally:
            stop_platform(plat.proc)
    finally:
        stop_provider(provider.process)


def test_sign_in_with_the_openid_provider(oidc_platform, new_page, shot):
    plat, provider = oidc_platform
    page = new_page()
    page.goto(f"{plat.url}/hub/")
    button = page.get_by_role("button", name="Sign in with 127.0.0.1")  # the provider's host
    expect(button).to_be_visible()
    expect(page.get_by_text("Local mode")).to_have_count(0)  # no dev login here
    shot(page, "1-sign-in-page")

    button.click()
    # The provider's own login page, on its own origin.
    expect(page.locator('input[name="login"]')).to_be_visible()
    assert page.url.startswith(provider.url)
    shot(page, "2-provider-login")
    page.locator('input[name="login"]').fill("alice")
    page.locator('input[name="password"]').fill("any")
    page.locator('button[type="submit"]').click()

    # Back through /auth/callback to the hub, signed in as the provider's account.
    expect(page.get_by_text(f"Signed in as {ACCOUNTS['alice']['email']}")).to_be_visible()
    expect(page).to_have_url(f"{plat.url}/hub/")
    expect(page.get_by_role("button", name="Launch environment")).to_be_visible()
    shot(page, "3-signed-in")
    me = page.request.get(f"{plat.url}/api/me").json()
    assert (me["email"], me["name"]) == ("alice@uni.example", "Alice Analyst")

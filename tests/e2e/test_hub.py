"""The hub and a research environment in a real browser, against `make up`'s stack.

Every test signs its own people in through the dev login, so each can run alone; the
platform (one `python -m functions.cli up`) is shared by the module.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .conftest import ADMIN, START_TIMEOUT_MS, Platform

CAMB_TIMEOUT_MS = 120_000  # a cold CAMB run at lmax 2000 takes 10-20 s on two cores


def dev_sign_in(page: Page, url: str, username: str) -> None:
    """Sign in the way a person does: the hub's button, then the dev login form."""
    page.goto(f"{url}/hub/")
    page.get_by_role("button", name="Sign in (local development)").click()
    page.get_by_label("User name").fill(username)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text(f"Signed in as {username}@localhost")).to_be_visible()


def launch_from_hub(page: Page) -> str:
    """Click Launch and wait for the Open link; its href is the environment's URL."""
    page.get_by_role("button", name="Launch environment").click()
    open_link = page.get_by_role("link", name="Open environment")
    expect(open_link).to_be_visible(timeout=START_TIMEOUT_MS)
    return open_link.get_attribute("href")


def open_environment(page: Page, url: str, env_path: str, subpage: str = "") -> None:
    page.goto(f"{url}{env_path}{subpage}")


def test_dev_login_signs_in_and_out(platform: Platform, new_page, shot):
    page = new_page()
    page.goto(f"{platform.url}/")  # / sends the browser to the hub
    expect(page.get_by_role("button", name="Sign in (local development)")).to_be_visible()
    expect(page).to_have_url(f"{platform.url}/hub/")
    shot(page, "1-sign-in-page")

    page.get_by_role("button", name="Sign in (local development)").click()
    expect(page.get_by_label("User name")).to_be_visible()
    shot(page, "2-dev-login-form")
    page.get_by_label("User name").fill("dana")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text("Signed in as dana@localhost")).to_be_visible()
    expect(page.get_by_role("heading", name="Your research environment")).to_be_visible()
    # Profiles show what they give: CPU, memory and storage.
    expect(page.get_by_text("small: 1 CPU · 2 GiB memory · 10 GB storage")).to_be_visible()
    expect(page.get_by_text("Your workspace")).to_be_visible()
    # A researcher sees no admin pages.
    expect(page.get_by_role("link", name="Users")).to_have_count(0)
    shot(page, "3-home")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in (local development)")).to_be_visible()
    assert page.request.get(f"{platform.url}/api/me").status == 401
    shot(page, "4-signed-out")


def test_launch_shows_progress_then_the_environment_and_a_camb_plot(
        platform: Platform, new_page, shot):
    page = new_page()
    dev_sign_in(page, platform.url, "alice")
    page.get_by_role("button", name="Launch environment").click()

    # Live progress: the heading at once, then the bar carrying the spawn events' words.
    expect(page.get_by_text("Starting your environment")).to_be_visible()
    bar = page.get_by_test_id("stProgress")
    expect(bar).to_be_visible()
    expect(bar).to_contain_text(re.compile(r"\(\d+%\)"), timeout=START_TIMEOUT_MS)
    shot(page, "1-progress")

    open_link = page.get_by_role("link", name="Open environment")
    expect(open_link).to_be_visible(timeout=START_TIMEOUT_MS)
    expect(page.get_by_text("Your environment is running")).to_be_visible()
    expect(page.get_by_text("Starting your environment")).to_have_count(0)
    env_path = open_link.get_attribute("href")
    assert re.fullmatch(r"/user/alice/[0-9a-f]+/", env_path), env_path
    shot(page, "2-running")

    # Through the proxy: the research app's own page, for its owner.
    open_environment(page, platform.url, env_path)
    expect(page.get_by_text("Your CMBCluster research environment")).to_be_visible(
        timeout=START_TIMEOUT_MS)
    expect(page.get_by_text("Signed in as alice")).to_be_visible()
    expect(page.get_by_test_id("stCode")).to_be_visible()  # the page has finished drawing
    shot(page, "3-environment-home")

    open_environment(page, platform.url, env_path, "cmb")
    expect(page.get_by_role("heading", name="CMB power spectra")).to_be_visible()
    chart = page.get_by_test_id("stPlotlyChart")
    expect(chart).to_be_visible(timeout=CAMB_TIMEOUT_MS)
    expect(chart.locator(".main-svg").first).to_be_visible()
    expect(page.get_by_text(re.compile(r"computed in [\d.]+ s"))).to_be_visible()
    shot(page, "4-camb-spectra")


def test_a_file_uploaded_survives_stop_and_relaunch(platform: Platform, new_page, shot):
    page = new_page()
    dev_sign_in(page, platform.url, "bob")
    first = launch_from_hub(page)

    open_environment(page, platform.url, first, "workspace")
    expect(page.get_by_role("heading", name="Workspace")).to_be_visible(
        timeout=START_TIMEOUT_MS)
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        {"name": "planck-notes.txt", "mimeType": "text/plain",
         "buffer": b"TT peak near ell = 220\n"})
    expect(page.get_by_text("Uploaded planck-notes.txt")).to_be_visible()
    expect(page.get_by_role("button", name="planck-notes.txt")).to_be_visible()
    shot(page, "1-uploaded")

    page.goto(f"{platform.url}/hub/")
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_role("button", name="Launch environment")).to_be_visible()
    expect(page.get_by_text("Your environment is running")).to_have_count(0)
    # The workspace size counts the upload (23 bytes) now the server is gone.
    size = page.get_by_test_id("stMetricValue")
    expect(size).to_have_count(1)  # the last run's element is gone once the rerun ends
    expect(size).to_have_text("23 B")
    shot(page, "2-stopped")

    second = launch_from_hub(page)
    assert second != first  # a new server (new id), the same workspace
    shot(page, "3-relaunched")
    open_environment(page, platform.url, second, "workspace")
    expect(page.get_by_role("button", name="planck-notes.txt")).to_be_visible(
        timeout=START_TIMEOUT_MS)
    shot(page, "4-file-still-there")


def test_another_user_cannot_open_an_environment(platform: Platform, new_page, shot):
    carol_env = platform.launch("carol")

    mallory = new_page()
    dev_sign_in(mallory, platform.url, "mallory")
    response = mallory.goto(f"{platform.url}{carol_env['url']}")
    assert response.status == 403
    expect(mallory.get_by_text("forbidden")).to_be_visible()
    shot(mallory, "1-forbidden")
    # Not the app's assets or its websocket either.
    assert mallory.request.get(f"{platform.url}{carol_env['url']}_stcore/health").status == 403

    # The owner, for contrast, gets in.
    carol = new_page()
    dev_sign_in(carol, platform.url, "carol")
    assert carol.goto(f"{platform.url}{carol_env['url']}").status == 200
    expect(carol.get_by_text("Your CMBCluster research environment")).to_be_visible()
    shot(carol, "2-owner-gets-in")


def test_an_admin_stops_another_users_environment(platform: Platform, new_page, shot):
    erin_env = platform.launch("erin")

    admin = new_page()
    dev_sign_in(admin, platform.url, ADMIN)
    expect(admin.get_by_text("administrator")).to_be_visible()
    admin.get_by_role("link", name="Environments").click()
    expect(admin.get_by_role("heading", name="Environments")).to_be_visible()
    row = admin.get_by_test_id("stHorizontalBlock").filter(has_text="erin").filter(
        has=admin.get_by_role("button", name="Stop"))
    expect(row).to_have_count(1)
    expect(row).to_contain_text("running")
    shot(admin, "1-environments")
    row.get_by_role("button", name="Stop").click()
    expect(admin.get_by_text("Stopped the environment of erin@localhost")).to_be_visible()
    expect(admin.get_by_test_id("stHorizontalBlock").filter(has_text="erin")).to_have_count(0)
    shot(admin, "2-stopped")

    record = platform.record("erin", erin_env["id"])
    assert record["state"] == "stopped"
    assert record["reason"] == f"stopped by administrator {ADMIN}@localhost"

    # Erin's hub says what happened, in plain words.
    erin = new_page()
    dev_sign_in(erin, platform.url, "erin")
    expect(erin.get_by_text(f"Your last environment was stopped by administrator "
                            f"{ADMIN}@localhost. Your files are safe.")).to_be_visible()
    expect(erin.get_by_role("button", name="Launch environment")).to_be_visible()
    shot(erin, "3-user-told")

    # The other admin pages: the stop is in the audit log; users and usage render.
    admin.get_by_role("link", name="Audit log").click()
    expect(admin.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(admin.get_by_test_id("stDataFrame")).to_be_visible()
    shot(admin, "4-audit")
    admin.get_by_role("link", name="Users").click()
    expect(admin.get_by_role("heading", name="Users")).to_be_visible()
    erin_row = admin.get_by_test_id("stHorizontalBlock").filter(has_text="erin@localhost")
    expect(erin_row.get_by_role("button", name="Make admin")).to_be_visible()
    shot(admin, "5-users")
    admin.get_by_role("link", name="Usage").click()
    expect(admin.get_by_role("heading", name="Usage")).to_be_visible()
    expect(admin.get_by_test_id("stVegaLiteChart").first).to_be_visible()
    shot(admin, "6-usage")

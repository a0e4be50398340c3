"""The pages every visitor sees: sign in, and the home page to launch, follow, open and
stop one's environment."""

from __future__ import annotations

import html
import os
import time

import streamlit as st

from frontend.api import ApiProblem, HubApi
from frontend.words import human_bytes, plain, profile_label, why_stopped

STARTING = ("pending", "starting")
ACTIVE = ("pending", "starting", "running", "stopping")
DEV_LOGIN = os.environ.get("CMBCLUSTER_DEV_LOGIN") == "1"
# Who signs people in: "Google" unless the platform is set up with another provider.
PROVIDER = os.environ.get("CMBCLUSTER_PROVIDER_NAME", "Google")
HUB_PATH = "/hub/"
POLL_SECONDS = 0.5
STOP_WAIT_SECONDS = 30


BUTTON_STYLE = {
    "primary": "background:#ff4b4b;color:white;border:1px solid #ff4b4b",
    "secondary": "background:white;color:inherit;border:1px solid rgba(49,51,63,.2)",
}


def form_button(label: str, action: str, method: str, fields: dict[str, str],
                kind: str = "secondary", align: str = "left") -> None:
    """A button that is a plain HTML form, for the two requests the browser must make
    itself: signing in (a top-level navigation in this tab, where st.link_button would
    open a new one) and signing out (a POST that carries, and clears, the HttpOnly
    session cookie the hub's own API calls cannot touch)."""
    hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in fields.items())
    st.html(
        f'<form method="{method}" action="{html.escape(action)}" '
        f'style="margin:0;text-align:{align}">{hidden}'
        f'<button type="submit" style="{BUTTON_STYLE[kind]};border-radius:.5rem;'
        f'padding:.4rem .9rem;cursor:pointer;font:inherit">{html.escape(label)}</button>'
        "</form>"
    )


def sign_in_page() -> None:
    st.title("CMBCluster")
    st.write("Your own persistent Streamlit research environment, with numpy, scipy, "
             "astropy, healpy and CAMB ready, in seconds. Your files stay in your "
             "workspace between sessions.")
    # /auth/login answers with the dev form in local mode and redirects to the identity
    # provider otherwise.
    label = "Sign in (local development)" if DEV_LOGIN else f"Sign in with {PROVIDER}"
    form_button(label, "/auth/login", "get", {"next": HUB_PATH}, kind="primary")
    if DEV_LOGIN:
        st.caption("Local mode: any user name signs you in. Set OIDC_CLIENT_ID to sign in "
                   "with Google instead.")


def sign_out_button() -> None:
    form_button("Sign out", "/auth/logout", "post", {"next": HUB_PATH}, align="right")


def progress_view(client: HubApi, env: dict) -> dict:
    """Follow a starting environment until it runs or fails, showing each spawn event.

    Polling inside the script run keeps the page live without the visitor doing anything:
    Streamlit streams each update of the bar to the browser as it happens."""
    st.subheader("Starting your environment…")
    bar = st.progress(0, text="Queued: waiting for a worker")
    while env["state"] in STARTING:
        events = env.get("events") or []
        if events:
            last = events[-1]
            percent = max(0, min(int(last["percent"]), 100))
            bar.progress(percent, text=f"{last['message']} ({percent}%)")
        time.sleep(POLL_SECONDS)
        env = client.environment(env["id"])
    bar.empty()
    return env


def wait_stopped(client: HubApi, env: dict) -> dict:
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    with st.spinner("Stopping your environment…"):
        while env["state"] == "stopping" and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            env = client.environment(env["id"])
    return env


def launch_form(client: HubApi, envs: list[dict]) -> None:
    last = envs[0] if envs else None  # the API lists newest first
    if last and (message := why_stopped(last)):
        (st.error if last["state"] == "failed" else st.warning)(message)

    catalogue = client.profiles()
    profiles = {p["name"]: p for p in catalogue["profiles"]}
    names = list(profiles)
    choice = st.radio(
        "Choose a size", names,
        index=names.index(catalogue["default"]) if catalogue["default"] in names else 0,
        format_func=lambda n: profile_label(profiles[n]),
        captions=[profiles[n].get("description", "") for n in names],
    )
    if st.button("Launch environment", type="primary", icon=":material/rocket_launch:"):
        try:
            env = client.launch(choice)
        except ApiProblem as err:
            st.error(plain(err))
            return
        env = progress_view(client, env)
        if env["state"] == "running":
            st.rerun()
        st.error(why_stopped(env) or f"Your environment is {env['state']}.")


def running_view(client: HubApi, env: dict) -> None:
    st.success(f"Your environment is running ({env['profile']} profile).",
               icon=":material/check_circle:")
    left, right = st.columns(2)
    left.link_button("Open environment", env["url"], type="primary", width="stretch",
                     icon=":material/open_in_new:")
    if right.button("Stop", width="stretch", icon=":material/stop_circle:"):
        try:
            env = client.stop(env["id"])
        except ApiProblem as err:
            st.error(plain(err))
            return
        wait_stopped(client, env)
        st.rerun()
    st.caption("Stopping ends the server, not your files: everything in your workspace "
               "is there next time.")


def home_page(client: HubApi, me: dict) -> None:
    st.title("Your research environment")
    try:
        envs = client.environments()
        active = next((e for e in envs if e["state"] in ACTIVE), None)
        if active and active["state"] in STARTING:
            active = progress_view(client, active)
            if active["state"] != "running":
                st.rerun()  # failed: the launch form shows why
        if active and active["state"] == "stopping":
            active = wait_stopped(client, active)
            st.rerun()
        if active and active["state"] == "running":
            running_view(client, active)
        else:
            launch_form(client, envs)
    except ApiProblem as err:
        st.error(plain(err))

    st.divider()
    try:
        used = client.workspace().get("bytes")
    except ApiProblem:
        used = None
    st.metric("Your workspace", human_bytes(used),
              help="Space your files use. It is kept when your environment stops.")

"""The CMBCluster hub: sign in, launch your environment, watch it start, open it, stop it.

Run by the platform as a Streamlit app under `/hub`; it talks to the control plane API
with the visitor's own session cookie (`frontend/api.py`).
"""

from __future__ import annotations

import os
import time

import streamlit as st

from frontend.api import SESSION_COOKIE, ApiProblem, HubApi

ACTIVE = ("pending", "starting", "running", "stopping")
PUBLIC_URL = os.environ.get("CMBCLUSTER_PUBLIC_URL", "")
DEV_LOGIN = os.environ.get("CMBCLUSTER_DEV_LOGIN") == "1"

st.set_page_config(page_title="CMBCluster", page_icon="🔭", layout="centered")


def api() -> HubApi:
    return HubApi(st.context.cookies.get(SESSION_COOKIE))


def sign_in_page() -> None:
    st.title("CMBCluster")
    st.write("Your own persistent Streamlit research environment, with numpy, scipy, "
             "astropy, healpy and CAMB ready, in seconds.")
    # /auth/login shows the dev login form in local mode, and goes to Google otherwise.
    if DEV_LOGIN:
        st.link_button("Sign in (local development)", "/auth/login?next=/hub/",
                       type="primary")
        st.caption("Local mode: any user name signs in. Set OIDC_CLIENT_ID to use Google.")
    else:
        st.link_button("Sign in with Google", "/auth/login?next=/hub/", type="primary")


def plain(err: ApiProblem) -> str:
    """What went wrong, in words a researcher can act on."""
    return {
        "limit_reached": "You already have an environment running. Stop it before "
                         "launching another.",
        "capacity_reached": "The platform is full right now. Try again in a few minutes.",
        "not_signed_in": "Your session has ended. Sign in again.",
        "unreachable": "The platform is not answering. Try again in a moment.",
    }.get(err.code, err.message)


def why_stopped(env: dict) -> str:
    reason = env.get("reason") or ""
    if env["state"] == "failed":
        return f"Your last environment could not start: {reason}."
    if "idle" in reason:
        return f"Your last environment was stopped because it was {reason}. Your files are safe."
    return f"Your last environment stopped ({reason}). Your files are safe." if reason else ""


def human_bytes(n: int | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def progress_view(client: HubApi, env: dict) -> dict:
    """Follow a starting environment until it runs or fails."""
    bar = st.progress(0, text="Queued")
    while env["state"] in ("pending", "starting"):
        events = env.get("events") or []
        if events:
            last = events[-1]
            bar.progress(min(int(last["percent"]), 100), text=last["message"])
        time.sleep(0.3)
        env = client.environment(env["id"])
    bar.empty()
    return env


def home_page(client: HubApi, me: dict) -> None:
    st.title("Your research environment")
    envs = client.environments()
    active = next((e for e in envs if e["state"] in ACTIVE), None)

    if active and active["state"] in ("pending", "starting"):
        active = progress_view(client, active)
        if active["state"] == "failed":
            st.error(why_stopped(active))
            active = None

    if active and active["state"] == "running":
        st.success(f"Running ({active['profile']} profile).")
        left, right = st.columns(2)
        left.link_button("Open environment", active["url"], type="primary",
                         use_container_width=True)
        if right.button("Stop", use_container_width=True):
            client.stop(active["id"])
            st.rerun()
    elif active:
        st.info(f"Your environment is {active['state']}…")
    else:
        last = envs[0] if envs else None
        if last and why_stopped(last):
            (st.error if last["state"] == "failed" else st.info)(why_stopped(last))
        catalogue = client.profiles()
        profiles = {p["name"]: p for p in catalogue["profiles"]}
        names = list(profiles)
        choice = st.radio(
            "Profile", names, index=names.index(catalogue["default"]),
            format_func=lambda n: (f"{n}: {profiles[n]['cpu']:g} CPU, "
                                   f"{profiles[n]['memory_mb'] / 1024:g} GiB memory, "
                                   f"{profiles[n]['storage_gb']} GB storage"),
        )
        if st.button("Launch environment", type="primary"):
            try:
                env = client.launch(choice)
            except ApiProblem as err:
                st.error(plain(err))
            else:
                env = progress_view(client, env)
                if env["state"] == "running":
                    st.rerun()
                st.error(why_stopped(env))

    st.divider()
    try:
        used = client.workspace().get("bytes")
    except ApiProblem:
        used = None
    st.caption(f"Signed in as {me['email']} · workspace {human_bytes(used)}")


def main() -> None:
    client = api()
    try:
        me = client.me()
    except ApiProblem as err:
        st.error(plain(err))
        return
    if me is None:
        sign_in_page()
        return
    try:
        home_page(client, me)
    except ApiProblem as err:
        st.error(plain(err))


main()

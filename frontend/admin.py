"""Admin pages: users, environments, the audit log, usage over time.

Only added to the navigation for administrators; the API checks the role again on every
call, so a hand-typed page URL shows an error, never data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from frontend.api import ApiProblem, HubApi
from frontend.stats import WINDOWS, parse_time, usage_frame
from frontend.words import human_duration, plain

ACTIVE = ["pending", "starting", "running", "stopping"]
STATES = [*ACTIVE, "stopped", "failed"]
FLASH = "admin_flash"


def _flash(kind: str, text: str) -> None:
    # A message that survives the rerun a button click triggers.
    st.session_state[FLASH] = (kind, text)


def _show_flash() -> None:
    if FLASH in st.session_state:
        kind, text = st.session_state.pop(FLASH)
        (st.success if kind == "ok" else st.error)(text)


def _when(value: str | None) -> str:
    moment = parse_time(value)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else "—"


def table_header(widths: list[int], titles: tuple[str, ...]) -> None:
    """Column titles above rows of st.columns with the same widths (rows hold buttons,
    which a dataframe cannot)."""
    for col, title in zip(st.columns(widths), titles, strict=True):
        col.caption(title)


def users_page(client: HubApi, me: dict) -> None:
    st.title("Users")
    _show_flash()
    try:
        users = client.users()
    except ApiProblem as err:
        st.error(plain(err))
        return
    st.caption(f"{len(users)} users. Making someone a user again signs them out at once.")
    widths = [4, 2, 2, 3, 3, 2]  # "Make admin" needs the room
    table_header(widths, ("Email", "Role", "Status", "Last sign-in", "", ""))
    for user in users:
        email, role, status, seen, role_col, state_col = st.columns(
            widths, vertical_alignment="center")
        email.write(f"**{user['email']}**" + (f"  \n{user['name']}" if user["name"] else ""))
        role.write("**admin**" if user["role"] == "admin" else "user")
        status.write(":red[**disabled**]" if user["disabled"] else "active")
        seen.write(_when(user.get("last_login")))
        if user["id"] == me["id"]:
            role_col.caption("you")
            continue
        to_admin = user["role"] != "admin"
        if role_col.button("Make admin" if to_admin else "Make user",
                           key=f"role:{user['id']}", width="stretch"):
            _change(client, user, role="admin" if to_admin else "user")
        if state_col.button("Enable" if user["disabled"] else "Disable",
                            key=f"disable:{user['id']}", width="stretch"):
            _change(client, user, disabled=not user["disabled"])


def _change(client: HubApi, user: dict, **change: object) -> None:
    try:
        after = client.update_user(user["id"], **change)
    except ApiProblem as err:
        _flash("error", f"{user['email']}: {plain(err)}")
    else:
        status = "disabled" if after["disabled"] else "active"
        _flash("ok", f"{after['email']} is now {after['role']}, {status}.")
    st.rerun()


def environments_page(client: HubApi, me: dict) -> None:
    st.title("Environments")
    _show_flash()
    wanted = st.multiselect("States", STATES, default=ACTIVE)
    try:
        envs = client.all_environments(wanted or None)
        # Records name owners by id, which for OIDC users is an opaque subject.
        emails = {u["id"]: u["email"] for u in client.users()}
    except ApiProblem as err:
        st.error(plain(err))
        return
    if not envs:
        st.info("No environments in these states.")
        return
    widths = [3, 2, 2, 2, 3, 2]
    table_header(widths, ("Owner", "Profile", "State", "Idle", "Started", ""))
    for env in envs:
        owner, profile, state, idle, started, action = st.columns(
            widths, vertical_alignment="center")
        owner.write(emails.get(env["owner"], env["owner"]))
        profile.write(env["profile"])
        state.write(env["state"] if not env.get("reason") else
                    f"{env['state']}  \n:gray[{env['reason']}]")
        idle.write(human_duration(env.get("idle_seconds")))
        started.write(_when(env.get("started") or env.get("created")))
        if env["state"] in ACTIVE and action.button("Stop", key=f"stop:{env['id']}",
                                                    width="stretch"):
            try:
                client.admin_stop(env["id"])
            except ApiProblem as err:
                _flash("error", plain(err))
            else:
                who = emails.get(env["owner"], env["owner"])
                _flash("ok", f"Stopped the environment of {who}; their files are kept.")
            st.rerun()


def audit_page(client: HubApi, me: dict) -> None:
    st.title("Audit log")
    try:
        entries = client.audit()
    except ApiProblem as err:
        st.error(plain(err))
        return
    if not entries:
        st.info("Nothing recorded yet.")
        return
    frame = pd.DataFrame({
        "when": [_when(e["at"]) for e in entries],
        "actor": [e["actor"] for e in entries],
        "action": [e["action"] for e in entries],
        "target": [e["target"] for e in entries],
        "detail": [json.dumps(e.get("detail") or {}, sort_keys=True) for e in entries],
    })
    st.dataframe(frame, hide_index=True, width="stretch")


def usage_page(client: HubApi, me: dict) -> None:
    st.title("Usage")
    labels = [w.label for w in WINDOWS]
    label = st.segmented_control("Period", labels, default=labels[1]) or labels[1]
    window = next(w for w in WINDOWS if w.label == label)
    try:
        envs = client.all_environments()
    except ApiProblem as err:
        st.error(plain(err))
        return
    now = datetime.now(UTC)
    frame = usage_frame(envs, window, now)
    # Vega-Lite draws naive times as they are: show the hub's local clock, not UTC.
    frame.index = frame.index.tz_convert(now.astimezone().tzinfo).tz_localize(None)
    since = now - window.span
    running_now = sum(e["state"] == "running" for e in envs)
    failed = sum(1 for e in envs if e["state"] == "failed"
                 and (created := parse_time(e.get("created"))) and created >= since)
    a, b, c = st.columns(3)
    a.metric("Running now", running_now)
    b.metric("Launches", int(frame["launches"].sum()), help=label)
    c.metric("Failed starts", failed, help=label)
    st.subheader("Running environments")
    st.line_chart(frame["running"], y_label="running", x_label="")
    st.subheader("Launches")
    st.bar_chart(frame["launches"], y_label=f"per {human_duration(window.bucket.total_seconds())}",
                 x_label="")

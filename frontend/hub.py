"""The CMBCluster hub: sign in, launch your environment, watch it start, open it, stop it;
and, for administrators, the users, environments, audit log and usage pages.

Run by the platform as a Streamlit app under `/hub`. It talks to the control plane API
with the visitor's own session cookie (`frontend/api.py`), so the API, not this script,
decides what each visitor may see and do. Pages live in `home.py` and `admin.py`.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import streamlit as st

from frontend import admin, home
from frontend.api import SESSION_COOKIE, ApiProblem, HubApi
from frontend.words import plain

st.set_page_config(page_title="CMBCluster", page_icon="🔭", layout="centered")


def bound(view: Callable[[HubApi, dict], None], client: HubApi, me: dict,
          name: str) -> Callable[[], None]:
    """A page callable with the visitor's client; its name becomes the page's URL."""
    def page() -> None:
        view(client, me)
    page.__name__ = name
    return page


def header(me: dict) -> None:
    who, out = st.columns([4, 1], vertical_alignment="center")
    role = " · administrator" if me["role"] == "admin" else ""
    # HTML, not markdown: markdown turns an address into a mailto link.
    with who:
        st.html(f'<span style="color:rgba(49,51,63,.6);font-size:.875rem">Signed in as '
                f"<b>{html.escape(me['email'])}</b>{role}</span>")
    with out:
        home.sign_out_button()


def main() -> None:
    client = HubApi(st.context.cookies.get(SESSION_COOKIE))
    try:
        me = client.me()
    except ApiProblem as err:
        st.error(plain(err))
        return
    if me is None:
        home.sign_in_page()
        return

    pages = [st.Page(bound(home.home_page, client, me, "home"), title="My environment",
                     icon=":material/rocket_launch:", default=True)]
    if me["role"] == "admin":
        pages += [
            st.Page(bound(admin.users_page, client, me, "users"), title="Users",
                    icon=":material/group:"),
            st.Page(bound(admin.environments_page, client, me, "environments"),
                    title="Environments", icon=":material/dns:"),
            st.Page(bound(admin.audit_page, client, me, "audit"), title="Audit log",
                    icon=":material/history:"),
            st.Page(bound(admin.usage_page, client, me, "usage"), title="Usage",
                    icon=":material/monitoring:"),
        ]
    # One page needs no menu: researchers see just their environment.
    page = st.navigation(pages, position="sidebar" if len(pages) > 1 else "hidden")
    if page.url_path:  # an admin page: their tables need the room; home stays narrow
        st.set_page_config(layout="wide")
    header(me)
    page.run()


main()

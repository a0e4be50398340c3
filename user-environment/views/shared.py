"""The team's shared data: browse, preview and download; never modified from here."""

import streamlit as st

from envapp import settings
from envapp.browser import render_browser

st.title("Shared data")
shared = settings.shared_dir()
if shared is None:
    st.info(f"No shared data area is configured ({settings.SHARED_ENV} is not set).")
else:
    st.caption(f"`{shared}` — read-only. Copy what you need into your workspace.")
    render_browser(shared, key="shared", read_only=True)

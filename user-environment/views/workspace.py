"""The user's persistent workspace: browse, preview, upload, download, delete."""

import streamlit as st

from envapp import settings
from envapp.browser import render_browser

workspace = settings.workspace_dir()
st.title("Workspace")
st.caption(f"`{workspace}` — persists across sessions.")
render_browser(workspace, key="workspace", read_only=False)

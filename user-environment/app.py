"""The research environment (minimal; the UI issue makes it rich)."""

import os

import streamlit as st

st.set_page_config(page_title="CMBCluster environment", layout="wide")
st.title("Your CMBCluster research environment")
st.write("Workspace:", os.environ.get("CMBCLUSTER_WORKSPACE", os.getcwd()))

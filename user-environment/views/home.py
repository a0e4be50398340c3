"""Landing page: whose environment this is, where the files are, what is here."""

import shutil
from importlib import metadata

import streamlit as st

from envapp import paths, settings

st.title("Your CMBCluster research environment")

owner = settings.owner()
workspace = settings.workspace_dir()
if owner:
    st.write(f"Signed in as **{owner}**.")
st.write(f"Workspace: `{workspace}` — files here persist when the environment stops.")

# disk_usage reads the filesystem's counters (instant); walking the tree would not be.
usage = shutil.disk_usage(workspace)
st.progress(
    min(1.0, usage.used / usage.total) if usage.total else 0.0,
    text=f"Volume: {paths.human_size(usage.used)} used of {paths.human_size(usage.total)}",
)

st.subheader("What you can do")
st.page_link("views/workspace.py", label="Browse, upload and download your files",
             icon=":material/folder:")
if settings.shared_dir() is not None:
    st.page_link("views/shared.py", label="Read the team's shared data",
                 icon=":material/folder_shared:")
st.page_link("views/cmb.py", label="Compute CMB power spectra with CAMB",
             icon=":material/show_chart:")
st.page_link("views/healpix.py", label="Simulate and view HEALPix maps",
             icon=":material/public:")
st.page_link("views/my_apps.py", label="Run your own Streamlit pages",
             icon=":material/apps:")

st.subheader("From your own code")
st.code(
    f'''from pathlib import Path
import camb, healpy as hp, numpy as np

workspace = Path("{workspace}")  # your files persist here
''',
    language="python",
)

with st.expander("Installed libraries"):
    # metadata.version reads package metadata without importing the (slow) libraries.
    names = ("streamlit", "numpy", "scipy", "pandas", "matplotlib", "plotly", "seaborn",
             "astropy", "healpy", "camb")
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    st.table({"library": list(versions), "version": list(versions.values())})

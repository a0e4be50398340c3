"""The CMBCluster research environment: one Streamlit app per user, served from the
user's pod (cloud) or a local process (`make up`).

This entrypoint only assembles the navigation; each page lives in views/, and the
logic they share (paths, spectra, maps, activity) in envapp/. User pages from
<workspace>/apps join the same navigation, so they run in this server with the same
libraries and workspace.
"""

import sys
from pathlib import Path

import streamlit as st

APP_DIR = Path(__file__).resolve().parent
# `streamlit run` puts this directory on sys.path, but AppTest and a page re-run after
# an edit do not always; the pages import envapp from here.
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))

from envapp import settings  # noqa: E402
from envapp.activity import report_activity  # noqa: E402
from envapp.userapps import discover_user_apps  # noqa: E402

st.set_page_config(page_title="CMBCluster", page_icon=":material/blur_on:", layout="wide")

# Every script run is a user interaction (a click, an edit, a page change).
report_activity()

workspace = settings.workspace_dir()
apps_dir = settings.apps_dir(workspace)
# Appended, not prepended: a user's helper module named like a library (say
# "healpy.py") must not shadow the real one for every page.
if apps_dir.is_dir() and str(apps_dir) not in sys.path:
    sys.path.append(str(apps_dir))

VIEWS = APP_DIR / "views"
main_pages = [
    st.Page(VIEWS / "home.py", title="Home", icon=":material/home:", default=True),
    st.Page(VIEWS / "workspace.py", title="Workspace", icon=":material/folder:"),
]
if settings.shared_dir() is not None:
    main_pages.append(
        st.Page(VIEWS / "shared.py", title="Shared data", icon=":material/folder_shared:")
    )
research_pages = [
    st.Page(VIEWS / "cmb.py", title="CMB power spectra", icon=":material/show_chart:"),
    st.Page(VIEWS / "healpix.py", title="HEALPix maps", icon=":material/public:"),
]
user_pages = [
    st.Page(VIEWS / "my_apps.py", title="About my apps", icon=":material/apps:"),
    *(
        st.Page(app.path, title=app.title, url_path=app.url_path, icon=":material/code:")
        for app in discover_user_apps(workspace)
    ),
]

st.navigation({"": main_pages, "Research": research_pages, "My apps": user_pages}).run()

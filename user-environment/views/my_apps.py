"""My apps: how to add your own Streamlit pages, and a list of the ones found."""

import streamlit as st

from envapp import paths, settings
from envapp.userapps import APP_TEMPLATE, discover_user_apps

workspace = settings.workspace_dir()
apps_dir = settings.apps_dir(workspace)

st.title("My apps")
st.markdown(
    f"""
Every Python file in **`{apps_dir}`** becomes a page in this menu, under *My apps*.
They run in this environment, with its libraries and your workspace.

1. Create `{apps_dir.name}/` in your workspace (the Workspace page can do it) and put a
   Streamlit script in it, say `my_analysis.py`; upload it, or write it with the button
   below and edit it.
2. Reload this page: *My analysis* appears in the menu.
3. Files starting with `_` (like `_helpers.py`) are not pages; import them from yours.

Edits to a page take effect the next time you open or rerun it.
"""
)

apps = discover_user_apps(workspace)
if apps:
    st.subheader("Your apps")
    for app in apps:
        st.page_link(str(app.path), label=app.title, icon=":material/code:")
else:
    st.info("You have no apps yet.")
    if st.button("Create an example app (apps/hello.py)"):
        try:
            target = paths.resolve_within(workspace, "apps/hello.py")
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.write_text(APP_TEMPLATE, encoding="utf-8")
            # The navigation is built before this page runs; rerun so it lists the app.
            st.rerun()
        except (paths.UnsafePathError, OSError) as exc:
            st.error(f"Could not create the example: {exc}")

with st.expander("What an app looks like"):
    st.code(APP_TEMPLATE, language="python")

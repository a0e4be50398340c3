"""Discovery of the user's own Streamlit pages under <workspace>/apps."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from envapp.paths import UnsafePathError, resolve_within

# A navigation with hundreds of entries is unusable, and every page is listed on each
# rerun; more than this is almost certainly a data directory, not a set of apps.
MAX_USER_APPS = 50

APP_TEMPLATE = '''"""My first CMBCluster app: every *.py file in ~/apps is a page."""

import numpy as np
import streamlit as st

st.title("Hello from my app")
amplitude = st.slider("Amplitude", 0.1, 5.0, 1.0)
x = np.linspace(0, 4 * np.pi, 400)
st.line_chart({"signal": amplitude * np.sin(x)})
'''


@dataclass(frozen=True)
class UserApp:
    """One of the user's pages, as the navigation shows it."""

    path: Path
    title: str
    url_path: str


def _title(stem: str) -> str:
    words = re.sub(r"[_\-]+", " ", stem).strip()
    return words[:1].upper() + words[1:] if words else stem


def _url_path(stem: str) -> str:
    # Prefixed so a user's "workspace.py" cannot take over a built-in page's URL.
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "app"
    return f"app-{slug}"


def discover_user_apps(workspace: Path, apps_subdir: str = "apps") -> list[UserApp]:
    """The `*.py` files directly in `<workspace>/apps`, sorted by name.

    Files starting with `_` or `.` are helpers, not pages (users import them from
    their pages). A file that is a symlink leading outside the workspace is skipped.
    """
    try:
        apps = resolve_within(workspace, apps_subdir)
    except (UnsafePathError, OSError):
        return []
    if not apps.is_dir():
        return []
    found: list[UserApp] = []
    used_urls: set[str] = set()
    for path in sorted(apps.glob("*.py"), key=lambda p: p.name.lower()):
        if path.name.startswith(("_", ".")):
            continue
        try:
            real = resolve_within(workspace, f"{apps_subdir}/{path.name}")
        except UnsafePathError:
            continue
        if not real.is_file():
            continue
        url_path = _url_path(path.stem)
        # "my app.py" and "my-app.py" slug alike; number the later one.
        candidate, counter = url_path, 2
        while candidate in used_urls:
            candidate, counter = f"{url_path}-{counter}", counter + 1
        used_urls.add(candidate)
        found.append(UserApp(path=real, title=_title(path.stem), url_path=candidate))
        if len(found) >= MAX_USER_APPS:
            break
    return found

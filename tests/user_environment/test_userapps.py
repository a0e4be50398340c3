"""Discovery of the user's own pages in <workspace>/apps."""

from __future__ import annotations

from pathlib import Path

from envapp.userapps import discover_user_apps


def test_no_apps_folder_means_no_apps(tmp_path: Path) -> None:
    assert discover_user_apps(tmp_path) == []


def test_python_files_become_pages_with_unique_urls(tmp_path: Path) -> None:
    apps = tmp_path / "apps"
    apps.mkdir()
    for name in ("my_analysis.py", "Workspace.py", "my-analysis.py", "_helpers.py",
                 ".secret.py", "notes.txt"):
        (apps / name).write_text("import streamlit as st\n")
    (apps / "folder.py").mkdir()  # a directory named like a page is not one
    (tmp_path / "outside.py").write_text("")
    (apps / "escape.py").symlink_to(tmp_path.parent)  # leads outside the workspace
    found = discover_user_apps(tmp_path)
    assert [(a.title, a.url_path) for a in found] == [
        ("My analysis", "app-my-analysis"),  # my-analysis.py sorts first
        ("My analysis", "app-my-analysis-2"),
        ("Workspace", "app-workspace"),
    ]
    assert all(a.path.parent == apps.resolve() for a in found)


def test_apps_folder_linked_outside_is_ignored(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "page.py").write_text("")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "apps").symlink_to(elsewhere)
    assert discover_user_apps(workspace) == []

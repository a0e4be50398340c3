"""The real pages, run with Streamlit's AppTest against a temporary workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP_DIR = Path(__file__).resolve().parents[2] / "user-environment"
# CAMB runs inside the CMB page; the first run also imports it.
TIMEOUT = 60


def run_app(page: str | None = None) -> AppTest:
    app = AppTest.from_file(str(APP_DIR / "app.py"), default_timeout=TIMEOUT).run()
    if page:
        app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def texts(app: AppTest) -> str:
    """Everything the page wrote as text, for 'does it say X' checks."""
    parts = [m.value for m in app.markdown] + [c.value for c in app.caption]
    parts += [b.label for b in app.button] + [e.value for e in app.info]
    return "\n".join(parts)


def button(app: AppTest, label: str):
    return next(b for b in app.button if b.label == label)


def test_landing_page(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMBCLUSTER_OWNER", "ada@example.org")
    app = run_app()
    assert app.title[0].value.endswith("research environment")
    shown = texts(app)
    assert "ada@example.org" in shown
    assert str(workspace.resolve()) in shown


def test_workspace_lists_files_and_previews_csv(workspace: Path) -> None:
    (workspace / "spectrum.csv").write_text("ell,TT\n2,1000\n3,900\n")
    (workspace / "runs").mkdir()
    app = run_app("views/workspace.py")
    labels = [b.label for b in app.button]
    assert ":material/folder: runs" in labels and ":material/description: spectrum.csv" in labels

    button(app, ":material/description: spectrum.csv").click().run()
    assert list(app.dataframe[0].value.columns) == ["ell", "TT"]
    assert [d.label for d in app.download_button] == ["Download"]

    button(app, ":material/folder: runs").click().run()
    assert "This folder is empty." in texts(app)


def test_upload_then_delete_with_confirmation(workspace: Path) -> None:
    app = run_app("views/workspace.py")
    app.file_uploader[0].upload("notes.txt", b"hello", "text/plain").run()
    assert (workspace / "notes.txt").read_bytes() == b"hello"
    assert any("Uploaded notes.txt" in s.value for s in app.success)
    assert app.file_uploader[0].value in (None, [])  # emptied: no second save on rerun

    # A name that tries to leave the workspace is refused, and nothing is written.
    app.file_uploader[0].upload("../escape.txt", b"x", "text/plain").run()
    assert not (workspace.parent / "escape.txt").exists()
    assert any("escape.txt" in e.value for e in app.error)

    button(app, ":material/description: notes.txt").click().run()
    button(app, "Delete").click().run()
    assert (workspace / "notes.txt").exists()  # asked, not done
    button(app, "Yes, delete").click().run()
    assert not (workspace / "notes.txt").exists()


def test_new_folder(workspace: Path) -> None:
    app = run_app("views/workspace.py")
    app.text_input[0].input("results")
    app.button[[b.label for b in app.button].index("Create folder")].click().run()
    assert (workspace / "results").is_dir()


def test_cmb_page_plots_and_offers_csv(workspace: Path, planck_spectra) -> None:
    app = run_app("views/cmb.py")
    assert not app.error, [e.value for e in app.error]
    assert len(app.get("plotly_chart")) == 1
    assert "Download CSV" in [d.label for d in app.download_button]

    button(app, "Save CSV to workspace/spectra").click().run()
    saved = list((workspace / "spectra").glob("*.csv"))
    assert len(saved) == 1
    assert saved[0].read_text().startswith("ell,TT,EE,BB,TE\n2,")


def test_healpix_page_simulates_and_saves(workspace: Path, planck_spectra) -> None:
    app = run_app("views/healpix.py")
    app.number_input[0].set_value(5)  # seed
    next(b for b in app.button if b.label == "Simulate").click().run()
    assert not app.error, [e.value for e in app.error]
    assert len(app.get("image")) == 1  # the mollview figure
    button(app, "Save map to workspace").click().run()
    assert (workspace / "maps" / "sim_nside64_seed5.fits").is_file()


def test_shared_area_is_read_only(workspace: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "planck_mask.txt").write_text("team data")
    monkeypatch.setenv("CMBCLUSTER_SHARED_DIR", str(shared))
    app = run_app("views/shared.py")
    assert ":material/description: planck_mask.txt" in [b.label for b in app.button]
    assert len(app.file_uploader) == 0

    button(app, ":material/description: planck_mask.txt").click().run()
    assert [d.label for d in app.download_button] == ["Download"]
    labels = [b.label for b in app.button]
    assert "Delete" not in labels and "Create folder" not in labels


def test_shared_page_only_in_navigation_when_configured(workspace: Path) -> None:
    app = run_app()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        app.switch_page("views/shared.py")


def test_user_apps_join_the_navigation(workspace: Path) -> None:
    apps = workspace / "apps"
    apps.mkdir()
    (apps / "_helpers.py").write_text("GREETING = 'hello from a helper'\n")
    (apps / "my_analysis.py").write_text(
        "import streamlit as st\nfrom _helpers import GREETING\nst.title(GREETING)\n"
    )
    app = run_app("views/my_apps.py")
    assert "My analysis" in [link.label for link in app.get("page_link")]

    # switch_page takes a path relative to app.py; the user's file lives elsewhere.
    app.switch_page(os.path.relpath(apps / "my_analysis.py", APP_DIR)).run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.title[0].value == "hello from a helper"


def test_my_apps_explains_and_creates_an_example(workspace: Path) -> None:
    app = run_app("views/my_apps.py")
    assert "You have no apps yet." in texts(app)
    button(app, "Create an example app (apps/hello.py)").click().run()
    assert (workspace / "apps" / "hello.py").is_file()

"""The file browser shared by the workspace page and the read-only shared-data page.

All filesystem access goes through envapp.paths, so what is reachable is decided in
one tested place; this module only lays out widgets. Widget callbacks do the work
(navigate, upload, delete) so each action happens once, before the rerun that shows
its result.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import streamlit as st

from envapp import paths, previews

MAX_LISTED = 300


def _state_key(key: str, name: str) -> str:
    return f"{key}:{name}"


def _flash(key: str, level: str, message: str) -> None:
    """Queue a message from a callback for the rerun that follows it."""
    st.session_state.setdefault(_state_key(key, "flash"), []).append((level, message))


def _show_flash(key: str) -> None:
    for level, message in st.session_state.pop(_state_key(key, "flash"), []):
        getattr(st, level)(message)


def _go(key: str, rel: str) -> None:
    st.session_state[_state_key(key, "cwd")] = rel
    st.session_state[_state_key(key, "selected")] = None
    st.session_state[_state_key(key, "confirm_delete")] = None


def _select(key: str, rel: str) -> None:
    st.session_state[_state_key(key, "selected")] = rel
    st.session_state[_state_key(key, "confirm_delete")] = None


def _current_dir(root: Path, key: str) -> str:
    """The directory being shown, back at the root if it vanished or is unsafe."""
    rel = st.session_state.get(_state_key(key, "cwd"), "")
    try:
        if paths.resolve_within(root, rel).is_dir():
            return rel
    except paths.UnsafePathError:
        pass
    _go(key, "")
    return ""


def render_browser(root: Path, *, key: str, read_only: bool) -> None:
    """Browse `root`: list, open folders, preview and download files; unless
    `read_only`, also upload, create folders and delete."""
    _show_flash(key)
    cwd = _current_dir(root, key)
    _breadcrumbs(key, cwd)
    if not read_only:
        _actions(root, key, cwd)

    show_hidden = st.toggle("Show hidden files", key=_state_key(key, "hidden"))
    entries = paths.list_dir(root, cwd, show_hidden=show_hidden)
    _listing(key, entries)

    selected = st.session_state.get(_state_key(key, "selected"))
    if selected:
        _selected_panel(root, key, selected, read_only=read_only)


def _breadcrumbs(key: str, cwd: str) -> None:
    parts = [p for p in cwd.split("/") if p]
    with st.container(horizontal=True, gap="small"):
        st.button(":material/home: /", key=_state_key(key, "crumb:"), on_click=_go, args=(key, ""),
                  type="tertiary")
        for depth, part in enumerate(parts, start=1):
            target = "/".join(parts[:depth])
            st.button(f"/ {part}", key=_state_key(key, f"crumb:{target}"),
                      on_click=_go, args=(key, target), type="tertiary")


def _listing(key: str, entries: list[paths.Entry]) -> None:
    if not entries:
        st.info("This folder is empty.")
        return
    shown = entries[:MAX_LISTED]
    header = st.columns([6, 2, 3])
    header[0].caption("Name")
    header[1].caption("Size")
    header[2].caption("Modified")
    for entry in shown:
        name_col, size_col, modified_col = st.columns([6, 2, 3])
        if entry.outside:
            name_col.write(f":material/link_off: {entry.name} — link outside this area, not opened")
        elif entry.is_dir:
            name_col.button(f":material/folder: {entry.name}",
                            key=_state_key(key, f"open:{entry.rel}"),
                            on_click=_go, args=(key, entry.rel), type="tertiary")
        else:
            name_col.button(f":material/description: {entry.name}",
                            key=_state_key(key, f"open:{entry.rel}"),
                            on_click=_select, args=(key, entry.rel), type="tertiary")
        size_col.write("—" if entry.is_dir else paths.human_size(entry.size))
        modified_col.write(datetime.fromtimestamp(entry.modified).strftime("%Y-%m-%d %H:%M"))
    if len(entries) > MAX_LISTED:
        st.caption(f"Showing the first {MAX_LISTED} of {len(entries)} entries.")


def _actions(root: Path, key: str, cwd: str) -> None:
    upload_col, folder_col = st.columns(2)
    with upload_col:
        replace = st.toggle("Replace existing files", key=_state_key(key, "replace"))
        # Bumping the key after a save empties the uploader, so the same files are not
        # saved again on later reruns.
        generation = st.session_state.get(_state_key(key, "upload_gen"), 0)
        uploader_key = _state_key(key, f"upload:{generation}")
        st.file_uploader(
            "Upload files here", accept_multiple_files=True, key=uploader_key,
            on_change=_save_uploads, args=(root, key, cwd, uploader_key, replace),
        )
    with folder_col, st.form(_state_key(key, "mkdir"), clear_on_submit=True, border=False):
        name = st.text_input("New folder", placeholder="folder name")
        if st.form_submit_button("Create folder") and name:
            try:
                target = paths.resolve_within(root, paths.join_rel(cwd, name))
                target.mkdir()
                st.success(f"Created {name}/")
            except paths.UnsafePathError as exc:
                st.error(f"Not a valid folder name: {exc}")
            except FileExistsError:
                st.error(f"{name} already exists.")


def _save_uploads(root: Path, key: str, cwd: str, uploader_key: str, replace: bool) -> None:
    for uploaded in st.session_state.get(uploader_key) or []:
        try:
            target = paths.resolve_within(root, paths.join_rel(cwd, uploaded.name))
        except paths.UnsafePathError as exc:
            _flash(key, "error", f"Skipped {uploaded.name!r}: {exc}")
            continue
        if target.exists() and not replace:
            _flash(key, "warning", f"Skipped {uploaded.name}: it exists "
                                   "(turn on 'Replace existing files' to overwrite).")
            continue
        if target.is_dir():
            _flash(key, "error", f"Skipped {uploaded.name}: a folder has that name.")
            continue
        target.write_bytes(uploaded.getbuffer())
        _flash(key, "success", f"Uploaded {uploaded.name} ({paths.human_size(uploaded.size)}).")
    generation = st.session_state.get(_state_key(key, "upload_gen"), 0)
    st.session_state[_state_key(key, "upload_gen")] = generation + 1


def _delete(root: Path, key: str, rel: str) -> None:
    try:
        target = paths.entry_within(root, rel)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
        _flash(key, "success", f"Deleted {rel}.")
    except (paths.UnsafePathError, OSError) as exc:
        _flash(key, "error", f"Could not delete {rel}: {exc}")
    st.session_state[_state_key(key, "selected")] = None
    st.session_state[_state_key(key, "confirm_delete")] = None


def _ask_delete(key: str, rel: str) -> None:
    st.session_state[_state_key(key, "confirm_delete")] = rel


def _cancel_delete(key: str) -> None:
    st.session_state[_state_key(key, "confirm_delete")] = None


def _selected_panel(root: Path, key: str, rel: str, *, read_only: bool) -> None:
    try:
        path = paths.resolve_within(root, rel)
    except paths.UnsafePathError as exc:
        st.error(f"Cannot open {rel}: {exc}")
        return
    if not path.is_file():
        st.session_state[_state_key(key, "selected")] = None
        return
    st.divider()
    st.subheader(path.name)
    size = path.stat().st_size
    st.caption(f"{rel} · {paths.human_size(size)}")

    buttons = st.container(horizontal=True)
    # A callable defers reading the file until the click, so merely selecting a
    # multi-gigabyte file does not load it into memory.
    buttons.download_button(
        "Download", data=lambda: path.read_bytes(), file_name=path.name,
        key=_state_key(key, f"download:{rel}"), on_click="ignore",
    )
    if not read_only:
        buttons.button("Delete", key=_state_key(key, f"delete:{rel}"),
                          on_click=_ask_delete, args=(key, rel))
        if st.session_state.get(_state_key(key, "confirm_delete")) == rel:
            st.warning(f"Delete {rel}? This cannot be undone.")
            confirm = st.container(horizontal=True)
            confirm.button("Yes, delete", type="primary", key=_state_key(key, "delete:yes"),
                       on_click=_delete, args=(root, key, rel))
            confirm.button("Cancel", key=_state_key(key, "delete:no"),
                      on_click=_cancel_delete, args=(key,))

    try:
        _preview(path, size)
    except Exception as exc:  # a malformed file must not break the browser
        st.warning(f"No preview: {type(exc).__name__}: {exc}")


def _preview(path: Path, size: int) -> None:
    kind = previews.preview_kind(path)
    if kind == "csv":
        frame = previews.read_csv_head(path)
        st.dataframe(frame)
        st.caption(f"First {len(frame)} rows.")
    elif kind == "fits":
        _preview_fits(path)
    elif kind == "image":
        if size > previews.IMAGE_PREVIEW_MAX_BYTES:
            st.info("Image too large to preview; download it instead.")
        else:
            st.image(str(path))
    elif kind == "text":
        text, truncated = previews.read_text_head(path)
        st.code(text, language=None)
        if truncated:
            st.caption(f"First {previews.TEXT_PREVIEW_BYTES // 1024} KB shown.")
    else:
        st.info("Binary file: no preview. Download it to open it locally.")


def _preview_fits(path: Path) -> None:
    from matplotlib.figure import Figure

    for hdu in previews.fits_hdus(path):
        shape = " × ".join(str(n) for n in hdu.shape) if hdu.shape else "no data"
        with st.expander(f"HDU {hdu.index}: {hdu.name} ({hdu.kind}, {shape})",
                         expanded=hdu.index == 0 or hdu.is_image):
            st.code(hdu.header, language=None)
            if hdu.is_image:
                image = previews.fits_image(path, hdu.index)
                figure = Figure(figsize=(6, 5))
                axes = figure.subplots()
                # Percentile limits: a few hot pixels would otherwise wash out the image.
                low, high = _finite_percentiles(image)
                shown = axes.imshow(image, origin="lower", cmap="viridis", vmin=low, vmax=high)
                figure.colorbar(shown, ax=axes)
                st.pyplot(figure)


def _finite_percentiles(image: object) -> tuple[float | None, float | None]:
    import numpy as np

    finite = np.asarray(image)[np.isfinite(image)]
    if finite.size == 0:
        return None, None
    low, high = np.percentile(finite, [1, 99])
    return float(low), float(high)

"""Path confinement for the workspace and shared-data browsers.

Every path the UI touches starts as a string relative to a root directory (the
workspace or the shared area) and goes through `resolve_within` or `entry_within`
here, so one function decides what "inside the root" means: no `..`, no absolute
paths, no NUL bytes, no backslashes, and no symlink that leads outside.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Longer names fail on most filesystems anyway; refusing early gives a clearer message.
MAX_NAME_LENGTH = 255


class UnsafePathError(ValueError):
    """A user-supplied path that would leave its root (or is not a valid name)."""


def _relative_parts(rel: str) -> tuple[str, ...]:
    """Split a user-supplied relative path into components, refusing anything that
    could name a place outside the root before the filesystem is even consulted."""
    if not isinstance(rel, str):
        raise UnsafePathError("path must be a string")
    if "\x00" in rel:
        raise UnsafePathError("path contains a NUL byte")
    # A backslash is a legal filename character on Linux, but to a user (or a path
    # pasted from Windows) it means a separator; refusing it avoids surprises.
    if "\\" in rel:
        raise UnsafePathError("path contains a backslash")
    pure = PurePosixPath(rel)
    if pure.is_absolute():
        raise UnsafePathError("path must be relative to the root")
    parts = tuple(part for part in pure.parts if part != ".")
    if ".." in parts:
        raise UnsafePathError("path must not contain '..'")
    return parts


def _real_root(root: Path) -> Path:
    return Path(root).resolve(strict=True)


def resolve_within(root: Path, rel: str) -> Path:
    """The real path that `rel` names under `root`, following symlinks.

    Raises UnsafePathError when `rel` is malformed or when the path, after every
    symlink is followed, is not `root` itself or below it. The target need not exist.
    """
    real_root = _real_root(root)
    parts = _relative_parts(rel)
    candidate = real_root.joinpath(*parts).resolve()
    if candidate != real_root and not candidate.is_relative_to(real_root):
        raise UnsafePathError("path leads outside the root")
    return candidate


def entry_within(root: Path, rel: str) -> Path:
    """The path of the directory entry `rel` under `root`, without following a
    symlink in its last component.

    Used for deleting: removing a symlink that points outside the workspace removes
    only the link (which lives inside), so the link itself must be addressable even
    though `resolve_within` refuses to follow it.
    """
    parts = _relative_parts(rel)
    if not parts:
        raise UnsafePathError("the root itself is not an entry")
    parent = resolve_within(root, "/".join(parts[:-1]))
    return parent / parts[-1]


def safe_name(name: str) -> str:
    """Check a single new file or folder name (an upload, a new folder) and return it.

    Browsers send only a base name for uploads, but the name is client-controlled,
    so it is checked like any other input.
    """
    if not isinstance(name, str):
        raise UnsafePathError("name must be a string")
    name = name.strip()
    if not name:
        raise UnsafePathError("name is empty")
    if "\x00" in name or "/" in name or "\\" in name:
        raise UnsafePathError("name must not contain '/', '\\' or NUL")
    if name in (".", ".."):
        raise UnsafePathError("name must not be '.' or '..'")
    if len(name.encode("utf-8")) > MAX_NAME_LENGTH:
        raise UnsafePathError(f"name is longer than {MAX_NAME_LENGTH} bytes")
    return name


def join_rel(rel: str, name: str) -> str:
    """The relative path of `name` inside the relative directory `rel`."""
    parts = _relative_parts(rel)
    return "/".join((*parts, safe_name(name)))


@dataclass(frozen=True)
class Entry:
    """One row of a directory listing."""

    name: str
    rel: str
    is_dir: bool
    size: int
    modified: float
    is_symlink: bool
    # A symlink whose target is outside the root (or dangling): listed so the user
    # sees it, but never opened.
    outside: bool


def list_dir(root: Path, rel: str = "", *, show_hidden: bool = False) -> list[Entry]:
    """The entries of the directory `rel` under `root`, folders first, then by name."""
    directory = resolve_within(root, rel)
    if not directory.is_dir():
        raise NotADirectoryError(rel or ".")
    base_rel = "/".join(_relative_parts(rel))
    entries: list[Entry] = []
    with os.scandir(directory) as scan:
        for item in scan:
            if not show_hidden and item.name.startswith("."):
                continue
            item_rel = f"{base_rel}/{item.name}" if base_rel else item.name
            entries.append(_entry(root, item, item_rel))
    entries.sort(key=lambda e: (not e.is_dir, e.name.lower()))
    return entries


def _entry(root: Path, item: os.DirEntry[str], item_rel: str) -> Entry:
    is_symlink = item.is_symlink()
    try:
        resolve_within(root, item_rel)
        target = item.stat(follow_symlinks=True)
        outside = False
    except (UnsafePathError, OSError):
        # Escaping or dangling link: describe the link itself, not what it points at.
        target = item.stat(follow_symlinks=False)
        outside = True
    is_dir = not outside and stat.S_ISDIR(target.st_mode)
    return Entry(
        name=item.name,
        rel=item_rel,
        is_dir=is_dir,
        size=0 if is_dir else target.st_size,
        modified=target.st_mtime,
        is_symlink=is_symlink,
        outside=outside,
    )


def human_size(num_bytes: int) -> str:
    """A size the way people read it: 1.5 MB, not 1572864."""
    size = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def find_files(root: Path, suffixes: tuple[str, ...], *, limit: int = 200) -> list[str]:
    """Relative paths of files under `root` whose names end with one of `suffixes`
    (case-insensitive), skipping hidden entries and not following symlinked folders;
    at most `limit`, in walk order."""
    real_root = _real_root(root)
    lowered = tuple(s.lower() for s in suffixes)
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(real_root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            if filename.startswith(".") or not filename.lower().endswith(lowered):
                continue
            rel = Path(dirpath, filename).relative_to(real_root).as_posix()
            try:
                if resolve_within(real_root, rel).is_file():
                    found.append(rel)
            except UnsafePathError:
                continue
            if len(found) >= limit:
                return found
    return found

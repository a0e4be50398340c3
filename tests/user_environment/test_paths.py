"""Path confinement: nothing the browser is asked for leaves its root."""

from __future__ import annotations

from pathlib import Path

import pytest

from envapp import paths
from envapp.paths import UnsafePathError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A root with a file, a folder, and a secret next to (not in) it."""
    base = tmp_path / "root"
    (base / "data" / "deep").mkdir(parents=True)
    (base / "notes.txt").write_text("hello")
    (base / "data" / "table.csv").write_text("a,b\n1,2\n")
    (tmp_path / "secret.txt").write_text("not yours")
    (tmp_path / "secret-dir").mkdir()
    (tmp_path / "secret-dir" / "key").write_text("nope")
    return base


@pytest.mark.parametrize("rel", ["", ".", "./"])
def test_empty_and_dot_name_the_root(root: Path, rel: str) -> None:
    assert paths.resolve_within(root, rel) == root.resolve()


@pytest.mark.parametrize(
    ("rel", "expected"),
    [("notes.txt", "notes.txt"), ("data/table.csv", "data/table.csv"),
     ("./data//deep/", "data/deep"), ("missing/new.txt", "missing/new.txt")],
)
def test_relative_paths_resolve_inside(root: Path, rel: str, expected: str) -> None:
    assert paths.resolve_within(root, rel) == root.resolve() / expected


@pytest.mark.parametrize(
    "rel",
    [
        "..",
        "../secret.txt",
        "data/../../secret.txt",
        "data/..",  # would stay inside, but '..' is refused outright
        "/etc/passwd",
        "//etc/passwd",
        str(Path("/tmp")),
        "notes.txt\x00.png",
        "\x00",
        "..\\secret.txt",
        "data\\table.csv",
    ],
)
def test_traversal_absolute_nul_and_backslash_are_refused(root: Path, rel: str) -> None:
    with pytest.raises(UnsafePathError):
        paths.resolve_within(root, rel)


def test_non_string_is_refused(root: Path) -> None:
    with pytest.raises(UnsafePathError):
        paths.resolve_within(root, b"notes.txt")  # type: ignore[arg-type]


def test_symlink_to_a_file_outside_is_refused(root: Path) -> None:
    (root / "escape").symlink_to(root.parent / "secret.txt")
    with pytest.raises(UnsafePathError):
        paths.resolve_within(root, "escape")


def test_symlinked_folder_outside_is_refused_for_everything_under_it(root: Path) -> None:
    (root / "data" / "door").symlink_to(root.parent / "secret-dir")
    for rel in ("data/door", "data/door/key", "data/door/new-file"):
        with pytest.raises(UnsafePathError):
            paths.resolve_within(root, rel)


def test_relative_symlink_climbing_out_is_refused(root: Path) -> None:
    (root / "data" / "up").symlink_to("../../secret.txt")
    with pytest.raises(UnsafePathError):
        paths.resolve_within(root, "data/up")


def test_symlink_to_the_root_itself_escaping_via_parent_is_refused(root: Path) -> None:
    (root / "loop").symlink_to(root.parent)
    with pytest.raises(UnsafePathError):
        paths.resolve_within(root, "loop/secret.txt")


def test_symlink_staying_inside_is_followed(root: Path) -> None:
    (root / "shortcut").symlink_to(root / "data")
    assert paths.resolve_within(root, "shortcut/table.csv") == (
        root.resolve() / "data" / "table.csv"
    )


def test_root_that_is_itself_a_symlink_works(tmp_path: Path, root: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    assert paths.resolve_within(alias, "notes.txt") == root.resolve() / "notes.txt"


def test_entry_within_addresses_an_escaping_link_without_following_it(root: Path) -> None:
    (root / "escape").symlink_to(root.parent / "secret.txt")
    entry = paths.entry_within(root, "escape")
    assert entry == root.resolve() / "escape"
    assert entry.is_symlink()


@pytest.mark.parametrize("rel", ["", ".", "..", "../secret.txt", "/etc", "a\x00b"])
def test_entry_within_refuses_the_root_and_escapes(root: Path, rel: str) -> None:
    with pytest.raises(UnsafePathError):
        paths.entry_within(root, rel)


def test_entry_within_refuses_entries_behind_an_escaping_folder_link(root: Path) -> None:
    (root / "door").symlink_to(root.parent / "secret-dir")
    with pytest.raises(UnsafePathError):
        paths.entry_within(root, "door/key")


@pytest.mark.parametrize("name", ["results.fits", "  spaced.txt ", "ünïcode.csv", ".hidden"])
def test_safe_name_accepts_plain_names(name: str) -> None:
    assert paths.safe_name(name) == name.strip()


@pytest.mark.parametrize(
    "name", ["", "   ", ".", "..", "a/b", "../x", "/abs", "a\\b", "a\x00b", "x" * 256]
)
def test_safe_name_refuses_paths_and_specials(name: str) -> None:
    with pytest.raises(UnsafePathError):
        paths.safe_name(name)


def test_join_rel() -> None:
    assert paths.join_rel("", "a.txt") == "a.txt"
    assert paths.join_rel("data/deep", "a.txt") == "data/deep/a.txt"
    with pytest.raises(UnsafePathError):
        paths.join_rel("data", "../x")


def test_list_dir_sorts_folders_first_and_marks_escaping_links(root: Path) -> None:
    (root / "escape").symlink_to(root.parent / "secret.txt")
    (root / "dangling").symlink_to(root / "nowhere")
    (root / ".hidden").write_text("x")
    entries = {e.name: e for e in paths.list_dir(root)}
    assert list(entries) == ["data", "dangling", "escape", "notes.txt"]
    assert entries["data"].is_dir and entries["data"].rel == "data"
    assert entries["notes.txt"].size == 5 and not entries["notes.txt"].outside
    assert entries["escape"].outside and entries["escape"].is_symlink
    assert not entries["escape"].is_dir
    assert entries["dangling"].outside
    assert ".hidden" in {e.name for e in paths.list_dir(root, show_hidden=True)}


def test_list_dir_of_a_subfolder_gives_paths_relative_to_the_root(root: Path) -> None:
    assert [e.rel for e in paths.list_dir(root, "data")] == ["data/deep", "data/table.csv"]


def test_list_dir_refuses_escapes_and_files(root: Path) -> None:
    with pytest.raises(UnsafePathError):
        paths.list_dir(root, "..")
    with pytest.raises(NotADirectoryError):
        paths.list_dir(root, "notes.txt")


def test_find_files_skips_hidden_and_escaping_links(root: Path) -> None:
    (root / "a.fits").write_bytes(b"")
    (root / "data" / "B.FITS").write_bytes(b"")
    (root / ".cache").mkdir()
    (root / ".cache" / "c.fits").write_bytes(b"")
    (root.parent / "outside.fits").write_bytes(b"")
    (root / "link.fits").symlink_to(root.parent / "outside.fits")
    (root / "door").symlink_to(root.parent)  # os.walk does not follow folder links
    assert paths.find_files(root, (".fits",)) == ["a.fits", "data/B.FITS"]
    assert paths.find_files(root, (".fits",), limit=1) == ["a.fits"]


def test_human_size() -> None:
    assert paths.human_size(0) == "0 B"
    assert paths.human_size(1023) == "1023 B"
    assert paths.human_size(1536) == "1.5 KB"
    assert paths.human_size(5 * 1024**3) == "5.0 GB"



"""Where a browser may be sent after signing in: a path on this site, nothing else."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from ..core.errors import ApiError

MAX_LENGTH = 2048


def _unsafe(text: str) -> bool:
    # Backslashes count as slashes to browsers; control characters and spaces get
    # stripped by them, which can turn "/ /evil" or "/\t/evil" into "//evil".
    return any(c == "\\" or c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def safe_next(value: str | None, default: str = "/") -> str:
    """`value` when it is a same-origin absolute path, otherwise `default`.

    Checked on the raw value and on every percent-decoding of it, so encoded variants
    (`/%2F%2Fevil`, `/%5Cevil`, double encoding) fail the same way as the plain ones.
    """
    if not value or len(value) > MAX_LENGTH or not value.isascii() or _unsafe(value):
        return default
    decoded = value
    for _ in range(4):
        path = decoded.split("?", 1)[0].split("#", 1)[0]
        # "//" anywhere in the path, not just in front: "/..//evil" normalises to "//evil".
        if _unsafe(path) or not path.startswith("/") or "//" in path:
            return default
        parts = urlsplit(decoded)
        if parts.scheme or parts.netloc:
            return default
        once_more = unquote(decoded)
        if once_more == decoded:
            return value
        decoded = once_more
    return default  # encoded more deeply than any real link is


def checked_next(value: str | None) -> str:
    """Where to go after signing in: "/" when no `next` was given, the path when it is a
    safe one; an unsafe `next` is an attack, refused before any sign-in starts."""
    if not value:
        return "/"
    target = safe_next(value, default="")
    if not target:
        raise ApiError(400, "bad_next", "next: expected a path on this site")
    return target

"""Opaque pagination cursors: URL-safe base64 of a JSON list of strings."""

from __future__ import annotations

import base64
import binascii
import json

from .base import BadCursor


def encode_cursor(*parts: str) -> str:
    raw = json.dumps([str(p) for p in parts], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadCursor("cursor: not one this server handed out") from None
    if not (isinstance(parts, list) and len(parts) == size
            and all(isinstance(p, str) for p in parts)):
        raise BadCursor("cursor: not one this server handed out")
    if size == 2:
        try:
            float(parts[0])
        except ValueError:
            raise BadCursor("cursor: not one this server handed out") from None
    return parts

"""Pagination for every admin listing: `?limit=1..200&cursor=...`, 400 when malformed."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import request

from ..core.errors import ApiError
from ..core.models import Page
from ..core.store.base import BadCursor

MAX_PAGE = 200
T = TypeVar("T")


def fetch_page(query: Callable[..., Page[T]], **filters) -> Page[T]:
    """Run a store listing with the request's limit and cursor."""
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ApiError(400, "bad_limit", f"limit: expected a whole number from 1 to {MAX_PAGE}")
    try:
        return query(limit=int(raw), cursor=request.args.get("cursor") or None, **filters)
    except BadCursor as err:
        raise ApiError(400, "bad_cursor", str(err)) from None

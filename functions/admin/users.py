"""Admin API for users and the audit log; every route is for administrators only.

    GET   /api/admin/users?limit=&cursor=   -> {"users": [...], "next_cursor"}
    PATCH /api/admin/users/<id>             {role?: "admin"|"user", disabled?: bool}
    GET   /api/admin/audit?limit=&cursor=   -> {"entries": [...], "next_cursor"}
"""

from __future__ import annotations

from flask import Flask, Response, jsonify

from ..core.errors import ApiError, Conflict, NotFound
from ..core.models import USER_ID, AuditEntry, Role
from ..core.web import json_body, platform, require_admin
from .paging import fetch_page


def register(app: Flask) -> None:
    app.get("/api/admin/users")(list_users)
    app.patch("/api/admin/users/<user_id>")(update_user)
    app.get("/api/admin/audit")(list_audit)


def list_users() -> Response:
    require_admin()
    page = fetch_page(platform().store.list_users)
    return jsonify({"users": [u.public() for u in page.items], "next_cursor": page.next_cursor})


def list_audit() -> Response:
    require_admin()
    page = fetch_page(platform().store.list_audit)
    return jsonify({"entries": [e.public() for e in page.items],
                    "next_cursor": page.next_cursor})


def _changes(body: dict) -> tuple[Role | None, bool | None]:
    unknown = set(body) - {"role", "disabled"}
    if unknown:
        raise ApiError(400, "bad_field", f"unknown field(s): {', '.join(sorted(unknown))}")
    role = body.get("role")
    if role is not None and role not in ("admin", "user"):
        raise ApiError(400, "bad_role", "role: expected \"admin\" or \"user\"")
    disabled = body.get("disabled")
    if disabled is not None and not isinstance(disabled, bool):
        raise ApiError(400, "bad_disabled", "disabled: expected true or false")
    if role is None and disabled is None:
        raise ApiError(400, "nothing_to_change", "expected role and/or disabled")
    return (Role(role) if role else None), disabled


def update_user(user_id: str) -> Response:
    admin = require_admin()
    role, disabled = _changes(json_body())
    p = platform()
    if not USER_ID.match(user_id) or (before := p.store.get_user(user_id)) is None:
        raise NotFound("no such user")
    # Keeps at least one administrator able to undo a mistake.
    if user_id == admin.id and (disabled or role == Role.USER):
        raise Conflict("self_change", "administrators cannot disable or demote themselves")
    # A demoted admin's session token still says "admin": revoke it with the role.
    demoted = before.is_admin and role == Role.USER
    after = p.store.update_user(user_id, role=role, disabled=disabled, revoke_tokens=demoted)
    if after is None:
        raise NotFound("no such user")
    p.sessions.remember(after)
    detail = {}
    if role is not None:
        detail["role"] = {"from": str(before.role), "to": str(after.role)}
    if disabled is not None:
        detail["disabled"] = {"from": before.disabled, "to": after.disabled}
    p.store.audit(AuditEntry(actor=admin.id, action="user.update", target=user_id,
                             detail=detail))
    return jsonify({"user": after.public()})

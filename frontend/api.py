"""The hub's client for the control plane API, acting for the signed-in browser.

The hub never holds credentials of its own: each call carries the caller's session
cookie, so the API applies exactly the checks it applies to the browser.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests

SESSION_COOKIE = "cmbcluster_session"  # functions/core/sessions.py; the hub imports no function


@dataclass
class ApiProblem(Exception):
    status: int
    code: str
    message: str


class HubApi:
    def __init__(self, token: str | None, base_url: str | None = None, timeout: float = 10):
        self.base = (base_url or os.environ.get("CMBCLUSTER_API_URL",
                                                "http://127.0.0.1:8000")).rstrip("/")
        self.http = requests.Session()
        self.timeout = timeout
        if token:
            self.http.headers["Cookie"] = f"{SESSION_COOKIE}={token}"

    def _call(self, method: str, path: str, **kw) -> Any:
        try:
            resp = self.http.request(method, self.base + path, timeout=self.timeout, **kw)
        except requests.RequestException:
            raise ApiProblem(503, "unreachable", "the platform is not answering; try again "
                             "in a moment") from None
        try:
            data = resp.json()
        except ValueError:
            data = {}
        if resp.status_code >= 400:
            raise ApiProblem(resp.status_code, data.get("error", "error"),
                             data.get("message", resp.reason))
        return data

    def me(self) -> dict | None:
        try:
            return self._call("GET", "/api/me")
        except ApiProblem as err:
            if err.status == 401:
                return None
            raise

    def profiles(self) -> dict:
        return self._call("GET", "/api/profiles")

    def environments(self) -> list[dict]:
        return self._call("GET", "/api/environments")["environments"]

    def environment(self, env_id: str) -> dict:
        return self._call("GET", f"/api/environments/{env_id}")

    def launch(self, profile: str) -> dict:
        return self._call("POST", "/api/environments", json={"profile": profile})

    def stop(self, env_id: str) -> dict:
        return self._call("DELETE", f"/api/environments/{env_id}")

    def workspace(self) -> dict:
        return self._call("GET", "/api/workspace")

    # -- administrators only (the API answers 403 to anyone else) -------------------------
    def _pages(self, path: str, key: str, params: dict[str, Any] | None = None,
               max_items: int = 1000) -> Iterator[dict]:
        """Every item of a cursor-paged listing, up to `max_items` so a huge table cannot
        stall a page render."""
        query = {"limit": 200, **(params or {})}
        seen = 0
        while True:
            data = self._call("GET", path, params=query)
            for item in data[key]:
                yield item
                seen += 1
                if seen >= max_items:
                    return
            if not data.get("next_cursor"):
                return
            query["cursor"] = data["next_cursor"]

    def users(self) -> list[dict]:
        return list(self._pages("/api/admin/users", "users"))

    def update_user(self, user_id: str, *, role: str | None = None,
                    disabled: bool | None = None) -> dict:
        body: dict[str, Any] = {}
        if role is not None:
            body["role"] = role
        if disabled is not None:
            body["disabled"] = disabled
        return self._call("PATCH", f"/api/admin/users/{user_id}", json=body)["user"]

    def audit(self, max_items: int = 500) -> list[dict]:
        return list(self._pages("/api/admin/audit", "entries", max_items=max_items))

    def all_environments(self, states: list[str] | None = None,
                         max_items: int = 2000) -> list[dict]:
        params = {"state": ",".join(states)} if states else None
        return list(self._pages("/api/admin/environments", "environments", params,
                                max_items=max_items))

    def admin_stop(self, env_id: str) -> dict:
        return self._call("DELETE", f"/api/admin/environments/{env_id}")

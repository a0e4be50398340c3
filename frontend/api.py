"""The hub's client for the control plane API, acting for the signed-in browser.

The hub never holds credentials of its own: each call carries the caller's session
cookie, so the API applies exactly the checks it applies to the browser.
"""

from __future__ import annotations

import os
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

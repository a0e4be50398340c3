"""A Kubernetes API mock: the handful of REST endpoints the backend calls, over real HTTP.

No API server runs here, so the tests point a real `kubernetes.client.ApiClient` at
this one. It keeps objects per (kind, namespace, name) with the API server's answers
that matter to the backend: 201 on create, 409 AlreadyExists on a second create, 404
NotFound on a missing read or delete, label-selector lists. Pod status is whatever the
test sets, or the next step of a per-pod script advanced on each read, to walk a pod
through Pending -> scheduled -> pulling -> running.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_PATH = re.compile(
    r"^/(?:api/v1|apis/networking\.k8s\.io/v1)/namespaces/(?P<ns>[^/]+)/"
    r"(?P<kind>pods|services|persistentvolumeclaims|ingresses)(?:/(?P<name>[^/]+))?$")


class FakeKubernetes:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.requests: list[tuple[str, str, dict | None]] = []  # method, path, body
        self.pod_scripts: dict[str, list[dict]] = {}  # pod name -> statuses, one per read
        self.fail_next: list[int] = []  # statuses to answer the next requests with
        self.lock = threading.Lock()
        self.url = ""

    # -- what tests use ---------------------------------------------------------------

    def names(self, kind: str) -> list[str]:
        with self.lock:
            return sorted(name for (k, _, name) in self.objects if k == kind)

    def posted(self) -> list[dict]:
        return [body for method, _, body in self.requests if method == "POST" and body]

    def set_pod_status(self, name: str, status: dict) -> None:
        with self.lock:
            self.objects[("pods", _ns(self.objects, name), name)]["status"] = status

    def mark_deleting(self, name: str) -> None:
        with self.lock:
            pod = self.objects[("pods", _ns(self.objects, name), name)]
            pod["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"

    def remove(self, kind: str, name: str) -> None:
        """The object vanishes behind the backend's back (a node died, an admin)."""
        with self.lock:
            self.objects.pop((kind, _ns(self.objects, name, kind), name))

    # -- the API ------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, body: dict | None) -> tuple[int, dict]:
        with self.lock:
            self.requests.append((method, raw_path, body))
            if self.fail_next:
                code = self.fail_next.pop(0)
                return code, _status(code, "Injected", "injected failure")
            url = urlsplit(raw_path)
            match = _PATH.match(url.path)
            if match is None:
                return 404, _status(404, "NotFound", f"no route {url.path}")
            key = (match["kind"], match["ns"], match["name"])
            if method == "POST" and match["name"] is None:
                return self._create(match["kind"], match["ns"], body or {})
            if method == "GET" and match["name"] is None:
                return 200, self._list(match["kind"], match["ns"], parse_qs(url.query))
            if match["name"] is None:
                return 405, _status(405, "MethodNotAllowed", method)
            if key not in self.objects:
                return 404, _status(404, "NotFound", f'{match["kind"]} "{key[2]}" not found')
            if method == "GET":
                if key[0] == "pods" and self.pod_scripts.get(key[2]):
                    self.objects[key]["status"] = self.pod_scripts[key[2]].pop(0)
                return 200, self.objects[key]
            if method == "DELETE":
                return 200, self.objects.pop(key)
            return 405, _status(405, "MethodNotAllowed", method)

    def _create(self, kind: str, ns: str, body: dict) -> tuple[int, dict]:
        name = body.get("metadata", {}).get("name", "")
        if (kind, ns, name) in self.objects:
            return 409, _status(409, "AlreadyExists", f'{kind} "{name}" already exists')
        obj = copy.deepcopy(body)
        obj["metadata"].update(uid=str(uuid.uuid4()), namespace=ns,
                               creationTimestamp="2025-01-01T00:00:00Z")
        if kind == "pods":
            obj["status"] = {"phase": "Pending"}
        self.objects[(kind, ns, name)] = obj
        return 201, obj

    def _list(self, kind: str, ns: str, query: dict[str, list[str]]) -> dict:
        wanted = dict(term.split("=", 1) for term in
                      query.get("labelSelector", [""])[0].split(",") if term)
        items = [obj for (k, n, _), obj in self.objects.items() if k == kind and n == ns
                 and all(obj["metadata"].get("labels", {}).get(a) == b
                         for a, b in wanted.items())]
        return {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}


def _ns(objects: dict, name: str, kind: str = "pods") -> str:
    return next(ns for (k, ns, n) in objects if k == kind and n == name)


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "reason": reason, "message": message}


@contextmanager
def serve() -> Iterator[FakeKubernetes]:
    fake = FakeKubernetes()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            code, payload = fake.handle(self.command, self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()

"""CloudTasksQueue through the real Cloud Tasks client.

Against gcloud-tasks-emulator (PyPI, in .venv-tasks because it pins an old protobuf):
the task is created with the right name, target, payload and OIDC token, and the
emulator delivers it to a local HTTP receiver. The emulator does not deduplicate task
names, so deduplication (AlreadyExists -> False) is tested against a small gRPC server
that answers CreateTask as Cloud Tasks does, still through the real client and channel.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from functions.core.queue.cloudtasks import CloudTasksQueue

from ..conftest import ROOT, free_port, missing_service, stop_group

EMULATOR = ROOT / ".venv-tasks" / "bin" / "gcloud-tasks-emulator"
QUEUE = "projects/cmb-test/locations/europe-west1/queues/spawn"
SA = "cmbcluster-tasks@cmb-test.iam.gserviceaccount.com"


def client_for(address: str) -> tasks_v2.CloudTasksClient:
    channel = grpc.insecure_channel(address)
    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("localhost", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Iterator[str]:
    if not os.access(EMULATOR, os.X_OK):
        missing_service(f"{EMULATOR} is not installed (python3 -m venv .venv-tasks && "
                        ".venv-tasks/bin/pip install gcloud-tasks-emulator)")
    port = free_port()
    log_path = tmp_path_factory.mktemp("tasks") / "emulator.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(EMULATOR), "start", "--port", str(port),
                                 "--default-queue", QUEUE, "--max-retries", "0"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        if not wait_port(port, proc):
            missing_service(f"Cloud Tasks emulator did not start (see {log_path})")
        yield f"localhost:{port}"
    finally:
        stop_group(proc)


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue]]:
    """A stand-in spawn service: records each delivery, answers 200."""
    received: queue.Queue = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.put((self.path, self.headers, body))  # case-insensitive
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def make_queue(client: tasks_v2.CloudTasksClient, target_url: str) -> CloudTasksQueue:
    return CloudTasksQueue("cmb-test", "europe-west1", "spawn", target_url, SA, client=client)


def test_task_is_created_with_name_target_payload_and_token(emulator, receiver):
    target_url, received = receiver
    client = client_for(emulator)
    tasks = make_queue(client, target_url)
    client.pause_queue(name=QUEUE)  # hold delivery so the stored task can be read
    try:
        assert tasks.enqueue("spawn", "0123456789ab", {"environment": "0123456789ab"})
        (task,) = [t for t in client.list_tasks(parent=QUEUE)
                   if t.name.endswith("/spawn-0123456789ab")]
    finally:
        client.resume_queue(name=QUEUE)
    assert task.name == f"{QUEUE}/tasks/spawn-0123456789ab"
    request = task.http_request
    assert request.url == f"{target_url}/tasks/spawn"
    assert request.http_method == tasks_v2.HttpMethod.POST
    assert json.loads(request.body) == {"environment": "0123456789ab"}
    assert request.headers["Content-Type"] == "application/json"
    assert request.oidc_token.service_account_email == SA
    assert request.oidc_token.audience == target_url

    path, headers, body = received.get(timeout=20)  # the emulator delivers it
    assert path == "/tasks/spawn"
    assert json.loads(body) == {"environment": "0123456789ab"}
    assert headers["Content-Type"] == "application/json"
    # The spawn service refuses requests without this header (functions/spawn/app.py).
    assert headers["X-CloudTasks-QueueName"] == QUEUE
    assert headers["X-CloudTasks-TaskName"] == "spawn-0123456789ab"
    tasks.close()


# -- deduplication, against a gRPC server that answers like Cloud Tasks -------------------

@pytest.fixture
def deduplicating_server() -> Iterator[tuple[str, list[tasks_v2.CreateTaskRequest]]]:
    seen: list[tasks_v2.CreateTaskRequest] = []
    names: set[str] = set()

    def create_task(request: tasks_v2.CreateTaskRequest, context: grpc.ServicerContext):
        seen.append(request)
        if request.task.name in names:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, "Requested entity already exists")
        names.add(request.task.name)
        return request.task

    handler = grpc.method_handlers_generic_handler("google.cloud.tasks.v2.CloudTasks", {
        "CreateTask": grpc.unary_unary_rpc_method_handler(
            create_task, request_deserializer=tasks_v2.CreateTaskRequest.deserialize,
            response_serializer=tasks_v2.Task.serialize)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", seen
    finally:
        server.stop(None)


def test_a_duplicate_name_returns_false(deduplicating_server):
    address, seen = deduplicating_server
    tasks = make_queue(client_for(address), "https://spawn-abc.a.run.app/")
    assert tasks.enqueue("spawn", "0123456789ab", {"environment": "0123456789ab"}) is True
    assert tasks.enqueue("spawn", "0123456789ab", {"environment": "0123456789ab"}) is False
    assert tasks.enqueue("spawn", "bbbbbbbbbbbb", {"environment": "bbbbbbbbbbbb"}) is True
    assert [r.task.name.rsplit("/", 1)[1] for r in seen] == [
        "spawn-0123456789ab", "spawn-0123456789ab", "spawn-bbbbbbbbbbbb"]
    assert seen[0].parent == QUEUE
    # The trailing slash is not part of the audience Cloud Run expects.
    assert seen[0].task.http_request.oidc_token.audience == "https://spawn-abc.a.run.app"
    tasks.close()


def test_task_names_are_checked_before_sending():
    tasks = make_queue(client_for("127.0.0.1:1"), "https://spawn.example")
    with pytest.raises(ValueError):
        tasks.enqueue("spawn", "../other-queue", {})

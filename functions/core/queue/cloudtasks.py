"""Cloud Tasks queue: the cloud adapter of the TaskQueue port.

The only module that imports the Cloud Tasks SDK. A task of kind `spawn` is an HTTP
POST of the JSON payload to `<target_url>/tasks/spawn`, carrying an OIDC token that
Google signs for `service_account_email` with the target URL as audience (the spawn
service checks both, see core/service_auth.py). The queue's rate limits (terraform/)
keep a spawn storm from flooding the Kubernetes API; its retries re-run a worker that
died, which is safe because every spawn step is idempotent.

Deduplication is Cloud Tasks' own: the task is named `<kind>-<name>`, and creating a
name that exists, or existed within about an hour, answers AlreadyExists, which is
the port's False. (The local emulator does not deduplicate; see tests/cloud.)
"""

from __future__ import annotations

import json
import re

from google.api_core import exceptions, retry
from google.cloud import tasks_v2

from .base import QueueError, TaskQueue

# Cloud Tasks task ids: letters, digits, hyphens, underscores, at most 500 characters.
_TASK_ID = re.compile(r"^[A-Za-z0-9_-]{1,500}$")

# CreateTask is not idempotent in general, so the client does not retry it by default;
# a named task is, so transient failures are retried (a duplicate then reads as False).
_RETRY = retry.Retry(
    predicate=retry.if_exception_type(exceptions.ServiceUnavailable,
                                      exceptions.DeadlineExceeded,
                                      exceptions.InternalServerError),
    initial=0.2, maximum=2.0, timeout=15.0)


class CloudTasksQueue(TaskQueue):
    def __init__(self, project: str, location: str, queue: str, target_url: str,
                 service_account_email: str, *, audience: str | None = None,
                 client: tasks_v2.CloudTasksClient | None = None,
                 dispatch_deadline_seconds: int | None = None, timeout: float = 10.0) -> None:
        self._client = client or tasks_v2.CloudTasksClient()
        self.queue_path = self._client.queue_path(project, location, queue)
        self.target_url = target_url.rstrip("/")
        self.service_account_email = service_account_email
        # Cloud Run accepts its own URL as audience; the spawn service checks exactly it.
        self.audience = audience or self.target_url
        self.dispatch_deadline_seconds = dispatch_deadline_seconds
        self.timeout = timeout

    def task_name(self, kind: str, name: str) -> str:
        task_id = f"{kind}-{name}"
        if not _TASK_ID.match(task_id):
            raise ValueError(f"task id {task_id!r}: letters, digits, - and _ only")
        return f"{self.queue_path}/tasks/{task_id}"

    def enqueue(self, kind: str, name: str, payload: dict) -> bool:
        task: dict = {
            "name": self.task_name(kind, name),
            "http_request": {
                "http_method": tasks_v2.HttpMethod.POST,
                "url": f"{self.target_url}/tasks/{kind}",
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps(payload).encode(),
                "oidc_token": {"service_account_email": self.service_account_email,
                               "audience": self.audience},
            },
        }
        if self.dispatch_deadline_seconds:
            task["dispatch_deadline"] = {"seconds": self.dispatch_deadline_seconds}
        try:
            self._client.create_task(parent=self.queue_path, task=task, retry=_RETRY,
                                     timeout=self.timeout)
        except exceptions.AlreadyExists:
            return False
        except exceptions.GoogleAPIError as err:
            raise QueueError(f"Cloud Tasks did not take the task: {err}") from None
        return True

    def close(self) -> None:
        self._client.transport.close()

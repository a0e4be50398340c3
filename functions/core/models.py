"""The records the platform keeps: users, environments, audit entries."""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


class State(StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


# Active environments hold a slot (per user and in the total cap); the rest do not.
ACTIVE_STATES = frozenset({State.PENDING, State.STARTING, State.RUNNING, State.STOPPING})

# Every transition the lifecycle allows; the store refuses anything else.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.STARTING, State.STOPPING, State.FAILED}),
    State.STARTING: frozenset({State.RUNNING, State.STOPPING, State.FAILED}),
    State.RUNNING: frozenset({State.STOPPING, State.FAILED}),
    State.STOPPING: frozenset({State.STOPPED, State.FAILED}),
    State.STOPPED: frozenset(),
    State.FAILED: frozenset(),
}


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ENV_ID = re.compile(r"^[a-z0-9]{12}$")


class InvalidRecord(ValueError):
    """A record field has a value the platform does not store."""


@dataclass
class User:
    id: str
    email: str
    name: str = ""
    role: Role = Role.USER
    disabled: bool = False
    token_version: int = 0
    created: datetime = field(default_factory=utcnow)
    last_login: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not USER_ID.match(self.id):
            raise InvalidRecord(f"user id {self.id!r}: expected 1-64 of A-Z a-z 0-9 _ -")
        if not isinstance(self.email, str) or len(self.email) > 320:
            raise InvalidRecord("user email: expected a string of at most 320 characters")
        if not isinstance(self.name, str) or len(self.name) > 200:
            raise InvalidRecord("user name: expected a string of at most 200 characters")
        self.role = Role(self.role)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def public(self) -> dict:
        return {"id": self.id, "email": self.email, "name": self.name, "role": str(self.role),
                "disabled": self.disabled, "created": iso(self.created),
                "last_login": iso(self.last_login)}


@dataclass
class ProgressEvent:
    phase: str
    message: str
    percent: int
    at: datetime = field(default_factory=utcnow)

    def public(self) -> dict:
        return {"phase": self.phase, "message": self.message, "percent": self.percent,
                "at": iso(self.at)}


def new_environment_id() -> str:
    return secrets.token_hex(6)


@dataclass
class Environment:
    id: str
    owner: str
    profile: str
    state: State = State.PENDING
    url: str | None = None
    created: datetime = field(default_factory=utcnow)
    started: datetime | None = None
    stopped: datetime | None = None
    last_activity: datetime | None = None
    reason: str | None = None
    events: list[ProgressEvent] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not ENV_ID.match(self.id):
            raise InvalidRecord(f"environment id {self.id!r}: expected 12 of a-z 0-9")
        if not isinstance(self.owner, str) or not USER_ID.match(self.owner):
            raise InvalidRecord(f"environment owner {self.owner!r}: not a user id")
        self.state = State(self.state)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def public(self) -> dict:
        return {
            "id": self.id,
            "owner": self.owner,
            "profile": self.profile,
            "state": str(self.state),
            "url": self.url,
            "created": iso(self.created),
            "started": iso(self.started),
            "stopped": iso(self.stopped),
            "last_activity": iso(self.last_activity),
            "reason": self.reason,
            "events": [e.public() for e in self.events],
            "timings": dict(self.timings),
        }


@dataclass
class AuditEntry:
    actor: str
    action: str
    target: str
    detail: dict = field(default_factory=dict)
    at: datetime = field(default_factory=utcnow)
    id: str = field(default_factory=lambda: secrets.token_hex(8))

    def public(self) -> dict:
        data = asdict(self)
        data["at"] = iso(self.at)
        return data


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None

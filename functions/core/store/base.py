"""The Store port: every record the control plane keeps goes through this interface.

Adapters: `sqlite.SqliteStore` (local, the embedded default) and
`firestore.FirestoreStore` (cloud). One contract suite (tests/contract/test_store.py)
runs against both, so the rules below hold for each:

- `claim_environment` is the only way to create an environment. It is atomic: it creates
  the `pending` record only when the owner has fewer than `max_per_user` active ones
  and fewer than `max_total` are active platform-wide. An active environment of the same
  profile is returned instead of a new one (a double click gives one environment); one
  that is stopping is not returned, but holds its slot until it has stopped.
- `transition` is a compare-and-set on the state: it applies only when the current
  state is one of `expected` and the lifecycle allows the move; otherwise it returns
  None and changes nothing. Leaving the active states releases the slot.
- `touch_activity` writes at most once per `min_interval` per environment.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..models import AuditEntry, Environment, Page, ProgressEvent, Role, State, User


class StoreError(Exception):
    """The store could not do what was asked (the message says why)."""


class LimitReached(StoreError):
    """The owner already has `max_per_user` active environments."""

    def __init__(self, active: list[Environment]):
        super().__init__("environment limit reached for this user")
        self.active = active


class CapacityReached(StoreError):
    """The platform already runs `max_total` environments."""


class BadCursor(StoreError):
    """A pagination cursor that this store did not hand out."""


@dataclass
class Claim:
    environment: Environment
    created: bool  # False: an active environment of this profile already existed


class Store(ABC):
    # -- users ---------------------------------------------------------------------------
    @abstractmethod
    def upsert_user(self, user: User, *, login_at: datetime | None = None) -> User:
        """Create the user, or refresh email and name of an existing one (role, disabled
        and token version are kept). With `login_at`, record it as the last login.
        A new user takes `user.role`; an existing one is promoted to admin when
        `user.role` is admin (admin e-mails), never demoted here."""

    @abstractmethod
    def get_user(self, user_id: str) -> User | None: ...

    @abstractmethod
    def list_users(self, *, limit: int = 50, cursor: str | None = None) -> Page[User]:
        """Users ordered by id."""

    @abstractmethod
    def update_user(self, user_id: str, *, role: Role | None = None,
                    disabled: bool | None = None, revoke_tokens: bool = False) -> User | None:
        """Change role or disabled flag; `revoke_tokens` bumps the token version.
        Disabling also bumps it. Returns None when there is no such user."""

    # -- environments --------------------------------------------------------------------
    @abstractmethod
    def claim_environment(self, env: Environment, *, max_per_user: int,
                          max_total: int) -> Claim:
        """Atomically create `env` (state pending) or raise LimitReached/CapacityReached."""

    @abstractmethod
    def get_environment(self, env_id: str) -> Environment | None: ...

    @abstractmethod
    def list_environments(self, *, owner: str | None = None,
                          states: Iterable[State] | None = None, limit: int = 50,
                          cursor: str | None = None) -> Page[Environment]:
        """Newest first."""

    @abstractmethod
    def transition(self, env_id: str, expected: Iterable[State], to: State, *,
                   idle_before: datetime | None = None, **fields: Any) -> Environment | None:
        """Compare-and-set the state; set `fields` (url, reason, started, stopped...) in
        the same write. None when the record is missing or not in `expected`, or, with
        `idle_before`, when it has seen activity since then (a click racing the culler
        keeps the environment)."""

    @abstractmethod
    def record_progress(self, env_id: str, event: ProgressEvent,
                        timings: Mapping[str, float] | None = None) -> None:
        """Append a progress event and merge phase timings (seconds)."""

    @abstractmethod
    def touch_activity(self, env_id: str, at: datetime, *, min_interval: float = 60) -> bool:
        """Set last_activity to `at` when the stored one is older than `min_interval`
        seconds and the environment is active. True when it wrote."""

    @abstractmethod
    def idle_environments(self, before: datetime) -> list[Environment]:
        """Running environments whose last activity (or start) is before `before`."""

    @abstractmethod
    def stuck_environments(self, before: datetime) -> list[Environment]:
        """Pending or starting environments created before `before`."""

    def active_environments(self) -> list[Environment]:
        items: list[Environment] = []
        cursor = None
        while True:
            page = self.list_environments(states=ACTIVE, limit=200, cursor=cursor)
            items.extend(page.items)
            if not page.next_cursor:
                return items
            cursor = page.next_cursor

    # -- one-time values ------------------------------------------------------------------
    @abstractmethod
    def use_once(self, kind: str, value: str, expires: datetime) -> bool:
        """Record `value` as used (a login nonce, a task id); False when it was used
        before and has not expired. Atomic: of two racing calls one gets True."""

    # -- audit ---------------------------------------------------------------------------
    @abstractmethod
    def audit(self, entry: AuditEntry) -> None: ...

    @abstractmethod
    def list_audit(self, *, limit: int = 50, cursor: str | None = None) -> Page[AuditEntry]:
        """Newest first."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


ACTIVE = (State.PENDING, State.STARTING, State.RUNNING, State.STOPPING)


# The fields a transition may set alongside the state; owner, profile and ids never move.
TRANSITION_FIELDS = frozenset({"url", "reason", "started", "stopped", "last_activity"})


def checked_transition(expected: Iterable[State], to: State,
                       fields: Mapping[str, Any]) -> tuple[set[State], State]:
    """Validate a transition's arguments (ValueError for unknown states or fields)."""
    unknown = set(fields) - TRANSITION_FIELDS
    if unknown:
        raise ValueError(f"transition cannot set {sorted(unknown)}")
    return {State(s) for s in expected}, State(to)


def last_seen(env: Environment) -> datetime:
    """When someone last used the environment (its start, if nobody has yet)."""
    return env.last_activity or env.started or env.created

"""Firestore store (Native mode): the cloud adapter of the Store port.

The only module that imports the Firestore SDK. Same behaviour as `sqlite.SqliteStore`;
the contract suite runs against both (Firestore through the official emulator).

Data model
----------
users/{user_id}         email, name, role, disabled, token_version, created, last_login
environments/{env_id}   owner, profile, state, url, created, started, stopped,
                        last_activity, reason, events[] ({phase, message, percent, at}),
                        timings{phase: seconds},
                        slot: the capacity slot it holds while active,
                        idle_since: last_activity, else started, else created (Firestore
                        has no COALESCE, so the culler's query needs it stored)
user_slots/{user_id}    envs{env_id: profile}: the owner's active environments
capacity/{k}            env: the environment holding platform slot k (k < max_total)
audit/{entry_id}        at, actor, action, target, detail{}
used_once/{sha256}      kind, value, expires

Why the slot documents: a claim must see every competing claim. A query inside a
transaction does not lock the documents it did not find, so two claims could each count
the other's environment as absent; reading and writing named documents does conflict.
One global counter document would serialise every claim on the platform (Firestore
sustains about one write a second on a document; the emulator lets a conflicting
transaction wait up to 2 s), so the total cap is spread over `max_total` slot documents
and a claim touches one or a few.
Every timestamp is a native Firestore timestamp; datetimes come back tz-aware (UTC).

Production configuration (to be declared in Terraform)
------------------------------------------------------
Composite indexes on `environments` (__name__ follows the last field's direction):
  owner ASC, created DESC               list_environments(owner=...)
  state ASC, created DESC               list_environments(states=...), stuck_environments
  owner ASC, state ASC, created DESC    list_environments(owner=..., states=...)
  state ASC, idle_since ASC             idle_environments
Single-field defaults cover the rest (environments.created and audit.at descending,
users by id). Worth adding: a TTL policy on used_once.expires (expired values are
otherwise overwritten only when reused), and single-field index exemptions for
environments.events, environments.timings and audit.detail, which are never queried.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.api_core.exceptions import Aborted, AlreadyExists, FailedPrecondition, NotFound
from google.cloud import firestore

from ..models import (
    ACTIVE_STATES,
    ENV_ID,
    TRANSITIONS,
    USER_ID,
    AuditEntry,
    Environment,
    Page,
    ProgressEvent,
    Role,
    State,
    User,
)
from .base import (
    BadCursor,
    CapacityReached,
    Claim,
    LimitReached,
    Store,
    StoreError,
    checked_transition,
)
from .cursors import decode_cursor, encode_cursor

T = TypeVar("T")

_ACTIVE = [str(s) for s in ACTIVE_STATES]
# Audit ids are the caller's (hex by default): anything that stays one path segment.
_AUDIT_ID = re.compile(r"^[^/]{1,1500}$")
# Capacity slots read per round trip while looking for a free one: few enough that two
# claims rarely read the slot the other takes, enough to cross a busy stretch quickly.
_PROBE_BATCH = 4
# How long a transaction keeps retrying after contention aborts it.
_CONTENTION_DEADLINE = 30.0
_TOUCH_ATTEMPTS = 5
_DESC = firestore.Query.DESCENDING
_ID = "__name__"


class FirestoreStore(Store):
    def __init__(self, project: str, database: str = "(default)", client: Any = None):
        # The client reads FIRESTORE_EMULATOR_HOST itself, so tests need no special case.
        self._owns_client = client is None
        self._db = client if client is not None else firestore.Client(project=project,
                                                                       database=database)
        self._users = self._db.collection("users")
        self._envs = self._db.collection("environments")
        self._user_slots = self._db.collection("user_slots")
        self._capacity = self._db.collection("capacity")
        self._audit = self._db.collection("audit")
        self._once = self._db.collection("used_once")

    def close(self) -> None:
        # The SDK has no public close; its gRPC channel otherwise lives as long as the
        # process, one per store (the tests make one per test).
        api = getattr(self._db, "_firestore_api_internal", None)
        if self._owns_client and api is not None:
            api.transport.close()

    def _transact(self, body: Callable[[Any], T]) -> T:
        """Run `body(transaction)` in a read-write transaction.

        The SDK retries a commit that contention aborted (keeping the transaction's place
        in line), but an abort during a read (a lock wait that timed out) or after the
        SDK's own attempts reaches us: start again, with jitter so the racers spread out.
        """
        deadline = time.monotonic() + _CONTENTION_DEADLINE
        backoff = 0.05
        while True:
            try:
                return firestore.transactional(body)(self._db.transaction())
            except (Aborted, ValueError) as exc:
                if not (isinstance(exc, Aborted) or isinstance(exc.__cause__, Aborted)):
                    raise
                if time.monotonic() > deadline:
                    raise StoreError("the store is too busy; try again") from exc
            time.sleep(random.uniform(0, backoff))
            backoff = min(backoff * 2, 1.0)

    # -- users ---------------------------------------------------------------------------
    def upsert_user(self, user: User, *, login_at: datetime | None = None) -> User:
        ref = self._users.document(user.id)

        def body(txn: Any) -> User:
            snap = ref.get(transaction=txn)
            if not snap.exists:
                data = {"email": user.email, "name": user.name, "role": str(user.role),
                        "disabled": user.disabled, "token_version": user.token_version,
                        "created": user.created, "last_login": login_at}
                txn.create(ref, data)
                return _user(user.id, data)
            data = snap.to_dict()
            changes: dict[str, Any] = {
                "email": user.email, "name": user.name,
                "role": str(Role.ADMIN) if user.role == Role.ADMIN else data["role"],
            }
            if login_at is not None:
                changes["last_login"] = login_at
            txn.update(ref, changes)
            return _user(user.id, {**data, **changes})

        return self._transact(body)

    def get_user(self, user_id: str) -> User | None:
        snap = self._users.document(user_id).get()
        return _user(snap.id, snap.to_dict()) if snap.exists else None

    def list_users(self, *, limit: int = 50, cursor: str | None = None) -> Page[User]:
        query = self._users.order_by(_ID)
        if cursor:
            (after,) = decode_cursor(cursor, 1)
            query = query.start_after([_checked_id(after, USER_ID)])
        snaps = list(query.limit(limit + 1).stream())
        users = [_user(s.id, s.to_dict()) for s in snaps[:limit]]
        return Page(users, encode_cursor(users[-1].id) if len(snaps) > limit else None)

    def update_user(self, user_id: str, *, role: Role | None = None,
                    disabled: bool | None = None, revoke_tokens: bool = False) -> User | None:
        ref = self._users.document(user_id)

        def body(txn: Any) -> User | None:
            snap = ref.get(transaction=txn)
            if not snap.exists:
                return None
            data = snap.to_dict()
            changes: dict[str, Any] = {}
            if role is not None:
                changes["role"] = str(Role(role))
            if disabled is not None:
                changes["disabled"] = bool(disabled)
            if revoke_tokens or disabled:
                changes["token_version"] = data["token_version"] + 1
            if changes:
                txn.update(ref, changes)
            return _user(user_id, {**data, **changes})

        return self._transact(body)

    # -- environments --------------------------------------------------------------------
    def claim_environment(self, env: Environment, *, max_per_user: int,
                          max_total: int) -> Claim:
        env_ref = self._envs.document(env.id)
        user_ref = self._user_slots.document(env.owner)

        def body(txn: Any) -> Claim:
            snap = user_ref.get(transaction=txn)
            held = snap.to_dict().get("envs", {}) if snap.exists else {}
            # The environments themselves are the truth; an entry whose environment is
            # gone or inactive (written outside this store) is dropped, not counted.
            mine = [e for e in self._get_envs(txn, list(held)) if e.active]
            mine.sort(key=lambda e: (e.created, e.id), reverse=True)
            same = next((e for e in mine
                         if e.profile == env.profile and e.state != State.STOPPING), None)
            if same is not None:
                return Claim(same, created=False)
            if len(mine) >= max_per_user:
                raise LimitReached(mine)
            slot = self._free_slot(txn, max_total)
            if slot is None:
                raise CapacityReached("the platform is at its environment limit")
            data = _env_data(env, slot)
            txn.create(env_ref, data)
            txn.set(user_ref, {"envs": {**{e.id: e.profile for e in mine},
                                        env.id: env.profile}})
            txn.set(self._capacity.document(str(slot)), {"env": env.id})
            return Claim(_env(env.id, data), created=True)

        return self._transact(body)

    def _get_envs(self, txn: Any, env_ids: list[str]) -> list[Environment]:
        if not env_ids:
            return []
        refs = [self._envs.document(i) for i in env_ids]
        return [_env(s.id, s.to_dict()) for s in self._db.get_all(refs, transaction=txn)
                if s.exists]

    def _free_slot(self, txn: Any, max_total: int) -> int | None:
        """The first free capacity slot from a random start, or None when all are held.

        A random start spreads concurrent claims over different slot documents, so they
        rarely conflict. A slot is free when no document names a holder, or its holder
        no longer holds it (a leak repaired here rather than counted forever).
        """
        if max_total <= 0:
            return None
        start = random.randrange(max_total)
        order = [(start + i) % max_total for i in range(max_total)]
        for b in range(0, max_total, _PROBE_BATCH):
            batch = order[b:b + _PROBE_BATCH]
            refs = [self._capacity.document(str(k)) for k in batch]
            holders = {int(s.id): s.get("env") for s in self._db.get_all(refs, transaction=txn)
                       if s.exists}
            held = {}
            if holders:
                env_refs = [self._envs.document(i) for i in set(holders.values())]
                held = {s.id: s.to_dict() for s in self._db.get_all(env_refs, transaction=txn)
                        if s.exists}
            for k in batch:
                holder = held.get(holders.get(k, ""))
                if holder is None or holder["state"] not in _ACTIVE or holder.get("slot") != k:
                    return k
        return None

    def get_environment(self, env_id: str) -> Environment | None:
        snap = self._envs.document(env_id).get()
        return _env(snap.id, snap.to_dict()) if snap.exists else None

    def list_environments(self, *, owner: str | None = None,
                          states: Iterable[State] | None = None, limit: int = 50,
                          cursor: str | None = None) -> Page[Environment]:
        query = self._envs
        if owner is not None:
            query = query.where(filter=firestore.FieldFilter("owner", "==", owner))
        if states is not None:
            wanted = sorted({str(State(s)) for s in states})
            if not wanted:  # Firestore refuses an empty `in`
                return Page([])
            query = query.where(filter=firestore.FieldFilter("state", "in", wanted))
        query = query.order_by("created", direction=_DESC).order_by(_ID, direction=_DESC)
        if cursor:
            created, env_id = decode_cursor(cursor, 2)
            query = query.start_after([_cursor_time(created), _checked_id(env_id, ENV_ID)])
        snaps = list(query.limit(limit + 1).stream())
        envs = [_env(s.id, s.to_dict()) for s in snaps[:limit]]
        nxt = None
        if len(snaps) > limit:
            nxt = encode_cursor(repr(envs[-1].created.timestamp()), envs[-1].id)
        return Page(envs, nxt)

    def transition(self, env_id: str, expected: Iterable[State], to: State, *,
                   idle_before: datetime | None = None, **fields: Any) -> Environment | None:
        expected, to = checked_transition(expected, to, fields)
        ref = self._envs.document(env_id)

        def body(txn: Any) -> Environment | None:
            snap = ref.get(transaction=txn)
            if not snap.exists:
                return None
            data = snap.to_dict()
            current = State(data["state"])
            if current not in expected or to not in TRANSITIONS[current]:
                return None
            if idle_before is not None and _idle_since(data) >= idle_before:
                return None
            changes = {"state": str(to), **fields}
            merged = {**data, **changes}
            changes["idle_since"] = _idle_since(merged)
            if current in ACTIVE_STATES and to not in ACTIVE_STATES:
                self._release(txn, env_id, data)
            txn.update(ref, changes)
            return _env(env_id, {**merged, **changes})

        return self._transact(body)

    def _release(self, txn: Any, env_id: str, data: dict) -> None:
        """Free the owner's entry and the capacity slot, in the transition's transaction.
        All reads come before all writes, as Firestore transactions require."""
        user_ref = self._user_slots.document(data["owner"])
        slot_ref = self._capacity.document(str(data["slot"])) if "slot" in data else None
        user_snap = user_ref.get(transaction=txn)
        slot_snap = slot_ref.get(transaction=txn) if slot_ref else None
        if user_snap.exists:
            held = dict(user_snap.to_dict().get("envs", {}))
            if held.pop(env_id, None) is not None:
                txn.set(user_ref, {"envs": held})
        # A repaired leak may have handed the slot on; only its holder frees it.
        if slot_snap is not None and slot_snap.exists and slot_snap.get("env") == env_id:
            txn.delete(slot_ref)

    def record_progress(self, env_id: str, event: ProgressEvent,
                        timings: Mapping[str, float] | None = None) -> None:
        # Server-side transforms, no read: concurrent writers cannot overwrite each other.
        # ArrayUnion drops an exact duplicate only, and every event carries its time.
        changes: dict[str, Any] = {"events": firestore.ArrayUnion([_event_data(event)])}
        for phase, seconds in (timings or {}).items():
            changes[self._db.field_path("timings", phase)] = float(seconds)
        try:
            self._envs.document(env_id).update(changes)
        except NotFound:
            return

    def touch_activity(self, env_id: str, at: datetime, *, min_interval: float = 60) -> bool:
        # The hot path of every request: a read and a write conditional on the document
        # not having changed since, instead of a transaction holding locks.
        ref = self._envs.document(env_id)
        for _ in range(_TOUCH_ATTEMPTS):
            snap = ref.get()
            if not snap.exists:
                return False
            data = snap.to_dict()
            last = data.get("last_activity")
            if data["state"] not in _ACTIVE or (
                    last is not None and last > at - timedelta(seconds=min_interval)):
                return False
            try:
                ref.update({"last_activity": at, "idle_since": at},
                           option=self._db.write_option(last_update_time=snap.update_time))
                return True
            except FailedPrecondition:
                continue  # changed under us (a transition, progress): decide again
        return False

    def idle_environments(self, before: datetime) -> list[Environment]:
        query = (self._envs.where(filter=firestore.FieldFilter("state", "==", str(State.RUNNING)))
                 .where(filter=firestore.FieldFilter("idle_since", "<", before)))
        return [_env(s.id, s.to_dict()) for s in query.stream()]

    def stuck_environments(self, before: datetime) -> list[Environment]:
        # Ordered by created descending so that it shares list_environments' index.
        states = [str(State.PENDING), str(State.STARTING)]
        query = (self._envs.where(filter=firestore.FieldFilter("state", "in", states))
                 .where(filter=firestore.FieldFilter("created", "<", before))
                 .order_by("created", direction=_DESC))
        return [_env(s.id, s.to_dict()) for s in query.stream()]

    # -- one-time values ------------------------------------------------------------------
    def use_once(self, kind: str, value: str, expires: datetime) -> bool:
        # Hashed: a value may hold characters a document id cannot, and may be long.
        key = hashlib.sha256(f"{kind}\0{value}".encode()).hexdigest()
        ref = self._once.document(key)
        data = {"kind": kind, "value": value, "expires": expires}
        try:
            ref.create(data)  # the common case: never seen, one write, atomic
            return True
        except AlreadyExists:
            pass

        def body(txn: Any) -> bool:
            snap = ref.get(transaction=txn)
            if snap.exists and snap.get("expires") >= datetime.now(UTC):
                return False
            txn.set(ref, data)
            return True

        return self._transact(body)

    # -- audit ---------------------------------------------------------------------------
    def audit(self, entry: AuditEntry) -> None:
        self._audit.document(entry.id).create({
            "at": entry.at, "actor": entry.actor, "action": entry.action,
            "target": entry.target, "detail": entry.detail,
        })

    def list_audit(self, *, limit: int = 50, cursor: str | None = None) -> Page[AuditEntry]:
        query = self._audit.order_by("at", direction=_DESC).order_by(_ID, direction=_DESC)
        if cursor:
            at, entry_id = decode_cursor(cursor, 2)
            query = query.start_after([_cursor_time(at), _checked_id(entry_id, _AUDIT_ID)])
        snaps = list(query.limit(limit + 1).stream())
        entries = []
        for s in snaps[:limit]:
            d = s.to_dict()
            entries.append(AuditEntry(actor=d["actor"], action=d["action"], target=d["target"],
                                      detail=d.get("detail") or {}, at=d["at"], id=s.id))
        nxt = None
        if len(snaps) > limit:
            nxt = encode_cursor(repr(entries[-1].at.timestamp()), entries[-1].id)
        return Page(entries, nxt)


# -- documents <-> records -------------------------------------------------------------------
def _user(user_id: str, d: dict) -> User:
    return User(id=user_id, email=d["email"], name=d["name"], role=Role(d["role"]),
                disabled=bool(d["disabled"]), token_version=int(d["token_version"]),
                created=d["created"], last_login=d.get("last_login"))


def _event_data(event: ProgressEvent) -> dict:
    return {"phase": event.phase, "message": event.message, "percent": event.percent,
            "at": event.at}


def _env_data(env: Environment, slot: int) -> dict:
    data = {
        "owner": env.owner, "profile": env.profile, "state": str(State.PENDING),
        "url": env.url, "created": env.created, "started": env.started,
        "stopped": env.stopped, "last_activity": env.last_activity, "reason": env.reason,
        "events": [_event_data(e) for e in env.events], "timings": dict(env.timings),
        "slot": slot,
    }
    data["idle_since"] = _idle_since(data)
    return data


def _env(env_id: str, d: dict) -> Environment:
    return Environment(
        id=env_id, owner=d["owner"], profile=d["profile"], state=State(d["state"]),
        url=d.get("url"), created=d["created"], started=d.get("started"),
        stopped=d.get("stopped"), last_activity=d.get("last_activity"),
        reason=d.get("reason"),
        events=[ProgressEvent(e["phase"], e["message"], e["percent"], e["at"])
                for e in d.get("events") or []],
        timings=dict(d.get("timings") or {}),
    )


def _idle_since(d: dict) -> datetime:
    return d.get("last_activity") or d.get("started") or d["created"]


def _cursor_time(value: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError, OSError):
        raise BadCursor("cursor: not one this server handed out") from None


def _checked_id(value: str, pattern: re.Pattern[str]) -> str:
    # A cursor's id becomes a document path: refuse anything that is not a plain id.
    if not pattern.match(value):
        raise BadCursor("cursor: not one this server handed out")
    return value

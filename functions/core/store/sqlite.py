"""SQLite store: one file in the data dir, WAL, safe across threads and processes.

Each thread has its own connection. Writes that read first (claim, transition) run in
`BEGIN IMMEDIATE`, which takes SQLite's write lock before the read, so two processes
racing for the same slot serialise instead of both seeing it free.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..models import (
    TRANSITIONS,
    AuditEntry,
    Environment,
    Page,
    ProgressEvent,
    Role,
    State,
    User,
)
from .base import ACTIVE, CapacityReached, Claim, LimitReached, Store, checked_transition, last_seen
from .cursors import decode_cursor, encode_cursor

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,
    disabled INTEGER NOT NULL, token_version INTEGER NOT NULL,
    created REAL NOT NULL, last_login REAL
);
CREATE TABLE IF NOT EXISTS environments (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, profile TEXT NOT NULL, state TEXT NOT NULL,
    url TEXT, created REAL NOT NULL, started REAL, stopped REAL, last_activity REAL,
    reason TEXT, events TEXT NOT NULL, timings TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS env_owner_state ON environments (owner, state);
CREATE INDEX IF NOT EXISTS env_state_created ON environments (state, created);
CREATE INDEX IF NOT EXISTS env_created ON environments (created, id);
CREATE TABLE IF NOT EXISTS audit (
    id TEXT PRIMARY KEY, at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at, id);
CREATE TABLE IF NOT EXISTS used_once (
    kind TEXT NOT NULL, value TEXT NOT NULL, expires REAL NOT NULL, PRIMARY KEY (kind, value)
);
"""

_ENV_TIME_FIELDS = ("created", "started", "stopped", "last_activity")


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value else None


def _dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


class SqliteStore(Store):
    def __init__(self, path: Path | str):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- users ---------------------------------------------------------------------------
    @staticmethod
    def _user(row: sqlite3.Row) -> User:
        return User(id=row["id"], email=row["email"], name=row["name"], role=Role(row["role"]),
                    disabled=bool(row["disabled"]), token_version=row["token_version"],
                    created=_dt(row["created"]), last_login=_dt(row["last_login"]))

    def upsert_user(self, user: User, *, login_at: datetime | None = None) -> User:
        with self._write() as conn:
            row = conn.execute("SELECT * FROM users WHERE id=?", (user.id,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO users VALUES (?,?,?,?,?,?,?,?)",
                    (user.id, user.email, user.name, str(user.role), int(user.disabled),
                     user.token_version, _ts(user.created), _ts(login_at)),
                )
            else:
                role = Role.ADMIN if user.role == Role.ADMIN else Role(row["role"])
                conn.execute(
                    "UPDATE users SET email=?, name=?, role=?, last_login=COALESCE(?, last_login)"
                    " WHERE id=?",
                    (user.email, user.name, str(role), _ts(login_at), user.id),
                )
            return self._user(conn.execute("SELECT * FROM users WHERE id=?",
                                            (user.id,)).fetchone())

    def get_user(self, user_id: str) -> User | None:
        row = self._conn().execute("SELECT * FROM users WHERE id=?", (user_id,)).fetchone()
        return self._user(row) if row else None

    def list_users(self, *, limit: int = 50, cursor: str | None = None) -> Page[User]:
        after = decode_cursor(cursor, 1)[0] if cursor else ""
        rows = self._conn().execute(
            "SELECT * FROM users WHERE id > ? ORDER BY id LIMIT ?", (after, limit + 1)
        ).fetchall()
        users = [self._user(r) for r in rows[:limit]]
        nxt = encode_cursor(users[-1].id) if len(rows) > limit else None
        return Page(users, nxt)

    def update_user(self, user_id: str, *, role: Role | None = None,
                    disabled: bool | None = None, revoke_tokens: bool = False) -> User | None:
        with self._write() as conn:
            row = conn.execute("SELECT * FROM users WHERE id=?", (user_id,)).fetchone()
            if row is None:
                return None
            new_role = str(Role(role)) if role is not None else row["role"]
            new_disabled = int(disabled) if disabled is not None else row["disabled"]
            bump = int(revoke_tokens or bool(disabled))
            conn.execute(
                "UPDATE users SET role=?, disabled=?, token_version=token_version+? WHERE id=?",
                (new_role, new_disabled, bump, user_id),
            )
            return self._user(conn.execute("SELECT * FROM users WHERE id=?",
                                            (user_id,)).fetchone())

    # -- environments --------------------------------------------------------------------
    @staticmethod
    def _env(row: sqlite3.Row) -> Environment:
        events = [
            ProgressEvent(e["phase"], e["message"], e["percent"], _dt(e["at"]))
            for e in json.loads(row["events"])
        ]
        return Environment(
            id=row["id"], owner=row["owner"], profile=row["profile"], state=State(row["state"]),
            url=row["url"], created=_dt(row["created"]), started=_dt(row["started"]),
            stopped=_dt(row["stopped"]), last_activity=_dt(row["last_activity"]),
            reason=row["reason"], events=events, timings=json.loads(row["timings"]),
        )

    def _get_env(self, conn: sqlite3.Connection, env_id: str) -> Environment | None:
        row = conn.execute("SELECT * FROM environments WHERE id=?", (env_id,)).fetchone()
        return self._env(row) if row else None

    def claim_environment(self, env: Environment, *, max_per_user: int,
                          max_total: int) -> Claim:
        marks = ",".join("?" * len(ACTIVE))
        active_states = [str(s) for s in ACTIVE]
        with self._write() as conn:
            rows = conn.execute(
                f"SELECT * FROM environments WHERE owner=? AND state IN ({marks})"
                " ORDER BY created DESC",
                (env.owner, *active_states),
            ).fetchall()
            mine = [self._env(r) for r in rows]
            same = next((e for e in mine
                         if e.profile == env.profile and e.state != State.STOPPING), None)
            if same is not None:
                return Claim(same, created=False)
            if len(mine) >= max_per_user:
                raise LimitReached(mine)
            (total,) = conn.execute(
                f"SELECT COUNT(*) FROM environments WHERE state IN ({marks})", active_states
            ).fetchone()
            if total >= max_total:
                raise CapacityReached("the platform is at its environment limit")
            conn.execute(
                "INSERT INTO environments VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (env.id, env.owner, env.profile, str(State.PENDING), env.url,
                 _ts(env.created), _ts(env.started), _ts(env.stopped),
                 _ts(env.last_activity), env.reason,
                 json.dumps([_event_row(e) for e in env.events]), json.dumps(env.timings)),
            )
            return Claim(self._get_env(conn, env.id), created=True)

    def get_environment(self, env_id: str) -> Environment | None:
        return self._get_env(self._conn(), env_id)

    def list_environments(self, *, owner: str | None = None,
                          states: Iterable[State] | None = None, limit: int = 50,
                          cursor: str | None = None) -> Page[Environment]:
        where, args = [], []
        if owner is not None:
            where.append("owner=?")
            args.append(owner)
        if states is not None:
            states = [str(State(s)) for s in states]
            where.append(f"state IN ({','.join('?' * len(states))})")
            args.extend(states)
        if cursor:
            created, env_id = decode_cursor(cursor, 2)
            where.append("(created < ? OR (created = ? AND id < ?))")
            args.extend([float(created), float(created), env_id])
        sql = "SELECT * FROM environments"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created DESC, id DESC LIMIT ?"
        rows = self._conn().execute(sql, (*args, limit + 1)).fetchall()
        envs = [self._env(r) for r in rows[:limit]]
        nxt = None
        if len(rows) > limit:
            nxt = encode_cursor(repr(rows[limit - 1]["created"]), envs[-1].id)
        return Page(envs, nxt)

    def transition(self, env_id: str, expected: Iterable[State], to: State, *,
                   idle_before: datetime | None = None, **fields: Any) -> Environment | None:
        expected, to = checked_transition(expected, to, fields)
        with self._write() as conn:
            env = self._get_env(conn, env_id)
            if env is None or env.state not in expected or to not in TRANSITIONS[env.state]:
                return None
            if idle_before is not None and last_seen(env) >= idle_before:
                return None
            values = {k: (_ts(v) if k in _ENV_TIME_FIELDS else v) for k, v in fields.items()}
            sets = ", ".join(["state=?", *(f"{k}=?" for k in values)])
            conn.execute(f"UPDATE environments SET {sets} WHERE id=?",
                         (str(to), *values.values(), env_id))
            return self._get_env(conn, env_id)

    def record_progress(self, env_id: str, event: ProgressEvent,
                        timings: Mapping[str, float] | None = None) -> None:
        with self._write() as conn:
            row = conn.execute("SELECT events, timings FROM environments WHERE id=?",
                               (env_id,)).fetchone()
            if row is None:
                return
            events = json.loads(row["events"]) + [_event_row(event)]
            merged = {**json.loads(row["timings"]), **(timings or {})}
            conn.execute("UPDATE environments SET events=?, timings=? WHERE id=?",
                         (json.dumps(events), json.dumps(merged), env_id))

    def touch_activity(self, env_id: str, at: datetime, *, min_interval: float = 60) -> bool:
        marks = ",".join("?" * len(ACTIVE))
        cur = self._conn().execute(
            "UPDATE environments SET last_activity=? WHERE id=? AND state IN"
            f" ({marks}) AND (last_activity IS NULL OR last_activity <= ?)",
            (_ts(at), env_id, *(str(s) for s in ACTIVE), _ts(at) - min_interval),
        )
        return cur.rowcount == 1

    def idle_environments(self, before: datetime) -> list[Environment]:
        rows = self._conn().execute(
            "SELECT * FROM environments WHERE state=? AND"
            " COALESCE(last_activity, started, created) < ?",
            (str(State.RUNNING), _ts(before)),
        ).fetchall()
        return [self._env(r) for r in rows]

    def stuck_environments(self, before: datetime) -> list[Environment]:
        rows = self._conn().execute(
            "SELECT * FROM environments WHERE state IN (?,?) AND created < ?",
            (str(State.PENDING), str(State.STARTING), _ts(before)),
        ).fetchall()
        return [self._env(r) for r in rows]

    # -- one-time values ------------------------------------------------------------------
    def use_once(self, kind: str, value: str, expires: datetime) -> bool:
        now = datetime.now(UTC).timestamp()
        with self._write() as conn:
            conn.execute("DELETE FROM used_once WHERE expires < ?", (now,))
            cur = conn.execute("INSERT OR IGNORE INTO used_once VALUES (?,?,?)",
                               (kind, value, _ts(expires)))
            return cur.rowcount == 1

    # -- audit ---------------------------------------------------------------------------
    def audit(self, entry: AuditEntry) -> None:
        self._conn().execute(
            "INSERT INTO audit VALUES (?,?,?,?,?,?)",
            (entry.id, _ts(entry.at), entry.actor, entry.action, entry.target,
             json.dumps(entry.detail)),
        )

    def list_audit(self, *, limit: int = 50, cursor: str | None = None) -> Page[AuditEntry]:
        sql, args = "SELECT * FROM audit", []
        if cursor:
            at, entry_id = decode_cursor(cursor, 2)
            sql += " WHERE (at < ? OR (at = ? AND id < ?))"
            args = [float(at), float(at), entry_id]
        rows = self._conn().execute(sql + " ORDER BY at DESC, id DESC LIMIT ?",
                                    (*args, limit + 1)).fetchall()
        entries = [
            AuditEntry(actor=r["actor"], action=r["action"], target=r["target"],
                       detail=json.loads(r["detail"]), at=_dt(r["at"]), id=r["id"])
            for r in rows[:limit]
        ]
        nxt = None
        if len(rows) > limit:
            nxt = encode_cursor(repr(rows[limit - 1]["at"]), entries[-1].id)
        return Page(entries, nxt)


def _event_row(event: ProgressEvent) -> dict:
    return {"phase": event.phase, "message": event.message, "percent": event.percent,
            "at": _ts(event.at)}

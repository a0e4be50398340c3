"""One contract for the Store port; every test runs against SQLite and Firestore."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest

from functions.core.models import (
    AuditEntry,
    Environment,
    InvalidRecord,
    ProgressEvent,
    Role,
    State,
    User,
    new_environment_id,
    utcnow,
)
from functions.core.store.base import BadCursor, CapacityReached, LimitReached, Store
from functions.core.store.sqlite import SqliteStore


@pytest.fixture(params=["sqlite", "firestore"])
def store(request, tmp_path, monkeypatch) -> Store:
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "db.sqlite")
    else:
        host = request.getfixturevalue("firestore_emulator")
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", host)
        from functions.core.store.firestore import FirestoreStore

        # A project of its own per test: the emulator keeps projects apart.
        s = FirestoreStore(project=f"test-{uuid.uuid4().hex[:12]}")
    yield s
    s.close()


def env_for(owner: str, profile: str = "small", **kw) -> Environment:
    return Environment(id=new_environment_id(), owner=owner, profile=profile, **kw)


def claim(store: Store, owner: str, profile: str = "small", per_user: int = 1,
          total: int = 100):
    return store.claim_environment(env_for(owner, profile), max_per_user=per_user,
                                   max_total=total)


def running(store: Store, owner: str, **fields) -> Environment:
    env = claim(store, owner).environment
    store.transition(env.id, [State.PENDING], State.STARTING)
    return store.transition(env.id, [State.STARTING], State.RUNNING, **fields)


# -- users ---------------------------------------------------------------------------------
def test_upsert_creates_then_refreshes_without_touching_role_or_flags(store):
    login = utcnow()
    created = store.upsert_user(User("alice", "a@x.org", "Alice"), login_at=login)
    assert created.role == Role.USER and created.last_login is not None
    store.update_user("alice", disabled=True)
    again = store.upsert_user(User("alice", "alice@x.org", "Alice B"))
    assert (again.email, again.name) == ("alice@x.org", "Alice B")
    assert again.disabled is True
    assert abs((again.last_login - login).total_seconds()) < 0.01


def test_upsert_promotes_admin_but_never_demotes(store):
    store.upsert_user(User("bob", "b@x.org"))
    assert store.upsert_user(User("bob", "b@x.org", role=Role.ADMIN)).role == Role.ADMIN
    assert store.upsert_user(User("bob", "b@x.org", role=Role.USER)).role == Role.ADMIN


def test_get_unknown_user_is_none(store):
    assert store.get_user("nobody") is None


def test_update_user_role_disable_and_revocation(store):
    store.upsert_user(User("carol", "c@x.org"))
    u = store.update_user("carol", role=Role.ADMIN)
    assert u.role == Role.ADMIN and u.token_version == 0
    assert store.update_user("carol", revoke_tokens=True).token_version == 1
    disabled = store.update_user("carol", disabled=True)
    assert disabled.disabled and disabled.token_version == 2
    assert store.update_user("ghost", role=Role.ADMIN) is None


def test_list_users_pages_through_everyone_once(store):
    ids = [f"user{i}" for i in range(5)]
    for i in reversed(ids):
        store.upsert_user(User(i, f"{i}@x.org"))
    seen, cursor = [], None
    for _ in range(4):
        page = store.list_users(limit=2, cursor=cursor)
        seen += [u.id for u in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == ids


# -- claims ----------------------------------------------------------------------------------
def test_claim_creates_pending_and_a_second_claim_returns_it(store):
    first = claim(store, "alice")
    assert first.created and first.environment.state == State.PENDING
    second = claim(store, "alice")
    assert not second.created and second.environment.id == first.environment.id
    assert len(store.list_environments(owner="alice").items) == 1


def test_claim_refuses_past_the_per_user_limit(store):
    claim(store, "alice", "small")
    with pytest.raises(LimitReached) as err:
        claim(store, "alice", "large")
    assert [e.profile for e in err.value.active] == ["small"]
    assert claim(store, "alice", "large", per_user=2).created


def test_claim_refuses_past_the_total_cap_and_a_stop_frees_the_slot(store):
    a = claim(store, "alice", total=2).environment
    claim(store, "bob", total=2)
    with pytest.raises(CapacityReached):
        claim(store, "carol", total=2)
    store.transition(a.id, [State.PENDING], State.STOPPING)
    store.transition(a.id, [State.STOPPING], State.STOPPED)
    assert claim(store, "carol", total=2).created
    assert claim(store, "alice", total=3).created  # alice's own slot is free again too


def test_two_threads_claiming_for_one_user_get_one_environment(store):
    results, barrier = [], threading.Barrier(2)

    def go():
        barrier.wait()
        results.append(claim(store, "alice"))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.environment.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert len(store.list_environments(owner="alice").items) == 1


def test_racing_claims_respect_the_total_cap(store):
    created, refused, barrier = [], [], threading.Barrier(4)

    def go(user):
        barrier.wait()
        try:
            created.append(claim(store, user, total=2))
        except CapacityReached:
            refused.append(user)

    threads = [threading.Thread(target=go, args=(f"u{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(created), len(refused)) == (2, 2)
    assert len(store.active_environments()) == 2


# -- transitions -----------------------------------------------------------------------------
def test_transition_is_compare_and_set(store):
    env = claim(store, "alice").environment
    assert store.transition(env.id, [State.RUNNING], State.STOPPING) is None
    started = utcnow()
    moved = store.transition(env.id, [State.PENDING], State.STARTING, started=started)
    assert moved.state == State.STARTING
    assert abs((moved.started - started).total_seconds()) < 0.01
    run = store.transition(env.id, [State.STARTING], State.RUNNING, url="/user/alice/x/")
    assert (run.state, run.url) == (State.RUNNING, "/user/alice/x/")
    assert store.get_environment(env.id).url == "/user/alice/x/"


def test_transition_refuses_moves_the_lifecycle_does_not_allow(store):
    env = claim(store, "alice").environment
    assert store.transition(env.id, [State.PENDING], State.RUNNING) is None
    assert store.get_environment(env.id).state == State.PENDING
    store.transition(env.id, [State.PENDING], State.FAILED, reason="boom")
    assert store.transition(env.id, [State.FAILED], State.STARTING) is None
    assert store.transition("000000000000", [State.PENDING], State.STARTING) is None


def test_transition_rejects_unknown_fields_and_states(store):
    env = claim(store, "alice").environment
    with pytest.raises(ValueError):
        store.transition(env.id, [State.PENDING], State.STARTING, owner="mallory")
    with pytest.raises(ValueError):
        store.transition(env.id, ["bogus"], State.STARTING)
    assert store.get_environment(env.id).owner == "alice"


def test_racing_transitions_from_one_state_have_one_winner(store):
    env = running(store, "alice")
    wins, barrier = [], threading.Barrier(3)

    def go(reason):
        barrier.wait()
        wins.append(store.transition(env.id, [State.RUNNING], State.STOPPING, reason=reason))

    threads = [threading.Thread(target=go, args=(f"r{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [w for w in wins if w is not None]
    assert len(winners) == 1
    assert store.get_environment(env.id).reason == winners[0].reason


# -- progress and activity -------------------------------------------------------------------
def test_progress_events_append_in_order_and_timings_merge(store):
    env = claim(store, "alice").environment
    store.record_progress(env.id, ProgressEvent("scheduled", "queued", 10), {"scheduled": 0.1})
    store.record_progress(env.id, ProgressEvent("healthy", "up", 100), {"healthy": 1.2})
    got = store.get_environment(env.id)
    assert [(e.phase, e.percent) for e in got.events] == [("scheduled", 10), ("healthy", 100)]
    assert got.timings == {"scheduled": 0.1, "healthy": 1.2}


def test_concurrent_progress_loses_nothing(store):
    env = claim(store, "alice").environment

    def go(i):
        store.record_progress(env.id, ProgressEvent(f"p{i}", "m", i), {f"p{i}": float(i)})

    threads = [threading.Thread(target=go, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = store.get_environment(env.id)
    assert sorted(e.phase for e in got.events) == ["p0", "p1", "p2"]
    assert set(got.timings) == {"p0", "p1", "p2"}


def test_activity_is_throttled_and_only_for_active_environments(store):
    env = running(store, "alice")
    t0 = utcnow()
    assert store.touch_activity(env.id, t0, min_interval=60)
    assert not store.touch_activity(env.id, t0 + timedelta(seconds=30), min_interval=60)
    assert store.touch_activity(env.id, t0 + timedelta(seconds=61), min_interval=60)
    store.transition(env.id, [State.RUNNING], State.STOPPING)
    store.transition(env.id, [State.STOPPING], State.STOPPED)
    assert not store.touch_activity(env.id, t0 + timedelta(hours=1), min_interval=60)


def test_idle_and_stuck_queries(store):
    now = utcnow()
    idle = running(store, "alice", started=now - timedelta(hours=5))
    store.touch_activity(idle.id, now - timedelta(hours=5))
    busy = running(store, "bob", started=now - timedelta(hours=5))
    store.touch_activity(busy.id, now)
    quiet_start = running(store, "carol", started=now - timedelta(hours=5))
    pending = claim(store, "dave").environment
    ids = {e.id for e in store.idle_environments(now - timedelta(hours=4))}
    assert ids == {idle.id, quiet_start.id}
    assert [e.id for e in store.stuck_environments(now + timedelta(seconds=1))] == [pending.id]
    assert store.stuck_environments(now - timedelta(hours=1)) == []


# -- listings ----------------------------------------------------------------------------------
def test_list_environments_newest_first_filtered_and_paged(store):
    made = []
    for i in range(5):
        env = env_for("alice", f"p{i}", created=utcnow() + timedelta(seconds=i))
        made.append(store.claim_environment(env, max_per_user=10, max_total=10).environment)
        if i % 2:
            store.transition(env.id, [State.PENDING], State.FAILED, reason="x")
    claim(store, "bob")
    newest_first = [e.id for e in reversed(made)]
    seen, cursor = [], None
    while True:
        page = store.list_environments(owner="alice", limit=2, cursor=cursor)
        seen += [e.id for e in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == newest_first
    failed = store.list_environments(owner="alice", states=[State.FAILED]).items
    assert [e.id for e in failed] == [made[3].id, made[1].id]
    assert len(store.list_environments().items) == 6


@pytest.mark.parametrize("cursor", ["garbage!", "W10", "WyJ4Il0", "eyJhIjoxfQ"])
def test_bad_cursor_is_a_clear_error(store, cursor):
    with pytest.raises(BadCursor):
        store.list_environments(cursor=cursor)
    with pytest.raises(BadCursor):
        store.list_audit(cursor=cursor)


def test_audit_log_is_append_only_and_newest_first(store):
    base = utcnow()
    for i in range(3):
        store.audit(AuditEntry("admin", "disable", f"user{i}", {"i": i},
                               at=base + timedelta(seconds=i)))
    first = store.list_audit(limit=2)
    assert [e.target for e in first.items] == ["user2", "user1"]
    rest = store.list_audit(limit=2, cursor=first.next_cursor)
    assert [e.target for e in rest.items] == ["user0"] and rest.next_cursor is None
    assert rest.items[0].detail == {"i": 0}


def test_use_once(store):
    later = utcnow() + timedelta(minutes=5)
    assert store.use_once("nonce", "n1", later)
    assert not store.use_once("nonce", "n1", later)
    assert store.use_once("state", "n1", later)  # kinds are separate
    assert store.use_once("nonce", "n2", utcnow() - timedelta(seconds=1))
    assert store.use_once("nonce", "n2", later)  # the first use had expired


# -- bad records ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "x" * 65, "ü", None])
def test_bad_user_ids_are_refused(bad):
    with pytest.raises(InvalidRecord):
        User(bad, "a@x.org")


@pytest.mark.parametrize("bad", ["", "ABCDEF012345", "../../../../", "0123456789abc"])
def test_bad_environment_ids_are_refused(bad):
    with pytest.raises(InvalidRecord):
        Environment(id=bad, owner="alice", profile="small")


def test_bad_state_is_refused():
    with pytest.raises(ValueError):
        Environment(id=new_environment_id(), owner="alice", profile="small", state="zombie")


def test_a_conditional_cull_loses_to_fresh_activity(store):
    now = utcnow()
    env = running(store, "alice", started=now - timedelta(hours=5))
    store.touch_activity(env.id, now - timedelta(hours=5))
    # Someone clicks after the culler's query but before its write:
    store.touch_activity(env.id, now)
    cutoff = now - timedelta(hours=4)
    assert store.transition(env.id, [State.RUNNING], State.STOPPING, idle_before=cutoff) is None
    assert store.get_environment(env.id).state == State.RUNNING
    # Nobody clicks: the cull goes through.
    later = now + timedelta(hours=5)
    moved = store.transition(env.id, [State.RUNNING], State.STOPPING,
                             idle_before=later - timedelta(hours=4), reason="idle")
    assert moved.state == State.STOPPING


def test_a_stopping_environment_is_not_handed_out_but_holds_its_slot(store):
    env = claim(store, "alice").environment
    store.transition(env.id, [State.PENDING], State.STOPPING)
    with pytest.raises(LimitReached):
        claim(store, "alice")
    store.transition(env.id, [State.STOPPING], State.STOPPED)
    fresh = claim(store, "alice")
    assert fresh.created and fresh.environment.id != env.id

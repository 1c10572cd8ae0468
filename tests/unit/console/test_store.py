"""The console's account store (services/console/adapters/store.py) on a real SQLite file brought
to head by the console's alembic history: accounts, sign-in with lock-out, sessions with idle and
absolute expiry (only the cookie's sha256 is stored), and the audit trail."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from services.common.clock import FixedClock
from services.common.db import make_engine
from services.common.errors import Conflict, InvalidInput, NotFound
from services.console.adapters import store as store_module
from services.console.adapters.schema import sessions, users
from services.console.adapters.store import AccountStore, AuditLine
from services.console.domain.accounts import LockoutPolicy, SessionPolicy

T0 = datetime(2026, 11, 28, 1, 30, tzinfo=UTC)  # 09:30 county time
PASSWORD = "correct-horse-9"
LOCKOUT = LockoutPolicy(max_failures=3, lock_for=timedelta(minutes=15))
SESSIONS = SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=12))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def store(clock, console_db_url):
    engine = make_engine(console_db_url)
    yield AccountStore(engine, clock.now, LOCKOUT, SESSIONS)
    engine.dispose()


@pytest.fixture
def zhang(store):
    return store.add_user("zhang", "hq", "", PASSWORD, "张三")


# ---- accounts ------------------------------------------------------------------------------
def test_a_new_user_is_stored_with_a_hash_not_the_password(store, zhang):
    got = store.get_user("zhang")
    assert (got.username, got.role, got.scope, got.display_name) == ("zhang", "hq", "", "张三")
    assert got.password_hash.startswith("$argon2id$") and PASSWORD not in got.password_hash
    assert not got.disabled and got.failed_logins == 0 and got.locked_until is None
    assert [u.username for u in store.list_users()] == ["zhang"]


def test_a_second_user_of_the_same_name_is_a_conflict(store, zhang):
    with pytest.raises(Conflict, match="zhang"):
        store.add_user("zhang", "village", "V1", "another-password-1")
    assert store.get_user("zhang").role == "hq"


def test_a_bad_new_user_is_refused_before_anything_is_stored(store):
    with pytest.raises(InvalidInput) as exc:
        store.add_user("wang", "village", "", PASSWORD)  # a village worker needs the village
    assert exc.value.field == "scope"
    assert store.get_user("wang") is None


def test_unknown_users_cannot_be_changed(store):
    with pytest.raises(NotFound):
        store.set_password("nobody", "a-new-password-1")
    with pytest.raises(NotFound):
        store.set_disabled("nobody", True)


# ---- signing in ----------------------------------------------------------------------------
def test_the_right_password_signs_in(store, zhang):
    user, reason = store.authenticate("zhang", PASSWORD)
    assert reason == "" and user.username == "zhang" and user.role == "hq"


def test_a_wrong_password_is_bad_and_counted(store, zhang):
    assert store.authenticate("zhang", "wrong-password-1") == (None, "bad")
    assert store.get_user("zhang").failed_logins == 1
    store.authenticate("zhang", PASSWORD)
    assert store.get_user("zhang").failed_logins == 0


def test_the_nth_wrong_password_locks_even_the_right_one_out_until_the_lock_expires(store, zhang, clock):
    assert store.authenticate("zhang", "wrong-1-xxxxx") == (None, "bad")
    assert store.authenticate("zhang", "wrong-2-xxxxx") == (None, "bad")
    assert store.authenticate("zhang", "wrong-3-xxxxx") == (None, "locked")
    assert store.get_user("zhang").locked_until == T0 + LOCKOUT.lock_for  # aware, UTC
    clock.advance(minutes=14, seconds=59)
    assert store.authenticate("zhang", PASSWORD) == (None, "locked")
    clock.advance(seconds=1)
    user, reason = store.authenticate("zhang", PASSWORD)
    assert reason == "" and user is not None
    assert store.get_user("zhang").locked_until is None


def test_a_new_password_lifts_the_lock(store, zhang):
    for _ in range(LOCKOUT.max_failures):
        store.authenticate("zhang", "wrong-password-1")
    store.set_password("zhang", "a-new-password-1")
    assert store.authenticate("zhang", "a-new-password-1")[1] == ""
    assert store.authenticate("zhang", PASSWORD) == (None, "bad")


def test_a_disabled_user_cannot_sign_in_even_with_the_right_password(store, zhang):
    store.set_disabled("zhang", True)
    assert store.authenticate("zhang", PASSWORD) == (None, "disabled")
    store.set_disabled("zhang", False)
    assert store.authenticate("zhang", PASSWORD)[1] == ""


def test_an_unknown_user_is_bad_and_costs_a_hash_too(store, zhang, monkeypatch):
    calls = []
    real = store_module._hasher

    class Counting:
        def verify(self, hash_, password):
            calls.append(hash_)
            return real.verify(hash_, password)

    monkeypatch.setattr(store_module, "_hasher", Counting())
    assert store.authenticate("nobody", PASSWORD) == (None, "bad")
    assert len(calls) == 1  # the same argon2 work as a known name: timing does not tell
    assert store.get_user("nobody") is None


# ---- sessions ------------------------------------------------------------------------------
def test_a_session_opens_and_gives_back_its_person_and_csrf_token(store, zhang):
    sid, opened = store.open_session("zhang")
    got = store.session(sid)
    assert got.username == "zhang" and got.csrf_token == opened.csrf_token
    assert got.created_at == T0 and got.created_at.tzinfo is not None
    assert len(sid) >= 40 and len(opened.csrf_token) >= 40
    assert store.open_session("zhang")[0] != sid


def test_only_the_sha256_of_the_cookie_is_stored(store, zhang):
    sid, opened = store.open_session("zhang")
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(sessions)).mappings()]
    assert len(rows) == 1
    assert rows[0]["id_hash"] == hashlib.sha256(sid.encode()).hexdigest()
    assert all(sid not in str(value) for value in rows[0].values())
    assert store.session(rows[0]["id_hash"]) is None  # the stored hash does not open the session


def test_unknown_empty_and_oversized_cookies_open_nothing(store, zhang):
    store.open_session("zhang")
    assert store.session("") is None
    assert store.session("not-a-session") is None
    assert store.session("x" * 101) is None


def test_an_idle_session_expires_and_is_deleted(store, zhang, clock):
    sid, _ = store.open_session("zhang")
    clock.advance(minutes=30)
    assert store.session(sid) is not None  # exactly the idle limit: still alive
    clock.advance(minutes=30, seconds=1)
    assert store.session(sid) is None
    with store.engine.connect() as conn:
        assert conn.execute(select(sessions)).first() is None


def test_use_keeps_a_session_alive_but_not_past_its_absolute_limit(store, zhang, clock):
    sid, _ = store.open_session("zhang")
    for _ in range(12 * 3):  # every 20 minutes for 12 hours
        clock.advance(minutes=20)
        assert store.session(sid) is not None
    assert clock.now() - T0 == SESSIONS.absolute
    clock.advance(minutes=1)
    assert store.session(sid) is None


def test_closing_a_session_ends_it(store, zhang):
    sid, _ = store.open_session("zhang")
    other, _ = store.open_session("zhang")
    store.close_session(sid)
    assert store.session(sid) is None
    assert store.session(other) is not None


def test_disabling_a_user_ends_their_sessions(store, zhang):
    sid, _ = store.open_session("zhang")
    store.set_disabled("zhang", True)
    assert store.session(sid) is None


# ---- audit ---------------------------------------------------------------------------------
def line(at: datetime, username: str = "zhang", action: str = "approve_plan", **kw) -> AuditLine:
    values = {"role": "hq", "target": "plan-2026-11-28-v1", "outcome": "ok", "detail": "",
              "correlation_id": "", **kw}
    return AuditLine(at=at, username=username, action=action, **values)


def test_audit_lines_round_trip_with_aware_datetimes_newest_first(store):
    first = line(T0, detail="批准 · v1")
    second = line(T0 + timedelta(minutes=5, microseconds=250), username="li", action="reject_plan",
                  outcome="refused", detail="FAILED_PRECONDITION: 方案已批准", correlation_id="console-abc")
    store.record(first)
    store.record(second)
    got = store.audit_lines()
    assert got == [second, first]
    assert all(a.at.tzinfo is not None and a.at.utcoffset() == timedelta(0) for a in got)


def test_audit_lines_by_user_and_limited(store):
    for i in range(5):
        store.record(line(T0 + timedelta(minutes=i), username="zhang" if i % 2 else "li", target=f"t{i}"))
    assert [a.target for a in store.audit_lines(username="zhang")] == ["t3", "t1"]
    assert [a.target for a in store.audit_lines(limit=2)] == ["t4", "t3"]
    assert store.audit_lines(username="nobody") == []


def test_users_table_holds_no_plain_password(store, zhang):
    with store.engine.connect() as conn:
        row = conn.execute(select(users)).mappings().first()
    assert all(PASSWORD not in str(v) for v in row.values())

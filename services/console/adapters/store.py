"""Accounts, sessions and audit lines in the console's database (SQLAlchemy Core; SQLite by
default, PostgreSQL by CONSOLE_DATABASE_URL). Blocking calls: the web app runs them on threads."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from services.common.errors import Conflict, NotFound
from services.console.adapters.schema import audit, sessions, users
from services.console.domain.accounts import (
    LockoutPolicy,
    SessionPolicy,
    User,
    check_new_user,
    check_password,
)

_hasher = PasswordHasher()  # argon2id, the library's (RFC 9106) defaults
_DUMMY_HASH = _hasher.hash("not-a-real-password-0000")


def _aware(value: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes; every time here is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


_USER_FIELDS = ("role", "scope", "display_name", "password_hash", "failed_logins", "locked_until", "disabled")


def _hash_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    username: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    username: str
    role: str
    action: str
    target: str
    outcome: str
    detail: str
    correlation_id: str


class AccountStore:
    def __init__(self, engine: Engine, now: Callable[[], datetime],
                 lockout: LockoutPolicy | None = None, session_policy: SessionPolicy | None = None):
        self.engine = engine
        self.now = now
        self.lockout = lockout or LockoutPolicy()
        self.session_policy = session_policy or SessionPolicy()

    def _utc_now(self) -> datetime:
        """Now in UTC: SQLite keeps a datetime's wall-clock digits and drops its offset."""
        return self.now().astimezone(UTC)

    # ---- users
    def add_user(self, username: str, role: str, scope: str, password: str, display_name: str = "") -> User:
        check_new_user(username, role, scope, password, display_name)
        now = self._utc_now()
        row = {"username": username, "role": role, "scope": scope, "display_name": display_name,
               "password_hash": _hasher.hash(password), "failed_logins": 0, "locked_until": None,
               "disabled": False, "created_at": now, "updated_at": now}
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(users).values(**row))
        except IntegrityError:
            raise Conflict(f"user {username!r} exists / 用户已存在") from None
        return self._user(row)

    def set_password(self, username: str, password: str) -> None:
        check_password(password)
        with self.engine.begin() as conn:
            done = conn.execute(update(users).where(users.c.username == username).values(
                password_hash=_hasher.hash(password), failed_logins=0, locked_until=None,
                updated_at=self._utc_now())).rowcount
        if not done:
            raise NotFound(f"no user {username!r}")

    def set_disabled(self, username: str, disabled: bool) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(update(users).where(users.c.username == username).values(
                disabled=disabled, updated_at=self._utc_now())).rowcount
            if disabled:
                conn.execute(delete(sessions).where(sessions.c.username == username))
        if not done:
            raise NotFound(f"no user {username!r}")

    def get_user(self, username: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).mappings().first()
        return self._user(row) if row else None

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            return [self._user(r) for r in conn.execute(select(users).order_by(users.c.username)).mappings()]

    @staticmethod
    def _user(row) -> User:
        return User(username=row["username"], role=row["role"], scope=row["scope"],
                    display_name=row["display_name"], password_hash=row["password_hash"],
                    failed_logins=row["failed_logins"], locked_until=_aware(row["locked_until"]),
                    disabled=row["disabled"])

    def authenticate(self, username: str, password: str) -> tuple[User | None, str]:
        """(user, "") on success; (None, reason) with reason in {"bad", "locked", "disabled"}.
        Unknown users cost one hash too, so timing does not tell which names exist."""
        now = self._utc_now()
        user = self.get_user(username)
        if user is None:
            try:
                _hasher.verify(_DUMMY_HASH, password)
            except VerificationError:
                pass
            return None, "bad"
        if user.disabled:
            return None, "disabled"
        if user.locked(now):
            return None, "locked"
        try:
            ok = _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
        if ok:
            user.record_success()
        else:
            user.record_failure(now, self.lockout)
        with self.engine.begin() as conn:
            conn.execute(update(users).where(users.c.username == username).values(
                failed_logins=user.failed_logins, locked_until=user.locked_until))
        if not ok:
            return None, "locked" if user.locked(now) else "bad"
        return user, ""

    # ---- sessions
    def open_session(self, username: str) -> tuple[str, Session]:
        """A new session: (the cookie value, the session). Only its hash is stored."""
        sid = secrets.token_urlsafe(32)
        now = self._utc_now()
        s = Session(username, secrets.token_urlsafe(32), now, now)
        with self.engine.begin() as conn:
            conn.execute(insert(sessions).values(id_hash=_hash_id(sid), username=username,
                                                 csrf_token=s.csrf_token, created_at=now, last_seen_at=now))
        return sid, s

    def session(self, sid: str) -> Session | None:
        """The live session of a cookie, its last-seen time moved on; None when unknown or expired
        (idle or absolute), in which case it is deleted."""
        found = self.session_and_user(sid)
        return found[0] if found else None

    def session_and_user(self, sid: str) -> tuple[Session, User] | None:
        """The live session of a cookie and its account, read together (every request needs both)."""
        if not sid or len(sid) > 100:
            return None
        key = _hash_id(sid)
        now = self._utc_now()
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions, *(users.c[name] for name in _USER_FIELDS))
                               .join(users, users.c.username == sessions.c.username)
                               .where(sessions.c.id_hash == key)).mappings().first()
        if row is None:
            return None
        p = self.session_policy
        created, last_seen = _aware(row["created_at"]), _aware(row["last_seen_at"])
        if now - last_seen > p.idle or now - created > p.absolute:
            self.close_session(sid)
            return None
        if (now - last_seen).total_seconds() > 30:  # not a write on every request
            with self.engine.begin() as conn:
                conn.execute(update(sessions).where(sessions.c.id_hash == key).values(last_seen_at=now))
        return Session(row["username"], row["csrf_token"], created, now), self._user(row)

    def close_session(self, sid: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.id_hash == _hash_id(sid)))

    # ---- audit
    def record(self, line: AuditLine) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(audit).values(**line.__dict__))

    def audit_lines(self, limit: int = 200, username: str = "") -> list[AuditLine]:
        q = select(audit).order_by(audit.c.id.desc()).limit(limit)
        if username:
            q = q.where(audit.c.username == username)
        with self.engine.connect() as conn:
            return [AuditLine(**{k: _aware(r[k]) if k == "at" else r[k] for k in AuditLine.__dataclass_fields__})
                    for r in conn.execute(q).mappings()]

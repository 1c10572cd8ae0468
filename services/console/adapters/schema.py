"""The console's own tables: accounts, sessions and the audit trail of what people did through
it. It owns nothing else (DESIGN §1): every figure it shows comes from the services' gRPC APIs."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, MetaData, String, Table, Text

from services.common.db import UTCDateTime

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("username", String(40), primary_key=True),
    Column("role", String(30), nullable=False),
    Column("scope", String(64), nullable=False, default=""),
    Column("display_name", String(60), nullable=False, default=""),
    Column("password_hash", String(200), nullable=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

sessions = Table(
    "sessions", metadata,
    Column("id_hash", String(64), primary_key=True),  # sha256 of the cookie: a stolen table opens nothing
    Column("username", String(40), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
)
Index("ix_sessions_username", sessions.c.username)

audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("username", String(40), nullable=False),
    Column("role", String(30), nullable=False),
    Column("action", String(60), nullable=False),
    Column("target", String(200), nullable=False, default=""),
    Column("outcome", String(20), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("correlation_id", String(64), nullable=False, default=""),
)
Index("ix_audit_at", audit.c.at)

tables = {"users": users, "sessions": sessions, "audit": audit}

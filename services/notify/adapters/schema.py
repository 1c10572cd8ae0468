"""Notify's tables (its own database): the platform's, and the notifications outbox: one row per
(event, channel), stored in the transaction that records the event as processed, sent later."""

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text

from services.common.db import Json, UTCDateTime, platform_tables

metadata = MetaData()
tables = platform_tables(metadata)

notifications = Table(
    "notifications", metadata,
    Column("notification_id", String(36), primary_key=True),
    Column("channel", String(40), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("notice", Json, nullable=False),
    Column("state", String(8), nullable=False),  # pending | sent | dead
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
)
Index("ix_notifications_due", notifications.c.state, notifications.c.next_attempt_at)
tables["notifications"] = notifications

"""The reports process's own tables: which days' reports were made (the marker two schedulers
agree on), which deadline warnings were raised, and the platform tables (its outbox above all)."""

from __future__ import annotations

from sqlalchemy import Column, Date, Integer, MetaData, String, Table

from services.common.db import Json, UTCDateTime, platform_tables

metadata = MetaData()

report_days = Table(
    "report_days", metadata,
    Column("day", Date, primary_key=True),
    Column("made_at", UTCDateTime, nullable=False),
    Column("times_made", Integer, nullable=False),
    Column("files", Json, nullable=False),  # {file name: sha256}
)

deadline_warnings = Table(
    "deadline_warnings", metadata,
    Column("kind", String(40), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("checked_at", UTCDateTime, nullable=False),
    Column("late", Integer, nullable=False),  # 0: on time, nothing raised
)

tables = {**platform_tables(metadata), "report_days": report_days,
          "deadline_warnings": deadline_warnings}

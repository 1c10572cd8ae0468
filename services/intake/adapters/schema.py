"""Intake's tables. Aggregates are stored whole as JSON (`data`, via services.common.serde);
the columns beside it are the ones lists filter and sort on."""

from sqlalchemy import Boolean, Column, Date, Index, Integer, MetaData, String, Table

from services.common.db import Json, UTCDateTime, platform_tables

metadata = MetaData()
tables = platform_tables(metadata)

requesters = Table(
    "requesters", metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("township", String(100), nullable=False),
    Column("risk_level", String(20), nullable=True),
    Column("version", Integer, nullable=False),
    Column("data", Json, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_requesters_township", requesters.c.township, requesters.c.id)

demands = Table(
    "demands", metadata,
    Column("id", String(64), primary_key=True),
    Column("requester_id", String(64), nullable=False),
    Column("delivery_day", Date, nullable=False),
    Column("status", String(20), nullable=False),
    Column("top_tier", Integer, nullable=False),
    Column("flagged", Boolean, nullable=False),
    Column("origin", String(20), nullable=False),
    Column("submitted_at", UTCDateTime, nullable=False),
    Column("data", Json, nullable=False),
    Column("tier_mask", Integer, nullable=False, server_default="0"),  # bit n: a line of tier n
)
Index("ix_demands_day_status", demands.c.delivery_day, demands.c.status)
Index("ix_demands_order", demands.c.delivery_day, demands.c.top_tier, demands.c.submitted_at,
      demands.c.id)
Index("ix_demands_requester", demands.c.requester_id, demands.c.delivery_day)

special_needs = Table(
    "special_needs", metadata,
    Column("id", String(64), primary_key=True),
    Column("requester_id", String(64), nullable=False),
    Column("pseudonym", String(64), nullable=False),
    Column("category", String(30), nullable=False),
    Column("data", Json, nullable=False),
    Column("registered_at", UTCDateTime, nullable=False),
)
Index("ix_special_needs_requester", special_needs.c.requester_id)

requisitions = Table(
    "requisitions", metadata,
    Column("id", String(64), primary_key=True),
    Column("unit_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("data", Json, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

donations = Table(
    "donations", metadata,
    Column("id", String(64), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("received_day", Date, nullable=False),
    Column("data", Json, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_donations_day", donations.c.received_day)

# the cut-off of allocation's policy, one row per version received (policy_changed); the newest rules
county_policy = Table(
    "county_policy", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("cutoff", String(5), nullable=False),
    Column("cutoff_days_before", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
)

tables.update({
    "requesters": requesters, "demands": demands, "special_needs": special_needs,
    "requisitions": requisitions, "donations": donations, "county_policy": county_policy,
})

"""Allocation's tables: its own view of requesters and open demands (from intake's events), the
issued history (from demand_closed), depots (from logistics' stock snapshots), the policy
versions, and the plans with every line, lot and reason.

Aggregates are stored whole as JSON (`data`, via services.common.serde); the columns beside it
are the ones queries filter and sort on."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

from services.common.db import Json, UTCDateTime, platform_tables

metadata = MetaData()
tables = platform_tables(metadata)

requesters = Table(
    "requesters", metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("township", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("data", Json, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

demands = Table(
    "demands", metadata,
    Column("id", String(64), primary_key=True),
    Column("requester_id", String(64), nullable=False),
    Column("delivery_day", Date, nullable=False),
    Column("status", String(20), nullable=False),
    Column("top_tier", Integer, nullable=False),
    Column("registered_at", UTCDateTime, nullable=False),
    Column("plan_id", String(64), nullable=True),
    Column("data", Json, nullable=False),
)
Index("ix_demands_day_status", demands.c.delivery_day, demands.c.status)

issued = Table(
    "issued", metadata,
    Column("demand_id", String(64), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("requester_id", String(64), nullable=False),
    Column("item_code", String(64), nullable=False),
    Column("delivery_day", Date, nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("delivered", BigInteger, nullable=False),
)
Index("ix_issued_item_day", issued.c.item_code, issued.c.delivery_day)

depots = Table(
    "depots", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
)

policies = Table(
    "policies", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("data", Json, nullable=False),
    Column("set_by", String(200), nullable=False),
    Column("set_at", UTCDateTime, nullable=False),
)

plans = Table(
    "plans", metadata,
    Column("id", String(64), primary_key=True),
    Column("delivery_day", Date, nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("late", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("header", Json, nullable=False),
    Column("data", Json, nullable=False),
    UniqueConstraint("delivery_day", "version", name="uq_plans_day_version"),
)

plan_lines = Table(
    "plan_lines", metadata,
    Column("id", String(80), primary_key=True),
    Column("plan_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("demand_id", String(64), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("requester_id", String(64), nullable=False),
    Column("item_code", String(64), nullable=False),
    Column("tier", Integer, nullable=False),
    Column("allocated", BigInteger, nullable=False),
    Column("unmet", BigInteger, nullable=False),
    Column("data", Json, nullable=False),
)
Index("ix_plan_lines_plan_seq", plan_lines.c.plan_id, plan_lines.c.seq, unique=True)
Index("ix_plan_lines_plan_demand", plan_lines.c.plan_id, plan_lines.c.demand_id,
      plan_lines.c.line_no)

tables.update({
    "requesters": requesters, "demands": demands, "issued": issued, "depots": depots,
    "policies": policies, "plans": plans, "plan_lines": plan_lines,
})

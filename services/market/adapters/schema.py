"""Market's tables (its own database). Aggregates are stored whole as JSON (`data`, via
services.common.serde) beside the columns lists filter on. Household addresses live in
`household_addresses` only: never in `data`, events or logs."""

from sqlalchemy import Boolean, Column, Date, Index, Integer, MetaData, String, Table

from services.common.db import Json, UTCDateTime, platform_tables

metadata = MetaData()
tables = platform_tables(metadata)

outlets = Table(
    "outlets", metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("township", String(100), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("data", Json, nullable=False),
)

communities = Table(
    "communities", metadata,
    Column("id", String(64), primary_key=True),
    Column("township", String(100), nullable=False),
    Column("version", Integer, nullable=False),  # intake's requester version
    Column("data", Json, nullable=False),
)

# HQ's assignments (对接关系): one outlet per community and kind
assignments = Table(
    "assignments", metadata,
    Column("community_id", String(64), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("outlet_id", String(64), nullable=False),
)

sellable_lists = Table(
    "sellable_lists", metadata,
    Column("outlet_id", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("data", Json, nullable=False),
)

household_orders = Table(
    "household_orders", metadata,
    Column("id", String(64), primary_key=True),
    Column("community_id", String(64), nullable=False),
    Column("outlet_id", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("status", String(20), nullable=False),
    Column("grid_worker", String(100), nullable=False),
    Column("payment_mode", String(20), nullable=False),
    Column("placed_at", UTCDateTime, nullable=False),
    Column("community_order_id", String(64), nullable=True),
    Column("data", Json, nullable=False),
)
Index("ix_household_orders_community_day", household_orders.c.community_id, household_orders.c.day,
      household_orders.c.placed_at)
Index("ix_household_orders_day", household_orders.c.day, household_orders.c.status)

# the only place a household's address is kept (printed on its label)
household_addresses = Table(
    "household_addresses", metadata,
    Column("order_id", String(64), primary_key=True),
    Column("community_id", String(64), nullable=False),
    Column("address", String(200), nullable=False),
)

community_orders = Table(
    "community_orders", metadata,
    Column("id", String(64), primary_key=True),
    Column("community_id", String(64), nullable=False),
    Column("outlet_id", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("status", String(20), nullable=False),
    Column("data", Json, nullable=False),
)
Index("ix_community_orders_day", community_orders.c.day, community_orders.c.outlet_id)

parcels = Table(
    "parcels", metadata,
    Column("id", String(64), primary_key=True),
    Column("community_order_id", String(64), nullable=False),
    Column("household_order_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("data", Json, nullable=False),
)
Index("ix_parcels_community_order", parcels.c.community_order_id)

payments = Table(
    "payments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", String(64), nullable=False),
    Column("community_id", String(64), nullable=False),
    Column("grid_worker", String(100), nullable=False),
    Column("data", Json, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
)
Index("ix_payments_order", payments.c.order_id)
Index("ix_payments_community", payments.c.community_id)

settlements = Table(
    "settlements", metadata,
    Column("id", String(64), primary_key=True),  # the community order settled
    Column("day", Date, nullable=False),
    Column("data", Json, nullable=False),
    Column("settled_at", UTCDateTime, nullable=False),
)

accounts_closing = Table(
    "accounts_closing", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1: closed once
    Column("closed_at", UTCDateTime, nullable=False),
    Column("data", Json, nullable=False),  # the settlement report at that moment
)

purchase_lists = Table(
    "purchase_lists", metadata,
    Column("id", String(64), primary_key=True),
    Column("village_id", String(64), nullable=False),
    Column("supply_point_id", String(64), nullable=False),
    Column("pickup_day", Date, nullable=False),
    Column("status", String(20), nullable=False),
    Column("data", Json, nullable=False),
)
Index("ix_purchase_lists_village", purchase_lists.c.village_id, purchase_lists.c.pickup_day)

purchase_slots = Table(
    "purchase_slots", metadata,
    Column("id", String(64), primary_key=True),  # village id
    Column("data", Json, nullable=False),
)

tables.update({t.name: t for t in (
    outlets, communities, assignments, sellable_lists, household_orders, household_addresses,
    community_orders, parcels, payments, settlements, accounts_closing, purchase_lists,
    purchase_slots)})

"""Logistics' tables.

The ledger (`ledger`) is append-only: one row per LedgerLine with its hash and prev_hash, never
updated or deleted. `ledger_head` is a single row holding the last line's seq and hash: every
ledger append locks it (SELECT … FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE writer lock
serializes anyway), so appends are serialized and the chain cannot fork. `lot_balances` holds
each lot's stored balance, updated in the same transaction as the lines that move it;
`python -m services.logistics.reconcile` recomputes them from the ledger.

Aggregates without their own query needs (trips, plan data, delivery results) are stored as
JSON (`data`, via services.common.serde) beside the columns lists filter on.
"""

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
    Text,
    UniqueConstraint,
)

from services.common.db import Json, UTCDateTime, platform_tables

metadata = MetaData()
tables = platform_tables(metadata)

depots = Table(
    "depots", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("loading_open", String(5), nullable=False),
    Column("loading_close", String(5), nullable=False),
    Column("registered_at", UTCDateTime, nullable=False),
    Column("registered_by", String(200), nullable=False),
)

zones = Table(
    "zones", metadata,
    Column("id", String(64), primary_key=True),
    Column("depot_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("storage_class", String(30), nullable=False),
    Column("capacity_l", BigInteger, nullable=False),
    Column("registered_at", UTCDateTime, nullable=False),
    Column("registered_by", String(200), nullable=False),
)
Index("ix_zones_depot", zones.c.depot_id, zones.c.id)

lots = Table(
    "lots", metadata,
    Column("lot_id", String(100), primary_key=True),
    Column("item_code", String(64), nullable=False),
    Column("depot_id", String(64), nullable=False),
    Column("zone_id", String(64), nullable=False),
    Column("lot_number", String(100), nullable=False),
    Column("expiry", Date, nullable=False),
    Column("receipt_id", String(100), nullable=False),
    Column("source_kind", String(30), nullable=False),
    Column("source_ref", String(200), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

lot_balances = Table(
    "lot_balances", metadata,
    Column("lot_id", String(100), primary_key=True),
    Column("item_code", String(64), nullable=False),
    Column("depot_id", String(64), nullable=False),
    Column("zone_id", String(64), nullable=False),
    Column("expiry", Date, nullable=False),
    Column("on_hand", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False),
    Column("quarantined", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),
    Column("reserved_by_plan", Json, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_lot_balances_item", lot_balances.c.item_code, lot_balances.c.status, lot_balances.c.expiry)
Index("ix_lot_balances_zone", lot_balances.c.depot_id, lot_balances.c.zone_id)

ledger = Table(
    "ledger", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(30), nullable=False),
    Column("lot_id", String(100), nullable=False),
    Column("item_code", String(64), nullable=False),
    Column("depot_id", String(64), nullable=False),
    Column("zone_id", String(64), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("on_hand_delta", BigInteger, nullable=False),
    Column("reserved_delta", BigInteger, nullable=False),
    Column("quarantined_delta", BigInteger, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("doc_type", String(30), nullable=False),
    Column("doc_id", String(200), nullable=False),
    Column("plan_line_id", String(100), nullable=True),
    Column("expiry", Date, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("scheme", String(20), nullable=False),  # sha256 (before migration 0002) | hmac-sha256
)
Index("ix_ledger_lot", ledger.c.lot_id, ledger.c.seq)

ledger_head = Table(
    "ledger_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    # the last seq written before the chain was keyed: no unkeyed line may follow it
    Column("unkeyed_through", BigInteger, nullable=False, server_default="0"),
)

receipts = Table(
    "receipts", metadata,
    Column("id", String(100), primary_key=True),
    Column("kind", String(30), nullable=False),
    Column("depot_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("rule_code", String(60), nullable=True),
    Column("message", Text, nullable=True),
    Column("origin_ref", String(200), nullable=False),
    Column("received_by", String(200), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("data", Json, nullable=False),
)
Index("ix_receipts_depot", receipts.c.depot_id, receipts.c.received_at)

vehicles = Table(
    "vehicles", metadata,
    Column("id", String(64), primary_key=True),
    Column("depot_id", String(64), nullable=False),
    Column("data", Json, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

requesters = Table(
    "requesters", metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("population", BigInteger, nullable=True),
    Column("households", BigInteger, nullable=True),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

drop_points = Table(
    "drop_points", metadata,
    Column("requester_id", String(64), primary_key=True),
    Column("drop_point_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("window_open", String(5), nullable=False),
    Column("window_close", String(5), nullable=False),
    Column("households", BigInteger, nullable=False),
)

plans = Table(
    "plans", metadata,
    Column("id", String(100), primary_key=True),
    Column("delivery_day", Date, nullable=False),
    Column("status", String(20), nullable=False),
    Column("approved_by", String(200), nullable=False),
    Column("approved_at", UTCDateTime, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("data", Json, nullable=False),
)
Index("ix_plans_day", plans.c.delivery_day, plans.c.status)

plan_lines = Table(
    "plan_lines", metadata,
    Column("id", String(100), primary_key=True),
    Column("plan_id", String(100), nullable=False),
    Column("delivery_day", Date, nullable=False),
    Column("demand_id", String(64), nullable=True),
    Column("demand_line_no", Integer, nullable=True),
    Column("requester_id", String(64), nullable=False),
    Column("drop_point_id", String(64), nullable=False),
    Column("item_code", String(64), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("depot_id", String(64), nullable=False),
    Column("tier", Integer, nullable=False),
    Column("issued", BigInteger, nullable=False),
    Column("data", Json, nullable=False),
)
Index("ix_plan_lines_plan", plan_lines.c.plan_id)

picks = Table(
    "picks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("plan_id", String(100), nullable=False),
    Column("plan_line_id", String(100), nullable=False),
    Column("depot_id", String(64), nullable=False),
    Column("requester_id", String(64), nullable=False),
    Column("drop_point_id", String(64), nullable=False),
    Column("item_code", String(64), nullable=False),
    Column("lot_id", String(100), nullable=False),
    Column("quantity", BigInteger, nullable=False),
)
Index("ix_picks_plan", picks.c.plan_id)
Index("ix_picks_lot", picks.c.lot_id)

trips = Table(
    "trips", metadata,
    Column("id", String(160), primary_key=True),
    Column("plan_id", String(100), nullable=False),
    Column("delivery_day", Date, nullable=False),
    Column("depot_id", String(64), nullable=False),
    Column("vehicle_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("data", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_trips_day", trips.c.delivery_day, trips.c.depot_id)
Index("ix_trips_plan", trips.c.plan_id)

deliveries = Table(
    "deliveries", metadata,
    Column("id", String(64), primary_key=True),
    Column("trip_id", String(160), nullable=False),
    Column("requester_id", String(64), nullable=False),
    Column("drop_point_id", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("data", Json, nullable=False),
    UniqueConstraint("trip_id", "requester_id", "drop_point_id", name="uq_deliveries_stop"),
)

reserve_state = Table(
    "reserve_state", metadata,
    Column("group_code", String(64), primary_key=True),
    Column("below_floor", Boolean, nullable=False),
    Column("days", Float, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

tables.update({
    "depots": depots, "zones": zones, "lots": lots, "lot_balances": lot_balances,
    "ledger": ledger, "ledger_head": ledger_head, "receipts": receipts, "vehicles": vehicles,
    "requesters": requesters, "drop_points": drop_points, "plans": plans,
    "plan_lines": plan_lines, "picks": picks, "trips": trips, "deliveries": deliveries,
    "reserve_state": reserve_state,
})

"""Monitoring's tables (its own database: SQLite under var/ by default, PostgreSQL in production).

Alarm evaluation state lives here, not only in an ingest process's memory (ADR 0002): several
ingest processes behind one shared MQTT subscription each receive part of a sensor's batches, so
the state machine of every (sensor, rule) and each zone's thermal sums are loaded and saved per
MQTT batch group, under a row lock on the zone (`zone_state`), in the same transaction that
records alert transitions and their outbox events.
"""

from datetime import UTC, datetime

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
)
from sqlalchemy.engine import Connection

from services.common.db import Json, UTCDateTime, is_postgres, platform_tables

metadata = MetaData()
tables = platform_tables(metadata)

# Zones and their storage class: from logistics' zone_registered, from SUPPLY_ZONES_FILE, or
# learned from a stock_received event. source: event | file | stock.
zones = Table(
    "zones", metadata,
    Column("zone_key", String(140), primary_key=True),
    Column("depot", String(64), nullable=False),
    Column("zone", String(64), nullable=False),
    Column("storage_class", String(40), nullable=False),
    Column("capacity", Integer, nullable=True),
    Column("interval_s", Float, nullable=True),
    Column("source", String(10), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_zones_zone", zones.c.zone)  # which depot(s) a zone id is registered under

# The lock row of a zone and its shared evaluation state: thermal sums (spoilage, MKT) and which
# sensors hold each alarm rule open. `version` goes up on every save, so a process can keep a
# decoded copy and reload it only when another process has written since.
zone_state = Table(
    "zone_state", metadata,
    Column("zone_key", String(140), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("thermal", Json, nullable=False),
    Column("open_rules", Json, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# One row per sensor: liveness (offline check), the last reading, and its rule evaluators.
sensors = Table(
    "sensors", metadata,
    Column("sensor_key", String(200), primary_key=True),
    Column("depot", String(64), nullable=False),
    Column("zone", String(64), nullable=False),
    Column("sensor", String(64), nullable=False),
    Column("gateway", String(64), nullable=True),
    Column("interval_s", Float, nullable=True),
    Column("expected_since", UTCDateTime, nullable=False),
    Column("last_ts", UTCDateTime, nullable=True),
    Column("last_received_at", UTCDateTime, nullable=True),
    Column("last_seq", Integer, nullable=True),
    Column("last_temp_c", Float, nullable=True),
    Column("last_rh", Float, nullable=True),
    Column("status", String(10), nullable=True),
    Column("status_at", UTCDateTime, nullable=True),
    Column("reported_offline", Boolean, nullable=False, default=False),
    Column("evaluators", Json, nullable=True),
)
Index("ix_sensors_zone", sensors.c.depot, sensors.c.zone)
Index("ix_sensors_gateway", sensors.c.depot, sensors.c.gateway)

gateways = Table(
    "gateways", metadata,
    Column("gateway_key", String(140), primary_key=True),
    Column("depot", String(64), nullable=False),
    Column("gateway", String(64), nullable=False),
    Column("status", String(10), nullable=False),
    Column("status_at", UTCDateTime, nullable=False),
)

# Lots as logistics reports them (stock_received / stock_changed / lot_quarantined / lot_released).
# status: available | quarantined | written_off | gone (on hand 0). account: LotThermalAccount.
lots = Table(
    "lots", metadata,
    Column("lot_id", String(64), primary_key=True),
    Column("item_code", String(64), nullable=False),
    Column("depot", String(64), nullable=False),
    Column("zone", String(64), nullable=False),
    Column("zone_key", String(140), nullable=False),
    Column("on_hand", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("expiry", Date, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("ledger_seq", Integer, nullable=False, default=0),
    Column("account", Json, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_lots_zone", lots.c.zone_key, lots.c.status)

# Alerts: one row per alert (the Alert aggregate whole in `data`). `open_key` is the alert key
# while the alert is open and NULL once cleared: the unique index makes "one open alert per key"
# hold across processes.
alerts = Table(
    "alerts", metadata,
    Column("alert_id", String(36), primary_key=True),
    Column("key", String(400), nullable=False),
    Column("open_key", String(400), nullable=True, unique=True),
    Column("kind", String(30), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("depot", String(64), nullable=True),
    Column("zone", String(64), nullable=True),
    Column("rule_code", String(64), nullable=False),
    Column("subject", String(200), nullable=True),
    Column("state", String(15), nullable=False),
    Column("spoilage", Boolean, nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("cleared_at", UTCDateTime, nullable=True),
    Column("data", Json, nullable=False),
)
Index("ix_alerts_opened", alerts.c.opened_at, alerts.c.alert_id)
Index("ix_alerts_zone", alerts.c.depot, alerts.c.zone, alerts.c.state)

# Every transition of every alert, in commit order of its id: the WatchAlerts stream reads it with
# a cursor; the worker exports it to InfluxDB (measurement `alarm`) and marks `exported`.
alert_history = Table(
    "alert_history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(36), nullable=False),
    Column("action", String(15), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("by", String(200), nullable=True),
    Column("note", Text, nullable=True),
    Column("kind", String(30), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("depot", String(64), nullable=True),
    Column("zone", String(64), nullable=True),
    Column("rule_code", String(64), nullable=False),
    Column("value", Float, nullable=True),
    Column("sensor", String(64), nullable=True),
    Column("payload", Json, nullable=False),
    Column("exported", Boolean, nullable=False, default=False),
    Column("recorded_at", UTCDateTime, nullable=False),
)
Index("ix_alert_history_alert", alert_history.c.alert_id, alert_history.c.id)
Index("ix_alert_history_unexported", alert_history.c.exported, alert_history.c.id)

# Daily prices (菜肉蛋奶), one per product, market and day (a later submission replaces it).
prices = Table(
    "prices", metadata,
    Column("product", String(40), primary_key=True),
    Column("market", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("price_fen", Integer, nullable=False),
    Column("submitted_by", String(200), nullable=False),
    Column("submitted_at", UTCDateTime, nullable=False),
)

# Telemetry the ingest refused (malformed, implausible, too late, another depot's zone), with the
# reason: the MQTT dead-letter store. Written in the ingest's transaction, before the MQTT message
# is acked. `depot`: the depot its topic or reading names (none for a topic outside the root).
ingest_rejects = Table(
    "ingest_rejects", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("client_id", String(100), nullable=False),
    Column("topic", String(400), nullable=False),
    Column("code", String(30), nullable=False),
    Column("reason", Text, nullable=False),
    Column("reason_zh", Text, nullable=False),
    Column("raw", Text, nullable=False),
    Column("entry_index", Integer, nullable=True),
    Column("depot", String(64), nullable=True),
)
Index("ix_ingest_rejects_received", ingest_rejects.c.received_at)
Index("ix_ingest_rejects_depot", ingest_rejects.c.depot, ingest_rejects.c.received_at)

# Readings for a zone nobody has registered yet, held (bounded: domain/zones.py HoldPolicy) until
# it is; then judged in time order, written to InfluxDB and deleted.
held_readings = Table(
    "held_readings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("zone_key", String(140), nullable=False),
    Column("sensor_key", String(200), nullable=False),
    Column("depot", String(64), nullable=False),
    Column("zone", String(64), nullable=False),
    Column("sensor", String(64), nullable=False),
    Column("gateway", String(64), nullable=True),
    Column("ts", UTCDateTime, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("temp_c", Float, nullable=False),
    Column("rh", Float, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
)
Index("ix_held_readings_zone", held_readings.c.zone_key, held_readings.c.ts)
Index("ix_held_readings_sensor", held_readings.c.sensor_key, held_readings.c.ts)

tables.update({
    "zones": zones, "zone_state": zone_state, "sensors": sensors, "gateways": gateways,
    "lots": lots, "alerts": alerts, "alert_history": alert_history, "prices": prices,
    "ingest_rejects": ingest_rejects, "held_readings": held_readings,
})


def aware(t: datetime | None) -> datetime | None:
    """A stored instant as aware UTC (SQLite gives back naive UTC, PostgreSQL aware)."""
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def dialect_insert(conn: Connection, table):
    if is_postgres(conn):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)

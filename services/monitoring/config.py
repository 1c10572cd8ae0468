"""Monitoring's settings beyond the platform's (services.common.config): every rule number and
every knob of the ingest, from SUPPLY_* environment variables, checked at start so that a typo
stops the process with a message that names the variable.

| variable | default | what |
|---|---|---|
| SUPPLY_MQTT_ROOT | supply | topic root: `<root>/<depot>/gw/<gateway>/batch` … |
| SUPPLY_MQTT_CLIENT_ID | monitoring-ingest-1 | fixed client id of this ingest process (its persistent session); give each process its own |
| SUPPLY_MQTT_SHARE_GROUP | (empty) | empty: plain subscriptions (one ingest process; survives a broker restart on Mosquitto 2.0); a name: shared subscriptions `$share/<name>/…` for several ingest processes (needs a broker that persists shared subscriptions, ADR 0003) |
| SUPPLY_MQTT_SESSION_EXPIRY_S | 86400 | how long the broker keeps the session (and queues QoS 1 messages) while the process is away |
| SUPPLY_MQTT_RECEIVE_MAX | 500 | MQTT 5 Receive Maximum: unacknowledged messages the broker may have in flight to us |
| SUPPLY_ZONES_FILE | (none) | YAML mapping of zones to storage classes (and their sensors) |
| SUPPLY_INGEST_GROUP_READINGS | 50000 | readings processed (and written) together before their messages are acked |
| SUPPLY_INGEST_GROUP_WAIT_MS | 5 | how long to wait for more messages once one is in |
| SUPPLY_INGEST_WRITE_QUEUE | 64 | committed groups that may wait for InfluxDB before commits wait too |
| SUPPLY_INFLUX_BATCH | 50000 | lines per InfluxDB /write request (one per ingest group: a request costs InfluxDB CPU, and the ingest's writer thread a wait for the interpreter, per request) |
| SUPPLY_MAX_REJECT_ROWS | 200 | refused entries stored one by one per batch group; the rest as one summary row |
| SUPPLY_UNKNOWN_ZONE_TTL_S | 2 | a zone the database did not know is asked for again after this long (a flood of unknown zones costs one lookup each per TTL) |
| SUPPLY_HOLD_CHECK_S | 1 | how often the ingest judges the held readings of zones registered since, and trims the hold |
| SUPPLY_HOLD_PER_SENSOR | 100 | held readings kept per sensor of an unregistered zone (the newest) |
| SUPPLY_HOLD_RETENTION_H | 72 | held readings older than this are dropped |
| SUPPLY_HOLD_MAX_ROWS | 100000 | held readings kept in all (the newest) |
| SUPPLY_UNREGISTERED_ALERTS_PER_DEPOT | 20 | open unregistered_sensor alerts per depot; beyond, zones are only counted (ingest stats `unregistered_over_cap`) and one UNREGISTERED_SENSOR_CAP alert says so |
| SUPPLY_SENSOR_INTERVAL_S | 60 | reporting interval of a sensor when its zone does not say |
| SUPPLY_OFFLINE_INTERVALS | 3 | offline after this many intervals without data (RULES §9) |
| SUPPLY_OFFLINE_CHECK_S | 10 | worker timer: offline check |
| SUPPLY_SPOILAGE_CHECK_S | 60 | worker timer: remaining shelf life, MKT, near expiry |
| SUPPLY_EXPORT_CHECK_S | 1 | worker timer: alert transitions → InfluxDB `alarm` |
| SUPPLY_LATE_WINDOW_S | 600 | a reading this far behind its sensor's newest one is refused (too_late) |
| SUPPLY_DEDUP_SEQ_WINDOW | 64 | sequence numbers remembered per sensor for de-duplication |
| SUPPLY_MAX_FUTURE_SKEW_S | 300 | a reading this far ahead of the clock is refused |
| SUPPLY_PRICE_RISE_PCT | 20 | price alert above baseline × (1 + pct/100) |
| SUPPLY_PRICE_BASELINE_DAYS | 7 | days before today that make the baseline |
| SUPPLY_PRICE_MIN_HISTORY_DAYS | 3 | baseline needs at least this many days |
| MONITORING_PRICE_ITEMS | PORK-KG=PORK,CABBAGE-KG=CABBAGE,POTATO-KG=POTATO,EGG-30=EGG:1.8,MILK-1L=MILK | catalogue items of the market's sellable lists whose prices feed the price watch: ITEM=PRODUCT[:product units in one item unit]; other items are ignored |
| SUPPLY_RESERVE_ALERT_TTL_H | 24 | a reserve alert not re-raised by logistics for this long clears |
| SUPPLY_DEADLINE_ALERT_TTL_H | 12 | a missed-deadline alert (reports' deadline_missed) clears after this long |
| MONITORING_WATCH_STREAMS_PER_IDENTITY | 4 | WatchAlerts streams one identity (token) may have open on one API process |
| MONITORING_WATCH_STREAMS_MAX | 64 | WatchAlerts streams open on one API process, every identity together (each polls 4×/s) |
| SUPPLY_MONITORING_WORKER_ID | worker | name of a monitoring worker (its InfluxDB spool folder `export-<id>`); every worker its own |
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from services.common.catalogue import Catalogue
from services.common.config import ConfigError, Settings
from services.monitoring.domain.alarms import AlarmPolicy
from services.monitoring.domain.dedup import DedupPolicy
from services.monitoring.domain.offline import OfflinePolicy
from services.monitoring.domain.prices import (
    DEFAULT_PRICE_ITEMS,
    PriceItem,
    PricePolicy,
    parse_price_items,
)
from services.monitoring.domain.readings import IngestPolicy, id_problem
from services.monitoring.domain.zones import HoldPolicy


@dataclass(frozen=True)
class ZoneSpec:
    depot: str
    zone: str
    storage_class: str
    sensors: tuple[str, ...] = ()
    interval_s: float | None = None
    capacity: int | None = None

    @property
    def zone_key(self) -> str:
        return f"{self.depot}/{self.zone}"


@dataclass(frozen=True)
class MonitoringConfig:
    mqtt_root: str = "supply"
    client_id: str = "monitoring-ingest-1"
    share_group: str = ""  # "": plain subscriptions (ADR 0003)
    session_expiry_s: int = 86_400
    receive_max: int = 500
    zones_file: Path | None = None
    group_readings: int = 50_000
    group_wait_s: float = 0.005
    write_queue: int = 64
    influx_batch: int = 50_000
    max_reject_rows: int = 200
    unknown_zone_ttl_s: float = 2.0
    hold_check_s: float = 1.0
    hold_policy: HoldPolicy = field(default_factory=HoldPolicy)
    unregistered_alerts_per_depot: int = 20
    sensor_interval: timedelta = timedelta(seconds=60)
    offline_check_s: float = 10.0
    spoilage_check_s: float = 60.0
    export_check_s: float = 1.0
    reserve_alert_ttl: timedelta = timedelta(hours=24)
    deadline_alert_ttl: timedelta = timedelta(hours=12)
    watch_streams_per_identity: int = 4
    watch_streams_max: int = 64
    worker_id: str = "worker"  # the worker's spool folder export-<id>
    ingest_policy: IngestPolicy = field(default_factory=IngestPolicy)
    dedup_policy: DedupPolicy = field(default_factory=lambda: DedupPolicy(seq_window=64))
    alarm_policy: AlarmPolicy = field(default_factory=AlarmPolicy)
    offline_policy: OfflinePolicy = field(default_factory=OfflinePolicy)
    price_policy: PricePolicy = field(default_factory=PricePolicy)
    price_items: tuple[PriceItem, ...] = DEFAULT_PRICE_ITEMS  # market's list items → watched products


def _num(env: dict, name: str, default: float, lo: float, hi: float, kind=float):
    raw = env.get(name, "").strip()
    if not raw:
        return kind(default)
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a{'n integer' if kind is int else ' number'}, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo:g} and {hi:g}, got {value!r}")
    return value


def _ident(env: dict, name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    problem = id_problem(value, name)
    if problem:
        raise ConfigError(problem)
    return value


def _worker_id(env: dict) -> str:
    """Names a folder: an id (no MQTT topic characters, no space), and not . or .."""
    value = _ident(env, "SUPPLY_MONITORING_WORKER_ID", "worker")
    if value in (".", ".."):
        raise ConfigError(f"SUPPLY_MONITORING_WORKER_ID must name a folder, got {value!r}")
    return value


def monitoring_config(settings: Settings) -> MonitoringConfig:
    env = settings.extra
    root = env.get("SUPPLY_MQTT_ROOT", "").strip().strip("/") or "supply"
    if any(c in root for c in "+#") or "//" in root or any(c.isspace() for c in root):
        raise ConfigError(f"SUPPLY_MQTT_ROOT must be a plain topic prefix, got {root!r}")
    client_id = env.get("SUPPLY_MQTT_CLIENT_ID", "").strip() or "monitoring-ingest-1"
    if len(client_id) > 64 or any(c in client_id for c in "/+# "):
        raise ConfigError(f"SUPPLY_MQTT_CLIENT_ID must be ≤ 64 characters without / + # or spaces, got {client_id!r}")
    zones_file = env.get("SUPPLY_ZONES_FILE", "").strip()
    if zones_file and not Path(zones_file).is_file():
        raise ConfigError(f"SUPPLY_ZONES_FILE not found: {zones_file}")
    interval = _num(env, "SUPPLY_SENSOR_INTERVAL_S", 60, 1, 86_400)
    offline_n = _num(env, "SUPPLY_OFFLINE_INTERVALS", 3, 1, 100)
    watch_max = _num(env, "MONITORING_WATCH_STREAMS_MAX", 64, 1, 100_000, int)
    watch_per_identity = _num(env, "MONITORING_WATCH_STREAMS_PER_IDENTITY", 4, 1, 100_000, int)
    if watch_per_identity > watch_max:
        raise ConfigError(f"MONITORING_WATCH_STREAMS_PER_IDENTITY ({watch_per_identity}) must not be above "
                          f"MONITORING_WATCH_STREAMS_MAX ({watch_max})")
    return MonitoringConfig(
        mqtt_root=root,
        client_id=client_id,
        share_group=_ident(env, "SUPPLY_MQTT_SHARE_GROUP", "") if env.get("SUPPLY_MQTT_SHARE_GROUP", "").strip() else "",
        session_expiry_s=_num(env, "SUPPLY_MQTT_SESSION_EXPIRY_S", 86_400, 0, 2**32 - 1, int),
        receive_max=_num(env, "SUPPLY_MQTT_RECEIVE_MAX", 500, 1, 65_535, int),
        zones_file=Path(zones_file) if zones_file else None,
        group_readings=_num(env, "SUPPLY_INGEST_GROUP_READINGS", 50_000, 1, 1_000_000, int),
        group_wait_s=_num(env, "SUPPLY_INGEST_GROUP_WAIT_MS", 5, 0, 10_000) / 1000.0,
        write_queue=_num(env, "SUPPLY_INGEST_WRITE_QUEUE", 64, 1, 1000, int),
        influx_batch=_num(env, "SUPPLY_INFLUX_BATCH", 50_000, 1, 100_000, int),
        max_reject_rows=_num(env, "SUPPLY_MAX_REJECT_ROWS", 200, 1, 1_000_000, int),
        unknown_zone_ttl_s=_num(env, "SUPPLY_UNKNOWN_ZONE_TTL_S", 2, 0, 3600),
        hold_check_s=_num(env, "SUPPLY_HOLD_CHECK_S", 1, 0.05, 3600),
        hold_policy=HoldPolicy(
            per_sensor=_num(env, "SUPPLY_HOLD_PER_SENSOR", 100, 1, 100_000, int),
            retention=timedelta(hours=_num(env, "SUPPLY_HOLD_RETENTION_H", 72, 0.01, 24 * 365)),
            max_rows=_num(env, "SUPPLY_HOLD_MAX_ROWS", 100_000, 1, 100_000_000, int)),
        unregistered_alerts_per_depot=_num(env, "SUPPLY_UNREGISTERED_ALERTS_PER_DEPOT", 20, 1, 10_000, int),
        sensor_interval=timedelta(seconds=interval),
        offline_check_s=_num(env, "SUPPLY_OFFLINE_CHECK_S", 10, 0.1, 86_400),
        spoilage_check_s=_num(env, "SUPPLY_SPOILAGE_CHECK_S", 60, 0.1, 86_400),
        export_check_s=_num(env, "SUPPLY_EXPORT_CHECK_S", 1, 0.1, 3600),
        reserve_alert_ttl=timedelta(hours=_num(env, "SUPPLY_RESERVE_ALERT_TTL_H", 24, 0.01, 24 * 365)),
        deadline_alert_ttl=timedelta(hours=_num(env, "SUPPLY_DEADLINE_ALERT_TTL_H", 12, 0.01, 24 * 30)),
        watch_streams_per_identity=watch_per_identity,
        watch_streams_max=watch_max,
        worker_id=_worker_id(env),
        ingest_policy=IngestPolicy(
            max_future_skew=timedelta(seconds=_num(env, "SUPPLY_MAX_FUTURE_SKEW_S", 300, 0, 86_400))),
        dedup_policy=DedupPolicy(
            late_window=timedelta(seconds=_num(env, "SUPPLY_LATE_WINDOW_S", 600, 1, 7 * 86_400)),
            seq_window=_num(env, "SUPPLY_DEDUP_SEQ_WINDOW", 64, 8, 1_000_000, int)),
        alarm_policy=AlarmPolicy(reporting_interval=timedelta(seconds=interval)),
        offline_policy=OfflinePolicy(default_interval=timedelta(seconds=interval),
                                     missed_intervals=offline_n),
        price_policy=PricePolicy(
            rise_pct=_num(env, "SUPPLY_PRICE_RISE_PCT", 20, 0.1, 1000),
            baseline_days=_num(env, "SUPPLY_PRICE_BASELINE_DAYS", 7, 1, 365, int),
            min_history_days=_num(env, "SUPPLY_PRICE_MIN_HISTORY_DAYS", 3, 1, 365, int)),
        price_items=_price_items(env),
    )


def _price_items(env: dict) -> tuple[PriceItem, ...]:
    raw = env.get("MONITORING_PRICE_ITEMS", "").strip()
    if not raw:
        return DEFAULT_PRICE_ITEMS
    try:
        return parse_price_items(raw)
    except ValueError as exc:
        raise ConfigError(f"MONITORING_PRICE_ITEMS: {exc} / 价格监测物品配置有误") from None


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


# --- the zones file ----------------------------------------------------------------------------

def parse_zones(data: Any, catalogue: Catalogue, where: str = "zones file") -> list[ZoneSpec]:
    """Two shapes are accepted, so that a sensor scenario can serve as the zones file:

        zones: [{depot: cs01, zone: chl, storage_class: chilled, sensors: [s1, s2], interval_s: 60}]
        depots: [{id: cs01, zones: [{id: chl, storage_class: chilled, sensors: [s1, s2] | 2}]}]

    Raises ConfigError naming the entry."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a mapping with `zones:` or `depots:` expected")
    flat: list[tuple[str, dict]] = []
    for i, z in enumerate(data.get("zones") or []):
        flat.append((f"{where}: zones[{i}]", z))
    for i, d in enumerate(data.get("depots") or []):
        if not isinstance(d, dict) or "id" not in d:
            raise ConfigError(f"{where}: depots[{i}] needs an id")
        for j, z in enumerate(d.get("zones") or []):
            if not isinstance(z, dict):
                raise ConfigError(f"{where}: depots[{i}].zones[{j}] must be a mapping")
            flat.append((f"{where}: depots[{i}].zones[{j}]", {**z, "depot": d["id"], "zone": z.get("id"),
                                                              "interval_s": z.get("interval_s", d.get(
                                                                  "interval_s", data.get("interval_s")))}))
    out: list[ZoneSpec] = []
    for w, z in flat:
        if not isinstance(z, dict):
            raise ConfigError(f"{w} must be a mapping")
        for name in ("depot", "zone"):
            problem = id_problem(z.get(name), name)
            if problem:
                raise ConfigError(f"{w}.{problem}")
        sc = z.get("storage_class")
        if sc not in catalogue.storage_classes:
            raise ConfigError(f"{w}.storage_class: {sc!r} is not one of {sorted(catalogue.storage_classes)}")
        raw_sensors = z.get("sensors", ())
        if isinstance(raw_sensors, int) and not isinstance(raw_sensors, bool):
            width = len(str(raw_sensors))
            sensors = tuple(f"s{i:0{width}d}" for i in range(1, raw_sensors + 1))
        elif isinstance(raw_sensors, list | tuple):
            sensors = tuple(raw_sensors)
        else:
            raise ConfigError(f"{w}.sensors: a count or a list of sensor ids")
        for s in sensors:
            problem = id_problem(s, "sensor")
            if problem:
                raise ConfigError(f"{w}.sensors: {problem}")
        interval = z.get("interval_s")
        if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int | float)
                                     or interval <= 0):
            raise ConfigError(f"{w}.interval_s: a positive number of seconds, got {interval!r}")
        cap = z.get("capacity")
        out.append(ZoneSpec(depot=z["depot"], zone=z["zone"], storage_class=sc, sensors=sensors,
                            interval_s=float(interval) if interval is not None else None,
                            capacity=int(cap) if cap is not None else None))
    keys = [z.zone_key for z in out]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ConfigError(f"{where}: zones listed twice: {', '.join(dup)}")
    return out


def load_zones_file(path: Path, catalogue: Catalogue) -> list[ZoneSpec]:
    try:
        with path.open(encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"SUPPLY_ZONES_FILE {path}: {exc}") from None
    return parse_zones(data, catalogue, f"SUPPLY_ZONES_FILE {path}")

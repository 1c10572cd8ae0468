"""The ingest pipeline, between the MQTT adapter and the database / InfluxDB: one *group* of MQTT
messages at a time (whatever arrived within a few milliseconds, up to a reading budget).

    prepare()  parse and validate every payload (domain readings.parse_message), statuses,
               de-duplicate by (sensor, seq) with the out-of-order window, encode `env` lines
    commit()   one transaction: dead letters, statuses, sensors' last readings, alarm evaluation
               state (loaded and saved under the zones' row locks), alert transitions + outbox
    write()    the lines to InfluxDB through InfluxWriter: written, or spooled to fsync'd files
    → only then does the caller ack the group's MQTT messages (manual ack, QoS 1).

A process killed anywhere before the acks loses nothing: the broker redelivers the unacked
messages to the persistent session. Redelivered readings are harmless: InfluxDB keeps one point
per series and timestamp (a rewrite overwrites it), and the alarm evaluators skip a reading that
is not newer than the sensor's last one.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.monitoring import handlers as h
from services.monitoring.adapters.influx import LineProtocolError, env_line
from services.monitoring.domain.offline import parse_status
from services.monitoring.domain.readings import Deduplicator, Reading, Rejected, parse_message

log = logging.getLogger(__name__)

DOMAIN_ROOT = "supply"


def domain_topic(topic: str, root: str) -> str | None:
    """`<root>/<rest>` → `supply/<rest>` (the domain parses topics under `supply`), or None when
    the topic is not under the root."""
    prefix = root + "/"
    if not topic.startswith(prefix):
        return None
    return f"{DOMAIN_ROOT}/{topic[len(prefix):]}"


def topic_filters(root: str, share_group: str) -> list[tuple[str, int]]:
    """(topic filter, QoS) of the ingest's subscriptions.

    Telemetry: QoS 1, acked only once stored; a plain subscription by default (one ingest
    process, kept by the broker across its restarts), or shared subscriptions split between
    several ingest processes when a share group is configured (ADR 0003). Statuses (`<root>/<depot>/<zone>/<sensor>/status` and the gateways'
    `<root>/<depot>/gw/<gateway>/status`, which the same filter matches): a plain subscription in
    every process at QoS 0. Shared subscriptions get no retained messages, and a status is
    retained and idempotent: every (re)connect re-subscribes and so receives the current
    retained status of every sensor and gateway again, which also covers any status change
    missed while away. QoS 0 keeps a reconnect's burst of thousands of retained statuses out of
    the broker's per-client queue of unacked QoS 1 messages (max_queued_messages), where it
    would crowd out, and make the broker drop, telemetry."""
    share = f"$share/{share_group}/" if share_group else ""
    return [(f"{share}{root}/+/gw/+/batch", 1),
            (f"{share}{root}/+/+/+/telemetry", 1),
            (f"{root}/+/+/+/status", 0)]


@dataclass
class InMessage:
    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 1
    generation: int = 0
    received: float = field(default_factory=time.monotonic)


@dataclass
class Work:
    """A prepared group: what commit() and write() need, kept for retries."""

    messages: list[InMessage]
    readings: list[Reading] = field(default_factory=list)
    gateway_of: dict[str, str] = field(default_factory=dict)
    statuses: list[h.StatusChange] = field(default_factory=list)
    rejects: list[tuple[str, Rejected]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    duplicates: int = 0
    committed: bool = False
    written: bool = False


class Ingest:
    def __init__(self, ctx: h.MonitoringContext, write_lines: Callable[[list[str]], None],
                 client_id: str, *, zone_refresh_s: float = 5.0):
        self.ctx = ctx
        self.config = ctx.config
        self.root = ctx.config.mqtt_root
        self.write_lines = write_lines
        self.client_id = client_id
        self.dedup = Deduplicator(ctx.config.dedup_policy)
        self.cache = h.EvalCache()
        self.zone_map: dict[str, h.ZoneRow] = {}
        self.zone_refresh_s = zone_refresh_s
        self._zones_loaded = 0.0
        self.stats: Counter = Counter()

    # -- zones (logistics' zone_registered lands in the database through the worker)

    def refresh_zones(self, force: bool = False) -> None:
        if force or time.monotonic() - self._zones_loaded >= self.zone_refresh_s:
            with self.ctx.engine.connect() as conn:
                self.zone_map = h.load_zone_map(conn)
            self._zones_loaded = time.monotonic()

    def storage_class_of(self, zone_key: str) -> str | None:
        info = self.zone_map.get(zone_key)
        return info.storage_class if info else None

    # -- the three steps

    def prepare(self, messages: Sequence[InMessage], now: datetime | None = None) -> Work:
        now = now or self.ctx.clock.now()
        policy = self.config.ingest_policy
        work = Work(list(messages))
        self.refresh_zones()
        parsed: list[Reading] = []
        for m in messages:
            topic = domain_topic(m.topic, self.root)
            if topic is None:
                work.rejects.append((m.topic, Rejected("bad_topic", f"topic {m.topic!r} is not under "
                                                                    f"{self.root!r}", "")))
                continue
            if topic.endswith("/status"):
                self._status(work, m, topic, now)
                continue
            result = parse_message(topic, m.payload, now, policy)
            work.rejects.extend((m.topic, r) for r in result.rejected)
            if result.readings and topic.endswith("/batch"):
                gateway = topic.split("/")[3]
                for r in result.readings:
                    work.gateway_of[r.sensor_key] = gateway
            parsed.extend(result.readings)
        d = self.dedup.filter(parsed, policy)
        work.duplicates = d.duplicates
        work.rejects.extend(("(late)", r) for r in d.too_late)
        work.readings = d.accepted
        for r in d.accepted:
            try:
                work.lines.append(env_line(r.depot, r.zone, r.sensor, self.storage_class_of(r.zone_key),
                                           r.ts, r.temp_c, r.rh, r.seq))
            except LineProtocolError as exc:  # parse_message should have refused it already
                work.rejects.append(("(encode)", Rejected("bad_value", str(exc), r.sensor_key)))
        self.stats["messages"] += len(messages)
        self.stats["readings"] += len(d.accepted)
        self.stats["duplicates"] += d.duplicates
        self.stats["rejected"] += len(work.rejects)
        for _, r in work.rejects:
            self.stats[f"rejected.{r.code}"] += 1
        return work

    def _status(self, work: Work, m: InMessage, topic: str, now: datetime) -> None:
        if not m.payload:  # a retained status being deleted
            return
        parts = topic.split("/")
        is_gateway = len(parts) == 5 and parts[2] == "gw"
        update = parse_status(topic, m.payload, self.config.ingest_policy)
        if isinstance(update, Rejected):
            work.rejects.append((m.topic, update))
            return
        work.statuses.append(h.StatusChange(update.depot, None if is_gateway else update.zone,
                                            update.sensor, update.status, now))
        self.stats["statuses"] += 1

    def commit(self, work: Work) -> h.IngestOutcome:
        zones = {r.zone_key for r in work.readings}
        try:
            with self.ctx.uow() as uow:
                outcome = h.record_ingest(self.ctx, uow, self.cache, self.zone_map, work.readings,
                                          work.gateway_of, work.statuses, work.rejects, self.client_id)
                uow.commit()
        except BaseException:
            self.cache.invalidate(zones)  # the decoded copies moved on; the database did not
            raise
        work.committed = True
        self.stats["alert_transitions"] += len(outcome.alerts)
        for alert_id, action in outcome.alerts:
            log.info("alert transition", extra={"alert_id": alert_id, "action": action})
        return outcome

    def write(self, work: Work) -> None:
        self.write_lines(work.lines)
        work.written = True

    def process(self, messages: Sequence[InMessage]) -> Work:
        """prepare + commit + write, for callers without their own retry loop (tests, bench)."""
        work = self.prepare(messages)
        self.commit(work)
        self.write(work)
        return work

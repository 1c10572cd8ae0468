"""The ingest pipeline, between the MQTT adapter and the database / InfluxDB: one *group* of MQTT
messages at a time (whatever arrived within a few milliseconds, up to a reading budget).

    prepare()  parse and validate every payload (domain readings.parse_message), statuses,
               de-duplicate by (sensor, seq) with the out-of-order window
    commit()   one transaction: whose zone each reading names (domain/zones.py; a zone not in
               the cached map is looked up, a miss remembered for SUPPLY_UNKNOWN_ZONE_TTL_S),
               readings of unregistered zones held, of another depot's zone refused (both with
               one unregistered_sensor alert per zone); dead letters, statuses, sensors' last
               readings, alarm evaluation state (loaded and saved under the zones' row locks),
               alert transitions + outbox; the `env` lines of the judged readings only
    write()    the lines to InfluxDB through InfluxWriter: written, or spooled to fsync'd files;
               then the held readings judged in this group are deleted
    → only then does the caller ack the group's MQTT messages (manual ack, QoS 1).

Held readings of a zone registered since are judged with the first group that names the zone
again (in time order with the new ones), or by `held_work()`, which the process runs every
SUPPLY_HOLD_CHECK_S, whichever comes first.

A process killed anywhere before the acks loses nothing: the broker redelivers the unacked
messages to the persistent session. Redelivered readings are harmless: InfluxDB keeps one point
per series and timestamp (a rewrite overwrites it), and the alarm evaluators skip a reading that
is not newer than the sensor's last one.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from operator import attrgetter

from services.monitoring.adapters import held_readings, zone_store
from services.monitoring.adapters.held_readings import HeldReading
from services.monitoring.adapters.line_protocol import LineProtocolError, env_lines
from services.monitoring.adapters.zone_store import ZoneRow
from services.monitoring.domain.dedup import Deduplicator
from services.monitoring.domain.offline import parse_status
from services.monitoring.domain.readings import (
    Reading,
    Rejected,
    parse_message,
    zone_key,
)
from services.monitoring.domain.zones import (
    FOREIGN,
    KNOWN,
    UNREGISTERED,
    newest_per_sensor,
    zone_standing,
)
from services.monitoring.handlers import base, ingest

log = logging.getLogger(__name__)

DOMAIN_ROOT = "supply"
_zone_key, _sensor_key = attrgetter("zone_key"), attrgetter("sensor_key")


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
    statuses: list[ingest.StatusChange] = field(default_factory=list)
    rejects: list[tuple[str, Rejected]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    duplicates: int = 0
    held_ids: list[int] = field(default_factory=list)  # held readings judged here: deleted once written
    committed: bool = False
    written: bool = False


class Ingest:
    def __init__(self, ctx: base.MonitoringContext, write_lines: Callable[[list[str]], None],
                 client_id: str, *, zone_refresh_s: float = 5.0):
        self.ctx = ctx
        self.config = ctx.config
        self.root = ctx.config.mqtt_root
        self.write_lines = write_lines
        self.client_id = client_id
        self.dedup = Deduplicator(ctx.config.dedup_policy)
        self.cache = ingest.EvalCache()
        self.zone_map: dict[str, ZoneRow] = {}
        self.zone_refresh_s = zone_refresh_s
        self._zones_loaded = 0.0
        self.unknown = UnknownZones(ctx.config.unknown_zone_ttl_s)
        self.releasing: set[int] = set()  # held ids judged, not yet written and deleted
        self.registered_since: set[str] = set()  # zones the last map refresh brought
        self.alerted: set[str] = set()  # zones whose unregistered_sensor alert this process raised
        self.stats: Counter = Counter()

    # -- zones (logistics' zone_registered lands in the database through the worker)

    def refresh_zones(self, force: bool = False) -> None:
        if force or time.monotonic() - self._zones_loaded >= self.zone_refresh_s:
            with self.ctx.engine.connect() as conn:
                zone_map = zone_store.zone_map(conn)
            if self._zones_loaded:  # registered since: their held readings go first
                self.registered_since.update(k for k in zone_map if k not in self.zone_map)
            self.zone_map = zone_map
            self._zones_loaded = time.monotonic()

    def warm(self) -> int:
        """Every registered zone's evaluation state decoded before the first group; how many."""
        with self.ctx.uow() as uow:
            return ingest.warm_zone_evals(self.ctx, uow, self.cache, self.zone_map)

    def storage_class_of(self, zone_key: str) -> str | None:
        info = self.zone_map.get(zone_key)
        return info.storage_class if info else None

    # -- the three steps

    def prepare(self, messages: Sequence[InMessage], now: datetime | None = None) -> Work:
        now = now or self.ctx.clock.now()
        policy = self.config.ingest_policy
        work = Work(list(messages))
        self.refresh_zones()
        late: list[Rejected] = []
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
            depot = topic.split("/")[1][:64]
            work.rejects.extend((m.topic, replace(r, depot=depot)) for r in result.rejected)
            if result.readings and topic.endswith("/batch"):
                work.gateway_of.update(dict.fromkeys(map(_sensor_key, result.readings), topic.split("/")[3]))
            d = self.dedup.filter(result.readings, policy)  # message by message: while they are in cache
            work.readings.extend(d.accepted)
            work.duplicates += d.duplicates
            late.extend(d.too_late)
        work.rejects.extend(("(late)", r) for r in late)
        self.stats["messages"] += len(messages)
        self.stats["duplicates"] += work.duplicates
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
            work.rejects.append((m.topic, replace(update, depot=parts[1][:64])))
            return
        work.statuses.append(ingest.StatusChange(update.depot, None if is_gateway else update.zone,
                                            update.sensor, update.status, now))
        self.stats["statuses"] += 1

    # -- whose zone a reading names

    def _standings(self, conn, keys) -> tuple[dict[str, tuple[str, str | None]], list[str]]:
        """{zone key: (standing, depot the zone id is registered under when foreign)} and the
        keys this process has just learned are registered."""
        now = time.monotonic()
        out: dict[str, tuple[str, str | None]] = {}
        ask, learned = [], []
        for k in keys:
            if k in self.zone_map:
                out[k] = (KNOWN, None)
                if k in self.registered_since:
                    learned.append(k)
                continue
            depots = self.unknown.get(k, now)
            if depots is None:
                ask.append(k)
            else:
                out[k] = (zone_standing(k.partition("/")[0], depots), min(depots, default=None))
        if ask:
            named = zone_store.named(conn, {k.partition("/")[2] for k in ask})
            for k in ask:
                depot, _, zone = k.partition("/")
                rows = named.get(zone, [])
                standing = zone_standing(depot, [r.depot for r in rows])
                if standing == KNOWN:
                    self.zone_map[k] = next(r for r in rows if r.depot == depot)
                    learned.append(k)
                    out[k] = (KNOWN, None)
                else:
                    depots = tuple(sorted(r.depot for r in rows))
                    self.unknown.put(k, depots, now)
                    out[k] = (standing, depots[0] if depots else None)
        return out, learned

    def commit(self, work: Work) -> ingest.IngestOutcome:
        named = set(map(_zone_key, work.readings))
        now = self.ctx.clock.now()
        released = bool(work.held_ids)
        policy = self.config.hold_policy
        taken: list[HeldReading] = []
        try:
            with self.ctx.uow() as uow:
                standing, learned = self._standings(uow.conn, sorted(named))
                by_standing: dict[str, list[Reading]] = {KNOWN: [], UNREGISTERED: [], FOREIGN: []}
                if all(standing[k][0] == KNOWN for k in named):
                    by_standing[KNOWN] = work.readings
                else:
                    for r in work.readings:
                        by_standing[standing[r.zone_key][0]].append(r)
                judged = by_standing[KNOWN]
                gateway_of = dict(work.gateway_of)
                taken = [x for x in held_readings.of_zones(uow.conn, learned) if x.id not in self.releasing]
                judged = [x.reading for x in taken] + judged
                gateway_of.update({x.reading.sensor_key: x.gateway for x in taken if x.gateway
                                   and x.reading.sensor_key not in gateway_of})
                held = [] if released else newest_per_sensor(by_standing[UNREGISTERED], policy.per_sensor)
                held_readings.hold(uow.conn, held, gateway_of, now)
                foreign = [] if released else by_standing[FOREIGN]
                refused = [("(foreign zone)", Rejected(
                    "foreign_zone", f"zone {r.zone!r} is registered under depot "
                                    f"{standing[r.zone_key][1]!r}, not {r.depot!r}", r.sensor_key,
                    depot=r.depot))
                           for r in foreign]
                raised = self._alert_unknown(uow, held + foreign, standing, now)
                outcome = ingest.record_ingest(self.ctx, uow, self.cache, self.zone_map, judged,
                                          gateway_of, work.statuses, work.rejects + refused, self.client_id)
                cleared = {r.zone_key for r in judged} if released else {x.reading.zone_key for x in taken}
                for k in sorted(cleared):
                    depot, _, zone = k.partition("/")
                    alert_id = ingest.clear_unregistered(self.ctx, uow, depot, zone, now, len(judged))
                    if alert_id is not None:
                        outcome.alerts.append((alert_id, "cleared"))
                lines = self._lines(judged)
                uow.commit()
        except BaseException:
            self.cache.invalidate(named | {x.reading.zone_key for x in taken})
            raise
        self.registered_since.difference_update(learned)
        work.lines = lines
        work.held_ids = list(work.held_ids) + [x.id for x in taken]
        self.releasing.update(work.held_ids)
        self.alerted.update(raised)
        self.alerted.difference_update(cleared)
        work.committed = True
        st = self.stats
        st["readings"] += len(judged) - (len(work.readings) if released else len(taken))
        st["released"] += len(judged) if released else len(taken)
        st["held"] += len(held)
        st["held_dropped"] += len(by_standing[UNREGISTERED]) - len(held) if not released else 0
        st["foreign"] += len(foreign)
        st["rejected"] += len(refused)
        st["rejected.foreign_zone"] += len(refused)
        st["unregistered_alerts"] += len(raised)
        st["alert_transitions"] += len(outcome.alerts)
        for alert_id, action in outcome.alerts:
            log.info("alert transition", extra={"alert_id": alert_id, "action": action})
        return outcome

    def _alert_unknown(self, uow, readings: Sequence[Reading], standing, now: datetime) -> set[str]:
        """One unregistered_sensor alert per (depot, zone), up to the depot's cap (an open one is
        left as it is); zones over the cap are counted, and alerted once there is room."""
        sensors: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for r in readings:
            if r.zone_key not in self.alerted:
                sensors[r.depot][r.zone].add(r.sensor)
        raised = set()
        for depot in sorted(sensors):
            of_depot = sensors[depot]
            under = {z: standing[zone_key(depot, z)][1] for z in of_depot}
            _, over = ingest.raise_unregistered(self.ctx, uow, depot, of_depot, under, now)
            raised.update(zone_key(depot, z) for z in of_depot if z not in over)
            self.stats["unregistered_over_cap"] += len(over)
        if len(self.alerted) > 100_000:
            self.alerted.clear()
        return raised

    def _lines(self, readings: Sequence[Reading]) -> list[str]:
        def unencodable(r: Reading, exc: LineProtocolError) -> None:  # parse_message refuses these
            log.error("reading not encodable", extra={"sensor": r.sensor_key, "error": str(exc)})

        return env_lines(readings, self.storage_class_of, unencodable)

    def held_work(self, limit: int | None = None) -> Work | None:
        """The held readings of zones registered since they arrived (oldest first), as a group to
        commit and write like any other; None when there are none."""
        with self.ctx.engine.connect() as conn:
            keys = held_readings.registered_zones(conn)
            if not keys:
                return None
            named = zone_store.named(conn, {k.partition("/")[2] for k in keys})
            for rows in named.values():
                for row in rows:
                    self.zone_map.setdefault(row.zone_key, row)
                    self.unknown.forget(row.zone_key)
            held = [x for x in held_readings.of_zones(conn, keys, limit or self.config.group_readings)
                    if x.id not in self.releasing]
        if not held:
            return None
        return Work([], readings=[x.reading for x in held],
                    gateway_of={x.reading.sensor_key: x.gateway for x in held if x.gateway},
                    held_ids=[x.id for x in held])

    def trim_held(self) -> int:
        with self.ctx.uow() as uow:
            n = held_readings.trim(uow.conn, self.config.hold_policy, self.ctx.clock.now())
            uow.commit()
        self.stats["held_trimmed"] += n
        return n

    def write(self, work: Work) -> None:
        self.write_lines(work.lines)
        if work.held_ids:
            with self.ctx.uow() as uow:
                held_readings.delete(uow.conn, work.held_ids)
                uow.commit()
            self.releasing.difference_update(work.held_ids)
        work.written = True

    def process(self, messages: Sequence[InMessage]) -> Work:
        """prepare + commit + write, for callers without their own retry loop (tests, bench)."""
        work = self.prepare(messages)
        self.commit(work)
        self.write(work)
        return work

    def release(self) -> int:
        """Judge and write every held reading of a zone registered since (tests, bench)."""
        n = 0
        while (work := self.held_work()) is not None:
            self.commit(work)
            self.write(work)
            n += len(work.held_ids)
        return n


class UnknownZones:
    """Zone keys the database did not know, remembered for `ttl_s` with the depots their zone id
    is registered under, so that a flood of unknown keys costs one lookup each per TTL."""

    def __init__(self, ttl_s: float, max_keys: int = 100_000):
        self.ttl_s = ttl_s
        self.max_keys = max_keys
        self._keys: dict[str, tuple[float, tuple[str, ...]]] = {}

    def get(self, key: str, now: float) -> tuple[str, ...] | None:
        hit = self._keys.get(key)
        if hit is None or now - hit[0] >= self.ttl_s:
            return None
        return hit[1]

    def put(self, key: str, depots: tuple[str, ...], now: float) -> None:
        if len(self._keys) >= self.max_keys:
            self._keys.clear()
        self._keys[key] = (now, depots)

    def forget(self, key: str) -> None:
        self._keys.pop(key, None)

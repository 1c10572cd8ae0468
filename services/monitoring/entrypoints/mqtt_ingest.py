"""`python -m services.monitoring ingest`: MQTT → validation → alarm evaluation → InfluxDB.

Two stages: the main thread takes a group of messages (ingest.Ingest), validates and evaluates
it and commits (alerts and their outbox events included), then hands it to the write stage,
which writes (or spools) its lines to InfluxDB in commit order and only then acks the group's
messages. A failed step is retried with back-off without acking, so nothing is acknowledged that
is not stored; a slow InfluxDB does not delay alerts (up to SUPPLY_INGEST_WRITE_QUEUE groups
wait for it, then commits wait too). Logs the MQTT connection state on every change
and a stats line every SUPPLY_INGEST_STATS_S (default 30 s); also writes them to
var/monitoring/ingest-<client id>.json for `supplyctl status` and operators.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import queue
import signal
import threading
import time

from services.common.config import Settings, seconds
from services.common.failpoints import failpoint
from services.monitoring.adapters.influx import InfluxWriter
from services.monitoring.adapters.mqtt import MqttConsumer
from services.monitoring.bootstrap import build_context, spool_dir
from services.monitoring.ingest import Ingest, topic_filters

log = logging.getLogger(__name__)

BYTES_PER_READING = 110  # a batch entry's JSON, to size a group before parsing it
# The cyclic garbage collector's thresholds once started. A group allocates a few objects per
# reading (a Reading, its datetime, its line) that die with the group and form no cycles; at
# CPython's default (700, 10, 10) the collector ran some hundred times per group and re-walked
# every long-lived object: 20 % of the ingest's CPU (in-process, load scenario, 25 000-reading
# groups: 85 000 -> 105 000 readings/s). Cycles are still collected, less often.
GC_THRESHOLDS = (50_000, 50, 100)


def warm_alert_path() -> None:
    """Load what the first alert's commit would otherwise import (the event envelope's module and
    pika with it: 80 ms), so that the first alarm after a start is not the slowest."""
    import services.common.messaging  # noqa: F401


def tune_gc() -> None:
    """Move what start-up built (modules, catalogue, zone map) out of the collector's walks and
    collect young objects in larger steps."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class IngestProcess:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.ctx = build_context(settings, pool_size=4, checkpoint_every=0.2)  # WAL copied off the commit path
        cfg = self.ctx.config
        self.client_id = cfg.client_id
        self.writer = InfluxWriter(settings.influx_url, settings.influx_db,
                                   spool_dir(settings, self.client_id), batch_lines=cfg.influx_batch)
        self.ingest = Ingest(self.ctx, self._write_lines, self.client_id)
        self.mqtt = MqttConsumer(settings.mqtt_url, self.client_id,
                                 topic_filters(cfg.mqtt_root, cfg.share_group),
                                 session_expiry_s=cfg.session_expiry_s, receive_max=cfg.receive_max)
        self.stop_event = threading.Event()
        self.stats_every = seconds(settings, "SUPPLY_INGEST_STATS_S", 30, 0.1, 3600)
        self.status_path = settings.var_dir / "monitoring" / f"ingest-{self.client_id}.json"
        self.acked = 0
        self.groups = 0
        self._db_ready = False
        self.pending: queue.Queue = queue.Queue(maxsize=self.ctx.config.write_queue)
        self._next_ensure = 0.0
        self._held_checks = 0

    def _write_lines(self, lines: list[str]) -> None:
        if not self._db_ready and time.monotonic() >= self._next_ensure:
            self._ensure_database()
        self.writer.add(lines)
        self.writer.flush(force=False)  # written, or spooled to fsync'd files: durable either way

    def _ensure_database(self) -> None:
        try:
            self.writer.ensure_database()
            self._db_ready = True
        except Exception as exc:  # noqa: BLE001 - InfluxDB down: the writer spools meanwhile
            self._next_ensure = time.monotonic() + 10  # not one timeout per batch group
            log.warning("influxdb not reachable to create the database; spooling",
                        extra={"error": str(exc)})

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        self._ensure_database()
        self.ingest.refresh_zones(force=True)
        self._check_held()  # zones registered while we were away: their held readings first
        self._warm()
        warm_alert_path()
        tune_gc()
        writer_thread = threading.Thread(target=self._write_loop, name="influx-write-ack", daemon=True)
        writer_thread.start()
        self.mqtt.start()
        log.info("ingest started", extra={"client_id": self.client_id, "topics": self.mqtt.topics,
                                          "influx": f"{self.settings.influx_url}/{self.settings.influx_db}"})
        cfg = self.ctx.config
        max_bytes = cfg.group_readings * BYTES_PER_READING
        next_stats = time.monotonic() + self.stats_every
        next_held = time.monotonic() + cfg.hold_check_s
        last_state = None
        while not self.stop_event.is_set():
            group = self.mqtt.take(max_bytes, cfg.group_wait_s,
                                   timeout=min(0.5, cfg.hold_check_s, self.stats_every))
            if group:
                self._commit(group)
            if time.monotonic() >= next_held:
                next_held = time.monotonic() + cfg.hold_check_s
                self._check_held()
            if self.mqtt.state != last_state:
                last_state = self.mqtt.state
                self._write_status()
            if time.monotonic() >= next_stats:
                next_stats = time.monotonic() + self.stats_every
                self._write_status(log_it=True)
        self.pending.put(None)  # the write stage finishes what is committed, then stops
        writer_thread.join(timeout=60)
        self._shutdown()

    def _retry(self, step, what: str, messages: int) -> bool:
        """Run `step` until it succeeds (True) or the process is stopping (False)."""
        backoff = 0.2
        while True:
            try:
                step()
                return True
            except Exception:
                log.exception(f"ingest {what} failed; retrying without acking", extra={"messages": messages})
                if self.stop_event.wait(backoff):
                    return False  # not acked: the broker redelivers after the restart
                backoff = min(backoff * 2, 10.0)

    def _check_held(self) -> None:
        """Held readings of zones registered since: judged and written like a group; the hold
        trimmed to its bounds every 30 checks."""
        try:
            work = self.ingest.held_work()
            self._held_checks += 1
            if self._held_checks % 30 == 1:
                self.ingest.trim_held()
        except Exception:  # noqa: BLE001 - the next check retries
            log.exception("held readings check failed")
            return
        if work is not None:
            self._commit_work(work)

    def _warm(self) -> None:
        try:
            zones = self.ingest.warm()
        except Exception:  # noqa: BLE001 - the first groups load what they need instead
            log.exception("zone state not preloaded")
            return
        log.info("zone state preloaded", extra={"zones": zones})

    def _commit(self, group) -> None:
        """Stage 1 (this thread): validate, evaluate, commit (alerts and their events included),
        then hand the group to the write stage. Alerts do not wait for InfluxDB."""
        self._commit_work(self.ingest.prepare(group))

    def _commit_work(self, work) -> None:
        group = work.messages
        if not self._retry(lambda: self.ingest.commit(work), "commit", len(group)):
            return
        failpoint("ingest_exit_after_commit")
        while not self.stop_event.is_set():
            try:
                self.pending.put(work, timeout=0.5)  # bounded: InfluxDB slow → commits wait too
                return
            except queue.Full:
                continue

    def _write_loop(self) -> None:
        """Stage 2: write (or spool) each committed group's lines in commit order, then ack its
        messages; when idle, replay the spool once InfluxDB is back."""
        while True:
            try:
                work = self.pending.get(timeout=0.5)
            except queue.Empty:
                try:
                    self.writer.flush(force=False)
                except Exception:
                    log.exception("spool replay failed")
                continue
            if work is None:
                return
            if not self._retry(lambda w=work: self.ingest.write(w), "write", len(work.messages)):
                return
            failpoint("ingest_exit_before_ack")
            self.acked += self.mqtt.ack(work.messages)
            self.groups += 1

    def _write_status(self, log_it: bool = False) -> None:
        data = {"client_id": self.client_id, "mqtt": self.mqtt.state, "pid": os.getpid(),
                "mqtt_connected_at": self.mqtt.connected_at, "cpu_at_connect": self.mqtt.cpu_at_connect,
                "groups": self.groups, "acked": self.acked, **dict(self.ingest.stats),
                "influx": self.writer.stats(), "influx_error": self.writer.last_error,
                "queue": self.mqtt.queue.qsize(), "at": time.time()}
        if log_it:
            log.info("ingest stats", extra=data)
        try:
            self.status_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.status_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, default=str))
            tmp.replace(self.status_path)
        except OSError:
            pass

    def _shutdown(self) -> None:
        log.info("ingest stopping")
        self.mqtt.stop()
        self.writer.close()
        self._write_status(log_it=True)


def run(settings: Settings) -> None:
    IngestProcess(settings).run()

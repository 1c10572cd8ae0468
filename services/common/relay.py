"""The outbox relay: publishes committed outbox rows to RabbitMQ, a batch per AMQP transaction
(the broker has them when the commit returns; ADR 0005), then marks them published. A crash
between the two publishes the rows again on restart: consumers are idempotent by event_id, so
the effect happens once.

On PostgreSQL several relays may run: each claims rows with FOR UPDATE SKIP LOCKED. On SQLite
(one machine, the embedded default) rows are read (a snapshot that takes no write lock), published,
then marked in a short write transaction, so that the relay never holds the database's write lock
while it talks to the broker.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.schema import Table

from services.common.db import READ_ONLY, is_postgres, utcnow
from services.common.doorbell import Doorbell
from services.common.failpoints import failpoint
from services.common.messaging import EventPublisher, PublishError

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, engine: Engine, outbox: Table, publisher: EventPublisher, *,
                 batch: int = 500, idle_sleep: float = 0.05, max_sleep: float = 2.0,
                 doorbell: Doorbell | None = None):
        self.engine = engine
        self.doorbell = doorbell
        self.outbox = outbox
        self.publisher = publisher
        self.batch = batch
        self.idle_sleep = idle_sleep
        self.max_sleep = max_sleep
        self.published_total = 0

    def _pending(self, conn, lock: bool):
        q = (select(self.outbox.c.id, self.outbox.c.event_id, self.outbox.c.exchange,
                    self.outbox.c.routing_key, self.outbox.c.body)
             .where(self.outbox.c.published_at.is_(None))
             .order_by(self.outbox.c.id).limit(self.batch))
        if lock:
            q = q.with_for_update(skip_locked=True)
        return conn.execute(q).all()

    def _publish(self, rows) -> None:
        self.publisher.publish_batch([(r.exchange, r.routing_key, r.body, r.event_id) for r in rows])
        failpoint("relay_after_publish")

    def _mark(self, conn, ids: list[int]) -> None:
        conn.execute(update(self.outbox).where(self.outbox.c.id.in_(ids))
                     .values(published_at=utcnow()))

    def run_once(self) -> int:
        """Publish one batch; returns how many rows were published."""
        if is_postgres(self.engine):
            with self.engine.begin() as conn:
                rows = self._pending(conn, lock=True)
                if rows:
                    self._publish(rows)
                    self._mark(conn, [r.id for r in rows])
        else:
            with self.engine.connect() as conn:
                with conn.execution_options(**{READ_ONLY: True}).begin():
                    rows = self._pending(conn, lock=False)
                if rows:
                    self._publish(rows)
                    with conn.execution_options(**{READ_ONLY: False}).begin():
                        self._mark(conn, [r.id for r in rows])
        self.published_total += len(rows)
        return len(rows)

    def run(self, stop: threading.Event) -> None:
        """Publish until STOP; idle, wait for the doorbell (a commit with outbox rows) or the idle
        poll, whichever comes first; after an error, back off without listening to the bell."""
        sleep = self.idle_sleep
        while not stop.is_set():
            failed = True
            try:
                n = self.run_once()
                sleep, failed = (0 if n >= self.batch else self.idle_sleep), False
            except PublishError as exc:
                log.warning("relay: publish failed, will retry", extra={"error": str(exc)})
                sleep = min(max(sleep * 2, 0.2), self.max_sleep)
            except Exception:
                log.exception("relay: unexpected error, will retry")
                sleep = min(max(sleep * 2, 0.2), self.max_sleep)
            if not sleep:
                continue
            if failed or self.doorbell is None:
                stop.wait(sleep)
            else:
                self.doorbell.wait(sleep)


def pending_count(engine: Engine, outbox: Table) -> int:
    from sqlalchemy import func

    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(outbox)
                            .where(outbox.c.published_at.is_(None))).scalar_one()


def _stop_on_signals(stop: threading.Event, grace: float) -> None:
    """SIGTERM/SIGINT: finish the batch in hand, then stop. If the relay is still blocked
    `grace` seconds later (a broker that does not answer, a database lock held elsewhere), log
    where it is and exit: nothing is lost, since rows not yet marked are published again by the
    next relay and consumers drop the repeats."""
    main = threading.main_thread().ident

    def leave() -> None:
        frame = sys._current_frames().get(main)
        log.error("relay did not stop within %.0f s of the signal; leaving now", grace,
                  extra={"stack": "".join(traceback.format_stack(frame)) if frame else ""})
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(0)

    def on_signal(*_) -> None:
        if not stop.is_set():
            stop.set()
            timer = threading.Timer(grace, leave)
            timer.daemon = True
            timer.start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def serve_outbox(settings, outbox: Table, stop: threading.Event) -> None:
    """One service's relay until STOP: schema at head, exchanges declared, then publish."""
    from services.common.db import make_engine
    from services.common.migrate import check_at_head

    engine = make_engine(settings.database_url, pool_size=2)
    check_at_head(settings.service, engine)
    publisher = EventPublisher(settings.amqp_url)
    while not stop.is_set():
        try:
            publisher.declare((settings.service,))
            break
        except Exception as exc:  # noqa: BLE001 - broker not up yet: keep trying
            log.warning("relay: broker not reachable yet", extra={"error": repr(exc), "outbox": settings.service})
            stop.wait(2)
    log.info("relay started", extra={"batch": settings.relay_batch, "outbox": settings.service})
    doorbell = Doorbell(engine.url)
    try:
        OutboxRelay(engine, outbox, publisher, batch=settings.relay_batch,
                    idle_sleep=settings.relay_idle, doorbell=doorbell).run(stop)
    finally:
        doorbell.close()
        publisher.close()
        engine.dispose()
    log.info("relay stopped", extra={"outbox": settings.service})


def run_relay(settings, tables: dict[str, Table]) -> None:
    """The relay process of one service: publish until SIGTERM."""
    stop = threading.Event()
    _stop_on_signals(stop, settings.relay_stop_grace)
    serve_outbox(settings, tables["outbox"], stop)


def run_relays(outboxes: dict[str, tuple[object, Table]]) -> int:
    """One process relaying several services' outboxes, a thread each ({service: (settings,
    outbox)}): one interpreter instead of one per service (issue #16 item 5). A thread that ends
    before the process is told to stop (schema behind, an error outside the publish loop) stops
    the others and the process exits 1, so that the failure is seen, never a silent gap."""
    stop = threading.Event()
    _stop_on_signals(stop, max(settings.relay_stop_grace for settings, _ in outboxes.values()))
    died: list[str] = []

    def serve(service: str, settings, outbox: Table) -> None:
        try:
            serve_outbox(settings, outbox, stop)
        except BaseException:
            log.exception("relay of %s failed; stopping every relay of this process", service,
                          extra={"outbox": service})
        if not stop.is_set():
            died.append(service)
            stop.set()

    threads = [threading.Thread(target=serve, args=(service, settings, outbox), name=f"relay-{service}")
               for service, (settings, outbox) in outboxes.items()]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)  # a timed join: the main thread stays free for SIGTERM's handler
    if died:
        log.error("relay process exits: the relay of %s stopped", ", ".join(died))
        return 1
    return 0

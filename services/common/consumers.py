"""Idempotent event consumption, shared by every service's nameko worker.

The effect of an event and the record that it was processed commit in one transaction, so a
redelivered event (worker killed before its ack, relay publishing twice) changes nothing.
A message that keeps failing is dead-lettered with its error; nothing is silently dropped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from services.common.db import UnitOfWork, mark_processed, utcnow
from services.common.errors import DomainError
from services.common.failpoints import failpoint
from services.common.logs import correlation_id
from services.common.messaging import EnvelopeError, parse_envelope

log = logging.getLogger(__name__)

Handler = Callable[[UnitOfWork, dict], None]
DeadLetterSink = Callable[[str, str | None, str, str], None]


def consume(uow_factory: Callable[[], UnitOfWork], consumer: str, body, handler: Handler,
            dead_letter: DeadLetterSink, *, attempts: int = 3, backoff: float = 0.2) -> str:
    """Handle one delivered event. Returns 'processed', 'duplicate' or 'dead_lettered'.

    A DomainError (the event itself is wrong for our state) is not retried; any other error is
    retried `attempts` times, then dead-lettered. If dead-lettering itself fails the exception
    propagates, so the caller leaves the message on the queue.
    """
    raw = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, default=str)
    try:
        envelope = parse_envelope(body)
    except EnvelopeError as exc:
        log.error("malformed event dead-lettered", extra={"consumer": consumer, "error": str(exc)})
        dead_letter(consumer, None, raw, f"malformed envelope: {exc}")
        return "dead_lettered"
    token = correlation_id.set(envelope.get("correlation_id") or envelope["event_id"])
    try:
        error = ""
        for attempt in range(1, attempts + 1):
            try:
                with uow_factory() as uow:
                    if not mark_processed(uow, consumer, envelope["event_id"]):
                        return "duplicate"
                    handler(uow, envelope)
                    uow.commit()
                failpoint("worker_exit_after_commit")
                log.info("event handled", extra={"consumer": consumer, "event_id": envelope["event_id"],
                                                 "event_type": envelope["event_type"]})
                return "processed"
            except DomainError as exc:
                error = f"{type(exc).__name__}: {exc.message}"
                break
            except Exception as exc:  # noqa: BLE001 - retried, then dead-lettered with its error
                error = f"{type(exc).__name__}: {exc}"
                log.warning("event handler failed", extra={"consumer": consumer, "attempt": attempt,
                                                           "error": error})
                if attempt < attempts:
                    time.sleep(backoff * attempt)
        log.error("event dead-lettered", extra={"consumer": consumer,
                                                "event_id": envelope["event_id"], "error": error})
        dead_letter(consumer, envelope["event_id"], raw, error)
        return "dead_lettered"
    finally:
        correlation_id.reset(token)


def store_dead_letter(uow_factory: Callable[[], UnitOfWork]) -> DeadLetterSink:
    """A sink that keeps dead letters in the service's own database (table dead_letters)."""

    def sink(consumer: str, event_id: str | None, body: str, error: str) -> None:
        with uow_factory() as uow:
            assert uow.conn is not None
            uow.conn.execute(uow.tables["dead_letters"].insert().values(
                consumer=consumer, event_id=event_id, body=body, error=error, failed_at=utcnow()))
            uow.commit()

    return sink

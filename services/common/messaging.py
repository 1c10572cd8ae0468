"""Events on RabbitMQ: the envelope, the topology, and a publisher that returns only once the
broker has taken the message (publisher confirms; batches in AMQP transactions, ADR 0005).

Exchanges are nameko style (`<service>.events`, topic, durable) so that nameko
`@event_handler`s receive what the relay publishes. Consumer queues are declared up front from
SUBSCRIPTIONS with exactly the arguments nameko uses, so an event published before its consumer
first starts waits in a durable queue instead of being dropped by the exchange.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pika
from pika.exceptions import AMQPError, NackError, UnroutableError

log = logging.getLogger(__name__)

ENVELOPE_FIELDS = ("event_id", "event_type", "occurred_at", "source", "schema_version",
                   "correlation_id", "payload")


class EnvelopeError(ValueError):
    pass


def make_envelope(source: str, event_type: str, payload: dict[str, Any], *,
                  correlation_id: str = "", schema_version: int = 1,
                  occurred_at: datetime | None = None, event_id: str | None = None) -> dict:
    occurred = (occurred_at or datetime.now(UTC)).astimezone(UTC)
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "occurred_at": occurred.isoformat().replace("+00:00", "Z"),
        "source": source,
        "schema_version": schema_version,
        "correlation_id": correlation_id or "",
        "payload": payload,
    }


def parse_envelope(body: Any) -> dict:
    """Validate an envelope (a dict, or JSON bytes/str). Raises EnvelopeError saying what is wrong."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EnvelopeError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise EnvelopeError("envelope must be a JSON object")
    missing = [f for f in ENVELOPE_FIELDS if f not in body]
    if missing:
        raise EnvelopeError(f"envelope missing {', '.join(missing)}")
    try:
        uuid.UUID(str(body["event_id"]))
    except ValueError:
        raise EnvelopeError(f"event_id is not a UUID: {body['event_id']!r}") from None
    if not isinstance(body["payload"], dict):
        raise EnvelopeError("payload must be an object")
    if not isinstance(body["schema_version"], int):
        raise EnvelopeError("schema_version must be an integer")
    return body


@dataclass(frozen=True)
class Subscription:
    """`consumer`'s nameko handler `method` listens to `event_type` from `source`."""

    source: str
    event_type: str
    consumer: str
    method: str

    @property
    def queue(self) -> str:
        # nameko SERVICE_POOL naming: evt-<source>-<event_type>--<service>.<method>
        return f"evt-{self.source}-{self.event_type}--{self.consumer}.{self.method}"


def all_subscriptions() -> tuple[Subscription, ...]:
    """Who listens to what: each service declares its own in services/<name>/subscriptions.py
    (the worker's @event_handlers must match it; a test checks that)."""
    import importlib

    from services.common.config import SERVICES

    subs: list[Subscription] = []
    for service in (*SERVICES, "market"):
        try:
            module = importlib.import_module(f"services.{service}.subscriptions")
        except ModuleNotFoundError:
            continue
        subs.extend(module.SUBSCRIPTIONS)
    return tuple(subs)


def exchange_of(service: str) -> str:
    return f"{service}.events"


def declare_topology(channel, sources: tuple[str, ...] = (),
                     subscriptions: tuple[Subscription, ...] | None = None) -> None:
    if subscriptions is None:
        subscriptions = all_subscriptions()
    for source in sorted(set(sources) | {s.source for s in subscriptions}):
        channel.exchange_declare(exchange_of(source), exchange_type="topic", durable=True)
    for sub in subscriptions:
        channel.queue_declare(sub.queue, durable=True, auto_delete=False, exclusive=False)
        channel.queue_bind(sub.queue, exchange_of(sub.source), routing_key=sub.event_type)



class PublishError(RuntimeError):
    pass


class EventPublisher:
    """Blocking pika publisher with confirms. publish() returns only once the broker has taken
    responsibility for the message (persisted to a durable queue, or confirmed unroutable-free)."""

    def __init__(self, amqp_url: str):
        self.amqp_url = amqp_url
        self._conn: pika.BlockingConnection | None = None
        self._channel = None
        self._tx_channel = None  # publish_batch: a transactional channel

    def _connect(self):
        if self._conn is None or self._conn.is_closed:
            params = pika.URLParameters(self.amqp_url)
            params.heartbeat = 30
            params.blocked_connection_timeout = 30
            params.connection_attempts = 1
            self._conn = pika.BlockingConnection(params)
            self._channel = self._conn.channel()
            self._channel.confirm_delivery()
        return self._channel

    def declare(self, sources: tuple[str, ...] = ()) -> None:
        declare_topology(self._connect(), sources)

    @staticmethod
    def _properties(message_id: str, headers: dict | None) -> pika.BasicProperties:
        return pika.BasicProperties(
            content_type="application/json", content_encoding="utf-8",
            delivery_mode=pika.DeliveryMode.Persistent, message_id=message_id,
            headers=headers or {})

    def publish(self, exchange: str, routing_key: str, body: str | bytes, message_id: str,
                headers: dict | None = None) -> None:
        channel = self._connect()
        try:
            channel.basic_publish(
                exchange=exchange, routing_key=routing_key,
                body=body.encode() if isinstance(body, str) else body,
                properties=self._properties(message_id, headers),
            )
        except (NackError, UnroutableError) as exc:
            raise PublishError(f"broker refused {routing_key} {message_id}: {exc}") from exc
        except AMQPError as exc:
            self.close()
            raise PublishError(f"broker connection failed: {exc!r}") from exc

    def publish_batch(self, messages: list[tuple[str, str, str | bytes, str]]) -> None:
        """Publish (exchange, routing_key, body, message_id) messages in one AMQP transaction:
        returns once the broker has taken all of them (RabbitMQ transfers responsibility for
        persistent messages on tx.commit), else raises PublishError and the caller publishes
        the batch again (a crash may have let part of it through: consumers are idempotent).
        One round trip for the batch instead of one confirm per message (ADR 0005)."""
        self._connect()
        try:
            if self._tx_channel is None or self._tx_channel.is_closed:
                self._tx_channel = self._conn.channel()
                self._tx_channel.tx_select()
            for exchange, routing_key, body, message_id in messages:
                self._tx_channel.basic_publish(
                    exchange=exchange, routing_key=routing_key,
                    body=body.encode() if isinstance(body, str) else body,
                    properties=self._properties(message_id, None))
            self._tx_channel.tx_commit()
        except AMQPError as exc:
            self.close()
            raise PublishError(f"broker connection failed: {exc!r}") from exc

    def ping(self) -> None:
        """Raises unless the broker answers (a dead connection is noticed and reopened)."""
        self._connect()
        try:
            self._conn.process_data_events(0)
        except AMQPError:
            self.close()
            self._connect()

    def close(self) -> None:
        try:
            if self._conn is not None and self._conn.is_open:
                self._conn.close()
        except AMQPError:
            pass
        self._conn = None
        self._channel = None
        self._tx_channel = None

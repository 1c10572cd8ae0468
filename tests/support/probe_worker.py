"""A nameko worker that plays a downstream service in tests: it subscribes to events with real
nameko @event_handlers and applies them through the platform's idempotent `consume`, recording
every delivery and every effect in its own SQLite file.

    python tests/support/probe_worker.py <sqlite path> <source>:<event_type> [...]

Env: AMQP_URL. deliveries(event_id, event_type) counts what RabbitMQ delivered (duplicates
included); effects(event_id) is what the idempotent handler applied (once per event).
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    import eventlet

    eventlet.monkey_patch()

from nameko.events import event_handler  # noqa: E402  (after monkey_patch)
from sqlalchemy import Column, Integer, MetaData, String, Table, insert  # noqa: E402

from services.common.config import load_settings  # noqa: E402
from services.common.consumers import consume, store_dead_letter  # noqa: E402
from services.common.db import UnitOfWork, make_engine, platform_tables  # noqa: E402
from services.common.logs import setup_logging  # noqa: E402
from services.common.nameko_support import run_worker  # noqa: E402

metadata = MetaData()
tables = platform_tables(metadata)
deliveries = Table("deliveries", metadata, Column("id", Integer, primary_key=True),
                   Column("event_id", String(64)), Column("event_type", String(100)))
effects = Table("effects", metadata, Column("id", Integer, primary_key=True),
                Column("event_id", String(64)), Column("event_type", String(100)),
                Column("payload", String))


def build_service(db_path: str, subscriptions: list[tuple[str, str]]) -> type:
    engine = make_engine(f"sqlite:///{db_path}")
    metadata.create_all(engine)
    tables.update({"deliveries": deliveries, "effects": effects})

    def uow() -> UnitOfWork:
        return UnitOfWork(engine, tables, "probe")

    sink = store_dead_letter(uow)

    def make_handler(source: str, event_type: str):
        def handler(self, body):
            event_id = body.get("event_id") if isinstance(body, dict) else None
            with engine.begin() as conn:
                conn.execute(insert(deliveries).values(event_id=str(event_id), event_type=event_type))

            def apply(u: UnitOfWork, envelope: dict) -> None:
                import json

                u.conn.execute(insert(effects).values(
                    event_id=envelope["event_id"], event_type=envelope["event_type"],
                    payload=json.dumps(envelope["payload"], ensure_ascii=False)))

            consume(uow, f"probe.{event_type}", body, apply, sink)

        handler.__name__ = f"on_{source}_{event_type}"
        return event_handler(source, event_type, requeue_on_error=True)(handler)

    attrs = {"name": "probe"}
    for source, event_type in subscriptions:
        attrs[f"on_{source}_{event_type}"] = make_handler(source, event_type)
    return type("Probe", (), attrs)


if __name__ == "__main__":
    settings = load_settings("tools")
    setup_logging("probe", "worker", "INFO")
    subs = [tuple(a.split(":", 1)) for a in sys.argv[2:]]
    run_worker([build_service(sys.argv[1], subs)], settings)

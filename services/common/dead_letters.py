"""Inspect and replay events a consumer could not handle (kept in its service's dead_letters
table with the error). Replay puts the original message back on the consumer's own queue."""

from __future__ import annotations

import importlib

from rich.console import Console
from rich.table import Table
from sqlalchemy import select, update

from services.common.config import load_settings
from services.common.db import make_engine, utcnow
from services.common.messaging import EventPublisher, all_subscriptions


def show_or_replay(service: str, replay_id: int | None, console: Console) -> None:
    settings = load_settings(service)
    tables = importlib.import_module(f"services.{service}.adapters.schema").tables
    dead = tables["dead_letters"]
    engine = make_engine(settings.database_url)
    if replay_id is None:
        with engine.connect() as conn:
            rows = conn.execute(select(dead).order_by(dead.c.id)).all()
        t = Table(title=f"{service} dead letters / 死信")
        for col in ("id", "consumer", "event_id", "failed at", "replayed", "error"):
            t.add_column(col)
        for r in rows:
            t.add_row(str(r.id), r.consumer, r.event_id or "", r.failed_at.isoformat(timespec="seconds"),
                      "yes" if r.replayed_at else "", r.error[:120])
        console.print(t)
        return
    with engine.connect() as conn:
        row = conn.execute(select(dead).where(dead.c.id == replay_id)).first()
    if row is None:
        raise SystemExit(f"no dead letter {replay_id} in {service}")
    sub = next((s for s in all_subscriptions() if f"{s.consumer}.{s.method}" == row.consumer), None)
    if sub is None:
        raise SystemExit(f"consumer {row.consumer} has no queue in services/*/subscriptions.py")
    publisher = EventPublisher(settings.amqp_url)
    publisher.publish("", sub.queue, row.body, row.event_id or f"dead-letter-{row.id}")
    publisher.close()
    with engine.begin() as conn:
        conn.execute(update(dead).where(dead.c.id == replay_id).values(replayed_at=utcnow()))
    console.print(f"replayed dead letter {replay_id} to queue {sub.queue}")

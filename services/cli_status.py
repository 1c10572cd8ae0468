"""The figures `supplyctl status` shows besides the processes: each outbox's lag, each event
queue's depth and consumers, the dead letters, the last reading per depot, the notifications
waiting and given up per channel. Each figure is read
on its own and, if its source does not answer, shown as "? (reason)" instead."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from services.common.config import database_url, load_settings
from services.common.db import make_engine, utcnow


def soft(read: Callable[[], object]) -> object:
    """The figure, or "? (reason)" when its source does not answer."""
    try:
        return read()
    except Exception as exc:  # noqa: BLE001 - any failure is shown, never raised
        reason = str(exc).splitlines()[0][:60] if str(exc) else type(exc).__name__
        return f"? ({reason})"


def age(since: datetime | None, now: datetime | None = None) -> str:
    if since is None:
        return ""
    if since.tzinfo is None:  # an aggregate's value, read back without the column's UTC
        since = since.replace(tzinfo=UTC)
    s = max(0, int(((now or utcnow()) - since).total_seconds()))
    return f"{s} s" if s < 120 else f"{s // 60} min" if s < 7200 else f"{s // 3600} h"


def _tables(service: str) -> dict:
    return importlib.import_module(f"services.{service}.adapters.schema").tables


@contextmanager
def _engine(service: str) -> Iterator[Engine]:
    url = database_url(service, dict(os.environ))
    if url.startswith("sqlite") and not os.path.exists(url.split("///", 1)[-1]):
        raise FileNotFoundError("no database yet / 尚无数据库 (supplyctl migrate)")
    engine = make_engine(url, pool_size=1)
    try:
        yield engine
    finally:
        engine.dispose()


def outbox_lag(service: str) -> tuple[int, datetime | None]:
    """Rows not yet relayed, and when the oldest of them was written."""
    outbox = _tables(service)["outbox"]
    with _engine(service) as engine, engine.connect() as conn:
        row = conn.execute(select(func.count(), func.min(outbox.c.created_at))
                           .where(outbox.c.published_at.is_(None))).one()
    return row[0], row[1]


def outbox_table(services: list[str]) -> Table:
    t = Table(title="outboxes, not yet relayed / 发件箱积压")
    for col in ("service", "unrelayed", "oldest"):
        t.add_column(col)
    for service in services:
        lag = soft(lambda s=service: outbox_lag(s))
        if isinstance(lag, tuple):
            t.add_row(service, str(lag[0]), age(lag[1]))
        else:
            t.add_row(service, str(lag), "")
    return t


def queues_table() -> Table:
    """Depth and consumers of every consumer's queue (services/*/subscriptions.py), asked of the
    broker with a passive declare: any account, any vhost, no management plugin needed."""
    import pika

    from services.common.messaging import all_subscriptions

    t = Table(title="event queues / 事件队列")
    for col in ("queue", "messages", "consumers"):
        t.add_column(col)
    queues = sorted({s.queue for s in all_subscriptions()})
    params = pika.URLParameters(load_settings("tools").amqp_url)
    params.socket_timeout = params.blocked_connection_timeout = 2
    params.connection_attempts = 1
    conn = soft(lambda: pika.BlockingConnection(params))
    if isinstance(conn, str):
        t.add_row("(all)", conn, "")
        return t
    try:
        channel = conn.channel()
        for queue in queues:
            try:
                ok = channel.queue_declare(queue, passive=True).method
                t.add_row(queue, str(ok.message_count), str(ok.consumer_count))
            except pika.exceptions.ChannelClosedByBroker as exc:
                reason = "no such queue yet / 队列尚未建立" if exc.reply_code == 404 else exc.reply_text[:60]
                t.add_row(queue, f"? ({reason})", "")
                channel = conn.channel()
    finally:
        conn.close()
    return t


def dead_letters(service: str) -> tuple[int, int]:
    """(not yet replayed, all) in the service's dead_letters."""
    dead = _tables(service)["dead_letters"]
    with _engine(service) as engine, engine.connect() as conn:
        row = conn.execute(select(func.count().filter(dead.c.replayed_at.is_(None)), func.count())
                           .select_from(dead)).one()
    return row[0], row[1]


def ingest_rejects() -> tuple[int, datetime | None]:
    rejects = _tables("monitoring")["ingest_rejects"]
    with _engine("monitoring") as engine, engine.connect() as conn:
        row = conn.execute(select(func.count(), func.max(rejects.c.received_at))).one()
    return row[0], row[1]


def dead_letters_table(services: list[str]) -> Table:
    t = Table(title="dead letters / 死信")
    for col in ("service", "kind", "waiting", "all", "latest"):
        t.add_column(col)
    for service in services:
        counts = soft(lambda s=service: dead_letters(s))
        waiting, total = counts if isinstance(counts, tuple) else (counts, "")
        t.add_row(service, "events (supplyctl dead-letters)", str(waiting), str(total), "")
    if "monitoring" in services:
        rejects = soft(ingest_rejects)
        if isinstance(rejects, tuple):
            t.add_row("monitoring", "MQTT readings refused", "", str(rejects[0]), age(rejects[1]))
        else:
            t.add_row("monitoring", "MQTT readings refused", "", str(rejects), "")
    return t


def notifications() -> list[tuple[str, int, int, datetime | None, str]]:
    """Per channel of notify's outbox: (channel, waiting to be sent, given up, latest give-up,
    its error). Given up: not delivered within NOTIFY_DEAD_AFTER_DAYS; nobody was told."""
    n = _tables("notify")["notifications"]
    with _engine("notify") as engine, engine.connect() as conn:
        rows = conn.execute(
            select(n.c.channel, func.count().filter(n.c.state == "pending"),
                   func.count().filter(n.c.state == "dead"),
                   func.max(n.c.created_at).filter(n.c.state == "dead"))
            .group_by(n.c.channel).order_by(n.c.channel)).all()
        out = []
        for channel, pending, dead, latest in rows:
            error = conn.execute(select(n.c.last_error).where(n.c.channel == channel, n.c.state == "dead")
                                 .order_by(n.c.created_at.desc()).limit(1)).scalar() if dead else ""
            out.append((channel, pending, dead, latest, " ".join((error or "").split())[:60]))
    return out


def notifications_table() -> Table:
    t = Table(title="notifications / 消息推送")
    for col in ("channel", "waiting", "given up", "latest given up", "last error"):
        t.add_column(col)
    rows = soft(notifications)
    if isinstance(rows, str):
        t.add_row("(all)", rows, "", "", "")
        return t
    for channel, pending, dead, latest, error in rows:
        t.add_row(channel, str(pending), f"[red]{dead}[/red]" if dead else "0", age(latest), error)
    return t


def last_readings() -> list[tuple[str, int, datetime | None]]:
    """(depot, sensors, newest reading) from monitoring's sensor rows."""
    sensors = _tables("monitoring")["sensors"]
    with _engine("monitoring") as engine, engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(sensors.c.depot, func.count(), func.max(sensors.c.last_ts))
            .group_by(sensors.c.depot).order_by(sensors.c.depot))]


def readings_table() -> Table:
    t = Table(title="last reading per depot / 各仓库最新读数")
    for col in ("depot", "sensors", "last reading", "age"):
        t.add_column(col)
    rows = soft(last_readings)
    if isinstance(rows, str):
        t.add_row("(all)", rows, "", "")
        return t
    for depot, n, last in rows:
        t.add_row(depot, str(n), last.isoformat(timespec="seconds") if last else "none / 无", age(last))
    return t


def figures(services: list[str]) -> list[Table]:
    with_outbox = [s for s in services
                   if isinstance(tables := soft(lambda s=s: _tables(s)), dict) and "outbox" in tables]
    shown = [outbox_table(with_outbox), queues_table(), dead_letters_table(with_outbox),
             readings_table()]
    return shown + ([notifications_table()] if "notify" in services else [])

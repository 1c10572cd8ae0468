"""Notify's use cases: store the notifications of an event (in the transaction that marks it
processed), and send those that are due, retrying with backoff until the channel takes them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine

from services.common.db import UnitOfWork, utcnow
from services.common.errors import InvalidInput
from services.notify.adapters import outbox
from services.notify.adapters.schema import tables
from services.notify.adapters.senders import SendError
from services.notify.domain.delivery import RetryPolicy, notification_id
from services.notify.domain.formats import Message, render
from services.notify.domain.notices import Notice, NoticeError, notice_from_event
from services.notify.domain.routing import Channel, route

log = logging.getLogger(__name__)

Send = Callable[[Channel, Message], None]


@dataclass
class NotifyContext:
    engine: Engine
    channels: list[Channel]
    retry: RetryPolicy
    send: Send
    lease: timedelta = timedelta(seconds=60)  # > the longest send (HTTP timeout, SMTP)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, tables, "notify")


def record_notices(ctx: NotifyContext, uow: UnitOfWork, envelope: dict) -> int:
    """One pending notification per channel that wants this event; returns how many."""
    try:
        notice = notice_from_event(envelope)
    except NoticeError as exc:
        raise InvalidInput("payload", str(exc)) from None
    now = utcnow()
    rows = [{"notification_id": notification_id(notice.event_id, c.id), "channel": c.id,
             "event_id": notice.event_id, "event_type": notice.event_type, "notice": notice.to_dict(),
             "state": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
            for c in route(notice, ctx.channels)]
    return outbox.enqueue(uow, rows)


def send_due(ctx: NotifyContext, limit: int = 100) -> dict[str, int]:
    """Try every due notification once. A channel that fails is not tried again in this round:
    its other notifications wait for the next one."""
    now = utcnow()
    by_id = {c.id: c for c in ctx.channels}
    failed_channels: set[str] = set()
    done = {"sent": 0, "failed": 0, "dead": 0}
    for row in outbox.claim_due(ctx.engine, now, ctx.lease, limit):
        channel = by_id.get(row["channel"])
        attempts = row["attempts"] + 1
        if row["channel"] in failed_channels:
            outbox.release(ctx.engine, row["notification_id"], now)
            continue
        try:
            if channel is None:
                raise SendError(f"channel {row['channel']!r} is no longer configured / 通道已不在配置中")
            ctx.send(channel, render(Notice.from_dict(row["notice"]), channel.type, row["notification_id"]))
        except SendError as exc:
            failed_channels.add(row["channel"])
            dead = channel is None or ctx.retry.is_dead(row["created_at"], utcnow())
            retry_at = None if dead else utcnow() + timedelta(seconds=ctx.retry.delay(attempts))
            outbox.mark_failed(ctx.engine, row["notification_id"], attempts, str(exc), retry_at)
            done["dead" if dead else "failed"] += 1
            log.log(logging.ERROR if dead else logging.WARNING,
                    "notification dead-lettered / 通知投递失败已放弃" if dead else "notification send failed; will retry",
                    extra={"notification_id": row["notification_id"], "channel": row["channel"],
                           "event_type": row["event_type"], "attempts": attempts, "error": str(exc),
                           "retry_at": retry_at.isoformat() if retry_at else None})
            continue
        outbox.mark_sent(ctx.engine, row["notification_id"], attempts, utcnow())
        done["sent"] += 1
    if done["dead"]:
        log.error("notifications dead-lettered / 通知死信", extra={"dead_total": outbox.counts(ctx.engine).get("dead", 0)})
    return done

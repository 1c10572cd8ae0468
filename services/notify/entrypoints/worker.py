"""Notify's nameko worker: the events people are told of (subscriptions.py) become pending
notifications in the same transaction that marks them processed; a timer sends what is due
(NOTIFY_SEND_INTERVAL_MS)."""

from __future__ import annotations

import logging

from nameko.events import event_handler
from nameko.timer import timer

from services.common.config import Settings
from services.common.nameko_support import ServiceDatabase, run_worker
from services.notify import handlers
from services.notify.bootstrap import build_context

log = logging.getLogger(__name__)


def make_service(settings: Settings) -> type:
    ctx, interval = build_context(settings)

    def record(uow, envelope):
        handlers.record_notices(ctx, uow, envelope)

    class NotifyWorker:
        name = "notify"
        events = ServiceDatabase(lambda: ctx.uow, "notify")

        @event_handler("monitoring", "alert_raised", requeue_on_error=True)
        def on_alert_raised(self, body):
            self.events.handle("on_alert_raised", body, record)

        @event_handler("monitoring", "alert_cleared", requeue_on_error=True)
        def on_alert_cleared(self, body):
            self.events.handle("on_alert_cleared", body, record)

        @event_handler("reports", "deadline_missed", requeue_on_error=True)
        def on_deadline_missed(self, body):
            self.events.handle("on_deadline_missed", body, record)

        @event_handler("reports", "daily_report_ready", requeue_on_error=True)
        def on_daily_report_ready(self, body):
            self.events.handle("on_daily_report_ready", body, record)

        @timer(interval=interval)
        def send_due(self):
            try:
                while sum(handlers.send_due(ctx).values()) >= 100:  # a full round: more may be due
                    pass
            except Exception:  # the timer must keep ticking; the next tick retries
                log.exception("notification sender round failed")

    return NotifyWorker


def run(settings: Settings) -> None:
    run_worker([make_service(settings)], settings)

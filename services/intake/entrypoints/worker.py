"""Intake's nameko worker: closes demands from logistics' delivery results."""

from __future__ import annotations

from nameko.events import event_handler

from services.common.config import Settings
from services.common.nameko_support import ServiceDatabase, run_worker
from services.intake import handlers
from services.intake.bootstrap import build_context


def make_service(settings: Settings) -> type:
    ctx = build_context(settings, pool_size=4)

    class IntakeWorker:
        name = "intake"
        events = ServiceDatabase(lambda: ctx.uow, "intake")

        @event_handler("logistics", "delivery_confirmed", requeue_on_error=True)
        def on_delivery_confirmed(self, body):
            self.events.handle("on_delivery_confirmed", body,
                               lambda uow, env: handlers.apply_delivery_results(ctx, uow, env["payload"]))

    return IntakeWorker


def run(settings: Settings) -> None:
    run_worker([make_service(settings)], settings)

"""Intake's nameko worker: closes demands from logistics' delivery results, rolls the demands an
approved plan left out, follows the county's cut-off from allocation's policy, and turns periodic
special needs (chronic medicine) into demands when they fall due."""

from __future__ import annotations

import logging

from nameko.events import event_handler
from nameko.timer import timer
from sqlalchemy.exc import IntegrityError

from services.common.config import Settings
from services.common.nameko_support import ServiceDatabase, run_worker
from services.intake.bootstrap import build_context
from services.intake.config import periodic_check_s
from services.intake.handlers import demands, policy, special_needs

log = logging.getLogger(__name__)


def make_service(settings: Settings) -> type:
    ctx = build_context(settings, pool_size=4)
    check_every = periodic_check_s(settings)

    class IntakeWorker:
        name = "intake"
        events = ServiceDatabase(lambda: ctx.uow, "intake")

        @event_handler("logistics", "delivery_confirmed", requeue_on_error=True)
        def on_delivery_confirmed(self, body):
            self.events.handle("on_delivery_confirmed", body,
                               lambda uow, env: demands.apply_delivery_results(ctx, uow, env["payload"]))

        @event_handler("allocation", "plan_approved", requeue_on_error=True)
        def on_plan_approved(self, body):
            self.events.handle("on_plan_approved", body,
                               lambda uow, env: demands.roll_unplanned_demands(ctx, uow, env["payload"]))

        @event_handler("allocation", "policy_changed", requeue_on_error=True)
        def on_policy_changed(self, body):
            self.events.handle("on_policy_changed", body,
                               lambda uow, env: policy.apply_policy_changed(ctx, uow, env["payload"]))

        @timer(interval=check_every)
        def create_periodic_demands(self):
            try:
                with ctx.uow() as uow:
                    created = special_needs.create_due_special_need_demands(ctx, uow)
                    uow.commit()
            except IntegrityError:
                return  # another worker created them first
            if created:
                log.info("periodic special-need demands created", extra={"count": len(created)})

    return IntakeWorker


def run(settings: Settings) -> None:
    run_worker([make_service(settings)], settings)

"""Logistics' nameko worker: donations become receipts, requesters' drop points are kept,
approved plans are reserved, picked and routed, spoilage alerts quarantine lots.

Routing (PyVRP) runs in a native thread (eventlet.tpool) so that the worker's event loop keeps
serving other events and the broker's heartbeats while the solver works; the database reads
and writes around it stay on the green thread. A timer routes any plan left picked but not yet
dispatched (a worker killed mid-routing, a plan whose picks changed) and re-checks reserve
floors (expiry moves stock out of the usable count without any ledger line).
"""

from __future__ import annotations

import logging

from nameko.events import event_handler
from nameko.timer import timer

from services.common.config import Settings, seconds
from services.common.nameko_support import ServiceDatabase, run_worker
from services.logistics.bootstrap import build_context
from services.logistics.domain.trip_building import build_trips
from services.logistics.handlers import dispatch, ledger, receipts, sites, stock

log = logging.getLogger(__name__)


def make_service(settings: Settings) -> type:
    ctx = build_context(settings, pool_size=4)
    poll = seconds(settings, "SUPPLY_ROUTING_POLL_SECONDS", 5, 0.1, 600)

    def solve_off_loop(*args, **kwargs):
        from eventlet import tpool

        return tpool.execute(build_trips, *args, **kwargs)

    routing: set[str] = set()  # plans this process is routing now (handler and timer)

    def route(plan_id: str) -> None:
        if plan_id in routing:
            return
        routing.add(plan_id)
        try:
            if dispatch.route_plan(ctx, plan_id, solve=solve_off_loop):
                log.info("plan dispatched", extra={"plan_id": plan_id})
        except Exception:  # noqa: BLE001 - the timer retries; the picks stay reserved
            log.exception("routing failed; will retry", extra={"plan_id": plan_id})
        finally:
            routing.discard(plan_id)

    class LogisticsWorker:
        name = "logistics"
        events = ServiceDatabase(lambda: ctx.uow, "logistics")

        @event_handler("intake", "donation_inspected", requeue_on_error=True)
        def on_donation_inspected(self, body):
            self.events.handle("on_donation_inspected", body,
                               lambda uow, env: receipts.receive_donation(ctx, uow, env["payload"]))

        @event_handler("intake", "requester_registered", requeue_on_error=True)
        def on_requester_registered(self, body):
            self.events.handle("on_requester_registered", body,
                               lambda uow, env: sites.apply_requester(ctx, uow, env["payload"]))

        @event_handler("intake", "requester_updated", requeue_on_error=True)
        def on_requester_updated(self, body):
            self.events.handle("on_requester_updated", body,
                               lambda uow, env: sites.apply_requester(ctx, uow, env["payload"]))

        @event_handler("allocation", "plan_approved", requeue_on_error=True)
        def on_plan_approved(self, body):
            held: list[str] = []

            def apply(uow, env):
                plan_id = dispatch.apply_plan_approved(ctx, uow, env["payload"])
                if plan_id:
                    held.append(plan_id)

            if self.events.handle("on_plan_approved", body, apply) == "processed" and held:
                route(held[0])

        @event_handler("monitoring", "alert_raised", requeue_on_error=True)
        def on_alert_raised(self, body):
            self.events.handle("on_alert_raised", body,
                               lambda uow, env: stock.apply_alert(ctx, uow, env["payload"]))

        @timer(interval=poll)
        def route_pending(self):
            for plan_id in dispatch.pending_plans(ctx):
                route(plan_id)

        @timer(interval=300)
        def recheck_reserves(self):
            try:
                with ctx.uow() as uow:
                    ledger.check_reserves(ctx, uow)
                    uow.commit()
            except Exception:  # noqa: BLE001 - next round
                log.exception("reserve check failed")

    return LogisticsWorker


def run(settings: Settings) -> None:
    run_worker([make_service(settings)], settings)

"""Allocation's nameko worker: allocation's view of requesters and demands from intake's events,
and the daily cut-off on the county clock.

The cut-off's plan is not made in this process: it asks logistics for stock over gRPC (grpcio
does not work under eventlet, DESIGN.md §2) and runs the engine, whose CPU time would stall the
eventlet hub and its AMQP heartbeats. The timer only asks whether a cut-off is due (two small
reads) and then runs `python -m services.allocation cutoff`, a plain process, waiting for it
without blocking the hub (green subprocess). That process stores the plan idempotently: the
day's version 1 is unique, so two workers cannot both make it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time

from nameko.events import event_handler
from nameko.timer import timer

from services.allocation.bootstrap import build_context
from services.allocation.config import load_allocation_config
from services.allocation.handlers import intake_events
from services.allocation.handlers.base import AllocationContext
from services.allocation.handlers.cutoff import cutoff_due_day
from services.allocation.handlers.policy import announce_policy
from services.common.config import Settings
from services.common.nameko_support import ServiceDatabase, run_worker

log = logging.getLogger(__name__)


class CutoffRunner:
    """Runs the cut-off process when due; after a failure waits 5 s, 10 s, … up to 5 min."""

    def __init__(self, ctx: AllocationContext, *, timeout: float = 900.0,
                 command: list[str] | None = None):
        self.ctx = ctx
        self.timeout = timeout
        self.command = command or [sys.executable, "-m", "services.allocation", "cutoff"]
        self.failures = 0
        self.not_before = 0.0

    def tick(self) -> None:
        if time.monotonic() < self.not_before:
            return
        try:
            day = cutoff_due_day(self.ctx)
        except Exception:  # noqa: BLE001 - the database may be briefly unavailable; next tick
            log.exception("cut-off check failed")
            return
        if day is None:
            return
        log.info("cut-off due: making the plan", extra={"delivery_day": day.isoformat()})
        try:
            code = subprocess.run(self.command, timeout=self.timeout).returncode
        except subprocess.TimeoutExpired:
            code = -1
        if code == 0:
            self.failures = 0
            return
        self.failures += 1
        wait = min(5.0 * 2 ** (self.failures - 1), 300.0)
        self.not_before = time.monotonic() + wait
        log.error("cut-off process failed, will retry",
                  extra={"delivery_day": day.isoformat(), "exit_code": code, "retry_in_s": wait})


def make_service(settings: Settings) -> type:
    ctx = build_context(settings, pool_size=4)
    tick = load_allocation_config(settings).tick_s
    cutoff = CutoffRunner(ctx)
    policy = announce_policy(ctx)
    log.info("policy announced", extra={"policy_version": policy.version, "cutoff": policy.cutoff})

    class AllocationWorker:
        name = "allocation"
        events = ServiceDatabase(lambda: ctx.uow, "allocation")

        @event_handler("intake", "requester_registered", requeue_on_error=True)
        def on_requester_registered(self, body):
            self.events.handle("on_requester_registered", body,
                               lambda uow, env: intake_events.apply_requester(ctx, uow, env["payload"]))

        @event_handler("intake", "requester_updated", requeue_on_error=True)
        def on_requester_updated(self, body):
            self.events.handle("on_requester_updated", body,
                               lambda uow, env: intake_events.apply_requester(ctx, uow, env["payload"]))

        @event_handler("intake", "demand_registered", requeue_on_error=True)
        def on_demand_registered(self, body):
            self.events.handle("on_demand_registered", body, lambda uow, env:
                               intake_events.apply_demand_registered(ctx, uow, env["payload"]))

        @event_handler("intake", "demand_cancelled", requeue_on_error=True)
        def on_demand_cancelled(self, body):
            self.events.handle("on_demand_cancelled", body, lambda uow, env:
                               intake_events.apply_demand_cancelled(ctx, uow, env["payload"]))

        @event_handler("intake", "demand_closed", requeue_on_error=True)
        def on_demand_closed(self, body):
            self.events.handle("on_demand_closed", body, lambda uow, env:
                               intake_events.apply_demand_closed(ctx, uow, env["payload"]))

        @timer(interval=tick)
        def cutoff_tick(self):
            cutoff.tick()

    return AllocationWorker


def run(settings: Settings) -> None:
    run_worker([make_service(settings)], settings)

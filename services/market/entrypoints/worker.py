"""Market's nameko worker: the communities come from intake's requesters (villages and
communities with a location, their drop points and households)."""

from __future__ import annotations

from nameko.events import event_handler

from services.common.config import Settings
from services.common.nameko_support import ServiceDatabase, run_worker
from services.market.bootstrap import build_context
from services.market.handlers import outlets


def make_service(settings: Settings) -> type:
    ctx = build_context(settings, pool_size=4)

    def apply(uow, envelope):
        outlets.apply_requester(uow, envelope["payload"])

    class MarketWorker:
        name = "market"
        events = ServiceDatabase(lambda: ctx.uow, "market")

        @event_handler("intake", "requester_registered", requeue_on_error=True)
        def on_requester_registered(self, body):
            self.events.handle("on_requester_registered", body, apply)

        @event_handler("intake", "requester_updated", requeue_on_error=True)
        def on_requester_updated(self, body):
            self.events.handle("on_requester_updated", body, apply)

    return MarketWorker


def run(settings: Settings) -> None:
    run_worker([make_service(settings)], settings)

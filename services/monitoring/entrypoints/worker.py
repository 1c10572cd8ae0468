"""Monitoring's nameko worker: what logistics says about zones and lots, and the periodic checks.

Events (services/monitoring/subscriptions.py): zone_registered (storage class of a zone),
stock_received / stock_changed / lot_quarantined / lot_released (which lots a zone holds: spoilage,
MKT, near expiry, segregation audit), reserve_below_floor (reserve alert); market's sellable_list_published (list prices → price watch).
Timers: sensor offline check (SUPPLY_OFFLINE_CHECK_S), shelf life / MKT / expiry / stale reserve
alerts (SUPPLY_SPOILAGE_CHECK_S), alert transitions → InfluxDB `alarm` (SUPPLY_EXPORT_CHECK_S).
"""

from __future__ import annotations

import logging
import time

from nameko.events import event_handler
from nameko.timer import timer

from services.common.config import Settings
from services.common.nameko_support import ServiceDatabase, run_worker
from services.monitoring.adapters.influx import InfluxWriter
from services.monitoring.bootstrap import build_context, spool_dir
from services.monitoring.handlers import alerts, base, deadlines, ingest, lots, prices, zones

log = logging.getLogger(__name__)


def make_service(settings: Settings) -> type:
    ctx = build_context(settings, pool_size=4)
    cfg = ctx.config
    writer = InfluxWriter(settings.influx_url, settings.influx_db,
                          spool_dir(settings, f"export-{cfg.worker_id}"), batch_lines=cfg.influx_batch)
    state = {"db_ready": False, "next_try": 0.0}

    def write_lines(lines: list[str]) -> None:
        if not state["db_ready"] and time.monotonic() >= state["next_try"]:
            try:
                writer.ensure_database()
                state["db_ready"] = True
            except Exception as exc:  # noqa: BLE001 - spooled meanwhile
                state["next_try"] = time.monotonic() + 10
                log.warning("influxdb not reachable", extra={"error": str(exc)})
        writer.add(lines)
        writer.flush(force=False)

    def periodic(name: str, fn) -> None:
        try:
            fn()
        except Exception:  # a timer must keep ticking; the next tick retries
            log.exception("periodic check failed", extra={"check": name})

    class MonitoringWorker:
        name = "monitoring"
        events = ServiceDatabase(lambda: ctx.uow, "monitoring")

        @event_handler("logistics", "zone_registered", requeue_on_error=True)
        def on_zone_registered(self, body):
            def apply(uow, env):
                p = env["payload"]
                depot, zone = base.required(p, "depot_id"), base.required(p, "zone_id")
                cap = p.get("capacity_l")
                zones.register_zone(ctx, uow, depot, zone, base.required(p, "storage_class"),
                                       capacity=cap if isinstance(cap, int) else None,
                                       source="event", field_prefix="payload.")
                lots.audit_zone(ctx, uow, f"{depot}/{zone}", ctx.clock.now())
            self.events.handle("on_zone_registered", body, apply)

        @event_handler("logistics", "stock_received", requeue_on_error=True)
        def on_stock_received(self, body):
            self.events.handle("on_stock_received", body,
                               lambda uow, env: lots.stock_received(ctx, uow, env))

        @event_handler("logistics", "stock_changed", requeue_on_error=True)
        def on_stock_changed(self, body):
            self.events.handle("on_stock_changed", body,
                               lambda uow, env: lots.stock_changed(ctx, uow, env))

        @event_handler("logistics", "lot_quarantined", requeue_on_error=True)
        def on_lot_quarantined(self, body):
            self.events.handle("on_lot_quarantined", body,
                               lambda uow, env: lots.lot_status(ctx, uow, env, "quarantined"))

        @event_handler("logistics", "lot_released", requeue_on_error=True)
        def on_lot_released(self, body):
            self.events.handle("on_lot_released", body,
                               lambda uow, env: lots.lot_status(ctx, uow, env, "available"))

        @event_handler("logistics", "reserve_below_floor", requeue_on_error=True)
        def on_reserve_below_floor(self, body):
            self.events.handle("on_reserve_below_floor", body,
                               lambda uow, env: lots.reserve_below_floor(ctx, uow, env))

        @event_handler("reports", "deadline_missed", requeue_on_error=True)
        def on_deadline_missed(self, body):
            self.events.handle("on_deadline_missed", body,
                               lambda uow, env: deadlines.deadline_missed(ctx, uow, env))

        @event_handler("market", "sellable_list_published", requeue_on_error=True)
        def on_sellable_list_published(self, body):
            self.events.handle("on_sellable_list_published", body,
                               lambda uow, env: prices.apply_sellable_list(ctx, uow, env))

        @timer(interval=cfg.offline_check_s)
        def check_offline(self):
            periodic("offline", lambda: ingest.check_offline(ctx))

        @timer(interval=cfg.spoilage_check_s)
        def check_spoilage(self):
            periodic("spoilage", lambda: lots.check_spoilage(ctx))

        @timer(interval=cfg.export_check_s)
        def export_alarms(self):
            def run():
                while alerts.export_alarm_lines(ctx, write_lines) >= 500:
                    pass
            periodic("export", run)

    return MonitoringWorker


def run(settings: Settings) -> None:
    run_worker([make_service(settings)], settings)

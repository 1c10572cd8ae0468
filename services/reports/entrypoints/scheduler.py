"""`python -m services.reports scheduler`: the reports process. A loop on the county clock makes
the day's report at REPORTS_AT and checks the day's deadlines; a relay thread publishes its
outbox (daily_report_ready, deadline_missed); the gRPC server answers GetDailyReport (forwarded by
allocation) and health. Several may run: handlers.py makes each thing once."""

from __future__ import annotations

import logging
import threading

from supply.v1 import allocation_pb2 as pb
from supply.v1 import allocation_pb2_grpc as rpc

from services.common.catalogue import load_catalogue
from services.common.config import Settings
from services.common.db import make_engine, ping
from services.common.grpc_server import serve
from services.common.messaging import EventPublisher
from services.common.migrate import check_at_head
from services.common.relay import OutboxRelay
from services.reports import handlers
from services.reports.adapters.county import GrpcCounty
from services.reports.adapters.schema import tables
from services.reports.config import load_reports_config
from services.reports.entrypoints.grpc_api import DailyReportServicer

log = logging.getLogger(__name__)


def build_context(settings: Settings, county) -> handlers.ReportsContext:
    config = load_reports_config(settings)
    engine = make_engine(settings.database_url, pool_size=4)
    check_at_head("reports", engine)
    return handlers.ReportsContext(engine=engine, tables=tables, now=settings.clock().now,
                                   tz=settings.timezone, schedule=config.schedule,
                                   out_dir=config.out_dir, county=county)


def _relay(settings: Settings, ctx: handlers.ReportsContext, stop: threading.Event) -> None:
    publisher = EventPublisher(settings.amqp_url)
    while not stop.is_set():
        try:
            publisher.declare(("reports",))
            break
        except Exception as exc:  # noqa: BLE001 - broker not up yet: keep trying
            log.warning("relay: broker not reachable yet", extra={"error": repr(exc)})
            stop.wait(2)
    OutboxRelay(ctx.engine, tables["outbox"], publisher, batch=settings.relay_batch).run(stop)
    publisher.close()


def _schedule(ctx: handlers.ReportsContext, tick_s: float, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            handlers.tick(ctx)
        except Exception as exc:  # noqa: BLE001 - a service down or refusing: try again next tick
            log.warning("report scheduler: tick failed, will retry / 日报调度失败，稍后重试",
                        extra={"error": str(exc)})
        stop.wait(tick_s)


def run(settings: Settings) -> None:
    config = load_reports_config(settings)
    catalogue = load_catalogue(settings.catalogue_path)
    county = GrpcCounty(settings, config.token, catalogue)
    ctx = build_context(settings, county)
    stop = threading.Event()
    threads = [threading.Thread(target=_relay, args=(settings, ctx, stop), name="relay", daemon=True),
               threading.Thread(target=_schedule, args=(ctx, config.tick_s, stop), name="scheduler",
                                daemon=True)]
    for t in threads:
        t.start()
    log.info("report scheduler started", extra={"at": config.schedule.report_at.isoformat("minutes"),
                                                "out_dir": str(config.out_dir)})
    health = EventPublisher(settings.amqp_url)

    def register(server) -> list[str]:
        rpc.add_AllocationServiceServicer_to_server(
            DailyReportServicer(settings, settings.clock(), catalogue), server)
        return [pb.DESCRIPTOR.services_by_name["AllocationService"].full_name]

    def on_stop() -> None:
        stop.set()
        for t in threads:
            t.join(timeout=settings.relay_stop_grace)
        health.close()
        county.close()

    serve(settings, register, {"database": lambda: ping(ctx.engine), "broker": health.ping},
          on_stop=on_stop)

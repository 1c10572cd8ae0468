"""MonitoringService over gRPC: translate messages, call handlers, map answers. No rules here."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import grpc
from google.protobuf.duration_pb2 import Duration
from supply.v1 import common_pb2 as common
from supply.v1 import monitoring_pb2 as pb
from supply.v1 import monitoring_pb2_grpc as rpc

from services.common.config import Settings
from services.common.db import ping
from services.common.errors import InvalidInput
from services.common.grpc_server import caller, serve
from services.common.messaging import EventPublisher
from services.common.servicer import WriteServicer
from services.monitoring.adapters import alert_store, dead_letters
from services.monitoring.adapters.influx import InfluxError
from services.monitoring.adapters.influx_query import InfluxReader
from services.monitoring.bootstrap import build_context
from services.monitoring.entrypoints import proto_map as out
from services.monitoring.entrypoints.watch_streams import StreamRefused, WatchStreams
from services.monitoring.handlers import alerts, base, prices, queries

log = logging.getLogger(__name__)

MAX_PRICES = 500
WATCH_POLL_S = 0.25
GAP_PATIENCE_S = 30.0
MAX_GAPS = 1000  # how long a skipped history id may still turn up (a transaction not yet committed)


def _instant(msg, field: str) -> datetime | None:
    """A Timestamp field as aware UTC, None when absent (a Timestamp has no text to parse: the
    guard bounds it, services.common.days reads days and instants given as text)."""
    if not msg.HasField(field):
        return None
    return getattr(msg, field).ToDatetime(tzinfo=UTC)


def _enum_names(values, names: dict, field: str) -> tuple[str, ...]:
    out = []
    for i, v in enumerate(values):
        if v not in names:
            raise InvalidInput(f"{field}[{i}]", "unspecified or unknown value")
        out.append(names[v])
    return tuple(out)


class MonitoringServicer(WriteServicer, rpc.MonitoringServiceServicer):
    def __init__(self, ctx: base.MonitoringContext, influx: InfluxReader, stopping: threading.Event):
        self.ctx = ctx
        self.influx = influx
        self.stopping = stopping
        self.watch_streams = WatchStreams(ctx.config.watch_streams_per_identity, ctx.config.watch_streams_max)

    # ---- alerts
    def _filter(self, request) -> alert_store.AlertFilter:
        return alert_store.AlertFilter(
            states=_enum_names(getattr(request, "states", ()), out.STATE_NAME, "states"),
            kinds=_enum_names(request.kinds, out.KIND_NAME, "kinds"),
            severities=_enum_names(request.severities, out.SEVERITY_NAME, "severities"),
            depot=request.depot, zone=request.zone,
            opened_after=_instant(request, "opened_after") if hasattr(request, "opened_after") else None,
            opened_before=_instant(request, "opened_before") if hasattr(request, "opened_before") else None,
            spoilage_only=getattr(request, "spoilage_only", False))

    def ListAlerts(self, request, context):
        caller().require(*base.ALERT_READ_ROLES)
        f = self._filter(request)
        if f.zone and not f.depot:
            raise InvalidInput("depot", "required when zone is given (zone ids are per depot)")
        with self.ctx.uow() as uow:
            items, token, total = alert_store.page(uow.conn, f, request.page.page_size, request.page.page_token)
        return pb.ListAlertsResponse(alerts=[out.alert(a) for a in items],
                                     page=common.PageInfo(next_page_token=token, total=total))

    def _read(self, query: Callable, *args):
        with self.ctx.uow() as uow:
            return query(uow.conn, *args)

    async def WatchAlerts(self, request, context):
        """On the event loop: each poll of the history runs on the pool (short, blocking), the
        waits between polls hold no thread. Streams are counted per identity and in all."""
        caller().require(*base.ALERT_READ_ROLES)
        f = self._filter(request)
        try:
            stream = self.watch_streams.open(caller().identity)
        except StreamRefused as exc:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        context.add_done_callback(lambda _: stream.close())  # however the call ends
        try:
            cursor = (request.after_cursor if request.HasField("after_cursor")
                      else await asyncio.to_thread(self._read, alert_store.last_history_id))
            if cursor < 0:
                raise InvalidInput("after_cursor", "must be ≥ 0")
            # the starting point, before any transition: a client knows from here on nothing is missed
            await context.send_initial_metadata((("x-watch-cursor", str(cursor)),))
            gaps: dict[int, float] = {}  # history ids skipped (not committed yet) → when first noticed
            while not context.done() and not self.stopping.is_set():
                # to_thread: the loop's default executor, which is the API's pool, in this context
                rows = await asyncio.to_thread(self._read, alert_store.history_since, cursor, list(gaps), f)
                now = time.monotonic()
                for row in rows:
                    gaps.pop(row.id, None)
                    if row.id > cursor:
                        if row.id - cursor <= MAX_GAPS:
                            gaps.update({i: now for i in range(cursor + 1, row.id) if i not in gaps})
                        cursor = row.id
                    yield out.transition(row)
                for i in [i for i, t in gaps.items() if now - t > GAP_PATIENCE_S]:
                    del gaps[i]  # a rolled-back transaction: that id never comes
                if len(rows) < 500:
                    await asyncio.sleep(WATCH_POLL_S)
        finally:
            stream.close()

    def AcknowledgeAlert(self, request, context):
        return self._write("AcknowledgeAlert", request, pb.Alert, lambda a, uow: out.alert(
            alerts.acknowledge_alert(self.ctx, uow, a, request.alert_id, request.note)))

    # ---- zones and sensors
    def GetZoneStatus(self, request, context):
        caller().require(*base.SENSOR_READ_ROLES)
        with self.ctx.uow() as uow:
            z = queries.zone_status(self.ctx, uow, request.depot, request.zone)
        return out.zone_status(z, self.ctx.storage_class(z.storage_class))

    def GetSensorHistory(self, request, context):
        interval = (request.interval.seconds, request.interval.nanos) if request.HasField("interval") else None
        try:
            seconds, series = queries.sensor_history(
                self.influx, caller(), depot=request.depot, zone=request.zone, sensor=request.sensor,
                start=_instant(request, "start"), end=_instant(request, "end"),
                max_points=request.max_points, interval=interval)
        except InfluxError as exc:
            log.warning("sensor history: influxdb failed", extra={"error": str(exc)})
            context.set_code(grpc.StatusCode.UNAVAILABLE)
            context.set_details("InfluxDB is not answering; try again / 时序数据库暂不可用")
            return pb.GetSensorHistoryResponse()
        return pb.GetSensorHistoryResponse(interval=Duration(seconds=seconds), series=[
            out.sensor_series(sensor, points) for sensor, points in series.items()])

    # ---- the ingest's dead letters
    def ListIngestDeadLetters(self, request, context):
        f = dead_letters.DeadLetterFilter(
            depot=request.depot, codes=tuple(request.codes),
            received_after=_instant(request, "received_after"),
            received_before=_instant(request, "received_before"))
        with self.ctx.uow() as uow:
            page = queries.list_ingest_dead_letters(uow, caller(), f, request.page.page_size,
                                                    request.page.page_token)
        return pb.ListIngestDeadLettersResponse(
            dead_letters=[out.dead_letter(d) for d in page.items],
            page=common.PageInfo(next_page_token=page.next_page_token, total=page.total))

    # ---- prices
    def SubmitPrices(self, request, context):
        n = len(request.prices)
        if not 1 <= n <= MAX_PRICES:
            raise InvalidInput("prices", f"1 … {MAX_PRICES} prices per call, got {n}")
        items = [{"product": p.product, "market": p.market, "day": p.day, "price_yuan": p.price_yuan}
                 for p in request.prices]
        for i, p in enumerate(request.prices):
            if not p.price_yuan:
                raise InvalidInput(f"prices[{i}].price_yuan", "required, e.g. \"12.50\"")
        return self._write("SubmitPrices", request, pb.SubmitPricesResponse, lambda a, uow:
                           pb.SubmitPricesResponse(results=[
                               out.price_result(r) for r in prices.submit_prices(self.ctx, uow, a, items)]))


def run(settings: Settings) -> None:
    ctx = build_context(settings, pool_size=20)
    publisher = EventPublisher(settings.amqp_url)
    stopping = threading.Event()
    influx = InfluxReader(settings.influx_url, settings.influx_db)

    def register(server: grpc.aio.Server) -> list[str]:
        rpc.add_MonitoringServiceServicer_to_server(MonitoringServicer(ctx, influx, stopping), server)
        return [pb.DESCRIPTOR.services_by_name["MonitoringService"].full_name]

    def on_stop() -> None:
        stopping.set()
        publisher.close()

    serve(settings, register, {"database": lambda: ping(ctx.engine), "broker": publisher.ping},
          on_stop=on_stop)

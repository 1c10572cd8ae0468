"""Live alerts: the console keeps ONE upstream WatchAlerts stream to monitoring, whatever the
number of open browsers, and fans each transition out to them over Server-Sent Events. The
stream resumes from its last cursor after a break (nothing missed, nothing twice), and each
browser's queue is bounded so a slow phone cannot hold the others up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import grpc
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from supply.v1 import monitoring_pb2 as mpb

from services.console.adapters.services import Person
from services.console.entrypoints.web import Console, Viewer, page

log = logging.getLogger(__name__)
WATCHER = Person("console-alerts", "hq")  # the console's own identity for the one upstream stream
ALERT_ROLES = ("hq", "admin", "depot_keeper", "auditor")
QUEUE = 100  # transitions waiting per browser; a browser that falls further behind is told to reload
KEEPALIVE_S = 15.0


def transition_json(t: mpb.AlertTransition) -> dict:
    a = t.alert
    return {"cursor": t.cursor, "action": mpb.AlertAction.Name(t.action).removeprefix("ALERT_ACTION_").lower(),
            "alert_id": a.alert_id, "kind": mpb.AlertKind.Name(a.kind).removeprefix("ALERT_KIND_").lower(),
            "severity": mpb.Severity.Name(a.severity).removeprefix("SEVERITY_").lower(),
            "state": mpb.AlertState.Name(a.state).removeprefix("ALERT_STATE_").lower(),
            "depot": a.depot, "zone": a.zone, "rule_code": a.rule_code, "subject": a.subject,
            "title_zh": a.title_zh, "title_en": a.title_en, "by": t.by,
            "at": t.at.ToDatetime().isoformat() + "Z" if t.HasField("at") else ""}


class AlertHub:
    def __init__(self, console: Console):
        self.console = console
        self.subscribers: set[asyncio.Queue] = set()
        self.cursor: int | None = None
        self.connected = False
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        backoff = 0.5
        services = self.console.services
        while True:
            request = mpb.WatchAlertsRequest()
            if self.cursor is not None:
                request.after_cursor = self.cursor
            call = services.stream(WATCHER, "monitoring", "WatchAlerts", request)
            try:
                metadata = await call.initial_metadata()
                if self.cursor is None:
                    self.cursor = int(dict(metadata).get("x-watch-cursor", "0") or 0)
                self.connected = True
                backoff = 0.5
                async for transition in call:
                    self.cursor = transition.cursor
                    self.publish(transition_json(transition))
            except grpc.aio.AioRpcError as exc:
                log.warning("alert stream broken; resuming", extra={"code": exc.code().name,
                                                                      "cursor": self.cursor})
            except asyncio.CancelledError:
                call.cancel()
                raise
            self.connected = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    def publish(self, event: dict) -> None:
        for queue in list(self.subscribers):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait({"action": "reload"})  # it missed some: the page reloads its list
            queue.put_nowait(event)

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=QUEUE + 1)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self.subscribers.discard(queue)


async def start(console: Console) -> None:
    console.alerts = AlertHub(console)
    console.alerts.task = asyncio.create_task(console.alerts.run(), name="alert-hub")


async def stop(console: Console) -> None:
    hub: AlertHub | None = console.alerts
    if hub and hub.task:
        hub.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await hub.task


@page(*ALERT_ROLES)
async def events(request: Request, viewer: Viewer) -> Response:
    """text/event-stream of alert transitions for this browser (EventSource on the board)."""
    hub: AlertHub = request.app.state.console.alerts
    queue = hub.subscribe()

    async def stream():
        try:
            yield "retry: 3000\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                yield f"event: alert\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"
        finally:
            hub.unsubscribe(queue)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})


routes = [Route("/events/alerts", events)]

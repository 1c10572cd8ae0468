"""`supplyctl dead-letters monitoring --ingest`: the ingest's dead letters (telemetry it refused)
through MonitoringService.ListIngestDeadLetters, with the caller's token (role checks apply)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from supply.v1 import common_pb2 as common
from supply.v1 import monitoring_pb2 as pb
from supply.v1 import monitoring_pb2_grpc as rpc

from services.common.config import DEV_TOKEN, load_settings
from services.common.grpc_client import open_channel
from services.common.proto_time import timestamp


def fetch(stub: rpc.MonitoringServiceStub, token: str, *, depot: str = "", codes: tuple[str, ...] = (),
          hours: float | None = None, limit: int = 50) -> tuple[list[pb.IngestDeadLetter], int]:
    """Up to `limit` dead letters, newest first, and how many match in all."""
    request = pb.ListIngestDeadLettersRequest(depot=depot, codes=codes)
    if hours is not None:
        request.received_after.CopyFrom(timestamp(datetime.now(UTC) - timedelta(hours=hours)))
    found: list[pb.IngestDeadLetter] = []
    total = 0
    while len(found) < limit:
        request.page.CopyFrom(common.PageRequest(page_size=min(500, limit - len(found)),
                                                 page_token=request.page.page_token))
        resp = stub.ListIngestDeadLetters(request, metadata=[("authorization", f"Bearer {token}")],
                                          timeout=30)
        found += resp.dead_letters
        total = resp.page.total
        if not resp.page.next_page_token:
            break
        request.page.page_token = resp.page.next_page_token
    return found, total


def run(depot: str, codes: tuple[str, ...], hours: float | None, limit: int, token: str,
        console: Console) -> int:
    settings = load_settings("monitoring")
    with open_channel(settings.grpc_target("monitoring"), settings.grpc_tls) as channel:
        try:
            items, total = fetch(rpc.MonitoringServiceStub(channel), token or DEV_TOKEN, depot=depot,
                                 codes=codes, hours=hours, limit=limit)
        except grpc.RpcError as exc:
            console.print(f"[red]{exc.code().name}: {escape(exc.details() or '')}[/]")
            return 1
    t = Table(title=f"ingest dead letters / 监测数据死信 ({len(items)} of {total})")
    for col in ("id", "received at", "depot", "topic", "code", "#", "reason / 原因", "raw"):
        t.add_column(col)
    for d in items:
        at = d.received_at.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds")
        t.add_row(str(d.id), at, d.depot, escape(d.topic), d.code,
                  str(d.entry_index) if d.HasField("entry_index") else "",
                  escape(f"{d.reason} / {d.reason_zh}"[:200]), escape(d.raw[:80]))
    console.print(t)
    return 0

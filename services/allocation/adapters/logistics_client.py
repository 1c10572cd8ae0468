"""StockSource over gRPC: supply.v1.LogisticsService/GetStockSnapshot.

Used by the API process and the cut-off runner (plain threads). Never import this in the nameko
worker: grpcio does not work in an eventlet-patched process (DESIGN.md §2).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, date

import grpc
from supply.v1 import logistics_pb2, logistics_pb2_grpc

from services.allocation.adapters.stock import (
    DepotInfo,
    StockSnapshot,
    StockUnavailable,
)
from services.allocation.domain import StockLot
from services.common.config import PLAINTEXT, GrpcTls
from services.common.grpc_client import open_channel
from services.common.logs import correlation_id

log = logging.getLogger(__name__)

MAX_MESSAGE = 64 * 1024 * 1024


class GrpcStockSource:
    """One channel per source, opened on first use; the caller's correlation id is passed on."""

    def __init__(self, target: str, token: str, *, timeout: float = 30.0, tls: GrpcTls = PLAINTEXT):
        self.target = target
        self.tls = tls
        self.token = token
        self.timeout = timeout
        self._channel: grpc.Channel | None = None
        self._lock = threading.Lock()

    def _stub(self) -> logistics_pb2_grpc.LogisticsServiceStub:
        with self._lock:
            if self._channel is None:
                self._channel = open_channel(
                    self.target, self.tls, options=[("grpc.max_receive_message_length", MAX_MESSAGE)])
            return logistics_pb2_grpc.LogisticsServiceStub(self._channel)

    def snapshot(self, delivery_day: date, item_codes: Sequence[str]) -> StockSnapshot:
        request = logistics_pb2.GetStockSnapshotRequest(delivery_day=delivery_day.isoformat(),
                                                        item_codes=sorted(set(item_codes)))
        metadata = [("authorization", f"Bearer {self.token}")]
        if cid := correlation_id.get(""):
            metadata.append(("x-correlation-id", cid))
        try:
            reply = self._stub().GetStockSnapshot(request, metadata=metadata, timeout=self.timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            details = exc.details() if hasattr(exc, "details") else str(exc)
            log.warning("stock snapshot failed", extra={"target": self.target,
                                                        "code": str(code), "error": details})
            raise StockUnavailable(f"logistics {self.target} GetStockSnapshot failed: "
                                   f"{code.name if code else 'ERROR'} {details}") from None
        return from_proto(reply)

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.close()
                self._channel = None


def from_proto(reply: logistics_pb2.StockSnapshot) -> StockSnapshot:
    """The reply as domain values; a lot that cannot be read is set aside with the reason."""
    depots = tuple(DepotInfo(d.depot_id, d.name, d.location.lat, d.location.lon)
                   for d in reply.depots)
    known = {d.id for d in depots}
    rejected: list[tuple[str, str]] = []

    def read(x: logistics_pb2.SnapshotLot) -> StockLot | None:
        if x.depot_id not in known:
            rejected.append((x.lot_id, f"depot {x.depot_id!r} not in the snapshot's depots"))
            return None
        try:
            expiry = date.fromisoformat(x.expiry)
        except ValueError:
            rejected.append((x.lot_id, f"expiry {x.expiry!r} is not YYYY-MM-DD"))
            return None
        if x.available <= 0:
            return None
        return StockLot(x.lot_id, x.depot_id, x.item_code, int(x.available), expiry)

    lots = tuple(lot for lot in map(read, reply.lots) if lot is not None)
    excluded = tuple((lot, x.reason) for x in reply.excluded_lots
                     if (lot := read(x.lot)) is not None)
    taken = reply.taken_at.ToDatetime(tzinfo=UTC) if reply.HasField("taken_at") else None
    return StockSnapshot(depots, lots, taken, int(reply.ledger_seq), tuple(rejected), excluded)

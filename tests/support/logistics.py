"""Helpers for the logistics integration tests (no tests here): environment, migrations, the
gRPC stub with tokens, starting api / worker / relay, publishing other services' events, and
request builders."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from supply.v1 import common_pb2, logistics_pb2, logistics_pb2_grpc

from services.common.config import load_settings
from services.common.messaging import EventPublisher, make_envelope
from services.common.migrate import upgrade
from tests.support.intake import ADMIN, auth, day, key, make_env
from tests.support.processes import ServiceProcess, start_consuming

pb = logistics_pb2
WORKER_QUEUES = (
    "evt-intake-donation_inspected--logistics.on_donation_inspected",
    "evt-intake-requester_registered--logistics.on_requester_registered",
    "evt-allocation-plan_approved--logistics.on_plan_approved",
    "evt-monitoring-alert_raised--logistics.on_alert_raised",
)
PROOF = "photo:" + "c0" * 32


def env_for(var_dir: Path, amqp_url: str, **extra: str) -> dict[str, str]:
    return make_env(var_dir, amqp_url, SUPPLY_ROUTING_SECONDS="2", SUPPLY_ROUTING_POLL_SECONDS="1",
                    **extra)


def migrate(env: dict[str, str]) -> str:
    url = load_settings("logistics", env).database_url
    upgrade("logistics", url)
    return url


def target(env: dict[str, str]) -> str:
    return f"127.0.0.1:{env['LOGISTICS_GRPC_PORT']}"


class Logistics:
    """A stub that sends the admin token unless told otherwise."""

    def __init__(self, env: dict[str, str]):
        self.channel = grpc.insecure_channel(target(env))
        self.stub = logistics_pb2_grpc.LogisticsServiceStub(self.channel)

    def __getattr__(self, name: str):
        method = getattr(self.stub, name)

        def call(request, token: str | None = ADMIN, **kw):
            kw.setdefault("timeout", 30)
            return method(request, metadata=auth(token) if token else None, **kw)

        return call

    def close(self) -> None:
        self.channel.close()

    # ---- shortcuts
    def depot(self, depot_id: str, lat: float = 30.30, lon: float = 120.10) -> None:
        self.RegisterDepot(pb.RegisterDepotRequest(idempotency_key=key(), depot=pb.Depot(
            id=depot_id, name=f"仓库{depot_id}", location=common_pb2.GeoPoint(lat=lat, lon=lon))))
        for zid, sclass, cap in (("AMB", "ambient", 100_000), ("CHL", "chilled", 20_000)):
            self.RegisterZone(pb.RegisterZoneRequest(idempotency_key=key(), zone=pb.Zone(
                id=f"{depot_id}-{zid}", depot_id=depot_id, storage_class=sclass, capacity_l=cap)))

    def vehicle(self, vid: str, depot_id: str, refrigerated: bool = True) -> None:
        self.RegisterVehicle(pb.RegisterVehicleRequest(idempotency_key=key(), vehicle=pb.Vehicle(
            id=vid, pass_number=f"通-{vid}", driver="司机甲", clerk="押运乙", capacity_kg=3000,
            capacity_l=20000, refrigerated=refrigerated, depot_id=depot_id,
            slots=[common_pb2.LocalTimeWindow(start="07:00", end="18:00")])))

    def receive(self, depot_id: str, item: str, qty: int, expiry_days: int = 90, zone: str = "",
                **kw) -> pb.Receipt:
        return self.ReceiveStock(pb.ReceiveStockRequest(
            idempotency_key=key(), kind=pb.RECEIPT_KIND_PURCHASE, depot_id=depot_id,
            origin_ref="PO-1", lines=[pb.ReceiptLineSpec(item_code=item, quantity=qty,
                                                         lot_number="B-1", expiry=day(expiry_days),
                                                         zone_id=zone)]), **kw)

    def lots(self, **filters) -> list[pb.Lot]:
        return list(self.ListLots(pb.ListLotsRequest(**filters)).lots)

    def lot(self, lot_id: str) -> pb.Lot:
        return self.ListLots(pb.ListLotsRequest(lot_id=lot_id)).lots[0]


def start(kind: str, env: dict[str, str], log_dir: Path, **extra_env: str) -> ServiceProcess:
    if kind == "worker":
        return start_consuming("logistics", "worker", env, log_dir, list(WORKER_QUEUES), **extra_env)
    proc = ServiceProcess("logistics", kind, env, log_dir, extra_env=extra_env).start()
    if kind == "api":
        proc.wait_healthy(target(env))
    return proc


@contextmanager
def api_with_depot(tmp: Path, amqp_url: str, **extra_env: str) -> Iterator[tuple[dict[str, str], Logistics]]:
    """A migrated logistics API process on SQLite under `tmp` and a client, with depot D1 and
    its zones registered."""
    env = env_for(tmp / "var", amqp_url, **extra_env)
    migrate(env)
    proc = start("api", env, tmp)
    client = Logistics(env)
    try:
        client.depot("D1")
        yield env, client
    finally:
        client.close()
        proc.stop()


def publish(env: dict[str, str], source: str, event_type: str, payload: dict) -> dict:
    """Publish an envelope as the other service's relay would."""
    envelope = make_envelope(source, event_type, payload)
    pub = EventPublisher(env["AMQP_URL"])
    try:
        pub.declare((source,))
        import json

        pub.publish(f"{source}.events", event_type, json.dumps(envelope, ensure_ascii=False),
                    envelope["event_id"])
    finally:
        pub.close()
    return envelope


def requester_payload(rid: str, lat: float = 30.32, lon: float = 120.12) -> dict:
    return {"requester_id": rid, "kind": "village", "name": "河西村", "township": "河西镇",
            "location": {"lat": lat, "lon": lon},
            "drop_points": [{"id": "DP1", "name": "村委会门口", "location": {"lat": lat, "lon": lon},
                             "window_start": "08:00", "window_end": "17:00"}],
            "population": 300, "households": 100, "risk_level": "prevention", "vulnerable": None,
            "unit_type": None, "headcount": None, "beds": None, "version": 1}


def plan_payload(plan_id: str, delivery_day: str, lines: list[dict]) -> dict:
    return {"plan_id": plan_id, "delivery_day": delivery_day, "approved_by": "hq-officer",
            "approved_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "lines": lines}


def plan_line(plid: str, requester_id: str, item: str, qty: int, depot_id: str,
              demand_id: str, lots: list[tuple[str, int]] = ()) -> dict:
    return {"plan_line_id": plid, "demand_id": demand_id, "demand_line_no": 1,
            "requester_id": requester_id, "drop_point_id": "DP1", "item_code": item,
            "quantity": qty, "depot_id": depot_id,
            "lots": [{"lot_id": lot, "quantity": q} for lot, q in lots], "tier": 4,
            "substitute_for": None, "reasons": [{"code": "NEAREST_DEPOT"}]}


def now_ts() -> Timestamp:
    t = Timestamp()
    t.FromDatetime(datetime.now(UTC))
    return t


def confirm_all(trip: pb.Trip, stop: pb.TripStop, receiver: str = "村专班 王芳",
                idempotency_key: str | None = None) -> pb.ConfirmDeliveryRequest:
    return pb.ConfirmDeliveryRequest(
        idempotency_key=idempotency_key or key(), trip_id=trip.trip_id,
        requester_id=stop.requester_id, drop_point_id=stop.drop_point_id, receiver=receiver,
        received_at=now_ts(), proof_ref=PROOF,
        lines=[pb.ReceivedLine(plan_line_id=ln.plan_line_id, lot_id=ln.lot_id, received=ln.quantity)
               for ln in stop.lines])

"""Event contract tests without a broker: the four services in one process, each on its own SQLite
database migrated to head, each with its real nameko worker class (services/<name>/entrypoints/
worker.py, built by its make_service around a context we hand it, with a FixedClock).

An event goes the way the relay and RabbitMQ take it: the producer's use case writes the envelope
to its outbox (UnitOfWork.record_event); `County.deliver` reads the outbox row's JSON body and
calls the consumer's worker method named in services/<consumer>/subscriptions.py with it, which
runs the real handler through services.common.consumers.consume (idempotency, dead letters).
A dead-lettered event fails the test with the consumer's own error message (ContractBroken).
"""

from __future__ import annotations

import importlib
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

from sqlalchemy import select

from services.common.auth import Caller
from services.common.catalogue import load_catalogue
from services.common.clock import FixedClock
from services.common.config import load_settings
from services.common.db import make_engine
from services.common.messaging import Subscription, all_subscriptions
from services.common.migrate import upgrade

CST = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 28)
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=CST)  # before the 11:00 cut-off of DAY
SERVICES = ("intake", "logistics", "allocation", "monitoring", "market")  # logistics before allocation
CATALOGUE = load_catalogue()
PROOF = "photo:" + "ab" * 32

# places (lat, lon) a few km apart
DEPOT_1 = (30.300, 120.100)
DEPOT_2 = (30.280, 120.160)
VILLAGE = (30.320, 120.120)
HOSPITAL = (30.290, 120.130)


class ContractBroken(AssertionError):
    """The consumer refused what the producer built: it dead-lettered the event."""


def subscriptions() -> dict[tuple[str, str], list[Subscription]]:
    out: dict[tuple[str, str], list[Subscription]] = {}
    for sub in all_subscriptions():
        out.setdefault((sub.source, sub.event_type), []).append(sub)
    return out


def subscription(source: str, event_type: str, consumer: str) -> Subscription:
    for sub in subscriptions().get((source, event_type), ()):
        if sub.consumer == consumer:
            return sub
    raise AssertionError(f"{consumer} does not subscribe to {source}.{event_type} "
                         f"(services/{consumer}/subscriptions.py)")


OPTIONAL = ("monitoring",)  # its service code may be missing or incomplete: its tests skip


def migrate_templates(root: Path) -> dict[str, Path | str]:
    """One database per service migrated to head with services.common.migrate.upgrade; tests copy
    them (a migration per test would cost more than the tests). An optional service whose
    migrations fail gets the reason instead of a path."""
    out: dict[str, Path | str] = {}
    for service in SERVICES:
        path = root / f"{service}.db"
        try:
            upgrade(service, f"sqlite:///{path}")
        except Exception as exc:
            if service not in OPTIONAL:
                raise
            out[service] = f"migrations failed: {exc!r}"
            continue
        out[service] = path
    return out


def unavailable(service: str, templates: dict[str, Path | str]) -> str | None:
    """Why an optional service cannot take part (None: it can)."""
    if service not in OPTIONAL:
        return None
    if not isinstance(templates.get(service), Path):
        return str(templates.get(service))
    for module in ("handlers", "subscriptions", "entrypoints.worker", "adapters.schema", "config"):
        try:
            importlib.import_module(f"services.{service}.{module}")
        except Exception as exc:
            return f"services.{service}.{module}: {exc!r}"
    return None


class _NoInflux:
    """Stands in for the monitoring worker's InfluxDB writer (used by its timers only)."""

    def __init__(self, *args: Any, **kwargs: Any):
        pass


@dataclass
class Service:
    name: str
    ctx: Any
    worker: Any
    tables: dict
    handlers: Any

    @property
    def engine(self):
        return self.ctx.engine

    def run(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """One use case (handlers.<fn>(ctx, uow, …)) in one committed unit of work."""
        with self.ctx.uow() as uow:
            result = fn(self.ctx, uow, *args, **kwargs)
            uow.commit()
        return result

    def outbox(self, event_type: str | None = None) -> list[dict]:
        """The envelopes this service recorded, as the relay publishes them (the row's JSON)."""
        t = self.tables["outbox"]
        q = select(t.c.body).order_by(t.c.id)
        if event_type is not None:
            q = q.where(t.c.routing_key == event_type)
        with self.engine.connect() as conn:
            return [json.loads(body) for body in conn.execute(q).scalars()]

    def payloads(self, event_type: str) -> list[dict]:
        return [e["payload"] for e in self.outbox(event_type)]

    def rows(self, table: str, *where: Any, order_by: Any = None) -> list:
        t = self.tables[table]
        q = select(t).where(*where)
        if order_by is not None:
            q = q.order_by(order_by)
        with self.engine.connect() as conn:
            return conn.execute(q).all()

    def row(self, table: str, *where: Any) -> Any:
        found = self.rows(table, *where)
        assert len(found) == 1, f"{self.name}.{table}: {len(found)} rows match, expected 1"
        return found[0]

    def table(self, name: str):
        return self.tables[name]


@dataclass
class County:
    """The services a test needs, sharing one FixedClock."""

    root: Path
    templates: dict[str, Path | str]
    names: tuple[str, ...]
    clock: FixedClock = field(default_factory=lambda: FixedClock(NOW.astimezone(UTC)))
    services: dict[str, Service] = field(default_factory=dict)
    delivered: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for name in SERVICES:
            if name in self.names:
                self.services[name] = self._build(name)

    # ---- the services
    @property
    def intake(self) -> Service:
        return self.services["intake"]

    @property
    def allocation(self) -> Service:
        return self.services["allocation"]

    @property
    def logistics(self) -> Service:
        return self.services["logistics"]

    @property
    def monitoring(self) -> Service:
        return self.services["monitoring"]

    @property
    def market(self) -> Service:
        return self.services["market"]

    def _build(self, name: str) -> Service:
        path = self.root / f"{name}.db"
        shutil.copyfile(self.templates[name], path)
        url = f"sqlite:///{path}"
        engine = make_engine(url, pool_size=2)
        ctx, handlers, schema = getattr(self, f"_{name}_context")(engine)
        settings = load_settings(name, {
            "SUPPLY_VAR_DIR": str(self.root / "var"), f"{name.upper()}_DATABASE_URL": url,
            "SUPPLY_ROUTING_SECONDS": "0.5"})
        module = importlib.import_module(f"services.{name}.entrypoints.worker")
        patches = [mock.patch.object(module, "build_context", lambda *_a, **_k: ctx)]
        if hasattr(module, "InfluxWriter"):
            patches.append(mock.patch.object(module, "InfluxWriter", _NoInflux))
        for p in patches:
            p.start()
        try:
            cls = module.make_service(settings)
        finally:
            for p in patches:
                p.stop()
        provider = cls.events  # the ServiceDatabase dependency, as nameko would set it up
        provider.setup()
        worker = cls()
        worker.events = provider.get_dependency(None)
        return Service(name, ctx, worker, schema.tables, handlers)

    def _intake_context(self, engine):
        from services.intake import handlers
        from services.intake.adapters import schema
        from services.intake.handlers.base import IntakeContext

        return IntakeContext(engine=engine, catalogue=CATALOGUE, clock=self.clock,
                             secret=b"contract-tests-secret"), handlers, schema

    def _allocation_context(self, engine):
        from services.allocation import handlers
        from services.allocation.adapters import schema
        from services.allocation.domain.county_policy import CountyPolicy
        from services.allocation.handlers.base import AllocationContext

        stock = InProcessStock(self.services["logistics"].ctx) if "logistics" in self.services else None
        # no reserve floors: a handful of bags must be allocatable to a village
        policy = CountyPolicy(reserve_days={g: 0 for g in CATALOGUE.groups})
        return AllocationContext(engine=engine, catalogue=CATALOGUE, clock=self.clock,
                                 tz=CST, default_policy=policy, stock=stock), handlers, schema

    def _logistics_context(self, engine):
        from services.logistics import handlers
        from services.logistics.adapters import schema
        from services.logistics.domain.policy import TripPolicy
        from services.logistics.handlers.base import LogisticsContext

        trips = TripPolicy(time_limit_s=0.5, fallback_time_limit_s=0.5, max_iterations=200, seed=1)
        return LogisticsContext(engine=engine, catalogue=CATALOGUE, clock=self.clock,
                                         trip_policy=trips, delivery_staff_per_drop_point=50), \
            handlers, schema

    def _monitoring_context(self, engine):
        from services.monitoring import handlers
        from services.monitoring.adapters import schema
        from services.monitoring.config import MonitoringConfig
        from services.monitoring.handlers.base import MonitoringContext

        return MonitoringContext(engine=engine, catalogue=CATALOGUE, clock=self.clock,
                                 config=MonitoringConfig(), timezone=CST), handlers, schema

    def _market_context(self, engine):
        from services.market import handlers
        from services.market.adapters import schema
        from services.market.domain.payments import RecordingPaymentPort
        from services.market.handlers.base import MarketContext

        return MarketContext(engine=engine, catalogue=CATALOGUE, clock=self.clock, tz=CST,
                             household_key=b"contract-tests-household-key",
                             payments=RecordingPaymentPort()), handlers, schema

    # ---- moving events
    def deliver(self, envelope: dict, consumer: str) -> None:
        """Hand one envelope to the consumer's worker method, as nameko would (a fresh dict from
        the JSON body). Raises ContractBroken when the consumer dead-letters it."""
        sub = subscription(envelope["source"], envelope["event_type"], consumer)
        svc = self.services[consumer]
        getattr(svc.worker, sub.method)(json.loads(json.dumps(envelope)))
        self.delivered.add((envelope["event_id"], consumer))
        name = f"{consumer}.{sub.method}"
        dl = svc.tables["dead_letters"]
        dead = svc.rows("dead_letters", dl.c.consumer == name, dl.c.event_id == envelope["event_id"])
        if dead:
            raise ContractBroken(
                f"{name} dead-lettered {envelope['source']}.{envelope['event_type']}: "
                f"{dead[-1].error}\npayload: {json.dumps(envelope['payload'], ensure_ascii=False)[:1500]}")
        pe = svc.tables["processed_events"]
        assert svc.rows("processed_events", pe.c.consumer == name,
                        pe.c.event_id == envelope["event_id"]), f"{name} did not record the event"

    def relay(self, source: str, event_type: str, *, to: str | Iterable[str] | None = None,
              where: Callable[[dict], bool] | None = None) -> list[dict]:
        """Deliver the source's not yet delivered `event_type` envelopes (optionally only those
        whose payload passes `where`) to `to` (default: every subscriber this county has).
        Returns the envelopes."""
        if isinstance(to, str):
            to = (to,)
        consumers = [s.consumer for s in subscriptions().get((source, event_type), ())
                     if s.consumer in self.services and (to is None or s.consumer in to)]
        if to is not None:
            for c in to:
                subscription(source, event_type, c)  # fails loudly when c does not subscribe
        sent = []
        for env in self.services[source].outbox(event_type):
            if where is not None and not where(env["payload"]):
                continue
            for consumer in consumers:
                if (env["event_id"], consumer) not in self.delivered:
                    self.deliver(env, consumer)
            sent.append(env)
        return sent

    def pump(self) -> int:
        """Deliver everything pending between the services of this county until nothing is new."""
        total = 0
        while True:
            moved = 0
            for source, svc in list(self.services.items()):
                for env in svc.outbox():
                    for sub in subscriptions().get((source, env["event_type"]), ()):
                        if sub.consumer in self.services and \
                                (env["event_id"], sub.consumer) not in self.delivered:
                            self.deliver(env, sub.consumer)
                            moved += 1
            total += moved
            if not moved:
                return total


class InProcessStock:
    """allocation's StockSource over logistics' own GetStockSnapshot servicer and allocation's
    own proto mapping (adapters/logistics_client.from_proto), without the network hop."""

    def __init__(self, logistics_ctx: Any):
        from services.logistics.entrypoints.grpc_api import LogisticsServicer

        self.servicer = LogisticsServicer(logistics_ctx)

    def snapshot(self, delivery_day: date, item_codes):
        from supply.v1 import logistics_pb2

        from services.allocation.adapters.logistics_client import from_proto
        from services.common.grpc_server import Caller, current_caller

        # as allocation calls it over the network: with its service token (the admin's)
        as_allocation = current_caller.set(Caller("allocation", "admin"))
        try:
            reply = self.servicer.GetStockSnapshot(logistics_pb2.GetStockSnapshotRequest(
                delivery_day=delivery_day.isoformat(), item_codes=sorted(set(item_codes))), None)
        finally:
            current_caller.reset(as_allocation)
        return from_proto(reply)


# ---- producers' use cases, with the data they need ---------------------------------------------

def intake_hq():
    return Caller("hq-officer", "hq")


def logistics_hq():
    return Caller("hq-officer", "hq")


def logistics_keeper():
    return Caller("keeper-1", "depot_keeper")


def register_village(county: County, rid: str = "V1", *, place=VILLAGE, risk: str = "sealed",
                     population: int = 900, households: int = 300, drop_point: str = "DP-1"):
    lat, lon = place
    spec = {
        "id": rid, "kind": "village", "name": "东风村", "township": "城关镇",
        "location": {"lat": lat, "lon": lon}, "population": population, "households": households,
        "risk_level": risk,
        "vulnerable": {"elderly_alone": 12, "disabled": 3, "chronic_patients": 40, "infants": 9,
                       "pregnant": 2},
        "drop_points": [{"id": drop_point, "name": "村委会", "location": {"lat": lat + 0.001,
                                                                       "lon": lon + 0.001},
                         "window_start": "08:00", "window_end": "16:30"}],
    }
    from services.intake.handlers.requesters import register_requester

    return county.intake.run(register_requester, intake_hq(), spec)


def register_hospital(county: County, rid: str = "U1", *, place=HOSPITAL):
    lat, lon = place
    spec = {"id": rid, "kind": "unit", "name": "县人民医院", "township": "城关镇",
            "location": {"lat": lat, "lon": lon}, "unit_type": "hospital", "headcount": 300,
            "beds": 120}
    from services.intake.handlers.requesters import register_requester

    return county.intake.run(register_requester, intake_hq(), spec)


def submit_demand(county: County, rid: str, *lines: tuple[str, int], day: date | None = DAY):
    from services.intake.handlers.demands import submit_demand as submit

    return county.intake.run(submit, intake_hq(), rid,
                             [{"item_code": c, "quantity": q, "note": ""} for c, q in lines],
                             day.isoformat() if day else None)


def setup_depot(county: County, depot: str = "D1", place=DEPOT_1,
                zones: Iterable[tuple[str, str, int]] = (("AMB", "ambient", 100_000),
                                                         ("CHL", "chilled", 20_000)),
                vehicle: bool = True) -> None:
    from services.logistics.handlers import sites

    lg = county.logistics
    lat, lon = place
    lg.run(sites.register_depot, logistics_hq(), {"id": depot, "name": f"{depot}仓", "lat": lat,
                                              "lon": lon})
    for zid, sclass, cap in zones:
        lg.run(sites.register_zone, logistics_hq(), {"id": f"{depot}-{zid}", "depot_id": depot,
                                                 "storage_class": sclass, "capacity_l": cap,
                                                 "name": f"{depot} {sclass}"})
    if vehicle:
        lg.run(sites.register_vehicle, logistics_hq(), {
            "id": f"T-{depot}", "pass_number": f"通-{depot}", "driver": "staff-d1",
            "clerk": "staff-c1", "capacity_kg": 3000, "capacity_l": 20000, "refrigerated": True,
            "depot_id": depot, "slots": [{"start": "07:00", "end": "18:00"}]})


def receive(county: County, item: str, qty: int, *, depot: str = "D1", zone: str = "",
            expiry: date | None = None, lot_number: str = "B1") -> str:
    from services.logistics.handlers import receipts

    lg = county.logistics
    r = lg.run(receipts.receive_stock, logistics_keeper(), kind="purchase", depot_id=depot,
               origin_ref="PO-1", lines=[receipts.ReceiptLineSpec(
                   item, qty, lot_number, (expiry or DAY + timedelta(days=120)).isoformat(), zone)])
    return r["lot_ids"][0]


def propose_and_approve(county: County, day: date = DAY) -> str:
    """allocation makes the day's plan (draft against logistics' snapshot, store) and HQ approves
    it: plan_approved is in allocation's outbox. Returns the plan id."""
    a = county.allocation
    from services.allocation.domain import plan_state as ps
    from services.allocation.handlers.plans import approve_plan, draft_plan, save_plan

    hq = Caller("hq-officer", "hq")
    draft = draft_plan(a.ctx, day)
    view = a.run(save_plan, hq, draft, ps.PlanTrigger.MANUAL)
    a.run(approve_plan, hq, view.header.plan_id)
    return view.header.plan_id

"""Helpers for tests of the intake service against real processes: a module-wide environment,
migrations, the gRPC stub with tokens, request builders, and counting through the public API."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlparse
from zoneinfo import ZoneInfo

import grpc
from supply.v1 import common_pb2, intake_pb2, intake_pb2_grpc

from services.common.config import load_settings
from services.common.migrate import upgrade
from tests.support import infra
from tests.support.processes import ServiceProcess, start_consuming

ADMIN = "test-admin-token-000001"
VILLAGE = "test-village-token-00001"
HQ = "test-hq-token-0000000001"
COUNTY_TZ = ZoneInfo("Asia/Shanghai")

DEMAND_QUEUE = "evt-intake-demand_registered--probe.on_intake_demand_registered"
DELIVERY_QUEUE = "evt-logistics-delivery_confirmed--intake.on_delivery_confirmed"


def make_env(var_dir: Path, amqp_url: str, **extra: str) -> dict[str, str]:
    """What the `service_env` fixture gives one test, for a whole module (module-scoped servers)."""
    env = {
        "AMQP_URL": amqp_url,
        "SUPPLY_VAR_DIR": str(var_dir),
        "SUPPLY_LOG_LEVEL": "INFO",
        "SUPPLY_AUTH_TOKENS": f"{ADMIN}=tester:admin,{VILLAGE}=village-worker:village:V1,"
                              f"{HQ}=hq-officer:hq",
        "SUPPLY_FAILPOINTS": "",
    }
    for service in ("intake", "allocation", "logistics", "monitoring"):
        env[f"{service.upper()}_GRPC_PORT"] = str(infra.free_port())
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> str:
    """Bring intake's database (SQLite under SUPPLY_VAR_DIR, or INTAKE_DATABASE_URL) to head."""
    url = load_settings("intake", env).database_url
    upgrade("intake", url)
    return url


def target(env: dict[str, str]) -> str:
    return f"127.0.0.1:{env['INTAKE_GRPC_PORT']}"


def auth(token: str = ADMIN) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def key() -> str:
    return uuid.uuid4().hex


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def county_today() -> date:
    return datetime.now(COUNTY_TZ).date()


def day(offset: int) -> str:
    return (county_today() + timedelta(days=offset)).isoformat()


class Intake:
    """A stub that sends the admin token unless told otherwise."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.channel = grpc.insecure_channel(target(env))
        self.stub = intake_pb2_grpc.IntakeServiceStub(self.channel)

    def __getattr__(self, name: str):
        method = getattr(self.stub, name)

        def call(request, token: str | None = ADMIN, **kw):
            kw.setdefault("timeout", 20)
            return method(request, metadata=auth(token) if token else None, **kw)

        return call

    def close(self) -> None:
        self.channel.close()

    # ---- builders and shortcuts
    def village(self, rid: str | None = None, risk: int = common_pb2.RISK_LEVEL_PREVENTION,
                population: int = 1200, kind: int = intake_pb2.REQUESTER_KIND_VILLAGE,
                township: str = "河西镇") -> intake_pb2.Requester:
        rid = rid or uid("V")
        return self.RegisterRequester(intake_pb2.RegisterRequesterRequest(
            idempotency_key=key(), requester=village_spec(rid, risk, population, kind, township)))

    def unit(self, rid: str | None = None, unit_type: int = intake_pb2.UNIT_TYPE_HOSPITAL,
             headcount: int = 300, beds: int = 120) -> intake_pb2.Requester:
        rid = rid or uid("U")
        return self.RegisterRequester(intake_pb2.RegisterRequesterRequest(
            idempotency_key=key(), requester=intake_pb2.Requester(
                id=rid, kind=intake_pb2.REQUESTER_KIND_UNIT, name="县人民医院", township="城关镇",
                location=common_pb2.GeoPoint(lat=30.2688, lon=120.1602), unit_type=unit_type,
                headcount=headcount, beds=beds)))

    def demand(self, requester_id: str, *lines: tuple[str, int], delivery_day: str = "",
               token: str = ADMIN) -> intake_pb2.Demand:
        return self.SubmitDemand(demand_request(requester_id, *lines, delivery_day=delivery_day),
                                 token=token)

    def list_demands(self, **filters) -> list[intake_pb2.Demand]:
        """Every demand matching the filters, following page tokens."""
        out: list[intake_pb2.Demand] = []
        token = ""
        while True:
            resp = self.ListDemands(intake_pb2.ListDemandsRequest(
                page=common_pb2.PageRequest(page_size=500, page_token=token), **filters))
            out.extend(resp.demands)
            token = resp.page.next_page_token
            if not token:
                return out

    def list_requesters(self, **filters) -> list[intake_pb2.Requester]:
        out: list[intake_pb2.Requester] = []
        token = ""
        while True:
            resp = self.ListRequesters(intake_pb2.ListRequestersRequest(
                page=common_pb2.PageRequest(page_size=500, page_token=token), **filters))
            out.extend(resp.requesters)
            token = resp.page.next_page_token
            if not token:
                return out


def village_spec(rid: str, risk: int = common_pb2.RISK_LEVEL_PREVENTION, population: int = 1200,
                 kind: int = intake_pb2.REQUESTER_KIND_VILLAGE, township: str = "河西镇"
                 ) -> intake_pb2.Requester:
    return intake_pb2.Requester(
        id=rid, kind=kind, name="河西村", township=township,
        location=common_pb2.GeoPoint(lat=30.312, lon=120.0905),
        drop_points=[intake_pb2.DropPoint(
            id="DP1", name="村委会门口", location=common_pb2.GeoPoint(lat=30.3118, lon=120.0911),
            window=common_pb2.LocalTimeWindow(start="08:00", end="10:30"))],
        population=population, households=population // 3, risk_level=risk,
        vulnerable=intake_pb2.VulnerableCounts(elderly_alone=18, infants=22))


def demand_request(requester_id: str, *lines: tuple[str, int], delivery_day: str = "",
                   idempotency_key: str | None = None) -> intake_pb2.SubmitDemandRequest:
    return intake_pb2.SubmitDemandRequest(
        idempotency_key=key() if idempotency_key is None else idempotency_key,
        requester_id=requester_id, delivery_day=delivery_day,
        lines=[common_pb2.ItemLine(item_code=c, quantity=q) for c, q in lines])


def start_api(env: dict[str, str], log_dir: Path, **extra_env: str) -> ServiceProcess:
    proc = ServiceProcess("intake", "api", env, log_dir, extra_env=extra_env).start()
    proc.wait_healthy(target(env))
    return proc


@contextmanager
def running_api(tmp: Path, amqp_url: str, **env_extra: str) -> Iterator[Intake]:
    """An intake API process on its own SQLite database under `tmp` (settings: make_env with
    `env_extra`), and a client for it; the process must stop cleanly afterwards."""
    env = make_env(tmp / "var", amqp_url, **env_extra)
    migrate(env)
    proc = start_api(env, tmp)
    client = Intake(env)
    try:
        yield client
    finally:
        client.close()
        code = proc.stop()
    assert code == 0, proc.log()[-3000:]


def start_worker(env: dict[str, str], log_dir: Path, **extra_env: str) -> ServiceProcess:
    return start_consuming("intake", "worker", env, log_dir, [DELIVERY_QUEUE], **extra_env)


def start_relay(env: dict[str, str], log_dir: Path, **extra_env: str) -> ServiceProcess:
    return ServiceProcess("intake", "relay", env, log_dir, extra_env=extra_env).start()


def queue_idle(amqp_url: str, queue: str) -> bool:
    """True when `queue` holds no message, neither ready nor delivered and unacknowledged (a
    nameko handler acks after its transaction committed). Without rabbitmqctl only ready
    messages can be seen."""
    if shutil.which("rabbitmqctl") is None:
        import pika

        conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        try:
            return conn.channel().queue_declare(queue, passive=True).method.message_count == 0
        finally:
            conn.close()
    vhost = unquote(urlparse(amqp_url).path[1:]) or "/"
    out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name",
                          "messages_ready", "messages_unacknowledged"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == queue:
            return parts[1:] == ["0", "0"]
    return False

"""Helpers for tests of the market service against real processes: the environment (on intake's
and monitoring's), migrations, starters, the gRPC stub with a token per role, and builders."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import grpc
from supply.v1 import common_pb2, intake_pb2, market_pb2, market_pb2_grpc

from services.common.config import load_settings
from services.common.messaging import Subscription
from services.common.migrate import upgrade
from tests.support import infra, intake, monitoring
from tests.support.processes import ServiceProcess, start_consuming

pb = market_pb2
ADMIN = intake.ADMIN
HQ = intake.HQ
OUTLET = "SM-TEST-01"          # the supermarket serving the test's communities
OTHER_OUTLET = "SM-TEST-FAR"   # far away: serves nobody unless assigned
SUPPLY_POINT = "SP-TEST-01"
COMMUNITY = "C-MKT-1"
OTHER_COMMUNITY = "C-MKT-2"
TOKENS = {
    "supermarket": "test-market-sm-token-0001",
    "grid_worker": "test-market-gw-token-0001",
    "other_grid_worker": "test-market-gw-token-0002",
    "clerk": "test-market-clerk-token-01",
    "auditor": "test-market-auditor-token1",
    "department": "test-market-dept-token-001",
    "other_supermarket": "test-market-sm-token-0002",
    "supply_point": "test-market-sp-token-0001",
}
WORKER_QUEUE = Subscription("intake", "requester_registered", "market", "on_requester_registered").queue


def make_env(var_dir: Path, amqp_url: str, influx_db: str, **extra: str) -> dict[str, str]:
    """monitoring support's environment (itself intake's) with market's port and the tokens of
    the market's roles."""
    tokens = ",".join([
        f"{ADMIN}=tester:admin", f"{HQ}=hq-officer:hq",
        f"{TOKENS['supermarket']}=sm-staff:supermarket:{OUTLET}",
        f"{TOKENS['other_supermarket']}=sm-far:supermarket:{OTHER_OUTLET}",
        f"{TOKENS['supply_point']}=sp-staff:supermarket:{SUPPLY_POINT}",
        f"{TOKENS['grid_worker']}=gw-wang:grid_worker:{COMMUNITY}",
        f"{TOKENS['other_grid_worker']}=gw-li:grid_worker:{OTHER_COMMUNITY}",
        f"{TOKENS['clerk']}=clerk-zhao:clerk", f"{TOKENS['auditor']}=auditor-sun:auditor",
        f"{TOKENS['department']}=dept-qian:department",
    ])
    return monitoring.make_env(var_dir, amqp_url, influx_db, **{
        "MARKET_GRPC_PORT": str(infra.free_port()), "SUPPLY_AUTH_TOKENS": tokens, **extra})


def migrate(env: dict[str, str]) -> str:
    url = load_settings("market", env).database_url
    upgrade("market", url)
    return url


def target(env: dict[str, str]) -> str:
    return f"127.0.0.1:{env['MARKET_GRPC_PORT']}"


def start_api(env: dict[str, str], log_dir: Path) -> ServiceProcess:
    proc = ServiceProcess("market", "api", env, log_dir).start()
    proc.wait_healthy(target(env))
    return proc


def start_worker(env: dict[str, str], log_dir: Path) -> ServiceProcess:
    return start_consuming("market", "worker", env, log_dir, [WORKER_QUEUE], timeout=40)


def start_relay(env: dict[str, str], log_dir: Path) -> ServiceProcess:
    return ServiceProcess("market", "relay", env, log_dir).start()


class Market:
    """A stub; each call names the role whose token it sends (admin by default)."""

    def __init__(self, env: dict[str, str]):
        self.channel = grpc.insecure_channel(target(env))
        self.stub = market_pb2_grpc.MarketServiceStub(self.channel)

    def __getattr__(self, name: str):
        method = getattr(self.stub, name)

        def call(request, role: str = "admin", **kw):
            token = {"admin": ADMIN, "hq": HQ}.get(role) or TOKENS[role]
            kw.setdefault("timeout", 20)
            return method(request, metadata=[("authorization", f"Bearer {token}")], **kw)

        return call

    def close(self) -> None:
        self.channel.close()


def key() -> str:
    return intake.key()


def day(offset: int) -> str:
    return intake.day(offset)


def county_today() -> date:
    return intake.county_today()


def community_spec(rid: str, lat: float, lon: float, drop_points: tuple[str, ...] = ("DP1", "DP2"),
                   households: int = 420) -> intake_pb2.Requester:
    return intake_pb2.Requester(
        id=rid, kind=intake_pb2.REQUESTER_KIND_COMMUNITY, name=f"幸福社区 {rid}", township="城关镇",
        location=common_pb2.GeoPoint(lat=lat, lon=lon),
        drop_points=[intake_pb2.DropPoint(id=dp, name=f"{dp} 号门岗", location=common_pb2.GeoPoint(lat=lat, lon=lon),
                                          window=common_pb2.LocalTimeWindow(start="08:00", end="11:00"))
                     for dp in drop_points],
        population=households * 3, households=households, risk_level=common_pb2.RISK_LEVEL_SEALED)


def outlet(outlet_id: str, lat: float, lon: float, kind: str = "supermarket", cutoff: str = "") -> pb.Outlet:
    return pb.Outlet(outlet_id=outlet_id, name=f"定点超市 {outlet_id}", kind=kind, township="城关镇",
                     location=common_pb2.GeoPoint(lat=lat, lon=lon), active=True, order_cutoff=cutoff)


def lines(*pairs: tuple[str, int]) -> list[pb.OrderLine]:
    return [pb.OrderLine(item_code=c, quantity=q) for c, q in pairs]


def at(d: str, hhmm: str) -> datetime:
    """A county-local instant on day `d`."""
    return datetime.combine(date.fromisoformat(d), datetime.strptime(hhmm, "%H:%M").time(), intake.COUNTY_TZ)


def days_before(d: str, n: int) -> str:
    return (date.fromisoformat(d) - timedelta(days=n)).isoformat()

"""WatchAlerts streams against a real monitoring API process with a small pool
(SUPPLY_GRPC_THREADS=4): more open streams than threads, from several identities, leave
ListAlerts and health answering (a stream waits on the event loop, not on a pool thread); a
transition reaches every open stream; the per-identity and the total bounds answer
RESOURCE_EXHAUSTED naming the limit, and a cancelled stream frees its place."""

from __future__ import annotations

import threading
import time
from zoneinfo import ZoneInfo

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from supply.v1 import monitoring_pb2 as pb
from supply.v1 import monitoring_pb2_grpc as rpc

from services.common.catalogue import load_catalogue
from services.common.clock import RealClock
from services.common.config import load_settings
from services.monitoring.config import monitoring_config
from services.monitoring.handlers import base, lots
from tests.support.intake import ADMIN
from tests.support.monitoring import engine, make_env, migrate, start_api
from tests.support.polling import eventually

THREADS = 4
PER_IDENTITY = 3
MOST = 8
WATCHERS = {name: f"test-{name}-token-0000001" for name in ("watcher-a", "watcher-b", "watcher-c",
                                                            "watcher-d")}


@pytest.fixture(scope="module")
def world(tmp_path_factory, amqp_url, influx_db):
    tmp = tmp_path_factory.mktemp("mon-watch")
    env = make_env(tmp / "var", amqp_url, influx_db)
    env["SUPPLY_AUTH_TOKENS"] += "".join(f",{token}={name}:hq" for name, token in WATCHERS.items())
    env.update(SUPPLY_GRPC_THREADS=str(THREADS), MONITORING_WATCH_STREAMS_PER_IDENTITY=str(PER_IDENTITY),
               MONITORING_WATCH_STREAMS_MAX=str(MOST))
    migrate(env)
    ctx = base.MonitoringContext(engine=engine(env), catalogue=load_catalogue(), clock=RealClock(),
                              config=monitoring_config(load_settings("monitoring", env)),
                              timezone=ZoneInfo("Asia/Shanghai"))
    api = start_api(env, tmp)
    channel = grpc.insecure_channel(f"127.0.0.1:{env['MONITORING_GRPC_PORT']}")
    yield {"env": env, "ctx": ctx, "channel": channel, "stub": rpc.MonitoringServiceStub(channel), "api": api}
    channel.close()
    api.stop()


def auth(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


class Watch:
    """One WatchAlerts stream, read on a thread of its own."""

    def __init__(self, world, who: str, **request):
        self.call = world["stub"].WatchAlerts(pb.WatchAlertsRequest(**request),
                                              metadata=auth(WATCHERS[who]), timeout=120)
        self.got: list[pb.AlertTransition] = []
        self.error: grpc.RpcError | None = None
        self.metadata: dict[str, str] = {}
        self.answered = threading.Event()  # initial metadata, or the call's end
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        self.metadata = dict(self.call.initial_metadata())
        self.answered.set()
        try:
            for t in self.call:
                self.got.append(t)
        except grpc.RpcError as exc:
            self.error = exc

    def opened(self, timeout: float = 10) -> bool:
        """Whether the server took it (its starting cursor came); False when refused."""
        assert self.answered.wait(timeout), "the server did not answer the stream's opening"
        return "x-watch-cursor" in self.metadata

    def cancel(self) -> None:
        self.call.cancel()
        self.thread.join(5)


class Watches:
    """The streams a test opens; all cancelled at its end."""

    def __init__(self, world):
        self.world = world
        self.all: list[Watch] = []

    def open(self, who: str, **request) -> Watch:
        w = Watch(self.world, who, **request)
        self.all.append(w)
        return w

    def full_house(self) -> list[Watch] | None:
        """MOST streams, each identity up to its bound (twice as many as the pool has threads);
        None, with none of them left open, if the server refused one."""
        streams = [self.open(who) for who in FULL_HOUSE]
        if all(w.opened() for w in streams):
            return streams
        for w in streams:
            w.cancel()
        return None

    def cancel_all(self) -> None:
        for w in self.all:
            w.cancel()


FULL_HOUSE = ("watcher-a",) * PER_IDENTITY + ("watcher-b",) * PER_IDENTITY + ("watcher-c",) * (MOST - 2 * PER_IDENTITY)


@pytest.fixture
def watches(world):
    w = Watches(world)
    yield w
    w.cancel_all()
    # every place was given back: the whole house opens again (checked after every test)
    check = Watches(world)
    try:
        eventually(check.full_house, timeout=10, what="every place given back after the cancels")
    finally:
        check.cancel_all()


def health(world) -> int:
    return health_pb2_grpc.HealthStub(world["channel"]).Check(health_pb2.HealthCheckRequest(), timeout=2).status


def test_more_streams_than_threads_leave_the_api_answering(world, watches):
    streams = watches.full_house()
    assert streams and len(streams) == 2 * THREADS
    # answered, again and again, for longer than the pool may stay full before health turns
    deadline = time.monotonic() + 3.0
    answered = 0
    while time.monotonic() < deadline:
        world["stub"].ListAlerts(pb.ListAlertsRequest(), metadata=auth(ADMIN), timeout=5)
        assert health(world) == health_pb2.HealthCheckResponse.SERVING
        answered += 1
    assert answered >= 3 and all(w.error is None for w in streams)


def test_a_transition_reaches_every_open_stream(world, watches):
    streams = watches.full_house()
    assert streams
    ctx, group = world["ctx"], "grain_oil"  # this module's database has no alert of it yet
    with ctx.uow() as uow:
        lots.reserve_below_floor(ctx, uow, {"payload": {"group": group, "days_of_supply": 3.0, "floor_days": 15}})
        uow.commit()

    def everywhere():
        return all(any(t.alert.subject == group for t in w.got) for w in streams)

    eventually(everywhere, timeout=10, what="the new alert on every stream")
    for w in streams:
        t = next(t for t in w.got if t.alert.subject == group)
        start = int(w.metadata["x-watch-cursor"])
        assert t.action == pb.ALERT_ACTION_OPENED and t.cursor > start


def refused(w: Watch, limit: str) -> bool:
    assert not w.opened()
    w.thread.join(5)
    assert w.error is not None and w.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert limit in w.error.details() and "上限" in w.error.details(), w.error.details()
    return True


def test_bounds_answer_resource_exhausted_and_a_cancelled_stream_frees_its_place(world, watches):
    mine = [watches.open("watcher-a") for _ in range(PER_IDENTITY)]
    assert all(w.opened() for w in mine)
    assert refused(watches.open("watcher-a"), f"MONITORING_WATCH_STREAMS_PER_IDENTITY={PER_IDENTITY}")
    assert watches.open("watcher-b").opened()  # another identity is not concerned
    mine[0].cancel()
    eventually(lambda: watches.open("watcher-a").opened(), timeout=10, what="a place for watcher-a again")
    # the total bound, whoever asks: fill the server up to MOST
    more = [watches.open(who) for who in ("watcher-b",) * (PER_IDENTITY - 1) + ("watcher-c",) * (MOST - 2 * PER_IDENTITY)]
    assert all(w.opened() for w in more)
    assert refused(watches.open("watcher-c"), f"MONITORING_WATCH_STREAMS_MAX={MOST}")
    more[0].cancel()
    eventually(lambda: watches.open("watcher-c").opened(), timeout=10, what="a place on the server again")


def test_a_refused_or_bad_stream_is_answered_like_any_call_and_holds_no_place(world, watches):
    for request, code, field in (
        (pb.WatchAlertsRequest(after_cursor=-1), grpc.StatusCode.INVALID_ARGUMENT, "after_cursor"),
        (pb.WatchAlertsRequest(kinds=[pb.ALERT_KIND_UNSPECIFIED]), grpc.StatusCode.INVALID_ARGUMENT, "kinds[0]"),
    ):
        for _ in range(PER_IDENTITY + 1):  # more than the bound: refused streams give their place back
            call = world["stub"].WatchAlerts(request, metadata=auth(WATCHERS["watcher-a"]) + [
                ("x-correlation-id", "cid-watch-test")], timeout=10)
            with pytest.raises(grpc.RpcError) as e:
                next(call)
            assert e.value.code() == code and e.value.details().startswith(field)
            assert ("x-correlation-id", "cid-watch-test") in e.value.trailing_metadata()
    with pytest.raises(grpc.RpcError) as e:
        next(world["stub"].WatchAlerts(pb.WatchAlertsRequest(), timeout=10))
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED

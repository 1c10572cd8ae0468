"""grpc.health.v1 of a real API process says NOT_SERVING while its thread pool is saturated by
slow sync calls, and SERVING again once they return (services/common/grpc_server.py). The
process is tests/support/saturation_api.py: serve() with a test-only service whose Block call
holds a pool thread until Release (an async call, answered on the loop) lets it go."""

from __future__ import annotations

import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support import infra
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess

TOKEN = "test-admin-token-000001"
AUTH = [("authorization", f"Bearer {TOKEN}")]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
THREADS = 4


@pytest.fixture
def api(tmp_path):
    port = infra.free_port()
    env = {"SUPPLY_AUTH_TOKENS": f"{TOKEN}=tester:admin", "SUPPLY_GRPC_THREADS": str(THREADS),
           "SUPPLY_VAR_DIR": str(tmp_path / "var"), "SUPPLY_LOG_LEVEL": "INFO"}
    proc = ServiceProcess("tests", "saturation-api", env, tmp_path,
                          args=[sys.executable, "tests/support/saturation_api.py", str(port)]).start()
    target = f"127.0.0.1:{port}"
    try:
        proc.wait_healthy(target)
        with grpc.insecure_channel(target) as channel:
            yield proc, channel
    finally:
        proc.stop()


def health(channel, service: str = ""):
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                      timeout=2).status


def test_health_is_not_serving_while_every_thread_is_held_and_serving_after(api):
    proc, channel = api
    block = channel.unary_unary("/test.Saturation/Block")
    echo = channel.unary_unary("/test.Saturation/Echo")
    release = channel.unary_unary("/test.Saturation/Release")
    assert echo(b"hi", metadata=AUTH, timeout=5) == b"hi"
    blocked = [block.future(b"", metadata=AUTH, timeout=60) for _ in range(THREADS)]
    # every thread held: the status turns, for the whole server and for its services
    eventually(lambda: health(channel) == NOT_SERVING, timeout=15, interval=0.1,
               what="NOT_SERVING while saturated")
    assert health(channel, "test.Saturation") == NOT_SERVING
    # … and it tells the truth: a sync call cannot be answered now
    with pytest.raises(grpc.RpcError) as e:
        echo(b"hi", metadata=AUTH, timeout=1)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "grpc api saturated" in proc.log() and f"all {THREADS} threads" in proc.log()
    release(b"", metadata=AUTH, timeout=5)  # async: answered on the loop all along
    assert [f.result(timeout=10) for f in blocked] == [b"released"] * THREADS
    eventually(lambda: health(channel) == SERVING and health(channel, "test.Saturation") == SERVING,
               timeout=15, interval=0.1, what="SERVING once the calls returned")
    assert echo(b"again", metadata=AUTH, timeout=5) == b"again"
    assert "grpc api no longer saturated" in proc.log()

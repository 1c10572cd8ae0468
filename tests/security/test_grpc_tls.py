"""Issue 14, finding 6: gRPC over TLS, and client certificates for departments (mTLS).

Certificates come from deploy/scripts/make-certs.sh in a temporary directory; the intake API is
the real process, on the real broker; clients open channels the way every client of the system
does (services.common.grpc_client.open_channel)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from supply.v1 import intake_pb2, intake_pb2_grpc

from services.common.config import load_settings
from services.common.grpc_client import open_channel
from tests.support.intake import ADMIN, auth, migrate
from tests.support.processes import ServiceProcess

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    subprocess.run(["sh", str(ROOT / "deploy/scripts/make-certs.sh"), str(out)], check=True,
                   capture_output=True, timeout=60)
    return out


def tls_env(certs: Path, *, client_ca: bool = False) -> dict[str, str]:
    env = {"SUPPLY_GRPC_TLS_CERT": str(certs / "server.pem"), "SUPPLY_GRPC_TLS_KEY": str(certs / "server.key"),
           "SUPPLY_GRPC_TLS_CA": str(certs / "ca.pem")}
    if client_ca:
        env["SUPPLY_GRPC_TLS_CLIENT_CA"] = str(certs / "ca.pem")
    return env


def client_cert(certs: Path) -> dict[str, str]:
    return {"SUPPLY_GRPC_TLS_CLIENT_CERT": str(certs / "client.pem"),
            "SUPPLY_GRPC_TLS_CLIENT_KEY": str(certs / "client.key")}


def start_intake(service_env: dict, tmp_path: Path, env: dict[str, str]) -> ServiceProcess:
    full = {**service_env, **env}
    migrate(full)
    api = ServiceProcess("intake", "api", full, tmp_path).start()
    return api


def health(channel: grpc.Channel) -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3).status


def serving_over(settings, api: ServiceProcess) -> None:
    from tests.support.polling import eventually

    def up():
        if not api.alive():
            raise AssertionError(api.log()[-3000:])
        try:
            with open_channel(settings.grpc_target("intake"), settings.grpc_tls) as ch:
                return health(ch) == health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError:
            return False
    eventually(up, timeout=30, interval=0.1, what="intake SERVING over TLS")


def test_a_tls_client_is_served_and_a_plaintext_one_is_not(service_env, tmp_path, certs):
    api = start_intake(service_env, tmp_path, tls_env(certs))
    try:
        settings = load_settings("tools", {**service_env, **tls_env(certs)})
        serving_over(settings, api)
        with open_channel(settings.grpc_target("intake"), settings.grpc_tls) as ch:
            items = intake_pb2_grpc.IntakeServiceStub(ch).ListCatalogueItems(
                intake_pb2.ListCatalogueItemsRequest(), metadata=auth(ADMIN), timeout=10)
            assert items.items
        with grpc.insecure_channel(settings.grpc_target("intake")) as plain, \
                pytest.raises(grpc.RpcError) as refused:
            health(plain)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        api.stop()


def test_with_a_client_ca_only_clients_with_a_certificate_are_served(service_env, tmp_path, certs):
    api = start_intake(service_env, tmp_path, tls_env(certs, client_ca=True))
    try:
        with_cert = load_settings("tools", {**service_env, **tls_env(certs), **client_cert(certs)})
        serving_over(with_cert, api)
        with open_channel(with_cert.grpc_target("intake"), with_cert.grpc_tls) as ch:
            assert health(ch) == health_pb2.HealthCheckResponse.SERVING
        without = load_settings("tools", {**service_env, **tls_env(certs)})
        with open_channel(without.grpc_target("intake"), without.grpc_tls) as ch, \
                pytest.raises(grpc.RpcError) as refused:
            health(ch)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        api.stop()


def test_production_serves_every_interface_only_with_tls(service_env, tmp_path, certs):
    strong = {"SUPPLY_ENV": "production", "SUPPLY_SECRET": "p" * 40, "SUPPLY_JWT_KEY": "j" * 40,
              "SUPPLY_AUTH_TOKENS": f"{'h' * 32}=hq-duty:hq",
              "AMQP_URL": "amqp://supply-intake:" + "s" * 40 + "@127.0.0.1:5672/supply",
              "SUPPLY_GRPC_HOST": "0.0.0.0"}
    from services.common.config import ConfigError

    with pytest.raises(ConfigError, match="SUPPLY_GRPC_HOST"):
        load_settings("intake", {**service_env, **strong})
    assert load_settings("intake", {**service_env, **strong, **tls_env(certs)}).grpc_tls.enabled


def test_the_health_probe_answers_over_tls(service_env, tmp_path, certs):
    """What compose's and Kubernetes' health checks run inside the API's container."""
    env = {**tls_env(certs, client_ca=True), **client_cert(certs)}
    api = start_intake(service_env, tmp_path, env)
    try:
        serving_over(load_settings("tools", {**service_env, **env}), api)
        probe = ServiceProcess("intake", "probe", {**service_env, **env}, tmp_path,
                               args=[api.args[0], "-m", "services.common.grpc_client", "intake"])
        probe.start()
        assert probe.wait_exit(30) == 0, probe.log()
    finally:
        api.stop()

"""Which RabbitMQ, PostgreSQL, Mosquitto and InfluxDB the tests use: the one the environment
names, the one answering on its default port, or (on a laptop with Docker) one started with
testcontainers on that default port, so every address the tests hard-code still holds.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    env_var: str | None           # the variable that names your own server (None: fixed address)
    image: str
    container_env: dict[str, str] = field(default_factory=dict)
    command: str | None = None


SERVERS = {
    "rabbitmq": Server("RabbitMQ", 5672, "TEST_RABBIT_HOST", "rabbitmq:3.13"),
    "postgresql": Server("PostgreSQL", 5432, "TEST_PG_ADMIN", "postgres:16",
                         {"POSTGRES_HOST_AUTH_METHOD": "trust"}),
    "mosquitto": Server("Mosquitto", 1883, None, "eclipse-mosquitto:2",
                        command="mosquitto -c /mosquitto-no-auth.conf"),
    "influxdb": Server("InfluxDB", 8086, "INFLUX_URL", "influxdb:1.8"),
}


@dataclass(frozen=True)
class Use:
    """A server answers: the tests use it as they find it."""


@dataclass(frozen=True)
class Start:
    server: Server


@dataclass(frozen=True)
class Fail:
    message: str


def choose(service: str, given_url: str | None, port_answers: Callable[[], bool],
           docker_answers: Callable[[], bool]) -> Use | Start | Fail:
    """The probes are called only when needed: a given address asks nothing, an answering port
    never asks Docker (CI has no Docker engine and must not wait for one)."""
    server = SERVERS[service]
    if given_url or port_answers():
        return Use()
    if docker_answers():
        return Start(server)
    named = f", or set {server.env_var} to your own server" if server.env_var else ""
    return Fail(
        f"{server.name} is not answering on 127.0.0.1:{server.port} and no Docker engine answers "
        f"for testcontainers: run `make up` (or `deploy/scripts/servers.sh up`), or start Docker "
        f"(Docker Desktop) and the tests start it{named} / "
        f"{server.name} 未在 127.0.0.1:{server.port} 应答，且没有可用的 Docker 引擎启动测试容器："
        f"请先运行 `make up`（或 `deploy/scripts/servers.sh up`），或启动 Docker（Docker Desktop）由测试自动启动")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def docker_answers() -> bool:
    try:
        import docker
    except ImportError:
        return False
    try:
        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


_started: dict[str, object] = {}


def ensure(service: str, ready: Callable[[], bool]) -> None:
    """Make `service` answer on its default port for this test session, or fail saying how.
    `ready` is a real handshake: Docker's port proxy accepts connections before the server does."""
    server = SERVERS[service]
    if service in _started:
        return
    choice = choose(service, os.environ.get(server.env_var) if server.env_var else None,
                    lambda: port_open(server.port), docker_answers)
    if isinstance(choice, Fail):
        raise RuntimeError(choice.message)
    if isinstance(choice, Start):
        _started[service] = _start(server, ready)


def _start(server: Server, ready: Callable[[], bool]):
    try:
        from testcontainers.core.container import DockerContainer
    except ImportError as e:
        raise RuntimeError(f"{server.name} must be started with testcontainers: `make setup` "
                           f"(or `pip install testcontainers`) / 需要安装 testcontainers") from e
    from tests.support.polling import eventually

    container = DockerContainer(server.image).with_bind_ports(server.port, server.port)
    for k, v in server.container_env.items():
        container = container.with_env(k, v)
    if server.command:
        container = container.with_command(server.command)
    container.start()

    def answers() -> bool:
        try:
            return ready()
        except Exception:
            return False

    eventually(answers, timeout=90, interval=0.5, what=f"{server.name} container ready")
    return container


def stop_started() -> None:
    while _started:
        _, container = _started.popitem()
        container.stop()

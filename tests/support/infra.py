"""Isolated resources on the real servers of this machine, one set per test session:
a RabbitMQ vhost, PostgreSQL databases, an InfluxDB database. Two test runs on one machine do
not see each other's queues or rows. Where no server answers, tests/support/servers.py starts
one with testcontainers (a laptop with Docker) or fails saying how to start it.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from urllib.parse import quote

import psycopg
import requests

from tests.support import servers
from tests.support.servers import port_open  # noqa: F401  (tests import it from here)

RABBIT_HOST = os.environ.get("TEST_RABBIT_HOST", "127.0.0.1")
PG_ADMIN = os.environ.get("TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
INFLUX_URL = os.environ.get("INFLUX_URL", "http://127.0.0.1:8086")


def _rabbit_ready() -> bool:
    import pika

    pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@{RABBIT_HOST}:5672/%2F")).close()
    return True


def _pg_ready() -> bool:
    psycopg.connect(PG_ADMIN, connect_timeout=3).close()
    return True


def _influx_ready() -> bool:
    return requests.get(f"{INFLUX_URL}/ping", timeout=3).status_code == 204


def _mosquitto_ready() -> bool:
    """An MQTT 3.1.1 CONNECT (empty client id, clean session) is answered with a CONNACK."""
    with socket.create_connection(("127.0.0.1", 1883), timeout=3) as s:
        s.sendall(bytes.fromhex("100c00044d51545404020005 0000"))
        return s.recv(4)[:1] == b"\x20"


READY: dict[int, tuple[str, Callable[[], bool]]] = {
    5672: ("rabbitmq", _rabbit_ready), 5432: ("postgresql", _pg_ready),
    1883: ("mosquitto", _mosquitto_ready), 8086: ("influxdb", _influx_ready),
}


def require(port: int, name: str) -> None:
    """The server on `port` answers for this session (started with testcontainers if need be)."""
    service, ready = READY[port]
    servers.ensure(service, ready)


def run_id() -> str:
    return f"t{os.getpid()}{uuid.uuid4().hex[:6]}"


class RabbitVhost:
    def __init__(self, name: str):
        self.name = name
        self.isolated = shutil.which("rabbitmqctl") is not None

    def create(self) -> str:
        require(5672, "RabbitMQ")
        if self.isolated:
            subprocess.run(["rabbitmqctl", "-q", "add_vhost", self.name], check=True,
                           capture_output=True)
            subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", self.name, "guest",
                            ".*", ".*", ".*"], check=True, capture_output=True)
            return f"amqp://guest:guest@{RABBIT_HOST}:5672/{quote(self.name, safe='')}"
        return f"amqp://guest:guest@{RABBIT_HOST}:5672/%2F"

    def drop(self) -> None:
        if self.isolated:
            subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.name], capture_output=True)


def create_pg_database(name: str) -> str:
    require(5432, "PostgreSQL")
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return f"{base}/{name}"


def drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_influx_database(name: str) -> None:
    require(8086, "InfluxDB")
    requests.post(f"{INFLUX_URL}/query", data={"q": f'CREATE DATABASE "{name}"'}, timeout=10).raise_for_status()


def drop_influx_database(name: str) -> None:
    requests.post(f"{INFLUX_URL}/query", data={"q": f'DROP DATABASE "{name}"'}, timeout=10)


_HANDED_OUT: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = open("/proc/sys/net/ipv4/ip_local_port_range").read().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A port that is free now and that the kernel will not hand to anyone's outgoing connection.

    A port from bind(("", 0)) lies in the ephemeral range, so between this check and the service's
    own bind a client socket (to RabbitMQ, PostgreSQL, ...) may be given it: CI lost a run to that.
    Ports below the ephemeral range are only ever taken by an explicit bind.
    """
    low, _ = _ephemeral_range()
    top = min(low, 32768) - 1
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        port = rng.randint(max(10000, top - 12000), top)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


def queue_consumers(amqp_url: str, queue: str) -> int:
    """How many consumers a queue has (0 if it does not exist yet)."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        ch = conn.channel()
        try:
            return ch.queue_declare(queue, passive=True).method.consumer_count
        except pika.exceptions.ChannelClosedByBroker:
            return 0
    finally:
        if conn.is_open:
            conn.close()

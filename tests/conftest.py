"""Shared fixtures. Integration and end-to-end tests use the real servers of this machine,
isolated: a RabbitMQ vhost per test module, PostgreSQL databases and an InfluxDB database per
test session. A server that does not answer is started with testcontainers where Docker runs
(tests/support/servers.py) and stopped at the end of the session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import infra, servers


@pytest.fixture(scope="session")
def run_id() -> str:
    return infra.run_id()


@pytest.fixture(scope="module")
def amqp_url(run_id, request):
    """A RabbitMQ vhost of the test module's own: the relays declare every consumer's queue, so a
    shared vhost would fill one module's queues with another module's events."""
    vhost = infra.RabbitVhost(f"supply-{run_id}-{request.module.__name__.rsplit('.', 1)[-1]}")
    url = vhost.create()
    yield url
    vhost.drop()


@pytest.fixture(scope="session")
def pg_url_factory(run_id):
    created: list[str] = []

    def make(label: str) -> str:
        name = f"supply_{run_id}_{label}_{len(created)}"
        created.append(name)
        return infra.create_pg_database(name)

    yield make
    for name in created:
        infra.drop_pg_database(name)


@pytest.fixture(scope="session")
def influx_db(run_id):
    name = f"supply_{run_id}"
    infra.create_influx_database(name)
    yield name
    infra.drop_influx_database(name)


@pytest.fixture
def service_env(tmp_path: Path, amqp_url) -> dict[str, str]:
    """Environment for service processes of one test: own var dir (SQLite files, spool), own
    ports, the session's vhost."""
    env = {
        "AMQP_URL": amqp_url,
        "SUPPLY_VAR_DIR": str(tmp_path / "var"),
        "SUPPLY_LOG_LEVEL": "INFO",
        "SUPPLY_AUTH_TOKENS": "test-admin-token-000001=tester:admin,"
                              "test-village-token-00001=village-worker:village:V1,"
                              "test-hq-token-0000000001=hq-officer:hq",
    }
    for service in ("intake", "allocation", "logistics", "monitoring"):
        env[f"{service.upper()}_GRPC_PORT"] = str(infra.free_port())
    return env


@pytest.fixture
def apply_env(service_env, monkeypatch):
    for k, v in service_env.items():
        monkeypatch.setenv(k, v)
    return service_env


def pytest_collection_modifyitems(items):
    for item in items:
        path = str(item.fspath)
        if f"{os.sep}integration{os.sep}" in path:
            item.add_marker(pytest.mark.integration)
        elif f"{os.sep}e2e{os.sep}" in path or f"{os.sep}browser{os.sep}" in path:
            item.add_marker(pytest.mark.e2e)


def pytest_sessionfinish(session, exitstatus):
    servers.stop_started()

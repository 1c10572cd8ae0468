"""The tests' choice of server: the one named, the one answering, one started by testcontainers,
or a failure saying how to start it."""

from __future__ import annotations

import sys

import pytest

from tests.support import servers
from tests.support.servers import SERVERS, Fail, Start, Use, choose


def never(what):
    def probe():
        raise AssertionError(f"{what} must not be asked")
    return probe


def answers(value):
    return lambda: value


@pytest.mark.parametrize("service", sorted(SERVERS))
def test_an_answering_port_is_used_without_asking_docker(service):
    assert choose(service, None, answers(True), never("Docker")) == Use()


@pytest.mark.parametrize("service", ["rabbitmq", "postgresql", "influxdb"])
def test_a_given_address_is_used_without_probing(service):
    assert choose(service, "somewhere-else", never("the port"), never("Docker")) == Use()


@pytest.mark.parametrize("service", sorted(SERVERS))
def test_docker_starts_the_server_on_its_default_port(service):
    choice = choose(service, None, answers(False), answers(True))
    assert choice == Start(SERVERS[service])
    assert choice.server.port == {"rabbitmq": 5672, "postgresql": 5432, "mosquitto": 1883,
                                  "influxdb": 8086}[service]


@pytest.mark.parametrize("service", sorted(SERVERS))
def test_without_docker_the_failure_says_how_to_start_the_server(service):
    choice = choose(service, None, answers(False), answers(False))
    assert isinstance(choice, Fail)
    server = SERVERS[service]
    for hint in ("make up", "deploy/scripts/servers.sh up", "Docker Desktop", server.name,
                 f"127.0.0.1:{server.port}", "请先运行"):
        assert hint in choice.message
    if server.env_var:
        assert f"set {server.env_var}" in choice.message


def test_ensure_raises_the_failure(monkeypatch):
    monkeypatch.setattr(servers, "port_open", lambda port: False)
    monkeypatch.setattr(servers, "docker_answers", lambda: False)
    with pytest.raises(RuntimeError, match="Mosquitto is not answering on 127.0.0.1:1883"):
        servers.ensure("mosquitto", never("readiness"))


def test_start_without_testcontainers_names_the_install(monkeypatch):
    monkeypatch.setattr(servers, "port_open", lambda port: False)
    monkeypatch.setattr(servers, "docker_answers", lambda: True)
    monkeypatch.setitem(sys.modules, "testcontainers.core.container", None)
    with pytest.raises(RuntimeError, match="pip install testcontainers"):
        servers.ensure("influxdb", never("readiness"))

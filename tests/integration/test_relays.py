"""One relay process for several services' outboxes (`python -m services.relays`, what `supplyctl
up` starts; issue #16 item 5), against the real RabbitMQ: each outbox is drained by its own thread,
and a thread that dies takes the process down with it (exit 1) instead of leaving a silent gap."""

from __future__ import annotations

import sys
import uuid

import pytest
from sqlalchemy import insert

from services.common.config import load_settings
from services.common.db import make_engine, utcnow
from services.common.messaging import exchange_of
from services.common.migrate import upgrade
from services.common.relay import pending_count
from tests.support.intake import make_env
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess

SERVICES = ("intake", "allocation")


def _outbox(service: str):
    from importlib import import_module

    return import_module(f"services.{service}.adapters.schema").tables["outbox"]


def _record(env, service: str, n: int):
    engine = make_engine(load_settings(service, env).database_url)
    with engine.begin() as conn:
        conn.execute(insert(_outbox(service)), [
            {"event_id": str(uuid.uuid4()), "exchange": exchange_of(service), "routing_key": "relays_test",
             "body": "{}", "created_at": utcnow(), "attempts": 0} for _ in range(n)])
    return engine


def _relays(env, tmp_path, *services: str) -> ServiceProcess:
    return ServiceProcess("relays", "relay", env, tmp_path,
                          args=[sys.executable, "-m", "services.relays", *services]).start()


@pytest.fixture
def env(tmp_path, amqp_url):
    return make_env(tmp_path / "var", amqp_url)


def test_one_process_drains_every_named_outbox(env, tmp_path):
    engines = {}
    for service in SERVICES:
        upgrade(service, load_settings(service, env).database_url)
        engines[service] = _record(env, service, 7)
    relays = _relays(env, tmp_path, *SERVICES)
    try:
        for service in SERVICES:
            eventually(lambda s=service: pending_count(engines[s], _outbox(s)) == 0, timeout=30,
                       what=f"{service}'s outbox relayed")
        assert relays.alive()
        log = relays.log()
        for service in SERVICES:
            assert f'"outbox": "{service}"' in log and "relay started" in log, log[-3000:]
        _record(env, "allocation", 3)  # after start: still relayed
        eventually(lambda: pending_count(engines["allocation"], _outbox("allocation")) == 0, timeout=30,
                   what="allocation's later rows relayed")
    finally:
        assert relays.stop() == 0
        for engine in engines.values():
            engine.dispose()


def test_a_relay_that_dies_stops_the_process_with_exit_1_naming_it(env, tmp_path):
    upgrade("intake", load_settings("intake", env).database_url)
    # allocation's database is left without its schema: its thread refuses to start
    relays = _relays(env, tmp_path, *SERVICES)
    try:
        assert relays.wait_exit(timeout=30) == 1
    finally:
        relays.stop()
    log = relays.log()
    assert "relay process exits: the relay of allocation stopped" in log, log[-3000:]
    assert "no schema" in log


def test_an_unknown_service_is_refused():
    import subprocess

    out = subprocess.run([sys.executable, "-m", "services.relays", "console"], capture_output=True, text=True)
    assert out.returncode != 0 and "usage: python -m services.relays" in out.stderr

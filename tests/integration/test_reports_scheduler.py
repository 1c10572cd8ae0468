"""The reports process on a fast simulated county clock, with the real intake, allocation and
logistics APIs, RabbitMQ and PostgreSQL: two schedulers started at once; at 16:30 the day has no
approved plan (deadline_missed, once); after 17:30 the day's files appear without anyone asking,
with one daily_report_ready event; `make --again` makes them anew with a second event."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time

import pika
import pytest
from sqlalchemy import create_engine, text

from services.common.config import load_settings
from services.common.migrate import upgrade
from tests.support import infra
from tests.support.polling import eventually
from tests.support.processes import ROOT, ServiceProcess

DAY = "2026-12-01"
SPEED = 240  # a county minute in 0.25 s


@pytest.fixture
def county(service_env, tmp_path, pg_url_factory):
    env = {**service_env,
           "SUPPLY_CLOCK": f"sim:{DAY}T16:20:00+08:00;speed={SPEED};anchor={time.time() + 8:.3f}",
           "REPORTS_DATABASE_URL": pg_url_factory("reports"),
           "REPORTS_DIR": str(tmp_path / "reports"), "REPORTS_TICK_S": "0.2"}
    for service in ("intake", "allocation", "logistics", "reports"):
        upgrade(service, load_settings(service, env).database_url)
    procs = [ServiceProcess(s, "api", env, tmp_path).start() for s in ("intake", "allocation", "logistics")]
    params = pika.URLParameters(env["AMQP_URL"])
    conn = pika.BlockingConnection(params)
    channel = conn.channel()
    channel.exchange_declare("reports.events", "topic", durable=True)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, "reports.events", "#")
    try:
        for proc in procs:
            proc.wait_healthy(f"127.0.0.1:{env[f'{proc.service.upper()}_GRPC_PORT']}", timeout=45)
        schedulers = [ServiceProcess("reports", "scheduler", env, tmp_path,
                                     extra_env={"REPORTS_GRPC_PORT": str(infra.free_port())}).start()
                      for _ in range(2)]
        procs += schedulers
        for s in schedulers:
            s.wait_healthy(f"127.0.0.1:{s.env['REPORTS_GRPC_PORT']}", timeout=45)
        yield env, channel, queue, schedulers
    finally:
        conn.close()
        for proc in procs:
            proc.stop()


def _events(channel, queue, into: list[dict]) -> list[dict]:
    while (got := channel.basic_get(queue, auto_ack=True))[0] is not None:
        into.append(json.loads(got[2]))
    return into


def _outbox(env, event_type: str) -> int:
    engine = create_engine(load_settings("reports", env).database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM outbox WHERE routing_key = :t"),
                                {"t": event_type}).scalar_one()
    finally:
        engine.dispose()


def test_two_schedulers_make_the_day_once_warn_once_and_again_on_request(county, tmp_path):
    env, channel, queue, schedulers = county
    seen: list[dict] = []
    out = tmp_path / "reports" / DAY

    # 16:30: no plan approved for the day → one deadline_missed, whichever scheduler saw it
    missed = eventually(lambda: [e for e in _events(channel, queue, seen)
                                 if e["event_type"] == "deadline_missed"],
                        timeout=60, interval=0.1, what="deadline_missed after 16:30")
    assert missed[0]["payload"]["kind"] == "plan_not_approved"
    assert missed[0]["payload"]["day"] == DAY and missed[0]["payload"]["count"] >= 1
    assert not out.exists()  # before 17:30: no report yet

    # 17:30: the files, and one daily_report_ready
    ready = eventually(lambda: [e for e in _events(channel, queue, seen)
                                if e["event_type"] == "daily_report_ready"],
                       timeout=60, interval=0.1, what="daily_report_ready after 17:30")
    payload = ready[0]["payload"]
    assert payload["day"] == DAY and payload["times_made"] == 1
    names = {f["name"] for f in payload["files"]}
    assert {"daily-report.md", "daily-report.xlsx", "disclosure.html"} <= names
    for f in payload["files"]:
        assert hashlib.sha256((out / f["name"]).read_bytes()).hexdigest() == f["sha256"]
    assert not list(out.glob(".*.tmp-*"))  # no temporary file left behind
    assert all(s.alive() for s in schedulers)

    # made again on request: a second event; the schedulers made it once between them
    again = subprocess.run([sys.executable, "-m", "services.reports", "make", "--day", DAY, "--again"],
                           cwd=ROOT, env={**schedulers[0].env}, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    both = eventually(lambda: [e for e in _events(channel, queue, seen)
                               if e["event_type"] == "daily_report_ready"][1:] and
                      [e for e in seen if e["event_type"] == "daily_report_ready"],
                      timeout=30, interval=0.1, what="second daily_report_ready")
    assert [e["payload"]["times_made"] for e in both] == [1, 2]
    assert _outbox(env, "daily_report_ready") == 2
    assert _outbox(env, "deadline_missed") == 1

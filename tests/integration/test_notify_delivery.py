"""Notify against real parts: events published on the machine's RabbitMQ reach a real notify
worker process, which sends them to a local HTTP sink (playing a generic webhook, a 企业微信
robot and a 钉钉 robot) and a local SMTP server (aiosmtpd). Routing by severity and depot; a
sink answering 500 and an SMTP port closed are retried with backoff and delivered once when
they come back; an event delivered twice is notified once. On SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from services.common.config import load_settings
from services.common.db import make_engine
from services.common.messaging import EventPublisher, declare_topology, make_envelope
from services.common.migrate import upgrade
from services.notify.adapters.schema import notifications
from services.notify.subscriptions import SUBSCRIPTIONS
from tests.support.infra import free_port
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess

HOOK_SECRET, DING_SECRET = "hook-secret-0123456789", "SECding-0123456789"


class HttpSink:
    """Records every POST; answers `status[path]` (200 by default) with the robots' JSON."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status: dict[str, int] = {}
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                path = urlparse(self.path).path
                code = sink.status.get(path, 200)
                sink.requests.append({"path": path, "query": parse_qs(urlparse(self.path).query),
                                      "headers": dict(self.headers), "body": body, "status": code,
                                      "at": time.monotonic()})
                out = json.dumps({"errcode": 0, "errmsg": "ok"}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path and r["status"] == 200]

    def tries(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]


class SmtpSink:
    def __init__(self):
        self.port = free_port()
        self.messages: list = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append(message_from_bytes(envelope.content))
                return "250 OK"

        self.handler, self.controller = Handler(), None

    def start(self):
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def sinks():
    http, smtp = HttpSink(), SmtpSink()
    smtp.start()
    yield http, smtp
    http.server.shutdown()
    smtp.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def notify(request, tmp_path, service_env, sinks, pg_url_factory):
    http, smtp = sinks
    channels = tmp_path / "channels.yaml"
    channels.write_text(json.dumps({"channels": [
        {"id": "hook", "type": "webhook", "url": f"{http.url}/hook", "secret_env": "NOTIFY_TEST_HOOK_SECRET"},
        {"id": "wecom", "type": "wecom", "url_env": "NOTIFY_TEST_WECOM_URL", "min_severity": "critical"},
        {"id": "ding", "type": "dingtalk", "url": f"{http.url}/ding?access_token=t0k",
         "secret_env": "NOTIFY_TEST_DING_SECRET", "depots": ["D1"]},
        {"id": "mail", "type": "email", "host": "127.0.0.1", "port": smtp.port,
         "sender": "notify@county.example", "to": ["hq@county.example"], "depots": ["D1"],
         "events": ["alert_raised", "deadline_missed"]},
    ]}))
    env = {**service_env, "NOTIFY_CHANNELS_FILE": str(channels),
           "NOTIFY_TEST_HOOK_SECRET": HOOK_SECRET, "NOTIFY_TEST_DING_SECRET": DING_SECRET,
           "NOTIFY_TEST_WECOM_URL": f"{http.url}/wecom?key=k3y", "NOTIFY_SEND_INTERVAL_MS": "50",
           "NOTIFY_RETRY_BASE_MS": "300", "NOTIFY_RETRY_CAP_S": "2"}
    if request.param == "postgresql":
        env["NOTIFY_DATABASE_URL"] = pg_url_factory("notify")
    url = load_settings("notify", env).database_url
    upgrade("notify", url)
    publisher = EventPublisher(env["AMQP_URL"])
    declare_topology(publisher._connect(), subscriptions=SUBSCRIPTIONS)
    proc = ServiceProcess("notify", "worker", env, tmp_path).start()
    yield Notify(proc, publisher, make_engine(url))
    proc.stop()
    publisher.close()


class Notify:
    def __init__(self, proc: ServiceProcess, publisher: EventPublisher, db):
        self.proc, self.publisher, self.db = proc, publisher, db

    def publish(self, source: str, event_type: str, payload: dict, event_id: str | None = None) -> str:
        envelope = make_envelope(source, event_type, payload, event_id=event_id)
        self.publisher.publish(f"{source}.events", event_type, json.dumps(envelope), envelope["event_id"])
        return envelope["event_id"]

    def alert(self, severity: str, depot: str, event_id: str | None = None) -> str:
        return self.publish("monitoring", "alert_raised", {
            "alert_id": f"A-{uuid.uuid4().hex[:8]}", "kind": "alarm", "severity": severity,
            "depot": depot, "zone": "COLD-1", "rule_code": "COLD_HIGH", "lot_ids": ["LOT-1"],
            "title_zh": f"{depot}/COLD-1: 冷库温度过高", "title_en": f"{depot}/COLD-1: cold store too warm",
            "by": "张三 13800138000", "evidence": {"temp_c": 9.5}}, event_id)

    def rows(self, event_id: str) -> dict[str, tuple]:
        with self.db.connect() as conn:
            return {r.channel: (r.state, r.attempts, r.last_error) for r in conn.execute(
                select(notifications).where(notifications.c.event_id == event_id))}

    def alive(self) -> None:
        assert self.proc.alive(), self.proc.log()[-3000:]


def body_of(request: dict) -> dict:
    return json.loads(request["body"])


def test_an_alert_on_the_broker_reaches_each_channel_in_its_format_once(notify, sinks):
    http, smtp = sinks
    event_id = notify.alert("critical", "D1")
    notify.alert("critical", "D1", event_id=event_id)  # the broker delivers it again
    eventually(lambda: (notify.alive() or True) and len(smtp.messages) >= 1 and all(
        http.accepted(p) for p in ("/hook", "/wecom", "/ding")), timeout=30, what="every channel told")

    hook = http.accepted("/hook")[0]
    assert hmac.compare_digest(hook["headers"]["X-Supply-Signature"],
                               "sha256=" + hmac.new(HOOK_SECRET.encode(), hook["body"], hashlib.sha256).hexdigest())
    assert body_of(hook)["event_id"] == event_id and body_of(hook)["severity"] == "critical"
    assert hook["headers"]["X-Notification-Id"] == body_of(hook)["notification_id"]

    wecom = http.accepted("/wecom")[0]
    assert wecom["query"]["key"] == ["k3y"]
    assert body_of(wecom)["msgtype"] == "markdown" and "冷库温度过高" in body_of(wecom)["markdown"]["content"]

    ding = http.accepted("/ding")[0]
    ts, sign = ding["query"]["timestamp"][0], ding["query"]["sign"][0]
    expected = hmac.new(DING_SECRET.encode(), f"{ts}\n{DING_SECRET}".encode(), hashlib.sha256).digest()
    assert ding["query"]["access_token"] == ["t0k"] and base64.b64decode(sign) == expected
    assert body_of(ding)["markdown"]["title"].startswith("[严重 critical]")

    mail = smtp.messages[0]
    assert "冷库温度过高" in str(make_header(decode_header(mail["Subject"])))
    assert mail["To"] == "hq@county.example"

    for request in http.requests:
        assert "13800138000" not in request["body"].decode() and "张三" not in request["body"].decode()
    assert "13800138000" not in mail.get_payload(decode=True).decode()
    eventually(lambda: set(notify.rows(event_id).values()) == {("sent", 1, None)}, what="all sent")
    assert len(http.requests) == 3 and len(smtp.messages) == 1  # nothing doubled


def test_routing_by_severity_and_depot(notify, sinks):
    http, smtp = sinks
    warning_d2 = notify.alert("warning", "D2")
    critical_d2 = notify.alert("critical", "D2")
    report = notify.publish("reports", "daily_report_ready", {"day": "2026-03-01", "files": ["daily.md"]})
    eventually(lambda: len(http.accepted("/hook")) == 3, what="the generic webhook told of all three")
    assert set(notify.rows(warning_d2)) == {"hook"}
    assert set(notify.rows(critical_d2)) == {"hook", "wecom"}
    assert set(notify.rows(report)) == {"hook", "wecom", "ding"}  # no depot: every depot's channel
    eventually(lambda: len(http.accepted("/wecom")) == 2 and len(http.accepted("/ding")) == 1,
               what="the robots told")
    assert smtp.messages == []


def test_a_channel_down_is_retried_with_backoff_and_delivered_once_when_back(notify, sinks):
    http, smtp = sinks
    http.status["/hook"] = 500
    smtp.stop()  # its port closed
    events = [notify.alert("critical", "D1") for _ in range(3)]

    def failing_with_backoff():
        tries = [r for r in http.tries("/hook") if body_of(r)["event_id"] == events[0]]
        return len(tries) >= 4 and tries
    eventually(failing_with_backoff, timeout=30, what="the webhook retried")
    at = [r["at"] for r in http.tries("/hook") if body_of(r)["event_id"] == events[0]][:4]
    gaps = [b - a for a, b in zip(at, at[1:], strict=False)]  # 0.3 s, 0.6 s, 1.2 s (base 300 ms, doubling)
    assert min(gaps) > 0.25 and gaps[2] > 2 * gaps[0] and gaps[2] < 2.5, gaps  # growing, capped
    rows = notify.rows(events[0])
    assert rows["hook"][0] == "pending" and rows["hook"][2] == "HTTP 500"
    assert rows["mail"][0] == "pending" and "Connection" in rows["mail"][2]
    assert rows["wecom"][0] == "sent"  # one channel down holds up no other

    http.status["/hook"] = 200
    smtp.start()
    eventually(lambda: all(set(s for s, _, _ in notify.rows(e).values()) == {"sent"} for e in events),
               timeout=30, what="every notification sent once the channels are back")
    ids = [body_of(r)["notification_id"] for r in http.accepted("/hook")]
    assert sorted({body_of(r)["event_id"] for r in http.accepted("/hook")}) == sorted(events)
    assert len(ids) == len(set(ids)) == 3  # nothing lost, nothing doubled
    assert len(smtp.messages) == 3
    assert len({m["Message-ID"] for m in smtp.messages}) == 3

"""Notify's pure rules: notices from every event kind (and no personal data in any message),
routing, the channels file's validation, the robots' payload formats, the retry schedule."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from services.monitoring.domain import alerts as al
from services.monitoring.handlers.alerts import event_payload
from services.notify.adapters.senders import dingtalk_signed
from services.notify.domain.delivery import RetryPolicy, notification_id
from services.notify.domain.formats import WECOM_MAX_BYTES, render
from services.notify.domain.notices import EVENT_TYPES, NoticeError, notice_from_event
from services.notify.domain.routing import CHANNEL_TYPES, ChannelsError, parse_channels, route

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
NAME, PHONE, ID_CARD, MAIL = "张三丰", "13800138000", "11010519491231002X", "zhang.san@example.com"
PERSONAL = (NAME, PHONE, ID_CARD, MAIL, "李四", "13912345678")
EVERYONE = {"name": NAME, "phone": PHONE, "receiver": NAME, "contact": PHONE, "driver": NAME,
            "id_card": ID_CARD, "email": MAIL, "beneficiary": NAME, "display_name": NAME}


def envelope(event_type: str, payload: dict) -> dict:
    return {"event_id": "7f1c4a52-95d6-4c3e-8f3f-4a1d5f1a2b3c", "event_type": event_type,
            "occurred_at": "2026-03-01T09:30:00Z", "source": "x", "schema_version": 1,
            "correlation_id": "", "payload": payload}


def alert_payload(action: str) -> dict:
    """As monitoring records it, acknowledged by a person with a note naming people."""
    c = al.AlertCandidate(kind="alarm", severity="critical", depot="D1", zone="COLD-1",
                          rule_code="COLD_HIGH", title_zh="D1/COLD-1: 冷库温度过高",
                          title_en="D1/COLD-1: cold store too warm",
                          evidence={"temp_c": 9.5, "minutes": 12}, lot_ids=("LOT-1", "LOT-2"))
    alert = al.Alert.open(c, AT)
    alert.acknowledge(f"{NAME} {PHONE}", AT, note=f"已电话通知李四 13912345678 {MAIL}")
    return {**event_payload(alert, action, AT, by=f"{NAME} {PHONE}", note=f"李四 13912345678 {ID_CARD}"),
            **EVERYONE}


EVENTS = {
    "alert_raised": alert_payload("opened"),
    "alert_cleared": alert_payload("cleared"),
    # as services/reports records them (docs/events.md)
    "deadline_missed": {"kind": "trips_not_dispatched", "day": "2026-03-01", "due_at": "17:00",
                        "checked_at": "2026-03-01T09:00:00+00:00", "count": 2,
                        "what": "2 approved plans without dispatched trips", "what_zh": "2 个已审批方案未发车",
                        "by": NAME, "note": f"{NAME} {PHONE}", **EVERYONE},
    "daily_report_ready": {"day": "2026-03-01", "generated_at": "2026-03-01T09:30:00+00:00",
                           "times_made": 2, "files": [{"name": "daily-report.md", "sha256": "ab" * 32},
                                                      {"name": f"{NAME}.xlsx", "sha256": "cd" * 32}],
                           "by": NAME, **EVERYONE},
}


def test_the_events_cover_every_kind_notify_knows():
    assert set(EVENTS) == set(EVENT_TYPES)


@pytest.mark.parametrize("channel_type", CHANNEL_TYPES)
@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_no_message_of_any_event_kind_carries_personal_data(event_type, channel_type):
    notice = notice_from_event(envelope(event_type, EVENTS[event_type]))
    message = render(notice, channel_type, "n-1")
    text = json.dumps(message.body, ensure_ascii=False) + message.subject + message.text
    assert [p for p in PERSONAL if p in text] == []
    assert "n-1" in text and notice.title_zh in text


def test_an_alert_notice_keeps_ids_place_counts_and_titles():
    n = notice_from_event(envelope("alert_raised", EVENTS["alert_raised"]))
    assert (n.severity, n.kind, n.depot, n.zone) == ("critical", "alarm", "D1", "COLD-1")
    assert n.title_zh == "D1/COLD-1: 冷库温度过高"
    facts = {f.label_en: f.value for f in n.facts}
    assert facts["lots"] == "2 (LOT-1, LOT-2)" and facts["temp_c"] == "9.5" and facts["rule"] == "COLD_HIGH"
    cleared = notice_from_event(envelope("alert_cleared", EVENTS["alert_cleared"]))
    assert cleared.title_zh.startswith("已解除") and cleared.title_en.startswith("cleared")


def test_a_deadline_notice_says_what_is_late_and_a_report_notice_names_its_files():
    d = notice_from_event(envelope("deadline_missed", EVENTS["deadline_missed"]))
    assert "车次未在截止时间前发车" in d.title_zh and "2026-03-01" in d.title_en
    facts = {f.label_en: f.value for f in d.facts}
    assert facts["late"] == "2 approved plans without dispatched trips" and facts["due at"] == "17:00"
    r = notice_from_event(envelope("daily_report_ready", EVENTS["daily_report_ready"]))
    facts = {f.label_en: f.value for f in r.facts}
    assert facts["files"] == "daily-report.md" and facts["times made"] == "2"
    assert "made late" not in facts
    late = notice_from_event(envelope("daily_report_ready", {**EVENTS["daily_report_ready"], "late": True}))
    assert "补报" in {f.label_zh for f in late.facts}


def test_an_event_without_what_its_message_needs_is_refused():
    with pytest.raises(NoticeError, match="alert_id"):
        notice_from_event(envelope("alert_raised", {"kind": "alarm"}))
    with pytest.raises(NoticeError, match="day"):
        notice_from_event(envelope("deadline_missed", {"kind": "trips_not_dispatched"}))


def test_robot_payloads_have_their_documented_shape():
    n = notice_from_event(envelope("alert_raised", EVENTS["alert_raised"]))
    wecom = render(n, "wecom", "n-1").body
    assert wecom["msgtype"] == "markdown" and set(wecom["markdown"]) == {"content"}
    ding = render(n, "dingtalk", "n-1").body
    assert ding["msgtype"] == "markdown" and set(ding["markdown"]) == {"title", "text"}
    assert ding["markdown"]["title"] == "[严重 critical] D1/COLD-1: 冷库温度过高"
    hook = render(n, "webhook", "n-1").body
    assert hook["notification_id"] == "n-1" and hook["event_type"] == "alert_raised"
    mail = render(n, "email", "n-1")
    assert mail.subject.startswith("[严重 critical]") and "cold store too warm" in mail.text


def test_a_wecom_message_stays_within_the_robots_limit():
    payload = {**EVENTS["alert_raised"], "lot_ids": [f"LOT-{i}" for i in range(50)],
               "evidence": {f"v{i}": i for i in range(400)}}
    content = render(notice_from_event(envelope("alert_raised", payload)), "wecom", "n").body["markdown"]["content"]
    assert len(content.encode()) <= WECOM_MAX_BYTES


def test_dingtalk_signing_is_hmac_sha256_of_timestamp_and_secret():
    url = dingtalk_signed("https://robot.example/send?access_token=abc", "SECxyz", 1552920546388)
    q = parse_qs(urlparse(url).query)
    assert q["access_token"] == ["abc"] and q["timestamp"] == ["1552920546388"]
    expected = hmac.new(b"SECxyz", b"1552920546388\nSECxyz", hashlib.sha256).digest()
    assert base64.b64decode(q["sign"][0]) == expected


CHANNELS = {"channels": [
    {"id": "all", "type": "webhook", "url": "http://127.0.0.1:1/all"},
    {"id": "critical-d1", "type": "wecom", "url_env": "WECOM_URL", "min_severity": "critical",
     "depots": ["D1"]},
    {"id": "reports", "type": "email", "host": "127.0.0.1", "sender": "notify@county.example",
     "to": ["hq@county.example"], "events": ["daily_report_ready", "deadline_missed"]},
    {"id": "spoilage", "type": "dingtalk", "url": "http://127.0.0.1:1/dt", "secret_env": "DT_SECRET",
     "alert_kinds": ["spoilage"]},
]}
ENV = {"WECOM_URL": "http://127.0.0.1:1/wecom", "DT_SECRET": "SECabc"}


def routed(event_type: str, payload: dict) -> list[str]:
    return [c.id for c in route(notice_from_event(envelope(event_type, payload)),
                                parse_channels(CHANNELS, ENV))]


def test_routing_by_event_kind_severity_depot_and_alert_kind():
    base = {"alert_id": "A-1", "kind": "alarm", "severity": "critical", "depot": "D1"}
    assert routed("alert_raised", base) == ["all", "critical-d1"]
    assert routed("alert_raised", {**base, "severity": "warning"}) == ["all"]
    assert routed("alert_raised", {**base, "depot": "D2"}) == ["all"]
    assert routed("alert_raised", {**base, "kind": "spoilage"}) == ["all", "critical-d1", "spoilage"]
    # severity and alert kind filter alerts only; a report goes by `events` (and depot) alone
    assert routed("daily_report_ready", {"day": "2026-03-01"}) == ["all", "critical-d1", "reports", "spoilage"]
    assert routed("deadline_missed", {"kind": "plan_not_approved", "day": "2026-03-01", "depot": "D2"}) == [
        "all", "reports", "spoilage"]
    # monitoring's board copy of a missed deadline is not told again: deadline_missed itself was
    assert routed("alert_raised", {**base, "kind": "deadline_missed", "severity": "warning"}) == []


@pytest.mark.parametrize("change, key", [
    (lambda c: c[0].update(evnets=["alert_raised"]), "channels[0].evnets"),
    (lambda c: c[1].update(min_severity="urgent"), "channels[1].min_severity"),
    (lambda c: c[2].update(events=["alert_rased"]), "channels[2].events"),
    (lambda c: c[3].update(id="all"), "channels[3].id"),
    (lambda c: c[0].update(type="sms"), "channels[0].type"),
    (lambda c: c[2].pop("host"), "channels[2].host"),
    (lambda c: c[1].update(url_env="NO_SUCH_VARIABLE"), "channels[1].url_env"),
    (lambda c: c[0].update(url="ftp://x"), "channels[0].url"),
    (lambda c: c[3].update(secret_env="UNSET"), "channels[3].secret_env"),
])
def test_a_bad_channels_file_is_refused_naming_the_key(change, key):
    data = json.loads(json.dumps(CHANNELS))
    change(data["channels"])
    with pytest.raises(ChannelsError, match=f"^{re.escape(key)}: "):
        parse_channels(data, ENV)


def test_retries_back_off_exponentially_up_to_a_cap_and_give_up_after_the_days():
    policy = RetryPolicy(base_s=5, cap_s=60, dead_after=timedelta(days=3))
    assert [policy.delay(n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    assert not policy.is_dead(AT, AT + timedelta(days=2, hours=23))
    assert policy.is_dead(AT, AT + timedelta(days=3))


def test_a_notification_id_is_the_same_for_the_same_event_and_channel():
    a = notification_id("7f1c4a52-95d6-4c3e-8f3f-4a1d5f1a2b3c", "all")
    assert a == notification_id("7f1c4a52-95d6-4c3e-8f3f-4a1d5f1a2b3c", "all")
    assert a != notification_id("7f1c4a52-95d6-4c3e-8f3f-4a1d5f1a2b3c", "reports")

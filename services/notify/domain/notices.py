"""A notice: what people are told of one event, built from a whitelist of its payload's fields.

Only ids, depot and zone, item codes, counts, days and the titles our services write ever reach
a message; a field not named here (a person's name, a phone, `by`, `note`, a receiver) cannot,
and digits shaped like a mobile or ID-card number are masked in every text as well.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("info", "warning", "critical")
EVENT_TYPES = ("alert_raised", "alert_cleared", "deadline_missed", "daily_report_ready")

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,79}")  # ids, codes, days, instants
_PERSONAL = re.compile(r"(?<![0-9])(?:1[3-9][0-9]{9}|[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9])"
                       r"|[\w.+-]+@[\w-]+\.[\w.-]+")
_SHOWN_IDS = 5

DEADLINES = {  # deadline_missed kind (services/reports) → (中文, English)
    "plan_not_approved": ("调配方案未在截止时间前审批", "plan not approved by the deadline"),
    "trips_not_dispatched": ("车次未在截止时间前发车", "trips not dispatched by the deadline"),
}


class NoticeError(ValueError):
    """The event cannot make a notice (its payload lacks what the message needs)."""


@dataclass(frozen=True)
class Fact:
    label_zh: str
    label_en: str
    value: str


@dataclass(frozen=True)
class Notice:
    event_type: str
    event_id: str
    occurred_at: str
    severity: str
    kind: str  # the alert's kind, the deadline's kind, or "daily_report"
    title_zh: str
    title_en: str
    depot: str | None = None
    zone: str | None = None
    facts: tuple[Fact, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"event_type": self.event_type, "event_id": self.event_id,
                "occurred_at": self.occurred_at, "severity": self.severity, "kind": self.kind,
                "title_zh": self.title_zh, "title_en": self.title_en, "depot": self.depot,
                "zone": self.zone, "facts": [[f.label_zh, f.label_en, f.value] for f in self.facts]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Notice:
        return cls(**{**d, "facts": tuple(Fact(*f) for f in d.get("facts", ()))})


def mask(text: str) -> str:
    """Mask what looks like a mobile, an ID-card number or an e-mail address."""
    return _PERSONAL.sub("***", text)


def _token(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    text = str(value)
    return mask(text) if _TOKEN.fullmatch(text) else None


def _text(payload: Mapping[str, Any], key: str, limit: int = 200) -> str:
    value = payload.get(key)
    return mask(value.strip()[:limit]) if isinstance(value, str) else ""


def _ids(values: Any) -> tuple[int, str] | None:
    """(count, the first few ids) of a list of ids; None when not a list."""
    if not isinstance(values, (list, tuple)):
        return None
    ids = [t for t in (_token(v) for v in values) if t]
    shown = ", ".join(ids[:_SHOWN_IDS]) + (" …" if len(ids) > _SHOWN_IDS else "")
    return len(values), shown


def _severity(payload: Mapping[str, Any], default: str) -> str:
    value = payload.get("severity", default)
    return value if value in SEVERITIES else default


def _alert(event_type: str, envelope: Mapping[str, Any], p: Mapping[str, Any]) -> Notice:
    alert_id, kind = _token(p.get("alert_id")), _token(p.get("kind"))
    if not alert_id or not kind:
        raise NoticeError("payload.alert_id and payload.kind are required for an alert")
    cleared = event_type == "alert_cleared"
    title_zh = _text(p, "title_zh") or kind
    title_en = _text(p, "title_en") or kind
    facts = [Fact("告警编号", "alert", alert_id), Fact("类型", "kind", kind)]
    for key, zh, en in (("rule_code", "规则", "rule"), ("opened_at", "发生时间", "opened at"),
                        ("at", "时间", "at")):
        if _token(p.get(key)):
            facts.append(Fact(zh, en, _token(p.get(key))))
    lots = _ids(p.get("lot_ids"))
    if lots and lots[0]:
        facts.append(Fact("涉及批次", "lots", f"{lots[0]} ({lots[1]})"))
    evidence = p.get("evidence")
    if isinstance(evidence, Mapping):  # numbers only: readings, durations, counts
        for key, value in sorted(evidence.items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and _token(key):
                facts.append(Fact(str(key), str(key), f"{value:g}" if isinstance(value, float) else str(value)))
    return Notice(
        event_type=event_type, event_id=str(envelope.get("event_id", "")),
        occurred_at=str(envelope.get("occurred_at", "")), severity=_severity(p, "warning"),
        kind=kind, depot=_token(p.get("depot")), zone=_token(p.get("zone")),
        title_zh=("已解除: " if cleared else "") + title_zh,
        title_en=("cleared: " if cleared else "") + title_en, facts=tuple(facts))


def _deadline(envelope: Mapping[str, Any], p: Mapping[str, Any]) -> Notice:
    kind, day = _token(p.get("kind")), _token(p.get("day"))
    if not kind or not day:
        raise NoticeError("payload.kind and payload.day are required for deadline_missed")
    zh, en = DEADLINES.get(kind, ("截止时间已过", "deadline missed"))
    facts = [Fact("日期", "day", day), Fact("事项", "kind", kind)]
    for key, fzh, fen in (("due_at", "截止", "due at"), ("count", "数量", "count")):
        if _token(p.get(key)):
            facts.append(Fact(fzh, fen, _token(p.get(key))))
    late = _ids(p.get("what"))
    if late:
        facts.append(Fact("逾期项", "late", f"{late[0]} ({late[1]})"))
    elif _text(p, "what") or _text(p, "what_zh"):  # the reports process's own words
        facts.append(Fact(_text(p, "what_zh") or "逾期项", "late", _text(p, "what") or _text(p, "what_zh")))
    return Notice(
        event_type="deadline_missed", event_id=str(envelope.get("event_id", "")),
        occurred_at=str(envelope.get("occurred_at", "")), severity=_severity(p, "warning"),
        kind=kind, depot=_token(p.get("depot")), title_zh=f"逾期: {zh} ({day})",
        title_en=f"late: {en} ({day})", facts=tuple(facts))


def _report(envelope: Mapping[str, Any], p: Mapping[str, Any]) -> Notice:
    day = _token(p.get("day"))
    if not day:
        raise NoticeError("payload.day is required for daily_report_ready")
    facts = [Fact("日期", "day", day)]
    files = p.get("files")
    if isinstance(files, (list, tuple)):  # [{name, sha256}] (or plain names)
        names = [t for t in (_token(str(f.get("name", "") if isinstance(f, Mapping) else f)
                                    .replace("\\", "/").rsplit("/", 1)[-1]) for f in files) if t]
        if names:
            facts.append(Fact("文件", "files", ", ".join(names)))
    if isinstance(p.get("times_made"), int) and p["times_made"] > 1:
        facts.append(Fact("第几次生成", "times made", str(p["times_made"])))
    if p.get("late") is True:
        facts.append(Fact("补报", "made late", "定时未能生成，事后补做 / missed at its time, made afterwards"))
    return Notice(
        event_type="daily_report_ready", event_id=str(envelope.get("event_id", "")),
        occurred_at=str(envelope.get("occurred_at", "")), severity="info", kind="daily_report",
        title_zh=f"{day} 日报已生成", title_en=f"daily report for {day} is ready", facts=tuple(facts))


def notice_from_event(envelope: Mapping[str, Any]) -> Notice:
    """The notice of one event envelope; NoticeError if its type or payload does not make one."""
    event_type, payload = envelope.get("event_type"), envelope.get("payload")
    if not isinstance(payload, Mapping):
        raise NoticeError("payload must be an object")
    if event_type in ("alert_raised", "alert_cleared"):
        return _alert(event_type, envelope, payload)
    if event_type == "deadline_missed":
        return _deadline(envelope, payload)
    if event_type == "daily_report_ready":
        return _report(envelope, payload)
    raise NoticeError(f"no notice for event type {event_type!r}")

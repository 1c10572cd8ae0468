"""Messages per channel type, from a notice: the generic webhook's JSON, the 企业微信 and 钉钉
group robots' markdown payloads, and an e-mail's subject and text. Chinese first, then English."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.notify.domain.notices import Notice

SEVERITY_LABELS = {"info": ("提示", "info"), "warning": ("警告", "warning"), "critical": ("严重", "critical")}
WECOM_MAX_BYTES = 4096  # markdown.content limit of a 企业微信 group robot


@dataclass(frozen=True)
class Message:
    notification_id: str
    body: dict[str, Any] | None = None  # JSON channels
    subject: str = ""  # e-mail
    text: str = ""


def _lines(notice: Notice) -> list[str]:
    place = " · ".join(f"{zh} {en}: {v}" for zh, en, v in (("仓库", "depot", notice.depot),
                                                           ("库区", "zone", notice.zone)) if v)
    lines = [notice.title_en] + ([place] if place else [])
    lines += [f"{f.label_zh} / {f.label_en}: {f.value}" for f in notice.facts]
    return lines


def subject(notice: Notice) -> str:
    zh, en = SEVERITY_LABELS[notice.severity]
    return f"[{zh} {en}] {notice.title_zh}"


def plain_text(notice: Notice, notification_id: str) -> str:
    return "\n".join([subject(notice), *_lines(notice), f"通知编号 / notification: {notification_id}"])


def markdown(notice: Notice, notification_id: str) -> str:
    head, *rest = _lines(notice)
    text = "\n".join([f"### {subject(notice)}", head, *(f"> {line}" for line in rest),
                      f"通知编号 / notification: {notification_id}"])
    raw = text.encode()
    return text if len(raw) <= WECOM_MAX_BYTES else raw[:WECOM_MAX_BYTES - 3].decode(errors="ignore") + "…"


def render(notice: Notice, channel_type: str, notification_id: str) -> Message:
    if channel_type == "webhook":
        return Message(notification_id, body={"notification_id": notification_id, **notice.to_dict(),
                                              "text": plain_text(notice, notification_id)})
    if channel_type == "wecom":
        return Message(notification_id, body={"msgtype": "markdown",
                                              "markdown": {"content": markdown(notice, notification_id)}})
    if channel_type == "dingtalk":
        return Message(notification_id, body={"msgtype": "markdown", "markdown": {
            "title": subject(notice), "text": markdown(notice, notification_id)}})
    if channel_type == "email":
        return Message(notification_id, subject=subject(notice), text=plain_text(notice, notification_id))
    raise ValueError(f"unknown channel type {channel_type!r}")

"""Sending one message: HTTP POST (generic webhook, 企业微信, 钉钉) and SMTP. Each raises
SendError on any failure, so that the sender loop retries it later."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import time
from email.message import EmailMessage
from urllib.parse import quote_plus

import requests

from services.notify.domain.formats import Message
from services.notify.domain.routing import Channel

SIGNATURE_HEADER = "X-Supply-Signature"  # sha256=<hex HMAC of the body under the channel's secret>
ID_HEADER = "X-Notification-Id"


class SendError(RuntimeError):
    pass


def dingtalk_signed(url: str, secret: str, now_ms: int) -> str:
    """钉钉 加签: timestamp and sign = urlencode(base64(HMAC-SHA256(secret, "<ts>\\n<secret>")))."""
    digest = hmac.new(secret.encode(), f"{now_ms}\n{secret}".encode(), hashlib.sha256).digest()
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}timestamp={now_ms}&sign={quote_plus(base64.b64encode(digest))}"


def send_http(channel: Channel, message: Message, timeout: float = 10.0) -> None:
    body = json.dumps(message.body, ensure_ascii=False).encode()
    url, secret = channel.target["url"], channel.target.get("secret", "")
    headers = {"Content-Type": "application/json; charset=utf-8", ID_HEADER: message.notification_id}
    if channel.type == "webhook" and secret:
        headers[SIGNATURE_HEADER] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if channel.type == "dingtalk" and secret:
        url = dingtalk_signed(url, secret, int(time.time() * 1000))
    try:
        resp = requests.post(url, data=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise SendError(f"{type(exc).__name__}: {exc}") from None
    if not 200 <= resp.status_code < 300:
        raise SendError(f"HTTP {resp.status_code}")
    if channel.type in ("wecom", "dingtalk"):  # the robots answer 200 with an errcode
        try:
            errcode = resp.json().get("errcode")
        except ValueError:
            raise SendError("robot answered no JSON") from None
        if errcode != 0:
            raise SendError(f"robot errcode {errcode}: {str(resp.json().get('errmsg', ''))[:200]}")


def send_mail(channel: Channel, message: Message) -> None:
    t = channel.target
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = t["sender"], ", ".join(t["to"]), message.subject
    mail["Message-ID"] = f"<{message.notification_id}@notify.supply>"
    mail.set_content(message.text)
    try:
        with smtplib.SMTP(t["host"], t["port"], timeout=t["timeout_s"]) as smtp:
            if t["starttls"]:
                smtp.starttls()
            if t["user"]:
                smtp.login(t["user"], t["password"])
            smtp.send_message(mail)
    except (OSError, smtplib.SMTPException) as exc:
        raise SendError(f"{type(exc).__name__}: {exc}") from None


def send(channel: Channel, message: Message, http_timeout: float = 10.0) -> None:
    if channel.type == "email":
        send_mail(channel, message)
    else:
        send_http(channel, message, http_timeout)

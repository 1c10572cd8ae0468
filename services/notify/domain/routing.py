"""The county's channels and which notices each one receives, from the channels file
(NOTIFY_CHANNELS_FILE, YAML). A bad entry is refused at start with a message naming its key.

    channels:
      - id: hq-wecom                 # unique; part of every notification id
        type: wecom                  # webhook | wecom | dingtalk | email
        url_env: NOTIFY_HQ_WECOM_URL # the robot's address (it holds its key): from the environment
        events: [alert_raised, deadline_missed, daily_report_ready]   # default: all four
        min_severity: warning        # alerts below it are not sent (default: info)
        depots: [D1]                 # only these depots (default: all; a notice without depot passes)
        alert_kinds: [alarm, spoilage]  # only these alert kinds (default: all)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.notify.domain.notices import EVENT_TYPES, SEVERITIES, Notice

CHANNEL_TYPES = ("webhook", "wecom", "dingtalk", "email")
_ROUTING_KEYS = {"id", "type", "events", "min_severity", "depots", "alert_kinds"}
_TRANSPORT_KEYS = {
    "webhook": {"url", "url_env", "secret_env"},
    "wecom": {"url", "url_env"},
    "dingtalk": {"url", "url_env", "secret_env"},
    "email": {"host", "port", "starttls", "user", "password_env", "sender", "to", "timeout_s"},
}
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


class ChannelsError(ValueError):
    """The channels file is wrong; the message names the key."""


@dataclass(frozen=True)
class Channel:
    id: str
    type: str
    events: frozenset[str] = frozenset(EVENT_TYPES)
    min_severity: str = "info"
    depots: frozenset[str] | None = None
    alert_kinds: frozenset[str] | None = None
    target: Mapping[str, Any] = field(default_factory=dict)  # url, secret, SMTP host … (adapters')

    def wants(self, notice: Notice) -> bool:
        if notice.event_type not in self.events:
            return False
        if self.depots is not None and notice.depot is not None and notice.depot not in self.depots:
            return False
        if not notice.event_type.startswith("alert_"):  # deadlines and reports: by `events` alone
            return True
        if notice.kind == "deadline_missed":  # monitoring's copy of a deadline_missed event: told once
            return False
        return (SEVERITIES.index(notice.severity) >= SEVERITIES.index(self.min_severity)
                and (self.alert_kinds is None or notice.kind in self.alert_kinds))


def route(notice: Notice, channels: list[Channel]) -> list[Channel]:
    return [c for c in channels if c.wants(notice)]


def _fail(where: str, message: str) -> ChannelsError:
    return ChannelsError(f"{where}: {message}")


def _names(where: str, value: Any, allowed: tuple[str, ...] | None = None) -> frozenset[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise _fail(where, "must be a non-empty list of names / 须为非空列表")
    if allowed is not None:
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise _fail(where, f"unknown {', '.join(unknown)}; one of {', '.join(allowed)} / 取值无效")
    return frozenset(value)


def _secret(where: str, env: Mapping[str, str], name: Any, required: bool) -> str:
    if not isinstance(name, str) or not name:
        if required:
            raise _fail(where, "required: the name of an environment variable / 须填写环境变量名")
        return ""
    value = env.get(name, "").strip()
    if not value:
        raise _fail(where, f"environment variable {name} is not set / 环境变量未设置")
    return value


def _target(where: str, kind: str, raw: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    if kind == "email":
        host, to = raw.get("host"), raw.get("to")
        if not isinstance(host, str) or not host:
            raise _fail(f"{where}.host", "required: the SMTP server / 须填写 SMTP 服务器")
        port = raw.get("port", 25)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise _fail(f"{where}.port", f"must be a port number, got {port!r} / 端口无效")
        if not isinstance(raw.get("sender"), str) or "@" not in raw["sender"]:
            raise _fail(f"{where}.sender", "required: the From address / 须填写发件地址")
        if not isinstance(raw.get("starttls", False), bool):
            raise _fail(f"{where}.starttls", "must be true or false / 须为 true 或 false")
        user = raw.get("user", "")
        password = _secret(f"{where}.password_env", env, raw.get("password_env"), required=bool(user))
        return {"host": host, "port": port, "starttls": raw.get("starttls", False), "user": user,
                "password": password, "sender": raw["sender"],
                "to": sorted(_names(f"{where}.to", to)), "timeout_s": raw.get("timeout_s", 10)}
    if ("url" in raw) == ("url_env" in raw):
        raise _fail(f"{where}.url", "give either url or url_env (a robot's address holds its key: "
                    "prefer url_env) / url 与 url_env 二选一")
    url = raw["url"] if "url" in raw else _secret(f"{where}.url_env", env, raw["url_env"], True)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise _fail(f"{where}.url", "must be an http(s) URL / 须为 http(s) 地址")
    return {"url": url, "secret": _secret(f"{where}.secret_env", env, raw.get("secret_env"), False)}


def parse_channels(data: Any, env: Mapping[str, str]) -> list[Channel]:
    """Channels from the parsed YAML; secrets and robot URLs are read from `env` by name."""
    if not isinstance(data, Mapping) or set(data) != {"channels"} or not isinstance(data["channels"], list):
        raise ChannelsError("the file must hold one key, channels: a list / 文件须只含 channels 列表")
    channels: list[Channel] = []
    for i, raw in enumerate(data["channels"]):
        where = f"channels[{i}]"
        if not isinstance(raw, Mapping):
            raise _fail(where, "must be a mapping / 须为映射")
        cid, kind = raw.get("id"), raw.get("type")
        if not isinstance(cid, str) or not _ID.fullmatch(cid):
            raise _fail(f"{where}.id", f"must be lower-case letters, digits, - or _ (≤ 40), got {cid!r} / 通道编号无效")
        if cid in {c.id for c in channels}:
            raise _fail(f"{where}.id", f"{cid!r} is used twice / 通道编号重复")
        if kind not in CHANNEL_TYPES:
            raise _fail(f"{where}.type", f"one of {', '.join(CHANNEL_TYPES)}, got {kind!r} / 通道类型无效")
        unknown = sorted(set(raw) - _ROUTING_KEYS - _TRANSPORT_KEYS[kind])
        if unknown:
            raise _fail(f"{where}.{unknown[0]}", f"unknown key for a {kind} channel / 未知配置项")
        severity = raw.get("min_severity", "info")
        if severity not in SEVERITIES:
            raise _fail(f"{where}.min_severity", f"one of {', '.join(SEVERITIES)}, got {severity!r} / 严重级别无效")
        channels.append(Channel(
            id=cid, type=kind, min_severity=severity,
            events=_names(f"{where}.events", raw["events"], EVENT_TYPES) if "events" in raw else frozenset(EVENT_TYPES),
            depots=_names(f"{where}.depots", raw["depots"]) if "depots" in raw else None,
            alert_kinds=_names(f"{where}.alert_kinds", raw["alert_kinds"]) if "alert_kinds" in raw else None,
            target=_target(where, kind, raw, env)))
    return channels

"""Notify's settings beyond the platform's (services.common.config), checked at start: a bad
value stops the process with a message that names the variable or the channels file's key.

| variable | default | what |
|---|---|---|
| NOTIFY_CHANNELS_FILE | (none: nothing is sent) | YAML file of the channels and their routing (docs/notify.md) |
| NOTIFY_SEND_INTERVAL_MS | 1000 | how often the sender looks for due notifications |
| NOTIFY_RETRY_BASE_MS | 5000 | first retry after this long; each next one waits twice as long … |
| NOTIFY_RETRY_CAP_S | 600 | … but never longer than this |
| NOTIFY_DEAD_AFTER_DAYS | 3 | a notification not delivered after this many days is given up (dead letter, logged) |
| NOTIFY_HTTP_TIMEOUT_S | 10 | timeout of one webhook or robot request |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import yaml

from services.common.config import ConfigError, Settings, _int
from services.notify.domain.delivery import RetryPolicy
from services.notify.domain.routing import Channel, ChannelsError, parse_channels


@dataclass(frozen=True)
class NotifyConfig:
    channels: list[Channel]
    retry: RetryPolicy
    send_interval_s: float
    http_timeout_s: float


def load_channels(path: Path, env: dict) -> list[Channel]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"NOTIFY_CHANNELS_FILE: cannot read {path}: {exc.strerror} / 无法读取通道配置") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"NOTIFY_CHANNELS_FILE {path}: not YAML: {exc} / 通道配置不是 YAML") from None
    try:
        return parse_channels(data, env)
    except ChannelsError as exc:
        raise ConfigError(f"NOTIFY_CHANNELS_FILE {path}: {exc}") from None


def notify_config(settings: Settings, env: dict | None = None) -> NotifyConfig:
    env = dict(os.environ if env is None else env)  # channel secrets are named in the file
    raw = env.get("NOTIFY_CHANNELS_FILE", "").strip()
    return NotifyConfig(
        channels=load_channels(Path(raw), env) if raw else [],
        retry=RetryPolicy(base_s=_int(env, "NOTIFY_RETRY_BASE_MS", 5000, 10, 3_600_000) / 1000,
                          cap_s=_int(env, "NOTIFY_RETRY_CAP_S", 600, 1, 86_400),
                          dead_after=timedelta(days=_int(env, "NOTIFY_DEAD_AFTER_DAYS", 3, 1, 365))),
        send_interval_s=_int(env, "NOTIFY_SEND_INTERVAL_MS", 1000, 50, 600_000) / 1000,
        http_timeout_s=_int(env, "NOTIFY_HTTP_TIMEOUT_S", 10, 1, 300),
    )

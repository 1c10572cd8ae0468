"""Console settings from the environment, checked at start like every service's (a bad value
stops the process with a message naming the variable)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlparse

from services.common.config import SERVICES, ConfigError, Settings, load_settings
from services.console.domain.accounts import LockoutPolicy, SessionPolicy


@dataclass(frozen=True)
class ConsoleSettings:
    common: Settings
    host: str
    port: int
    session: SessionPolicy
    lockout: LockoutPolicy
    cookie_secure: bool
    tile_url: str  # map tiles ({z}/{x}/{y}); empty: drop points and routes on a plain background
    login_attempts_per_minute: int

    @property
    def targets(self) -> dict[str, str]:
        return {s: self.common.grpc_target(s) for s in (*SERVICES, "market")}


def _int(env: dict, name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, str(default)).strip()
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise ConfigError(f"{name} must be a whole number from {lo} to {hi}, got {raw!r}")
    return int(raw)


def load_console_settings(env: dict | None = None) -> ConsoleSettings:
    env = dict(os.environ if env is None else env)
    common = load_settings("console", env)
    tile_url = env.get("CONSOLE_TILE_URL", "").strip()
    if tile_url and (urlparse(tile_url).scheme not in ("http", "https") or "{z}" not in tile_url):
        raise ConfigError(f"CONSOLE_TILE_URL must be an http(s) URL with {{z}}/{{x}}/{{y}}, got {tile_url!r}")
    secure_raw = env.get("CONSOLE_COOKIE_SECURE", "1" if common.env == "production" else "0").strip()
    if secure_raw not in ("0", "1"):
        raise ConfigError(f"CONSOLE_COOKIE_SECURE must be 0 or 1, got {secure_raw!r}")
    # production refuses 0 with the other weak settings (services/common/production.py)
    return ConsoleSettings(
        common=common,
        host=env.get("CONSOLE_HTTP_HOST", "127.0.0.1").strip(),
        port=_int(env, "CONSOLE_HTTP_PORT", 8080, 1, 65535),
        session=SessionPolicy(idle=timedelta(minutes=_int(env, "CONSOLE_SESSION_IDLE_MIN", 30, 1, 24 * 60)),
                              absolute=timedelta(hours=_int(env, "CONSOLE_SESSION_MAX_HOURS", 12, 1, 72))),
        lockout=LockoutPolicy(max_failures=_int(env, "CONSOLE_LOCKOUT_FAILURES", 5, 1, 100),
                              lock_for=timedelta(minutes=_int(env, "CONSOLE_LOCKOUT_MINUTES", 15, 1, 24 * 60))),
        cookie_secure=secure_raw == "1",
        tile_url=tile_url,
        login_attempts_per_minute=_int(env, "CONSOLE_LOGIN_PER_MINUTE", 20, 1, 10_000),
    )

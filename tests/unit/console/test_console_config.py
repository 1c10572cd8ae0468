"""Console settings (services/console/config.py): CONSOLE_* variables are checked at start and a
bad one stops the process with a message naming it; production refuses cookies over plain HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.common.config import ConfigError
from services.console.config import load_console_settings

# settings production accepts (services/common/production.py refuses weaker ones)
PRODUCTION = {"SUPPLY_ENV": "production", "SUPPLY_AUTH_TOKENS": "a" * 32 + "=hq-zhang:hq",
              "SUPPLY_SECRET": "a-secret-for-the-pseudonyms-of-32+",
              "AMQP_URL": "amqp://supply-intake:" + "p" * 24 + "@127.0.0.1:5672/supply", "SUPPLY_JWT_KEY": "k" * 32}


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {"SUPPLY_VAR_DIR": str(tmp_path / "var")}


def test_defaults(env, tmp_path):
    s = load_console_settings(env)
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.session.idle == timedelta(minutes=30) and s.session.absolute == timedelta(hours=12)
    assert s.lockout.max_failures == 5 and s.lockout.lock_for == timedelta(minutes=15)
    assert s.cookie_secure is False  # development over plain http://127.0.0.1
    assert s.tile_url == "" and s.login_attempts_per_minute == 20
    assert s.common.database_url == f"sqlite:///{tmp_path / 'var' / 'console.db'}"
    assert set(s.targets) == {"intake", "allocation", "logistics", "monitoring", "market"}


def test_overrides(env):
    s = load_console_settings({**env, "CONSOLE_HTTP_HOST": "0.0.0.0", "CONSOLE_HTTP_PORT": "9000",
                               "CONSOLE_SESSION_IDLE_MIN": "10", "CONSOLE_SESSION_MAX_HOURS": "8",
                               "CONSOLE_LOCKOUT_FAILURES": "3", "CONSOLE_LOCKOUT_MINUTES": "60",
                               "CONSOLE_COOKIE_SECURE": "1", "CONSOLE_LOGIN_PER_MINUTE": "5",
                               "CONSOLE_TILE_URL": "https://{s}.tile.example.org/{z}/{x}/{y}.png"})
    assert (s.host, s.port) == ("0.0.0.0", 9000)
    assert s.session.idle == timedelta(minutes=10) and s.session.absolute == timedelta(hours=8)
    assert s.lockout.max_failures == 3 and s.lockout.lock_for == timedelta(hours=1)
    assert s.cookie_secure is True and s.login_attempts_per_minute == 5
    assert s.tile_url == "https://{s}.tile.example.org/{z}/{x}/{y}.png"


@pytest.mark.parametrize("name, value", [
    ("CONSOLE_HTTP_PORT", "0"), ("CONSOLE_HTTP_PORT", "65536"), ("CONSOLE_HTTP_PORT", "http"),
    ("CONSOLE_HTTP_PORT", "-1"), ("CONSOLE_SESSION_IDLE_MIN", "0"), ("CONSOLE_SESSION_IDLE_MIN", "1441"),
    ("CONSOLE_SESSION_MAX_HOURS", "73"), ("CONSOLE_LOCKOUT_FAILURES", "0"),
    ("CONSOLE_LOCKOUT_FAILURES", "2.5"), ("CONSOLE_LOCKOUT_MINUTES", ""),
    ("CONSOLE_LOGIN_PER_MINUTE", "10001"),
])
def test_a_number_out_of_range_is_refused_naming_the_variable(env, name, value):
    with pytest.raises(ConfigError, match=name):
        load_console_settings({**env, name: value})


@pytest.mark.parametrize("value", ["yes", "true", "2", "on"])
def test_cookie_secure_is_0_or_1(env, value):
    with pytest.raises(ConfigError, match="CONSOLE_COOKIE_SECURE must be 0 or 1"):
        load_console_settings({**env, "CONSOLE_COOKIE_SECURE": value})


def test_production_defaults_to_secure_cookies_and_refuses_plain_ones(env):
    assert load_console_settings({**env, **PRODUCTION}).cookie_secure is True
    with pytest.raises(ConfigError, match="CONSOLE_COOKIE_SECURE=0 is refused in production"):
        load_console_settings({**env, **PRODUCTION, "CONSOLE_COOKIE_SECURE": "0"})


@pytest.mark.parametrize("url", [
    "ftp://tiles.example.org/{z}/{x}/{y}.png",  # not http(s)
    "javascript:alert(1)//{z}",  # a scheme a page must never load
    "https://tiles.example.org/tiles.png",  # no {z}/{x}/{y}
    "tiles.example.org/{z}/{x}/{y}.png",  # no scheme
])
def test_a_bad_tile_url_is_refused(env, url):
    with pytest.raises(ConfigError, match="CONSOLE_TILE_URL"):
        load_console_settings({**env, "CONSOLE_TILE_URL": url})


def test_the_common_settings_are_checked_too(env):
    with pytest.raises(ConfigError, match="SUPPLY_TIMEZONE"):
        load_console_settings({**env, "SUPPLY_TIMEZONE": "Mars/Olympus"})

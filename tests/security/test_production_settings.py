"""Issue 14, finding 5: with SUPPLY_ENV=production every process refuses weak settings at start,
naming each one (all of them at once), and `supplyctl doctor --production` finds the same
without starting anything. Outside production the development defaults still work."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest

from services.common.config import DEV_JWT_KEY, DEV_TOKEN, ConfigError, load_settings
from tests.support import infra

ROOT = Path(__file__).resolve().parents[2]
STRONG = "s" * 40


def good_env(var_dir: Path) -> dict[str, str]:
    """Settings production accepts (SQLite under var_dir, so nothing here needs a server)."""
    return {
        "SUPPLY_ENV": "production",
        "SUPPLY_VAR_DIR": str(var_dir),
        "SUPPLY_SECRET": "p" * 40,
        "SUPPLY_JWT_KEY": "j" * 40,
        "SUPPLY_LEDGER_KEY": "l" * 40,
        "SUPPLY_AUTH_TOKENS": f"{'h' * 32}=hq-duty:hq,{'v' * 32}=v1-worker:village:V-001",
        "AMQP_URL": f"amqp://supply-intake:{STRONG}@127.0.0.1:5672/supply",
        "MQTT_URL": f"mqtt://monitoring:{STRONG}@127.0.0.1:1883",
        "SUPPLY_GRPC_HOST": "127.0.0.1",
    }


WEAK = [
    ("SUPPLY_SECRET", {"SUPPLY_SECRET": "x"}),
    ("SUPPLY_SECRET", {"SUPPLY_SECRET": "dev-secret-not-for-production"}),
    ("SUPPLY_JWT_KEY", {"SUPPLY_JWT_KEY": DEV_JWT_KEY}),
    ("SUPPLY_JWT_KEY", {"SUPPLY_JWT_KEY": "short-key"}),
    ("AMQP_URL", {"AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/%2F"}),
    ("AMQP_URL", {"AMQP_URL": "amqp://supply-intake:guest@127.0.0.1:5672/supply"}),
    ("SUPPLY_AUTH_TOKENS", {"SUPPLY_AUTH_TOKENS": f"{DEV_TOKEN}=dev:admin"}),
    ("SUPPLY_AUTH_TOKENS", {"SUPPLY_AUTH_TOKENS": "demo-hq-token-0000000001=county-hq:admin"}),
    ("SUPPLY_AUTH_TOKENS", {"SUPPLY_AUTH_TOKENS": "aaaaaaaaaaaaaaaaaaaa=hq-zhang:hq"}),
    ("SUPPLY_AUTH_TOKENS", {"SUPPLY_AUTH_TOKENS": f"{'b' * 32}=boss:superuser"}),
    ("SUPPLY_AUTH_TOKENS", {"SUPPLY_AUTH_TOKENS": f"{'c' * 32}=wang-v1:village"}),
    ("SUPPLY_FAILPOINTS", {"SUPPLY_FAILPOINTS": "relay.after_publish"}),
    ("SUPPLY_GRPC_HOST", {"SUPPLY_GRPC_HOST": "0.0.0.0"}),
    ("INTAKE_DATABASE_URL", {"INTAKE_DATABASE_URL": "postgresql://intake:intake@127.0.0.1:5432/intake"}),
]


@pytest.mark.parametrize("setting, weak", WEAK, ids=[f"{s}-{i}" for i, (s, _) in enumerate(WEAK)])
def test_each_weak_setting_is_refused_naming_it(tmp_path, setting, weak):
    with pytest.raises(ConfigError, match=setting):
        load_settings("intake", {**good_env(tmp_path), **weak})


def test_good_settings_load_and_development_keeps_its_defaults(tmp_path):
    assert load_settings("intake", good_env(tmp_path)).env == "production"
    dev = load_settings("intake", {"SUPPLY_VAR_DIR": str(tmp_path)})
    assert DEV_TOKEN in dev.auth_tokens and dev.jwt_key == DEV_JWT_KEY


def test_anonymous_mqtt_is_refused_for_monitoring_only(tmp_path):
    env = {**good_env(tmp_path), "MQTT_URL": "mqtt://127.0.0.1:1883"}
    with pytest.raises(ConfigError, match="MQTT_URL"):
        load_settings("monitoring", env)
    load_settings("intake", env)


def test_the_console_refuses_plain_cookies_and_a_weak_database_password(tmp_path):
    from services.console.config import load_console_settings

    env = {**good_env(tmp_path), "CONSOLE_COOKIE_SECURE": "0",
           "CONSOLE_DATABASE_URL": "postgresql://console:console@127.0.0.1:5432/console"}
    with pytest.raises(ConfigError) as exc:
        load_console_settings(env)
    assert "CONSOLE_COOKIE_SECURE" in str(exc.value) and "CONSOLE_DATABASE_URL" in str(exc.value)


def test_every_problem_is_reported_at_once_in_english_and_chinese(tmp_path):
    env = {**good_env(tmp_path), "SUPPLY_SECRET": "x", "SUPPLY_JWT_KEY": "y",
           "AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/%2F", "SUPPLY_FAILPOINTS": "x"}
    with pytest.raises(ConfigError) as exc:
        load_settings("intake", env)
    text = str(exc.value)
    for name in ("SUPPLY_SECRET", "SUPPLY_JWT_KEY", "AMQP_URL", "SUPPLY_FAILPOINTS"):
        assert name in text
    assert "生产环境" in text


def test_secrets_are_never_echoed(tmp_path):
    secret = "leaky-but-short"
    with pytest.raises(ConfigError) as exc:
        load_settings("intake", {**good_env(tmp_path), "SUPPLY_SECRET": secret,
                                 "AMQP_URL": "amqp://guest:guest-pass-xyz@127.0.0.1:5672/%2F"})
    assert secret not in str(exc.value) and "guest-pass-xyz" not in str(exc.value)


def _run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SUPPLY_", "AMQP_", "MQTT_", "INFLUX_", "CONSOLE_"))
             and not k.endswith(("_DATABASE_URL", "_GRPC_PORT", "_GRPC_TARGET"))}
    return subprocess.run(args, cwd=ROOT, env={**clean, **env}, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("service", ["intake", "monitoring"])
def test_the_api_process_refuses_to_start_naming_each_weak_setting(tmp_path, service):
    env = {**good_env(tmp_path), "SUPPLY_SECRET": "x", "SUPPLY_FAILPOINTS": "relay.after_publish",
           f"{service.upper()}_GRPC_PORT": str(infra.free_port())}
    done = _run([sys.executable, "-m", f"services.{service}", "api"], env)
    assert done.returncode != 0
    assert "SUPPLY_SECRET" in done.stderr and "SUPPLY_FAILPOINTS" in done.stderr, done.stderr


def test_the_console_process_refuses_to_start(tmp_path):
    env = {**good_env(tmp_path), "CONSOLE_COOKIE_SECURE": "0", "SUPPLY_JWT_KEY": DEV_JWT_KEY,
           "CONSOLE_HTTP_PORT": str(infra.free_port())}
    done = _run([sys.executable, "-m", "services.console", "web"], env)
    assert done.returncode != 0
    assert "CONSOLE_COOKIE_SECURE" in done.stderr and "SUPPLY_JWT_KEY" in done.stderr, done.stderr


def test_doctor_lists_every_problem_and_exits_1(tmp_path):
    env = {**good_env(tmp_path), "SUPPLY_SECRET": "x", "SUPPLY_AUTH_TOKENS": f"{DEV_TOKEN}=dev:admin",
           "AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/%2F", "MQTT_URL": "mqtt://127.0.0.1:1883",
           "CONSOLE_COOKIE_SECURE": "0"}
    done = _run([sys.executable, "-m", "services.cli", "doctor", "--production"], env)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    for name in ("SUPPLY_SECRET", "SUPPLY_AUTH_TOKENS", "AMQP_URL", "MQTT_URL", "CONSOLE_COOKIE_SECURE"):
        assert name in out, out


@pytest.fixture
def broker_account(amqp_url):
    """A RabbitMQ user with a strong password on the test's vhost (production refuses guest)."""
    if not infra.RabbitVhost("probe").isolated:
        pytest.skip("rabbitmqctl is needed to add a broker user")
    user, password = f"doctor-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex + uuid.uuid4().hex
    vhost = urlparse(amqp_url).path.lstrip("/")
    subprocess.run(["rabbitmqctl", "-q", "add_user", user, password], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost.replace("%2F", "/"), user,
                    ".*", ".*", ".*"], check=True, capture_output=True)
    yield f"amqp://{user}:{password}@127.0.0.1:5672/{quote(vhost, safe='%')}"
    subprocess.run(["rabbitmqctl", "-q", "delete_user", user], capture_output=True)


def test_doctor_says_ok_on_good_settings_and_answering_servers(tmp_path, broker_account):
    env = {**good_env(tmp_path), "AMQP_URL": broker_account}
    done = _run([sys.executable, "-m", "services.cli", "doctor", "--production"], env)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "ok" in out.lower()


def test_doctor_reports_a_server_that_does_not_answer(tmp_path, broker_account):
    env = {**good_env(tmp_path), "AMQP_URL": broker_account,
           "INFLUX_URL": f"http://127.0.0.1:{infra.free_port()}"}
    done = _run([sys.executable, "-m", "services.cli", "doctor", "--production"], env)
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "INFLUX_URL" in out, out

import pytest

from services.common.clock import FixedClock, SimulatedClock, parse_clock
from services.common.config import DEV_TOKEN, ConfigError, load_settings


def test_defaults_are_the_embedded_setup():
    s = load_settings("intake", {})
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("intake.db")
    assert s.grpc_port == 50051 and s.grpc_ports["monitoring"] == 50054
    assert s.auth_tokens == {DEV_TOKEN: ("dev", "admin", "")}
    assert str(s.timezone) == "Asia/Shanghai"


@pytest.mark.parametrize("env, message", [
    ({"INTAKE_GRPC_PORT": "http"}, "INTAKE_GRPC_PORT must be an integer"),
    ({"INTAKE_GRPC_PORT": "70000"}, "between 1 and 65535"),
    ({"AMQP_URL": "localhost:5672"}, "AMQP_URL must be a URL with scheme amqp"),
    ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL must be"),
    ({"SUPPLY_TIMEZONE": "Mars/Base"}, "not a known time zone"),
    ({"SUPPLY_CLOCK": "fast"}, "SUPPLY_CLOCK must be"),
    ({"SUPPLY_CLOCK": "sim:2026-11-28T07:00:00"}, "needs a UTC offset"),
    ({"SUPPLY_AUTH_TOKENS": "abc"}, "token=identity:role"),
    ({"SUPPLY_AUTH_TOKENS": "short=me:hq"}, "shorter than 16"),
    ({"SUPPLY_ENV": "production"}, "SUPPLY_AUTH_TOKENS must be set in production"),
    ({"SUPPLY_LOG_LEVEL": "LOUD"}, "SUPPLY_LOG_LEVEL"),
    ({"SUPPLY_GRPC_THREADS": "many"}, "SUPPLY_GRPC_THREADS must be an integer"),
    ({"SUPPLY_GRPC_THREADS": "-1"}, "SUPPLY_GRPC_THREADS must be between 0 and 1000"),
    ({"SUPPLY_GRPC_REUSEPORT": "yes"}, "SUPPLY_GRPC_REUSEPORT must be 0 or 1"),
    ({"SUPPLY_RELAY_IDLE_MS": "0"}, "SUPPLY_RELAY_IDLE_MS must be between 1 and 2000"),
])
def test_bad_values_fail_fast_naming_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings("intake", env)


def test_grpc_threads_and_reuseport_are_typed():
    s = load_settings("intake", {"SUPPLY_GRPC_THREADS": "12", "SUPPLY_GRPC_REUSEPORT": "1"})
    assert (s.grpc_threads, s.grpc_reuseport) == (12, True)
    assert (load_settings("intake", {}).grpc_threads, load_settings("intake", {}).grpc_reuseport) == (0, False)


def test_relay_idle_poll_is_a_setting_in_milliseconds():
    assert load_settings("monitoring", {}).relay_idle == 0.05
    assert load_settings("monitoring", {"SUPPLY_RELAY_IDLE_MS": "10"}).relay_idle == 0.01


def test_service_database_url_overrides_the_shared_one():
    s = load_settings("logistics", {"DATABASE_URL": "postgresql://a@h/x",
                                    "LOGISTICS_DATABASE_URL": "postgresql://a@h/logistics"})
    assert s.database_url == "postgresql+psycopg://a@h/logistics"


def test_tokens_map_to_identity_and_role():
    s = load_settings("intake", {"SUPPLY_AUTH_TOKENS": "aaaaaaaaaaaaaaaa=hq-zhang:hq, bbbbbbbbbbbbbbbb=v1:village:V-001"})
    assert s.auth_tokens["aaaaaaaaaaaaaaaa"] == ("hq-zhang", "hq", "")
    assert s.auth_tokens["bbbbbbbbbbbbbbbb"] == ("v1", "village", "V-001")


def test_simulated_clocks_agree_across_processes(monkeypatch):
    import time

    spec = "sim:2026-11-28T07:00:00+08:00;speed=60;anchor=1000"
    monkeypatch.setattr(time, "time", lambda: 1010.0)
    a, b = parse_clock(spec), parse_clock(spec)
    assert isinstance(a, SimulatedClock)
    assert a.now() == b.now()
    assert a.now().isoformat() == "2026-11-27T23:10:00+00:00"  # 07:00+08:00 plus 10 s × 60


def test_fixed_clock_moves_only_when_told():
    from datetime import UTC, datetime

    c = FixedClock(datetime(2026, 11, 28, 3, 0, tzinfo=UTC))
    c.advance(minutes=90)
    assert c.now().hour == 4 and c.now().minute == 30


def test_grpc_targets_default_to_this_machine_and_can_point_elsewhere():
    s = load_settings("allocation", {"SUPPLY_GRPC_HOST": "0.0.0.0"})
    assert s.grpc_target("logistics") == "127.0.0.1:50053"
    s = load_settings("allocation", {"LOGISTICS_GRPC_TARGET": "logistics-api:50053"})
    assert s.grpc_target("logistics") == "logistics-api:50053"
    with pytest.raises(ConfigError, match="LOGISTICS_GRPC_TARGET must be host:port"):
        load_settings("allocation", {"LOGISTICS_GRPC_TARGET": "logistics-api"})


# settings production accepts (services/common/production.py refuses weaker ones)
PRODUCTION = {"SUPPLY_ENV": "production", "SUPPLY_AUTH_TOKENS": "a" * 32 + "=hq-zhang:hq",
              "SUPPLY_SECRET": "a-secret-for-the-pseudonyms-of-32+",
              "AMQP_URL": "amqp://supply-intake:" + "p" * 24 + "@127.0.0.1:5672/supply"}


def test_the_jwt_key_has_a_development_default_only_outside_production():
    from services.common.config import DEV_JWT_KEY

    assert load_settings("intake", {}).jwt_key == DEV_JWT_KEY
    assert "NOT-FOR-PRODUCTION" in DEV_JWT_KEY and len(DEV_JWT_KEY) >= 32
    key = "k" * 32
    assert load_settings("intake", {**PRODUCTION, "SUPPLY_JWT_KEY": key}).jwt_key == key


@pytest.mark.parametrize("env", [PRODUCTION, {**PRODUCTION, "SUPPLY_JWT_KEY": "k" * 31},
                                 {"SUPPLY_JWT_KEY": "too-short"}])
def test_a_missing_or_short_jwt_key_is_refused(env):
    with pytest.raises(ConfigError, match="SUPPLY_JWT_KEY"):
        load_settings("intake", env)


@pytest.mark.parametrize("entry, message", [
    ("bbbbbbbbbbbbbbbb=wang-v1:village", "'wang-v1' has role village but no scope"),
    ("bbbbbbbbbbbbbbbb=li-u1:unit_head", "'li-u1' has role unit_head but no scope"),
    ("bbbbbbbbbbbbbbbb=boss:superuser", "'boss' has unknown role 'superuser'"),
    ("bbbbbbbb.bbbbb.bbbbb=gw:gateway", "'gw' has two dots"),
])
def test_static_tokens_with_a_bad_role_or_scope_are_refused_naming_the_identity(entry, message):
    with pytest.raises(ConfigError, match=message) as exc:
        load_settings("intake", {"SUPPLY_AUTH_TOKENS": f"aaaaaaaaaaaaaaaa=hq-zhang:hq,{entry}"})
    assert entry.split("=")[0] not in str(exc.value)

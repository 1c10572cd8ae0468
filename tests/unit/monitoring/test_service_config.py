"""Monitoring's settings and zones file (services/monitoring/config.py), and the stored-sensor
offline rule (domain/offline.py offline_transition)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.catalogue import load_catalogue
from services.common.config import ConfigError, load_settings
from services.monitoring.config import monitoring_config, parse_zones
from services.monitoring.domain.offline import OfflinePolicy, offline_transition

CAT = load_catalogue()
T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def config(**env):
    return monitoring_config(load_settings("monitoring", {"SUPPLY_VAR_DIR": "/tmp/x", **env}))


def test_defaults_and_overrides():
    c = config()
    assert (c.mqtt_root, c.client_id, c.share_group, c.receive_max) == ("supply", "monitoring-ingest-1", "", 500)  # plain subscription by default (ADR 0003)
    assert c.offline_policy.timeout(None) == timedelta(minutes=3)
    c = config(SUPPLY_MQTT_ROOT="/test/abc/", SUPPLY_SENSOR_INTERVAL_S="30", SUPPLY_PRICE_RISE_PCT="15",
               SUPPLY_LATE_WINDOW_S="120")
    assert c.mqtt_root == "test/abc" and c.sensor_interval == timedelta(seconds=30)
    assert c.alarm_policy.reporting_interval == timedelta(seconds=30)
    assert c.price_policy.rise_pct == 15 and c.dedup_policy.late_window == timedelta(minutes=2)


def test_watch_stream_limits_are_the_services_own_variables():
    c = config()
    assert (c.watch_streams_per_identity, c.watch_streams_max) == (4, 64)
    c = config(MONITORING_WATCH_STREAMS_PER_IDENTITY="2", MONITORING_WATCH_STREAMS_MAX="10")
    assert (c.watch_streams_per_identity, c.watch_streams_max) == (2, 10)
    # another service's variable of that name is not monitoring's
    assert "MONITORING_WATCH_STREAMS_MAX" not in load_settings("intake", {"MONITORING_WATCH_STREAMS_MAX": "1"}).extra


def test_the_worker_id_names_the_workers_spool_folder():
    assert config().worker_id == "worker"
    assert config(SUPPLY_MONITORING_WORKER_ID=" worker-2 ").worker_id == "worker-2"


@pytest.mark.parametrize("env, name", [
    ({"SUPPLY_MQTT_ROOT": "a/+/b"}, "SUPPLY_MQTT_ROOT"),
    ({"SUPPLY_MQTT_CLIENT_ID": "has space"}, "SUPPLY_MQTT_CLIENT_ID"),
    ({"SUPPLY_MQTT_RECEIVE_MAX": "0"}, "SUPPLY_MQTT_RECEIVE_MAX"),
    ({"SUPPLY_SENSOR_INTERVAL_S": "often"}, "SUPPLY_SENSOR_INTERVAL_S"),
    ({"SUPPLY_ZONES_FILE": "/nonexistent/zones.yaml"}, "SUPPLY_ZONES_FILE"),
    ({"SUPPLY_MQTT_SHARE_GROUP": "a/b"}, "SUPPLY_MQTT_SHARE_GROUP"),
    ({"MONITORING_WATCH_STREAMS_PER_IDENTITY": "0"}, "MONITORING_WATCH_STREAMS_PER_IDENTITY"),
    ({"MONITORING_WATCH_STREAMS_MAX": "many"}, "MONITORING_WATCH_STREAMS_MAX"),
    ({"MONITORING_WATCH_STREAMS_PER_IDENTITY": "5", "MONITORING_WATCH_STREAMS_MAX": "4"},
     "MONITORING_WATCH_STREAMS_PER_IDENTITY"),
    ({"SUPPLY_MONITORING_WORKER_ID": "a/b"}, "SUPPLY_MONITORING_WORKER_ID"),
    ({"SUPPLY_MONITORING_WORKER_ID": "two words"}, "SUPPLY_MONITORING_WORKER_ID"),
    ({"SUPPLY_MONITORING_WORKER_ID": ".."}, "SUPPLY_MONITORING_WORKER_ID must name a folder"),
])
def test_a_bad_value_stops_the_process_naming_the_variable(env, name):
    with pytest.raises(ConfigError, match=name):
        config(**env)


def test_zones_file_in_both_shapes():
    flat = parse_zones({"zones": [{"depot": "cs", "zone": "chl", "storage_class": "chilled",
                                   "sensors": ["a", "b"], "interval_s": 30, "capacity": 40}]}, CAT)
    assert flat[0].zone_key == "cs/chl" and flat[0].sensors == ("a", "b") and flat[0].interval_s == 30
    scenario = parse_zones({"interval_s": 60, "depots": [
        {"id": "wh", "zones": [{"id": "oxd", "storage_class": "oxidizer", "sensors": 3}]}]}, CAT)
    assert scenario[0].zone_key == "wh/oxd" and scenario[0].sensors == ("s1", "s2", "s3")
    assert scenario[0].interval_s == 60


@pytest.mark.parametrize("data, message", [
    ({"zones": [{"depot": "cs", "zone": "chl", "storage_class": "cold"}]}, r"zones\[0\].storage_class"),
    ({"zones": [{"depot": "c/s", "zone": "chl", "storage_class": "chilled"}]}, r"zones\[0\].depot"),
    ({"zones": [{"depot": "cs", "zone": "chl", "storage_class": "chilled", "interval_s": 0}]}, "interval_s"),
    ({"zones": [{"depot": "cs", "zone": "z", "storage_class": "chilled"},
                {"depot": "cs", "zone": "z", "storage_class": "frozen"}]}, "listed twice: cs/z"),
    ([1, 2], "mapping"),
])
def test_zones_file_errors_name_the_entry(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_zones(data, CAT)


def verdict(**kw):
    args = dict(expected_since=T0, last_heard=T0, last_reading=T0, interval=None, status_offline=False,
                reported_offline=False, now=T0, policy=OfflinePolicy())
    args.update(kw)
    return offline_transition("d", "z", "s", **args)


def test_offline_after_three_intervals_of_silence_or_a_will_and_back_when_heard():
    assert verdict(now=T0 + timedelta(seconds=179)) is None
    t = verdict(now=T0 + timedelta(seconds=180))
    assert (t.state, t.reason, t.last_seen) == ("offline", "silent", T0)
    assert verdict(now=T0 + timedelta(minutes=10), interval=timedelta(minutes=5)) is None
    assert verdict(status_offline=True).reason == "last_will"
    assert verdict(now=T0 + timedelta(hours=1), reported_offline=True) is None  # reported once
    back = verdict(reported_offline=True)
    assert (back.state, back.reason) == ("online", "heard")
    assert verdict(reported_offline=True, status_offline=True) is None  # heard, but the will stands
    never = verdict(last_heard=None, last_reading=None, now=T0 + timedelta(minutes=3))
    assert never.state == "offline" and never.last_seen is None

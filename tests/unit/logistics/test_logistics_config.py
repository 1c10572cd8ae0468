"""Logistics' own settings are typed and checked at start, naming the variable (issue #15)."""

from __future__ import annotations

import pytest

from services.common.config import DEV_LEDGER_KEY, ConfigError, load_settings
from services.logistics.config import load_logistics_config


def config(**env):
    return load_logistics_config(load_settings("logistics", env))


def test_defaults():
    c = config()
    assert (c.routing_s, c.donation_depot, c.population, c.min_shelf_days_on_arrival,
            c.min_days_left_at_delivery, c.trip_speed_kmh, c.delivery_staff_per_drop_point) == (
        10, "", None, 0, 0, 30, 0)
    assert c.ledger_key == DEV_LEDGER_KEY.encode()


def test_values_from_the_environment():
    key = "k" * 40
    c = config(SUPPLY_ROUTING_SECONDS="2.5", SUPPLY_DONATION_DEPOT=" cs02 ", SUPPLY_POPULATION="12000",
               SUPPLY_MIN_SHELF_DAYS_ON_ARRIVAL="30", SUPPLY_MIN_DAYS_LEFT_AT_DELIVERY="3",
               SUPPLY_TRIP_SPEED_KMH="45", SUPPLY_DELIVERY_STAFF_PER_DROP_POINT="2",
               SUPPLY_LEDGER_KEY=f" {key} ")
    assert (c.routing_s, c.donation_depot, c.population, c.min_shelf_days_on_arrival,
            c.min_days_left_at_delivery, c.trip_speed_kmh, c.delivery_staff_per_drop_point) == (
        2.5, "cs02", 12000, 30, 3, 45, 2)
    assert c.ledger_key == key.encode()


@pytest.mark.parametrize("env, message", [
    ({"SUPPLY_ROUTING_SECONDS": "fast"}, "SUPPLY_ROUTING_SECONDS must be a number, got 'fast'"),
    ({"SUPPLY_ROUTING_SECONDS": "0"}, "SUPPLY_ROUTING_SECONDS must be between 0.1 and 600"),
    ({"SUPPLY_POPULATION": "1.5e4"}, "SUPPLY_POPULATION must be a number, got '1.5e4'"),
    ({"SUPPLY_POPULATION": "-1"}, "SUPPLY_POPULATION must be between 0 and"),
    ({"SUPPLY_MIN_SHELF_DAYS_ON_ARRIVAL": "4000"}, "SUPPLY_MIN_SHELF_DAYS_ON_ARRIVAL must be between 0 and 3650"),
    ({"SUPPLY_MIN_DAYS_LEFT_AT_DELIVERY": "two"}, "SUPPLY_MIN_DAYS_LEFT_AT_DELIVERY must be a number"),
    ({"SUPPLY_TRIP_SPEED_KMH": "500"}, "SUPPLY_TRIP_SPEED_KMH must be between 1 and 200"),
    ({"SUPPLY_DELIVERY_STAFF_PER_DROP_POINT": "-2"}, "SUPPLY_DELIVERY_STAFF_PER_DROP_POINT must be between 0"),
    ({"SUPPLY_LEDGER_KEY": "short"}, "SUPPLY_LEDGER_KEY must be a random key of at least 32"),
])
def test_bad_values_are_refused_naming_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        config(**env)

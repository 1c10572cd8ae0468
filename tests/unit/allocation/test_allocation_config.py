"""Allocation's own settings are typed and checked at start, naming the variable (issue #15)."""

from __future__ import annotations

import pytest

from services.allocation.config import load_allocation_config
from services.common.config import DEV_TOKEN, ConfigError, load_settings


def config(**env):
    return load_allocation_config(load_settings("allocation", env))


def test_defaults():
    c = config()
    assert (c.tick_s, c.stock_timeout_s, c.service_token) == (10, 30, DEV_TOKEN)


def test_values_from_the_environment():
    c = config(SUPPLY_ALLOCATION_TICK_SECONDS="0.5", SUPPLY_STOCK_TIMEOUT_SECONDS="12",
               SUPPLY_SERVICE_TOKEN=" svc-token-0123456789 ")
    assert (c.tick_s, c.stock_timeout_s, c.service_token) == (0.5, 12, "svc-token-0123456789")


@pytest.mark.parametrize("env, message", [
    ({"SUPPLY_ALLOCATION_TICK_SECONDS": "soon"}, "SUPPLY_ALLOCATION_TICK_SECONDS must be a number of seconds"),
    ({"SUPPLY_ALLOCATION_TICK_SECONDS": "0"}, "SUPPLY_ALLOCATION_TICK_SECONDS must be between 0.1 and 3600"),
    ({"SUPPLY_STOCK_TIMEOUT_SECONDS": "-1"}, "SUPPLY_STOCK_TIMEOUT_SECONDS must be between 0.1 and 600"),
])
def test_bad_values_are_refused_naming_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        config(**env)

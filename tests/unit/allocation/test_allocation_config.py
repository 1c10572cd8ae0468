"""Allocation's own settings are typed and checked at start, naming the variable (issue #15)."""

from __future__ import annotations

import pytest

from services.allocation.config import load_allocation_config, load_policy_defaults
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


def test_policy_defaults_from_the_environment():
    from services.allocation.bootstrap import default_policy

    env = {"SUPPLY_DEMAND_CUTOFF": "09:30", "SUPPLY_DEMAND_CUTOFF_DAYS_BEFORE": "1",
           "SUPPLY_DISPATCH_DEADLINE": "16:00"}
    assert load_policy_defaults(load_settings("allocation", {})).changes() == {}
    assert load_policy_defaults(load_settings("allocation", env)).changes() == {
        "cutoff": "09:30", "cutoff_days_before": 1, "dispatch_deadline": "16:00"}
    policy = default_policy(load_settings("allocation", env))
    assert (policy.cutoff, policy.cutoff_days_before, policy.dispatch_deadline, policy.version) == (
        "09:30", 1, "16:00", 0)


@pytest.mark.parametrize("env, message", [
    ({"SUPPLY_DEMAND_CUTOFF_DAYS_BEFORE": "one"}, "SUPPLY_DEMAND_CUTOFF_DAYS_BEFORE must be an integer, got 'one'"),
    ({"SUPPLY_DEMAND_CUTOFF_DAYS_BEFORE": "99"}, "SUPPLY_DEMAND_CUTOFF_DAYS_BEFORE: must be between 0 and"),
    ({"SUPPLY_DEMAND_CUTOFF": "25:00"}, "SUPPLY_DEMAND_CUTOFF: must be a local time"),
    ({"SUPPLY_DISPATCH_DEADLINE": "10:00"}, "SUPPLY_DISPATCH_DEADLINE: the dispatch deadline"),
])
def test_bad_policy_values_are_refused_naming_the_variable(env, message):
    from services.allocation.bootstrap import default_policy

    with pytest.raises(ConfigError, match=message):
        default_policy(load_settings("allocation", env))

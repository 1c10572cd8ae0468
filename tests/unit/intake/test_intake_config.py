"""Intake's own settings are typed, checked at start naming the variable (issue #15)."""

from __future__ import annotations

import pytest

from services.common.config import ConfigError, load_settings
from services.intake.config import IntakeConfig, load_intake_config, periodic_check_s


def test_the_periodic_check_interval_defaults_to_30_seconds_and_can_be_set():
    assert periodic_check_s(load_settings("intake", {})) == 30
    assert periodic_check_s(load_settings("intake", {"SUPPLY_PERIODIC_CHECK_SECONDS": "2.5"})) == 2.5


@pytest.mark.parametrize("raw, message", [("often", "must be a number of seconds"),
                                          ("0", "must be between 0.1 and 3600")])
def test_a_bad_interval_is_refused_naming_the_variable(raw, message):
    with pytest.raises(ConfigError, match=f"SUPPLY_PERIODIC_CHECK_SECONDS {message}"):
        periodic_check_s(load_settings("intake", {"SUPPLY_PERIODIC_CHECK_SECONDS": raw}))


def test_the_demand_rules_default_and_can_be_set():
    from services.intake.bootstrap import demand_policy

    assert load_intake_config(load_settings("intake", {})) == IntakeConfig(1, 3.0)
    settings = load_settings("intake", {"SUPPLY_DEMAND_CYCLE_DAYS": "3", "SUPPLY_OVER_NORM_FACTOR": "2.5"})
    assert load_intake_config(settings) == IntakeConfig(3, 2.5)
    policy = demand_policy(settings)
    assert (policy.cycle_days, policy.over_norm_factor) == (3, 2.5)


@pytest.mark.parametrize("env, message", [
    ({"SUPPLY_DEMAND_CYCLE_DAYS": "three"}, "SUPPLY_DEMAND_CYCLE_DAYS must be an integer, got 'three'"),
    ({"SUPPLY_DEMAND_CYCLE_DAYS": "0"}, "SUPPLY_DEMAND_CYCLE_DAYS must be between 1 and 366"),
    ({"SUPPLY_OVER_NORM_FACTOR": "high"}, "SUPPLY_OVER_NORM_FACTOR must be a number, got 'high'"),
    ({"SUPPLY_OVER_NORM_FACTOR": "0"}, "SUPPLY_OVER_NORM_FACTOR must be above 0 and at most 1000"),
])
def test_a_bad_demand_rule_is_refused_naming_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        load_intake_config(load_settings("intake", env))

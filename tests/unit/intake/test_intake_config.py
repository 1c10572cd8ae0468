"""Intake's worker interval is a typed setting, checked at start naming the variable (issue #15)."""

from __future__ import annotations

import pytest

from services.common.config import ConfigError, load_settings
from services.intake.config import periodic_check_s


def test_the_periodic_check_interval_defaults_to_30_seconds_and_can_be_set():
    assert periodic_check_s(load_settings("intake", {})) == 30
    assert periodic_check_s(load_settings("intake", {"SUPPLY_PERIODIC_CHECK_SECONDS": "2.5"})) == 2.5


@pytest.mark.parametrize("raw, message", [("often", "must be a number of seconds"),
                                          ("0", "must be between 0.1 and 3600")])
def test_a_bad_interval_is_refused_naming_the_variable(raw, message):
    with pytest.raises(ConfigError, match=f"SUPPLY_PERIODIC_CHECK_SECONDS {message}"):
        periodic_check_s(load_settings("intake", {"SUPPLY_PERIODIC_CHECK_SECONDS": raw}))

"""Fixtures for the intake domain tests: the real catalogue and a few requesters."""

from __future__ import annotations

import pytest

from services.common.catalogue import load_catalogue
from services.intake.domain import DemandPolicy, register_requester
from tests.unit.intake.intake_support import REGISTERED, area_spec, unit_spec


@pytest.fixture
def catalogue():
    return load_catalogue()


@pytest.fixture
def policy():
    return DemandPolicy()


@pytest.fixture
def sealed_village():
    return register_requester(area_spec(), REGISTERED)


@pytest.fixture
def controlled_community():
    return register_requester(area_spec(id="C-001", kind="community", risk_level="controlled"),
                              REGISTERED)


@pytest.fixture
def prevention_village():
    return register_requester(area_spec(id="V-002", risk_level="prevention"), REGISTERED)


@pytest.fixture
def make_unit():
    def make(unit_type: str = "hospital", **over):
        return register_requester(unit_spec(unit_type, **over), REGISTERED)
    return make

"""Tier names and the hazard incompatibility table are defined once (issue #15): every service
reads services/common/tiers.py and the catalogue's INCOMPATIBLE_HAZARDS."""

from __future__ import annotations

from pathlib import Path

from supply.v1 import common_pb2

from services.common.catalogue import INCOMPATIBLE_HAZARDS
from services.common.tiers import TIER_NAMES
from services.logistics.domain.policy import ReceiptPolicy
from services.monitoring.domain.hazmat import SegregationPolicy

SERVICES = Path(__file__).resolve().parents[3] / "services"


def _sources_containing(text: str) -> list[str]:
    return sorted(str(p.relative_to(SERVICES)) for p in SERVICES.rglob("*.py") if text in p.read_text("utf-8"))


def test_tier_names_cover_every_tier_of_the_proto_enum():
    tiers = {v.number for v in common_pb2.Tier.DESCRIPTOR.values if v.number}
    assert set(TIER_NAMES) == tiers
    assert all(zh and en for zh, en in TIER_NAMES.values())


def test_tier_names_are_written_once():
    assert _sources_containing('"一线医疗"') == ["common/tiers.py"]
    assert _sources_containing('"frontline medical"') == ["common/tiers.py"]


def test_hazard_table_is_written_once_and_both_services_use_it():
    assert _sources_containing('("flammable", "oxidizer")') == ["common/catalogue.py"]
    assert SegregationPolicy().incompatible == INCOMPATIBLE_HAZARDS
    assert ReceiptPolicy().incompatible_hazards == {frozenset(p) for p in INCOMPATIBLE_HAZARDS}

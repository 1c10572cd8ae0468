"""Helpers shared by the intake domain tests (tests.unit.intake.intake_support)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

CST = ZoneInfo("Asia/Shanghai")
REGISTERED = datetime(2026, 11, 27, 9, 0, tzinfo=CST)


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=CST)


def area_spec(**over) -> dict:
    spec = {
        "id": "V-001", "kind": "village", "name": "东风村", "township": "城关镇",
        "location": {"lat": 30.5, "lon": 114.3}, "population": 1000, "households": 320,
        "risk_level": "sealed",
        "vulnerable": {"elderly_alone": 12, "disabled": 3, "chronic_patients": 40, "infants": 9,
                       "pregnant": 2},
        "drop_points": [{"id": "DP-1", "name": "村委会", "location": {"lat": 30.5, "lon": 114.3},
                         "window_start": "08:00", "window_end": "10:30"}],
    }
    spec.update(over)
    return spec


def unit_spec(type_: str = "hospital", /, **over) -> dict:
    spec = {
        "id": f"U-{type_}", "kind": "unit", "name": f"县{type_}", "township": "城关镇",
        "location": {"lat": 30.6, "lon": 114.2}, "unit_type": type_, "headcount": 100,
        "beds": 50,
    }
    spec.update(over)
    return spec

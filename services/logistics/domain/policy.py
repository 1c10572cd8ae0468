"""Logistics policy: every number that is a rule, with its default (RULES.md §4, §8, §9, §10).

A county changes these in configuration; the domain never hard-codes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from services.common.catalogue import INCOMPATIBLE_HAZARDS
from services.common.errors import InvalidInput

DEFAULT_TZ = "Asia/Shanghai"


def local_date(at: datetime, tz: str) -> date:
    """The county-local calendar date of a tz-aware instant."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput("at", "must be timezone-aware")
    return at.astimezone(ZoneInfo(tz)).date()


@dataclass(frozen=True)
class LedgerPolicy:
    """timezone: the county's zone; lot expiry dates are compared with the local date."""

    timezone: str = DEFAULT_TZ


@dataclass(frozen=True)
class ReceiptPolicy:
    """Put-away rules (RULES.md §8, §9).

    incompatible_hazards: hazard pairs never stored in one zone (either direction); default the
      catalogue's INCOMPATIBLE_HAZARDS.
    zone_accepts: storage classes a zone class accepts besides its own (a county may run a
      mixed 危化品库 accepting flammable and oxidizer classes: segregation still applies).
    min_shelf_days_on_arrival: a lot must still be good this many days after arrival
      (0: only a lot already past its expiry date is refused).
    refuse_non_essential: tobacco and alcohol are not handled at all (篇5: 烟酒等非必须品除外).
    """

    timezone: str = DEFAULT_TZ
    incompatible_hazards: frozenset[frozenset[str]] = frozenset(map(frozenset, INCOMPATIBLE_HAZARDS))
    zone_accepts: dict[str, frozenset[str]] = field(default_factory=dict)
    min_shelf_days_on_arrival: int = 0
    refuse_non_essential: bool = True

    def accepts(self, zone_class: str, item_class: str) -> bool:
        return item_class == zone_class or item_class in self.zone_accepts.get(zone_class, ())

    def incompatible(self, a: str | None, b: str | None) -> bool:
        return a is not None and b is not None and frozenset({a, b}) in self.incompatible_hazards


@dataclass(frozen=True)
class PickPolicy:
    """FEFO picking (RULES.md §3.8).

    min_days_left_at_delivery: a lot is picked only if it is still good this many days after
      the delivery day (0: a lot expiring on the delivery day itself may still go out).
    """

    min_days_left_at_delivery: int = 0


@dataclass(frozen=True)
class SupplyDaysPolicy:
    """Days of supply (RULES.md §4).

    measure: how items of one group are summed: "weight" (kg, via the catalogue's weight per
      unit; items of a group have different units) or "units".
    include_reserved: reserved stock still counts as county stock until it is issued.
    population_by_group: population base per group where it differs from the county's
      (pork: urban residents only, 篇13).
    """

    measure: str = "weight"
    include_reserved: bool = True
    population_by_group: dict[str, int] = field(default_factory=dict)
    timezone: str = DEFAULT_TZ


@dataclass(frozen=True)
class TripPolicy:
    """Trip building (RULES.md §10).

    speed_kmh: average road speed; road_factor: road km per great-circle km (1.0: haversine).
    stop_service_min: unloading time per delivery part at a drop point.
    depot_loading_min: loading time at the depot before departure.
    default_slot: a vehicle's time slot when it has none assigned (采买时间安排表).
    cold_classes: storage classes that travel only in refrigerated vehicles.
    time_limit_s / seed / max_iterations: PyVRP stopping criteria (MaxRuntime, and optionally
      MaxIterations for runs that must repeat exactly).
    fallback_time_limit_s: when the fleet cannot serve every part, a second solve lets the
      solver leave parts unserved (prize-collecting) and report them.
    households_per_delivery_person: 每10户配备1名配送人员.
    """

    timezone: str = DEFAULT_TZ
    speed_kmh: float = 30.0
    road_factor: float = 1.0
    stop_service_min: float = 10.0
    depot_loading_min: float = 20.0
    default_slot: tuple[time, time] = (time(7, 0), time(19, 0))
    cold_classes: frozenset[str] = frozenset({"chilled", "frozen", "medicine_2_8"})
    time_limit_s: float = 5.0
    fallback_time_limit_s: float = 5.0
    max_iterations: int | None = None
    seed: int = 1
    households_per_delivery_person: int = 10


@dataclass(frozen=True)
class DeliveryPolicy:
    """Proof of delivery (RULES.md §10). proof_kinds: accepted proof reference prefixes."""

    proof_kinds: tuple[str, ...] = ("photo", "signature")
    discrepancy_reasons: tuple[str, ...] = ("short", "damaged", "refused")

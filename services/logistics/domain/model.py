"""Logistics entities: depots, zones, lots, vehicles, drop points, cited documents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum

from services.common.errors import InvalidInput

DOC_TYPES = (
    "plan_line", "receipt", "inspection", "alert", "delivery", "transfer", "stocktake",
)


@dataclass(frozen=True, slots=True)
class DocRef:
    """The document a ledger line or a lot cites (plan line, receipt, inspection, alert …)."""

    doc_type: str
    doc_id: str

    def __post_init__(self) -> None:
        if self.doc_type not in DOC_TYPES:
            raise InvalidInput("doc.doc_type", f"must be one of {DOC_TYPES}, got {self.doc_type!r}")
        if not isinstance(self.doc_id, str) or not self.doc_id.strip():
            raise InvalidInput("doc.doc_id", "required")

    def __str__(self) -> str:
        return f"{self.doc_type}:{self.doc_id}"


@dataclass(frozen=True, slots=True)
class Depot:
    """A depot (仓库). Loading hours: when vehicles may be loaded and leave (装车时间)."""

    id: str
    name: str
    lat: float
    lon: float
    loading_open: time = time(6, 0)
    loading_close: time = time(16, 0)

    def __post_init__(self) -> None:
        _check_latlon(self.lat, self.lon, "depot")
        if self.loading_close <= self.loading_open:
            raise InvalidInput("depot.loading_close", "must be after loading_open")


@dataclass(frozen=True, slots=True)
class Zone:
    """A storage zone of a depot (库区). Capacity in litres: every catalogue item has a volume
    per unit, while units themselves (bag, bottle, kg) cannot be added up."""

    id: str
    depot_id: str
    storage_class: str
    capacity_l: int

    def __post_init__(self) -> None:
        if not isinstance(self.capacity_l, int) or self.capacity_l <= 0:
            raise InvalidInput("zone.capacity_l", "must be an integer > 0")


@dataclass(frozen=True, slots=True)
class ZoneOccupancy:
    """What a zone holds now, derived from its lots' balances."""

    zone_id: str
    used_l: float
    hazards: frozenset[str]
    items: frozenset[str]


class LotStatus(StrEnum):
    AVAILABLE = "available"
    QUARANTINED = "quarantined"
    WRITTEN_OFF = "written_off"


@dataclass(frozen=True, slots=True)
class Lot:
    """A lot (批次): one item, one expiry, in one zone. `source` cites the receipt that created
    it. The status here is the stored copy; the ledger's quarantine / release / write-off lines
    decide it (see ledger.LotBalance.status)."""

    lot_id: str
    item_code: str
    depot_id: str
    zone_id: str
    lot_number: str
    expiry: date
    status: LotStatus
    source: DocRef
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TimeSlot:
    """A vehicle's assigned slot (采买时间安排表): it leaves and returns within [start, end]."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise InvalidInput("slot.end", "must be after slot.start")


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A delivery vehicle with its pass (通行证) and its crew of two: driver and clerk."""

    id: str
    pass_number: str
    capacity_kg: int
    capacity_l: int
    refrigerated: bool
    depot_id: str
    driver: str
    clerk: str
    slots: tuple[TimeSlot, ...] = ()

    def __post_init__(self) -> None:
        for f in ("capacity_kg", "capacity_l"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise InvalidInput(f"vehicle.{f}", "must be an integer > 0")
        for f in ("pass_number", "driver", "clerk"):
            if not getattr(self, f).strip():
                raise InvalidInput(f"vehicle.{f}", "required (通行证, driver and clerk)")
        ordered = sorted(self.slots, key=lambda s: s.start)
        for a, b in zip(ordered, ordered[1:], strict=False):
            if b.start < a.end:
                raise InvalidInput("vehicle.slots", "slots of one vehicle must not overlap")


@dataclass(frozen=True, slots=True)
class DropPoint:
    """A fixed drop point of a village or community (物资存放点) with its receiving window."""

    id: str
    requester_id: str
    lat: float
    lon: float
    window_open: time = time(8, 0)
    window_close: time = time(18, 0)
    households: int = 0

    def __post_init__(self) -> None:
        _check_latlon(self.lat, self.lon, "drop_point")
        if self.window_close <= self.window_open:
            raise InvalidInput("drop_point.window_close", "must be after window_open")
        if self.households < 0:
            raise InvalidInput("drop_point.households", "must be >= 0")


def stop_key(requester_id: str, drop_point_id: str) -> str:
    """Drop point ids are unique only within their requester: trips key stops by both."""
    return f"{requester_id}/{drop_point_id}"


def split_stop_key(key: str, requester_id: str) -> str:
    return key[len(requester_id) + 1:] if key.startswith(requester_id + "/") else key


def _check_latlon(lat: float, lon: float, what: str) -> None:
    if not -90.0 <= lat <= 90.0:
        raise InvalidInput(f"{what}.lat", "must be within [-90, 90]")
    if not -180.0 <= lon <= 180.0:
        raise InvalidInput(f"{what}.lon", "must be within [-180, 180]")


def positive_int(value: object, field: str) -> int:
    """Quantities are ints in the catalogue unit; bool is not a quantity."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidInput(field, f"must be an integer > 0, got {value!r}")
    return value


def require_aware(at: datetime, field: str) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput(field, "must be a timezone-aware datetime")
    return at

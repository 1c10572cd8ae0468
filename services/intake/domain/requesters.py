"""Requesters: villages and communities (areas) and units (RULES.md §6).

Input is a mapping of field name → value (a parsed gRPC message or a spreadsheet row); the
field names are those of ``Requester`` in intake.proto so that an InvalidInput names the
field the caller sent (``drop_points[1].window.start``). A drop point's window may be given as
``window: {start, end}`` (proto) or as ``window_start`` / ``window_end``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.common.errors import InvalidInput

from . import rules
from .fields import (
    as_choice,
    as_float,
    as_id,
    as_int,
    as_local_time,
    as_text,
    get,
    is_blank,
    require_aware,
)
from .policy import DemandPolicy

MAX_NAME_CHARS = 100
MAX_POPULATION = 5_000_000
MAX_DROP_POINTS = 50
ANY_TIME = ("00:00", "23:59")  # a drop point without a receiving window


class RequesterKind(StrEnum):
    VILLAGE = "village"        # 村
    COMMUNITY = "community"    # 社区
    UNIT = "unit"              # 单位: hospital, school, nursing home, enterprise …

    @property
    def is_area(self) -> bool:
        return self is not RequesterKind.UNIT


class RiskLevel(StrEnum):
    SEALED = "sealed"            # 封控区 (high)
    CONTROLLED = "controlled"    # 管控区 (medium)
    PREVENTION = "prevention"    # 防范区 (low)


class UnitType(StrEnum):
    HOSPITAL = "hospital"
    FEVER_CLINIC = "fever_clinic"
    ISOLATION_SITE = "isolation_site"
    SCHOOL = "school"
    NURSING_HOME = "nursing_home"
    ENTERPRISE = "enterprise"


FRONTLINE_UNIT_TYPES = frozenset({UnitType.HOSPITAL, UnitType.FEVER_CLINIC, UnitType.ISOLATION_SITE})

KIND_ALIASES = {"村": RequesterKind.VILLAGE, "社区": RequesterKind.COMMUNITY,
                "居委会": RequesterKind.COMMUNITY, "单位": RequesterKind.UNIT}
RISK_ALIASES = {
    "high": RiskLevel.SEALED, "medium": RiskLevel.CONTROLLED, "low": RiskLevel.PREVENTION,
    "封控": RiskLevel.SEALED, "封控区": RiskLevel.SEALED, "高风险": RiskLevel.SEALED,
    "管控": RiskLevel.CONTROLLED, "管控区": RiskLevel.CONTROLLED, "中风险": RiskLevel.CONTROLLED,
    "防范": RiskLevel.PREVENTION, "防范区": RiskLevel.PREVENTION, "低风险": RiskLevel.PREVENTION,
}
UNIT_TYPE_ALIASES = {
    "医院": UnitType.HOSPITAL, "发热门诊": UnitType.FEVER_CLINIC, "隔离点": UnitType.ISOLATION_SITE,
    "学校": UnitType.SCHOOL, "敬老院": UnitType.NURSING_HOME, "养老院": UnitType.NURSING_HOME,
    "企业": UnitType.ENTERPRISE,
}


@dataclass(frozen=True)
class GeoPoint:
    lat: float
    lon: float


@dataclass(frozen=True)
class DropPoint:
    """A fixed delivery point (物资存放点) and its daily receiving window in local time,
    canonical "HH:MM" strings (00:00-23:59 when registered without one). Strings, not
    datetime.time, so that the aggregate stores as JSON as it is."""

    id: str
    name: str
    location: GeoPoint
    window_start: str
    window_end: str


@dataclass(frozen=True)
class VulnerableCounts:
    """Counts of vulnerable people in an area (鳏寡孤独, 行动困难, 重大慢性病, 婴幼儿, 孕产妇)."""

    elderly_alone: int = 0
    disabled: int = 0
    chronic_patients: int = 0
    infants: int = 0
    pregnant: int = 0


@dataclass(frozen=True)
class Requester:
    """A village, a community or a unit that asks for supplies.

    Area fields (population, households, risk_level, vulnerable) are set for villages and
    communities and None for units; unit fields (unit_type, headcount, beds) the reverse.
    `version` starts at 1 and grows by one with every update that changes something.
    """

    id: str
    kind: RequesterKind
    name: str
    township: str
    location: GeoPoint
    drop_points: tuple[DropPoint, ...] = ()
    population: int | None = None
    households: int | None = None
    risk_level: RiskLevel | None = None
    vulnerable: VulnerableCounts | None = None
    unit_type: UnitType | None = None
    headcount: int | None = None
    beds: int | None = None
    version: int = 1
    registered_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def is_area(self) -> bool:
        return self.kind.is_area

    @property
    def is_frontline(self) -> bool:
        return self.unit_type in FRONTLINE_UNIT_TYPES

    def norm_basis(self, policy: DemandPolicy) -> int:
        """People the per-capita norm is multiplied by: population, or headcount (+ beds)."""
        if self.is_area:
            return self.population or 0
        beds = (self.beds or 0) if policy.unit_basis_includes_beds else 0
        return (self.headcount or 0) + beds

    def delivery_points(self) -> tuple[DropPoint, ...]:
        """Where deliveries go: the drop points, else one point at the requester's location."""
        if self.drop_points:
            return self.drop_points
        return (DropPoint(f"{self.id}:main", self.name, self.location, *ANY_TIME),)


AREA_FIELDS = ("population", "households", "risk_level", "vulnerable")
UNIT_FIELDS = ("unit_type", "headcount", "beds")
COMMON_FIELDS = ("id", "kind", "name", "township", "location", "drop_points")
SPEC_FIELDS = COMMON_FIELDS + AREA_FIELDS + UNIT_FIELDS
VULNERABLE_FIELDS = tuple(f.name for f in fields(VulnerableCounts))


def _geo(value: Any, field: str) -> GeoPoint:
    if value is None:
        raise InvalidInput(field, "is required (lat, lon)")
    return GeoPoint(
        lat=as_float(get(value, "lat"), f"{field}.lat", min_value=-90, max_value=90),
        lon=as_float(get(value, "lon"), f"{field}.lon", min_value=-180, max_value=180),
    )


def _drop_points(value: Any, field: str = "drop_points") -> tuple[DropPoint, ...]:
    items = list(value or ())
    if len(items) > MAX_DROP_POINTS:
        raise InvalidInput(field, f"at most {MAX_DROP_POINTS} drop points, got {len(items)}")
    out: list[DropPoint] = []
    seen: dict[str, int] = {}
    for i, dp in enumerate(items):
        f = f"{field}[{i}]"
        dp_id = as_id(get(dp, "id"), f"{f}.id")
        if dp_id in seen:
            raise InvalidInput(f"{f}.id", f"duplicate of {field}[{seen[dp_id]}].id ({dp_id})")
        seen[dp_id] = i
        window = get(dp, "window")
        start = get(dp, "window_start", get(window, "start"))
        end = get(dp, "window_end", get(window, "end"))
        if is_blank(start) and is_blank(end):
            start, end = ANY_TIME
        ws = as_local_time(start, f"{f}.window.start")
        we = as_local_time(end, f"{f}.window.end")
        if not ws < we:
            raise InvalidInput(f"{f}.window.end", f"must be later than the start ({ws:%H:%M})")
        out.append(DropPoint(
            id=dp_id, name=as_text(get(dp, "name"), f"{f}.name", max_len=MAX_NAME_CHARS),
            location=_geo(get(dp, "location"), f"{f}.location"),
            window_start=f"{ws:%H:%M}", window_end=f"{we:%H:%M}",
        ))
    return tuple(out)


def _vulnerable(value: Any, population: int) -> VulnerableCounts:
    if value is None:
        return VulnerableCounts()
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(VULNERABLE_FIELDS))
        if unknown:
            raise InvalidInput(f"vulnerable.{unknown[0]}", "unknown field")
    counts = {}
    for name in VULNERABLE_FIELDS:
        raw = get(value, name)
        counts[name] = 0 if is_blank(raw) else as_int(
            raw, f"vulnerable.{name}", min_value=0, max_value=population)
    return VulnerableCounts(**counts)


def _unit_type_or_none(value: Any) -> UnitType | None:
    if isinstance(value, UnitType):
        return value
    if isinstance(value, str):
        key = value.strip().lower()
        return next((u for u in UnitType if u.value == key), None) or UNIT_TYPE_ALIASES.get(key)
    return None


def parse_requester(data: Mapping[str, Any]) -> Requester:
    """Validate a full requester spec; returns a Requester (version 1, no timestamps).

    `kind` may also be a unit type ("hospital", "敬老院" …), meaning kind unit of that type.
    """
    unknown = sorted(set(data) - set(SPEC_FIELDS))
    if unknown:
        raise InvalidInput(unknown[0], "unknown field")
    raw_kind = data.get("kind")
    unit_type_as_kind = _unit_type_or_none(raw_kind)
    if unit_type_as_kind is not None:
        # "hospital" as a kind (as spreadsheets write it) means kind unit of that unit type
        if not is_blank(data.get("unit_type")) and as_choice(
                data["unit_type"], "unit_type", UnitType, UNIT_TYPE_ALIASES) is not unit_type_as_kind:
            raise InvalidInput("unit_type", f"contradicts kind {raw_kind!r}")
        data = {**data, "kind": RequesterKind.UNIT, "unit_type": unit_type_as_kind}
    kind = as_choice(data.get("kind"), "kind", RequesterKind, KIND_ALIASES)
    req = Requester(
        id=as_id(data.get("id"), "id"),
        kind=kind,
        name=as_text(data.get("name"), "name", max_len=MAX_NAME_CHARS),
        township=as_text(data.get("township"), "township", max_len=MAX_NAME_CHARS),
        location=_geo(data.get("location"), "location"),
        drop_points=_drop_points(data.get("drop_points")),
    )
    if kind.is_area:
        for f in UNIT_FIELDS:
            if not is_blank(data.get(f)):
                raise InvalidInput(f, f"only for units, not for a {kind.value}")
        population = as_int(data.get("population"), "population", min_value=1,
                            max_value=MAX_POPULATION)
        households = as_int(data.get("households"), "households", min_value=1,
                            max_value=population)
        return replace(
            req, population=population, households=households,
            risk_level=as_choice(data.get("risk_level"), "risk_level", RiskLevel, RISK_ALIASES),
            vulnerable=_vulnerable(data.get("vulnerable"), population),
        )
    for f in AREA_FIELDS:
        value = data.get(f)
        if f == "vulnerable" and value is not None:
            present = _vulnerable(value, MAX_POPULATION) != VulnerableCounts()
        else:
            present = not is_blank(value)
        if present:
            raise InvalidInput(f, "only for villages and communities, not for a unit")
    beds = data.get("beds")
    return replace(
        req,
        unit_type=as_choice(data.get("unit_type"), "unit_type", UnitType, UNIT_TYPE_ALIASES),
        headcount=as_int(data.get("headcount"), "headcount", min_value=1, max_value=MAX_POPULATION),
        beds=0 if is_blank(beds) else as_int(beds, "beds", min_value=0, max_value=MAX_POPULATION),
    )


def register_requester(data: Mapping[str, Any], at: datetime) -> Requester:
    """Validate and create a requester registered at `at`."""
    require_aware(at)
    return replace(parse_requester(data), version=1, registered_at=at, updated_at=at)


def requester_spec(r: Requester) -> dict[str, Any]:
    """The requester as a spec mapping (the inverse of parse_requester)."""
    spec: dict[str, Any] = {f: getattr(r, f) for f in COMMON_FIELDS}
    spec.update({f: getattr(r, f) for f in (AREA_FIELDS if r.is_area else UNIT_FIELDS)})
    return spec


def update_requester(current: Requester, changes: Mapping[str, Any], at: datetime,
                     expected_version: int | None = None) -> Requester:
    """Apply `changes` (only the fields to change) and re-validate the whole requester.

    A changed list or group (drop_points, vulnerable, location) replaces the old one whole.

    `id` and `kind` cannot change (InvalidInput); register a new requester instead.
    `expected_version`, when given, must equal the current version (RuleRefused
    VERSION_MISMATCH otherwise). An update that changes nothing returns `current` unchanged.
    """
    require_aware(at)
    if expected_version is not None and expected_version != current.version:
        raise rules.refuse(rules.VERSION_MISMATCH,
                           f"村居/单位{current.id}已更新为第{current.version}版, 请刷新后再改",
                           f"requester {current.id} is at version {current.version}, not "
                           f"{expected_version}; reload and retry")
    immutable = "cannot be changed; register a new requester instead"
    if not is_blank(changes.get("id")) and changes["id"] != current.id:
        raise InvalidInput("id", immutable)
    if not is_blank(changes.get("kind")):
        as_unit = _unit_type_or_none(changes["kind"])
        kind = RequesterKind.UNIT if as_unit else as_choice(
            changes["kind"], "kind", RequesterKind, KIND_ALIASES)
        if kind is not current.kind:
            raise InvalidInput("kind", immutable)
        if as_unit and "unit_type" not in changes:
            changes = {**changes, "unit_type": as_unit}
    spec = requester_spec(current)
    spec.update({k: v for k, v in changes.items() if k not in ("id", "kind")})
    new = parse_requester(spec)
    if not changed_fields(current, new):
        return current
    return replace(new, version=current.version + 1, registered_at=current.registered_at,
                   updated_at=at)


def changed_fields(old: Requester, new: Requester) -> tuple[str, ...]:
    """Spec fields whose value differs between two versions of a requester."""
    return tuple(f for f in SPEC_FIELDS if getattr(old, f) != getattr(new, f))

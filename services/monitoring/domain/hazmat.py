"""Hazardous-goods segregation audit and storage condition checks (RULES.md §9).

Violations: incompatible hazards in one zone (flammable with oxidizer, acid with oxidizer), and a
hazmat item in a zone whose storage class is not the item's catalogue storage class (or one of
the classes configured for its hazard). Storage conditions reuse the alarm evaluator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.common.catalogue import INCOMPATIBLE_HAZARDS, Catalogue, StorageClass
from services.monitoring.domain.alarms import AlarmPolicy, AlarmTransition, evaluate_history
from services.monitoring.domain.readings import Reading

HAZARD_ZH = {"flammable": "易燃品", "oxidizer": "氧化剂", "acid": "酸"}


@dataclass(frozen=True)
class SegregationPolicy:
    incompatible: tuple[tuple[str, str], ...] = INCOMPATIBLE_HAZARDS
    # hazard → storage classes allowed; a hazard not listed must be in its item's catalogue class
    hazard_classes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ZoneContents:
    depot: str
    zone: str
    storage_class: str
    lots: tuple[tuple[str, str], ...]  # (lot_id, item_code)

    @property
    def zone_key(self) -> str:
        return f"{self.depot}/{self.zone}"


@dataclass(frozen=True)
class SegregationViolation:
    """code: SEG_<A>_WITH_<B> or SEG_WRONG_CLASS."""

    code: str
    depot: str
    zone: str
    lot_ids: tuple[str, ...]
    item_codes: tuple[str, ...]
    text_zh: str
    text_en: str

    @property
    def zone_key(self) -> str:
        return f"{self.depot}/{self.zone}"


def audit_zone(zone: ZoneContents, catalogue: Catalogue,
               policy: SegregationPolicy = SegregationPolicy()) -> list[SegregationViolation]:
    out: list[SegregationViolation] = []
    by_hazard: dict[str, list[tuple[str, str]]] = {}
    for lot_id, item_code in zone.lots:
        item = catalogue.item(item_code)
        if item.hazard is None:
            continue
        by_hazard.setdefault(item.hazard, []).append((lot_id, item_code))
        allowed = policy.hazard_classes.get(item.hazard, (item.storage_class,))
        if zone.storage_class not in allowed:
            out.append(SegregationViolation(
                code="SEG_WRONG_CLASS", depot=zone.depot, zone=zone.zone,
                lot_ids=(lot_id,), item_codes=(item_code,),
                text_zh=(f"{HAZARD_ZH.get(item.hazard, item.hazard)} {item.name_zh}(批次 {lot_id})"
                         f"存放在 {zone.zone_key}({zone.storage_class}),应存放在 {'/'.join(allowed)}"),
                text_en=(f"{item.hazard} {item.name_en} (lot {lot_id}) is stored in {zone.zone_key} "
                         f"({zone.storage_class}); it belongs in {'/'.join(allowed)}"),
            ))
    for a, b in policy.incompatible:
        if a in by_hazard and b in by_hazard:
            lots = by_hazard[a] + by_hazard[b]
            out.append(SegregationViolation(
                code=f"SEG_{a.upper()}_WITH_{b.upper()}", depot=zone.depot, zone=zone.zone,
                lot_ids=tuple(lot for lot, _ in lots),
                item_codes=tuple(sorted({code for _, code in lots})),
                text_zh=f"{zone.zone_key} 内{HAZARD_ZH.get(a, a)}与{HAZARD_ZH.get(b, b)}混存",
                text_en=f"{a} and {b} goods stored together in {zone.zone_key}",
            ))
    return out


def audit_segregation(zones: Iterable[ZoneContents], catalogue: Catalogue,
                      policy: SegregationPolicy = SegregationPolicy()) -> list[SegregationViolation]:
    out: list[SegregationViolation] = []
    for z in zones:
        out.extend(audit_zone(z, catalogue, policy))
    return out


def violations_if_added(zone: ZoneContents, lot_id: str, item_code: str, catalogue: Catalogue,
                        policy: SegregationPolicy = SegregationPolicy()) -> list[SegregationViolation]:
    """The violations that putting a lot into a zone would involve it in (a put-away pre-check)."""
    after = ZoneContents(zone.depot, zone.zone, zone.storage_class, zone.lots + ((lot_id, item_code),))
    return [v for v in audit_zone(after, catalogue, policy) if lot_id in v.lot_ids]


def check_storage_conditions(depot: str, zone: str, storage_class: StorageClass,
                             readings: Iterable[Reading],
                             policy: AlarmPolicy | None = None) -> list[AlarmTransition]:
    """Replay a zone's readings against its class's rules (the alarm evaluator, not a copy)."""
    return evaluate_history(depot, zone, storage_class, readings, policy or AlarmPolicy())


def open_conditions(transitions: Iterable[AlarmTransition]) -> dict[str, AlarmTransition]:
    """rule code → last transition of the rules still open at the end of a replay."""
    last: dict[str, AlarmTransition] = {}
    for t in transitions:
        last[t.rule_code] = t
    return {code: t for code, t in last.items() if t.state != "cleared"}

"""Alerts: what operators see and acknowledge, and what `alert_raised` / `alert_cleared` carry.

One open alert per key: kind + depot + zone + rule code (+ subject: a sensor, a lot, an item
group, a product at a market). A finding whose key has an open alert updates it instead of
opening another one. `alert_id` is derived from the key and the opening instant, so replaying
the same finding (at-least-once delivery) yields the same id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from services.common.catalogue import Catalogue
from services.common.errors import InvalidInput, RuleRefused
from services.monitoring.domain.alarms import CLEARED, AlarmTransition
from services.monitoring.domain.hazmat import SegregationViolation
from services.monitoring.domain.offline import OFFLINE, SensorTransition
from services.monitoring.domain.prices import PriceRise
from services.monitoring.domain.spoilage import SpoilageFinding

KINDS = ("alarm", "sensor_offline", "spoilage", "mkt", "segregation", "reserve_below_floor",
         "near_expiry", "price_rise", "unregistered_sensor", "deadline_missed")
SEVERITIES = ("info", "warning", "critical")
ALERT_NAMESPACE = uuid.UUID("6f1c2b1e-5d0a-4e53-9a57-2f0f3c9a7a01")

OPENED, UPDATED, ACKNOWLEDGED = "opened", "updated", "acknowledged"


@dataclass(frozen=True)
class AlertPolicy:
    severity: Mapping[str, str] = field(default_factory=lambda: {
        "alarm": "warning", "sensor_offline": "warning", "spoilage": "critical", "mkt": "critical",
        "segregation": "critical", "reserve_below_floor": "warning", "near_expiry": "info",
        "price_rise": "warning", "unregistered_sensor": "warning", "deadline_missed": "warning",
    })
    spoilage_alarm_severity: str = "critical"  # alarm rules flagged spoilage: true
    fresh_groups: tuple[str, ...] = ("pork", "vegetables", "eggs", "dairy")
    fresh_expiry_window_days: int = 3
    default_expiry_window_days: int = 30
    expiry_window_days: Mapping[str, int] = field(default_factory=dict)  # per group override

    def expiry_window(self, group: str) -> int:
        if group in self.expiry_window_days:
            return self.expiry_window_days[group]
        return self.fresh_expiry_window_days if group in self.fresh_groups else self.default_expiry_window_days


def alert_key(kind: str, depot: str | None, zone: str | None, rule_code: str,
              subject: str | None = None) -> str:
    parts = [kind, depot or "-", zone or "-", rule_code]
    if subject:
        parts.append(subject)
    return "|".join(parts)


def _json_safe(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, Mapping):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple | set | frozenset):
        return [_json_safe(x) for x in v]
    return v


@dataclass(frozen=True)
class AlertCandidate:
    """A finding in alert form, before it is matched to an open alert."""

    kind: str
    severity: str
    depot: str | None
    zone: str | None
    rule_code: str
    title_zh: str
    title_en: str
    evidence: Mapping[str, Any]
    subject: str | None = None
    lot_ids: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise InvalidInput("kind", f"unknown alert kind {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise InvalidInput("severity", f"unknown severity {self.severity!r}")

    @property
    def key(self) -> str:
        return alert_key(self.kind, self.depot, self.zone, self.rule_code, self.subject)


@dataclass(frozen=True)
class AlertHistoryEntry:
    action: str  # opened | updated | acknowledged | cleared
    at: datetime
    by: str | None = None
    note: str | None = None
    evidence: Mapping[str, Any] | None = None


@dataclass
class Alert:
    alert_id: str
    key: str
    kind: str
    severity: str
    depot: str | None
    zone: str | None
    rule_code: str
    subject: str | None
    opened_at: datetime
    title_zh: str
    title_en: str
    evidence: dict[str, Any]
    lot_ids: list[str] = field(default_factory=list)
    # The transitions this object has seen: all of them when read for display; a store keeps each
    # as a row of its own, so an update neither reads nor rewrites the ones before it.
    history: list[AlertHistoryEntry] = field(default_factory=list)
    updated_at: datetime | None = None  # the last transition; None only in rows stored before it was kept
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_note: str | None = None
    cleared_at: datetime | None = None

    @classmethod
    def open(cls, c: AlertCandidate, at: datetime) -> Alert:
        key = c.key
        alert = cls(
            alert_id=str(uuid.uuid5(ALERT_NAMESPACE, f"{key}@{at.isoformat()}")), key=key,
            kind=c.kind, severity=c.severity, depot=c.depot, zone=c.zone, rule_code=c.rule_code,
            subject=c.subject, opened_at=at, title_zh=c.title_zh, title_en=c.title_en,
            evidence=dict(c.evidence), lot_ids=list(c.lot_ids),
        )
        alert._record(AlertHistoryEntry(OPENED, at, evidence=dict(c.evidence)))
        return alert

    def _record(self, entry: AlertHistoryEntry) -> None:
        self.history.append(entry)
        self.updated_at = entry.at

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None

    @property
    def state(self) -> str:
        if self.cleared_at is not None:
            return CLEARED
        return ACKNOWLEDGED if self.acknowledged_at is not None else OPENED

    def update(self, c: AlertCandidate, at: datetime) -> None:
        """New evidence for the same open alert; severity only ever rises."""
        if not self.is_open:
            raise RuleRefused("ALERT_CLEARED", f"alert {self.alert_id} is cleared; open a new one")
        if c.key != self.key:
            raise InvalidInput("key", f"candidate {c.key!r} is not alert {self.key!r}")
        if SEVERITIES.index(c.severity) > SEVERITIES.index(self.severity):
            self.severity = c.severity
        self.evidence = dict(c.evidence)
        for lot in c.lot_ids:
            if lot not in self.lot_ids:
                self.lot_ids.append(lot)
        self._record(AlertHistoryEntry(UPDATED, at, evidence=dict(c.evidence)))

    def acknowledge(self, by: str, at: datetime, note: str = "") -> None:
        if not by or not by.strip():
            raise InvalidInput("by", "who acknowledges must be given")
        if self.acknowledged_at is not None:
            raise RuleRefused("ALERT_ALREADY_ACKNOWLEDGED",
                              f"alert {self.alert_id} was acknowledged by {self.acknowledged_by} "
                              f"at {self.acknowledged_at.isoformat()}")
        self.acknowledged_by, self.acknowledged_at, self.acknowledged_note = by, at, note
        self._record(AlertHistoryEntry(ACKNOWLEDGED, at, by=by, note=note))

    def clear(self, at: datetime, evidence: Mapping[str, Any] | None = None) -> bool:
        """Clear; False (no change) when already cleared, so a repeated clear is harmless."""
        if not self.is_open:
            return False
        self.cleared_at = at
        if evidence is not None:
            self.evidence = dict(evidence)
        self._record(AlertHistoryEntry(CLEARED, at, evidence=None if evidence is None else dict(evidence)))
        return True

    @property
    def event_type(self) -> str:
        return "alert_raised" if self.is_open else "alert_cleared"

    def to_event_payload(self) -> dict[str, Any]:
        payload = {
            "alert_id": self.alert_id, "kind": self.kind, "severity": self.severity,
            "depot": self.depot, "zone": self.zone, "rule_code": self.rule_code,
            "opened_at": self.opened_at.isoformat(), "evidence": _json_safe(self.evidence),
            "lot_ids": list(self.lot_ids), "title_zh": self.title_zh, "title_en": self.title_en,
        }
        if self.cleared_at is not None:
            payload["cleared_at"] = self.cleared_at.isoformat()
        return payload


class AlertBook:
    """Open alerts by key: the de-duplication rule in one place (handlers load and save it)."""

    def __init__(self, alerts: Iterable[Alert] = ()):
        self._open: dict[str, Alert] = {a.key: a for a in alerts if a.is_open}

    def get(self, key: str) -> Alert | None:
        return self._open.get(key)

    def open_alerts(self) -> list[Alert]:
        return list(self._open.values())

    def raise_(self, c: AlertCandidate, at: datetime) -> tuple[Alert, str]:
        """Open a new alert or update the open one with the same key; returns it and the action."""
        existing = self._open.get(c.key)
        if existing is not None:
            existing.update(c, at)
            return existing, UPDATED
        alert = Alert.open(c, at)
        self._open[alert.key] = alert
        return alert, OPENED

    def clear(self, key: str, at: datetime, evidence: Mapping[str, Any] | None = None) -> Alert | None:
        alert = self._open.pop(key, None)
        if alert is not None:
            alert.clear(at, evidence)
        return alert

    def apply_alarm(self, t: AlarmTransition, policy: AlertPolicy = AlertPolicy()) -> tuple[Alert | None, str]:
        c = from_alarm(t, policy)
        if t.state == CLEARED:
            return self.clear(c.key, t.at, c.evidence), CLEARED
        return self.raise_(c, t.at)

    def apply_offline(self, t: SensorTransition, policy: AlertPolicy = AlertPolicy()) -> tuple[Alert | None, str]:
        c = from_offline(t, policy)
        if t.state == OFFLINE:
            return self.raise_(c, t.at)
        return self.clear(c.key, t.at, c.evidence), CLEARED


# --- findings → candidates

def from_alarm(t: AlarmTransition, policy: AlertPolicy = AlertPolicy()) -> AlertCandidate:
    severity = policy.spoilage_alarm_severity if t.spoilage else policy.severity["alarm"]
    evidence = {**t.evidence.to_dict(), "sensor": t.sensor, "value": t.value, "at": t.at.isoformat(),
                "kind": t.kind, "spoilage": t.spoilage}
    return AlertCandidate(kind="alarm", severity=severity, depot=t.depot, zone=t.zone,
                          rule_code=t.rule_code, title_zh=f"{t.zone_key}: {t.name_zh}",
                          title_en=f"{t.zone_key}: {t.name_en}", evidence=evidence)


def from_offline(t: SensorTransition, policy: AlertPolicy = AlertPolicy()) -> AlertCandidate:
    return AlertCandidate(
        kind="sensor_offline", severity=policy.severity["sensor_offline"], depot=t.depot, zone=t.zone,
        rule_code="SENSOR_OFFLINE", subject=t.sensor,
        title_zh=f"传感器离线: {t.sensor_key}", title_en=f"sensor offline: {t.sensor_key}",
        evidence={"sensor": t.sensor, "reason": t.reason, "at": t.at.isoformat(),
                  "last_seen": t.last_seen.isoformat() if t.last_seen else None},
    )


def unregistered_sensor(depot: str, zone: str, sensors: Iterable[str], *,
                        registered_under: str | None = None,
                        policy: AlertPolicy = AlertPolicy()) -> AlertCandidate:
    """Readings for a zone nobody registered (held until it is), or for a zone registered under
    another depot (`registered_under`: refused). One alert per (depot, zone)."""
    if registered_under:
        zh = f"未登记传感器: 库区 {zone} 登记在库点 {registered_under},{depot} 的数据已拒收"
        en = (f"unregistered sensor: zone {zone} is registered under depot {registered_under}; "
              f"readings from {depot} refused")
    else:
        zh = f"未登记传感器: 库区 {depot}/{zone} 未登记,数据暂存待判定"
        en = f"unregistered sensor: zone {depot}/{zone} is not registered; readings held until it is"
    return AlertCandidate(
        kind="unregistered_sensor", severity=policy.severity["unregistered_sensor"], depot=depot,
        zone=zone, rule_code="UNREGISTERED_SENSOR", title_zh=zh, title_en=en,
        evidence={"sensors": sorted(set(sensors)), "registered_under": registered_under,
                  "held": not registered_under},
    )


def alert_is_spoilage(a: Alert) -> bool:
    """Lots must be quarantined: spoilage or MKT findings, and alarms of rules with spoilage: true."""
    return a.kind in ("spoilage", "mkt") or (a.kind == "alarm" and bool(a.evidence.get("spoilage")))


UNREGISTERED_CAP_CODE = "UNREGISTERED_SENSOR_CAP"


def unregistered_zones_to_alert(zones: Iterable[str], open_zones: Iterable[str], cap: int
                                ) -> tuple[list[str], list[str]]:
    """A depot's unregistered_sensor alerts are capped (a gateway publishing made-up zone ids
    would otherwise raise one each): of `zones` without an open alert, the first ones up to
    `cap` open alerts in all get one, the rest (returned second) are only counted."""
    open_ = set(open_zones)
    room = max(0, cap - len(open_))
    new = sorted(set(zones) - open_)
    return new[:room], new[room:]


def unregistered_cap_reached(depot: str, cap: int, zones: Sequence[str],
                             policy: AlertPolicy = AlertPolicy()) -> AlertCandidate:
    """One alert per depot saying its unregistered_sensor alerts hit the cap; `zones`: the first
    zones left without their own alert."""
    return AlertCandidate(
        kind="unregistered_sensor", severity=policy.severity["unregistered_sensor"], depot=depot,
        zone=None, rule_code=UNREGISTERED_CAP_CODE,
        title_zh=f"未登记传感器过多: 库点 {depot} 已有 {cap} 个库区告警, 其余仅计数",
        title_en=f"too many unregistered sensors: depot {depot} has {cap} zone alerts open; "
                 f"further zones are only counted",
        evidence={"cap": cap, "zones_not_alerted": list(zones)[:20]},
    )


def from_spoilage(f: SpoilageFinding, policy: AlertPolicy = AlertPolicy()) -> AlertCandidate:
    depot, _, zone = (f.zone_key or "").partition("/")
    return AlertCandidate(
        kind=f.kind, severity=policy.severity[f.kind], depot=depot or None, zone=zone or None,
        rule_code="SPOILAGE_RRS" if f.kind == "spoilage" else "MKT_LIMIT", subject=f.lot_id,
        title_zh=f.text_zh, title_en=f.text_en, evidence=f.evidence(), lot_ids=(f.lot_id,),
    )


def from_segregation(v: SegregationViolation, policy: AlertPolicy = AlertPolicy()) -> AlertCandidate:
    return AlertCandidate(
        kind="segregation", severity=policy.severity["segregation"], depot=v.depot, zone=v.zone,
        rule_code=v.code, title_zh=v.text_zh, title_en=v.text_en,
        evidence={"item_codes": list(v.item_codes)}, lot_ids=v.lot_ids,
    )


def from_price_rise(r: PriceRise, policy: AlertPolicy = AlertPolicy()) -> AlertCandidate:
    return AlertCandidate(
        kind="price_rise", severity=policy.severity["price_rise"], depot=None, zone=None,
        rule_code="PRICE_RISE", subject=f"{r.product}@{r.market}",
        title_zh=r.text_zh, title_en=r.text_en, evidence=r.evidence(),
    )


DEADLINE_KINDS = {  # the reports process's deadline_missed kinds → (rule code, 中文, English)
    "plan_not_approved": ("PLAN_NOT_APPROVED", "方案未按时审批", "plan not approved in time"),
    "trips_not_dispatched": ("TRIPS_NOT_DISPATCHED", "车次未按时发车", "trips not dispatched in time"),
}


def deadline_missed(kind: str, day: str, due_at: str, count: int, what_zh: str, what_en: str,
                    policy: AlertPolicy = AlertPolicy()) -> AlertCandidate:
    """A county deadline missed (reports' deadline_missed): one alert per kind and delivery day."""
    if kind not in DEADLINE_KINDS:
        raise InvalidInput("payload.kind", f"unknown deadline kind {kind!r}; one of {', '.join(DEADLINE_KINDS)}")
    rule, zh, en = DEADLINE_KINDS[kind]
    return AlertCandidate(
        kind="deadline_missed", severity=policy.severity["deadline_missed"], depot=None, zone=None,
        rule_code=rule, subject=day,
        title_zh=f"逾期: {zh} ({day}, 应于 {due_at} 前): {what_zh}"[:300],
        title_en=f"late: {en} ({day}, due {due_at}): {what_en}"[:300],
        evidence={"day": day, "due_at": due_at, "count": count},
    )


def reserve_below_floor(depot: str | None, group_code: str, catalogue: Catalogue,
                        days_of_supply: float, floor_days: float,
                        policy: AlertPolicy = AlertPolicy()) -> AlertCandidate:
    """Reserve of an item group below its floor (RULES.md §4); days come from logistics."""
    g = catalogue.groups[group_code]
    where = depot or "全县"
    where_en = depot or "county"
    return AlertCandidate(
        kind="reserve_below_floor", severity=policy.severity["reserve_below_floor"], depot=depot,
        zone=None, rule_code="RESERVE_FLOOR", subject=group_code,
        title_zh=f"{where} {g.name_zh}储备 {days_of_supply:.1f} 天,低于底线 {floor_days:g} 天",
        title_en=f"{where_en} {g.name_en} reserve {days_of_supply:.1f} days, below the floor of {floor_days:g} days",
        evidence={"group": group_code, "days_of_supply": round(days_of_supply, 2), "floor_days": floor_days},
    )


# --- near expiry

@dataclass(frozen=True)
class LotExpiry:
    lot_id: str
    item_code: str
    depot: str
    zone: str
    expires_on: date


@dataclass(frozen=True)
class NearExpiryFinding:
    lot_id: str
    item_code: str
    depot: str
    zone: str
    expires_on: date
    days_left: int
    window_days: int
    name_zh: str
    name_en: str

    @property
    def expired(self) -> bool:
        return self.days_left < 0


def near_expiry(lots: Iterable[LotExpiry], today: date, catalogue: Catalogue,
                policy: AlertPolicy = AlertPolicy()) -> list[NearExpiryFinding]:
    """Lots expiring within their group's warning window (expired ones included, days_left < 0)."""
    out = []
    for lot in lots:
        item = catalogue.item(lot.item_code)
        window = policy.expiry_window(item.group)
        days_left = (lot.expires_on - today).days
        if days_left <= window:
            out.append(NearExpiryFinding(lot.lot_id, lot.item_code, lot.depot, lot.zone, lot.expires_on,
                                         days_left, window, item.name_zh, item.name_en))
    return out


def from_near_expiry(f: NearExpiryFinding, policy: AlertPolicy = AlertPolicy()) -> AlertCandidate:
    if f.expired:
        zh = f"批次 {f.lot_id}({f.name_zh})已于 {f.expires_on.isoformat()} 过期"
        en = f"lot {f.lot_id} ({f.name_en}) expired on {f.expires_on.isoformat()}"
    else:
        zh = f"批次 {f.lot_id}({f.name_zh})将于 {f.expires_on.isoformat()} 到期,剩余 {f.days_left} 天"
        en = f"lot {f.lot_id} ({f.name_en}) expires on {f.expires_on.isoformat()}, {f.days_left} days left"
    return AlertCandidate(
        kind="near_expiry", severity=policy.severity["near_expiry"], depot=f.depot, zone=f.zone,
        rule_code="NEAR_EXPIRY", subject=f.lot_id, title_zh=zh, title_en=en,
        evidence={"item_code": f.item_code, "expires_on": f.expires_on.isoformat(),
                  "days_left": f.days_left, "window_days": f.window_days},
        lot_ids=(f.lot_id,),
    )

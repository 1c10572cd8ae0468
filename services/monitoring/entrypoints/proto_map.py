"""Domain objects and stored payloads → supply.v1 monitoring messages, and request enums → the
domain's words. Translation only."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.json_format import ParseDict
from supply.v1 import monitoring_pb2 as pb

from services.common.proto_time import timestamp as ts
from services.monitoring.adapters import alert_store
from services.monitoring.adapters.dead_letters import DeadLetter
from services.monitoring.adapters.influx_query import HistoryPoint
from services.monitoring.domain import alerts as al
from services.monitoring.handlers import prices, queries

KIND = {k: pb.AlertKind.Value(f"ALERT_KIND_{k.upper()}") for k in al.KINDS}
KIND_NAME = {v: k for k, v in KIND.items()}
SEVERITY = {s: pb.Severity.Value(f"SEVERITY_{s.upper()}") for s in al.SEVERITIES}
SEVERITY_NAME = {v: k for k, v in SEVERITY.items()}
STATE = {"opened": pb.ALERT_STATE_OPEN, "acknowledged": pb.ALERT_STATE_ACKNOWLEDGED,
         "cleared": pb.ALERT_STATE_CLEARED}
STATE_NAME = {v: k for k, v in STATE.items()}
ACTION = {"opened": pb.ALERT_ACTION_OPENED, "updated": pb.ALERT_ACTION_UPDATED,
          "acknowledged": pb.ALERT_ACTION_ACKNOWLEDGED, "cleared": pb.ALERT_ACTION_CLEARED}


def struct(data: Mapping[str, Any] | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if data:
        ParseDict(_plain(data), s)
    return s


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple | set | frozenset):
        return [_plain(x) for x in v]
    if isinstance(v, datetime):
        return v.isoformat()
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def alert(a: al.Alert, *, with_history: bool = True) -> pb.Alert:
    m = pb.Alert(
        alert_id=a.alert_id, kind=KIND.get(a.kind, 0), severity=SEVERITY.get(a.severity, 0),
        state=STATE[a.state], depot=a.depot or "", zone=a.zone or "", rule_code=a.rule_code,
        subject=a.subject or "", title_zh=a.title_zh, title_en=a.title_en,
        opened_at=ts(a.opened_at), updated_at=ts(a.updated_at or a.opened_at), cleared_at=ts(a.cleared_at),
        acknowledged_by=a.acknowledged_by or "", acknowledged_at=ts(a.acknowledged_at),
        acknowledged_note=a.acknowledged_note or "", evidence=struct(a.evidence),
        lot_ids=list(a.lot_ids), spoilage=al.alert_is_spoilage(a),
    )
    if with_history:
        m.history.extend(pb.AlertHistoryEntry(
            action=ACTION[e.action], at=ts(e.at), by=e.by or "", note=e.note or "",
            evidence=struct(e.evidence)) for e in a.history)
    return m


def alert_from_payload(p: Mapping[str, Any]) -> pb.Alert:
    """The alert snapshot an event payload (alert history row) carries."""
    return pb.Alert(
        alert_id=p.get("alert_id", ""), kind=KIND.get(p.get("kind"), 0),
        severity=SEVERITY.get(p.get("severity"), 0), state=STATE.get(p.get("state"), 0),
        depot=p.get("depot") or "", zone=p.get("zone") or "", rule_code=p.get("rule_code", ""),
        subject=p.get("subject") or "", title_zh=p.get("title_zh", ""), title_en=p.get("title_en", ""),
        opened_at=ts(p.get("opened_at")), updated_at=ts(p.get("at")), cleared_at=ts(p.get("cleared_at")),
        acknowledged_by=p.get("acknowledged_by") or "", evidence=struct(p.get("evidence")),
        lot_ids=list(p.get("lot_ids") or ()), spoilage=bool(p.get("spoilage")),
    )


def transition(row: alert_store.HistoryRow) -> pb.AlertTransition:
    return pb.AlertTransition(cursor=row.id, action=ACTION[row.action], at=ts(row.at), by=row.by or "",
                              note=row.note or "", alert=alert_from_payload(row.payload))


def zone_status(z: queries.ZoneStatus, sc) -> pb.ZoneStatus:
    m = pb.ZoneStatus(
        depot=z.depot, zone=z.zone, storage_class=z.storage_class or "",
        storage_class_name_zh=sc.name_zh if sc else "", storage_class_name_en=sc.name_en if sc else "",
        registered_by=z.source or "", as_of=ts(z.at),
        open_alerts=[alert(a, with_history=False) for a in z.open_alerts],
    )
    for s in z.sensors:
        sm = pb.ZoneSensor(sensor=s.sensor, gateway=s.gateway or "", last_reading_at=ts(s.last_ts),
                           last_seq=s.last_seq or 0, offline=s.offline, reported_status=s.status or "")
        if s.last_temp_c is not None:
            sm.temp_c = s.last_temp_c
        if s.last_rh is not None:
            sm.rh = s.last_rh
        m.sensors.append(sm)
    for lot in z.lots:
        lm = pb.ZoneLot(lot_id=lot.lot_id, item_code=lot.item_code, on_hand=lot.on_hand,
                        status=lot.status, expiry=lot.expiry.isoformat() if lot.expiry else "",
                        received_at=ts(lot.received_at))
        for name in ("remaining_days", "sl_ref_days", "mkt_c"):
            v = getattr(lot, name)
            if v is not None:
                setattr(lm, name, round(v, 4))
        m.lots.append(lm)
    if z.zone_mkt_c is not None:
        m.zone_mkt_c = round(z.zone_mkt_c, 4)
    return m


def price_result(r: prices.PriceResult) -> pb.PriceResult:
    o = r.observation
    m = pb.PriceResult(product=o.product, market=o.market, day=o.day.isoformat(),
                       price_fen=o.price_fen, alert_id=r.alert_id or "",
                       alert_action=ACTION.get(r.action, 0) if r.action else 0)
    if r.rise is not None:
        m.baseline_fen = round(r.rise.baseline_fen, 2)
        m.rise_pct = round(r.rise.rise_pct, 2)
    return m


def dead_letter(d: DeadLetter) -> pb.IngestDeadLetter:
    m = pb.IngestDeadLetter(id=d.id, received_at=ts(d.received_at), depot=d.depot or "", topic=d.topic,
                            code=d.code, reason=d.reason, reason_zh=d.reason_zh, raw=d.raw,
                            client_id=d.client_id)
    if d.entry_index is not None:
        m.entry_index = d.entry_index
    return m


def sensor_series(sensor: str, points: list[HistoryPoint]) -> pb.SensorHistorySeries:
    m = pb.SensorHistorySeries(sensor=sensor)
    for p in points:
        pm = pb.SensorHistoryPoint(time=ts(p.time), temp_mean_c=p.temp_mean_c, temp_min_c=p.temp_min_c,
                                   temp_max_c=p.temp_max_c, count=p.count)
        if p.rh_mean is not None:
            pm.rh_mean = p.rh_mean
        m.points.append(pm)
    return m

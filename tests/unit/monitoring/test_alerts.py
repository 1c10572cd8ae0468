from datetime import date, timedelta

import pytest

from services.common.catalogue import load_catalogue
from services.common.errors import InvalidInput, RuleRefused
from services.monitoring.domain import alerts as al
from services.monitoring.domain.alarms import CLEARED, OPENED, UPDATED, evaluate_history
from services.monitoring.domain.alerts import (
    Alert,
    AlertBook,
    AlertPolicy,
    LotExpiry,
    alert_key,
    from_alarm,
    from_near_expiry,
    from_price_rise,
    from_segregation,
    from_spoilage,
    near_expiry,
    reserve_below_floor,
)
from services.monitoring.domain.hazmat import ZoneContents, audit_zone
from services.monitoring.domain.offline import OfflineTracker
from services.monitoring.domain.prices import PriceObservation, detect_price_rise
from services.monitoring.domain.spoilage import SpoilageFinding

from .timeline import T0, at, segments

CAT = load_catalogue()
CHILLED = CAT.storage_classes["chilled"]
PAYLOAD_FIELDS = {"alert_id", "kind", "severity", "depot", "zone", "rule_code", "opened_at",
                  "evidence", "lot_ids", "title_zh", "title_en"}


def chilled_transitions(readings):
    return evaluate_history("d1", "z1", CHILLED, readings)


def test_alarm_lifecycle_open_update_acknowledge_clear():
    ts = chilled_transitions(segments((32, 4.5), (1, 5.5), (10, 3.0)))
    assert [t.state for t in ts] == [OPENED, UPDATED, CLEARED]
    book = AlertBook()
    alert, action = book.apply_alarm(ts[0])
    assert action == OPENED and alert.severity == "critical"  # CHL_WARM_30M is a spoilage rule
    assert alert.key == alert_key("alarm", "d1", "z1", "CHL_WARM_30M")
    assert alert.title_zh == "d1/z1: 冷藏温度持续30分钟高于4°C"
    again, action = book.apply_alarm(ts[1])
    assert again is alert and action == UPDATED and alert.evidence["peak"] == 5.5
    alert.acknowledge("张三", at(33), note="已通知库管")
    with pytest.raises(RuleRefused):
        alert.acknowledge("李四", at(34))
    cleared, action = book.apply_alarm(ts[2])
    assert cleared is alert and action == CLEARED and not alert.is_open
    assert [h.action for h in alert.history] == ["opened", "updated", "acknowledged", "cleared"]
    assert alert.history[2].by == "张三" and alert.history[2].note == "已通知库管"
    assert book.open_alerts() == []


def test_event_payload():
    t = chilled_transitions(segments((32, 4.5)))[0]
    alert, _ = AlertBook().apply_alarm(t)
    p = alert.to_event_payload()
    assert set(p) == PAYLOAD_FIELDS and alert.event_type == "alert_raised"
    assert p["kind"] == "alarm" and p["rule_code"] == "CHL_WARM_30M" and p["lot_ids"] == []
    assert p["opened_at"] == at(30).isoformat()
    assert p["evidence"]["first_beyond_at"] == at(0).isoformat() and p["evidence"]["sensor"] == "s1"
    alert.clear(at(40))
    p = alert.to_event_payload()
    assert alert.event_type == "alert_cleared" and p["cleared_at"] == at(40).isoformat()
    assert alert.clear(at(41)) is False  # repeated clear changes nothing


def test_same_zone_and_rule_from_another_sensor_is_the_same_alert():
    a = chilled_transitions(segments((32, 4.5), sensor="a"))[0]
    b = chilled_transitions(segments((33, 4.6), sensor="b"))[0]
    book = AlertBook()
    first, _ = book.apply_alarm(a)
    second, action = book.apply_alarm(b)
    assert second is first and action == UPDATED and len(book.open_alerts()) == 1


def test_alert_id_is_stable_for_the_same_key_and_opening_and_new_after_clear():
    t = chilled_transitions(segments((32, 4.5)))[0]
    assert AlertBook().apply_alarm(t)[0].alert_id == AlertBook().apply_alarm(t)[0].alert_id
    book = AlertBook()
    first, _ = book.apply_alarm(t)
    book.clear(first.key, at(40))
    later = chilled_transitions(segments((32, 4.5), start=100))[0]
    second, action = book.apply_alarm(later)
    assert action == OPENED and second.alert_id != first.alert_id


def test_non_spoilage_alarm_is_a_warning_and_cleared_alert_refuses_updates():
    amb = CAT.storage_classes["ambient"]
    t = evaluate_history("d1", "z1", amb, segments((1442, 31.0)))[0]
    assert t.rule_code == "AMB_HOT_24H"
    alert = Alert.open(from_alarm(t), t.at)
    assert alert.severity == "warning"
    alert.clear(t.at)
    with pytest.raises(RuleRefused):
        alert.update(from_alarm(t), t.at)
    with pytest.raises(InvalidInput):
        Alert.open(from_alarm(t), t.at).acknowledge(" ", t.at)


def test_offline_alert_per_sensor():
    tr = OfflineTracker()
    tr.seen("d1", "z1", "s1", T0)
    book = AlertBook()
    (down,) = tr.check(T0 + timedelta(minutes=3))
    alert, action = book.apply_offline(down)
    assert action == OPENED and alert.kind == "sensor_offline" and alert.key.endswith("|s1")
    tr.seen("d1", "z1", "s1", T0 + timedelta(minutes=4))
    (up,) = tr.check(T0 + timedelta(minutes=4))
    cleared, action = book.apply_offline(up)
    assert cleared is alert and action == CLEARED


def test_findings_become_alerts_of_their_kind():
    f = SpoilageFinding("spoilage", "L1", "PORK-KG", "d1/z1", T0, -0.1, 12.0, None)
    c = from_spoilage(f)
    assert (c.kind, c.depot, c.zone, c.lot_ids, c.severity) == ("spoilage", "d1", "z1", ("L1",), "critical")
    seg = audit_zone(ZoneContents("d1", "z2", "flammable",
                                  (("L1", "ETHANOL-75-500ML"), ("L2", "DISINF-84-1L"))), CAT)
    kinds = {from_segregation(v).rule_code for v in seg}
    assert kinds == {"SEG_FLAMMABLE_WITH_OXIDIZER", "SEG_WRONG_CLASS"}
    day = date(2026, 11, 28)
    hist = [PriceObservation("EGG", "M1", day - timedelta(days=i), 1000) for i in range(1, 4)]
    rise = detect_price_rise(PriceObservation("EGG", "M1", day, 1300), hist)
    c = from_price_rise(rise)
    assert c.kind == "price_rise" and c.key == "price_rise|-|-|PRICE_RISE|EGG@M1"
    r = reserve_below_floor("d1", "pork", CAT, days_of_supply=1.5, floor_days=3)
    assert r.kind == "reserve_below_floor" and "猪肉储备 1.5 天" in r.title_zh


def test_near_expiry_windows_fresh_3_days_others_30():
    today = date(2026, 11, 28)

    def lot(lot_id, item, days):
        return LotExpiry(lot_id, item, "d1", "z1", today + timedelta(days=days))

    lots = [lot("P3", "PORK-KG", 3), lot("P4", "PORK-KG", 4), lot("R30", "RICE-10KG", 30),
            lot("R31", "RICE-10KG", 31), lot("M-1", "MILK-1L", -1)]
    found = near_expiry(lots, today, CAT)
    assert [(f.lot_id, f.days_left, f.window_days) for f in found] == [
        ("P3", 3, 3), ("R30", 30, 30), ("M-1", -1, 3)]
    assert found[2].expired and "已于" in from_near_expiry(found[2]).title_zh
    c = from_near_expiry(found[0])
    assert c.lot_ids == ("P3",) and c.severity == "info" and "3 days left" in c.title_en
    longer = AlertPolicy(expiry_window_days={"pork": 5})
    assert [f.lot_id for f in near_expiry(lots, today, CAT, longer)] == ["P3", "P4", "R30", "M-1"]


def test_unregistered_zones_are_alerted_up_to_the_depots_cap_the_rest_only_counted():
    alert, over = al.unregistered_zones_to_alert(["z4", "z1", "z5", "z2", "z3"], ["z1", "z9"], 4)
    assert alert == ["z2", "z3"] and over == ["z4", "z5"]  # z1 has its alert already
    assert al.unregistered_zones_to_alert(["z1"], ["a", "b", "c"], 2) == ([], ["z1"])
    c = al.unregistered_cap_reached("D1", 20, [f"z{i}" for i in range(30)])
    assert c.rule_code == "UNREGISTERED_SENSOR_CAP" and c.zone is None and c.key != al.unregistered_sensor("D1", "z0", ()).key
    assert len(c.evidence["zones_not_alerted"]) == 20 and "20" in c.title_zh

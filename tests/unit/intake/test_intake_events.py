import json

from services.intake.domain import (
    Actor,
    apply_delivery_results,
    approve_head,
    approve_hq,
    cancel_demand,
    file_requisition,
    register_special_need,
    reject_requisition,
    special_need_demand,
    submit_demand,
    update_requester,
)
from services.intake.domain import events as ev
from tests.unit.intake.intake_support import REGISTERED, local

AT = local(2026, 11, 28, 9)


def roundtrip(e):
    return json.loads(json.dumps(e.to_dict(), ensure_ascii=False))


def test_requester_events(sealed_village):
    e = ev.requester_registered(sealed_village)
    p = roundtrip(e)
    assert e.event_type == "requester_registered" and e.occurred_at == REGISTERED
    assert p["requester_id"] == "V-001" and p["kind"] == "village" and p["risk_level"] == "sealed"
    assert p["location"] == {"lat": 30.5, "lon": 114.3}
    assert p["drop_points"][0]["window_start"] == "08:00"
    assert p["vulnerable"]["infants"] == 9 and p["unit_type"] is None and p["version"] == 1
    assert p["registered_at"] == "2026-11-27T01:00:00Z"
    u = update_requester(sealed_village, {"risk_level": "controlled"}, AT)
    p = roundtrip(ev.requester_updated(u, ["risk_level"]))
    assert p["changed_fields"] == ["risk_level"] and p["version"] == 2
    assert p["risk_level"] == "controlled" and p["updated_at"] == "2026-11-28T01:00:00Z"


def test_demand_lifecycle_events(sealed_village, catalogue, policy):
    d = submit_demand(demand_id="DM-1", requester=sealed_village, catalogue=catalogue,
                      policy=policy, at=local(2026, 11, 28, 11, 5), delivery_day="2026-11-28",
                      lines=[{"item_code": "RICE-10KG", "quantity": 200, "note": "东头"},
                             {"item_code": "FORMULA-STAGE1", "quantity": 2}])
    p = roundtrip(ev.demand_registered(d, sealed_village))
    assert p["demand_id"] == "DM-1" and p["township"] == "城关镇" and p["risk_level"] == "sealed"
    assert p["delivery_day"] == "2026-11-29" and p["requested_day"] == "2026-11-28"
    assert p["rolled_over"] is True and p["cutoff_at"] == "2026-11-29T03:00:00Z"
    assert p["origin"] == "direct" and p["flagged"] is True and p["top_tier"] == 3
    assert p["lines"][0] == {"line_no": 0, "item_code": "RICE-10KG", "quantity": 200, "tier": 3,
                             "tier_name": "sealed_area", "flagged": True, "norm_quantity": 40,
                             "special_need_id": None, "note": "东头"}
    c = roundtrip(ev.demand_cancelled(cancel_demand(d, local(2026, 11, 28, 12), "重复")))
    assert c == {"demand_id": "DM-1", "requester_id": "V-001", "delivery_day": "2026-11-29",
                 "cancelled_at": "2026-11-28T04:00:00Z", "reason": "重复"}
    out = apply_delivery_results(d, {"RICE-10KG": 150}, at=local(2026, 11, 29, 17),
                                 policy=policy, carry_over_id="DM-2")
    closed = roundtrip(ev.demand_closed(out.demand))
    assert closed["status"] == "partly_fulfilled" and closed["carry_over_demand_id"] == "DM-2"
    assert closed["lines"] == [
        {"line_no": 0, "item_code": "RICE-10KG", "quantity": 200, "delivered": 150, "remainder": 50},
        {"line_no": 1, "item_code": "FORMULA-STAGE1", "quantity": 2, "delivered": 0, "remainder": 2}]
    carried = roundtrip(ev.demand_registered(out.carry_over, sealed_village))
    assert carried["origin"] == "carry_over" and carried["origin_ref"] == "DM-1"


def test_special_need_demand_event_drops_notes(sealed_village, catalogue, policy):
    n = register_special_need(
        need_id="SN-1", requester=sealed_village, name="李四", phone="13700001111",
        category="chronic_medicine", period_days=30, catalogue=catalogue, policy=policy,
        secret=b"0123456789abcdef", registered_by="grid-1", at=AT,
        lines=[{"item_code": "MED-METFORMIN", "quantity": 1, "note": "李四 13700001111"}])
    d = special_need_demand(n, sealed_village, demand_id="DM-5", catalogue=catalogue,
                            policy=policy, at=AT)
    text = json.dumps(ev.demand_registered(d, sealed_village).to_dict(), ensure_ascii=False)
    assert "李四" not in text and "13700001111" not in text
    p = json.loads(text)
    assert p["origin"] == "special_need" and p["lines"][0]["special_need_id"] == "SN-1"
    assert p["lines"][0]["tier"] == 2
    sn = roundtrip(ev.special_need_registered(n))
    assert set(sn) == {"special_need_id", "requester_id", "beneficiary", "category", "lines",
                       "period_days", "start_day", "registered_by", "registered_at"}


def test_requisition_events(make_unit, catalogue, policy):
    unit = make_unit("fever_clinic")
    head = Actor("head-1", "unit_head", unit.id)
    r = file_requisition(requisition_id="RQ-1", unit=unit, purpose="一周用量", headcount_basis=200,
                         actor=Actor("staff-1", "unit_staff", unit.id), catalogue=catalogue,
                         policy=policy, at=AT,
                         lines=[{"item_code": "MASK-N95", "quantity": 10}])
    s = roundtrip(ev.requisition_submitted(r, unit))
    assert s["unit_type"] == "fever_clinic" and s["registered_basis"] == 150
    assert s["basis_exceeds_registered"] is True and s["lines"][0]["tier"] == 1
    assert s["filed_by"] == "staff-1"
    r2, demand = approve_hq(approve_head(r, head, AT), Actor("hq-1", "hq"), AT, unit=unit,
                            demand_id="DM-9", policy=policy)
    a = roundtrip(ev.requisition_approved(r2, demand))
    assert a["demand_id"] == "DM-9" and a["delivery_day"] == "2026-11-28"
    assert [x["step"] for x in a["approvals"]] == ["submit", "head", "hq"]
    rej = roundtrip(ev.requisition_rejected(reject_requisition(r, head, AT, "超量")))
    assert (rej["step"], rej["reason"], rej["rejected_by"], rej["role"]) == (
        "head", "超量", "head-1", "unit_head")

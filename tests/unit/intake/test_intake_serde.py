"""The aggregates are stored with services.common.serde: they must round-trip through JSON."""

import json

from services.common.serde import dumps, from_jsonable, to_jsonable
from services.intake.domain import (
    Actor,
    Demand,
    Donation,
    Requisition,
    SpecialNeed,
    apply_delivery_results,
    approve_head,
    file_requisition,
    inspect_line,
    register_donation,
    register_special_need,
    submit_demand,
)
from tests.unit.intake.intake_support import local

AT = local(2026, 11, 28, 9)


def roundtrip(cls, obj):
    stored = dumps(obj)  # as the JSON columns and the outbox write it
    assert stored == json.dumps(to_jsonable(obj), ensure_ascii=False, separators=(",", ":"))
    back = from_jsonable(cls, json.loads(stored))
    assert back == obj
    return back


def test_demand_round_trip(sealed_village, catalogue, policy):
    d = submit_demand(demand_id="D1", requester=sealed_village, catalogue=catalogue, policy=policy,
                      at=AT, lines=[{"item_code": "RICE-10KG", "quantity": 200},
                                    {"item_code": "FORMULA-STAGE1", "quantity": 2}])
    closed = apply_delivery_results(d, {"RICE-10KG": 5}, at=AT, policy=policy,
                                    carry_over_id="D2").demand
    for x in (d, closed):
        back = roundtrip(Demand, x)
        assert back.lines[1].tier == 3 and type(back.lines[1].tier).__name__ == "Tier"


def test_other_aggregates_round_trip(sealed_village, make_unit, catalogue, policy):
    need = register_special_need(
        need_id="S1", requester=sealed_village, name="张三", phone="13812345678",
        category="chronic_medicine", period_days=30, catalogue=catalogue, policy=policy,
        secret=b"0123456789abcdef", registered_by="grid-1", at=AT,
        lines=[{"item_code": "MED-METFORMIN", "quantity": 1}])
    roundtrip(SpecialNeed, need)
    unit = make_unit("hospital")
    req = file_requisition(requisition_id="R1", unit=unit, purpose="p", headcount_basis=10,
                           actor=Actor("a", "unit_staff", unit.id), catalogue=catalogue,
                           policy=policy, at=AT, lines=[{"item_code": "MASK-N95", "quantity": 3}],
                           delivery_day="2026-11-29")
    roundtrip(Requisition, approve_head(req, Actor("b", "unit_head", unit.id), AT))
    don = register_donation(donation_id="X1", catalogue=catalogue, received_at=AT, registered_by="k",
                            donor={"name": "n", "contact": "c", "kind": "person"},
                            lines=[{"item_code": "MASK-N95", "quantity": 1, "lot": "l",
                                    "expiry": "2030-01-01", "certificates": ["c1"]}])
    roundtrip(Donation, don)
    roundtrip(Donation, inspect_line(don, 0, decision="accept", reason="ok", inspector="i", at=AT,
                                     catalogue=catalogue, medical_grade=False))

import json
from datetime import date

import pytest

from services.common.errors import InvalidInput, RuleRefused
from services.intake.domain import (
    DemandOrigin,
    SpecialNeedCategory,
    SpecialNeedPolicy,
    Tier,
    normalize_phone,
    pseudonym,
    register_special_need,
    special_need_demand,
)
from services.intake.domain.events import special_need_registered
from tests.unit.intake.intake_support import local

SECRET = b"county-secret-0123456789"
AT = local(2026, 11, 28, 9)


def register(requester, catalogue, policy, **over):
    kwargs = dict(need_id="SN-1", requester=requester, name="张三丰", phone="138 1234 5678",
                  category="infant_formula", lines=[{"item_code": "FORMULA-STAGE1", "quantity": 4}],
                  catalogue=catalogue, policy=policy, secret=SECRET, registered_by="grid-07", at=AT)
    kwargs.update(over)
    return register_special_need(**kwargs)


def test_normalize_phone():
    assert normalize_phone("+86 138-1234-5678") == "13812345678"
    assert normalize_phone("008613812345678") == "13812345678"
    assert normalize_phone("8613812345678") == "13812345678"
    for bad in ("12345", "call me", "1" * 16):
        with pytest.raises(InvalidInput) as e:
            normalize_phone(bad)
        assert e.value.field == "phone"


def test_pseudonym_is_stable_and_keyed():
    p = pseudonym("V-001", "张三丰", "13812345678", SECRET)
    assert p.startswith("BEN-") and len(p) == 24 and int(p[4:], 16) >= 0
    assert pseudonym("V-001", " 张三丰 ", "+86 138-1234-5678", SECRET) == p
    assert pseudonym("V-001", "张三丰", "13812345679", SECRET) != p
    assert pseudonym("V-001", "张三", "13812345678", SECRET) != p
    assert pseudonym("V-002", "张三丰", "13812345678", SECRET) != p
    assert pseudonym("V-001", "张三丰", "13812345678", b"another-secret-of-16+") != p
    with pytest.raises(ValueError):
        pseudonym("V-001", "张三丰", "13812345678", b"short")


def test_register_special_need(sealed_village, catalogue, policy):
    n = register(sealed_village, catalogue, policy)
    assert n.requester_id == "V-001" and n.category is SpecialNeedCategory.INFANT_FORMULA
    assert n.beneficiary.pseudonym == pseudonym("V-001", "张三丰", "13812345678", SECRET)
    assert (n.beneficiary.masked_name, n.beneficiary.masked_phone) == ("张**", "138****5678")
    assert n.start_day == date(2026, 11, 28) and n.period_days is None
    assert [(ln.item_code, ln.quantity) for ln in n.lines] == [("FORMULA-STAGE1", 4)]


def test_same_person_twice_gets_the_same_pseudonym(sealed_village, catalogue, policy):
    a = register(sealed_village, catalogue, policy)
    b = register(sealed_village, catalogue, policy, need_id="SN-2", phone="+86 13812345678",
                 category="chronic_medicine", lines=[{"item_code": "MED-METFORMIN", "quantity": 1}])
    assert a.beneficiary.pseudonym == b.beneficiary.pseudonym


def test_view_is_masked(sealed_village, catalogue, policy):
    v = register(sealed_village, catalogue, policy).view()
    assert (v.masked_name, v.masked_phone) == ("张**", "138****5678")
    assert "张三丰" not in repr(v) and "12345678" not in repr(v)


def test_event_is_pseudonymous(sealed_village, catalogue, policy):
    n = register(sealed_village, catalogue, policy,
                 lines=[{"item_code": "FORMULA-STAGE1", "quantity": 4, "note": "张三丰家"}])
    e = special_need_registered(n)
    text = json.dumps(e.payload, ensure_ascii=False)
    assert "张三丰" not in text and "13812345678" not in text and "5678" not in text
    assert e.payload["beneficiary"] == n.beneficiary.pseudonym
    assert e.payload["lines"] == [{"item_code": "FORMULA-STAGE1", "quantity": 4}]


def test_only_villages_and_communities(make_unit, catalogue, policy):
    with pytest.raises(RuleRefused) as e:
        register(make_unit("nursing_home"), catalogue, policy)
    assert e.value.rule == "AREA_REQUESTER_ONLY"


@pytest.mark.parametrize("over,field", [
    ({"name": " "}, "beneficiary.name"), ({"phone": "n/a"}, "beneficiary.phone"), ({"category": "luxury"}, "category"),
    ({"lines": []}, "lines"), ({"lines": [{"item_code": "X", "quantity": 1}]}, "lines[0].item_code"),
    ({"period_days": 91}, "period_days"), ({"period_days": -1}, "period_days"),
    ({"registered_by": ""}, "registered_by"), ({"delivery_day": "2026-11-01"}, "delivery_day"),
])
def test_validation(sealed_village, catalogue, policy, over, field):
    with pytest.raises(InvalidInput) as e:
        register(sealed_village, catalogue, policy, **over)
    assert e.value.field == field


def test_a_non_essential_or_unknown_line_is_left_out_and_the_rest_registered(sealed_village,
                                                                             catalogue, policy):
    n = register(sealed_village, catalogue, policy, lines=[
        {"item_code": "CIGARETTES-CARTON", "quantity": 1}, {"item_code": "FORMULA-STAGE1", "quantity": 4},
        {"item_code": "NOPE-1", "quantity": 1}])
    assert [(ln.item_code, ln.quantity) for ln in n.lines] == [("FORMULA-STAGE1", 4)]
    assert [(x.line_no, x.item_code, x.field, x.code) for x in n.refused_lines] == [
        (0, "CIGARETTES-CARTON", "lines[0].item_code", "NON_ESSENTIAL"),
        (2, "NOPE-1", "lines[2].item_code", "UNKNOWN_ITEM")]
    assert "烟酒等非必须品除外" in n.refused_lines[0].zh and "NOPE-1" in n.refused_lines[1].en
    assert n.view().refused_lines == n.refused_lines
    demand = special_need_demand(n, sealed_village, demand_id="DM-1", catalogue=catalogue,
                                 policy=policy, at=AT)
    assert [ln.item_code for ln in demand.lines] == ["FORMULA-STAGE1"]


def test_a_need_whose_every_line_is_refused_raises_the_first_lines_error(sealed_village, catalogue,
                                                                        policy):
    with pytest.raises(RuleRefused, match="NON_ESSENTIAL") as e:
        register(sealed_village, catalogue, policy,
                 lines=[{"item_code": "CIGARETTES-CARTON", "quantity": 1},
                        {"item_code": "BAIJIU-500ML", "quantity": 1}])
    assert e.value.field == "lines[0].item_code"


def test_chinese_category_alias(sealed_village, catalogue, policy):
    n = register(sealed_village, catalogue, policy, category="慢性病",
                 lines=[{"item_code": "MED-ANTIHYPERTENSIVE", "quantity": 1}], period_days=30)
    assert n.category is SpecialNeedCategory.CHRONIC_MEDICINE and n.period_days == 30


def test_demand_lines_are_vulnerable_even_for_ordinary_items(prevention_village, catalogue, policy):
    n = register(prevention_village, catalogue, policy, category="elderly_alone",
                 lines=[{"item_code": "RICE-10KG", "quantity": 1},
                        {"item_code": "ADULT-DIAPER-10", "quantity": 2}])
    d = special_need_demand(n, prevention_village, demand_id="DM-9", catalogue=catalogue,
                            policy=policy, at=AT)
    assert {ln.tier for ln in d.lines} == {Tier.VULNERABLE}
    assert (d.origin, d.origin_ref, d.delivery_day) == (DemandOrigin.SPECIAL_NEED, "SN-1", n.start_day)
    assert all(ln.special_need_id == "SN-1" for ln in d.lines)


def test_special_need_flags_use_one_person_and_the_period(sealed_village, catalogue, policy):
    # formula 0.12 can/day × 1 person × 30 days = 3.6 → norm 4; flagged above 10.8
    def demand(qty):
        n = register(sealed_village, catalogue, policy, period_days=30,
                     lines=[{"item_code": "FORMULA-STAGE1", "quantity": qty}])
        return special_need_demand(n, sealed_village, demand_id="DM-1", catalogue=catalogue,
                                   policy=policy, at=AT).lines[0]
    assert demand(10).norm_quantity == 4 and not demand(10).flagged
    assert demand(11).flagged


def test_a_one_off_need_is_judged_for_its_one_off_days_not_one_day(sealed_village, catalogue, policy):
    # formula 0.12 can/day × 1 person × 14 days = 1.68 → norm 2; flagged above 5.04
    def demand(qty, **sn):
        n = register(sealed_village, catalogue, policy,
                     lines=[{"item_code": "FORMULA-STAGE1", "quantity": qty}])
        return special_need_demand(n, sealed_village, demand_id="DM-1", catalogue=catalogue,
                                   policy=policy, at=AT, **sn).lines[0]
    assert demand(4).norm_quantity == 2 and not demand(5).flagged
    assert demand(6).flagged
    assert demand(4, sn_policy=SpecialNeedPolicy(one_off_days=1)).flagged


def test_periodic_need_is_due_every_period(sealed_village, catalogue, policy):
    n = register(sealed_village, catalogue, policy, period_days=7)
    assert n.is_due(date(2026, 11, 28)) and n.is_due(date(2026, 12, 5))
    assert not n.is_due(date(2026, 12, 4)) and not n.is_due(date(2026, 11, 21))
    once = register(sealed_village, catalogue, policy)
    assert once.is_due(date(2026, 11, 28)) and not once.is_due(date(2026, 12, 5))


def test_registration_after_cutoff_starts_the_next_day(sealed_village, catalogue, policy):
    n = register(sealed_village, catalogue, policy, at=local(2026, 11, 28, 11))
    assert n.start_day == date(2026, 11, 29)
    d = special_need_demand(n, sealed_village, demand_id="DM-3", catalogue=catalogue,
                            policy=policy, at=local(2026, 11, 28, 11))
    assert d.delivery_day == date(2026, 11, 29) and not d.rolled_over

import json
from datetime import UTC, date, datetime

import pytest

from services.common.errors import InvalidInput, NotFound, RuleRefused
from services.intake.domain import (
    DonationStatus,
    InspectionDecision,
    daily_summary,
    inspect_line,
    register_donation,
)
from services.intake.domain.events import donation_inspected, donation_registered
from tests.unit.intake.intake_support import local

ARRIVED = local(2026, 11, 28, 9)
LATER = local(2026, 11, 28, 15)
COMPANY = {"name": "华康医疗器械有限公司", "contact": "13912345678", "kind": "organization"}
PERSON = {"name": "王小明", "contact": "wxm@example.org", "kind": "个人"}


def n95(**over):
    line = {"item_code": "MASK-N95", "quantity": 5000, "lot": "N95-2611", "expiry": "2029-10-31",
            "certificates": ["GB2626-2019 report 88"], "production_date": "2026-10-01"}
    line.update(over)
    return line


def rice(**over):
    line = {"item_code": "RICE-10KG", "quantity": 200, "lot": "R-77", "expiry": "2027-10-01"}
    line.update(over)
    return line


def donate(catalogue, lines=None, donor=COMPANY, at=ARRIVED, donation_id="DN-1", **over):
    kwargs = dict(donation_id=donation_id, donor=donor, lines=lines or [n95(), rice()],
                  catalogue=catalogue, received_at=at, registered_by="keeper-1")
    return register_donation(**{**kwargs, **over})


def inspect(d, line_no, decision, catalogue, at=LATER, **over):
    kwargs = dict(decision=decision, reason="符合标准", inspector="qc-zhang", at=at, catalogue=catalogue)
    kwargs.update(over)
    return inspect_line(d, line_no, **kwargs)


def test_the_person_who_registered_a_donation_does_not_inspect_it(catalogue):
    d = donate(catalogue)
    for who in ("keeper-1", " Keeper-1"):
        with pytest.raises(RuleRefused) as e:
            inspect(d, 1, "accept", catalogue, inspector=who)
        assert e.value.rule == "SEPARATION_OF_DUTIES" and "登记人" in e.value.message
    assert inspect(d, 1, "accept", catalogue).lines[1].inspection.inspector == "qc-zhang"


@pytest.mark.parametrize("again", [rice(), rice(quantity=5), rice(lot=" r-77", expiry="2028-01-01")])
def test_a_lot_of_an_item_is_on_one_line_only(catalogue, again):
    with pytest.raises(InvalidInput) as e:
        donate(catalogue, lines=[rice(), n95(), again])
    assert e.value.field == "lines[2].lot" and "lines[0]" in e.value.message
    other_lot = donate(catalogue, lines=[rice(), n95(), rice(lot="R-78"), n95(lot="R-77")])
    assert [(ln.item_code, ln.lot) for ln in other_lot.lines] == [
        ("RICE-10KG", "R-77"), ("MASK-N95", "N95-2611"), ("RICE-10KG", "R-78"), ("MASK-N95", "R-77")]


def test_register_donation(catalogue):
    d = donate(catalogue)
    assert d.status is DonationStatus.REGISTERED and not d.targeted
    assert [(ln.line_no, ln.item_code, ln.quantity, ln.lot) for ln in d.lines] == [
        (0, "MASK-N95", 5000, "N95-2611"), (1, "RICE-10KG", 200, "R-77")]
    assert d.lines[0].expiry == date(2029, 10, 31)
    assert d.lines[0].production_date == date(2026, 10, 1)
    assert d.lines[0].certificates == ("GB2626-2019 report 88",)
    assert not any(ln.expired_on_arrival for ln in d.lines)


def test_targeted_donations(catalogue):
    assert donate(catalogue, target_requester_id="U-hospital").targeted
    assert donate(catalogue, target_use="发热门诊").targeted
    with pytest.raises(InvalidInput) as e:
        donate(catalogue, target_requester_id="not an id")
    assert e.value.field == "target_requester_id"


def test_donor_contact_is_masked_and_person_name_too(catalogue):
    org = donate(catalogue).donor
    assert org.masked_contact == "139****5678" and org.display_name == "华康医疗器械有限公司"
    person = donate(catalogue, donor=PERSON).donor
    assert person.masked_contact == "w***@example.org" and person.display_name == "王**"


@pytest.mark.parametrize("over,field", [
    ({"donor": None}, "donor"),
    ({"donor": {**COMPANY, "name": ""}}, "donor.name"),
    ({"donor": {**COMPANY, "contact": " "}}, "donor.contact"),
    ({"donor": {**COMPANY, "kind": "alien"}}, "donor.kind"),
    ({"lines": [n95(item_code="NOPE")]}, "lines[0].item_code"),
    ({"lines": [n95(), rice(quantity=0)]}, "lines[1].quantity"),
    ({"lines": [n95(lot="")]}, "lines[0].lot"),
    ({"lines": [n95(expiry=None)]}, "lines[0].expiry"),
    ({"lines": [n95(expiry="31/10/2029")]}, "lines[0].expiry"),
    ({"lines": [n95(production_date="2030-01-01")]}, "lines[0].production_date"),
    ({"lines": [n95(production_date="2026-12-01")]}, "lines[0].production_date"),
    ({"lines": [n95(certificates=["ok", ""])]}, "lines[0].certificates[1]"),
    ({"registered_by": ""}, "registered_by"),
])
def test_registration_validation(catalogue, over, field):
    with pytest.raises(InvalidInput) as e:
        donate(catalogue, **over)
    assert e.value.field == field


def test_lines_are_required(catalogue):
    with pytest.raises(InvalidInput) as e:
        register_donation(donation_id="DN-1", donor=COMPANY, lines=[], catalogue=catalogue,
                          received_at=ARRIVED, registered_by="k")
    assert e.value.field == "lines"


def test_non_essential_donations_refused(catalogue):
    with pytest.raises(RuleRefused, match="NON_ESSENTIAL"):
        donate(catalogue, lines=[rice(), rice(item_code="BAIJIU-500ML")])


def test_expired_on_arrival_can_only_be_returned(catalogue):
    d = donate(catalogue, lines=[rice(expiry="2026-11-27"), rice(expiry="2026-11-28", lot="R-78")])
    assert [ln.expired_on_arrival for ln in d.lines] == [True, False]  # expiry day itself is usable
    for decision in ("accept", "redirect"):
        with pytest.raises(RuleRefused) as e:
            inspect(d, 0, decision, catalogue, redirect_to="食堂")
        assert e.value.rule == "EXPIRED_ON_ARRIVAL"
    d = inspect(d, 0, "return", catalogue, reason="已过期")
    assert d.lines[0].inspection.decision is InspectionDecision.RETURN


def test_expiry_judged_on_the_local_day_of_arrival(catalogue):
    # 2026-11-27 17:00 UTC is 2026-11-28 01:00 local: an expiry of the 27th has passed
    d = donate(catalogue, lines=[rice(expiry="2026-11-27")], at=datetime(2026, 11, 27, 17, tzinfo=UTC))
    assert d.lines[0].expired_on_arrival


def test_accept_medical_items_records_medical_grade(catalogue):
    d = donate(catalogue)
    with pytest.raises(InvalidInput) as e:
        inspect(d, 0, "accept", catalogue)
    assert e.value.field == "medical_grade"
    d = inspect(d, 0, "accept", catalogue, medical_grade=True)
    assert d.lines[0].inspection.medical_grade is True
    assert d.status is DonationStatus.PARTLY_INSPECTED
    with pytest.raises(InvalidInput) as e:
        inspect(d, 1, "accept", catalogue, medical_grade=True)  # rice has no medical grade
    assert e.value.field == "medical_grade"
    d = inspect(d, 1, "accept", catalogue)
    assert d.lines[1].inspection.medical_grade is None and d.status is DonationStatus.INSPECTED


def test_redirect_needs_a_target(catalogue):
    d = donate(catalogue)
    with pytest.raises(InvalidInput) as e:
        inspect(d, 0, "redirect", catalogue, reason="非医用级")
    assert e.value.field == "redirect_to"
    d = inspect(d, 0, "redirect", catalogue, reason="非医用级, 可供后勤使用", redirect_to="后勤保障科")
    assert d.lines[0].inspection.redirect_to == "后勤保障科"
    with pytest.raises(InvalidInput) as e:
        inspect(d, 1, "return", catalogue, redirect_to="somewhere")
    assert e.value.field == "redirect_to"


@pytest.mark.parametrize("over,field", [
    ({"reason": ""}, "reason"), ({"inspector": " "}, "inspector"), ({"decision": "keep"}, "decision"),
])
def test_inspection_validation(catalogue, over, field):
    d = donate(catalogue)
    kwargs = {"decision": "return", **over}
    with pytest.raises(InvalidInput) as e:
        inspect(d, 1, kwargs.pop("decision"), catalogue, **kwargs)
    assert e.value.field == field


def test_line_inspected_once(catalogue):
    d = inspect(donate(catalogue), 1, "return", catalogue, reason="霉变")
    with pytest.raises(RuleRefused) as e:
        inspect(d, 1, "accept", catalogue)
    assert e.value.rule == "ALREADY_INSPECTED"


@pytest.mark.parametrize("line_no", [2, -1, "0", True])
def test_unknown_line(catalogue, line_no):
    with pytest.raises(NotFound):
        inspect(donate(catalogue), line_no, "return", catalogue)


def test_daily_summary(catalogue):
    day = date(2026, 11, 28)
    a = donate(catalogue)  # arrived on the 28th
    a = inspect(a, 0, "accept", catalogue, medical_grade=True)           # inspected the 28th
    a = inspect(a, 1, "return", catalogue, at=local(2026, 11, 29, 9))   # inspected the 29th
    b = donate(catalogue, donation_id="DN-2", lines=[n95(quantity=300, lot="L2")],
               at=datetime(2026, 11, 28, 15, 59, tzinfo=UTC))            # 23:59 local, the 28th
    b = inspect(b, 0, "redirect", catalogue, redirect_to="社区", at=local(2026, 11, 28, 23, 59))
    c = donate(catalogue, donation_id="DN-3", lines=[rice(quantity=7)],
               at=datetime(2026, 11, 28, 16, 0, tzinfo=UTC))             # 00:00 the 29th
    s = daily_summary([a, b, c], day)
    assert s.day == day and s.donations_received == 2
    by = {i.item_code: i for i in s.items}
    assert set(by) == {"MASK-N95", "RICE-10KG"}
    assert (by["MASK-N95"].received.lines, by["MASK-N95"].received.quantity) == (2, 5300)
    assert by["MASK-N95"].accepted.quantity == 5000 and by["MASK-N95"].redirected.quantity == 300
    assert by["RICE-10KG"].received.quantity == 200 and by["RICE-10KG"].returned.lines == 0
    next_day = {i.item_code: i for i in daily_summary([a, b, c], date(2026, 11, 29)).items}
    assert next_day["RICE-10KG"].returned.quantity == 200
    assert next_day["RICE-10KG"].received.quantity == 7
    assert "MASK-N95" not in next_day


def test_events_carry_lots_and_no_contact(catalogue):
    d = donate(catalogue, donor=PERSON, target_use="发热门诊")
    reg = donation_registered(d).payload
    text = json.dumps(reg, ensure_ascii=False)
    assert "wxm@example.org" not in text and "王小明" not in text and reg["donor"] == "王**"
    assert reg["targeted"] and reg["lines"][0]["certificates"] == ["GB2626-2019 report 88"]
    d = inspect(d, 0, "accept", catalogue, medical_grade=False)
    ev = donation_inspected(d, [0])
    assert ev.event_type == "donation_inspected" and ev.occurred_at == LATER
    (ln,) = ev.payload["lines"]
    assert ln == {
        "line_no": 0, "item_code": "MASK-N95", "quantity": 5000, "lot": "N95-2611",
        "expiry": "2029-10-31", "production_date": "2026-10-01", "decision": "accept",
        "medical_grade": False, "redirect_to": "", "reason": "符合标准", "inspector": "qc-zhang",
        "inspected_at": "2026-11-28T07:00:00Z",
    }
    assert ev.payload["status"] == "partly_inspected"
    with pytest.raises(ValueError):
        donation_inspected(d, [1])  # not inspected yet

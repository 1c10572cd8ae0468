"""County rules of intake through a real `python -m services.intake api` process (issue #15,
items 1, 2 and 7): a line's tier follows where it comes from, a refused line refuses that line
only (demands, requisitions, special needs), and a one-off special need is judged against what
one person needs for it."""

from __future__ import annotations

import pytest
from supply.v1 import common_pb2, intake_pb2

from services.common.auth import mint_token
from services.common.config import load_settings
from tests.integration.test_intake_grpc import assert_refused, rpc_error
from tests.support.intake import HQ, demand_request, key, running_api

pb = intake_pb2
SEALED = common_pb2.RISK_LEVEL_SEALED


@pytest.fixture(scope="module")
def api(tmp_path_factory, amqp_url):
    with running_api(tmp_path_factory.mktemp("intake-rules"), amqp_url) as client:
        yield client


def special_need(api, village: str, *lines: tuple[str, int], period_days: int = 0,
                 category=pb.SPECIAL_NEED_CATEGORY_INFANT_FORMULA) -> pb.RegisterSpecialNeedResponse:
    return api.RegisterSpecialNeed(pb.RegisterSpecialNeedRequest(
        idempotency_key=key(), requester_id=village, category=category, period_days=period_days,
        beneficiary=pb.Beneficiary(name="王小红", phone="13812345678"),
        lines=[common_pb2.ItemLine(item_code=c, quantity=q) for c, q in lines]))


# ---- item 1: the tier comes from where the line comes from (RULES §3.2) -------------------------
def test_a_registered_babys_formula_ranks_before_a_sealed_villages_ordinary_formula(api):
    sealed = api.village(risk=SEALED).id
    ordinary = api.demand(sealed, ("FORMULA-STAGE1", 30), ("RICE-10KG", 40))
    assert [ln.tier for ln in ordinary.lines] == [common_pb2.TIER_SEALED_AREA] * 2
    assert ordinary.top_tier == common_pb2.TIER_SEALED_AREA
    prevention = api.demand(api.village().id, ("FORMULA-STAGE1", 30))
    assert prevention.lines[0].tier == common_pb2.TIER_GENERAL

    baby = special_need(api, sealed, ("FORMULA-STAGE1", 4)).demand
    assert [ln.tier for ln in baby.lines] == [common_pb2.TIER_VULNERABLE]
    assert baby.top_tier < ordinary.top_tier  # served first by allocation's tier order


# ---- item 2: one refused line refuses that line, not the demand (RULES §6) ---------------------
def test_a_tobacco_line_is_refused_and_the_rest_of_the_demand_accepted(api):
    village = api.village().id
    request = demand_request(village, ("RICE-10KG", 10), ("CIGARETTES-CARTON", 2),
                             ("UNOBTAINIUM", 1), ("OIL-5L", 3))
    demand = api.SubmitDemand(request)
    assert [(ln.line_no, ln.item_code, ln.quantity) for ln in demand.lines] == [
        (0, "RICE-10KG", 10), (3, "OIL-5L", 3)]
    refused = [(r.line_no, r.item_code, r.field, r.reason.code) for r in demand.refused_lines]
    assert refused == [(1, "CIGARETTES-CARTON", "lines[1].item_code", "NON_ESSENTIAL"),
                       (2, "UNOBTAINIUM", "lines[2].item_code", "UNKNOWN_ITEM")]
    for r in demand.refused_lines:
        assert any("\u4e00" <= ch <= "\u9fff" for ch in r.reason.zh) and r.reason.en.isascii()
    assert "烟酒" in demand.refused_lines[0].reason.zh
    assert api.GetDemand(pb.GetDemandRequest(demand_id=demand.id)) == demand
    assert api.SubmitDemand(request) == demand  # a replay answers the same

    # a demand whose every line is refused is refused as before, nothing recorded
    err = rpc_error(lambda: api.SubmitDemand(demand_request(
        village, ("CIGARETTES-CARTON", 2), ("BAIJIU-500ML", 1))))
    assert_refused(err, "NON_ESSENTIAL")
    assert "lines[0].item_code" in err.details()
    assert [d.id for d in api.list_demands(requester_id=village)] == [demand.id]


def test_a_requisitions_tobacco_line_is_refused_and_the_rest_filed_and_approved(api):
    hospital = api.unit().id
    nurse = mint_token(load_settings("intake", api.env).jwt_key, sub="nurse.li", role="unit",
                       scope=hospital)
    request = pb.FileRequisitionRequest(
        idempotency_key=key(), unit_id=hospital, purpose="发热门诊一周用量", headcount_basis=300,
        lines=[common_pb2.ItemLine(item_code=c, quantity=q) for c, q in (
            ("MASK-N95", 500), ("BAIJIU-500ML", 2), ("UNOBTAINIUM", 1), ("GOWN-PROTECTIVE", 100))])
    filed = api.FileRequisition(request, token=nurse)
    assert [(ln.line_no, ln.item_code) for ln in filed.lines] == [(0, "MASK-N95"), (3, "GOWN-PROTECTIVE")]
    assert [(r.line_no, r.item_code, r.field, r.reason.code) for r in filed.refused_lines] == [
        (1, "BAIJIU-500ML", "lines[1].item_code", "NON_ESSENTIAL"),
        (2, "UNOBTAINIUM", "lines[2].item_code", "UNKNOWN_ITEM")]
    assert "烟酒" in filed.refused_lines[0].reason.zh and "non-essential" in filed.refused_lines[0].reason.en
    assert api.FileRequisition(request, token=nurse) == filed  # a replay answers the same
    assert api.GetRequisition(pb.GetRequisitionRequest(requisition_id=filed.id)) == filed

    api.ApproveRequisition(pb.ApproveRequisitionRequest(
        idempotency_key=key(), requisition_id=filed.id, step=pb.APPROVAL_STEP_HEAD))
    demand = api.ApproveRequisition(pb.ApproveRequisitionRequest(
        idempotency_key=key(), requisition_id=filed.id, step=pb.APPROVAL_STEP_HQ), token=HQ).demand
    assert [ln.item_code for ln in demand.lines] == ["MASK-N95", "GOWN-PROTECTIVE"]
    assert list(demand.refused_lines) == list(filed.refused_lines)

    # every line refused: refused as before, nothing filed
    err = rpc_error(lambda: api.FileRequisition(pb.FileRequisitionRequest(
        idempotency_key=key(), unit_id=hospital, purpose="过年", headcount_basis=300,
        lines=[common_pb2.ItemLine(item_code="BAIJIU-500ML", quantity=2)]), token=nurse))
    assert_refused(err, "NON_ESSENTIAL")
    assert "lines[0].item_code" in err.details()
    listed = api.ListRequisitions(pb.ListRequisitionsRequest(unit_id=hospital)).requisitions
    assert [r.id for r in listed] == [filed.id]


def test_a_special_needs_tobacco_line_is_refused_and_the_rest_registered(api):
    village = api.village().id
    resp = special_need(api, village, ("CIGARETTES-CARTON", 1), ("FORMULA-STAGE1", 4), ("UNOBTAINIUM", 1))
    need = resp.special_need
    assert [(ln.item_code, ln.quantity) for ln in need.lines] == [("FORMULA-STAGE1", 4)]
    assert [(r.line_no, r.item_code, r.field, r.reason.code) for r in need.refused_lines] == [
        (0, "CIGARETTES-CARTON", "lines[0].item_code", "NON_ESSENTIAL"),
        (2, "UNOBTAINIUM", "lines[2].item_code", "UNKNOWN_ITEM")]
    assert "烟酒" in need.refused_lines[0].reason.zh and need.refused_lines[1].reason.en.isascii()
    assert [ln.item_code for ln in resp.demand.lines] == ["FORMULA-STAGE1"]
    listed = api.ListSpecialNeeds(pb.ListSpecialNeedsRequest(requester_id=village)).special_needs
    assert list(listed) == [need]

    # every line refused: refused as before, nothing registered
    err = rpc_error(lambda: special_need(api, village, ("CIGARETTES-CARTON", 1), ("BAIJIU-500ML", 1)))
    assert_refused(err, "NON_ESSENTIAL")
    assert "lines[0].item_code" in err.details()
    listed = api.ListSpecialNeeds(pb.ListSpecialNeedsRequest(requester_id=village)).special_needs
    assert [n.id for n in listed] == [need.id]


# ---- item 7: a one-off special need is judged for what it is registered for ---------------------
def test_a_one_off_formula_need_of_four_cans_is_not_flagged_but_forty_are(api):
    village = api.village().id
    usual = special_need(api, village, ("FORMULA-STAGE1", 4)).demand
    assert not usual.flagged and not usual.lines[0].flagged
    assert usual.lines[0].norm_quantity >= 2
    hoard = special_need(api, village, ("FORMULA-STAGE1", 40)).demand
    assert hoard.flagged and hoard.lines[0].flagged

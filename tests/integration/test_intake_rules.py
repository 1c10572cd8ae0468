"""County rules of intake through a real `python -m services.intake api` process (issue #15,
items 1, 2 and 7): a line's tier follows where it comes from, a refused line refuses that line
only, and a one-off special need is judged against what one person needs for it."""

from __future__ import annotations

import pytest
from supply.v1 import common_pb2, intake_pb2

from tests.integration.test_intake_grpc import assert_refused, rpc_error
from tests.support.intake import demand_request, key, running_api

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


# ---- item 7: a one-off special need is judged for what it is registered for ---------------------
def test_a_one_off_formula_need_of_four_cans_is_not_flagged_but_forty_are(api):
    village = api.village().id
    usual = special_need(api, village, ("FORMULA-STAGE1", 4)).demand
    assert not usual.flagged and not usual.lines[0].flagged
    assert usual.lines[0].norm_quantity >= 2
    hoard = special_need(api, village, ("FORMULA-STAGE1", 40)).demand
    assert hoard.flagged and hoard.lines[0].flagged

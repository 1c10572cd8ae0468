"""Issue 14, finding 9: separation of duties (申请人 ≠ 审核人) through a real intake API process.
Nobody decides a step of a requisition they filed, nor two steps of one requisition; nobody
inspects a donation they registered. Refused FAILED_PRECONDITION [SEPARATION_OF_DUTIES], in
Chinese and English, and nothing changes; another person of the right role then may."""

from __future__ import annotations

import grpc
import pytest
from supply.v1 import common_pb2, intake_pb2

from services.common.auth import mint_token
from services.common.config import load_settings
from tests.integration.test_intake_grpc import assert_refused, rpc_error
from tests.support.intake import day, key, running_api

pb = intake_pb2
RULE = "SEPARATION_OF_DUTIES"


@pytest.fixture(scope="module")
def api(tmp_path_factory, amqp_url):
    with running_api(tmp_path_factory.mktemp("separation-of-duties"), amqp_url) as client:
        client.jwt_key = load_settings("intake", client.env).jwt_key
        yield client


def person(api, sub: str, role: str, scope: str = "") -> str:
    """A signed token for one person, as the console mints it."""
    return mint_token(api.jwt_key, sub=sub, role=role, scope=scope)


def file(api, unit_id: str, token: str) -> pb.Requisition:
    return api.FileRequisition(pb.FileRequisitionRequest(
        idempotency_key=key(), unit_id=unit_id, purpose="发热门诊一周用量", headcount_basis=100,
        lines=[common_pb2.ItemLine(item_code="MASK-N95", quantity=200)]), token=token)


def approve(api, req_id: str, step: int, token: str) -> pb.ApproveRequisitionResponse:
    return api.ApproveRequisition(pb.ApproveRequisitionRequest(
        idempotency_key=key(), requisition_id=req_id, step=step), token=token)


def reject(api, req_id: str, token: str) -> pb.Requisition:
    return api.RejectRequisition(pb.RejectRequisitionRequest(
        idempotency_key=key(), requisition_id=req_id, reason="数量偏大"), token=token)


def assert_bilingual_refusal(err: grpc.RpcError) -> None:
    assert_refused(err, RULE)
    assert " / " in err.details() and any("\u4e00" <= ch <= "\u9fff" for ch in err.details())


def test_a_unit_head_may_not_approve_the_requisition_they_filed(api):
    unit = api.unit().id
    head = person(api, "dean.wang", "unit_head", unit)
    filed = file(api, unit, head)
    for attempt in (lambda: approve(api, filed.id, pb.APPROVAL_STEP_HEAD, head),
                    lambda: reject(api, filed.id, head)):
        assert_bilingual_refusal(rpc_error(attempt))
    got = api.GetRequisition(pb.GetRequisitionRequest(requisition_id=filed.id))
    assert got.status == pb.REQUISITION_STATUS_SUBMITTED and len(got.approvals) == 1

    deputy = person(api, "deputy.li", "unit_head", unit)
    done = approve(api, filed.id, pb.APPROVAL_STEP_HEAD, deputy)
    assert [a.actor_id for a in done.requisition.approvals] == ["dean.wang", "deputy.li"]


def test_hq_may_not_approve_what_it_filed_on_a_units_behalf(api):
    unit = api.unit().id
    officer = person(api, "hq.chen", "hq")
    filed = file(api, unit, officer)
    approve(api, filed.id, pb.APPROVAL_STEP_HEAD, person(api, "dean.wang", "unit_head", unit))
    assert_bilingual_refusal(rpc_error(lambda: approve(api, filed.id, pb.APPROVAL_STEP_HQ, officer)))
    assert api.GetRequisition(pb.GetRequisitionRequest(requisition_id=filed.id)).status == \
        pb.REQUISITION_STATUS_HEAD_APPROVED
    done = approve(api, filed.id, pb.APPROVAL_STEP_HQ, person(api, "hq.zhao", "hq"))
    assert done.requisition.status == pb.REQUISITION_STATUS_HQ_APPROVED and done.demand.id


def test_one_person_decides_one_step_only_even_an_admin(api):
    unit = api.unit().id
    filed = file(api, unit, person(api, "nurse.li", "unit", unit))
    admin = person(api, "it.admin", "admin")
    approve(api, filed.id, pb.APPROVAL_STEP_HEAD, admin)
    for attempt in (lambda: approve(api, filed.id, pb.APPROVAL_STEP_HQ, admin),
                    lambda: reject(api, filed.id, admin)):
        assert_bilingual_refusal(rpc_error(attempt))
    assert api.GetRequisition(pb.GetRequisitionRequest(requisition_id=filed.id)).status == \
        pb.REQUISITION_STATUS_HEAD_APPROVED
    rejected = reject(api, filed.id, person(api, "hq.zhao", "hq"))
    assert rejected.status == pb.REQUISITION_STATUS_REJECTED


def test_nobody_inspects_a_donation_they_registered(api):
    clerk = person(api, "qc.zhang", "inspector")
    donation = api.RegisterDonation(pb.RegisterDonationRequest(
        idempotency_key=key(), donor=pb.Donor(name="清河商会", contact="0571-88886666",
                                               kind=pb.DONOR_KIND_ORGANIZATION),
        lines=[pb.DonationLineSpec(item_code="RICE-10KG", quantity=50, lot="R-1", expiry=day(200))]),
        token=clerk)

    def inspect(token: str) -> pb.Donation:
        return api.InspectDonationLine(pb.InspectDonationLineRequest(
            idempotency_key=key(), donation_id=donation.id, line_no=0,
            decision=pb.INSPECTION_DECISION_ACCEPT, reason="符合标准"), token=token)

    assert_bilingual_refusal(rpc_error(lambda: inspect(clerk)))
    assert api.GetDonation(pb.GetDonationRequest(donation_id=donation.id)).status == \
        pb.DONATION_STATUS_REGISTERED
    done = inspect(person(api, "qc.sun", "inspector"))
    assert done.status == pb.DONATION_STATUS_INSPECTED and done.lines[0].inspection.inspector == "qc.sun"

"""ListRequisitions and ListDonations through a real `python -m services.intake api` process, on
SQLite and on PostgreSQL: filters, paging with the total, order, and who may read which (a
unit's staff and head see their own unit only; hq and auditors every unit; donations for hq,
inspectors, depot keepers and auditors)."""

from __future__ import annotations

import grpc
import pytest
from supply.v1 import common_pb2, intake_pb2

from tests.support.intake import (
    ADMIN,
    HQ,
    VILLAGE,
    Intake,
    day,
    key,
    make_env,
    migrate,
    start_api,
    uid,
)

pb = intake_pb2
UNIT_A, UNIT_B = uid("U-LA"), uid("U-LB")
STAFF_A = "test-unit-a-token-000001"
HEAD_A = "test-head-a-token-000001"
STAFF_B = "test-unit-b-token-000001"
AUDITOR = "test-auditor-token-00001"
INSPECTOR = "test-inspector-token-001"
KEEPER = "test-keeper-token-000001"
DEPARTMENT = "test-department-token-01"
TOKENS = ",".join([
    f"{ADMIN}=tester:admin", f"{VILLAGE}=village-worker:village:V1", f"{HQ}=hq-officer:hq",
    f"{STAFF_A}=staff-a:unit:{UNIT_A}", f"{HEAD_A}=head-a:unit_head:{UNIT_A}",
    f"{STAFF_B}=staff-b:unit:{UNIT_B}", f"{AUDITOR}=auditor-1:auditor",
    f"{INSPECTOR}=inspector-1:inspector", f"{KEEPER}=keeper-1:depot_keeper",
    f"{DEPARTMENT}=dept-1:department",
])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request, tmp_path_factory, amqp_url, pg_url_factory):
    tmp = tmp_path_factory.mktemp(f"intake-lists-{request.param}")
    extra = {"INTAKE_DATABASE_URL": pg_url_factory("intake")} if request.param == "postgresql" else {}
    env = make_env(tmp / "var", amqp_url, SUPPLY_AUTH_TOKENS=TOKENS, **extra)
    migrate(env)
    proc = start_api(env, tmp)
    client = Intake(env)
    client.unit(UNIT_A)
    client.unit(UNIT_B)
    yield client
    client.close()
    assert proc.stop() == 0, proc.log()[-3000:]


def denied(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()


def file(api, unit_id: str, token: str) -> pb.Requisition:
    return api.FileRequisition(pb.FileRequisitionRequest(
        idempotency_key=key(), unit_id=unit_id, purpose="发热门诊扩容", headcount_basis=100,
        lines=[common_pb2.ItemLine(item_code="MASK-N95", quantity=200)]), token=token)


def requisitions(api, token: str, **filters) -> pb.ListRequisitionsResponse:
    return api.ListRequisitions(pb.ListRequisitionsRequest(**filters), token=token)


def test_a_unit_lists_its_own_requisitions_and_hq_lists_every_units(api):
    a1, a2 = file(api, UNIT_A, STAFF_A), file(api, UNIT_A, STAFF_A)
    b1 = file(api, UNIT_B, STAFF_B)
    api.ApproveRequisition(pb.ApproveRequisitionRequest(
        idempotency_key=key(), requisition_id=a1.id, step=pb.APPROVAL_STEP_HEAD), token=HEAD_A)

    own = requisitions(api, STAFF_A)
    assert {r.id for r in own.requisitions} >= {a1.id, a2.id}
    assert {r.unit_id for r in own.requisitions} == {UNIT_A}
    assert own.page.total == len(own.requisitions)
    assert {r.unit_id for r in requisitions(api, HEAD_A).requisitions} == {UNIT_A}
    assert denied(lambda: requisitions(api, STAFF_A, unit_id=UNIT_B)) == grpc.StatusCode.PERMISSION_DENIED

    waiting_for_hq = requisitions(api, HQ, statuses=[pb.REQUISITION_STATUS_HEAD_APPROVED])
    assert a1.id in {r.id for r in waiting_for_hq.requisitions}
    assert {r.status for r in waiting_for_hq.requisitions} == {pb.REQUISITION_STATUS_HEAD_APPROVED}
    assert waiting_for_hq.requisitions[[r.id for r in waiting_for_hq.requisitions].index(a1.id)] == \
        api.GetRequisition(pb.GetRequisitionRequest(requisition_id=a1.id))
    everyone = {r.id for r in requisitions(api, AUDITOR, page=common_pb2.PageRequest(page_size=500)).requisitions}
    assert {a1.id, a2.id, b1.id} <= everyone
    b_only = requisitions(api, HQ, unit_id=UNIT_B, statuses=[pb.REQUISITION_STATUS_SUBMITTED])
    assert [r.id for r in b_only.requisitions] == [b1.id]

    for token in (VILLAGE, INSPECTOR, KEEPER, DEPARTMENT):
        assert denied(lambda t=token: requisitions(api, t)) == grpc.StatusCode.PERMISSION_DENIED


def test_requisitions_page_oldest_step_first_with_the_total(api):
    unit = api.unit()
    filed = [file(api, unit.id, ADMIN) for _ in range(5)]
    seen, token, totals = [], "", set()
    while True:
        page = requisitions(api, HQ, unit_id=unit.id, page=common_pb2.PageRequest(page_size=2, page_token=token))
        seen.extend(r.id for r in page.requisitions)
        totals.add(page.page.total)
        token = page.page.next_page_token
        if not token:
            break
    assert seen == [r.id for r in filed] and totals == {5}
    bad = pb.ListRequisitionsRequest(statuses=[0])
    with pytest.raises(grpc.RpcError) as info:
        api.ListRequisitions(bad, token=HQ)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("statuses[0]:")


def test_donations_list_by_status_and_day_for_the_roles_that_handle_them(api):
    donation = api.RegisterDonation(pb.RegisterDonationRequest(
        idempotency_key=key(), donor=pb.Donor(name="王小明", contact="13912345678", kind=pb.DONOR_KIND_PERSON),
        lines=[pb.DonationLineSpec(item_code="RICE-10KG", quantity=50, lot="R-1", expiry=day(200)),
               pb.DonationLineSpec(item_code="RICE-10KG", quantity=20, lot="R-2", expiry=day(200))]),
        token=KEEPER)
    waiting = [pb.DONATION_STATUS_REGISTERED, pb.DONATION_STATUS_PARTLY_INSPECTED]

    def queue(token=INSPECTOR, **filters):
        return [x.id for x in api.ListDonations(pb.ListDonationsRequest(
            statuses=waiting, page=common_pb2.PageRequest(page_size=500), **filters), token=token).donations]

    assert donation.id in queue()
    listed = api.ListDonations(pb.ListDonationsRequest(received_day=day(0)), token=AUDITOR)
    mine = [x for x in listed.donations if x.id == donation.id]
    assert mine == [donation] and mine[0].donor_contact == "139****5678"
    assert donation.id not in queue(received_day=day(-1))

    api.InspectDonationLine(pb.InspectDonationLineRequest(
        idempotency_key=key(), donation_id=donation.id, line_no=0,
        decision=pb.INSPECTION_DECISION_RETURN, reason="包装破损"), token=INSPECTOR)
    assert donation.id in queue(KEEPER)  # partly inspected: still waiting
    api.InspectDonationLine(pb.InspectDonationLineRequest(
        idempotency_key=key(), donation_id=donation.id, line_no=1,
        decision=pb.INSPECTION_DECISION_RETURN, reason="包装破损"), token=INSPECTOR)
    assert donation.id not in queue(HQ)
    done = api.ListDonations(pb.ListDonationsRequest(statuses=[pb.DONATION_STATUS_INSPECTED]), token=HQ)
    assert donation.id in {x.id for x in done.donations}

    for token in (VILLAGE, STAFF_A, DEPARTMENT):
        assert denied(lambda t=token: queue(t)) == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as info:
        api.ListDonations(pb.ListDonationsRequest(received_day="29.11.2026"), token=HQ)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("received_day")


def test_the_catalogue_lists_items_by_name_in_either_language_for_any_signed_in_caller(api):
    every = api.ListCatalogueItems(pb.ListCatalogueItemsRequest(), token=VILLAGE)
    assert every.version and len(every.items) > 20
    assert [(i.group, i.item_code) for i in every.items] == sorted((i.group, i.item_code) for i in every.items)
    rice = api.ListCatalogueItems(pb.ListCatalogueItemsRequest(query="大米"), token=STAFF_A).items
    assert rice and all("大米" in i.name_zh for i in rice)
    assert {i.item_code for i in api.ListCatalogueItems(pb.ListCatalogueItemsRequest(query="rice")).items} >= {
        i.item_code for i in rice}
    essential = api.ListCatalogueItems(pb.ListCatalogueItemsRequest(essential_only=True)).items
    assert "BAIJIU-500ML" in {i.item_code for i in every.items} - {i.item_code for i in essential}
    with pytest.raises(grpc.RpcError) as too_long:
        api.ListCatalogueItems(pb.ListCatalogueItemsRequest(query="x" * 101))
    assert too_long.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_the_day_summary_counts_demands_by_tier_township_and_status_and_lists_the_flagged(api):
    when = day(3)
    sealed = api.village(risk=common_pb2.RISK_LEVEL_SEALED, township="城关镇", population=600)
    calm = api.village(township="河西镇")
    api.demand(sealed.id, ("RICE-10KG", 2), delivery_day=when)
    over = api.demand(sealed.id, ("RICE-10KG", 5000), delivery_day=when)  # far over the norm: flagged
    api.demand(calm.id, ("OIL-5L", 1), delivery_day=when)
    summary = api.SummarizeDemands(pb.SummarizeDemandsRequest(delivery_day=when), token=HQ)
    assert summary.demands == 3
    counts = {(c.top_tier, c.township, c.status): (c.demands, c.flagged) for c in summary.counts}
    assert counts[(common_pb2.TIER_SEALED_AREA, "城关镇", pb.DEMAND_STATUS_OPEN)] == (2, 1)
    assert counts[(common_pb2.TIER_GENERAL, "河西镇", pb.DEMAND_STATUS_OPEN)] == (1, 0)
    assert [f.demand_id for f in summary.flagged] == [over.id]
    with pytest.raises(grpc.RpcError) as bad:
        api.SummarizeDemands(pb.SummarizeDemandsRequest(delivery_day="tomorrow"), token=HQ)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as refused:
        api.SummarizeDemands(pb.SummarizeDemandsRequest(delivery_day=when), token=INSPECTOR)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
